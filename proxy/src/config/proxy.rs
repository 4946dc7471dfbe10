//! `[[listener]]` and `[[pool]]`: the proxy's configuration (what clients connect to, and
//! the backend servers they are spliced to), validated like every other section: all
//! problems collected, each naming its key.
//!
//! ```toml
//! [[listener]]
//! name = "web"                  # unique, [a-z0-9_-]
//! listen = "198.18.0.2:80"      # a port's address (or 0.0.0.0) and a TCP port; IPv6 in
//!                               # brackets: "[2001:db8::2]:80", "[::]:80"
//! pool = "web"                  # a [[pool]] name
//! max_connections = 10000       # sessions at most over all lcores; more are reset
//! connect_timeout_ms = 3000     # per backend connection attempt
//! idle_timeout_ms = 60000       # a session moving no byte this long is aborted
//! nodelay = true                # client connections without Nagle (TCP_NODELAY)
//! keepalive = false             # TCP keepalive on client connections (SO_KEEPALIVE)
//! keepalive_idle_ms = 7200000   # 1000..=32767000: silence before the first probe
//! keepalive_interval_ms = 75000 # 1000..=32767000: between unanswered probes
//! keepalive_probes = 9          # 1..=127: unanswered probes before the reset
//!
//! [[pool]]
//! name = "web"
//! algorithm = "round_robin"     # "round_robin" | "least_connections" | "maglev" (global:
//!                               # round robin and connection counts span every lcore)
//! servers = [{ addr = "198.18.1.1:8080", weight = 1, max_connections = 100 }]
//!                               # or an IPv6 server: { addr = "[2001:db8:1::1]:8080" }
//!                               # max_connections: optional, 1..=1000000, over all lcores
//!                               # (HAProxy server maxconn); more sessions wait in the queue
//! max_queue = 1024              # 0..=1000000: sessions waiting for a server with room,
//!                               # over all lcores (HAProxy maxqueue); more are reset
//! queue_timeout_ms = 3000       # 1..=3600000: a session waiting this long is reset
//!                               # (HAProxy timeout queue); both need a max_connections
//! proxy_protocol = "v1"         # optional: "v1" | "v2" header to each backend connection
//! nodelay = true                # backend connections without Nagle (TCP_NODELAY)
//! keepalive = false             # and keepalive_idle_ms/_interval_ms/_probes, as above
//! ```
//!
//! `keepalive` (default off, as Linux's `SO_KEEPALIVE` and HAProxy's `option tcpka`):
//! probes a connection that has been silent for `keepalive_idle_ms`, every
//! `keepalive_interval_ms`, and resets it after `keepalive_probes` unanswered ones (Linux
//! `tcp_keepalive_time`, `_intvl`, `_probes`, whose defaults these are; RFC 1122
//! §4.2.3.6). A peer that vanished without a FIN or RST then frees its session even
//! while the other side waits. The `keepalive_*` keys need `keepalive = true`.
//!
//! `nodelay` (default true on both sides, as HAProxy and nginx do): a proxy relays what it
//! got when it got it, and Nagle's algorithm would hold the tail of a response until the
//! previous segment is acknowledged, an extra round trip (RFC 1122 §4.2.3.4 lets an
//! application turn it off).
//!
//! Each server must be reachable from a port: on a port's subnet (the proxy connects from
//! that port's address), or through a port that has a gateway; an IPv6 server on a port's
//! IPv6 prefix, or through a port with an `ipv6_gateway`. Listeners and servers may be of
//! different families (a v4 client to a v6 server and the reverse); a PROXY protocol
//! header carries the client's family (`TCP6` / AF_INET6 for an IPv6 client).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use config::{Value, ValueKind};
use dataplane::app::proxy::{Algorithm, ProxyProtocol};
use dataplane::tcp::KeepaliveConfig;

use super::parse;
use super::raw::{describe, Errors, Table};
use super::{AppSpec, PortConfig};

