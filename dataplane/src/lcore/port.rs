//! One port as seen by one lcore: the queue pair it owns, the interface state, what the
//! port can do on transmit ([`TxCaps`], from the granted offloads and the driver's
//! [`crate::offload::Quirks`]), the frames on their way to its TX ring, and its
//! impairment.

use std::sync::Arc;

use crate::dpdk::{Mbuf, Port};
use crate::impair::ImpairConfig;
use crate::net::Interface;
use crate::offload::{quirks, TxCaps};
use crate::time::Instant;

use super::impair::PortImpair;
use super::stats::{LcoreStats, PortImpairCounters};
use super::tx::{TxQueue, TxRing};

/// One port as seen by one lcore.
pub struct PortQueue {
    /// The port (shared: bursts on distinct queues may run concurrently).
    pub port: Arc<Port>,
    /// The RX and TX queue index this lcore owns.
    pub queue: u16,
    /// Further RX queues this lcore polls on the port, as (device, queue): an AF_XDP port
    /// with more queues than lcores, where each queue is a device of its own. Its frames
    /// are this port's; everything this lcore sends goes out on `port`'s `queue`.
    pub(super) more_rx: Vec<MoreRx>,
    /// Link/network layer state for this port on this lcore.
    pub iface: Interface,
    /// Whether the device verifies RX checksums (else software does).
    pub rx_cksum_offload: bool,
    /// What the TX path may use on this port.
    pub caps: TxCaps,
    /// Frames on their way to the TX ring.
    pub(super) tx: TxQueue<Mbuf>,
    /// Seeded impairment of this port's frames (`[port.impair]`), off by default.
    pub(super) impair: Option<Box<PortImpair>>,
    /// TCP segments waiting for their next hop's ARP reply, oldest first (at most
    /// [`UNRESOLVED_MAX`]; see [`super::egress::release_unresolved`]).
    pub(super) unresolved: Vec<Unresolved>,
    /// Duplicate address detection verdicts already logged (`dad_preferred + dad_failed`).
    pub(super) dad_logged: u64,
}

/// A further RX queue of a port that an lcore polls ([`PortQueue::more_rx`]), with how
/// often it was found empty: each empty poll of an AF_XDP queue costs the PMD's busy-poll
/// system call, and at low load most of the extra queues are empty, so one found empty is
/// left out of the next passes, 1, then 3 (`(1 << empty) - 1`, at most
/// [`MORE_RX_MAX_SKIP`]), until it yields a frame. The home queue is polled every pass.
pub(super) struct MoreRx {
    port: Arc<Port>,
    queue: u16,
    skip: RxSkip,
}

/// When an extra RX queue is polled (see [`MoreRx`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RxSkip {
    /// Consecutive polls that found it empty (at most 2).
    empty: u8,
    /// Passes left before it is polled again.
    skip: u8,
}

impl RxSkip {
    /// Whether the queue is polled this pass (counts a pass sat out).
    fn due(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    /// The first burst of a pass took `frames`.
    fn polled(&mut self, frames: usize) {
        if frames > 0 {
            *self = RxSkip::default();
        } else {
            self.empty = (self.empty + 1).min(2);
            self.skip = ((1u8 << self.empty) - 1).min(MORE_RX_MAX_SKIP);
        }
    }

    /// Polled in the next pass whatever came before.
    fn wake(&mut self) {
        self.skip = 0;
    }
}

/// The most passes an empty extra RX queue sits out: a frame arriving on it waits at most
/// this many passes of the loop (microseconds under load; an idle lcore waits on every
/// queue's socket and polls them all when woken, see `PortQueue::rx_due`).
pub(super) const MORE_RX_MAX_SKIP: u8 = 3;

/// TCP segments one port queue holds while next hops are resolved. Linux holds packets
/// for a neighbour being resolved (`__neigh_event_send` queues on `arp_queue`, bounded by
/// `unres_qlen_bytes`, about 100 full frames) and sends them with the reply, so the first
/// SYN to a backend not seen yet is not lost to a 1 s retransmission.
pub const UNRESOLVED_MAX: usize = 64;
/// How long a segment waits for its next hop at most (ARP gives up after its retries,
/// [`crate::net::NeighborConfig`]; this bounds the wait whatever that says).
pub const UNRESOLVED_HOLD: crate::time::Duration = crate::time::Duration::from_secs(3);

/// A TCP segment waiting for its next hop.
pub(super) struct Unresolved {
    pub(super) src: std::net::IpAddr,
    pub(super) dst: std::net::IpAddr,
    pub(super) hop: std::net::IpAddr,
    pub(super) seg: crate::tcp::Segment<crate::dpdk::MbufPayload>,
    pub(super) since: Instant,
}

impl PortQueue {
    /// Wraps `port`'s queue pair `queue` with the interface state `iface`.
    pub fn new(port: Arc<Port>, queue: u16, iface: Interface) -> Self {
        let granted = port.granted();
        let caps = TxCaps::new(granted.tso, granted.ipv4_cksum, granted.tcp_cksum, granted.multi_seg, quirks(port.driver()));
        PortQueue {
            rx_cksum_offload: granted.rx_cksum,
            port,
            queue,
            more_rx: Vec::new(),
            iface,
            caps,
            tx: TxQueue::default(),
            impair: None,
            unresolved: Vec::with_capacity(UNRESOLVED_MAX),
            dad_logged: 0,
        }
    }

