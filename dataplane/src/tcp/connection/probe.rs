//! Loss probes (split from `loss`): RFC 8985 §7 tail loss probes (Linux
//! `tcp_schedule_loss_probe`, `tcp_send_loss_probe`, `tcp_process_tlp_ack`), and the
//! ACK-stall probe, a deviation from them (see `probe_kind`).

use super::loss::{CaState, Cause};
use super::send::seq_dist;
use super::{Connection, Segment, State};
use crate::tcp::payload::Payload;
use crate::tcp::seq::SeqNum;
use crate::tcp::shared::Shared;
use crate::time::{Duration, Instant};

/// RFC 8985 §7.2 `WCDelAckT`: the worst-case delayed-ACK time added to the probe timeout
/// when a single segment is in flight.
/// What Linux adds to `2*SRTT` when more than one segment is in flight
/// (`tcp_schedule_loss_probe`: `TCP_TIMEOUT_MIN`, 2 jiffies = 2 ms at HZ 1000). At sub-ms
/// RTTs a bare `2*SRTT` is shorter than a receiver's ACK batching and the lcore's own
/// polling gaps, and probes go out for tails that were delivered: thousands per minute on
/// a lossless AF_XDP path before this floor.
const TLP_TIMEOUT_MIN: Duration = Duration::from_millis(2);

/// ACK-stall probes per stall (no ACK advancing SND.UNA or SACKing new data in between).
/// Measured with one (issue 13, 5 % loss both ways, 3 x 30 MB): 99 probes, 10 RTOs after
/// an unanswered probe, 9 of them spurious: the probe had filled the hole, and the
/// receiver, compressing SACKs, had not acknowledged it; the RTO's retransmission, a
/// duplicate, got the ACK at once. A second probe is that duplicate, sooner. With two
/// (8 x 30 MB): 5 RTOs, all spurious, each after both probes went unanswered; with four
/// (at 1, 3, 7 and 15 PTOs, ~4 to ~64 ms at sub-ms RTTs, each only if due before the RTO):
/// 1 RTO, not spurious, in 8 x 30 MB.
const MAX_STALL_PROBES: u8 = 4;

/// The two probes the probe timer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    /// RFC 8985 §7 tail loss probe.
    Tail,
    /// Strait's ACK-stall probe (see [`Connection::probe_kind`]).
    Stall,
}

impl<P: Payload> Connection<P> {
    /// Whether the D-SACK `[l, r)` reports the outstanding tail loss probe (Linux
    /// `tcp_dsack_seen` setting `FLAG_DSACK_TLP`: at most one MSS, ending where the probe
    /// ended).
    pub(super) fn dsack_is_for_probe(&self, l: SeqNum, r: SeqNum, mss: u32) -> bool {
        seq_dist(l, r) <= mss && self.snd.tlp.is_some_and(|(high, _)| high == r)
    }

    /// Which probe the probe timer would send now, if any.
    ///
    /// - [`ProbeKind::Tail`], RFC 8985 §7.2 (Linux `tcp_schedule_loss_probe`): in the open
    ///   state with SACK and no probe outstanding.
    /// - [`ProbeKind::Stall`], Strait's deviation: where RFC 8985 and Linux send no probe
    ///   (fast recovery, after an RTO, or with a tail probe already out), one probe per
    ///   stall of the ACK clock. Measured (issue 13, `proxy/tests/loss_goodput.rs`, 5 %
    ///   loss both ways, sub-ms RTT, kernel curl receiver): 57 of 66 RTOs fired in fast
    ///   recovery and 5 with a tail probe out, every one with a flight sent less than 0.3 ms
    ///   before and no ACK for 200 ms; 54 of the 66 were spurious (the data had arrived).
    ///   The receiver had stopped ACKing: after three duplicate ACKs Linux compresses SACKs
    ///   (`__tcp_ack_snd_check`, `tcp_comp_sack_nr`; with it set to 0 on the receiver the
    ///   RTOs fall to 14), and a lost last ACK does the same. What made it answer was the
    ///   RTO's retransmission of the first unacknowledged segment: a duplicate that Linux
    ///   acknowledges at once (`tcp_send_dupack`, with a D-SACK), or the repair of a real
    ///   loss. At sub-ms RTTs the 200 ms RTO floor is hundreds of round trips, so the
    ///   stall probe sends that segment after `2*SRTT + TCP_TIMEOUT_MIN` instead, and again
    ///   after twice the previous wait while unanswered, up to [`MAX_STALL_PROBES`].
    fn probe_kind(&self) -> Option<ProbeKind> {
        let base = self.cfg.tlp && self.sack_ok && self.snd.packets_out > 0 && self.state.is_synchronized() && self.state != State::TimeWait;
        if !base {
            None
        } else if self.snd.ca == CaState::Open && self.snd.tlp.is_none() {
            Some(ProbeKind::Tail)
        } else if self.snd.packets_out == 1 {
            // One segment out, its tail probe (or the RTO's retransmission) unanswered: a
            // request/response exchange whose receiver is busy or holds its ACK, far more
            // often than a loss the RTO would not repair as well. Linux waits for the
            // (next) RTO, and so does Strait here:
            // with 10 000 keep-alive clients (deploy/bench/run.sh conc10000, AF_XDP) the
            // probes after the probe came to 94 k stall probes beside 63 k TLPs, extra
            // frames for receivers that were only slow.
            None
        } else if self.snd.ca != CaState::Disorder && self.snd.stall_probes < MAX_STALL_PROBES {
            // Not in disorder: there RACK's reordering timer marks the head lost (RFC 8985
            // §6.3) if the SACKs that put the connection there show it is.
            Some(ProbeKind::Stall)
        } else {
            None
        }
    }