/// One `[[listener]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Unique name.
    pub name: String,
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The name of the pool it forwards to (it exists).
    pub pool: String,
    /// Sessions at most (1..=1_000_000, default 10000).
    pub max_connections: u32,
    /// Time allowed for one backend connection attempt (default 3 s).
    pub connect_timeout: Duration,
    /// A session idle this long is aborted (default 60 s).
    pub idle_timeout: Duration,
    /// Client connections send without Nagle's delay (`nodelay`, default true).
    pub nodelay: bool,
    /// TCP keepalive on client connections (`keepalive`, default off).
    pub keepalive: Option<KeepaliveConfig>,
}

/// One `[[pool]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Unique name.
    pub name: String,
    /// How a server is picked.
    pub algorithm: Algorithm,
    /// At least one server, addresses unique within the pool.
    pub servers: Vec<ServerConfig>,
    /// Active health checks (`[pool.health_check]`), if any.
    pub health_check: Option<super::HealthCheckConfig>,
    /// Passive ejection after failed connects (`passive_failures`, `passive_recovery_ms`).
    pub passive: super::PassiveHealthConfig,
    /// The PROXY protocol header sent first on each backend connection (`proxy_protocol`,
    /// `"v1"` or `"v2"`; absent: none).
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Backend connections send without Nagle's delay (`nodelay`, default true).
    pub nodelay: bool,
    /// TCP keepalive on backend connections (`keepalive`, default off).
    pub keepalive: Option<KeepaliveConfig>,
    /// Sessions at most waiting for a server below its `max_connections`, over all lcores
    /// (`max_queue`, 0..=1_000_000, default 1024; 0: none wait).
    pub max_queue: u32,
    /// How long a session waits for one (`queue_timeout_ms`, default 3 s).
    pub queue_timeout: Duration,
}

/// One server of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Its address and TCP port.
    pub addr: SocketAddr,
    /// Relative share (1..=1000, default 1).
    pub weight: u32,
    /// Connections at most over all lcores (`max_connections`, 1..=1_000_000; absent: no
    /// limit).
    pub max_connections: Option<u32>,
    /// The port address the proxy connects from (the port on the server's subnet, else
    /// the first port with a gateway).
    pub local_ip: IpAddr,
}

/// The items of an array-of-tables section, or an error naming `key`.
fn section<'v>(value: &'v Value, key: &str, errs: &mut Errors) -> Option<&'v [Value]> {
    match &value.kind {
        ValueKind::Array(items) => Some(items),
        ValueKind::Table(_) => {
            errs.push(key, format!("expected an array of tables: write [[{key}]], not [{key}]"));
            None
        }
        _ => {
            errs.push(key, format!("expected an array of tables ([[{key}]]), found {}", describe(value)));
            None
        }
    }
}

fn name(t: &Table<'_>, errs: &mut Errors) -> Option<String> {
    t.required_string("name", errs).and_then(|n| match parse::port_name(&n) {
        Ok(()) => Some(n),
        Err(why) => t.fail(errs, "name", why),
    })
}

/// The port address to reach `ip` from: the port on its subnet, else the first port with
/// a gateway.
pub(crate) fn source_for(ports: &[PortConfig], ip: Ipv4Addr) -> Option<Ipv4Addr> {
    ports
        .iter()
        .find(|p| parse::same_subnet(p.ipv4, p.prefix_len, ip))
        .or_else(|| ports.iter().find(|p| p.gateway.is_some()))
        .map(|p| p.ipv4)
}

/// The IPv6 port address to reach `ip` from: the port whose prefix holds it, else the
/// first IPv6 port with a gateway, else the first that learns routers from advertisements
/// (RFC 6724's rule of the longest matching prefix is moot with one address per port).
pub(crate) fn source_for_v6(ports: &[PortConfig], ip: Ipv6Addr) -> Option<Ipv6Addr> {
    let v6 = |p: &PortConfig| p.ipv6.and_then(|v| v.addr.map(|a| (a, v.prefix_len, v.gateway, v.accept_ra)));
    ports
        .iter()
        .filter_map(v6)
        .find(|&(a, len, _, _)| dataplane::wire::ipv6::addr::same_prefix(a, ip, len))
        .or_else(|| ports.iter().filter_map(v6).find(|(_, _, gw, _)| gw.is_some()))
        .or_else(|| ports.iter().filter_map(v6).find(|(_, _, _, ra)| *ra))
        .map(|(a, _, _, _)| a)
}