    /// Polls `more` as well for received frames (see [`PortQueue::more_rx`]).
    #[must_use]
    pub fn with_more_rx(mut self, more: Vec<(Arc<Port>, u16)>) -> Self {
        self.more_rx = more.into_iter().map(|(port, queue)| MoreRx { port, queue, skip: RxSkip::default() }).collect();
        self
    }

    /// Whether RX source `source` ([`PortQueue::rx_queue`]) is polled this pass: the home
    /// queue always, an extra one unless it sits out a pass after being found empty.
    pub(super) fn rx_due(&mut self, source: usize) -> bool {
        source.checked_sub(1).and_then(|i| self.more_rx.get_mut(i)).is_none_or(|m| m.skip.due())
    }

    /// What the first burst of this pass took from RX source `source`.
    pub(super) fn rx_polled(&mut self, source: usize, frames: usize) {
        if let Some(m) = source.checked_sub(1).and_then(|i| self.more_rx.get_mut(i)) {
            m.skip.polled(frames);
        }
    }

    /// Every extra RX queue is polled in the next pass (after an idle wait: whichever
    /// socket woke the lcore, its frames are taken at once).
    pub(super) fn rx_wake(&mut self) {
        for m in &mut self.more_rx {
            m.skip.wake();
        }
    }

    /// The RX queue number `source` of this port on this lcore: 0 is `port`'s `queue`,
    /// then [`PortQueue::more_rx`] in order.
    pub(super) fn rx_queue(&self, source: usize) -> Option<(&Port, u16)> {
        match source.checked_sub(1) {
            None => Some((&self.port, self.queue)),
            Some(i) => self.more_rx.get(i).map(|m| (&*m.port, m.queue)),
        }
    }

    /// Every RX queue this lcore polls on the port (see [`PortQueue::rx_queue`]).
    pub(super) fn rx_queues(&self) -> impl Iterator<Item = (&Port, u16)> + '_ {
        (0..=self.more_rx.len()).filter_map(|s| self.rx_queue(s))
    }

    /// Impairs this port's frames on this lcore as `cfg` says (nothing when every
    /// probability and the delay are zero). `lcore` and `port_index` vary the seed so
    /// that each queue draws its own stream.
    #[must_use]
    pub fn with_impairment(mut self, cfg: &ImpairConfig, lcore: u32, port_index: usize) -> Self {
        self.impair = PortImpair::new(cfg, lcore, port_index);
        self
    }

    /// What the impairment layer did so far (zero without impairment).
    pub fn impair_counters(&self) -> PortImpairCounters {
        self.impair.as_ref().map(|i| i.counters()).unwrap_or_default()
    }

