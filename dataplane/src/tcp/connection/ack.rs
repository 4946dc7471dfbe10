//! `tcp_ack` (split from `send` and `loss`): validation and the window update, the RTT
//! sample, the cumulative ACK's delivery (RACK bookkeeping, `tcp_clean_rtx_queue`), then either the
//! fast path of a plain ACK (Linux `tcp_ack` with `FLAG_SLOWPATH` clear and
//! `tcp_ack_is_dubious` false) or the general one: SACK scoreboard, loss marking, the
//! recovery state machine (`tcp_fastretrans_alert`), congestion control and the timers.

use super::loss::{ts_before, CaState};
use super::send::{seq_dist, AckCheck};
use super::{Connection, Event};
use crate::tcp::congestion::AckSample;
use crate::tcp::payload::Payload;
use crate::tcp::recovery::{classify, SackInput};
use crate::tcp::seq::SeqNum;
use crate::tcp::shared::Shared;
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, TcpRepr};

impl<P: Payload> Connection<P> {
    /// `tcp_ack`: validates and applies the acknowledgement and window of `repr`.
    pub(super) fn process_ack(&mut self, shared: &mut Shared, repr: &TcpRepr, data_len: usize, now: Instant) -> AckCheck {
        let ack = repr.ack;
        if ack.gt(self.snd.nxt) {
            shared.counters.ack_too_new += 1;
            return AckCheck::TooNew;
        }
        let max_win = self.snd.max_window.max(1);
        if ack.lt(self.snd.una.wrapping_sub(max_win)) {
            shared.counters.ack_too_old += 1;
            return AckCheck::TooOld;
        }
        if ack.lt(self.snd.una) {
            // Old duplicate within the window: ignore the ACK, keep the data.
            return AckCheck::Ok;
        }
        let window = u32::from(repr.window) << self.snd_wscale;
        let prior_wnd = self.snd.wnd;
        // RFC 9293 §3.10.7.4 fifth step: window update from newer segments only.
        if self.snd.wl1.lt(repr.seq) || (self.snd.wl1 == repr.seq && self.snd.wl2.le(ack)) {
            self.snd.wnd = window;
            self.snd.wl1 = repr.seq;
            self.snd.wl2 = ack;
            self.snd.max_window = self.snd.max_window.max(window);
        }
        // `tcp_ack_probe`: an ACK while probing a zero window restarts the probe timer.
        if self.timers.persist.is_some() && self.snd.outstanding() == 0 && self.snd.has_unsent() {
            self.timers.persist = Some(now + self.persist_interval());
        }
        // RFC 5681 §2 "DUPLICATE ACKNOWLEDGMENT" (conditions a-e).
        let classic_dup = ack == self.snd.una
            && self.snd.outstanding() > 0
            && data_len == 0
            && !repr.flags.contains(Flags::SYN)
            && !repr.flags.contains(Flags::FIN)
            && window == prior_wnd;
        let advanced = ack != self.snd.una;
        self.on_ack(shared, repr, classic_dup, now);
        if advanced && self.snd.writable_wanted && self.state.can_send() {
            let sndbuf = self.sndbuf();
            let free = sndbuf.saturating_sub(self.snd.queued_bytes);
            let budget = super::recv::rmem_budget(sndbuf);
            let free_mem = budget.saturating_sub(self.snd.queued_truesize);
            // sk_stream_write_space: wake when at least a third of the buffer is free
            // (bytes and buffer bytes both).
            if free >= sndbuf / 3 && free_mem >= budget / 3 {
                self.snd.writable_wanted = false;
                self.push_event(Event::Writable);
            }
        }
        AckCheck::Ok
    }

