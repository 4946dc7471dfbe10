//! The transmit loop (`tcp_write_xmit`, send-path §3): retransmissions first, then every
//! unsent queue entry in order through the gates — MTU probe, segment count, congestion
//! window, receive window, Nagle / TSO deferral, split point — transmitted as a reference to
//! the queued data, then book-keeping and RFC 7661 cwnd-limited tracking. Also the
//! zero-window probe (`tcp_write_wakeup`). Retransmissions and loss probes come from
//! `loss`.

use super::send::seq_dist;
use super::{Connection, Segment, State};
use crate::tcp::payload::Payload;
use crate::tcp::shared::Shared;
use crate::time::Instant;
use crate::wire::tcp::Flags;

/// Linux `sysctl_tcp_tso_win_divisor`: a TSO burst may wait for a third of the window.
const TSO_WIN_DIVISOR: u32 = 3;

impl<P: Payload> Connection<P> {
    /// `tcp_write_xmit`: retransmissions first, then new data through the gates of
    /// send-path §3, then a lone FIN.
    pub(super) fn write_xmit(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        // Gate 1: only synchronized connections that still have data or a FIN to deliver.
        if !self.state.is_synchronized() || self.state == State::TimeWait {
            return;
        }
        // A tail loss probe that fell due (RFC 8985 §7.3).
        if self.pending.tlp {
            self.send_loss_probe(shared, now, out);
        }
        // Retransmissions of lost entries first, through the cwnd gate
        // (`tcp_xmit_retransmit_queue`); when the window stops them, new data waits too.
        // F-RTO step 2b (RFC 5682 §3): once, new data instead of retransmissions.
        if !core::mem::take(&mut self.snd.frto_new_data) && self.xmit_retransmit_queue(shared, now, out) {
            return;
        }
        let mss = self.effective_mss();

        // RFC 5681 §4.1: restart window after an idle period longer than the RTO.
        if self.snd.outstanding() == 0
            && self.snd.has_unsent()
            && now.as_nanos().saturating_sub(self.snd.last_send.as_nanos()) > self.rtt.rto_nanos()
        {
            let iw = crate::tcp::congestion::initial_window(self.cfg.initial_cwnd_segments, mss);
            self.cc.on_idle_restart(mss, iw, now);
        }

        let mut blocked_by_rwnd = false;
        let mut cwnd_limited = false;
        let mut sent_any = false;
        // Gate 2: PLPMTUD may send one larger probe first (`tcp_mtu_probe`).
        match self.mtu_probe(shared, now, out) {
            super::pmtu::ProbeOutcome::Sent => sent_any = true,
            super::pmtu::ProbeOutcome::Wait => return,
            super::pmtu::ProbeOutcome::NotNow => {}
        }
        let mss = self.effective_mss();
        let mut push_one = core::mem::take(&mut self.snd.push_one);
        // `tcp_send_head`: once an entry is sent, the next unsent one is the entry after it
        // (entries are contiguous), so only the first is searched for. Linux keeps the
        // unsent skbs on their own list (`sk_write_queue`, the sent ones on the
        // retransmission rb-tree), so its send head is that list's head, O(1). Here sent
        // entries are a prefix of one queue (SND.NXT only moves forward, over whole
        // entries), so the tail answers the two common cases without a search: it starts
        // at SND.NXT (one unsent write behind everything sent: request/response), or it
        // ends at or before it (nothing unsent). Otherwise the queue is searched.
        let mut send_head: Option<usize> = match self.snd.queue.back() {
            None => Some(0),
            Some(tail) if tail.seq == self.snd.nxt => Some(self.snd.queue.len() - 1),
            Some(tail) if tail.end().le(self.snd.nxt) => Some(self.snd.queue.len()),
            Some(_) => None,
        };
        loop {
            let nxt = self.snd.nxt;
            let idx = match send_head.map(|i| (i, self.snd.queue.get(i).map(|e| e.seq))) {
                Some((i, Some(seq))) if seq == nxt => i,
                // Past the last entry: nothing unsent is left (`find` would say so too).
                Some((_, None)) => break,
                _ => match self.snd.split_at_seq(nxt) {
                    Some(i) => i,
                    None => break,
                },
            };
            let Some(entry) = self.snd.queue.get(idx) else { break };
            let len = entry.len();
            let entry_end = entry.end();
            let is_last = idx + 1 == self.snd.queue.len();
            let carries_fin = self.snd.fin_queued && entry_end == self.snd.write_seq;
            // Gate 3: segment count (`tcp_init_tso_segs`).
            let tso_segs = self.tso_segs(len, mss);
            // Gate 4: congestion window (`tcp_cwnd_test`).
            let quota = self.cwnd_segments(mss).saturating_sub(self.in_flight(mss));
            if quota == 0 {
                cwnd_limited = true;
                break;
            }
            // Gate 5: the first MSS must fit in the peer's window (`tcp_snd_wnd_test`).
            let wnd_end = self.snd.una.wrapping_add(self.snd.wnd);
            if nxt.wrapping_add(len.min(mss)).gt(wnd_end) {
                blocked_by_rwnd = true;
                break;
            }
            // Gate 6: Nagle for single-MSS segments, TSO deferral for larger ones.
            if tso_segs == 1 {
                if !self.nagle_test(len, mss, is_last, carries_fin) {
                    break;
                }
            } else if !push_one && !carries_fin && self.tso_should_defer(len, mss, is_last, now, &mut cwnd_limited) {
                break;
            }
            // Gate 7: split point in whole MSS units (`tcp_mss_split_point`, `tso_fragment`).
            let limit = if tso_segs > 1 {
                let max_segs = quota.min(self.gso_max_segs(mss));
                self.mss_split_point(nxt, len, mss, max_segs, is_last)
            } else {
                mss
            };
            if len > limit {
                self.snd.fragment(idx, limit);
            }
            // Gates 8 and 9: transmit a reference, then book-keeping.
            self.transmit_entry(shared, now, out, idx, mss, false);
            send_head = Some(idx + 1);
            sent_any = true;
            // `tcp_push_one` exempts only the head; the rest follows the normal rules (the
            // kernel's `tcp_push` after the write sends it).
            push_one = false;
        }
        // A lone FIN: exempt from cwnd (send-path §3 step 4), needs one sequence number of
        // window.
        if self.snd.fin_queued && self.snd.nxt == self.snd.write_seq {
            let wnd_end = self.snd.una.wrapping_add(self.snd.wnd);
            if self.snd.nxt.lt(wnd_end) || self.snd.outstanding() == 0 && self.snd.wnd > 0 {
                let seq = self.snd.nxt;
                self.emit(shared, now, out, seq, Flags::ACK | Flags::FIN, P::empty(), false);
                self.snd.nxt = seq.wrapping_add(1);
                self.snd.packets_out = self.snd.packets_out.saturating_add(1);
                self.snd.fin_counted = true;
                if self.timers.rtx.is_none() {
                    self.timers.rtx = Some(self.rtt.rto_deadline(now));
                }
                sent_any = true;
            } else {
                blocked_by_rwnd = true;
            }
        }
        self.snd.force_push = None;
        if sent_any {
            // RFC 8985 §7.2: "start or restart" the probe timeout after new data (Linux
            // `tcp_write_xmit` -> `tcp_schedule_loss_probe`, which resets the timer): the PTO
            // then counts from this flight and its size, not from an earlier, smaller one.
            self.schedule_tlp(now, true);
        }
        // Gate 10: RFC 7661 cwnd-limited tracking (`tcp_cwnd_validate`): limited when the
        // window stopped us, or in slow start when more than half of it is in use.
        if sent_any || cwnd_limited {
            let cwnd = self.cwnd_segments(mss);
            let in_flight = self.in_flight(mss);
            let slow_start = self.cc.cwnd() < self.cc.ssthresh();
            self.snd.cwnd_limited = cwnd_limited || in_flight >= cwnd || (slow_start && in_flight.saturating_mul(2) > cwnd);
        }
        // Gate 5 follow-up: with nothing in flight and data blocked by the window, the
        // persist timer must run.
        if blocked_by_rwnd && self.snd.outstanding() == 0 {
            if self.timers.persist.is_none() {
                self.timers.persist = Some(now + self.persist_interval());
            }
        } else if !blocked_by_rwnd {
            self.timers.persist = None;
            self.snd.probes = 0;
        }
    }