/// `[[pool]]` (optional). `ports` is `None` when the ports were invalid (their errors are
/// reported already): server reachability is then not checked.
pub(crate) fn pools(value: Option<&Value>, ports: Option<&[PortConfig]>, errs: &mut Errors) -> Option<Vec<PoolConfig>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    let items = section(value, "pool", errs)?;
    let before = errs.0.len();
    let parsed: Vec<Option<PoolConfig>> = items.iter().enumerate().map(|(i, v)| pool(v, i, ports, errs)).collect();
    for (i, p) in parsed.iter().enumerate() {
        let Some(p) = p else { continue };
        for (j, q) in parsed.iter().enumerate().take(i) {
            if q.as_ref().is_some_and(|q| q.name == p.name) {
                errs.push(format!("pool[{i}].name"), format!("{:?} is already used by pool[{j}]", p.name));
            }
        }
    }
    if errs.0.len() != before {
        return None;
    }
    parsed.into_iter().collect()
}

fn pool(value: &Value, index: usize, ports: Option<&[PortConfig]>, errs: &mut Errors) -> Option<PoolConfig> {
    let path = format!("pool[{index}]");
    let t = Table::new(value, &path, errs)?;
    t.deny_unknown(
        &[
            "name",
            "algorithm",
            "servers",
            "health_check",
            "passive_failures",
            "passive_recovery_ms",
            "proxy_protocol",
            "nodelay",
            KEEPALIVE,
            KEEPALIVE_IDLE,
            KEEPALIVE_INTERVAL,
            KEEPALIVE_PROBES,
            MAX_QUEUE,
            QUEUE_TIMEOUT,
        ],
        errs,
    );
    let before = errs.0.len();
    let name = name(&t, errs);
    let algorithm = match t.string("algorithm", errs).as_deref() {
        None if t.get("algorithm").is_none() => Some(Algorithm::RoundRobin),
        None => None,
        Some("round_robin") => Some(Algorithm::RoundRobin),
        Some("least_connections") => Some(Algorithm::LeastConnections),
        Some("maglev") => Some(Algorithm::Maglev),
        Some(other) => t.fail(
            errs,
            "algorithm",
            format!("{other:?} is not an algorithm (expected \"round_robin\", \"least_connections\" or \"maglev\")"),
        ),
    };
    let servers = if t.get("servers").is_none() {
        t.fail(errs, "servers", "at least one server is required (servers = [{ addr = \"a.b.c.d:port\" }])")
    } else {
        t.array("servers", errs).and_then(|items| {
            if items.is_empty() {
                return t.fail(errs, "servers", "at least one server is required");
            }
            let key = t.path_of("servers");
            let parsed: Vec<Option<ServerConfig>> =
                items.iter().enumerate().map(|(j, v)| server(v, &format!("{key}[{j}]"), ports, errs)).collect();
            for (j, s) in parsed.iter().enumerate() {
                let Some(s) = s else { continue };
                for (k, o) in parsed.iter().enumerate().take(j) {
                    if o.is_some_and(|o| o.addr == s.addr) {
                        errs.push(format!("{key}[{j}].addr"), format!("{} is already listed as {key}[{k}]", s.addr));
                    }
                }
            }
            parsed.into_iter().collect::<Option<Vec<_>>>()
        })
    };
    let health_check = super::ops::health_check(&t, errs);
    let passive = super::ops::passive(&t, errs);
    let proxy_protocol = match t.string("proxy_protocol", errs).as_deref() {
        None if t.get("proxy_protocol").is_none() => Some(None),
        None => None,
        Some(v) => match ProxyProtocol::from_name(v) {
            Some(p) => Some(Some(p)),
            None => t.fail(
                errs,
                "proxy_protocol",
                format!("{v:?} is not a PROXY protocol version (expected \"v1\" or \"v2\"; leave it out for none)"),
            ),
        },
    };
    let nodelay = t.bool_or("nodelay", true, errs);
    let keepalive = keepalive(&t, errs);
    let max_queue = t.uint_or(MAX_QUEUE, 1024, 0, 1_000_000, errs);
    let queue_timeout = t.uint_or(QUEUE_TIMEOUT, 3000, 1, 3_600_000, errs);
    if servers.as_ref().is_some_and(|s: &Vec<ServerConfig>| s.iter().all(|s| s.max_connections.is_none())) {
        for key in [MAX_QUEUE, QUEUE_TIMEOUT] {
            if t.get(key).is_some() {
                let _: Option<()> =
                    t.fail(errs, key, "has no effect: no server of the pool has max_connections".to_string());
            }
        }
    }
    if errs.0.len() != before {
        return None;
    }
    Some(PoolConfig {
        name: name?,
        algorithm: algorithm?,
        servers: servers?,
        health_check: health_check?,
        passive: passive?,
        proxy_protocol: proxy_protocol?,
        nodelay: nodelay?,
        keepalive: keepalive?,
        max_queue: max_queue?,
        queue_timeout: Duration::from_millis(u64::from(queue_timeout?)),
    })
}

