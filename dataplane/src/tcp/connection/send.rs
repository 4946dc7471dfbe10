//! The send side: the send queue (`tcp_sendmsg`, send-path §1 and §2), acknowledgement
//! processing (`tcp_ack`, `tcp_clean_rtx_queue`) and retransmission (RFC 6298 timeouts,
//! RFC 5681 / RFC 6582 fast retransmit and NewReno recovery). The transmit loop with the
//! gates of send-path §3 (`tcp_write_xmit`) is in `xmit`.
//!
//! Packet accounting follows Linux: every transmitted queue entry remembers how many
//! MSS-sized frames it went out as (`tcp_skb_pcount`), `packets_out` sums them, and
//! `in_flight = packets_out - (sacked_out + lost_out) + retrans_out`
//! (`tcp_packets_in_flight`). This engine recovers NewReno-style, so `sacked_out` is the
//! Reno count of duplicate ACKs (the window inflation of RFC 5681 §3.2 in segments),
//! `lost_out` counts what an RTO marked lost (`tcp_enter_loss`), and `retrans_out` the
//! go-back-N retransmissions since; a fast retransmission marks one segment lost and
//! retransmits it, which cancels out.

use std::collections::VecDeque;

use super::{CloseReason, Connection, Event, Segment, State, WriteFlags};
use crate::tcp::payload::Payload;
use crate::tcp::seq::SeqNum;
use crate::tcp::shared::Shared;
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, TcpRepr};

/// One queued segment (kernel: an skb on the write queue). Entries are contiguous in
/// sequence space and cover `[snd_una, write_seq)` (the first may start before `snd_una`
/// only until it is trimmed by the ACK that covers it). Unsent entries start at or after
/// `snd_nxt`: transmission always takes whole entries, cutting them first
/// ([`SendState::fragment`], kernel `tso_fragment`).
#[derive(Debug, Clone)]
pub(crate) struct QueuedSegment<P> {
    pub seq: SeqNum,
    pub data: P,
    /// PSH goes out on the transmission that ends at this entry's end.
    pub psh: bool,
    /// Frames it was sent as (`tcp_skb_pcount`); 0 while unsent.
    pub pcount: u32,
    /// The MSS it was sent with (to recount `pcount` when its head is acknowledged).
    pub seg_size: u32,
    /// When it was (last) sent for the first time.
    pub sent_at: Instant,
}

impl<P: Payload> QueuedSegment<P> {
    pub fn len(&self) -> u32 {
        len32(&self.data)
    }

    pub fn end(&self) -> SeqNum {
        self.seq.wrapping_add(self.len())
    }