    /// `tcp_init_tso_segs` (send-path §3 step 3): `ceil(len / mss)` when the segment is
    /// larger than the MSS and segmentation offload is available, else 1.
    pub(super) fn tso_segs(&self, len: u32, mss: u32) -> u32 {
        if self.cfg.tso && len > mss { len.div_ceil(mss.max(1)) } else { 1 }
    }

    /// The most segments one super-segment may hold (`sk_gso_max_segs` from `size_goal`).
    fn gso_max_segs(&self, mss: u32) -> u32 {
        (self.size_goal() / mss.max(1)).max(1)
    }

    /// `tcp_nagle_test` with Minshall's check (send-path §3 step 6): send a segment if it
    /// is full-sized, carries FIN, is not the last queued, the caller pushes, or no-delay
    /// is set; hold it while corked, or while an earlier small segment is unacknowledged.
    fn nagle_test(&self, len: u32, mss: u32, is_last: bool, carries_fin: bool) -> bool {
        // Entries other than the last are pushed (`TCP_NAGLE_PUSH` for non-tail skbs).
        if !is_last || carries_fin {
            return true;
        }
        let end = self.snd.nxt.wrapping_add(len);
        if self.snd.pushed(end) {
            return true;
        }
        !self.nagle_check(len < mss)
    }

