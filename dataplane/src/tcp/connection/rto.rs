//! The retransmission timeout (split from `loss`): RFC 6298 §5.4-5.6 and RFC 5681 §3.1
//! (Linux `tcp_retransmit_timer`, `tcp_enter_loss`), and `tcp_simple_retransmit`.

use super::loss::CaState;
use super::{CloseReason, Connection, State};
use crate::tcp::payload::Payload;
use crate::tcp::shared::Shared;
use crate::time::Instant;

/// Linux `tcp_retries1`: unanswered retransmissions after which the path is suspected
/// (black-hole detection, `tcp_mtu_probing`).
const TCP_RETRIES1: u32 = 3;

impl<P: Payload> Connection<P> {
    /// The retransmission timer fired (RFC 6298 §5.4–5.6, RFC 5681 §3.1; Linux
    /// `tcp_retransmit_timer` + `tcp_enter_loss`).
    pub(super) fn on_rto(&mut self, shared: &mut Shared, now: Instant) {
        // A lost PLPMTUD probe is a failed probe, not a black hole (RFC 4821 §7.5).
        if self.state.is_synchronized() && self.snd.outstanding() > 0 {
            self.mtu_probe_lost(shared, now);
        }
        self.timers.rtx = None;
        match self.state {
            State::SynSent | State::SynReceived => {
                let retries =
                    if self.state == State::SynSent { self.cfg.syn_retries } else { self.cfg.synack_retries };
                if self.syn_sends > retries {
                    self.close_now(shared, CloseReason::Timeout);
                    return;
                }
                self.rtt.back_off();
                self.pending.syn = true;
                shared.counters.timeouts += 1;
                shared.counters.syn_retrans += 1;
            }
            State::Closed | State::TimeWait => {}
            _ => {
                if self.snd.outstanding() == 0 {
                    return;
                }
                self.snd.retries += 1;
                shared.counters.timeouts += 1;
                self.stats.timeouts += 1;
                // Linux `tcp_retransmit_timer`: which recovery the timeout cut short.
                match self.snd.ca {
                    CaState::Loss => shared.counters.loss_failures += 1,
                    CaState::Recovery | CaState::Disorder if self.sack_ok => shared.counters.sack_failures += 1,
                    CaState::Recovery | CaState::Disorder => shared.counters.reno_failures += 1,
                    CaState::Open if self.snd.sacked_out > 0 => shared.counters.sack_failures += 1,
                    CaState::Open => {}
                }
                // Linux `tcp_write_timeout` for an orphan: `tcp_orphan_retries`, and reset
                // at once when orphans are too many or buffers low.
                let mut max_retries = self.cfg.max_retries;
                if self.orphaned {
                    if shared.orphans_out_of_resources(self.cfg.max_orphans, 0) {
                        shared.counters.abort_on_memory += 1;
                        self.reset_and_close(shared, CloseReason::Timeout);
                        return;
                    }
                    max_retries = self.cfg.orphan_retries;
                }
                if self.snd.retries > max_retries {
                    shared.counters.abort_on_timeout += 1;
                    if self.state.counts_as_established() {
                        shared.counters.estab_resets += 1;
                    }
                    self.close_now(shared, CloseReason::Timeout);
                    return;
                }
                // Linux `tcp_write_timeout`: once `retransmits_timed_out(.., tcp_retries1)`,
                // suspect a black hole (`tcp_mtu_probing`). Linux measures the three
                // retransmissions in time (`tcp_model_timeout`: 3 s from the 200 ms minimum
                // RTO, so the 5th timeout on a short path, the 3rd once the RTO is 1 s);
                // counted here: the 4th timeout in a row.
                if self.snd.retries > TCP_RETRIES1 {
                    self.mtu_black_hole(shared, now);
                }
                let mss = self.effective_mss();
                // F-RTO judges the first timeout of an episode only (RFC 5682 §2.1 step
                // 1; Linux: not when fast recovery was under way).
                self.snd.frto = self.cfg.frto && matches!(self.snd.ca, CaState::Open | CaState::Disorder);
                self.snd.frto_new_data = false;
                if self.snd.ca == CaState::Loss {
                    // RFC 5681 §3.1: a repeated timeout keeps ssthresh; the window is one
                    // segment again.
                    self.cc.set_cwnd(mss);
                } else {
                    match self.snd.undo.as_mut() {
                        // Timeout during fast recovery: undo would restore the window from
                        // before that recovery; Eifel now judges this retransmission.
                        Some(u) => u.retrans_ts = None,
                        None => {
                            self.snd.undo = Some(self.undo_snapshot());
                        }
                    }
                    self.cc.on_timeout(self.snd.outstanding(), mss, now);
                }
                self.snd.ca = CaState::Loss;
                self.snd.high_seq = self.snd.nxt;
                self.snd.dupacks = 0;
                self.snd.rtt_probe = None;
                self.snd.tlp = None;
                self.snd.stall_probes = 0;
                self.timers.tlp = None;
                self.timers.reo = None;
                // `tcp_enter_loss`: everything outstanding and not SACKed is lost.
                let sent = self.snd.queue.iter().take_while(|e| e.is_sent()).count();
                for idx in 0..sent {
                    self.mark_lost(idx);
                }
                if self.snd.fin_counted {
                    self.snd.fin_lost = true;
                    self.snd.fin_retrans = false;
                }
                self.recount();
                self.rtt.back_off();
                // Re-armed when the retransmission goes out.
                self.timers.rtx = Some(self.rtt.rto_deadline(now));
            }
        }
    }

    /// `tcp_simple_retransmit` (RFC 1191 path-MTU drop): resend everything outstanding at
    /// the new size at once, with no congestion response and nothing to undo.
    pub(super) fn simple_retransmit(&mut self) {
        let sent = self.snd.queue.iter().take_while(|e| e.is_sent()).count();
        for idx in 0..sent {
            self.mark_lost(idx);
        }
        self.recount();
        self.snd.rtt_probe = None;
        if self.snd.lost_out > 0 && self.snd.ca != CaState::Loss {
            self.snd.undo = None;
            self.snd.ca = CaState::Loss;
            self.snd.high_seq = self.snd.nxt;
        }
    }
}
