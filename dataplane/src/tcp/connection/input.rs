//! Segment arrival (RFC 9293 §3.10.7; Linux `tcp_rcv_state_process`,
//! `tcp_rcv_synsent_state_process`, `tcp_validate_incoming`, `tcp_data_queue`, `tcp_fin`).

use super::delack::{self, AckLimits};
use super::recv::{budget_base, RcvLimits};
use super::send::AckCheck;
use super::{CloseReason, Connection, Event, RstSpec, State};
use crate::tcp::payload::Payload;
use crate::tcp::shared::Shared;
use crate::time::Instant;
use crate::wire::tcp::{Flags, TcpRepr};

impl<P: Payload> Connection<P> {
    /// Linux `tcp_oow_rate_limited`: whether the duplicate ACK for an out-of-window or
    /// PAWS-rejected segment must be skipped. Segments that take sequence space (data or
    /// FIN) without SYN are not part of an ACK loop and always get theirs; others at most
    /// one per `invalid_ratelimit`.
    fn oow_rate_limited(&mut self, seq_len: usize, syn: bool, now: Instant) -> bool {
        if seq_len > 0 && !syn {
            return false;
        }
        if let Some(last) = self.last_oow_ack {
            if now >= last && now.saturating_duration_since(last) < self.cfg.invalid_ratelimit {
                return true;
            }
        }
        self.last_oow_ack = Some(now);
        false
    }

    /// Processes one arriving segment (already checksummed and parsed, addressed to this
    /// connection's 4-tuple). Replies are produced by the next
    /// [`poll_transmit`](Self::poll_transmit); never panics on hostile input.
    pub fn handle_segment(&mut self, shared: &mut Shared, repr: &TcpRepr, payload: P, now: Instant) {
        self.stats.segs_in += 1;
        let f = repr.flags;
        // Nonsensical flag combinations are dropped outright (as Linux drops SYN+FIN and
        // SYN+RST in `tcp_rcv_state_process`).
        if f.contains(Flags::SYN) && (f.contains(Flags::FIN) || f.contains(Flags::RST)) {
            shared.counters.in_errs += 1;
            return;
        }
        match self.state {
            State::Closed => {}
            State::SynSent => self.rcv_synsent(shared, repr, payload, now),
            State::Established => self.rcv_established(shared, repr, payload, now),
            _ => self.rcv_state_process(shared, repr, payload, now),
        }
        if self.state != State::Closed {
            self.rcv.last_rcv = now;
            self.keepalive_sent = 0;
            if self.timers.keepalive.is_some() {
                self.rearm_keepalive(now);
            }
        }
    }

    /// RFC 9293 §3.10.7.3 (`tcp_rcv_synsent_state_process`).
    fn rcv_synsent(&mut self, shared: &mut Shared, repr: &TcpRepr, payload: P, now: Instant) {
        let f = repr.flags;
        // First: the ACK must acknowledge exactly our SYN.
        if f.contains(Flags::ACK) && repr.ack != self.snd.iss.wrapping_add(1) {
            if !f.contains(Flags::RST) {
                self.queue_rst(RstSpec { seq: repr.ack, ack: None });
            }
            return;
        }
        // Second: RST with an acceptable ACK aborts; without an ACK it is ignored.
        if f.contains(Flags::RST) {
            if f.contains(Flags::ACK) {
                self.close_now(shared, CloseReason::Refused);
            }
            return;
        }
        if !f.contains(Flags::SYN) {
            return;
        }
        self.negotiate(repr, now);
        self.rcv.init(repr.seq);
        if f.contains(Flags::ACK) {
            // SYN-ACK: our SYN is acknowledged.
            self.snd.una = repr.ack;
            if self.syn_sends == 1 && !self.ts_ok {
                if let Some(sent) = self.syn_sent_at {
                    self.rtt.sample(now.saturating_duration_since(sent));
                }
            } else if let Some((_, tsecr)) = repr.options.timestamps.filter(|_| self.ts_ok) {
                let rtt_ms = Self::ts_now(now).wrapping_sub(tsecr);
                if rtt_ms < 3_600_000 && self.syn_sends == 1 {
                    self.rtt.sample(crate::time::Duration::from_millis(u64::from(rtt_ms.max(1))));
                }
            }
            self.rtt.reset_backoff();
            // RFC 7323 §2.2: the window in a SYN is never scaled.
            self.snd.init_window(u32::from(repr.window), repr.seq, repr.ack);
            self.timers.rtx = None;
            self.establish(shared, now);
            // ACK now, or let the data about to be sent carry it.
            self.pending.ack = true;
            if !payload.is_empty() || f.contains(Flags::FIN) {
                let seq = repr.seq.wrapping_add(1);
                self.rcv_text(shared, seq, payload, f.contains(Flags::FIN), now);
            }
        } else {
            // A bare SYN: simultaneous open (RFC 9293 §3.5, figure 7). Text is dropped and
            // will be retransmitted by the peer.
            self.snd.init_window(u32::from(repr.window), repr.seq, self.snd.iss);
            self.set_state(shared, State::SynReceived);
            self.pending.syn = true;
        }
    }

