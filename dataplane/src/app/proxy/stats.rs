//! Counters of the proxy of one lcore: per listener and per server (the Prometheus
//! exporter and the final log lines read them; every lcore keeps its own, summed by the
//! readers).

use std::net::SocketAddr;

use super::Histogram;

/// Counters of one listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// The listener's name.
    pub name: String,
    /// Sessions now open on this lcore.
    pub active: u64,
    /// Sessions started.
    pub total: u64,
    /// Connections reset because `max_connections` sessions were open (on all lcores).
    pub refused_max_connections: u64,
    /// Connections reset because no server could be picked or no source port was free.
    pub refused_no_server: u64,
    /// Sessions reset because every connection attempt failed.
    pub refused_connect_failed: u64,
    /// Bytes read from clients (and written to servers).
    pub bytes_in: u64,
    /// Bytes read from servers (and written to clients).
    pub bytes_out: u64,
    /// Sessions aborted by the idle timeout.
    pub idle_timeouts: u64,
    /// Sessions ended by a reset or error on either side (propagated to the other).
    pub resets: u64,
    /// Writes refused or cut short by a full send buffer (back-pressure).
    pub write_stalls: u64,
    /// Sessions reset because their PROXY protocol header could not be built (no mbuf,
    /// no payload factory set) or written.
    pub refused_proxy_header: u64,
    /// Sessions that waited in the pool's queue for a server below its `max_connections`.
    pub queued: u64,
    /// Sessions reset because every server was full and so was the queue (`max_queue`).
    pub refused_queue_full: u64,
    /// Sessions reset after waiting `queue_timeout` in the queue.
    pub refused_queue_timeout: u64,
    /// The listener's pool (label only).
    pub pool: String,
    /// Session durations, accept to the last close.
    pub connection_duration: Histogram,
}

impl ListenerStats {
    /// `(name, value)` for every counter.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("active", self.active),
            ("total", self.total),
            ("refused_max_connections", self.refused_max_connections),
            ("refused_no_server", self.refused_no_server),
            ("refused_connect_failed", self.refused_connect_failed),
            ("bytes_in", self.bytes_in),
            ("bytes_out", self.bytes_out),
            ("idle_timeouts", self.idle_timeouts),
            ("resets", self.resets),
            ("write_stalls", self.write_stalls),
            ("refused_proxy_header", self.refused_proxy_header),
            ("queued", self.queued),
            ("refused_queue_full", self.refused_queue_full),
            ("refused_queue_timeout", self.refused_queue_timeout),
        ]
        .into_iter()
    }
}

/// Counters of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStats {
    /// The pool's name.
    pub pool: String,
    /// The server.
    pub addr: Option<SocketAddr>,
    /// Sessions now connected (or connecting) to it.
    pub active: u64,
    /// Connection attempts made to it.
    pub attempts: u64,
    /// Attempts that connected.
    pub connected: u64,
    /// Attempts refused (RST in SYN-SENT).
    pub connect_refused: u64,
    /// Attempts that timed out (ours or the engine's SYN retries).
    pub connect_timeout: u64,
    /// Attempts that failed otherwise (aborted, no free source port).
    pub connect_other: u64,
    /// Bytes written to it.
    pub bytes_in: u64,
    /// Bytes read from it.
    pub bytes_out: u64,
    /// Active health checks this lcore started on it (one lcore checks each server:
    /// `verdict.rs`).
    pub health_checks: u64,
    /// Durations of successful connection attempts (SYN sent to established).
    pub connect_duration: Histogram,
    /// Durations of established backend connections (established to closed).
    pub connection_duration: Histogram,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            pool: String::new(),
            addr: None,
            active: 0,
            attempts: 0,
            connected: 0,
            connect_refused: 0,
            connect_timeout: 0,
            connect_other: 0,
            bytes_in: 0,
            bytes_out: 0,
            health_checks: 0,
            connect_duration: Histogram::connect(),
            connection_duration: Histogram::connection(),
        }
    }
}

impl ServerStats {
    /// `(name, value)` for every counter.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("active", self.active),
            ("attempts", self.attempts),
            ("connected", self.connected),
            ("connect_refused", self.connect_refused),
            ("connect_timeout", self.connect_timeout),
            ("connect_other", self.connect_other),
            ("bytes_in", self.bytes_in),
            ("bytes_out", self.bytes_out),
            ("health_checks", self.health_checks),
        ]
        .into_iter()
    }
}

/// Counters of the proxy of one engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Per listener, in configuration order.
    pub listeners: Vec<ListenerStats>,
    /// Per server, pools in configuration order, servers in pool order.
    pub servers: Vec<ServerStats>,
}

impl ProxyStats {
    /// Every non-zero counter as `proxy_listener_<counter>{name}=v` and
    /// `proxy_server_<counter>{pool/addr}=v`, for log lines.
    pub fn nonzero(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.listeners {
            out.extend(l.iter().filter(|(_, v)| *v != 0).map(|(k, v)| format!("proxy_listener_{k}{{{}}}={v}", l.name)));
        }
        for s in &self.servers {
            let addr = s.addr.map(|a| a.to_string()).unwrap_or_default();
            out.extend(
                s.iter().filter(|(_, v)| *v != 0).map(|(k, v)| format!("proxy_server_{k}{{{}/{addr}}}={v}", s.pool)),
            );
        }
        out
    }
}
