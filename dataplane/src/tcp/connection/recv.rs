//! The receive side: receive sequence variables (RFC 9293 §3.3.1), the in-order queue handed
//! to the application, bounded out-of-order reassembly (`tcp_data_queue`,
//! `tcp_data_queue_ofo`), SACK block generation (RFC 2018 §4), timestamps (RFC 7323 §4.3)
//! and window selection with receiver-side silly-window avoidance (`__tcp_select_window`,
//! RFC 9293 §3.8.6.2.2).

use std::collections::VecDeque;

use super::delack::DelayedAck;
use super::selective_acks::SelectiveAcks;
use super::send::seq_dist;
use crate::tcp::counters::Counters;
use crate::tcp::payload::Payload;
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::tcp::SackBlocks;

/// An out-of-order segment; the queue is sorted and non-overlapping.
#[derive(Debug, Clone)]
pub(crate) struct OfoSegment<P> {
    pub seq: SeqNum,
    pub data: P,
}

/// What bounds one connection's receive queues (`tcp_try_rmem_schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RcvLimits {
    /// Out-of-order segments held at most.
    pub max_ofo: usize,
    /// The receive buffer in payload bytes (the window's ceiling; clamped under memory
    /// pressure); the window is clamped by [`rmem_budget`] of it.
    pub rcvbuf: u32,
    /// What the buffer budget ([`rmem_budget`] of this) is derived from: `rcvbuf` once the
    /// connection has delivered half of it in order, [`RMEM_INITIAL`] before, growing
    /// with what it delivers, as Linux starts `sk_rcvbuf` at `tcp_rmem[1]` and grows it
    /// only with what the application reads (`tcp_rcv_space_adjust`).
    pub budget_rcvbuf: u32,
    /// The mbuf pool is nearly empty (the lcore's reserve): only segments that advance
    /// RCV.NXT are taken, and out-of-order data is pruned.
    pub shed: bool,
    /// Under memory pressure, the buffer bytes the receive queues may hold: the
    /// connection's fair share less what it has queued for sending (Linux
    /// `__sk_mem_raise_allocated` counts both); `usize::MAX` otherwise. It bounds the
    /// budget like a smaller buffer: windows advertised before the pressure are not all
    /// honoured (Linux drops too when `tcp_try_rmem_schedule` fails).
    pub share: usize,
}

/// The buffer budget (bytes of `truesize`, Linux `sk_rcvbuf`) of a connection whose
/// window ceiling is `rcvbuf` payload bytes. Linux's `tcp_adv_win_scale` = 1 gives half
/// of the buffer to payload and half to overhead, so the window a budget allows is half
/// of it (`tcp_win_from_space`); here the window is configured, and the budget is twice
/// it. Full-size segments in 2 KiB mbufs cost 1.5 times their payload and fit; 1-byte
/// segments cost 2 000 times theirs and do not.
/// The budget's base before a connection has delivered anything: 64 KiB, so a budget of
/// 128 KiB of buffers (Linux `tcp_rmem[1]`): 60 mbufs. A peer that never fills its hole
/// pins no more than that, however large the configured window.
pub(crate) const RMEM_INITIAL: u32 = 64 * 1024;

/// The budget base for a connection that has delivered `delivered` bytes in order.
#[inline]
pub(crate) fn budget_base(rcvbuf: u32, delivered: u64) -> u32 {
    let grown = u32::try_from(delivered.saturating_mul(2)).unwrap_or(u32::MAX).max(RMEM_INITIAL);
    rcvbuf.min(grown)
}

#[inline]
pub(crate) fn rmem_budget(rcvbuf: u32) -> usize {
    usize::try_from(rcvbuf).unwrap_or(usize::MAX).saturating_mul(2)
}