    /// Header prediction (Linux `tcp_rcv_established` fast path, `pred_flags`): in
    /// ESTABLISHED, a segment with only ACK (and PSH) set, at RCV.NXT, acknowledging
    /// within [SND.UNA, SND.NXT], with a timestamp not older than TS.Recent and text, if
    /// any, inside an open window, passes every check of RFC 9293 §3.10.7.4 (PAWS,
    /// acceptability, RST, SYN) by construction: it goes straight to the ACK, TS.Recent
    /// and the text, as the general path would take it. Linux also predicts the window
    /// (its fast path skips `tcp_ack_update_window`); here both paths apply the ACK and
    /// window the same way (`process_ack`), so a changed window (ours moves with every
    /// segment's text: the right edge stays) need not leave the fast path.
    fn rcv_established(&mut self, shared: &mut Shared, repr: &TcpRepr, payload: P, now: Instant) {
        let s = &self.snd;
        // The text's length once (the payload answers through a call).
        let len = payload.len();
        let mut predicted = repr.flags.0 & !Flags::PSH.0 == Flags::ACK.0
            && repr.seq == self.rcv.nxt
            && repr.ack.ge(s.una)
            && repr.ack.le(s.nxt)
            && (len == 0 || self.rcv.current_window() > 0);
        // RFC 7323 §5.3: a TSval not before TS.Recent is never rejected by PAWS.
        let tsval = if self.ts_ok { repr.options.timestamps.map(|(v, _)| v) } else { None };
        if let Some(v) = tsval {
            predicted &= (v.wrapping_sub(self.rcv.ts_recent) as i32) >= 0 || !self.rcv.ts_recent_valid;
        }
        if !predicted {
            return self.rcv_state_process(shared, repr, payload, now);
        }
        // The ACK was checked above: `TooNew`/`TooOld` are not reached here.
        if !self.ack_step(shared, repr, len, tsval, now) {
            return;
        }
        if len > 0 {
            self.rcv_text(shared, repr.seq, payload, false, now);
        }
    }

