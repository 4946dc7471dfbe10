//! The send side: the send queue (`tcp_sendmsg`), acknowledgement processing (`tcp_ack`,
//! `tcp_clean_rtx_queue`), retransmission (RFC 6298 timeouts, RFC 5681 / RFC 6582 fast
//! retransmit and NewReno recovery) and the transmit loop with the gates of send-path §3
//! (`tcp_write_xmit`).

use std::collections::VecDeque;

use super::{CloseReason, Connection, Event, Segment, State, WriteFlags};
use crate::tcp::payload::Payload;
use crate::tcp::seq::SeqNum;
use crate::tcp::shared::Shared;
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, TcpRepr};

/// One queued segment (kernel: an skb on the write queue). Entries are contiguous in
/// sequence space and cover `[snd_una, write_seq)` (the first may start before `snd_una`
/// only until it is trimmed by the ACK that covers it).
#[derive(Debug, Clone)]
pub(crate) struct QueuedSegment<P> {
    pub seq: SeqNum,
    pub data: P,
    /// PSH goes out on the transmission that ends at this entry's end.
    pub psh: bool,
}

/// Send sequence variables (RFC 9293 §3.3.1) and the send queue.
#[derive(Debug)]
pub(crate) struct SendState<P> {
    pub iss: SeqNum,
    /// Oldest unacknowledged sequence number.
    pub una: SeqNum,
    /// Next new sequence number (one past the highest ever sent; Linux `snd_nxt`).
    pub nxt: SeqNum,
    /// One past the last queued data byte (Linux `write_seq`); the FIN, when queued, takes
    /// this sequence number.
    pub write_seq: SeqNum,
    /// Peer's window in bytes, already scaled.
    pub wnd: u32,
    pub wl1: SeqNum,
    pub wl2: SeqNum,
    /// Largest window the peer ever offered.
    pub max_window: u32,
    pub queue: VecDeque<QueuedSegment<P>>,
    /// Bytes queued and not yet acknowledged (`sk_wmem_queued`).
    pub queued_bytes: u32,
    pub fin_queued: bool,
    /// The last write had `MSG_MORE` (`TCP_NAGLE_CORK`).
    pub corked: bool,
    /// Send everything pending regardless of Nagle on the next transmit (`TCP_NAGLE_PUSH`).
    pub force_push: bool,
    /// End of the last small segment sent (Minshall's Nagle variant, `snd_sml`).
    pub sml: SeqNum,
    /// `write_seq` at the last PSH mark (`pushed_seq`, for `forced_push`).
    pub pushed_seq: SeqNum,
    pub dupacks: u32,
    /// NewReno recovery point while in fast recovery (RFC 6582 `recover`).
    pub recover: Option<SeqNum>,
    /// Highest `recover` ever used, so one window's losses trigger one fast retransmit.
    pub last_recover: SeqNum,
    /// Window inflation during fast recovery (RFC 5681 §3.2 steps 3–4).
    pub inflation: u32,
    /// Retransmit the segment at `una` on the next transmit.
    pub fast_rtx: bool,
    /// After an RTO: the next sequence to retransmit (go-back-N up to `rtx_high`).
    pub rtx_next: Option<SeqNum>,
    pub rtx_high: SeqNum,
    /// Consecutive RTOs without progress.
    pub retries: u32,
    /// Zero-window probes sent without the window opening.
    pub probes: u32,
    /// RTT timing of one segment when timestamps are off: `(end seq, sent at)`.
    pub rtt_probe: Option<(SeqNum, Instant)>,
    /// A write was refused or cut short: report [`Event::Writable`] when space frees.
    pub writable_wanted: bool,
    /// The last transmit burst was limited by `cwnd` (RFC 7661).
    pub cwnd_limited: bool,
    /// Last time new data went out (RFC 5681 §4.1 idle restart).
    pub last_send: Instant,
}

impl<P: Payload> SendState<P> {
    pub fn new(iss: SeqNum, now: Instant) -> Self {
        let data_start = iss.wrapping_add(1);
        SendState {
            iss,
            una: iss,
            nxt: iss,
            write_seq: data_start,
            wnd: 0,
            wl1: SeqNum(0),
            wl2: iss,
            max_window: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            fin_queued: false,
            corked: false,
            force_push: false,
            sml: data_start,
            pushed_seq: data_start,
            dupacks: 0,
            recover: None,
            last_recover: iss,
            inflation: 0,
            fast_rtx: false,
            rtx_next: None,
            rtx_high: iss,
            retries: 0,
            probes: 0,
            rtt_probe: None,
            writable_wanted: false,
            cwnd_limited: false,
            last_send: now,
        }
    }