    /// `tcp_nagle_check`: whether a partial (sub-MSS) segment must be held.
    fn nagle_check(&self, partial: bool) -> bool {
        if !partial {
            return false;
        }
        if self.snd.cork || self.snd.corked {
            return true;
        }
        !self.snd.nodelay && self.snd.packets_out > 0 && self.minshall_check()
    }

    /// `tcp_minshall_check`: a small segment sent earlier is still unacknowledged.
    fn minshall_check(&self) -> bool {
        self.snd.sml.gt(self.snd.una) && self.snd.sml.le(self.snd.nxt)
    }

    /// `tcp_tso_should_defer` (send-path §3 step 6): wait for the window to allow a larger
    /// burst, but only while frames are in flight whose ACKs will re-run the loop, and
    /// never when the oldest of them was sent less than half an RTT ago (its ACK is then
    /// too far off), in recovery, or once a third of the window can go.
    fn tso_should_defer(&self, len: u32, mss: u32, is_last: bool, now: Instant, cwnd_limited: &mut bool) -> bool {
        if matches!(self.snd.ca, super::CaState::Recovery | super::CaState::Loss) {
            return false;
        }
        // Bounded by the ACK clock: nothing in flight, nothing to wait for.
        let Some(head) = self.snd.queue.front().filter(|e| e.is_sent()) else { return false };
        let in_flight = self.in_flight(mss);
        let cwnd = self.cwnd_segments(mss);
        let send_win = seq_dist(self.snd.nxt, self.snd.una.wrapping_add(self.snd.wnd));
        let cong_win = cwnd.saturating_sub(in_flight).saturating_mul(mss);
        let limit = send_win.min(cong_win);
        // A full-sized burst can go.
        if limit >= self.gso_max_segs(mss).saturating_mul(mss) {
            return false;
        }
        // A middle entry will not grow: send it if it fits.
        if !is_last && limit >= len {
            return false;
        }
        let chunk = self.snd.wnd.min(cwnd.saturating_mul(mss)) / TSO_WIN_DIVISOR;
        if limit >= chunk {
            return false;
        }
        let half_srtt = self.rtt.srtt().map(|s| s / 2).unwrap_or_default();
        if now.saturating_duration_since(head.sent_at) < half_srtt {
            return false;
        }
        if cong_win < send_win && cong_win <= len {
            *cwnd_limited = true;
        }
        true
    }