/// What queuing one segment's text did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DataOutcome {
    /// Bytes that became readable.
    pub in_order: usize,
    /// The FIN was reached in order.
    pub fin: bool,
    /// The segment was held out of order (or dropped for lack of space).
    pub out_of_order: bool,
    /// The segment filled (part of) a hole in front of queued out-of-order data.
    pub filled_hole: bool,
    /// Nothing new: the text was already received.
    pub duplicate: bool,
    /// The segment was dropped for lack of buffers: out of order (`TCPOFODrop`), no ACK
    /// is owed for it; in order (`TCPRcvQDrop`), see `nomem`.
    pub dropped: bool,
    /// In-order text was dropped for lack of buffers: an ACK goes at once, so the peer
    /// learns RCV.NXT did not move (Linux `ICSK_ACK_NOMEM`).
    pub nomem: bool,
    /// The SACK blocks before this segment changed them, when an ACK already owed must
    /// carry those ([`SelectiveAcks::on_ofo`]).
    pub sack_flush: Option<SackBlocks>,
}

/// Receive sequence variables and queues.
#[derive(Debug)]
pub(crate) struct RecvState<P> {
    pub irs: SeqNum,
    /// Next sequence number expected (RCV.NXT).
    pub nxt: SeqNum,
    /// Right edge of the window advertised so far; never moves left (RFC 9293 §3.8.6.2.2).
    pub adv: SeqNum,
    /// RCV.NXT when the last ACK went out (Linux `rcv_wup`, RFC 7323 `Last.ACK.sent`).
    pub wup: SeqNum,
    pub ready: VecDeque<P>,
    pub ready_bytes: usize,
    pub ofo: Vec<OfoSegment<P>>,
    pub ofo_bytes: usize,
    /// Buffer bytes the ready and out-of-order queues pin (Linux `sk_rmem_alloc`, charged
    /// with `truesize`): what the budget bounds, not the payload bytes.
    pub rmem: usize,
    /// The part of `rmem` the out-of-order queue pins.
    pub ofo_rmem: usize,
    /// The peer's FIN seen out of order, at this sequence number.
    pub ofo_fin: Option<SeqNum>,
    /// The SACK blocks to report, most recently changed first (Linux `selective_acks`).
    pub sacks: SelectiveAcks,
    /// Duplicate data to report once in a D-SACK block (RFC 2883 §4).
    pub dsack: Option<(SeqNum, SeqNum)>,
    pub fin_received: bool,
    /// TS.Recent and when it was recorded (RFC 7323 §4.3, §5.5).
    pub ts_recent: u32,
    pub ts_recent_stamp: Instant,
    pub ts_recent_valid: bool,
    /// Estimate of the peer's segment size (`tcp_measure_rcv_mss`).
    pub rcv_mss: u32,
    /// When owed ACKs go out (quick-ACK, ping-pong and the adaptive timeout).
    pub delack: DelayedAck,
    /// `Readable` was reported and not yet drained.
    pub readable_signaled: bool,
    /// Last time any segment arrived (keepalive).
    pub last_rcv: Instant,
}

impl<P: Payload> RecvState<P> {
    pub fn new(mss: u32, now: Instant) -> Self {
        RecvState {
            irs: SeqNum(0),
            nxt: SeqNum(0),
            adv: SeqNum(0),
            wup: SeqNum(0),
            ready: VecDeque::new(),
            ready_bytes: 0,
            ofo: Vec::new(),
            ofo_bytes: 0,
            rmem: 0,
            ofo_rmem: 0,
            ofo_fin: None,
            sacks: SelectiveAcks::default(),
            dsack: None,
            fin_received: false,
            ts_recent: 0,
            ts_recent_stamp: now,
            ts_recent_valid: false,
            rcv_mss: mss.clamp(1, 536),
            delack: DelayedAck::new(now),
            readable_signaled: false,
            last_rcv: now,
        }
    }

    /// The peer's SYN carried `irs`.
    pub fn init(&mut self, irs: SeqNum) {
        self.irs = irs;
        self.nxt = irs.wrapping_add(1);
        self.wup = self.nxt;
        self.adv = self.nxt;
    }

    pub fn set_mss(&mut self, mss: u32) {
        self.rcv_mss = mss.clamp(1, 536.max(mss));
    }