    /// The acknowledgement part of `tcp_ack` once the ACK is acceptable and the window was
    /// updated: RTT sample, cumulative ACK, SACK scoreboard, loss marking, the recovery
    /// state machine, congestion control and the timers.
    pub(super) fn on_ack(&mut self, shared: &mut Shared, repr: &TcpRepr, classic_dup: bool, now: Instant) {
        let ack = repr.ack;
        let mss = self.effective_mss();
        let prior_una = self.snd.una;
        let prior_packets = self.snd.packets_out;
        let acked_bytes = seq_dist(prior_una, ack);
        let advanced = acked_bytes > 0;
        let tsecr = if self.ts_ok { repr.options.timestamps.map(|(_, e)| e).filter(|&e| e != 0) } else { None };
        let min_rtt = self.rtt.min_rtt();
        // Linux `tcp_ack`: any acceptable ACK shows the peer alive ("something worked").
        self.snd.probes_out = 0;
        if self.snd.rtx_nxt.is_some_and(|r| ack.ge(r)) {
            self.snd.rtx_nxt = None;
        }
        let plain = self.is_plain_ack(repr, classic_dup);

        // RFC 6298 §3 / RFC 7323 §4: the RTT sample of this ACK.
        let rtt = if advanced { self.take_rtt_sample(ack, tsecr, now) } else { None };
        // RFC 3522: the first ACK after an RTO retransmission that echoes a timestamp older
        // than the retransmission acknowledges the original: the timeout was spurious.
        let spurious_rto = advanced && self.snd.ca == CaState::Loss && self.retransmission_was_needless(tsecr);

        let prior_dupacks = self.snd.dupacks;
        let mut acked_unsacked = 0u32;
        // Data never retransmitted was (S)ACKed: what F-RTO's step 3b looks for.
        let mut orig_acked = false;
        if advanced {
            (acked_unsacked, orig_acked) = self.deliver_acked(shared, ack, tsecr, min_rtt, now);
            let freed = self.snd.remove_acked(ack);
            self.stats.bytes_acked += u64::from(freed);
            self.snd.una = ack;
            self.mtu_probe_acked(shared, ack, now);
            self.snd.retries = 0;
            self.snd.probes = 0;
            self.rtt.reset_backoff();
        }
        if plain {
            self.on_plain_ack(advanced, acked_bytes, mss, rtt, ack, now);
            return;
        }

        // The SACK scoreboard.
        let sack = if self.sack_ok && !repr.options.sack_blocks.is_empty() {
            classify(repr.options.sack_blocks.as_slice(), ack, prior_una, self.snd.nxt, self.snd.max_window)
        } else {
            SackInput::default()
        };
        shared.counters.sack_discard += u64::from(sack.discarded);
        let mut newly_sacked = 0u32;
        for &(l, r) in sack.blocks() {
            let (newly, orig) = self.mark_sacked(shared, l, r, tsecr, min_rtt, now);
            newly_sacked = newly_sacked.saturating_add(newly);
            orig_acked |= orig;
        }
        if let Some((l, r)) = sack.dsack {
            self.on_dsack(shared, l, r);
        }
        self.check_sack_reneging(shared);

        // Duplicate ACKs (RFC 5681 §3.2; with SACK, RFC 6675 §2: only an ACK that SACKs
        // new data counts).
        if (classic_dup && !self.sack_ok) || newly_sacked > 0 {
            self.snd.dupacks = self.snd.dupacks.saturating_add(1);
        } else if advanced {
            self.snd.dupacks = if self.snd.ca == CaState::Recovery && !self.sack_ok {
                // `tcp_remove_reno_sacks`: the cumulative ACK consumed duplicate ACKs.
                self.snd.dupacks.saturating_sub(prior_packets.saturating_sub(self.snd.packets_out))
            } else {
                0
            };
        }
        self.recount();

        // RFC 6937 `DeliveredData` in frames: newly SACKed plus cumulatively acknowledged
        // frames not SACKed before; without SACK, a duplicate ACK counts one and a
        // cumulative ACK what the duplicate ACKs did not count already (Linux
        // `tcp_remove_reno_sacks`).
        let delivered = if self.sack_ok {
            acked_unsacked.saturating_add(newly_sacked)
        } else if advanced {
            prior_packets.saturating_sub(self.snd.packets_out).saturating_sub(prior_dupacks).max(1)
        } else {
            u32::from(classic_dup)
        };

        if spurious_rto {
            shared.counters.spurious_rtos += 1;
            shared.counters.loss_undo += 1;
            self.undo_reduction();
        }
        if advanced || newly_sacked > 0 {
            // The ACK clock runs again: a later stall may be probed once more.
            self.snd.stall_probes = 0;
        }
        let dsack_tlp = sack.dsack.is_some_and(|(l, r)| self.dsack_is_for_probe(l, r, mss));
        self.tlp_ack(shared, ack, advanced, newly_sacked > 0, dsack_tlp, mss, now);
        if self.snd.ca == CaState::Loss && self.snd.frto {
            self.frto_ack(shared, ack, advanced, orig_acked, newly_sacked > 0 || (classic_dup && !advanced), mss);
        }

        // End of an episode (RFC 6582 §3.2 step 3: full acknowledgement).
        match self.snd.ca {
            CaState::Recovery if ack.ge(self.snd.high_seq) && self.retransmission_was_needless(tsecr) => {
                // RFC 3522 applied to fast recovery (Linux `tcp_try_undo_recovery`): the ACK
                // ending it echoes a timestamp older than the first retransmission, so the
                // holes were filled by the originals: reordering, not loss.
                shared.counters.full_undo += 1;
                self.undo_reduction();
                self.snd.rack.on_recovery_end();
            }
            CaState::Recovery if ack.ge(self.snd.high_seq) => {
                self.cc.on_recovery_exit(mss, now);
                self.snd.rack.on_recovery_end();
                self.snd.undo = None;
                self.snd.ca = CaState::Open;
            }
            CaState::Loss if ack.ge(self.snd.high_seq) => {
                self.snd.undo = None;
                self.snd.frto = false;
                self.snd.ca = CaState::Open;
            }
            _ => {}
        }

        let partial_ack = self.detect_loss(shared, advanced, now);
        if matches!(self.snd.ca, CaState::Open | CaState::Disorder) && self.snd.lost_out > 0 {
            self.enter_recovery(shared, now);
        }
        match self.snd.ca {
            CaState::Recovery => self.prr_update(delivered, mss, partial_ack),
            _ if advanced => self.cc_on_ack(acked_bytes, mss, rtt, ack, now),
            _ => {}
        }
        self.update_disorder();
        self.ack_rearm(advanced, now);
    }

