//! Per-lcore figures: counters the control plane reads at any time (relaxed atomics
//! written by the owning lcore only), the published copies of the engine's and
//! interfaces' counters, and the memory-pressure thresholds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::app::proxy::{Histogram, ProxyStats};
use crate::app::AppCounters;
use crate::impair::ImpairCounters;
use crate::net::NetCounters;
use crate::tcp::Counters;
use crate::time::Duration;

/// Per-lcore figures the control plane may read at any time (relaxed loads).
#[derive(Debug, Default)]
pub struct LcoreStats {
    /// Frames received on this lcore's queues.
    pub rx_frames: AtomicU64,
    /// Frames handed to the TX queues.
    pub tx_frames: AtomicU64,
    /// Frames dropped because the TX queue stayed full (beyond the per-port backlog of
    /// [`super::tx::TX_BACKLOG_MAX`] frames kept for the next pass).
    pub tx_dropped_full: AtomicU64,
    /// Frames dropped because the TX ring took nothing for [`super::tx::TX_STALL_LIMIT`] with them at
    /// its head (a frame the PMD refuses, or a ring that stays full).
    pub tx_dropped_refused: AtomicU64,
    /// Frames that could not be sent because no mbuf was free.
    pub tx_dropped_nombuf: AtomicU64,
    /// Frames waiting in this lcore's TX backlogs for a ring to take them (a level).
    pub tx_held_frames: AtomicU64,
    /// TSC cycles spent in iterations that did work.
    pub busy_cycles: AtomicU64,
    /// TSC cycles since the loop started.
    pub total_cycles: AtomicU64,
    /// Loop iterations.
    pub iterations: AtomicU64,
    /// TCP segments handed to the engine.
    pub tcp_rx_segments: AtomicU64,
    /// Received TCP segments whose range lay outside the frame, or that could not be
    /// turned into a payload (no mbuf for a scattered frame's copy).
    pub tcp_rx_dropped: AtomicU64,
    /// TCP segments the engine emitted (super-segments count once).
    pub tcp_tx_segments: AtomicU64,
    /// TCP segments dropped because their next hop could not be resolved (resolution
    /// failed, took too long, or too many segments waited; TCP retransmits).
    pub tcp_tx_unresolved: AtomicU64,
    /// TCP segments held until their next hop's ARP reply (then sent).
    pub tcp_tx_awaiting_arp: AtomicU64,
    /// TCP segments dropped because no port has their source address.
    pub tcp_tx_no_route: AtomicU64,
    /// TCP segments dropped because their source is an IPv6 address of ours not usable
    /// (yet): under duplicate address detection, or found duplicate (RFC 4862 §5.4).
    pub tcp_tx_unusable_source: AtomicU64,
    /// TCP segments whose checksum was computed in software because the device would get
    /// it wrong (a chain with an odd-length piece on `net_tap`; see `PortQueue`).
    pub tx_sw_cksum_odd_pieces: AtomicU64,
    /// TCP segments that could not be built (no mbuf, chain or offload failure).
    pub tcp_tx_build_failed: AtomicU64,
    /// Super-segments handed to the NIC for TSO.
    pub tso_segments: AtomicU64,
    /// Frames produced by software GSO.
    pub gso_frames: AtomicU64,
    /// Received frames the impairment layer dropped (all ports; see [`crate::impair`]).
    pub impair_rx_dropped: AtomicU64,
    /// Received frames the impairment layer held back to be overtaken.
    pub impair_rx_reordered: AtomicU64,
    /// Received frames the impairment layer delivered twice.
    pub impair_rx_duplicated: AtomicU64,
    /// Received frames the impairment layer corrupted.
    pub impair_rx_corrupted: AtomicU64,
    /// Transmitted frames the impairment layer dropped.
    pub impair_tx_dropped: AtomicU64,
    /// Transmitted frames the impairment layer held back to be overtaken.
    pub impair_tx_reordered: AtomicU64,
    /// Transmitted frames the impairment layer sent twice.
    pub impair_tx_duplicated: AtomicU64,
    /// Transmitted frames the impairment layer corrupted.
    pub impair_tx_corrupted: AtomicU64,
    /// Times the TCP engine entered or left memory pressure (free mbufs below
    /// [`PRESSURE_ENTER_DIVISOR`]th of the pool, above [`PRESSURE_LEAVE_DIVISOR`]th).
    pub memory_pressure_changes: AtomicU64,
    /// 1 while the engine is under memory pressure, else 0.
    pub memory_pressure: AtomicU64,
    /// Received TCP segments whose data the engine dropped because fewer than
    /// 1/[`RESERVE_DIVISOR`] of the pool's mbufs were free (see
    /// `Engine::set_rx_shedding`): out-of-order text (`TCPOFODrop`) and text queuing
    /// behind unread data (`TCPRcvQDrop`). Text that advances a connection whose reader
    /// keeps up, hole-filling text included, is still taken; the reserve keeps ARP,
    /// ICMP and ACKs flowing.
    pub tcp_rx_shed: AtomicU64,
    /// Received TCP frames of a flow another lcore owns, handed to it ([`super::steer`]).
    pub redirected_frames: AtomicU64,
    /// Of those, frames to one of our ephemeral ports: return traffic of connections an
    /// lcore opened (zero where the device steers by RSS).
    pub redirected_active_open_frames: AtomicU64,
    /// Frames other lcores handed to this one.
    pub redirect_received_frames: AtomicU64,
    /// Frames (and ARP copies) that could not be handed over: the owner's inbox was full
    /// or no mbuf was free for an ARP copy.
    pub redirect_dropped_frames: AtomicU64,
    /// Copies of ARP packets addressed to us handed to the other lcores' neighbour tables.
    pub arp_shared_frames: AtomicU64,
    /// Times the idle lcore slept a fixed nap (no RX interrupts, or a timer due sooner
    /// than an interrupt wait).
    pub idle_naps: AtomicU64,
    /// Times the idle lcore blocked until an RX interrupt, a wake-up or a timeout.
    pub idle_interrupt_waits: AtomicU64,
    /// Of those, the waits that ended by an event (a frame or a wake-up) before the timeout.
    pub idle_interrupt_wakeups: AtomicU64,
    /// Copies of the engine's and interfaces' counters, refreshed by the lcore every
    /// [`PUBLISH_INTERVAL`] for the control plane (metrics). The lcore only ever
    /// `try_lock`s it, so a reader can delay a refresh but never stall the loop.
    pub published: Mutex<PublishedCounters>,
}