const MAX_QUEUE: &str = "max_queue";
const QUEUE_TIMEOUT: &str = "queue_timeout_ms";

const KEEPALIVE: &str = "keepalive";
const KEEPALIVE_IDLE: &str = "keepalive_idle_ms";
const KEEPALIVE_INTERVAL: &str = "keepalive_interval_ms";
const KEEPALIVE_PROBES: &str = "keepalive_probes";

/// `keepalive` and its three settings, on a listener or a pool (see the module docs).
/// Limits are Linux's `TCP_KEEPIDLE`/`TCP_KEEPINTVL` (1..=32767 s) and `TCP_KEEPCNT`
/// (1..=127). `Some(None)`: off.
fn keepalive(t: &Table<'_>, errs: &mut Errors) -> Option<Option<KeepaliveConfig>> {
    let d = KeepaliveConfig::default();
    let ms = |v: dataplane::time::Duration| u32::try_from(v.as_millis()).unwrap_or(u32::MAX);
    let on = t.bool_or(KEEPALIVE, false, errs)?;
    let idle = t.uint_or(KEEPALIVE_IDLE, ms(d.idle), 1_000, 32_767_000, errs);
    let interval = t.uint_or(KEEPALIVE_INTERVAL, ms(d.interval), 1_000, 32_767_000, errs);
    let probes = t.uint_or(KEEPALIVE_PROBES, d.probes, 1, 127, errs);
    if !on {
        for key in [KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES] {
            if t.get(key).is_some() {
                let _: Option<()> = t.fail(errs, key, "has no effect without keepalive = true".to_string());
            }
        }
        return Some(None);
    }
    Some(Some(KeepaliveConfig {
        idle: dataplane::time::Duration::from_millis(u64::from(idle?)),
        interval: dataplane::time::Duration::from_millis(u64::from(interval?)),
        probes: probes?,
    }))
}