    pub fn set_ts_recent(&mut self, tsval: u32, now: Instant) {
        self.ts_recent = tsval;
        self.ts_recent_stamp = now;
        self.ts_recent_valid = true;
    }

    /// The part of the advertised window not yet used.
    pub fn current_window(&self) -> u32 {
        seq_dist(self.nxt, self.adv)
    }

    /// Records that a window of `window` bytes was advertised from RCV.NXT.
    pub fn adv_from_window(&mut self, window: u32) {
        let edge = self.nxt.wrapping_add(window);
        if edge.gt(self.adv) {
            self.adv = edge;
        }
    }

    /// RFC 7323 §5.3: PAWS. Whether a segment with `tsval` must be discarded as an old
    /// duplicate (TS.Recent older than 24 days is treated as invalid, §5.5). A TSval one
    /// tick behind TS.Recent passes, as in Linux (`tcp_paws_check` with `TCP_PAWS_WINDOW`
    /// = 1): with a 1 ms clock, a segment reordered by a millisecond on a sub-millisecond
    /// path is that much behind, and dropping it costs the peer a retransmission, while an
    /// old duplicate from a wrapped sequence space is far older than that.
    pub fn paws_reject(&self, tsval: u32, now: Instant) -> bool {
        const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);
        const PAWS_WINDOW: i32 = 1;
        if !self.ts_recent_valid {
            return false;
        }
        let behind = self.ts_recent.wrapping_sub(tsval) as i32;
        behind > PAWS_WINDOW && now.saturating_duration_since(self.ts_recent_stamp) < PAWS_IDLE
    }

    /// RFC 7323 §4.3 (3): remember TSval of a segment covering `Last.ACK.sent`
    /// (Linux `tcp_replace_ts_recent`: `seq <= rcv_wup`).
    pub fn update_ts_recent(&mut self, seq: SeqNum, tsval: u32, now: Instant) {
        if seq.le(self.wup) && ((tsval.wrapping_sub(self.ts_recent) as i32) >= 0 || !self.ts_recent_valid) {
            self.set_ts_recent(tsval, now);
        }
    }

    /// RFC 9293 §3.10.7.4 first step: the acceptability test of a segment occupying
    /// `seg_len` sequence numbers from `seq`, against `[RCV.NXT, RCV.NXT + RCV.WND)`.
    pub fn acceptable(&self, seq: SeqNum, seg_len: u32) -> bool {
        let wnd = self.current_window();
        let in_wnd = |s: SeqNum| seq_dist(self.nxt, s) < wnd && s.ge(self.nxt);
        match (seg_len, wnd) {
            (0, 0) => seq == self.nxt,
            (0, _) => in_wnd(seq),
            (_, 0) => false,
            _ => in_wnd(seq) || in_wnd(seq.wrapping_add(seg_len - 1)),
        }
    }

    /// `tcp_data_queue`: queues the text (and FIN) of an acceptable segment. Text before
    /// RCV.NXT and beyond the advertised window is trimmed (RFC 9293 §3.10.7.4 seventh step).
    ///
    /// Buffers are charged whole (`truesize`): over the budget, or while the pool is
    /// nearly empty, the queues are compacted and pruned first (`tcp_try_rmem_schedule`,
    /// `tcp_prune_queue`), and an out-of-order segment that still does not fit is
    /// dropped (`TCPOFODrop`). Text at RCV.NXT is taken whenever the application has read
    /// everything before it, as Linux's `tcp_data_queue` does (`sk_forced_mem_schedule`
    /// when the receive queue is empty): a connection whose reader keeps up, or whose
    /// segment fills the hole in front of out-of-order data, keeps going even when
    /// buffers are gone engine-wide; only text queuing behind unread text is dropped then
    /// (`TCPRcvQDrop`).
    pub fn queue(&mut self, seq: SeqNum, data: P, fin: bool, lim: RcvLimits, counters: &mut Counters) -> DataOutcome {
        // `tcp_data_queue`'s in-order case (`seq == rcv_nxt`, window open: `tcp_queue_rcv`)
        // with the out-of-order queue empty (`RB_EMPTY_ROOT(&tp->out_of_order_queue)`): text
        // that fits the window and the buffer budget is appended, with nothing to trim,
        // prune, drain or SACK. Everything else takes the general path below, which does
        // the same for such a segment.
        if seq == self.nxt && !fin && !lim.shed && self.ofo.is_empty() && self.ofo_fin.is_none() {
            let n = data.len();
            if n > 0 && n <= seq_dist(seq, self.adv) as usize {
                // `push_ready` with the length and buffer size already in hand.
                let rmem = self.rmem.saturating_add(data.truesize());
                if rmem <= rmem_budget(lim.rcvbuf).min(lim.share) {
                    let n32 = u32::try_from(n).unwrap_or(u32::MAX);
                    self.rcv_mss = self.rcv_mss.max(n32.min(65535));
                    self.nxt = self.nxt.wrapping_add(n32);
                    self.ready_bytes += n;
                    self.rmem = rmem;
                    self.ready.push_back(data);
                    return DataOutcome { in_order: n, ..DataOutcome::default() };
                }
            }
        }
        let mut out = DataOutcome::default();
        let mut seq = seq;
        let mut data = data;
        let mut fin = fin;
        if !data.is_empty() {
            self.rcv_mss = self.rcv_mss.max(u32::try_from(data.len()).unwrap_or(u32::MAX).min(65535));
        }
        // Trim what was already received.
        let before = self.nxt - seq;
        if before > 0 {
            let before = before.unsigned_abs() as usize;
            if !data.is_empty() {
                // RFC 2883 §4.1.1: report the duplicated part.
                let dup = u32::try_from(before.min(data.len())).unwrap_or(0);
                self.note_duplicate(seq, seq.wrapping_add(dup));
            }
            if before > data.len() {
                // Even the FIN (at seq + len) is old.
                out.duplicate = true;
                return out;
            }
            data = data.slice(before..data.len());
            seq = self.nxt;
            if data.is_empty() && !fin {
                out.duplicate = true;
                return out;
            }
        }
        // Trim what lies beyond the advertised window; a FIN there is dropped with it.
        let room = seq_dist(seq, self.adv) as usize;
        if data.len() > room {
            data = data.slice(0..room);
            fin = false;
        }
        // The whole budget bounds both queues; the out-of-order queue, which only a peer
        // holding a hole open can fill, is also bounded by the one grown from what was
        // delivered (`budget_rcvbuf`).
        let budget = rmem_budget(lim.rcvbuf).min(lim.share);
        let ofo_budget = rmem_budget(lim.budget_rcvbuf).min(lim.share);
        if seq == self.nxt {
            let truesize = data.truesize();
            if !data.is_empty() && self.rmem.saturating_add(truesize) > budget {
                // Room is made above it (tcp_prune_ofo_queue stops at the incoming
                // segment, which here lies below every queued one).
                self.prune(None, budget.saturating_sub(truesize), usize::MAX, false, counters);
            }
            let no_room = lim.shed || self.rmem.saturating_add(truesize) > budget;
            if !data.is_empty() && no_room && self.ready_bytes > 0 {
                counters.rcvq_drop += 1;
                out.dropped = true;
                out.nomem = true;
                return out;
            }
            let had_ofo = !self.ofo.is_empty();
            out.in_order += self.push_ready(data);
            if fin {
                self.take_fin();
                out.fin = true;
            } else {
                out.in_order += self.drain_ofo();
                if self.ofo_fin == Some(self.nxt) {
                    self.take_fin();
                    out.fin = true;
                }
            }
            out.filled_hole = had_ofo;
            if had_ofo {
                self.sacks.on_rcv_nxt(self.nxt, self.ofo.is_empty());
            }
            return out;
        }
        out.out_of_order = true;
        if fin {
            self.ofo_fin = Some(seq.wrapping_add(u32::try_from(data.len()).unwrap_or(0)));
        }
        if !data.is_empty() {
            if lim.shed {
                // Buffers are nearly gone: what does not advance RCV.NXT is not taken, and
                // this connection's out-of-order data goes too (`tcp_prune_ofo_queue`
                // prunes everything while `tcp_under_memory_pressure`).
                self.prune(None, 0, 0, true, counters);
                counters.ofo_drop += 1;
                out.dropped = true;
                return out;
            }
            out.dropped = self.insert_ofo(seq, data, lim.max_ofo, (budget, ofo_budget), counters, &mut out.sack_flush);
        }
        out
    }

    /// `tcp_prune_queue`: brings the buffers under `goal` bytes. First without loss: small
    /// segments are copied together into the spare room of their neighbours' buffers
    /// (`tcp_collapse_ofo_queue`, then `tcp_collapse` on the in-order queue). Then the
    /// out-of-order queue is pruned from its highest sequence (`tcp_prune_ofo_queue`),
    /// down to the segment starting at `keep_below` (the incoming one lands there, and
    /// what lies below it is nearer to being delivered), or entirely when `all` (global
    /// memory pressure). Data we SACKed may so be dropped: RFC 2018 §8 allows it, the
    /// sender keeps it until cumulatively acknowledged.
    /// `goal` bounds both queues' buffers, `ofo_goal` the out-of-order queue's.
    fn prune(&mut self, keep_below: Option<SeqNum>, goal: usize, ofo_goal: usize, all: bool, counters: &mut Counters) {
        if self.rmem > goal || self.ofo_rmem > ofo_goal || all {
            self.collapse(counters);
        }
        let mut pruned = false;
        while self.rmem > goal || self.ofo_rmem > ofo_goal || (all && !self.ofo.is_empty()) {
            let Some(last) = self.ofo.last() else { break };
            if keep_below.is_some_and(|s| s.gt(last.seq)) && !all {
                break;
            }
            if let Some(seg) = self.ofo.pop() {
                self.ofo_bytes = self.ofo_bytes.saturating_sub(seg.data.len());
                self.rmem = self.rmem.saturating_sub(seg.data.truesize());
                self.ofo_rmem = self.ofo_rmem.saturating_sub(seg.data.truesize());
                pruned = true;
            }
        }
        if pruned {
            counters.ofo_pruned += 1;
            // The peer retransmits its FIN with the data before it.
            self.ofo_fin = None;
            // Blocks may name what is gone: none until new data is held (`tcp_sack_reset`).
            self.sacks.clear();
        }
    }

    /// `tcp_collapse_ofo_queue` and `tcp_collapse`: copies each segment into the spare
    /// room of the buffer before it when the two are contiguous (out of order) or
    /// consecutive (in order) and the payload type can write there. Counts the segments
    /// whose buffer was freed (`TCPRcvCollapsed`). In place, no allocation.
    fn collapse(&mut self, counters: &mut Counters) {
        let mut freed = 0usize;
        let mut collapsed = 0u64;
        self.ofo.dedup_by(|next, prev| {
            let prev_end = prev.seq.wrapping_add(u32::try_from(prev.data.len()).unwrap_or(0));
            if prev_end == next.seq && prev.data.try_copy_append(&next.data) {
                freed += next.data.truesize();
                collapsed += 1;
                true
            } else {
                false
            }
        });
        self.ofo_rmem = self.ofo_rmem.saturating_sub(freed);
        // The in-order queue: processed segments move to the back, one pass.
        let n = self.ready.len();
        let mut kept = 0usize;
        for _ in 0..n {
            let Some(seg) = self.ready.pop_front() else { break };
            if kept > 0 {
                if let Some(back) = self.ready.back_mut() {
                    if back.try_copy_append(&seg) {
                        freed += seg.truesize();
                        collapsed += 1;
                        continue;
                    }
                }
            }
            self.ready.push_back(seg);
            kept += 1;
        }
        self.rmem = self.rmem.saturating_sub(freed);
        counters.rcv_collapsed += collapsed;
    }

    /// Records `[start, end)` as received twice, for the next ACK's D-SACK block.
    pub fn note_duplicate(&mut self, start: SeqNum, end: SeqNum) {
        if start.lt(end) {
            self.dsack = Some((start, end));
        }
    }

    fn take_fin(&mut self) {
        self.fin_received = true;
        self.ofo_fin = None;
        self.nxt = self.nxt.wrapping_add(1);
        if self.adv.lt(self.nxt) {
            self.adv = self.nxt;
        }
    }

    fn push_ready(&mut self, data: P) -> usize {
        let n = data.len();
        if n > 0 {
            self.nxt = self.nxt.wrapping_add(u32::try_from(n).unwrap_or(0));
            self.ready_bytes += n;
            self.rmem = self.rmem.saturating_add(data.truesize());
            self.ready.push_back(data);
        }
        n
    }

    /// Moves out-of-order segments that became in order to the ready queue.
    fn drain_ofo(&mut self) -> usize {
        let mut moved = 0;
        while let Some(first) = self.ofo.first() {
            if first.seq.gt(self.nxt) {
                break;
            }
            let seg = self.ofo.remove(0);
            self.ofo_bytes = self.ofo_bytes.saturating_sub(seg.data.len());
            self.rmem = self.rmem.saturating_sub(seg.data.truesize());
            self.ofo_rmem = self.ofo_rmem.saturating_sub(seg.data.truesize());
            let skip = seq_dist(seg.seq, self.nxt) as usize;
            if skip < seg.data.len() {
                moved += self.push_ready(seg.data.slice(skip..seg.data.len()));
            }
        }
        moved
    }

    /// `tcp_data_queue_ofo`: inserts into the sorted, non-overlapping queue, trimming the
    /// new segment against its neighbours; bounded by `max_ofo` segments and by the
    /// buffer `budget` (pruning above the new segment first, `tcp_try_rmem_schedule`).
    /// Returns whether the segment was dropped for lack of buffers; `sack_flush` gets what
    /// [`SelectiveAcks::on_ofo`] hands back.
    #[allow(clippy::too_many_arguments)]
    fn insert_ofo(
        &mut self,
        seq: SeqNum,
        data: P,
        max_ofo: usize,
        (budget, ofo_budget): (usize, usize),
        counters: &mut Counters,
        sack_flush: &mut Option<SackBlocks>,
    ) -> bool {
        let base = self.nxt;
        let off = |s: SeqNum| seq_dist(base, s);
        let arrived = seq;
        let arrived_end = seq.wrapping_add(u32::try_from(data.len()).unwrap_or(0));
        let mut start = off(seq);
        let mut data = data;
        let mut end = start.saturating_add(u32::try_from(data.len()).unwrap_or(0));
        // Already held entirely: nothing to add.
        let held = self.ofo.iter().any(|e| {
            let es = off(e.seq);
            es <= start && es.saturating_add(u32::try_from(e.data.len()).unwrap_or(0)) >= end
        });
        if held {
            // All of it is here already: its block is still the most recent (Linux
            // `tcp_data_queue_ofo`, "All the bits are present"; Linux also reports the
            // copy in a D-SACK block there, which Strait does not: through 5 % loss and
            // 1 % reordering it cost the kernel sender more RTOs, see selective_acks.rs).
            counters.ofo_merge += 1;
            *sack_flush = self.sacks.on_ofo(arrived, arrived_end);
            return false;
        }
        // Drop queued segments entirely covered by the new one.
        let before = self.ofo.len();
        let mut freed = 0;
        let mut freed_mem = 0;
        self.ofo.retain(|e| {
            let es = off(e.seq);
            let ee = es.saturating_add(u32::try_from(e.data.len()).unwrap_or(0));
            let covered = es >= start && ee <= end;
            if covered {
                freed += e.data.len();
                freed_mem += e.data.truesize();
            }
            !covered
        });
        self.ofo_bytes = self.ofo_bytes.saturating_sub(freed);
        self.rmem = self.rmem.saturating_sub(freed_mem);
        self.ofo_rmem = self.ofo_rmem.saturating_sub(freed_mem);
        if self.ofo.len() != before {
            counters.ofo_merge += 1;
        }
        let mut idx = self.ofo.partition_point(|e| off(e.seq) < start);
        if let Some(prev) = idx.checked_sub(1).and_then(|i| self.ofo.get(i)) {
            let pe = off(prev.seq).saturating_add(u32::try_from(prev.data.len()).unwrap_or(0));
            if pe >= end {
                counters.ofo_merge += 1;
                *sack_flush = self.sacks.on_ofo(arrived, arrived_end);
                return false;
            }
            if pe > start {
                data = data.slice((pe - start) as usize..data.len());
                start = pe;
            }
        }
        if let Some(next) = self.ofo.get(idx) {
            let ns = off(next.seq);
            if ns < end {
                data = data.slice(0..(ns.saturating_sub(start)) as usize);
                end = ns;
            }
        }
        if data.is_empty() || end <= start {
            // Already held: still the most recent arrival for SACK purposes.
            counters.ofo_merge += 1;
            *sack_flush = self.sacks.on_ofo(arrived, arrived_end);
            return false;
        }
        let seq = base.wrapping_add(start);
        // `tcp_ooo_try_coalesce`: a segment continuing the one before it is copied into
        // that buffer's spare room when it fits, so a run of small segments above a hole
        // pins one buffer, not one each. Linux always tries; here only once the queue
        // holds half its budget, since it copies and the echo and proxy paths otherwise
        // copy no payload (a lossy transfer's queue rarely gets there, a peer holding a
        // hole open to pin buffers soon does).
        let coalesce = self.ofo_rmem > ofo_budget / 2;
        if let Some(prev) = idx.checked_sub(1).and_then(|i| self.ofo.get_mut(i)).filter(|_| coalesce) {
            let pe = prev.seq.wrapping_add(u32::try_from(prev.data.len()).unwrap_or(0));
            if pe == seq && prev.data.try_copy_append(&data) {
                counters.ofo_queue += 1;
                counters.rcv_coalesce += 1;
                self.ofo_bytes += data.len();
                *sack_flush = self.sacks.on_ofo(arrived, arrived_end);
                return false;
            }
        }
        let truesize = data.truesize();
        let over =
            |r: &Self| r.rmem.saturating_add(truesize) > budget || r.ofo_rmem.saturating_add(truesize) > ofo_budget;
        if over(self) {
            let (goal, ofo_goal) = (budget.saturating_sub(truesize), ofo_budget.saturating_sub(truesize));
            self.prune(Some(seq), goal, ofo_goal, false, counters);
            idx = self.ofo.partition_point(|e| off(e.seq) < start);
            if over(self) {
                counters.ofo_drop += 1;
                return true;
            }
        }
        if self.ofo.len() >= max_ofo {
            // The segment bound (not a buffer shortage): dropped, still answered with a
            // duplicate ACK.
            counters.ofo_drop += 1;
            return false;
        }
        counters.ofo_queue += 1;
        self.ofo_bytes += data.len();
        self.rmem = self.rmem.saturating_add(truesize);
        self.ofo_rmem = self.ofo_rmem.saturating_add(truesize);
        self.ofo.insert(idx, OfoSegment { seq, data });
        *sack_flush = self.sacks.on_ofo(arrived, arrived_end);
        false
    }

    /// Up to `max` SACK blocks (RFC 2018 §4), most recently changed first
    /// ([`SelectiveAcks`]).
    pub fn sack_blocks(&self, max: usize) -> SackBlocks {
        self.sacks.first(max.min(SackBlocks::MAX))
    }

    /// Takes up to `max` bytes from the in-order queue.
    pub fn read(&mut self, max: usize) -> Option<P> {
        if self.ready_bytes == 0 || max == 0 {
            if self.ready_bytes == 0 {
                self.readable_signaled = false;
            }
            return None;
        }
        // The first queued segment becomes the result itself (cut at `max` if longer);
        // only a read spanning several is built by appending (`tcp_recvmsg` copies skb
        // by skb; here the first one is taken whole, no chain to start from).
        let Some(mut out) = self.ready.pop_front() else { return Some(P::empty()) };
        self.rmem = self.rmem.saturating_sub(out.truesize());
        if out.len() > max {
            let rest = out.split_off(max);
            self.rmem = self.rmem.saturating_add(rest.truesize());
            self.ready.push_front(rest);
        }
        while out.len() < max {
            let Some(mut front) = self.ready.pop_front() else { break };
            self.rmem = self.rmem.saturating_sub(front.truesize());
            let want = max - out.len();
            if front.len() > want {
                let rest = front.split_off(want);
                self.rmem = self.rmem.saturating_add(rest.truesize());
                self.ready.push_front(rest);
            }
            out.append(front);
        }
        self.ready_bytes = self.ready_bytes.saturating_sub(out.len());
        if self.ready_bytes == 0 {
            self.readable_signaled = false;
        }
        Some(out)
    }

    /// Room for more payload: what the configured buffer leaves, clamped by what the
    /// buffer budget leaves (`tcp_space` = `tcp_win_from_space(sk_rcvbuf -
    /// sk_rmem_alloc)`, half the free budget): a peer whose segments cost far more
    /// buffer than payload sees its window close.
    fn free_space(&self, rcvbuf: u32) -> u32 {
        let used = u32::try_from(self.ready_bytes + self.ofo_bytes).unwrap_or(u32::MAX);
        let by_bytes = rcvbuf.saturating_sub(used);
        let by_mem = rmem_budget(rcvbuf).saturating_sub(self.rmem) / 2;
        by_bytes.min(u32::try_from(by_mem).unwrap_or(u32::MAX))
    }

    /// `__tcp_select_window`: the window field for a non-SYN segment. The right edge only
    /// moves right, and only by at least min(rcvbuf/2, MSS) at a time (receiver SWS
    /// avoidance, RFC 9293 §3.8.6.2.2); scaled values are rounded up so the edge we
    /// promised is never withdrawn (RFC 7323 §2.4).
    pub fn select_window(&mut self, rcvbuf: u32, wscale: u8, mss: u32) -> u16 {
        let cur = self.current_window();
        let free = self.free_space(rcvbuf);
        let threshold = (rcvbuf / 2).min(mss).max(1);
        let mut win = cur;
        if free > cur && free - cur >= threshold {
            win = free;
        }
        let max_field = 65535u32;
        let unit = 1u32 << wscale;
        let mut field = win.div_ceil(unit);
        if field > max_field {
            field = max_field;
        }
        let actual = field << wscale;
        self.adv_from_window(actual);
        self.wup = self.nxt;
        u16::try_from(field).unwrap_or(u16::MAX)
    }

    /// The window field for a SYN or SYN-ACK: never scaled (RFC 7323 §2.2).
    pub fn syn_window(&mut self, rcvbuf: u32) -> u16 {
        let win = rcvbuf.min(65535);
        self.adv_from_window(win);
        self.wup = self.nxt;
        u16::try_from(win).unwrap_or(u16::MAX)
    }

    /// More than one of the peer's full-sized segments arrived since our last ACK
    /// (RFC 5681 §4.2: ACK at least every second one).
    pub fn unacked_beyond_one_segment(&self) -> bool {
        seq_dist(self.wup, self.nxt) > self.rcv_mss
    }

    /// `tcp_cleanup_rbuf`: after a read, whether the window grew enough to announce
    /// (the new window at least doubles the one in use and passes the SWS threshold).
    pub fn window_update_due(&self, rcvbuf: u32, mss: u32) -> bool {
        let cur = self.current_window();
        let free = self.free_space(rcvbuf);
        let threshold = (rcvbuf / 2).min(mss).max(1);
        free > cur && free - cur >= threshold && free >= cur.saturating_mul(2)
    }
}

#[cfg(test)]
#[path = "recv_tests.rs"]
mod tests;
