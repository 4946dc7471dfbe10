//! The plain data one scrape renders: a [`Snapshot`] that the control plane fills from the
//! data plane (relaxed atomic loads, port statistics, pool counts) each time Prometheus asks.
//!
//! Nothing here reads a device or a clock; the helpers only copy figures out of the data
//! plane's own types so that the integration code stays a few lines long.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use dataplane::app::proxy::ProxyStats;
use dataplane::dpdk::{Offloads, PortStats};
use dataplane::lcore::LcoreStats;

/// Everything one scrape exposes. `Default` is an empty appliance (no lcores, no ports).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Process start, seconds since the Unix epoch (`strait_start_time_seconds`); see
    /// [`unix_seconds`].
    pub start_time_seconds: f64,
    /// One entry per lcore running a worker.
    pub lcores: Vec<LcoreSnapshot>,
    /// One entry per configured port.
    pub ports: Vec<PortSnapshot>,
    /// Link/network counters of one port's interface on one lcore
    /// (`NetCounters::iter()`); entries for the same port are summed over lcores.
    pub net: Vec<NetSnapshot>,
    /// TCP counters of one lcore's engine (`tcp::Counters::iter()`, Linux names); summed
    /// over lcores when rendered.
    pub tcp: Vec<TcpSnapshot>,
    /// The mbuf pool, once it exists.
    pub mempool: Option<MempoolSnapshot>,
    /// Proxy counters and histograms of one lcore each (as published); summed over lcores
    /// per listener and per server when rendered.
    pub proxy: Vec<ProxyStats>,
    /// Health of the backend servers: one entry per server for the whole process (the
    /// verdict every lcore follows; see `render/health.rs`).
    pub backends: Vec<dataplane::app::proxy::BackendHealth>,
    /// Counters of the metrics HTTP server itself. [`crate::metrics::Server`] fills this in
    /// before rendering; whatever the source put here is overwritten.
    pub http: HttpStats,
    /// Every counter of each lcore's [`LcoreStats::iter`] (see `render/lcore_port.rs`).
    pub lcore_counters: Vec<LcoreCounters>,
    /// Each lcore's id and the durations of its busy passes, as published
    /// (`strait_lcore_busy_pass_seconds`).
    pub lcore_passes: Vec<(u32, dataplane::app::proxy::Histogram)>,
    /// Each port's extended device counters (`rte_eth_xstats`), read at scrape time.
    pub port_xstats: Vec<PortXstats>,
    /// Log lines dropped because the log writer's queue was full (`crate::logging`).
    pub log_dropped_lines: u64,
    /// Configuration reloads by outcome: applied, rejected, failed (`crate::admin`).
    pub reloads: (u64, u64, u64),
    /// Counters of the echo and sink services (`AppCounters::iter()`: `app_*`), summed
    /// over lcores; empty without lcores.
    pub apps: Vec<(&'static str, u64)>,
    /// Admin API requests by answer: ok, error (`crate::admin::server`).
    pub admin_requests: (u64, u64),
}

/// All named counters of one lcore ([`LcoreStats::iter`]), rendered as
/// `strait_lcore_<name>_total{lcore}` where no dedicated family covers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LcoreCounters {
    /// The lcore id.
    pub lcore: u32,
    /// `(name, value)` as [`LcoreStats::iter`] yields them.
    pub counters: Vec<(&'static str, u64)>,
}

impl LcoreCounters {
    /// Copies every counter of `stats` (relaxed loads: the owning lcore keeps writing).
    pub fn from_stats(lcore: u32, stats: &LcoreStats) -> Self {
        LcoreCounters { lcore, counters: stats.iter().collect() }
    }
}

/// One port's extended statistics, rendered as `strait_port_xstats_total{port,name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortXstats {
    /// The port's name in the configuration (label `port`).
    pub port: String,
    /// `(DPDK xstat name, value)` from `Port::xstats` (label `name`).
    pub xstats: Vec<(String, u64)>,
}

/// One lcore's loop figures (a copy of [`LcoreStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LcoreSnapshot {
    /// The lcore id.
    pub lcore: u32,
    /// TSC cycles spent in iterations that did work.
    pub busy_cycles: u64,
    /// TSC cycles since the loop started.
    pub total_cycles: u64,
    /// Loop iterations.
    pub iterations: u64,
    /// Frames received on this lcore's queues.
    pub rx_frames: u64,
    /// Frames handed to the TX queues.
    pub tx_frames: u64,
    /// Frames dropped because the TX ring stayed full.
    pub tx_dropped_full: u64,
    /// Frames not sent because no mbuf was free.
    pub tx_dropped_nombuf: u64,
}

impl LcoreSnapshot {
    /// Copies the figures of `stats` (relaxed loads: the owning lcore keeps writing).
    pub fn from_stats(lcore: u32, stats: &LcoreStats) -> Self {
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        LcoreSnapshot {
            lcore,
            busy_cycles: ld(&stats.busy_cycles),
            total_cycles: ld(&stats.total_cycles),
            iterations: ld(&stats.iterations),
            rx_frames: ld(&stats.rx_frames),
            tx_frames: ld(&stats.tx_frames),
            tx_dropped_full: ld(&stats.tx_dropped_full),
            tx_dropped_nombuf: ld(&stats.tx_dropped_nombuf),
        }
    }