fn server(value: &Value, path: &str, ports: Option<&[PortConfig]>, errs: &mut Errors) -> Option<ServerConfig> {
    let t = Table::new(value, path, errs)?;
    t.deny_unknown(&["addr", "weight", "max_connections"], errs);
    let weight = t.uint_or("weight", 1, 1, 1000, errs);
    let max_connections = match t.get("max_connections") {
        None => Some(None),
        Some(_) => t.uint_or("max_connections", 1, 1, 1_000_000, errs).map(Some),
    };
    let addr = t.required_string("addr", errs).and_then(|a| {
        let Ok(addr) = a.trim().parse::<SocketAddr>() else {
            return t.fail(
                errs,
                "addr",
                format!("{a:?} is not an address and port (e.g. \"198.18.1.1:8080\" or \"[2001:db8:1::1]:8080\")"),
            );
        };
        if addr.port() == 0 {
            return t.fail(errs, "addr", format!("{a:?}: the TCP port must be 1..=65535"));
        }
        let why = match addr {
            SocketAddr::V4(a) => parse::host_address(*a.ip(), 32).err(),
            SocketAddr::V6(a) if a.scope_id() != 0 || a.flowinfo() != 0 => {
                Some(format!("{a}: no scope or flow label (a server is reached through a port's prefix or gateway)"))
            }
            SocketAddr::V6(a) => {
                let ip = *a.ip();
                (ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.to_ipv4_mapped().is_some())
                    .then(|| format!("{ip} is not a unicast host address"))
            }
        };
        if let Some(why) = why {
            return t.fail(errs, "addr", why);
        }
        Some(SocketAddr::new(addr.ip(), addr.port()))
    });
    let addr = addr?;
    let local_ip = match (ports, addr) {
        (None, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (None, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        (Some(ports), SocketAddr::V6(a)) => {
            let ip = *a.ip();
            if ports.iter().any(|p| p.ipv6.and_then(|v| v.addr) == Some(ip)) {
                return t.fail(errs, "addr", format!("{ip} is strait's own port address"));
            }
            match source_for_v6(ports, ip) {
                Some(local) => IpAddr::V6(local),
                None => {
                    return t.fail(
                        errs,
                        "addr",
                        format!(
                            "{ip} is on no port's IPv6 prefix and no port has an ipv6_gateway or ipv6_accept_ra to reach it"
                        ),
                    );
                }
            }
        }
        (Some(ports), SocketAddr::V4(a)) => {
            let ip = *a.ip();
            if ports.iter().any(|p| p.ipv4 == ip) {
                return t.fail(errs, "addr", format!("{ip} is strait's own port address"));
            }
            // The network or broadcast address of a port's subnet is no host.
            if let Some(Err(why)) = ports
                .iter()
                .find(|p| parse::same_subnet(p.ipv4, p.prefix_len, ip))
                .map(|p| parse::host_address(ip, p.prefix_len))
            {
                return t.fail(errs, "addr", why);
            }
            match source_for(ports, ip) {
                Some(local) => IpAddr::V4(local),
                None => {
                    return t.fail(errs, "addr", format!("{ip} is on no port's subnet and no port has a gateway to reach it"));
                }
            }
        }
    };
    Some(ServerConfig { addr, weight: weight?, max_connections: max_connections?, local_ip })
}

/// `[[listener]]` (optional). `pools`/`ports`/`apps` are `None` when invalid (reported
/// already): the checks against them are skipped.
pub(crate) fn listeners(
    value: Option<&Value>,
    ports: Option<&[PortConfig]>,
    pools: Option<&[PoolConfig]>,
    apps: Option<&[AppSpec]>,
    errs: &mut Errors,
) -> Option<Vec<ListenerConfig>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    let items = section(value, "listener", errs)?;
    let before = errs.0.len();
    let parsed: Vec<Option<ListenerConfig>> =
        items.iter().enumerate().map(|(i, v)| listener(v, i, ports, pools, errs)).collect();
    for (i, l) in parsed.iter().enumerate() {
        let Some(l) = l else { continue };
        for (j, o) in parsed.iter().enumerate().take(i) {
            let Some(o) = o else { continue };
            if o.name == l.name {
                errs.push(format!("listener[{i}].name"), format!("{:?} is already used by listener[{j}]", l.name));
            }
            if o.listen == l.listen {
                errs.push(format!("listener[{i}].listen"), format!("{} is already used by listener[{j}]", l.listen));
            } else if o.listen.port() == l.listen.port()
                && o.listen.is_ipv4() == l.listen.is_ipv4()
                && (o.listen.ip().is_unspecified() != l.listen.ip().is_unspecified())
            {
                // An exact address takes its connections from the wildcard on the same port:
                // the wildcard's pool never sees that address's clients.
                let (wild, exact) = if l.listen.ip().is_unspecified() { (i, j) } else { (j, i) };
                errs.push(
                    format!("listener[{i}].listen"),
                    format!(
                        "listener[{wild}] on {} is shadowed by listener[{exact}] on {} for that address; use one or the other per port",
                        if wild == i { l.listen } else { o.listen },
                        if wild == i { o.listen } else { l.listen },
                    ),
                );
            }
        }
        if let Some(k) = apps.and_then(|a| a.iter().position(|a| a.listen == l.listen)) {
            errs.push(format!("listener[{i}].listen"), format!("{} is already used by app[{k}]", l.listen));
        }
    }
    if errs.0.len() != before {
        return None;
    }
    parsed.into_iter().collect()
}

fn listener(
    value: &Value,
    index: usize,
    ports: Option<&[PortConfig]>,
    pools: Option<&[PoolConfig]>,
    errs: &mut Errors,
) -> Option<ListenerConfig> {
    let path = format!("listener[{index}]");
    let t = Table::new(value, &path, errs)?;
    t.deny_unknown(
        &[
            "name",
            "listen",
            "pool",
            "max_connections",
            "connect_timeout_ms",
            "idle_timeout_ms",
            "nodelay",
            KEEPALIVE,
            KEEPALIVE_IDLE,
            KEEPALIVE_INTERVAL,
            KEEPALIVE_PROBES,
        ],
        errs,
    );
    let name = name(&t, errs);
    let listen = t.required_string("listen", errs).and_then(|l| {
        // IPv6 in brackets: "[2001:db8::2]:80", "[::]:80".
        let Ok(addr) = l.trim().parse::<SocketAddr>() else {
            return t.fail(
                errs,
                "listen",
                format!("{l:?} is not an address and port (e.g. \"198.18.0.2:80\" or \"[2001:db8::2]:80\")"),
            );
        };
        if addr.port() == 0 {
            return t.fail(errs, "listen", format!("{l:?}: the TCP port must be 1..=65535"));
        }
        if let SocketAddr::V6(a) = addr {
            if a.scope_id() != 0 || a.flowinfo() != 0 {
                return t.fail(errs, "listen", format!("{l:?}: no scope or flow label (a port's addresses are global)"));
            }
        }
        let addr = SocketAddr::new(addr.ip(), addr.port());
        if let Some(ports) = ports {
            if let Err(why) = super::app::local_address(ports, addr.ip()) {
                return t.fail(errs, "listen", why);
            }
        }
        Some(addr)
    });
    let pool = t.required_string("pool", errs).and_then(|p| match pools {
        Some(pools) if !pools.iter().any(|q| q.name == p) => {
            let have: Vec<&str> = pools.iter().map(|q| q.name.as_str()).collect();
            let have = if have.is_empty() { "none".to_string() } else { have.join(", ") };
            t.fail(errs, "pool", format!("no [[pool]] is named {p:?} (defined: {have})"))
        }
        _ => Some(p),
    });
    let max_connections = t.uint_or("max_connections", 10_000, 1, 1_000_000, errs);
    let connect = t.uint_or("connect_timeout_ms", 3_000, 1, 600_000, errs);
    let idle = t.uint_or("idle_timeout_ms", 60_000, 1, 86_400_000, errs);
    let nodelay = t.bool_or("nodelay", true, errs);
    let keepalive = keepalive(&t, errs);
    Some(ListenerConfig {
        name: name?,
        listen: listen?,
        pool: pool?,
        max_connections: max_connections?,
        connect_timeout: Duration::from_millis(u64::from(connect?)),
        idle_timeout: Duration::from_millis(u64::from(idle?)),
        nodelay: nodelay?,
        keepalive: keepalive?,
    })
}