    /// RFC 9293 §3.10.7.4 for SYN-RECEIVED and the synchronized states
    /// (`tcp_validate_incoming` + `tcp_rcv_state_process`).
    fn rcv_state_process(&mut self, shared: &mut Shared, repr: &TcpRepr, payload: P, now: Instant) {
        let f = repr.flags;
        let rst = f.contains(Flags::RST);
        let syn = f.contains(Flags::SYN);
        let fin = f.contains(Flags::FIN);

        // A retransmitted SYN in SYN-RECEIVED: answer with the SYN-ACK again (`tcp_check_req`).
        if self.state == State::SynReceived && syn && !f.contains(Flags::ACK) && repr.seq == self.rcv.irs {
            if let Some((tsval, _)) = repr.options.timestamps.filter(|_| self.ts_ok) {
                self.rcv.set_ts_recent(tsval, now);
            }
            self.pending.syn = true;
            shared.counters.syn_retrans += 1;
            return;
        }

        // Simultaneous open: the peer's SYN-ACK repeats the SYN we already took; it completes
        // the handshake (Linux `tcp_rcv_state_process`, "simultaneous connect").
        let crossing_synack = self.state == State::SynReceived
            && !self.passive
            && syn
            && f.contains(Flags::ACK)
            && repr.seq.wrapping_add(1) == self.rcv.nxt
            && repr.ack == self.snd.nxt;

        // RFC 7323 §5.3 R1: PAWS comes before the sequence check.
        let tsval = if self.ts_ok { repr.options.timestamps.map(|(v, _)| v) } else { None };
        if let Some(v) = tsval {
            if !rst && self.rcv.paws_reject(v, now) && !self.disordered_ack(repr, payload.len(), v) {
                shared.counters.paws_estab_rejected += 1;
                // Linux `tcp_send_dupack`: old data is still reported as a duplicate.
                let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
                if len > 0 && self.cfg.dsack && repr.seq.lt(self.rcv.nxt) {
                    let end = repr.seq.wrapping_add(len);
                    let end = if end.gt(self.rcv.nxt) { self.rcv.nxt } else { end };
                    self.rcv.note_duplicate(repr.seq, end);
                }
                if self.oow_rate_limited(payload.len() + usize::from(fin), syn, now) {
                    shared.counters.ack_skipped_paws += 1;
                } else {
                    self.owe_ack();
                }
                return;
            }
        }

        // First: sequence number acceptability.
        let data_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let seg_len = data_len.saturating_add(u32::from(syn)).saturating_add(u32::from(fin));
        if !crossing_synack && !self.rcv.acceptable(repr.seq, seg_len) {
            // RFC 9293: zero window still accepts the ACK of a segment at RCV.NXT.
            let zero_window_probe = self.rcv.current_window() == 0 && repr.seq == self.rcv.nxt && !rst && !syn;
            if !zero_window_probe {
                shared.counters.seq_out_of_window += 1;
                let end = repr.seq.wrapping_add(data_len);
                if !rst && data_len > 0 && self.cfg.dsack && end.le(self.rcv.nxt) {
                    // Old data received again: RFC 2883 §4.1.1 D-SACK.
                    self.rcv.note_duplicate(repr.seq, end);
                }
                if !rst {
                    // Out-of-window: a duplicate ACK, not a state change (send-path §5),
                    // rate-limited for segments without data.
                    if self.oow_rate_limited(payload.len() + usize::from(fin), syn, now) {
                        shared.counters.ack_skipped_seq += 1;
                    } else {
                        self.owe_ack();
                    }
                }
                return;
            }
            if f.contains(Flags::ACK) && self.state.is_synchronized() {
                if let AckCheck::Ok = self.process_ack(shared, repr, payload.len(), now) {
                    self.after_ack(shared, now);
                }
            }
            self.owe_ack();
            return;
        }

        // Second: RST (RFC 5961 §3.2): exact match resets, otherwise challenge ACK.
        if rst {
            if repr.seq == self.rcv.nxt {
                self.reset_by_peer(shared);
            } else if shared.allow_challenge_ack(now) {
                self.owe_ack();
            }
            return;
        }

        // Fourth: SYN in a synchronized state (RFC 5961 §4.2): challenge ACK.
        if syn && !crossing_synack {
            if shared.allow_challenge_ack(now) {
                self.owe_ack();
            }
            return;
        }

        // Fifth: the ACK field.
        if !f.contains(Flags::ACK) {
            return;
        }
        if self.state == State::SynReceived {
            // The ACK must cover our SYN: SND.UNA < SEG.ACK =< SND.NXT.
            if repr.ack.gt(self.snd.una) && repr.ack.le(self.snd.nxt) {
                if self.syn_sends == 1 {
                    if let Some(sent) = self.syn_sent_at {
                        self.rtt.sample(now.saturating_duration_since(sent));
                    }
                }
                self.rtt.reset_backoff();
                self.snd.una = self.snd.iss.wrapping_add(1);
                self.timers.rtx = None;
                // Apply the scaled window (RFC 7323 §2.2: scaling starts after the SYN).
                self.snd.init_window(u32::from(repr.window) << self.snd_wscale, repr.seq, repr.ack);
                self.establish(shared, now);
            } else {
                self.queue_rst(RstSpec { seq: repr.ack, ack: None });
                return;
            }
        }
        if !self.ack_step(shared, repr, payload.len(), tsval, now) {
            return;
        }

        // Sixth: URG is not supported; urgent data is delivered inline.
        // Seventh and eighth: segment text and FIN.
        if data_len > 0 || fin {
            self.rcv_text(shared, repr.seq, payload, fin, now);
        }
    }