    /// Busy cycles / total cycles in `[0, 1]` (0 before the loop has counted anything).
    pub fn busy_ratio(&self) -> f64 {
        if self.total_cycles == 0 {
            return 0.0;
        }
        (self.busy_cycles as f64 / self.total_cycles as f64).clamp(0.0, 1.0)
    }
}

/// One port: its name from the configuration, its device counters and granted offloads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSnapshot {
    /// The port's name in the configuration (label `port`).
    pub name: String,
    /// `rte_eth_stats` of the port.
    pub stats: PortStats,
    /// Names of the offloads the device granted, from [`KNOWN_OFFLOADS`]
    /// (see [`granted_offload_names`]).
    pub granted_offloads: Vec<&'static str>,
    /// The link as the link monitor last saw it (`None` before its first look).
    pub link_up: Option<bool>,
    /// Link up/down transitions the monitor saw since start.
    pub link_changes: u64,
}

/// Offload names, as the configuration and the start-up log spell them. Rendered as
/// `strait_port_offload_granted{offload=...}` 1 when granted, 0 otherwise.
pub const KNOWN_OFFLOADS: &[&str] = &Offloads::NAMES;

/// The names (from [`KNOWN_OFFLOADS`]) of the offloads set in `o`.
pub fn granted_offload_names(o: &Offloads) -> Vec<&'static str> {
    o.names().collect()
}

/// Link/network counters of one port on one lcore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSnapshot {
    /// The port's name (label `port`).
    pub port: String,
    /// The lcore whose interface these are.
    pub lcore: u32,
    /// `NetCounters::iter()`: drop reasons (`DropReason::name`) become
    /// `strait_net_dropped_frames_total{reason}`, the rest `strait_net_<name>_total`.
    pub counters: Vec<(&'static str, u64)>,
}

/// TCP counters of one lcore's engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpSnapshot {
    /// The lcore whose engine these are.
    pub lcore: u32,
    /// `tcp::Counters::iter()`: `(Linux name, value)`.
    pub counters: Vec<(&'static str, u64)>,
    /// Connections in the engine, in any state (`strait_tcp_connections`).
    pub connections: u64,
    /// Entries in the engine's TIME-WAIT table (`strait_tcp_time_wait`).
    pub time_wait: u64,
    /// Buffer bytes the engine's connections pin (`strait_tcp_buffer_bytes`).
    pub buffer_bytes: u64,
}

/// The mbuf pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MempoolSnapshot {
    /// Mbufs taken and not returned (`Mempool::in_use`).
    pub in_use: u64,
    /// Free mbufs, per-lcore caches included (`Mempool::available`).
    pub available: u64,
    /// Mbufs the pool was created with (`dpdk.mbufs` in the configuration).
    pub size: u64,
}

/// Counters of the metrics HTTP server (filled by the server, not by the source).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections refused because `max_connections` were open.
    pub rejected_connection_limit: u64,
    /// Connections closed because a request did not arrive in time.
    pub rejected_timeout: u64,
    /// `GET`/`HEAD /metrics` answered with 200.
    pub scrapes: u64,
    /// Requests for another path (404).
    pub rejected_not_found: u64,
    /// Requests with another method on `/metrics` (405).
    pub rejected_method: u64,
    /// Malformed requests (400).
    pub rejected_bad_request: u64,
    /// Requests whose head exceeded the size limit (431).
    pub rejected_too_large: u64,
    /// Requests with an HTTP version other than 1.0/1.1 (505).
    pub rejected_version: u64,
}

/// Seconds since the Unix epoch at `t` (0 for a time before the epoch), for
/// [`Snapshot::start_time_seconds`].
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    #[test]
    fn lcore_snapshot_copies_every_field() {
        let s = LcoreStats::default();
        let set = |a: &AtomicU64, v| a.store(v, Ordering::Relaxed);
        set(&s.busy_cycles, 25);
        set(&s.total_cycles, 100);
        set(&s.iterations, 7);
        set(&s.rx_frames, 11);
        set(&s.tx_frames, 12);
        set(&s.tx_dropped_full, 2);
        set(&s.tx_dropped_nombuf, 3);
        let l = LcoreSnapshot::from_stats(4, &s);
        assert_eq!(
            l,
            LcoreSnapshot {
                lcore: 4,
                busy_cycles: 25,
                total_cycles: 100,
                iterations: 7,
                rx_frames: 11,
                tx_frames: 12,
                tx_dropped_full: 2,
                tx_dropped_nombuf: 3,
            }
        );
        assert!((l.busy_ratio() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn busy_ratio_is_zero_before_counting_and_clamped() {
        assert_eq!(LcoreSnapshot::default().busy_ratio(), 0.0);
        let odd = LcoreSnapshot {
            busy_cycles: 30,
            total_cycles: 10,
            ..LcoreSnapshot::default()
        };
        assert_eq!(odd.busy_ratio(), 1.0);
    }

    #[test]
    fn granted_offload_names_lists_set_flags_in_known_order() {
        assert!(granted_offload_names(&Offloads::NONE).is_empty());
        assert_eq!(
            granted_offload_names(&Offloads::ALL),
            KNOWN_OFFLOADS.to_vec()
        );
        let o = Offloads {
            tso: true,
            rx_cksum: true,
            ..Offloads::NONE
        };
        assert_eq!(granted_offload_names(&o), vec!["tso", "rx-cksum"]);
    }

    #[test]
    fn unix_seconds_handles_epoch_and_before() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1500)), 1.5);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(1)), 0.0);
    }
}