/// Memory pressure starts when fewer than 1/this of the pool's mbufs are free...
pub const PRESSURE_ENTER_DIVISOR: u32 = 8;
/// ...and ends when more than 1/this are free again (hysteresis).
pub const PRESSURE_LEAVE_DIVISOR: u32 = 4;
/// Below 1/this of the pool free, received data segments are shed (see
/// [`LcoreStats::tcp_rx_shed`]).
pub const RESERVE_DIVISOR: u32 = 16;
/// The connections of all lcores together hold at most this many sixteenths of the
/// pool's buffers (Linux `tcp_mem[2]`); the rest is for the RX rings, frames in flight,
/// headers and control segments, and the reserve.
pub const MEMORY_LIMIT_SIXTEENTHS: usize = 12;

/// The buffer bytes the connections of all lcores may hold together, for a pool of
/// `size` mbufs of `data_room` bytes.
pub fn memory_limit(size: u32, data_room: u16) -> usize {
    (size as usize).saturating_mul(usize::from(data_room)) / 16 * MEMORY_LIMIT_SIXTEENTHS
}

/// How often an lcore looks at the pool's free mbufs.
pub(super) const PRESSURE_CHECK_INTERVAL: Duration = Duration::from_millis(1);

/// Whether the engine should be under memory pressure with `available` of `size` mbufs
/// free and the connections of all lcores holding `held` of the `limit` buffer bytes
/// ([`memory_limit`]), given whether it is now (`pressed`). Either signal enters it: the
/// pool running low whoever holds the mbufs, or the connections holding three quarters
/// of their limit (Linux `tcp_mem[1]` is two thirds of `tcp_mem[2]` by default); both must
/// clear to leave it (hysteresis: more than 1/4 of the pool free, less than half of the
/// limit held).
pub fn memory_pressure_wanted(pressed: bool, available: u32, size: u32, held: usize, limit: usize) -> bool {
    if pressed {
        available <= size / PRESSURE_LEAVE_DIVISOR || held >= limit / 2
    } else {
        available < size / PRESSURE_ENTER_DIVISOR || held >= limit / 4 * 3
    }
}