    /// Linux `tcp_disordered_ack`: a pure duplicate ACK at RCV.NXT that changes nothing but
    /// was overtaken by newer segments, its timestamp within an RTO of TS.Recent, is exempt
    /// from PAWS: it is reordering, not an old duplicate (its SACK blocks still count).
    fn disordered_ack(&self, repr: &TcpRepr, data_len: usize, tsval: u32) -> bool {
        let window = u32::from(repr.window) << self.snd_wscale;
        let rto_ms = u32::try_from(self.rtt.rto().as_millis()).unwrap_or(u32::MAX);
        repr.flags.contains(Flags::ACK)
            && !repr.flags.contains(Flags::SYN)
            && !repr.flags.contains(Flags::FIN)
            && data_len == 0
            && repr.seq == self.rcv.nxt
            && repr.ack == self.snd.una
            && window == self.snd.wnd
            && self.rcv.ts_recent.wrapping_sub(tsval) <= rto_ms
    }

    /// RFC 9293 §3.10.7.4 fifth step, shared by the predicted and the general path: the ACK
    /// (`tcp_ack`; an unacceptable one owes an ACK, or a challenge ACK within the RFC 5961
    /// limit), then TS.Recent from a segment that passed every check (RFC 7323 §4.3, Linux
    /// `tcp_replace_ts_recent` after `tcp_ack`), then what our FIN being acknowledged
    /// changes. False when processing stops here.
    #[inline]
    fn ack_step(&mut self, shared: &mut Shared, repr: &TcpRepr, data_len: usize, tsval: Option<u32>, now: Instant) -> bool {
        match self.process_ack(shared, repr, data_len, now) {
            AckCheck::Ok => {}
            AckCheck::TooNew => {
                self.owe_ack();
                return false;
            }
            AckCheck::TooOld => {
                if shared.allow_challenge_ack(now) {
                    self.owe_ack();
                }
                return false;
            }
        }
        if let Some(v) = tsval {
            self.rcv.update_ts_recent(repr.seq, v, now);
        }
        !self.after_ack(shared, now)
    }

    /// State changes caused by our FIN being acknowledged. Returns true when the connection
    /// is gone.
    fn after_ack(&mut self, shared: &mut Shared, now: Instant) -> bool {
        if !self.snd.fin_acked() {
            return false;
        }
        match self.state {
            State::FinWait1 => {
                self.set_state(shared, State::FinWait2);
                if self.orphaned {
                    self.timers.fin_wait2 = Some(now + self.cfg.fin_wait2_timeout);
                }
            }
            State::Closing => self.enter_time_wait(shared, now),
            State::LastAck => {
                self.close_now(shared, CloseReason::Normal);
                return true;
            }
            _ => {}
        }
        false
    }