    /// Records the peer's window from a segment (RFC 9293 §3.10.7.4 fifth step).
    pub fn init_window(&mut self, wnd: u32, wl1: SeqNum, wl2: SeqNum) {
        self.wnd = wnd;
        self.wl1 = wl1;
        self.wl2 = wl2;
        self.max_window = self.max_window.max(wnd);
    }

    /// Whether our FIN has been sent (it occupies `write_seq`).
    pub fn fin_sent(&self) -> bool {
        self.fin_queued && self.nxt.gt(self.write_seq)
    }

    /// Whether our FIN has been acknowledged.
    pub fn fin_acked(&self) -> bool {
        self.fin_queued && self.una.gt(self.write_seq)
    }

    /// Sequence space sent and not acknowledged.
    pub fn outstanding(&self) -> u32 {
        seq_dist(self.una, self.nxt)
    }

    /// Unsent data bytes.
    pub fn unsent_data(&self) -> u32 {
        seq_dist(self.nxt, self.write_seq)
    }

    /// Whether data or a FIN still waits to be sent for the first time.
    pub fn has_unsent(&self) -> bool {
        self.unsent_data() > 0 || (self.fin_queued && !self.fin_sent())
    }

    /// `tcp_sendmsg`: appends `data` to the queue, filling the tail segment up to
    /// `size_goal` before starting a new one (send-path §1). Returns the bytes accepted.
    pub fn enqueue(
        &mut self,
        data: P,
        flags: WriteFlags,
        limit: u32,
        size_goal: u32,
        max_chain: usize,
        max_window: u32,
    ) -> usize {
        let offered = data.len();
        let space = usize::try_from(limit.saturating_sub(self.queued_bytes)).unwrap_or(0);
        if space == 0 {
            self.writable_wanted = true;
            return 0;
        }
        let mut data = if offered > space { data.slice(0..space) } else { data };
        let accepted = data.len();
        let size_goal = usize::try_from(size_goal.max(1)).unwrap_or(1);
        while !data.is_empty() {
            let unsent_start = self.nxt;
            if let Some(tail) = self.queue.back_mut() {
                // Only an entirely unsent tail may still grow.
                let tail_unsent = tail.seq.ge(unsent_start);
                let room = size_goal.saturating_sub(tail.data.len());
                if tail_unsent && room > 0 {
                    let piece = data.split_to(room.min(data.len()));
                    if tail.data.chunk_count() + piece.chunk_count() > max_chain {
                        // The chain is at its segment limit: PSH and a new segment
                        // (kernel `tcp_mark_push` + `new_segment`).
                        tail.psh = true;
                        self.push_new(piece);
                    } else {
                        let n = piece.len();
                        tail.data.append(piece);
                        self.account(n);
                    }
                    continue;
                }
            }
            let piece = data.split_to(size_goal.min(data.len()));
            self.push_new(piece);
        }
        // forced_push: more than half the largest window written since the last PSH.
        if seq_dist(self.pushed_seq, self.write_seq) > max_window / 2 && max_window > 0 {
            self.mark_push();
            self.force_push = true;
        }
        if accepted < offered {
            // Out of space mid-write: push what is queued now (TCP_NAGLE_PUSH).
            self.writable_wanted = true;
            self.mark_push();
            self.force_push = true;
        } else if !flags.more {
            self.mark_push();
        }
        self.corked = flags.more;
        accepted
    }

    fn push_new(&mut self, piece: P) {
        let n = piece.len();
        self.queue.push_back(QueuedSegment { seq: self.write_seq, data: piece, psh: false });
        self.account(n);
    }

    fn account(&mut self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.write_seq = self.write_seq.wrapping_add(n);
        self.queued_bytes = self.queued_bytes.saturating_add(n);
    }

    fn mark_push(&mut self) {
        if let Some(tail) = self.queue.back_mut() {
            tail.psh = true;
        }
        self.pushed_seq = self.write_seq;
    }

    /// Index of the queue entry holding `seq`.
    pub fn find(&self, seq: SeqNum) -> Option<usize> {
        let idx = self.queue.partition_point(|e| e.seq.le(seq)).checked_sub(1)?;
        let e = self.queue.get(idx)?;
        let end = e.seq.wrapping_add(len32(&e.data));
        if seq.lt(end) { Some(idx) } else { None }
    }