    /// RFC 8985 §7.2: arms the probe timeout (PTO): `2*SRTT`, plus `WCDelAckT` with a
    /// single segment in flight, else Linux's `TCP_TIMEOUT_MIN` (`tcp_schedule_loss_probe`);
    /// a tail probe no later than the RTO (then in its place), a stall probe only before it. An ACK-stall probe ([`ProbeKind::Stall`]) always adds
    /// `TCP_TIMEOUT_MIN`: where it applies the receiver holds out-of-order data or a
    /// duplicate, which Linux acknowledges without delay.
    /// `restart`: re-arm even if armed (an ACK, new data); else only arm an idle timer (a
    /// retransmission, for the stall probe).
    pub(super) fn schedule_tlp(&mut self, now: Instant, restart: bool) {
        if !restart && self.timers.tlp.is_some() {
            return;
        }
        self.timers.tlp = None;
        let Some(kind) = self.probe_kind() else { return };
        // In integer nanoseconds: this runs for every segment sent and every ACK.
        let Some(srtt) = self.rtt.srtt_nanos() else { return };
        // One segment out: the receiver may hold its ACK for a delayed-ACK timeout (RFC 8985
        // `WCDelAckT`; Linux adds `tcp_rto_min`, the same 200 ms unless configured lower).
        let single = kind == ProbeKind::Tail && self.snd.packets_out == 1;
        let floor = if single { self.cfg.min_rto } else { TLP_TIMEOUT_MIN };
        let mut pto = srtt.saturating_mul(2).saturating_add(u64::try_from(floor.as_nanos()).unwrap_or(u64::MAX));
        if kind == ProbeKind::Stall {
            // Backed off per probe of the same stall, as the RTO is (RFC 6298 §5.5).
            pto = pto.saturating_mul(1 << self.snd.stall_probes.min(4));
        }
        let at = Instant::from_nanos(now.as_nanos().saturating_add(pto));
        match (kind, self.timers.rtx) {
            // Linux `tcp_schedule_loss_probe`: "If the RTO formula yields an earlier time,
            // then use that time": a tail probe due after the RTO goes at the RTO's time
            // instead, and replaces that timeout (see `handle_timeout`). With one segment
            // out (PTO = 2*SRTT + 200 ms at sub-ms RTTs) the first RTO becomes a probe.
            (ProbeKind::Tail, Some(rto)) => self.timers.tlp = Some(at.min(rto)),
            (ProbeKind::Stall, Some(rto)) if at >= rto => {}
            _ => self.timers.tlp = Some(at),
        }
    }

    /// The probe timeout fired (RFC 8985 §7.3): the probe goes out with the next
    /// [`poll_transmit`](Connection::poll_transmit).
    pub(super) fn on_tlp_timeout(&mut self) {
        self.timers.tlp = None;
        if self.probe_kind().is_some() {
            self.pending.tlp = true;
        }
    }

