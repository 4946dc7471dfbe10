//! Safe adapter over DPDK — the only module of `dataplane` that contains `unsafe`.
//!
//! * [`Eal`]: process-wide EAL initialisation (once), lcore launch/wait, TSC helpers.
//! * [`Mempool`]: a shared, thread-safe pool of packet buffers.
//! * [`Mbuf`]: an owned packet buffer (chain), freed on drop, with reference-counted
//!   sharing for retransmission queues ([`Mbuf::clone_ref`]).
//! * [`MbufPayload`]: the TCP engine's zero-copy payload over mbufs.
//! * [`Port`]: an ethdev port with negotiated offloads, RX/TX bursts, statistics.
//! * [`intr`]: blocking until an RX queue has a frame (RX interrupts) while idle.
//!
//! # Lifetime and teardown
//!
//! DPDK memory (pools, mbufs, device rings) lives in EAL-managed memory that
//! `rte_eal_cleanup` unmaps. To keep that sound from safe code:
//! * every [`Mempool`] and [`Port`] counts as a *live object*; dropping [`Eal`] while
//!   any is alive skips `rte_eal_cleanup` (logged) instead of unmapping memory in use;
//! * a pool is freed only when its last handle drops *and* none of its mbufs is out
//!   ([`Mempool::in_use`] is 0); otherwise it is leaked (logged) and keeps the EAL from
//!   being cleaned up. A [`Port`] holds a handle to its RX pool.
//!
//! The remaining obligation on the caller is to join the threads that hold mbufs
//! (e.g. [`Eal::wait_all`]) before dropping the last pool handle.

mod eal;
mod error;
pub mod intr;
mod mbuf;
mod mempool;
mod payload;
mod port;
mod port_setup;

pub use eal::{lcore_id, tsc, tsc_hz, Eal, LCORE_ID_ANY};
pub use error::DpdkError;
pub use mbuf::{ipv4_phdr_cksum, ptype, CksumStatus, Mbuf, Segments, TxOffload};
pub use mempool::{Holding, Mempool, MemoryLayout, PoolAccount};
pub use payload::{copy_stats, count_copy, CopyStats, MbufPayload, PayloadError};
pub use port::{Offloads, Port, PortId, PortSettings, PortStats};