    /// The queued data for `[seq, seq + len)`, gathered by reference; also whether the range
    /// ends exactly at the end of a PSH-marked entry.
    pub fn collect(&self, seq: SeqNum, len: u32) -> (P, bool) {
        let mut out = P::empty();
        let mut psh = false;
        let Some(mut idx) = self.find(seq) else { return (out, psh) };
        let mut cur = seq;
        let mut left = len;
        while left > 0 {
            let Some(e) = self.queue.get(idx) else { break };
            let off = seq_dist(e.seq, cur) as usize;
            let elen = e.data.len();
            let take = (elen.saturating_sub(off)).min(left as usize);
            if take == 0 {
                break;
            }
            out.append(e.data.slice(off..off + take));
            let take32 = u32::try_from(take).unwrap_or(u32::MAX);
            cur = cur.wrapping_add(take32);
            left -= take32.min(left);
            psh = off + take == elen && e.psh;
            idx += 1;
        }
        (out, psh)
    }

    /// `tcp_clean_rtx_queue`: drops data acknowledged by `ack`; returns data bytes freed.
    pub fn remove_acked(&mut self, ack: SeqNum) -> u32 {
        let mut freed = 0u32;
        while let Some(front) = self.queue.front_mut() {
            let len = len32(&front.data);
            let end = front.seq.wrapping_add(len);
            if end.le(ack) {
                freed = freed.saturating_add(len);
                self.queue.pop_front();
            } else {
                if front.seq.lt(ack) {
                    // tcp_trim_head: the entry is partly acknowledged.
                    let cut = seq_dist(front.seq, ack);
                    front.data = front.data.slice(cut as usize..front.data.len());
                    front.seq = ack;
                    freed = freed.saturating_add(cut);
                }
                break;
            }
        }
        self.queued_bytes = self.queued_bytes.saturating_sub(freed);
        freed
    }
}

/// Forward distance from `a` to `b`, zero if `b` is before `a`.
pub(crate) fn seq_dist(a: SeqNum, b: SeqNum) -> u32 {
    let d = b - a;
    u32::try_from(d).unwrap_or(0)
}

fn len32<P: Payload>(p: &P) -> u32 {
    u32::try_from(p.len()).unwrap_or(u32::MAX)
}