    /// Congestion control's share of an ACK that advanced `snd.una` (`tcp_cong_control`),
    /// from the fast path and the general one alike.
    fn cc_on_ack(&mut self, acked: u32, mss: u32, rtt: Option<Duration>, ack: SeqNum, now: Instant) {
        let sample = AckSample { acked, mss, cwnd_limited: self.snd.cwnd_limited, now, rtt, ack, snd_nxt: self.snd.nxt };
        self.cc.on_ack(&sample);
    }

    /// The timers after an ACK: RFC 6298 §5.2 / §5.3 for the retransmission timer, the
    /// reordering timer stopped with nothing outstanding, the probe timer (RFC 8985 §7.2).
    fn ack_rearm(&mut self, advanced: bool, now: Instant) {
        if advanced {
            self.timers.rtx = if self.snd.outstanding() == 0 { None } else { Some(self.rtt.rto_deadline(now)) };
        }
        if self.snd.outstanding() == 0 {
            self.timers.reo = None;
        }
        self.schedule_tlp(now, true);
    }

    /// Linux `tcp_ack` with `FLAG_SLOWPATH` clear and `tcp_ack_is_dubious` false: an ACK
    /// without SACK blocks (not a duplicate for a peer without SACK) in the open state,
    /// with nothing SACKed, lost or retransmitted, no duplicate ACKs counted, no tail loss
    /// probe out and no retransmitted entry left in the queue (`rtx_nxt`, updated for this
    /// ACK). Such an ACK changes no scoreboard mark, ends no episode and makes RACK mark
    /// nothing (every queued entry was sent after the newest delivered transmission, see
    /// `SendState::rtx_nxt`), so `on_plain_ack` skips all of that. F-RTO and undo run only
    /// in Loss or Recovery, not Open.
    fn is_plain_ack(&self, repr: &TcpRepr, classic_dup: bool) -> bool {
        let s = &self.snd;
        s.ca == CaState::Open
            && s.rtx_nxt.is_none()
            && s.sacked_out == 0
            && s.lost_out == 0
            && s.retrans_out == 0
            && s.dupacks == 0
            && s.tlp.is_none()
            && if self.sack_ok { repr.options.sack_blocks.is_empty() } else { !classic_dup }
    }

    /// The rest of `on_ack` for a plain ACK ([`Self::is_plain_ack`]; Linux `tcp_ack` calls
    /// `tcp_cong_control` without `tcp_fastretrans_alert`): what the general path would
    /// change, and nothing else. Its scoreboard sums stay zero, the state stays open.
    fn on_plain_ack(&mut self, advanced: bool, acked_bytes: u32, mss: u32, rtt: Option<Duration>, ack: SeqNum, now: Instant) {
        debug_assert!(self.snd.queue.iter().all(|e| !e.sacked && !e.lost && !e.retrans && !e.ever_retrans));
        debug_assert!(self.snd.queue.iter().take_while(|e| e.is_sent()).all(|e| self.snd.rack.check(e.sent_at, e.end(), Duration::ZERO, now).is_none()));
        if advanced {
            // The ACK clock runs again: a later stall may be probed once more.
            self.snd.stall_probes = 0;
        }
        // What `rack_detect_loss` leaves when no entry is to be checked.
        if self.sack_ok && self.cfg.rack && self.snd.rack.xmit_ts.is_some() {
            self.timers.reo = None;
        }
        if advanced {
            self.cc_on_ack(acked_bytes, mss, rtt, ack, now);
        }
        self.ack_rearm(advanced, now);
    }