    /// Sends what was queued this pass (the interface's own frames too: ARP, ICMP) after
    /// what waited from earlier passes; counts what was sent, held and dropped. Frames of
    /// this pass are offered to `tap` (capture, when on) as they go to the ring. Returns
    /// the frames sent.
    pub(super) fn flush(
        &mut self,
        pool: &crate::dpdk::Mempool,
        stats: &LcoreStats,
        now: Instant,
        port_index: usize,
        tap: Option<&mut crate::capture::Tap>,
    ) -> usize {
        let pending = self.tx.pending_mut();
        self.iface.poll_transmit(now, &mut |frame: &[u8]| match Mbuf::from_slice(pool, frame) {
            Ok(m) => pending.push(m),
            Err(_) => LcoreStats::add(&stats.tx_dropped_nombuf, 1),
        });
        if let Some(imp) = self.impair.as_mut() {
            // Impairment sits between the stack and the ring.
            imp.transmit(now, self.tx.pending_mut());
        }
        if let Some(t) = tap.filter(|t| t.wants(port_index, self.queue)) {
            let wall = crate::capture::unix_nanos();
            let origin =
                crate::capture::Origin { port: port_index, queue: self.queue, direction: crate::capture::Direction::Tx };
            for m in self.tx.pending_mut().iter() {
                t.offer(origin, now, wall, m.len(), m.segments());
            }
        }
        let held_before = self.tx.held();
        let mut ring = PortRing { port: &self.port, queue: self.queue };
        let r = self.tx.flush(&mut ring, now);
        LcoreStats::add(&stats.tx_frames, r.sent as u64);
        LcoreStats::add(&stats.tx_dropped_full, r.dropped_full as u64);
        LcoreStats::add(&stats.tx_dropped_refused, r.dropped_refused as u64);
        if r.dropped_refused > 1 {
            tracing::warn!(port = self.port.id(), queue = self.queue, dropped = r.dropped_refused, "TX ring took nothing for 20 ms: waiting frames dropped");
        }
        let held_after = self.tx.held();
        if held_after != held_before {
            let level = stats.tx_held_frames.load(std::sync::atomic::Ordering::Relaxed);
            let level = (level + held_after as u64).saturating_sub(held_before as u64);
            stats.tx_held_frames.store(level, std::sync::atomic::Ordering::Relaxed);
        }
        r.sent
    }

    /// Drops the frames waiting for the ring and the impairment layer's (at shutdown,
    /// before the pool is counted); returns the impairment counters.
    pub(super) fn release(&mut self) -> Option<PortImpairCounters> {
        self.tx.clear();
        self.unresolved.clear();
        self.impair.take().map(|i| i.counters())
    }

    /// When the impairment layer next releases a held frame.
    pub(super) fn next_impaired_delivery(&self) -> Option<Instant> {
        self.impair.as_ref().and_then(|i| i.next_delivery())
    }
}

/// A port's TX queue as a [`TxRing`]: `rte_eth_tx_prepare` + `rte_eth_tx_burst`.
struct PortRing<'a> {
    port: &'a Port,
    queue: u16,
}

impl TxRing<Mbuf> for PortRing<'_> {
    fn send(&mut self, frames: &mut Vec<Mbuf>) -> usize {
        self.port.tx_prepare_and_burst(self.queue, frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The passes (of `passes`) in which a queue is polled, given what each poll finds.
    fn polled_passes(passes: usize, finds: impl Fn(usize) -> usize) -> Vec<usize> {
        let mut s = RxSkip::default();
        let mut out = Vec::new();
        for pass in 0..passes {
            if s.due() {
                out.push(pass);
                s.polled(finds(pass));
            }
        }
        out
    }

    #[test]
    fn an_empty_extra_queue_sits_out_one_then_three_passes_and_a_busy_one_none() {
        assert_eq!(polled_passes(6, |_| 5), vec![0, 1, 2, 3, 4, 5], "frames every time: every pass");
        assert_eq!(polled_passes(14, |_| 0), vec![0, 2, 6, 10], "empty: 1 pass out, then 3 (the most)");
        // Frames again: polled every pass from the next.
        assert_eq!(polled_passes(10, |p| usize::from(p >= 6)), vec![0, 2, 6, 7, 8, 9]);
        let mut s = RxSkip::default();
        s.polled(0);
        s.polled(0);
        s.wake();
        assert!(s.due(), "after an idle wait every queue is polled at once");
    }
}