    /// The ACK-stall probe ([`ProbeKind::Stall`]): the first unacknowledged segment again,
    /// as an RTO would send it but without the RTO's window collapse and go-back-N. In the
    /// open state (a tail probe went unanswered) the head is marked lost and
    /// fast recovery begins (Linux `tcp_enter_recovery`, PRR lets the retransmission go):
    /// the congestion response to a loss the probe repairs; when the head had arrived, its
    /// D-SACK undoes it (RFC 3708). In recovery or loss the head goes out at once, outside
    /// the window like a tail probe. The RTO is re-armed.
    fn send_stall_probe(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        let mss = self.effective_mss();
        self.snd.stall_probes = self.snd.stall_probes.saturating_add(1);
        shared.counters.stall_probes += 1;
        let head_sent = self.snd.queue.front().is_some_and(|e| e.is_sent());
        if head_sent && self.snd.ca == CaState::Open {
            self.mark_head_lost();
            self.recount();
            self.enter_recovery(shared, now);
            self.prr_update(0, mss, false);
        } else if head_sent {
            if self.snd.queue.front().is_some_and(|e| e.len() > mss) {
                self.snd.fragment_sent(0, mss);
            }
            self.retransmit_entry(shared, now, out, 0, mss, Cause::Stall);
            self.recount();
        } else if self.snd.fin_counted {
            self.retransmit_fin(shared, now, out, Cause::Stall);
        }
        self.timers.rtx = Some(self.rtt.rto_deadline(now));
    }

    /// RFC 8985 §7.3: the loss probe: one new MSS of data if the peer's window allows,
    /// else the last segment sent again. The RTO is re-armed.
    pub(super) fn send_loss_probe(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        self.pending.tlp = false;
        match self.probe_kind() {
            Some(ProbeKind::Tail) => {}
            Some(ProbeKind::Stall) => return self.send_stall_probe(shared, now, out),
            None => return,
        }
        let mss = self.effective_mss();
        let nxt = self.snd.nxt;
        let unsent = self.snd.unsent_data();
        let wnd_end = self.snd.una.wrapping_add(self.snd.wnd);
        let mut sent = false;
        if unsent > 0 && nxt.wrapping_add(unsent.min(mss)).le(wnd_end) {
            if let Some(idx) = self.snd.split_at_seq(nxt) {
                self.snd.fragment(idx, mss);
                self.transmit_entry(shared, now, out, idx, mss, true);
                self.snd.tlp = Some((self.snd.nxt, false));
                sent = true;
            }
        }
        if !sent {
            let last = self.snd.queue.iter().rposition(|e| e.is_sent());
            match last {
                Some(idx) => {
                    if let Some(e) = self.snd.queue.get(idx) {
                        let len = e.len();
                        if len > mss {
                            // Only the last MSS goes out (`tcp_send_loss_probe`).
                            let cut = len - ((len - 1) % mss + 1);
                            if self.snd.fragment_sent(idx, cut) {
                                self.retransmit_entry(shared, now, out, idx + 1, mss, Cause::Probe);
                            }
                        } else {
                            self.retransmit_entry(shared, now, out, idx, mss, Cause::Probe);
                        }
                    }
                }
                None if self.snd.fin_counted => self.retransmit_fin(shared, now, out, Cause::Probe),
                None => return,
            }
            self.snd.tlp = Some((self.snd.nxt, true));
        }
        shared.counters.loss_probes += 1;
        self.stats.loss_probes += 1;
        self.timers.rtx = Some(self.rtt.rto_deadline(now));
        // An ACK-stall probe follows if this one goes unanswered too.
        self.schedule_tlp(now, true);
    }

    /// RFC 8985 §7.4 (Linux `tcp_process_tlp_ack`): did the probe repair a loss? A D-SACK
    /// for it (`dsack_tlp`: for the probe itself, not any D-SACK on the ACK, Linux
    /// `FLAG_DSACK_TLP`) means the original arrived too (no loss); an ACK beyond it without
    /// one means the probe repaired a tail loss, which gets a congestion response.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn tlp_ack(&mut self, shared: &mut Shared, ack: SeqNum, advanced: bool, sacked: bool, dsack_tlp: bool, mss: u32, now: Instant) {
        let Some((high, retrans)) = self.snd.tlp else { return };
        if ack.lt(high) {
            return;
        }
        if !retrans || dsack_tlp {
            self.snd.tlp = None;
        } else if ack.gt(high) {
            self.snd.tlp = None;
            shared.counters.loss_probe_recovery += 1;
            self.cc.on_congestion_event(self.snd.outstanding(), mss, now);
            self.cc.on_recovery_exit(mss, now);
        } else if !advanced && !sacked {
            // A pure duplicate ACK of the probe: nothing was lost.
            self.snd.tlp = None;
        }
    }
}