    /// Segment text and FIN (RFC 9293 §3.10.7.4 seventh and eighth steps; `tcp_data_queue`,
    /// `tcp_fin`, `__tcp_ack_snd_check`).
    fn rcv_text(&mut self, shared: &mut Shared, seq: crate::tcp::seq::SeqNum, payload: P, fin: bool, now: Instant) {
        match self.state {
            State::Established | State::FinWait1 | State::FinWait2 => {}
            State::TimeWait => {
                // A retransmitted FIN: ACK it and restart the 2*MSL timer.
                if fin {
                    self.owe_ack();
                    self.timers.time_wait = Some(now + self.cfg.msl * 2);
                }
                return;
            }
            // CLOSE-WAIT, CLOSING, LAST-ACK: the peer already sent FIN; ignore the text.
            _ => return,
        }
        let rcvbuf = self.rcvbuf_now(shared);
        let budget_rcvbuf = budget_base(rcvbuf, self.stats.bytes_received);
        let share = if shared.memory_pressure {
            shared.pressure_share.saturating_sub(self.snd.queued_truesize).max(super::SHED_MIN_WMEM)
        } else {
            usize::MAX
        };
        let lim = RcvLimits { max_ofo: self.cfg.ofo_max_segments, rcvbuf, budget_rcvbuf, shed: shared.shedding(), share };
        let len = payload.len();
        let outcome = self.rcv.queue(seq, payload, fin, lim, &mut shared.counters);
        if let Some(before) = outcome.sack_flush {
            self.flush_owed_ack(before);
        }
        if outcome.dropped {
            if lim.shed && shared.over_hard_limit() {
                shared.counters.memory_limited += 1;
            }
            // No room. Out of order: dropped without an ACK, as `tcp_data_queue_ofo` does
            // on `TCPOFODrop` (the sender retransmits). In order: an ACK at once
            // (`ICSK_ACK_NOMEM`), RCV.NXT unchanged.
            if outcome.nomem {
                self.owe_ack();
            }
            return;
        }
        if outcome.in_order > 0 {
            self.stats.bytes_received += outcome.in_order as u64;
            if !self.rcv.readable_signaled {
                self.rcv.readable_signaled = true;
                self.push_event(Event::Readable);
            }
        }
        // The delayed-ACK limits, once for this segment (nothing below changes the RTO or
        // the configuration).
        let limits = self.ack_limits();
        if outcome.in_order > 0 {
            let window = self.rcv.current_window();
            self.rcv.delack.on_data(now, len, self.rcv.rcv_mss, window, limits);
        }
        if outcome.duplicate {
            // Our ACKs may have been lost: ACK this one and the next ones at once
            // (`tcp_data_queue`'s `out_of_window` path, `tcp_enter_quickack_mode`).
            let window = self.rcv.current_window();
            self.rcv.delack.enter_quickack_mode(self.rcv.rcv_mss, window, limits);
        }
        if outcome.duplicate || outcome.out_of_order || outcome.filled_hole {
            // Quick (duplicate) ACK: tells the sender about holes (RFC 5681 §4.2).
            self.owe_ack();
        } else if outcome.fin {
            self.pending.ack = true;
        } else if outcome.in_order > 0 {
            self.schedule_ack(now, limits);
        }
        if outcome.fin {
            self.timers.delack = None;
            self.push_event(Event::PeerClosed);
            match self.state {
                State::Established => self.set_state(shared, State::CloseWait),
                State::FinWait1 => {
                    if self.snd.fin_acked() {
                        self.enter_time_wait(shared, now);
                    } else {
                        self.set_state(shared, State::Closing);
                    }
                }
                State::FinWait2 => self.enter_time_wait(shared, now),
                _ => {}
            }
        }
    }

    /// Delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2; `__tcp_ack_snd_check`): ACK at once
    /// when more than one full-sized segment is unacknowledged or in quick-ACK mode, else
    /// within the adaptive delay (`tcp_send_delayed_ack`). A timer already running keeps
    /// the earlier deadline, and one about to expire sends the ACK now.
    fn schedule_ack(&mut self, now: Instant, limits: AckLimits) {
        if self.rcv.unacked_beyond_one_segment() || self.rcv.delack.quick_mode() {
            self.pending.ack = true;
            return;
        }
        let delay = self.rcv.delack.delay(self.rtt.srtt_nanos(), limits);
        match self.timers.delack {
            Some(at) if at <= now + delay / 4 => self.pending.ack = true,
            Some(at) => self.timers.delack = Some(at.min(now + delay)),
            None => self.timers.delack = Some(now + delay),
        }
    }

    /// What the configuration and the RTO allow the delayed-ACK engine.
    pub(super) fn ack_limits(&self) -> AckLimits {
        AckLimits { ato_min: delack::nanos(self.cfg.delayed_ack), max_quickacks: self.cfg.max_quickacks, rto: self.rtt.rto_nanos() }
    }

    /// An acceptable RST with SEG.SEQ = RCV.NXT (RFC 9293 §3.10.7.4 second step).
    fn reset_by_peer(&mut self, shared: &mut Shared) {
        match self.state {
            State::SynReceived if !self.passive => {
                self.close_now(shared, CloseReason::Refused);
            }
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                if self.state.counts_as_established() {
                    shared.counters.estab_resets += 1;
                }
                shared.counters.in_rsts += 1;
                self.close_now(shared, CloseReason::Reset);
            }
            _ => self.close_now(shared, CloseReason::Reset),
        }
    }

    /// Both FINs are acknowledged: linger for 2*MSL (RFC 9293 §3.6.1). The application is
    /// told the connection is closed now.
    fn enter_time_wait(&mut self, shared: &mut Shared, now: Instant) {
        self.set_state(shared, State::TimeWait);
        let ack_pending = self.pending.ack;
        self.timers.clear();
        self.pending.ack = ack_pending;
        self.timers.time_wait = Some(now + self.cfg.msl * 2);
        self.push_event(Event::Closed { reason: CloseReason::Normal });
    }
}
