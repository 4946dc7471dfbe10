//! Prometheus metrics: a [`Snapshot`] of the data plane rendered as the text exposition
//! format ([`render`]), served by an HTTP server on its own thread ([`Server`]).
//!
//! Integration (control plane, once at start-up):
//!
//! ```no_run
//! use std::sync::Arc;
//! use strait::metrics::{unix_seconds, LcoreSnapshot, Server, Snapshot};
//!
//! let started = unix_seconds(std::time::SystemTime::now());
//! let source = Arc::new(move || Snapshot {
//!     start_time_seconds: started,
//!     // lcores: LcoreSnapshot::from_stats(id, &stats) for each worker,
//!     // ports: PortSnapshot { name, stats: port.stats()?, granted_offloads:
//!     //         granted_offload_names(&port.granted()) },
//!     // net / tcp: counters the lcores publish, mempool: pool.in_use()/available()...
//!     ..Snapshot::default()
//! });
//! let server = Server::start("127.0.0.1:9100".parse().unwrap(), source)?;
//! // ... serve until told to stop; dropping `server` (or `server.shutdown()`) joins its thread.
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The source runs on the metrics thread at every scrape, never on an lcore: it should
//! only read (relaxed atomics, `rte_eth_stats_get`, pool counts).

pub mod http;
pub mod render;
pub mod server;
pub mod snapshot;

pub use render::{render, DPDK_VERSION};
pub use server::{Server, ServerLimits, SnapshotSource};
pub use snapshot::{
    granted_offload_names, unix_seconds, HttpStats, LcoreCounters, LcoreSnapshot, MempoolSnapshot, NetSnapshot,
    PortSnapshot, PortXstats, Snapshot, TcpSnapshot, KNOWN_OFFLOADS,
};