    pub fn is_sent(&self) -> bool {
        self.pcount > 0
    }
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
    /// The last write had `MSG_MORE` (`TCP_NAGLE_CORK` for that write).
    pub corked: bool,
    /// `TCP_CORK` is set.
    pub cork: bool,
    /// `TCP_NODELAY` is set (`TCP_NAGLE_OFF`).
    pub nodelay: bool,
    /// Send what was queued up to here regardless of Nagle and cork on the next transmit
    /// (`__tcp_push_pending_frames` with `TCP_NAGLE_PUSH`, which in the kernel happens at
    /// once and so covers only the data queued by then).
    pub force_push: Option<SeqNum>,
    /// The head of the unsent queue became full during a write: send it at once, without
    /// TSO deferral (`tcp_push_one`).
    pub push_one: bool,
    /// End of the last small segment sent (Minshall's Nagle variant, `snd_sml`).
    pub sml: SeqNum,
    /// `write_seq` at the last PSH mark (`pushed_seq`, for `forced_push`).
    pub pushed_seq: SeqNum,
    /// Frames sent and not acknowledged (`packets_out`).
    pub packets_out: u32,
    /// Frames an RTO marked lost and not yet acknowledged (`lost_out`).
    pub lost_out: u32,
    /// A lone FIN was sent and is counted in `packets_out`.
    pub fin_counted: bool,
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
    pub fn new(iss: SeqNum, nodelay: bool, now: Instant) -> Self {
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
            cork: false,
            nodelay,
            force_push: None,
            push_one: false,
            sml: data_start,
            pushed_seq: data_start,
            packets_out: 0,
            lost_out: 0,
            fin_counted: false,
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

    /// `forced_push`: more than half the largest window the peer offered was written since
    /// the last PSH.
    fn forced_push(&self, max_window: u32) -> bool {
        max_window > 0 && seq_dist(self.pushed_seq, self.write_seq) > max_window / 2
    }

    /// `tcp_sendmsg`: appends `data` to the queue (send-path §1). The tail segment is filled
    /// up to `size_goal` before a new one is started; a piece that continues the tail's
    /// last chunk coalesces with it, and once a segment's chain would exceed `max_chain`
    /// chunks it is marked PSH and a new segment started (`tcp_mark_push`, `new_segment`).
    /// PSH (send-path §2) marks the end of the write unless `flags.more`, and is forced
    /// (with everything pending pushed) once more than half the largest window was written
    /// since the last PSH. A segment that becomes full at the head of the unsent queue is
    /// sent at once (`tcp_push_one`). Returns the bytes accepted (bounded by `limit`, the
    /// send buffer).
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
        let size_goal32 = size_goal.max(1);
        let size_goal = usize::try_from(size_goal32).unwrap_or(usize::MAX);
        let mut first_piece = true;
        while !data.is_empty() {
            let nxt = self.nxt;
            let mut filled = None;
            if let Some(tail) = self.queue.back_mut() {
                // Only an entirely unsent tail may still grow.
                let room = size_goal.saturating_sub(tail.data.len());
                if !tail.is_sent() && tail.seq.ge(nxt) && room > 0 {
                    let piece = data.split_to(room.min(data.len()));
                    let mut merged = tail.data.clone();
                    merged.append(piece.clone());
                    if first_piece && merged.chunk_count() <= max_chain {
                        // The previous write's PSH moves to the end of this one
                        // (`if (!copied) tcp_flags &= ~TCPHDR_PSH`).
                        tail.psh = false;
                    }
                    if merged.chunk_count() > max_chain {
                        // The chain is at its segment limit: PSH and a new segment.
                        tail.psh = true;
                        self.pushed_seq = self.write_seq;
                        filled = Some(self.push_new(piece));
                    } else {
                        let n = piece.len();
                        tail.data = merged;
                        filled = Some(self.queue.len() - 1);
                        self.account(n);
                    }
                }
            }
            first_piece = false;
            let idx = match filled {
                Some(i) => i,
                None => {
                    let piece = data.split_to(size_goal.min(data.len()));
                    self.push_new(piece)
                }
            };
            // `if (skb->len < size_goal) continue;` then forced_push or tcp_push_one.
            let (full, at_head) = match self.queue.get(idx) {
                Some(e) => (e.len() >= size_goal32, e.seq == nxt && !e.is_sent()),
                None => (false, false),
            };
            if full {
                if self.forced_push(max_window) {
                    self.mark_push();
                    self.push_pending();
                } else if at_head {
                    self.push_one = true;
                }
            }
        }
        if accepted < offered {
            // Out of space mid-write: push what is queued now (TCP_NAGLE_PUSH).
            self.writable_wanted = true;
            self.mark_push();
            self.push_pending();
        } else if !flags.more || self.forced_push(max_window) {
            self.mark_push();
        }
        self.corked = flags.more;
        accepted
    }

    /// `TCP_NAGLE_PUSH` for everything queued so far.
    pub fn push_pending(&mut self) {
        self.force_push = Some(self.write_seq);
    }

    /// Whether the unsent data up to `end` is pushed regardless of Nagle and cork.
    pub fn pushed(&self, end: SeqNum) -> bool {
        self.force_push.is_some_and(|to| end.le(to))
    }

    fn push_new(&mut self, piece: P) -> usize {
        let n = piece.len();
        let seq = self.write_seq;
        self.queue.push_back(QueuedSegment { seq, data: piece, psh: false, pcount: 0, seg_size: 0, sent_at: self.last_send });
        self.account(n);
        self.queue.len() - 1
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
        if seq.lt(e.end()) { Some(idx) } else { None }
    }

