//! Loss probes (split from `loss`): RFC 8985 §7 tail loss probes (Linux
//! `tcp_schedule_loss_probe`, `tcp_send_loss_probe`, `tcp_process_tlp_ack`).

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

impl<P: Payload> Connection<P> {
    /// Whether the D-SACK `[l, r)` reports the outstanding tail loss probe (Linux
    /// `tcp_dsack_seen` setting `FLAG_DSACK_TLP`: at most one MSS, ending where the probe
    /// ended).
    pub(super) fn dsack_is_for_probe(&self, l: SeqNum, r: SeqNum, mss: u32) -> bool {
        seq_dist(l, r) <= mss && self.snd.tlp.is_some_and(|(high, _)| high == r)
    }

    /// RFC 8985 §7.2: arms the probe timeout (PTO) in the open state with SACK: `2*SRTT`,
    /// plus `WCDelAckT` with a single segment in flight, else Linux's `TCP_TIMEOUT_MIN`
    /// (`tcp_schedule_loss_probe`), never later than the RTO.
    /// `restart`: re-arm even if armed (an ACK); else only arm an idle timer (new data).
    pub(super) fn schedule_tlp(&mut self, now: Instant, restart: bool) {
        if !restart && self.timers.tlp.is_some() {
            return;
        }
        self.timers.tlp = None;
        let eligible = self.cfg.tlp
            && self.sack_ok
            && self.snd.ca == CaState::Open
            && self.snd.tlp.is_none()
            && self.snd.packets_out > 0
            && self.state.is_synchronized()
            && self.state != State::TimeWait;
        if !eligible {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        // One segment out: the receiver may hold its ACK for a delayed-ACK timeout (RFC 8985
        // `WCDelAckT`; Linux adds `tcp_rto_min`, the same 200 ms unless configured lower).
        let pto = srtt * 2 + if self.snd.packets_out == 1 { self.cfg.min_rto } else { TLP_TIMEOUT_MIN };
        let at = now + pto;
        match self.timers.rtx {
            Some(rto) if at >= rto => {}
            _ => self.timers.tlp = Some(at),
        }
    }

    /// The probe timeout fired (RFC 8985 §7.3): the probe goes out with the next
    /// [`poll_transmit`](Connection::poll_transmit).
    pub(super) fn on_tlp_timeout(&mut self) {
        self.timers.tlp = None;
        if self.snd.ca == CaState::Open && self.snd.tlp.is_none() && self.snd.packets_out > 0 && self.state.is_synchronized() {
            self.pending.tlp = true;
        }
    }

    /// RFC 8985 §7.3: the loss probe: one new MSS of data if the peer's window allows,
    /// else the last segment sent again. The RTO is re-armed.
    pub(super) fn send_loss_probe(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        self.pending.tlp = false;
        if self.snd.ca != CaState::Open || self.snd.packets_out == 0 {
            return;
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
        self.timers.rtx = Some(now + self.rtt.rto());
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
