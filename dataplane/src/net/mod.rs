//! The sans-IO link and network layer of one port.
//!
//! * [`interface`]: frame validation with per-reason drop counters, ARP replies, ICMP echo,
//!   hand-off of TCP segments, framing of outgoing IPv4 packets; IPv6 neighbour
//!   discovery and ICMPv6 echo when enabled.
//! * [`egress`]: Ethernet + IPv4 + TCP headers of outgoing segments and their checksum fields.
//! * [`neighbor`]: the bounded neighbour cache (ARP, and IPv6 neighbour discovery) with
//!   retries, expiry and packet queues.
//! * [`dad`]: duplicate address detection of our IPv6 addresses.
//! * [`mld`]: when the interface reports its multicast groups (MLDv2) to snooping
//!   switches and routers.
//! * [`routers`]: the default router and on-link prefix lists learnt from router
//!   advertisements, and router solicitations.
//! * [`counters`]: the counters and the [`DropReason`] enum.
//!
//! Nothing here reads a clock or touches DPDK: the caller passes `now` and moves frames.

pub mod counters;
pub mod dad;
pub mod egress;
pub mod interface;
pub mod mld;
pub mod neighbor;
pub mod routers;

pub use counters::{DropReason, NetCounters};
pub use interface::{Input, Interface, InterfaceConfig, Ipv6Config, LinkResult, RxChecksum};
pub use neighbor::{NeighborCache, NeighborConfig};