    /// Cuts unsent entry `idx` after `at` bytes (`tso_fragment` / `tcp_fragment`): the
    /// first part keeps the index, the rest follows it and inherits PSH. No bytes move.
    pub fn fragment(&mut self, idx: usize, at: u32) {
        let Some(e) = self.queue.get_mut(idx) else { return };
        if at == 0 || at >= e.len() || e.is_sent() {
            return;
        }
        let at_usize = at as usize;
        let tail = e.data.split_off(at_usize);
        let rest = QueuedSegment {
            seq: e.seq.wrapping_add(at),
            data: tail,
            psh: e.psh,
            pcount: 0,
            seg_size: 0,
            sent_at: e.sent_at,
        };
        e.psh = false;
        self.queue.insert(idx + 1, rest);
    }

    /// Makes sure an entry starts exactly at `seq` (an unsent entry holding it is cut).
    pub fn split_at_seq(&mut self, seq: SeqNum) -> Option<usize> {
        let idx = self.find(seq)?;
        let e = self.queue.get(idx)?;
        if e.seq == seq {
            return Some(idx);
        }
        let off = seq_dist(e.seq, seq);
        if e.is_sent() {
            return None;
        }
        self.fragment(idx, off);
        Some(idx + 1)
    }

    /// Joins unsent entries `idx..` into entry `idx` until it holds `len` bytes (the MTU
    /// probe of `tcp_mtu_probe`; chains are linked, no bytes copied). Returns the length
    /// reached.
    pub fn merge_unsent(&mut self, idx: usize, len: u32) -> u32 {
        loop {
            let Some(cur) = self.queue.get(idx).map(QueuedSegment::len) else { return 0 };
            if cur >= len {
                self.fragment(idx, len);
                return len;
            }
            let Some(next) = self.queue.get(idx + 1) else { return cur };
            if next.is_sent() {
                return cur;
            }
            let Some(next) = self.queue.remove(idx + 1) else { return cur };
            if let Some(e) = self.queue.get_mut(idx) {
                e.data.append(next.data);
                e.psh = next.psh;
            }
        }
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

    /// `tcp_clean_rtx_queue`: drops data acknowledged by `ack` and releases the frames it
    /// counted in `packets_out` (a partly acknowledged entry is recounted, `tcp_tso_acked`).
    /// Returns data bytes freed.
    pub fn remove_acked(&mut self, ack: SeqNum) -> u32 {
        let mut freed = 0u32;
        let mut freed_pkts = 0u32;
        while let Some(front) = self.queue.front_mut() {
            let len = front.len();
            let end = front.seq.wrapping_add(len);
            if end.le(ack) {
                freed = freed.saturating_add(len);
                freed_pkts = freed_pkts.saturating_add(front.pcount);
                self.queue.pop_front();
            } else {
                if front.seq.lt(ack) {
                    // tcp_trim_head: the entry is partly acknowledged.
                    let cut = seq_dist(front.seq, ack);
                    front.data = front.data.slice(cut as usize..front.data.len());
                    front.seq = ack;
                    freed = freed.saturating_add(cut);
                    if front.is_sent() {
                        let left = front.len().div_ceil(front.seg_size.max(1)).max(1);
                        freed_pkts = freed_pkts.saturating_add(front.pcount.saturating_sub(left));
                        front.pcount = left;
                    }
                }
                break;
            }
        }
        if self.fin_counted && self.fin_queued && ack.gt(self.write_seq) {
            self.fin_counted = false;
            freed_pkts = freed_pkts.saturating_add(1);
        }
        self.packets_out = self.packets_out.saturating_sub(freed_pkts);
        self.lost_out = self.lost_out.saturating_sub(freed_pkts).min(self.packets_out);
        self.queued_bytes = self.queued_bytes.saturating_sub(freed);
        freed
    }
}

/// Forward distance from `a` to `b`, zero if `b` is before `a`.
pub(crate) fn seq_dist(a: SeqNum, b: SeqNum) -> u32 {
    let d = b - a;
    u32::try_from(d).unwrap_or(0)
}

pub(crate) fn len32<P: Payload>(p: &P) -> u32 {
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
                self.on_dupack(shared, now);
            }
            return AckCheck::Ok;
        }
        self.on_new_ack(shared, repr, ack, now);
        AckCheck::Ok
    }

    /// RFC 5681 §3.2 / RFC 6582 §3.2: duplicate-ACK counting and fast retransmit.
    fn on_dupack(&mut self, shared: &mut Shared, now: Instant) {
        if self.snd.rtx_next.is_some() {
            return;
        }
        self.snd.dupacks += 1;
        let mss = self.effective_mss();
        if self.snd.recover.is_some() {
            self.snd.inflation = self.snd.inflation.saturating_add(mss);
        } else if self.snd.dupacks == 3 && self.snd.una.ge(self.snd.last_recover) {
            let flight = self.snd.outstanding();
            self.mtu_probe_lost(shared, now);
            self.cc.on_fast_retransmit(flight, mss);
            self.snd.recover = Some(self.snd.nxt);
            self.snd.last_recover = self.snd.nxt;
            self.snd.inflation = 3 * mss;
            self.snd.fast_rtx = true;
            self.snd.rtt_probe = None;
            shared.counters.fast_retrans += 1;
        }
    }

    fn on_new_ack(&mut self, shared: &mut Shared, repr: &TcpRepr, ack: SeqNum, now: Instant) {
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
        self.mtu_probe_acked(shared, ack, now);
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
            let sndbuf = self.sndbuf();
            let free = sndbuf.saturating_sub(self.snd.queued_bytes);
            // sk_stream_write_space: wake when at least a third of the buffer is free.
            if free >= sndbuf / 3 {
                self.snd.writable_wanted = false;
                self.push_event(Event::Writable);
            }
        }
    }

    /// The retransmission timer fired (RFC 6298 §5.4–5.6, RFC 5681 §3.1; `tcp_retransmit_timer`).
    pub(super) fn on_rto(&mut self, shared: &mut Shared, now: Instant) {
        // A lost PLPMTUD probe is a failed probe, not a black hole (RFC 4821 §7.5).
        if self.state.is_synchronized() && self.snd.outstanding() > 0 {
            self.mtu_probe_lost(shared, now);
        }
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
                // `tcp_enter_loss`: everything outstanding is marked lost.
                self.snd.lost_out = self.snd.packets_out;
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

    pub(super) fn persist_interval(&self) -> Duration {
        let factor = 1u32.checked_shl(self.snd.probes.min(16)).unwrap_or(u32::MAX);
        self.rtt.base_rto().saturating_mul(factor).clamp(self.cfg.min_rto, self.cfg.max_rto)
    }

    /// The congestion window in segments of `mss` (`snd_cwnd`).
    pub(super) fn cwnd_segments(&self, mss: u32) -> u32 {
        (self.cc.cwnd() / mss.max(1)).max(1)
    }

    /// `tcp_packets_in_flight`: `packets_out - (sacked_out + lost_out) + retrans_out`
    /// (send-path §3 step 4). See the module documentation for how the terms map onto this
    /// engine's NewReno recovery.
    pub(super) fn in_flight(&self, mss: u32) -> u32 {
        let mss = mss.max(1);
        let s = &self.snd;
        // Reno `sacked_out`: segments the duplicate ACKs say have left the network.
        let sacked_out = (s.inflation / mss).min(s.packets_out);
        // Go-back-N retransmissions are whole MSS from SND.UNA.
        let retrans_out = if s.lost_out > 0 || s.rtx_next.is_some() {
            let upto = match s.rtx_next {
                Some(r) if r.lt(s.rtx_high) => r,
                _ => s.rtx_high,
            };
            seq_dist(s.una, upto).div_ceil(mss)
        } else {
            0
        };
        s.packets_out.saturating_sub(sacked_out.saturating_add(s.lost_out)).saturating_add(retrans_out)
    }

    /// Sends one segment covering `[seq, seq + max_len)` of already-sent sequence space
    /// (data, plus the FIN if the range reaches it). Returns the sequence space covered.
    pub(super) fn retransmit(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>), seq: SeqNum, max_len: u32) -> u32 {
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

}