    /// Whether the echoed timestamp predates the episode's first retransmission (Eifel).
    pub(super) fn retransmission_was_needless(&self, tsecr: Option<u32>) -> bool {
        self.snd.undo.and_then(|u| u.retrans_ts).zip(tsecr).is_some_and(|(rts, ecr)| ts_before(ecr, rts))
    }

    /// Open <-> Disorder.
    pub(super) fn update_disorder(&mut self) {
        let disorder = self.snd.sacked_out > 0 || self.snd.dupacks > 0;
        self.snd.ca = match self.snd.ca {
            CaState::Open if disorder => CaState::Disorder,
            CaState::Disorder if !disorder => CaState::Open,
            s => s,
        };
    }

    /// RFC 6298 §3 (Karn's rule through `rtt_probe`, cleared by retransmissions) and RFC 7323
    /// §4 (timestamps, valid for retransmissions too). Feeds the estimator. The probe's
    /// sample, taken at full clock precision, is preferred; the timestamp one (1 ms
    /// granularity) is used when there is none (Linux `tcp_ack_update_rtt`).
    fn take_rtt_sample(&mut self, ack: SeqNum, tsecr: Option<u32>, now: Instant) -> Option<Duration> {
        let mut sample = None;
        if let Some((end, sent)) = self.snd.rtt_probe {
            if ack.ge(end) {
                sample = Some(now.saturating_duration_since(sent));
                self.snd.rtt_probe = None;
            }
        }
        if let (None, Some(ecr)) = (sample, tsecr) {
            let rtt_ms = Self::ts_now(now).wrapping_sub(ecr);
            if rtt_ms < 3_600_000 {
                sample = Some(Duration::from_millis(u64::from(rtt_ms.max(1))));
            }
        }
        if let Some(s) = sample {
            self.rtt.sample(s);
        }
        sample
    }

    /// Whether a retransmitted entry sent at `sent_at` is ambiguously acknowledged: the
    /// echoed timestamp predates its retransmission (RFC 8985 §6.2 step 2).
    pub(super) fn ts_ambiguous(tsecr: Option<u32>, sent_at: Instant) -> bool {
        tsecr.is_some_and(|ecr| ts_before(ecr, Self::ts_now(sent_at)))
    }

    /// RACK bookkeeping for entries the cumulative ACK delivers (those not SACKed before).
    /// Returns the frames they held, and whether one of them was never retransmitted and
    /// sent before `high_seq` (Linux `FLAG_ORIG_SACK_ACKED`).
    fn deliver_acked(&mut self, shared: &mut Shared, ack: SeqNum, tsecr: Option<u32>, min_rtt: Option<Duration>, now: Instant) -> (u32, bool) {
        let s = &mut self.snd;
        let mut frames = 0u32;
        let mut orig = false;
        let mut fresh_rtt: Option<Duration> = None;
        for e in s.queue.iter() {
            if !e.is_sent() || e.seq.ge(ack) {
                break;
            }
            if e.sacked {
                continue;
            }
            // The entry's end once (its length is the payload's, behind a call).
            let e_end = e.end();
            let end = if e_end.gt(ack) { ack } else { e_end };
            let part = if end == e_end { e.pcount } else { seq_dist(e.seq, end).div_ceil(e.seg_size.max(1)) };
            frames = frames.saturating_add(part);
            orig |= !e.ever_retrans && e_end.le(s.high_seq);
            if !e.ever_retrans {
                let rtt = now.saturating_duration_since(e.sent_at);
                fresh_rtt = Some(fresh_rtt.map_or(rtt, |m| m.min(rtt)));
            }
            let ambiguous = e.ever_retrans && Self::ts_ambiguous(tsecr, e.sent_at);
            s.rack.on_delivered(e.sent_at, end, e.ever_retrans, ambiguous, min_rtt, now);
            if s.rack.detect_reordering(end, e.ever_retrans) {
                shared.counters.sack_reorder += 1;
            }
        }
        if let Some(rtt) = fresh_rtt {
            self.rtt.observe_min(rtt);
        }
        (frames, orig)
    }
}
