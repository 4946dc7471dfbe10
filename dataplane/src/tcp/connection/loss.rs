//! Loss detection and recovery (Linux `tcp_fastretrans_alert`, `tcp_sacktag_write_queue`,
//! `tcp_rack_mark_lost`, `tcp_xmit_retransmit_queue`, `tcp_retransmit_timer`,
//! `tcp_send_loss_probe`; the ACK's own part, and its fast path, are in `ack`):
//!
//! - the scoreboard: SACK blocks (RFC 2018) mark queue entries SACKed, D-SACKs
//!   (RFC 2883) are recognised, counted and used for undo, reneging is detected;
//! - loss marking: RACK (RFC 8985 §6) when `rack` is on, else the RFC 6675 `IsLost`
//!   rule (`DupThresh` segments SACKed above); for peers without SACK the RFC 5681 §3.2
//!   third duplicate ACK and RFC 6582 partial ACKs mark the head lost;
//! - fast recovery with Proportional Rate Reduction (RFC 6937) setting the window,
//!   retransmissions of lost entries through the same congestion-window gate as new data;
//! - the retransmission timeout (RFC 6298 §5, RFC 5681 §3.1; in `rto`) marking everything lost;
//! - tail loss probes (RFC 8985 §7; in `probe`) and undo of spurious reductions: Eifel with timestamps
//!   (RFC 3522) after an RTO, D-SACK (RFC 2883 §5, RFC 3708) after fast recovery.

use super::send::seq_dist;
use super::{Connection, Segment};
use crate::tcp::payload::Payload;
use crate::tcp::recovery::Prr;
use crate::tcp::seq::SeqNum;
use crate::tcp::shared::Shared;
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

/// The recovery state of a connection (Linux `icsk_ca_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaState {
    /// Nothing outstanding is suspected lost.
    Open,
    /// SACKs or duplicate ACKs arrived, but nothing is marked lost yet.
    Disorder,
    /// Fast recovery (RFC 6675 / RFC 6582) with PRR (RFC 6937).
    Recovery,
    /// After a retransmission timeout: everything outstanding was marked lost.
    Loss,
}

impl CaState {
    /// Linux's name for the state (`ss -ti` style).
    pub fn name(self) -> &'static str {
        match self {
            CaState::Open => "open",
            CaState::Disorder => "disorder",
            CaState::Recovery => "recovery",
            CaState::Loss => "loss",
        }
    }
}

/// What is needed to undo a window reduction found to be spurious.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Undo {
    pub prior_cwnd: u32,
    pub prior_ssthresh: u32,
    /// Our TSval on the first retransmission of the episode (RFC 3522 `RetransmitTS`).
    pub retrans_ts: Option<u32>,
    /// Retransmitted frames not yet reported duplicate by a D-SACK (Linux `undo_retrans`).
    pub retrans: u32,
    /// SND.UNA when the episode began: D-SACKs below it belong to older episodes.
    pub marker: SeqNum,
}

impl<P: Payload> Connection<P> {
    /// What a loss episode starting now may have to undo (Linux `tcp_init_undo`): the
    /// window before the reduction, and SND.UNA as the episode's marker. Taken on entry
    /// to fast recovery and to Loss (`rto`).
    pub(super) fn undo_snapshot(&self) -> Undo {
        Undo {
            prior_cwnd: self.cc.cwnd(),
            prior_ssthresh: self.cc.ssthresh(),
            retrans_ts: None,
            retrans: 0,
            marker: self.snd.una,
        }
    }
}

/// Why a segment is retransmitted (for the counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    Lost,
    Probe,
    /// An ACK-stall probe (`probe`): the head sent again where RFC 8985 sends no TLP.
    Stall,
}

