//! The proxy's configuration as the data plane takes it: listeners, pools and their
//! servers (the `strait` binary builds these from its TOML).

use std::net::{IpAddr, SocketAddr};

use super::ProxyProtocol;
use crate::lb::Algorithm;
use crate::tcp::KeepaliveConfig;
use crate::time::Duration;

/// One backend server of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server's address and port.
    pub addr: SocketAddr,
    /// Our address to connect from (the address of the port on the server's subnet, or the
    /// port whose gateway reaches it), of the server's family.
    pub local_ip: IpAddr,
    /// Relative share of sessions (> 0).
    pub weight: u32,
    /// Connections to it at most, over all lcores (HAProxy's server `maxconn`); a session
    /// finding every server full waits in the pool's queue. `None`: no limit.
    pub max_connections: Option<u32>,
}

/// A named set of servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    /// Name (for counters and logs).
    pub name: String,
    /// How a server is chosen.
    pub algorithm: Algorithm,
    /// The servers, at least one.
    pub servers: Vec<ServerSpec>,
    /// The PROXY protocol header each backend connection starts with (`None`: off).
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Backend connections send without Nagle's delay (`TCP_NODELAY`).
    pub nodelay: bool,
    /// TCP keepalive on backend connections (`SO_KEEPALIVE`; `None`: off).
    pub keepalive: Option<KeepaliveConfig>,
    /// Sessions at most waiting, over all lcores, for a server below its
    /// `max_connections` (HAProxy `maxqueue`); one more is reset. 0: none wait.
    pub max_queue: u32,
    /// How long a session waits in the queue before it is reset (HAProxy `timeout queue`).
    pub queue_timeout: Duration,
}

/// Where clients connect and what they are spliced to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Name (for counters and logs).
    pub name: String,
    /// Listening address (a port's address, or `0.0.0.0`).
    pub listen: SocketAddr,
    /// Index into [`ProxySpec::pools`].
    pub pool: usize,
    /// Sessions at most; more are reset.
    pub max_connections: u32,
    /// Time allowed for one backend connection attempt.
    pub connect_timeout: Duration,
    /// A session that moves no byte for this long is aborted.
    pub idle_timeout: Duration,
    /// Client connections send without Nagle's delay (`TCP_NODELAY`): a proxy relays
    /// what it got at once, and Nagle would hold a response's tail for a round trip.
    pub nodelay: bool,
    /// TCP keepalive on client connections (`SO_KEEPALIVE`, HAProxy `option clitcpka`;
    /// `None`: off): a client that vanished without a FIN or RST is found and reset
    /// even while its session waits on the backend (Linux `tcp_keepalive_timer`).
    pub keepalive: Option<KeepaliveConfig>,
}

/// The whole proxy configuration of one engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySpec {
    /// Listeners.
    pub listeners: Vec<ListenerSpec>,
    /// Pools the listeners refer to.
    pub pools: Vec<PoolSpec>,
}