    /// `tcp_mss_split_point` (send-path §3 step 7): how much of the entry at `seq` to send,
    /// in whole MSS units within the receive window and `max_segs`; the last, partial MSS
    /// of the tail entry only when Nagle allows it.
    fn mss_split_point(&self, seq: crate::tcp::seq::SeqNum, len: u32, mss: u32, max_segs: u32, is_last: bool) -> u32 {
        let window = seq_dist(seq, self.snd.una.wrapping_add(self.snd.wnd));
        let max_len = mss.saturating_mul(max_segs.max(1));
        if max_len <= window && !is_last {
            return max_len;
        }
        let needed = len.min(window);
        if max_len <= needed {
            return max_len;
        }
        let partial = needed % mss;
        if !self.snd.pushed(seq.wrapping_add(needed)) && self.nagle_check(partial != 0) {
            return needed - partial;
        }
        needed
    }

    /// Sends queue entry `idx` whole (gates 8 and 9): a reference to its data, PSH when it
    /// is marked (or `force_psh`), FIN when it ends the stream; then `snd_nxt`,
    /// `packets_out += tso_segs`, the retransmission timer and Minshall's `snd_sml`
    /// (`tcp_event_new_data_sent`, `tcp_minshall_update`).
    pub(super) fn transmit_entry(
        &mut self,
        shared: &mut Shared,
        now: Instant,
        out: &mut impl FnMut(Segment<P>),
        idx: usize,
        mss: u32,
        force_psh: bool,
    ) {
        let Some(e) = self.snd.queue.get(idx) else { return };
        let (seq, payload, psh, len) = (e.seq, e.data.clone(), e.psh, e.len());
        let end = seq.wrapping_add(len);
        let fin = self.snd.fin_queued && end == self.snd.write_seq;
        let mut flags = Flags::ACK;
        if psh || fin || force_psh {
            flags |= Flags::PSH;
        }
        if fin {
            flags |= Flags::FIN;
        }
        let pcount = self.tso_segs(len, mss);
        let gso_mss = if pcount > 1 { u16::try_from(mss).unwrap_or(u16::MAX) } else { 0 };
        self.emit_segment(shared, now, out, seq, flags, payload, false, gso_mss);
        if let Some(e) = self.snd.queue.get_mut(idx) {
            e.pcount = pcount;
            e.seg_size = mss;
            e.sent_at = now;
        }
        self.snd.nxt = end.wrapping_add(u32::from(fin));
        self.snd.packets_out = self.snd.packets_out.saturating_add(pcount);
        if self.snd.ca == super::CaState::Recovery {
            // RFC 6937: `prr_out` counts new data too.
            self.snd.prr.on_sent(pcount);
        }
        if len < pcount.saturating_mul(mss) {
            self.snd.sml = end;
        }
        if self.snd.rtt_probe.is_none() && !self.ts_ok {
            self.snd.rtt_probe = Some((end, now));
        }
        if self.timers.rtx.is_none() {
            self.timers.rtx = Some(self.rtt.rto_deadline(now));
        }
        self.snd.last_send = now;
    }

    /// A zero-window probe (`tcp_write_wakeup`): new data if any fits in the window,
    /// else an ACK with an old sequence number that makes the peer re-advertise.
    pub(super) fn send_window_probe(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        shared.counters.window_probes += 1;
        let nxt = self.snd.nxt;
        let mss = self.effective_mss();
        let room = seq_dist(nxt, self.snd.una.wrapping_add(self.snd.wnd));
        let len = room.min(self.snd.unsent_data()).min(mss);
        if len > 0 {
            if let Some(idx) = self.snd.split_at_seq(nxt) {
                self.snd.fragment(idx, len);
                self.transmit_entry(shared, now, out, idx, mss, true);
                self.timers.persist = None;
                return;
            }
        }
        let seq = self.snd.una.wrapping_sub(1);
        self.emit(shared, now, out, seq, Flags::ACK, P::empty(), false);
    }
}