/// `a` is before `b` in timestamp space (RFC 7323 §5.2: modulo 2^32).
pub(super) fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl<P: Payload> Connection<P> {
    /// Marks the entries inside the SACK block `[l, r)` (RFC 2018 §3), cutting sent
    /// entries on frame boundaries so that only whole frames are marked. Returns the frames
    /// newly SACKed, and whether one of them was never retransmitted and sent before
    /// `high_seq`.
    pub(super) fn mark_sacked(&mut self, shared: &mut Shared, l: SeqNum, r: SeqNum, tsecr: Option<u32>, min_rtt: Option<Duration>, now: Instant) -> (u32, bool) {
        let mut newly = 0u32;
        let mut orig = false;
        let Some(mut idx) = self.snd.find(l) else { return (0, false) };
        if let Some(e) = self.snd.queue.get(idx) {
            if e.seq.lt(l) {
                let seg = e.seg_size.max(1);
                let cut = seq_dist(e.seq, l).div_ceil(seg).saturating_mul(seg);
                if cut < e.len() && e.is_sent() {
                    self.snd.fragment_sent(idx, cut);
                }
                idx += 1;
            }
        }
        while let Some(e) = self.snd.queue.get(idx) {
            if !e.is_sent() || e.seq.ge(r) {
                break;
            }
            if e.end().gt(r) {
                let seg = e.seg_size.max(1);
                let cut = seq_dist(e.seq, r) / seg * seg;
                if cut == 0 || !self.snd.fragment_sent(idx, cut) {
                    break;
                }
            }
            let s = &mut self.snd;
            let Some(e) = s.queue.get_mut(idx) else { break };
            if !e.sacked {
                e.sacked = true;
                newly = newly.saturating_add(e.pcount);
                let (sent_at, end, rtx) = (e.sent_at, e.end(), e.ever_retrans);
                orig |= !rtx && end.le(s.high_seq);
                if !rtx {
                    self.rtt.observe_min(now.saturating_duration_since(sent_at));
                }
                let ambiguous = rtx && Self::ts_ambiguous(tsecr, sent_at);
                s.rack.on_delivered(sent_at, end, rtx, ambiguous, min_rtt, now);
                if s.rack.detect_reordering(end, rtx) {
                    shared.counters.sack_reorder += 1;
                }
            }
            e.lost = false;
            e.retrans = false;
            idx += 1;
        }
        (newly, orig)
    }

    /// F-RTO (RFC 5682 §3, the SACK-enhanced algorithm; Linux `tcp_process_loss`) on an
    /// ACK after a retransmission timeout. `orig_acked`: data never retransmitted and sent
    /// before the timeout was acknowledged or SACKed; `dup`: the ACK reports a hole (new
    /// SACKed data, or a duplicate ACK without SACK).
    pub(super) fn frto_ack(&mut self, shared: &mut Shared, ack: SeqNum, advanced: bool, orig_acked: bool, dup: bool, mss: u32) {
        let new_data_sent = self.snd.nxt.gt(self.snd.high_seq);
        // Step 3b: after new data went out, an ACK of data never retransmitted shows that
        // the originals arrived: the timeout was spurious: undo. (Linux also undoes on the
        // first ACK; RFC 5682 §2.1 step 2a does not: an ACK covering everything outstanding
        // may answer the retransmission of the one segment that really was lost.)
        if orig_acked && new_data_sent {
            shared.counters.spurious_rtos += 1;
            shared.counters.loss_undo += 1;
            self.undo_reduction();
            return;
        }
        if dup {
            // Steps 2a / 3a: the receiver still misses data: the loss was real; the
            // conventional recovery (go-back-N of what is marked lost) goes on.
            self.snd.frto = false;
        } else if advanced && !new_data_sent && ack.lt(self.snd.high_seq) {
            // Step 2b: the retransmission was acknowledged but not everything sent before
            // the timeout: send new data (up to two segments, as the window allows) rather
            // than retransmitting, if there is any and the peer's window takes it.
            self.snd.high_seq = self.snd.nxt;
            let unsent = self.snd.unsent_data();
            let wnd_end = self.snd.una.wrapping_add(self.snd.wnd);
            if unsent > 0 && self.snd.nxt.wrapping_add(unsent.min(mss)).le(wnd_end) {
                self.snd.frto_new_data = true;
            } else {
                self.snd.frto = false;
            }
        }
    }

    /// A D-SACK (RFC 2883): counted; it widens RACK's reordering window (RFC 8985 §6.2
    /// step 4), and once every retransmission of the current episode was reported
    /// duplicate the reduction is undone (RFC 3708, Linux `tcp_try_undo_dsack`).
    pub(super) fn on_dsack(&mut self, shared: &mut Shared, l: SeqNum, r: SeqNum) {
        shared.counters.dsack_recv += 1;
        let mss = self.effective_mss().max(1);
        // RFC 8985 §6.2 step 4: a D-SACK widens the reordering window. Linux gates this on
        // `reord_seen` (`tcp_dsack_seen`), but Strait's reordering detection misses a late
        // original reported after RACK retransmitted it (Linux counts that through the
        // D-SACK of an already SACKed retransmission in `tcp_sacktag_one`), so the gate kept
        // the window narrow on a reordering path: the 40 ms simulator grid's "reorder 1%"
        // cell fell from 47 to 9 Mbit/s. Ungated until that detection matches Linux's.
        self.snd.rack.on_dsack(self.snd.una, self.snd.nxt);
        let Some(u) = self.snd.undo.as_mut() else { return };
        if l.lt(u.marker) || u.retrans == 0 {
            return;
        }
        let frames = seq_dist(l, r).div_ceil(mss).max(1);
        u.retrans = u.retrans.saturating_sub(frames);
        if u.retrans == 0 && matches!(self.snd.ca, CaState::Recovery | CaState::Loss) {
            shared.counters.dsack_undo += 1;
            self.undo_reduction();
        }
    }

    /// RFC 2018 §8: the receiver may discard SACKed data. A cumulative ACK that stops at
    /// an entry we hold as SACKed shows it did: forget every SACK mark (Linux
    /// `tcp_check_sack_reneging`); retransmission then follows RACK or the RTO.
    pub(super) fn check_sack_reneging(&mut self, shared: &mut Shared) {
        if !self.snd.queue.front().is_some_and(|e| e.sacked && e.seq == self.snd.una) {
            return;
        }
        shared.counters.sack_reneging += 1;
        for e in self.snd.queue.iter_mut() {
            e.sacked = false;
        }
    }

    /// Recomputes the scoreboard sums.
    pub(super) fn recount(&mut self) {
        let reno = if self.sack_ok { None } else { Some(self.snd.dupacks) };
        self.snd.recount(reno);
    }

    /// Marks one entry lost (clearing its retransmission mark: it is to be sent again).
    pub(super) fn mark_lost(&mut self, idx: usize) {
        let Some(e) = self.snd.queue.get_mut(idx) else { return };
        if e.sacked {
            return;
        }
        e.lost = true;
        e.retrans = false;
        let seq = e.seq;
        self.snd.rtx_hint = Some(match self.snd.rtx_hint {
            Some(h) if h.lt(seq) => h,
            _ => seq,
        });
    }

    /// Marks the first outstanding frame lost (RFC 5681 §3.2 step 2 / RFC 6582 §3.2
    /// step 4 for peers without SACK: the segment at SND.UNA is retransmitted).
    pub(super) fn mark_head_lost(&mut self) {
        let Some(e) = self.snd.queue.front() else {
            if self.snd.fin_counted && !self.snd.fin_lost {
                self.snd.fin_lost = true;
                self.snd.fin_retrans = false;
            }
            return;
        };
        if !e.is_sent() || e.lost {
            return;
        }
        let seg = e.seg_size.max(1);
        if e.len() > seg {
            self.snd.fragment_sent(0, seg);
        }
        self.mark_lost(0);
    }

    /// Loss marking after an ACK (Linux `tcp_identify_packet_loss`). Returns whether it was
    /// a NewReno partial acknowledgement.
    pub(super) fn detect_loss(&mut self, shared: &mut Shared, advanced: bool, now: Instant) -> bool {
        let mut partial = false;
        if !self.sack_ok {
            match self.snd.ca {
                CaState::Open | CaState::Disorder if self.snd.dupacks >= self.cfg.dupthresh.max(1) => self.mark_head_lost(),
                CaState::Recovery if advanced && self.snd.una.lt(self.snd.high_seq) => {
                    // RFC 6582 §3.2 step 4: a partial ACK: the next hole is lost.
                    shared.counters.reno_partial_acks += 1;
                    self.mark_head_lost();
                    partial = true;
                }
                _ => {}
            }
        } else if self.cfg.rack {
            shared.counters.lost_retransmit += self.rack_detect_loss(now);
        } else {
            self.dupthresh_mark_lost();
        }
        self.recount();
        partial
    }

    /// RFC 6675 §4 `IsLost`: an entry with at least `DupThresh` SACKed frames above it is
    /// lost.
    fn dupthresh_mark_lost(&mut self) {
        let thresh = self.cfg.dupthresh.max(1);
        let mut sacked_above = 0u32;
        let sent = self.snd.queue.iter().take_while(|e| e.is_sent()).count();
        for idx in (0..sent).rev() {
            let Some(e) = self.snd.queue.get(idx) else { continue };
            if e.sacked {
                sacked_above = sacked_above.saturating_add(e.pcount);
            } else if sacked_above >= thresh && !e.lost {
                self.mark_lost(idx);
            }
        }
    }

    /// RFC 8985 §6.2 step 5 (`RACK_detect_loss`): marks entries sent before the most
    /// recently delivered one and outstanding for longer than `RACK.rtt + reo_wnd`; arms
    /// the reordering timer for the others. Returns how many retransmissions it found lost
    /// (`TCPLostRetransmit`).
    fn rack_detect_loss(&mut self, now: Instant) -> u64 {
        let Some(rack_ts) = self.snd.rack.xmit_ts else { return 0 };
        let in_recovery = matches!(self.snd.ca, CaState::Recovery | CaState::Loss);
        // `tcp_rack_reo_wnd` only once an entry is to be checked: most ACKs leave none
        // (everything acknowledged, or the first entry left was sent after the RACK one).
        let mut reo_wnd: Option<Duration> = None;
        let mut timeout: Option<Duration> = None;
        let mut relost = 0u64;
        // Entries are marked as they are found (no list of indices to allocate): marking
        // changes only that entry and the retransmission hint, which the scan reads not.
        let mut idx = 0;
        while let Some(e) = self.snd.queue.get(idx) {
            idx += 1;
            if !e.is_sent() {
                break;
            }
            if e.sacked || (e.lost && !e.retrans) {
                continue;
            }
            // First transmissions go out in sequence order: past one sent after the RACK
            // segment, only retransmissions (sent later still) remain, and they are newer.
            if !e.ever_retrans && e.sent_at > rack_ts {
                break;
            }
            let wnd = match reo_wnd {
                Some(w) => w,
                None => {
                    let w = self.snd.rack.reo_wnd(in_recovery, self.snd.sacked_out, self.cfg.dupthresh, self.rtt.min_rtt(), self.rtt.srtt());
                    reo_wnd = Some(w);
                    w
                }
            };
            match self.snd.rack.check(e.sent_at, e.end(), wnd, now) {
                Some(d) if d.is_zero() => {
                    relost += u64::from(e.retrans);
                    self.mark_lost(idx - 1);
                }
                Some(d) => timeout = Some(timeout.map_or(d, |t| t.max(d))),
                None => {}
            }
        }
        self.timers.reo = timeout.map(|d| now + d);
        relost
    }

    /// Enters fast recovery (RFC 6675 §5 / RFC 6582 §3.2 step 2; Linux
    /// `tcp_enter_recovery`): `ssthresh` from the algorithm, PRR from the current pipe.
    pub(super) fn enter_recovery(&mut self, shared: &mut Shared, now: Instant) {
        let mss = self.effective_mss();
        if self.sack_ok {
            shared.counters.sack_recovery += 1;
        } else {
            shared.counters.reno_recovery += 1;
        }
        self.stats.recoveries += 1;
        self.mtu_probe_lost(shared, now);
        if self.snd.undo.is_none() {
            self.snd.undo = Some(self.undo_snapshot());
        }
        self.cc.on_congestion_event(self.snd.outstanding(), mss, now);
        self.snd.ca = CaState::Recovery;
        self.snd.high_seq = self.snd.nxt;
        self.snd.prr = Prr::new(self.snd.packets_out);
        self.snd.tlp = None;
        self.timers.tlp = None;
    }

    /// RFC 6937 §3.1: `cwnd = pipe + sndcnt`. `partial_ack`: RFC 6582 §3.2 step 4 sends
    /// the retransmission of the next hole at once, so at least one segment may go.
    pub(super) fn prr_update(&mut self, delivered: u32, mss: u32, partial_ack: bool) {
        let pipe = self.in_flight(mss);
        let ssthresh = (self.cc.ssthresh() / mss.max(1)).max(1);
        let mut sndcnt = self.snd.prr.on_ack(delivered, pipe, ssthresh);
        if partial_ack {
            sndcnt = sndcnt.max(1);
        }
        self.cc.set_cwnd(pipe.saturating_add(sndcnt).max(1).saturating_mul(mss));
    }

    /// Restores the window saved when the episode began and forgets the loss marks of
    /// data not yet retransmitted (Linux `tcp_undo_cwnd_reduction`).
    pub(super) fn undo_reduction(&mut self) {
        self.stats.undos += 1;
        if let Some(u) = self.snd.undo.take() {
            self.cc.undo(u.prior_cwnd, u.prior_ssthresh);
        }
        for e in self.snd.queue.iter_mut() {
            e.lost = false;
        }
        self.snd.fin_lost = false;
        self.snd.rtx_hint = None;
        self.snd.frto = false;
        self.snd.frto_new_data = false;
        self.snd.ca = CaState::Open;
        self.recount();
    }

    /// The reordering timer fired (RFC 8985 §6.3, `tcp_rack_reo_timeout`).
    pub(super) fn on_reo_timeout(&mut self, shared: &mut Shared, now: Instant) {
        self.timers.reo = None;
        if !self.state.is_synchronized() || self.snd.outstanding() == 0 {
            return;
        }
        shared.counters.lost_retransmit += self.rack_detect_loss(now);
        self.recount();
        if matches!(self.snd.ca, CaState::Open | CaState::Disorder) && self.snd.lost_out > 0 {
            self.enter_recovery(shared, now);
            let mss = self.effective_mss();
            self.prr_update(0, mss, false);
        }
    }

    /// `tcp_xmit_retransmit_queue`: retransmits lost entries in sequence order, one MSS per
    /// segment, through the congestion-window gate (send-path §3 step 4). Returns true
    /// when the window stopped it (new data must wait too).
    pub(super) fn xmit_retransmit_queue(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) -> bool {
        if self.snd.lost_out == 0 {
            self.snd.rtx_hint = None;
            return false;
        }
        let mss = self.effective_mss();
        let start = self.snd.rtx_hint.unwrap_or(self.snd.una);
        let mut idx = match self.snd.queue.front() {
            Some(f) if start.gt(f.seq) => self.snd.find(start).unwrap_or(0),
            _ => 0,
        };
        while let Some(e) = self.snd.queue.get(idx) {
            if !e.is_sent() {
                break;
            }
            if e.lost && !e.retrans && !e.sacked {
                if self.in_flight(mss) >= self.cwnd_segments(mss) {
                    self.snd.rtx_hint = Some(e.seq);
                    self.snd.cwnd_limited = true;
                    return true;
                }
                if e.len() < mss {
                    self.snd.collapse_lost(idx, mss);
                }
                if self.snd.queue.get(idx).is_some_and(|e| e.len() > mss) {
                    self.snd.fragment_sent(idx, mss);
                }
                self.retransmit_entry(shared, now, out, idx, mss, Cause::Lost);
            }
            idx += 1;
        }
        if self.snd.fin_counted && self.snd.fin_lost && !self.snd.fin_retrans {
            if self.in_flight(mss) >= self.cwnd_segments(mss) {
                self.snd.cwnd_limited = true;
                return true;
            }
            self.retransmit_fin(shared, now, out, Cause::Lost);
        }
        self.snd.rtx_hint = None;
        false
    }

    /// Sends queue entry `idx` again (it is at most one MSS long).
    pub(super) fn retransmit_entry(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>), idx: usize, mss: u32, cause: Cause) {
        let Some(e) = self.snd.queue.get(idx) else { return };
        let (seq, payload, psh, len, old_pcount) = (e.seq, e.data.clone(), e.psh, e.len(), e.pcount);
        let end = seq.wrapping_add(len);
        // The FIN rides on the last data entry unless it went out alone.
        let fin = self.snd.fin_queued && end == self.snd.write_seq && self.snd.fin_sent() && !self.snd.fin_counted;
        let mut flags = Flags::ACK;
        if psh || fin {
            flags |= Flags::PSH;
        }
        if fin {
            flags |= Flags::FIN;
        }
        // Karn's rule (RFC 6298 §3): no RTT sample across a retransmission.
        self.snd.rtt_probe = None;
        self.emit(shared, now, out, seq, flags, payload, true);
        if let Some(e) = self.snd.queue.get_mut(idx) {
            e.retrans = true;
            e.ever_retrans = true;
            e.sent_at = now;
            // Entries below SND.NXT were sent before this retransmission (the `tcp_ack`
            // fast path waits for SND.UNA to pass them: `on_ack`).
            self.snd.rtx_nxt = Some(self.snd.nxt);
            // Re-segmented at the current MSS: one frame now.
            e.pcount = 1;
            e.seg_size = mss.max(len);
        }
        self.snd.packets_out = self.snd.packets_out.saturating_add(1).saturating_sub(old_pcount);
        self.count_retransmission(shared, cause, now);
    }

    /// Sends the lone FIN again.
    pub(super) fn retransmit_fin(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>), cause: Cause) {
        let seq = self.snd.write_seq;
        self.snd.rtt_probe = None;
        self.emit(shared, now, out, seq, Flags::ACK | Flags::FIN, P::empty(), true);
        self.snd.fin_retrans = true;
        self.count_retransmission(shared, cause, now);
    }

    /// Book-keeping shared by every retransmission: scoreboard sum, PRR, undo, counters
    /// by cause, and the retransmission timer.
    fn count_retransmission(&mut self, shared: &mut Shared, cause: Cause, now: Instant) {
        self.snd.retrans_out = self.snd.retrans_out.saturating_add(1);
        match (cause, self.snd.ca) {
            (Cause::Probe, _) => shared.counters.loss_probe_retrans += 1,
            (Cause::Stall, _) => {}
            (_, CaState::Loss) => {
                shared.counters.rto_retrans += 1;
                self.stats.rto_retrans += 1;
            }
            _ => {
                shared.counters.fast_retrans += 1;
                self.stats.fast_retrans += 1;
            }
        }
        if self.snd.ca == CaState::Recovery {
            self.snd.prr.on_sent(1);
        }
        if let Some(u) = self.snd.undo.as_mut() {
            u.retrans = u.retrans.saturating_add(1);
            if u.retrans_ts.is_none() {
                u.retrans_ts = Some(Self::ts_now(now));
            }
        }
        if self.timers.rtx.is_none() {
            self.timers.rtx = Some(self.rtt.rto_deadline(now));
        }
        // A retransmission arms the probe timer like new data does: after an RTO it is
        // what goes out, and its ACK may be lost too (`probe`, the ACK-stall probe).
        self.schedule_tlp(now, false);
    }

}