/// How often an lcore copies its counters into [`LcoreStats::published`].
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// Counters an lcore keeps in plain fields, as last published.
#[derive(Debug, Clone, Default)]
pub struct PublishedCounters {
    /// Link/network counters per port, in the order the ports were given.
    pub net: Vec<NetCounters>,
    /// TCP engine counters.
    pub tcp: Counters,
    /// Connections in the engine.
    pub tcp_connections: usize,
    /// Entries in the engine's TIME-WAIT table.
    pub tcp_time_wait: usize,
    /// Buffer bytes the engine's connections pin (`Engine::buffer_bytes`).
    pub tcp_buffer_bytes: usize,
    /// Counters of the echo and sink services.
    pub apps: AppCounters,
    /// Proxy counters per listener and server.
    pub proxy: ProxyStats,
    /// Impairment counters per port, in the order the ports were given (zero for a
    /// port without impairment).
    pub impair: Vec<PortImpairCounters>,
    /// How long the lcore's busy passes took.
    pub busy_passes: BusyPasses,
}

/// The wall-clock durations of an lcore's loop passes that did work, preemption included:
/// how long its RX rings went unpolled while it worked or waited for its CPU
/// (`strait_lcore_busy_pass_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPasses(pub Histogram);

impl Default for BusyPasses {
    fn default() -> Self {
        BusyPasses(Histogram::busy_pass())
    }
}

/// What the impairment layer did to one port's frames on one lcore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortImpairCounters {
    /// Received frames.
    pub rx: ImpairCounters,
    /// Transmitted frames.
    pub tx: ImpairCounters,
}

