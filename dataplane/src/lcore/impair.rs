//! The impairment layer ([`crate::impair`]) fitted to a port queue: it sits between the
//! ring and the network layer on the way in, and between the stack and the ring on the way
//! out, holding mbufs (a duplicate takes another reference).

use crate::dpdk::{Mbuf, TxOffload};
use crate::impair::{corrupt_ipv4_payload, direction_seed, ImpairConfig, Impairer};
use crate::time::Instant;

use super::stats::PortImpairCounters;

/// An mbuf as the impairment layer holds it: duplicating takes another reference.
pub(super) struct Frame(pub(super) Mbuf);

impl Clone for Frame {
    fn clone(&self) -> Self {
        Frame(self.0.clone_ref())
    }
}

/// Both directions of one port's impairment on one lcore.
pub(super) struct PortImpair {
    rx: Impairer<Frame>,
    tx: Impairer<Frame>,
}

impl PortImpair {
    /// Impairment as `cfg` says, or `None` when every probability and the delay are zero.
    /// `lcore` and `port_index` vary the seed so that each queue draws its own stream.
    pub(super) fn new(cfg: &ImpairConfig, lcore: u32, port_index: usize) -> Option<Box<PortImpair>> {
        (!cfg.is_passthrough()).then(|| {
            Box::new(PortImpair {
                rx: Impairer::new(cfg.rx, direction_seed(cfg.seed, lcore, port_index, false)),
                tx: Impairer::new(cfg.tx, direction_seed(cfg.seed, lcore, port_index, true)),
            })
        })
    }

    pub(super) fn counters(&self) -> PortImpairCounters {
        PortImpairCounters { rx: self.rx.counters(), tx: self.tx.counters() }
    }

    /// Takes the received frames in `frames` and appends to `due` those due now, with
    /// whether they were corrupted.
    pub(super) fn receive(&mut self, now: Instant, frames: &mut Vec<Mbuf>, due: &mut Vec<(Mbuf, bool)>) {
        for m in frames.drain(..) {
            self.rx.push(now, Frame(m), corrupt_rx);
        }
        while let Some(d) = self.rx.poll(now) {
            due.push((d.frame.0, d.corrupted));
        }
    }

    /// Takes the frames about to be sent in `frames` and puts back those due now.
    pub(super) fn transmit(&mut self, now: Instant, frames: &mut Vec<Mbuf>) {
        for m in frames.drain(..) {
            self.tx.push(now, Frame(m), corrupt_tx);
        }
        while let Some(d) = self.tx.poll(now) {
            frames.push(d.frame.0);
        }
    }

    /// When the next held frame is due, in either direction.
    pub(super) fn next_delivery(&self) -> Option<Instant> {
        [self.rx.next_delivery(), self.tx.next_delivery()].into_iter().flatten().min()
    }
}

/// Corrupts a received frame: its first segment is ours alone straight off the ring.
fn corrupt_rx(f: &mut Frame, bits: u64) -> bool {
    f.0.data_mut().is_some_and(|d| corrupt_ipv4_payload(d, bits))
}

/// Corrupts a frame about to be sent, so that the peer's checksum validation rejects it:
/// a byte of the (header) mbuf's IPv4 payload is flipped and checksum offload is turned
/// off, as the device would otherwise checksum the flipped byte in; the fields then still
/// hold what offload wants (IPv4: 0, TCP: the pseudo-header sum), which is wrong. A TSO
/// super-frame is left alone (the device rewrites every checksum of its segments).
fn corrupt_tx(f: &mut Frame, bits: u64) -> bool {
    let off = f.0.tx_offload();
    if off.tso {
        return false;
    }
    if !f.0.data_mut().is_some_and(|d| corrupt_ipv4_payload(d, bits)) {
        return false;
    }
    if off.ip_cksum || off.tcp_cksum || off.udp_cksum {
        let plain = TxOffload { ip_cksum: false, tcp_cksum: false, udp_cksum: false, ..off };
        // Only fails on a shared head, which a fresh header mbuf is not; the frame is
        // corrupted either way.
        let _ = f.0.set_tx_offload(plain);
    }
    true
}