/// Result of validating a segment's acknowledgement (`tcp_ack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckCheck {
    /// Acceptable (new, duplicate or old within the window); continue with the segment.
    Ok,
    /// SEG.ACK > SND.NXT: ACK and drop (RFC 9293 §3.10.7.4 fifth step).
    TooNew,
    /// SEG.ACK < SND.UNA - MAX.SND.WND: challenge ACK and drop (RFC 5961 §5.2).
    TooOld,
}

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
        if ack == self.snd.una {
            let is_dup = self.snd.outstanding() > 0
                && data_len == 0
                && !repr.flags.contains(Flags::SYN)
                && !repr.flags.contains(Flags::FIN)
                && window == prior_wnd;
            if is_dup {
                self.on_dupack(shared);
            }
            return AckCheck::Ok;
        }
        self.on_new_ack(repr, ack, now);
        AckCheck::Ok
    }

    /// RFC 5681 §3.2 / RFC 6582 §3.2: duplicate-ACK counting and fast retransmit.
    fn on_dupack(&mut self, shared: &mut Shared) {
        if self.snd.rtx_next.is_some() {
            return;
        }
        self.snd.dupacks += 1;
        let mss = self.effective_mss();
        if self.snd.recover.is_some() {
            self.snd.inflation = self.snd.inflation.saturating_add(mss);
        } else if self.snd.dupacks == 3 && self.snd.una.ge(self.snd.last_recover) {
            let flight = self.snd.outstanding();
            self.cc.on_fast_retransmit(flight, mss);
            self.snd.recover = Some(self.snd.nxt);
            self.snd.last_recover = self.snd.nxt;
            self.snd.inflation = 3 * mss;
            self.snd.fast_rtx = true;
            self.snd.rtt_probe = None;
            shared.counters.fast_retrans += 1;
        }
    }

    fn on_new_ack(&mut self, repr: &TcpRepr, ack: SeqNum, now: Instant) {
        let acked = seq_dist(self.snd.una, ack);
        // RTT sample: RFC 7323 §4 from the echoed timestamp, else the timed segment
        // (RFC 6298 §3, Karn's rule: retransmissions clear the timed segment).
        let mut sampled = false;
        if self.ts_ok {
            if let Some((_, tsecr)) = repr.options.timestamps {
                let rtt_ms = Self::ts_now(now).wrapping_sub(tsecr);
                if tsecr != 0 && rtt_ms < 3_600_000 {
                    self.rtt.sample(Duration::from_millis(u64::from(rtt_ms.max(1))));
                    sampled = true;
                }
            }
        }
        if let Some((end, sent)) = self.snd.rtt_probe {
            if ack.ge(end) {
                if !sampled {
                    self.rtt.sample(now.saturating_duration_since(sent));
                }
                self.snd.rtt_probe = None;
            }
        }
        let freed = self.snd.remove_acked(ack);
        self.stats.bytes_acked += u64::from(freed);
        self.snd.una = ack;
        self.snd.retries = 0;
        self.snd.probes = 0;
        self.rtt.reset_backoff();
        if let Some(r) = self.snd.rtx_next {
            if ack.ge(self.snd.rtx_high) {
                self.snd.rtx_next = None;
            } else if r.lt(ack) {
                self.snd.rtx_next = Some(ack);
            }
        }
        let mss = self.effective_mss();
        match self.snd.recover {
            Some(rec) if ack.ge(rec) => {
                // RFC 6582 §3.2 step 3: full acknowledgement ends recovery.
                self.snd.recover = None;
                self.snd.inflation = 0;
                self.cc.on_recovery_exit(mss);
            }
            Some(_) => {
                // RFC 6582 §3.2 step 4: partial acknowledgement: retransmit the next hole,
                // deflate by the amount acknowledged, add back one SMSS.
                self.snd.fast_rtx = true;
                self.snd.inflation = self.snd.inflation.saturating_sub(acked).saturating_add(mss);
            }
            None => self.cc.on_ack(acked, mss, self.snd.cwnd_limited, now),
        }
        self.snd.dupacks = 0;
        // RFC 6298 §5.2 / §5.3.
        self.timers.rtx = if self.snd.outstanding() == 0 { None } else { Some(now + self.rtt.rto()) };
        if self.snd.writable_wanted && self.state.can_send() {
            let free = self.cfg.sndbuf.saturating_sub(self.snd.queued_bytes);
            // sk_stream_write_space: wake when at least a third of the buffer is free.
            if free >= self.cfg.sndbuf / 3 {
                self.snd.writable_wanted = false;
                self.push_event(Event::Writable);
            }
        }
    }

    /// The retransmission timer fired (RFC 6298 §5.4–5.6, RFC 5681 §3.1; `tcp_retransmit_timer`).
    pub(super) fn on_rto(&mut self, shared: &mut Shared, now: Instant) {
        self.timers.rtx = None;
        match self.state {
            State::SynSent | State::SynReceived => {
                if self.syn_sends > self.cfg.syn_retries {
                    self.close_now(shared, CloseReason::Timeout);
                    return;
                }
                self.rtt.back_off();
                self.pending.syn = true;
                shared.counters.timeouts += 1;
            }
            State::Closed | State::TimeWait => {}
            _ => {
                if self.snd.outstanding() == 0 {
                    return;
                }
                self.snd.retries += 1;
                shared.counters.timeouts += 1;
                if self.snd.retries > self.cfg.max_retries {
                    shared.counters.abort_on_timeout += 1;
                    if self.state.counts_as_established() {
                        shared.counters.estab_resets += 1;
                    }
                    self.close_now(shared, CloseReason::Timeout);
                    return;
                }
                let mss = self.effective_mss();
                self.cc.on_timeout(self.snd.outstanding(), mss);
                self.snd.recover = None;
                self.snd.inflation = 0;
                self.snd.dupacks = 0;
                self.snd.fast_rtx = false;
                self.snd.rtt_probe = None;
                self.snd.rtx_next = Some(self.snd.una);
                self.snd.rtx_high = self.snd.nxt;
                self.snd.last_recover = self.snd.nxt;
                self.rtt.back_off();
                // Re-armed when the retransmission goes out.
                self.timers.rtx = Some(now + self.rtt.rto());
            }
        }
    }

    /// The persist timer fired (RFC 9293 §3.8.6.1; `tcp_probe_timer` / `tcp_write_wakeup`).
    pub(super) fn on_persist(&mut self, now: Instant) {
        self.timers.persist = None;
        if !self.state.is_synchronized() || !self.snd.has_unsent() || self.snd.outstanding() > 0 {
            return;
        }
        self.snd.probes = self.snd.probes.saturating_add(1);
        self.pending.window_probe = true;
        self.timers.persist = Some(now + self.persist_interval());
    }

    fn persist_interval(&self) -> Duration {
        let factor = 1u32.checked_shl(self.snd.probes.min(16)).unwrap_or(u32::MAX);
        self.rtt.base_rto().saturating_mul(factor).clamp(self.cfg.min_rto, self.cfg.max_rto)
    }

    fn cwnd(&self) -> u32 {
        self.cc.cwnd().saturating_add(self.snd.inflation)
    }

    /// Sends one segment covering `[seq, seq + max_len)` of already-sent sequence space
    /// (data, plus the FIN if the range reaches it). Returns the sequence space covered.
    fn retransmit(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>), seq: SeqNum, max_len: u32) -> u32 {
        let data_len = seq_dist(seq, self.snd.write_seq).min(max_len);
        let (payload, psh) = self.snd.collect(seq, data_len);
        let data_len = len32(&payload);
        let reaches_end = seq.wrapping_add(data_len) == self.snd.write_seq;
        let fin = self.snd.fin_sent() && reaches_end && (data_len < max_len || data_len == 0);
        if data_len == 0 && !fin {
            return 0;
        }
        let mut flags = Flags::ACK;
        if fin {
            flags |= Flags::FIN;
        }
        if psh || (reaches_end && data_len > 0) {
            flags |= Flags::PSH;
        }
        self.snd.rtt_probe = None;
        self.emit(shared, now, out, seq, flags, payload, true);
        if self.timers.rtx.is_none() {
            self.timers.rtx = Some(now + self.rtt.rto());
        }
        data_len + u32::from(fin)
    }

    /// `tcp_write_xmit`: retransmissions first, then new data through the gates of
    /// send-path §3, then a lone FIN.
    pub(super) fn write_xmit(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        // Gate 1: only synchronized connections that still have data or a FIN to deliver.
        if !self.state.is_synchronized() || self.state == State::TimeWait {
            return;
        }
        let mss = self.effective_mss();
        // Fast retransmit / NewReno partial ACK: the segment at SND.UNA, outside cwnd.
        if self.snd.fast_rtx {
            self.snd.fast_rtx = false;
            let una = self.snd.una;
            self.retransmit(shared, now, out, una, mss);
        }
        // Go-back-N after an RTO, paced by cwnd (slow start from the loss window).
        while let Some(r) = self.snd.rtx_next {
            if r.ge(self.snd.rtx_high) {
                self.snd.rtx_next = None;
                break;
            }
            let in_flight = seq_dist(self.snd.una, r);
            if in_flight >= self.cwnd() {
                self.snd.cwnd_limited = true;
                return;
            }
            let len = seq_dist(r, self.snd.rtx_high).min(mss);
            let sent = self.retransmit(shared, now, out, r, len);
            if sent == 0 {
                self.snd.rtx_next = None;
                break;
            }
            self.snd.rtx_next = Some(r.wrapping_add(sent));
        }
        if self.snd.rtx_next.is_some() {
            return;
        }

        // RFC 5681 §4.1: restart window after an idle period longer than the RTO.
        if self.snd.outstanding() == 0
            && self.snd.has_unsent()
            && now.saturating_duration_since(self.snd.last_send) > self.rtt.rto()
        {
            let iw = self.cfg.initial_cwnd_segments.max(1).saturating_mul(mss);
            self.cc.on_idle_restart(mss, iw);
        }

        let mut blocked_by_rwnd = false;
        let mut cwnd_limited = false;
        let mut sent_any = false;
        loop {
            let nxt = self.snd.nxt;
            let Some(idx) = self.snd.find(nxt) else { break };
            let Some(entry) = self.snd.queue.get(idx) else { break };
            let entry_end = entry.seq.wrapping_add(len32(&entry.data));
            let remaining = seq_dist(nxt, entry_end);
            let is_last = idx + 1 == self.snd.queue.len();
            // Gate 2 (PLPMTUD probing) is not implemented yet.
            // Gate 3: tso_segs = 1 until segmentation offload lands.
            // Gate 4: congestion window.
            let in_flight = self.snd.outstanding();
            let cwnd = self.cwnd();
            if in_flight >= cwnd {
                cwnd_limited = true;
                break;
            }
            // Gate 5: the first MSS must fit in the peer's window (`tcp_snd_wnd_test`).
            let wnd_end = self.snd.una.wrapping_add(self.snd.wnd);
            let first = remaining.min(mss);
            if nxt.wrapping_add(first).gt(wnd_end) {
                blocked_by_rwnd = true;
                break;
            }
            // Gate 6: Nagle (`tcp_nagle_test`) for sub-MSS segments.
            let carries_fin = self.snd.fin_queued && entry_end == self.snd.write_seq;
            if first < mss && !self.nagle_allows(is_last, carries_fin) {
                break;
            }
            // Gate 7: split point (`tcp_mss_split_point`): one MSS until TSO lands.
            let len = first;
            // Gate 8: transmit a reference to the queued data.
            let (payload, psh) = self.snd.collect(nxt, len);
            let len = len32(&payload);
            if len == 0 {
                break;
            }
            let end = nxt.wrapping_add(len);
            let fin = self.snd.fin_queued && end == self.snd.write_seq;
            let mut flags = Flags::ACK;
            if psh || fin {
                flags |= Flags::PSH;
            }
            if fin {
                flags |= Flags::FIN;
            }
            self.emit(shared, now, out, nxt, flags, payload, false);
            // Gate 9: book-keeping (`tcp_event_new_data_sent`).
            self.snd.nxt = end.wrapping_add(u32::from(fin));
            if len < mss {
                self.snd.sml = end;
            }
            if self.snd.rtt_probe.is_none() && !self.ts_ok {
                self.snd.rtt_probe = Some((end, now));
            }
            if self.timers.rtx.is_none() {
                self.timers.rtx = Some(now + self.rtt.rto());
            }
            self.snd.last_send = now;
            sent_any = true;
        }
        // A lone FIN: exempt from cwnd, needs one sequence number of window.
        if self.snd.fin_queued && self.snd.nxt == self.snd.write_seq {
            let wnd_end = self.snd.una.wrapping_add(self.snd.wnd);
            if self.snd.nxt.lt(wnd_end) || self.snd.outstanding() == 0 && self.snd.wnd > 0 {
                let seq = self.snd.nxt;
                self.emit(shared, now, out, seq, Flags::ACK | Flags::FIN, P::empty(), false);
                self.snd.nxt = seq.wrapping_add(1);
                if self.timers.rtx.is_none() {
                    self.timers.rtx = Some(now + self.rtt.rto());
                }
                sent_any = true;
            } else {
                blocked_by_rwnd = true;
            }
        }
        self.snd.force_push = false;
        // Gate 10: RFC 7661 cwnd-limited tracking.
        if sent_any || cwnd_limited {
            self.snd.cwnd_limited = cwnd_limited;
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

    /// `tcp_nagle_test` with Minshall's check, for a segment shorter than the MSS.
    fn nagle_allows(&self, is_last: bool, carries_fin: bool) -> bool {
        if self.snd.force_push || carries_fin || !is_last {
            return true;
        }
        if self.snd.corked {
            return false;
        }
        if self.cfg.nodelay {
            return true;
        }
        // Minshall: hold while a previously sent small segment is unacknowledged.
        !(self.snd.sml.gt(self.snd.una) && self.snd.sml.le(self.snd.nxt))
    }

    /// A zero-window probe (`tcp_write_wakeup`): new data if any fits in the window,
    /// else an ACK with an old sequence number that makes the peer re-advertise.
    pub(super) fn send_window_probe(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        shared.counters.window_probes += 1;
        let nxt = self.snd.nxt;
        let room = seq_dist(nxt, self.snd.una.wrapping_add(self.snd.wnd));
        let len = room.min(self.snd.unsent_data()).min(self.effective_mss());
        if len > 0 {
            let (payload, _) = self.snd.collect(nxt, len);
            let len = len32(&payload);
            let end = nxt.wrapping_add(len);
            let fin = self.snd.fin_queued && end == self.snd.write_seq && len < room;
            let mut flags = Flags::ACK | Flags::PSH;
            if fin {
                flags |= Flags::FIN;
            }
            self.emit(shared, now, out, nxt, flags, payload, false);
            self.snd.nxt = end.wrapping_add(u32::from(fin));
            self.snd.last_send = now;
            self.timers.persist = None;
            if self.timers.rtx.is_none() {
                self.timers.rtx = Some(now + self.rtt.rto());
            }
        } else {
            let seq = self.snd.una.wrapping_sub(1);
            self.emit(shared, now, out, seq, Flags::ACK, P::empty(), false);
        }
    }
}