impl LcoreStats {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        // Only the owning lcore writes: a load + store is enough and avoids a locked RMW.
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// `(name, value)` of every frame and segment counter (relaxed loads).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        [
            ("rx_frames", &self.rx_frames),
            ("tx_frames", &self.tx_frames),
            ("tx_dropped_full", &self.tx_dropped_full),
            ("tx_dropped_nombuf", &self.tx_dropped_nombuf),
            ("tx_dropped_refused", &self.tx_dropped_refused),
            ("tx_held_frames", &self.tx_held_frames),
            ("tcp_rx_segments", &self.tcp_rx_segments),
            ("tcp_rx_dropped", &self.tcp_rx_dropped),
            ("tcp_tx_segments", &self.tcp_tx_segments),
            ("tcp_tx_unresolved", &self.tcp_tx_unresolved),
            ("tcp_tx_awaiting_arp", &self.tcp_tx_awaiting_arp),
            ("tcp_tx_no_route", &self.tcp_tx_no_route),
            ("tcp_tx_unusable_source", &self.tcp_tx_unusable_source),
            ("tx_sw_cksum_odd_pieces", &self.tx_sw_cksum_odd_pieces),
            ("tcp_tx_build_failed", &self.tcp_tx_build_failed),
            ("tso_segments", &self.tso_segments),
            ("gso_frames", &self.gso_frames),
            ("impair_rx_dropped", &self.impair_rx_dropped),
            ("impair_rx_reordered", &self.impair_rx_reordered),
            ("impair_rx_duplicated", &self.impair_rx_duplicated),
            ("impair_rx_corrupted", &self.impair_rx_corrupted),
            ("impair_tx_dropped", &self.impair_tx_dropped),
            ("impair_tx_reordered", &self.impair_tx_reordered),
            ("impair_tx_duplicated", &self.impair_tx_duplicated),
            ("impair_tx_corrupted", &self.impair_tx_corrupted),
            ("memory_pressure_changes", &self.memory_pressure_changes),
            ("memory_pressure", &self.memory_pressure),
            ("tcp_rx_shed", &self.tcp_rx_shed),
            ("redirected_frames", &self.redirected_frames),
            ("redirected_active_open_frames", &self.redirected_active_open_frames),
            ("redirect_received_frames", &self.redirect_received_frames),
            ("redirect_dropped_frames", &self.redirect_dropped_frames),
            ("arp_shared_frames", &self.arp_shared_frames),
            ("idle_naps", &self.idle_naps),
            ("idle_interrupt_waits", &self.idle_interrupt_waits),
            ("idle_interrupt_wakeups", &self.idle_interrupt_wakeups),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.load(Ordering::Relaxed)))
    }

    /// Sets the impairment atomics to the sums of `ports` (the counters are cumulative).
    pub(super) fn store_impair(&self, ports: &[PortImpairCounters]) {
        let sum = |f: fn(&PortImpairCounters) -> u64| ports.iter().map(f).fold(0u64, u64::wrapping_add);
        let set = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        set(&self.impair_rx_dropped, sum(|c| c.rx.dropped + c.rx.overflow));
        set(&self.impair_rx_reordered, sum(|c| c.rx.reordered));
        set(&self.impair_rx_duplicated, sum(|c| c.rx.duplicated));
        set(&self.impair_rx_corrupted, sum(|c| c.rx.corrupted));
        set(&self.impair_tx_dropped, sum(|c| c.tx.dropped + c.tx.overflow));
        set(&self.impair_tx_reordered, sum(|c| c.tx.reordered));
        set(&self.impair_tx_duplicated, sum(|c| c.tx.duplicated));
        set(&self.impair_tx_corrupted, sum(|c| c.tx.corrupted));
    }

    /// Busy cycles / total cycles, between 0 and 1.
    pub fn busy_ratio(&self) -> f64 {
        let total = self.total_cycles.load(Ordering::Relaxed);
        if total == 0 {
            return 0.0;
        }
        self.busy_cycles.load(Ordering::Relaxed) as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_iter_names_every_counter() {
        let s = LcoreStats::default();
        LcoreStats::add(&s.gso_frames, 3);
        LcoreStats::add(&s.tcp_tx_unresolved, 1);
        let v: Vec<(&str, u64)> = s.iter().collect();
        assert_eq!(v.len(), 36);
        assert!(v.contains(&("gso_frames", 3)) && v.contains(&("tcp_tx_unresolved", 1)));
        assert_eq!(v.iter().filter(|(_, n)| *n != 0).count(), 2);
    }

    #[test]
    fn impairment_atomics_are_the_sums_over_ports() {
        let s = LcoreStats::default();
        let port = |dropped, overflow, corrupted| PortImpairCounters {
            rx: ImpairCounters { frames: 100, dropped, overflow, corrupted, ..ImpairCounters::default() },
            tx: ImpairCounters { frames: 50, reordered: dropped, duplicated: corrupted, ..ImpairCounters::default() },
        };
        s.store_impair(&[port(3, 1, 2), port(4, 0, 5)]);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(get(&s.impair_rx_dropped), 8, "drops include overflow");
        assert_eq!(get(&s.impair_rx_corrupted), 7);
        assert_eq!(get(&s.impair_tx_reordered), 7);
        assert_eq!(get(&s.impair_tx_duplicated), 7);
        assert_eq!(get(&s.impair_tx_dropped), 0);
        // Cumulative counters are stored, not added: publishing twice does not double.
        s.store_impair(&[port(3, 1, 2), port(4, 0, 5)]);
        assert_eq!(get(&s.impair_rx_dropped), 8);
    }

    #[test]
    fn memory_pressure_has_hysteresis() {
        // 1024 mbufs: enter below 128 free, leave above 256 free.
        let free = |pressed, available, size| memory_pressure_wanted(pressed, available, size, 0, 1000);
        assert!(!free(false, 128, 1024));
        assert!(free(false, 127, 1024));
        assert!(free(true, 200, 1024), "still pressed between the marks");
        assert!(free(true, 256, 1024));
        assert!(!free(true, 257, 1024));
        assert!(!free(false, 0, 0), "an empty pool of size 0 is never low");
        // The connections' holding against their limit, with the pool plentiful.
        assert!(!memory_pressure_wanted(false, 1000, 1024, 749, 1000));
        assert!(memory_pressure_wanted(false, 1000, 1024, 750, 1000));
        assert!(memory_pressure_wanted(true, 1000, 1024, 500, 1000), "still pressed above half");
        assert!(!memory_pressure_wanted(true, 1000, 1024, 499, 1000));
        assert!(memory_pressure_wanted(true, 200, 1024, 0, 1000), "the pool alone keeps it");
        assert_eq!(memory_limit(16, 2176), 12 * 2176);
    }

    #[test]
    fn busy_ratio_is_busy_over_total() {
        let s = LcoreStats::default();
        assert_eq!(s.busy_ratio(), 0.0);
        LcoreStats::add(&s.total_cycles, 100);
        LcoreStats::add(&s.busy_cycles, 25);
        assert!((s.busy_ratio() - 0.25).abs() < 1e-9);
    }
}
