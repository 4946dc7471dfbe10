//! Strait's data plane.
//!
//! * [`wire`]: zero-copy views and emitters for Ethernet, ARP, IPv4, ICMPv4, IPv6 (with
//!   extension-header walking), ICMPv6, NDP and TCP.
//! * [`net`]: the sans-IO link and network layer (ARP neighbour cache, ICMP echo, frame
//!   validation with drop counters).
//! * [`tcp`]: the sans-IO TCP engine.
//! * [`app`]: the built-in echo and sink services on top of it.
//! * [`command`]: the command queue from the control plane to each lcore (generic over the
//!   application: drain and capture of its own, the proxy's reload and admin commands).
//! * [`testnet`]: TCP engines joined in memory, for tests and benchmarks.
//! * [`capture`]: packet capture on a live lcore (copies to the control plane, bounded).
//! * [`impair`]: seeded drop/reorder/duplicate/corrupt/delay of a port's frames (testing).
//! * [`lb`]: backend load balancing (smooth weighted round robin, least connections, Maglev).
//! * [`rss`]: flow steering (software Toeplitz hash, RETA: which lcore owns a flow).
//! * [`offload`]: software GSO, a reference TSO model and hardware-offload preparation.
//! * [`dpdk`] (feature `dpdk`): the safe adapter over DPDK — the only module with `unsafe`.
//! * [`lcore`] (feature `dpdk`): the per-lcore loop that joins ports and stacks.
//! * [`runtime`] (feature `dpdk`): bring-up and teardown of a whole data plane, once (EAL,
//!   pool, ports, steering, lcores).
#![deny(unsafe_code)]

pub mod app;
pub mod capture;
pub mod command;
pub mod impair;
pub mod lb;
pub mod net;
pub mod offload;
pub mod rss;
pub mod tcp;
pub mod testnet;
pub mod time;
pub mod wire;

#[cfg(feature = "dpdk")]
#[allow(unsafe_code)]
pub mod dpdk;

#[cfg(feature = "dpdk")]
pub mod lcore;

#[cfg(feature = "dpdk")]
pub mod runtime;
