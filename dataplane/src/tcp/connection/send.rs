//! The send side: the send queue (`tcp_sendmsg`, send-path §1 and §2) and clean-up of
//! acknowledged data (`tcp_clean_rtx_queue`); acknowledgement validation and the window
//! update (`tcp_ack`) are in `ack`. Loss detection and recovery (SACK scoreboard, RACK-TLP, PRR,
//! RTO, undo) are in `loss`; the transmit loop with the gates of send-path §3
//! (`tcp_write_xmit`) is in `xmit`.
//!
//! Packet accounting follows Linux: every transmitted queue entry remembers how many
//! MSS-sized frames it went out as (`tcp_skb_pcount`), `packets_out` sums them, and
//! `in_flight = packets_out - (sacked_out + lost_out) + retrans_out`
//! (`tcp_packets_in_flight`), where `sacked_out`, `lost_out` and `retrans_out` sum the
//! frames of entries marked SACKed, lost and retransmitted on the scoreboard (for peers
//! without SACK, `sacked_out` counts duplicate ACKs as Linux's Reno emulation does).

use std::collections::VecDeque;

use super::loss::CaState;
use super::{CloseReason, Connection, WriteFlags};
use crate::tcp::payload::Payload;
use crate::tcp::recovery::{Prr, Rack};
use crate::tcp::seq::SeqNum;
use crate::tcp::shared::Shared;
use crate::time::{Duration, Instant};

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
    /// When it was last transmitted (first send or retransmission; RACK's `xmit_ts`).
    pub sent_at: Instant,
    /// SACKed by the peer (RFC 2018): delivered, but kept until cumulatively acknowledged.
    pub sacked: bool,
    /// Marked lost (RFC 6675 `IsLost`, RACK, RTO, or the NewReno head).
    pub lost: bool,
    /// Retransmitted since it was last marked lost (counted in `retrans_out`).
    pub retrans: bool,
    /// Retransmitted at least once (Karn's rule, RACK's ambiguity check).
    pub ever_retrans: bool,
}

impl<P: Payload> QueuedSegment<P> {
    /// A fresh, unsent entry.
    pub fn unsent(seq: SeqNum, data: P, now: Instant) -> Self {
        QueuedSegment {
            seq,
            data,
            psh: false,
            pcount: 0,
            seg_size: 0,
            sent_at: now,
            sacked: false,
            lost: false,
            retrans: false,
            ever_retrans: false,
        }
    }

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
    /// Bytes queued and not yet acknowledged.
    pub queued_bytes: u32,
    /// Buffer bytes the queue pins (Linux `sk_wmem_queued`, charged with `truesize`),
    /// bounded by twice the send buffer ([`super::recv::rmem_budget`]'s rule): a relay of
    /// 1-byte segments, each in its own mbuf, fills it long before `queued_bytes` does.
    /// Charged per write and uncharged per acknowledged entry, so splits made for
    /// retransmission can leave it a little low; it is reset when the queue empties.
    pub queued_truesize: usize,
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
    /// Frames marked lost and not yet acknowledged or SACKed (`lost_out`).
    pub lost_out: u32,
    /// Frames SACKed and not yet cumulatively acknowledged (`sacked_out`); for peers
    /// without SACK, the duplicate ACKs counted (Reno emulation).
    pub sacked_out: u32,
    /// Frames retransmitted and not yet acknowledged or SACKed (`retrans_out`).
    pub retrans_out: u32,
    /// A lone FIN was sent and is counted in `packets_out`.
    pub fin_counted: bool,
    /// That lone FIN is marked lost / was retransmitted since.
    pub fin_lost: bool,
    pub fin_retrans: bool,
    /// Duplicate ACKs since the last advance of SND.UNA (RFC 5681 §3.2).
    pub dupacks: u32,
    /// Recovery state (Linux `icsk_ca_state`).
    pub ca: CaState,
    /// Recovery point: SND.NXT when recovery or loss began (RFC 6582 `recover`, Linux
    /// `high_seq`).
    pub high_seq: SeqNum,
    /// F-RTO (RFC 5682) is judging the current retransmission timeout.
    pub frto: bool,
    /// F-RTO step 2b: the next transmission sends new data instead of retransmitting
    /// (Linux `REXMIT_NEW`).
    pub frto_new_data: bool,
    /// Proportional Rate Reduction of the current fast recovery (RFC 6937).
    pub prr: Prr,
    /// Undo information of the current reduction (RFC 3522, RFC 2883).
    pub undo: Option<super::loss::Undo>,
    /// RACK state (RFC 8985).
    pub rack: Rack,
    /// The outstanding tail loss probe (RFC 8985 §7): SND.NXT after it and whether it was
    /// a retransmission.
    pub tlp: Option<(SeqNum, bool)>,
    /// ACK-stall probes sent since an ACK last advanced SND.UNA or SACKed new data
    /// (`probe`).
    pub stall_probes: u8,
    /// Lowest sequence number that may hold a lost, not yet retransmitted entry
    /// (Linux `retransmit_skb_hint`).
    pub rtx_hint: Option<SeqNum>,
    /// SND.NXT when a queue entry was last retransmitted (set where `ever_retrans` is),
    /// cleared once SND.UNA reaches it. While it is `None`, every queued entry is a first
    /// transmission sent after every retransmission the connection made, so RACK's
    /// `xmit_ts` (the newest delivered transmission) is older than all of them: the
    /// `tcp_ack` fast path's proof that RACK marks nothing (`Connection::on_ack`).
    pub rtx_nxt: Option<SeqNum>,
    /// Consecutive RTOs without progress.
    pub retries: u32,
    /// Zero-window probes sent without the window opening: the exponent of the probe
    /// interval (Linux `icsk_backoff` while probing).
    pub probes: u32,
    /// Zero-window probes sent since the last acceptable ACK: the peer's silence (Linux
    /// `icsk_probes_out`, reset by every acceptable ACK in `tcp_ack`).
    pub probes_out: u32,
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
            queued_truesize: 0,
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
            sacked_out: 0,
            retrans_out: 0,
            fin_counted: false,
            fin_lost: false,
            fin_retrans: false,
            dupacks: 0,
            ca: CaState::Open,
            high_seq: iss,
            frto: false,
            frto_new_data: false,
            prr: Prr::new(1),
            undo: None,
            rack: Rack::new(iss),
            tlp: None,
            stall_probes: 0,
            rtx_hint: None,
            rtx_nxt: None,
            retries: 0,
            probes: 0,
            probes_out: 0,
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
        let mut space = usize::try_from(limit.saturating_sub(self.queued_bytes)).unwrap_or(0);
        if !self.wmem_free(limit) {
            // `sk_stream_memory_free`: the buffers, not the bytes, are used up.
            space = 0;
        }
        if space == 0 {
            self.writable_wanted = true;
            return 0;
        }
        let size_goal32 = size_goal.max(1);
        let size_goal = usize::try_from(size_goal32).unwrap_or(usize::MAX);
        // `tcp_sendmsg_locked`'s `new_segment` case without the loop: a write that fits
        // whole in one new entry (the tail, if any, cannot grow: sent, or full) becomes
        // that entry as it is, no split. The same entry, PSH and push as the loop below
        // would make of it.
        if offered <= space && offered <= size_goal && offered > 0 && !self.tail_can_grow(size_goal) {
            let at_head = self.write_seq == self.nxt;
            self.push_new(data);
            if offered >= size_goal {
                self.full_entry_pushed(at_head, max_window);
            }
            if !flags.more || self.forced_push(max_window) {
                self.mark_push();
            }
            self.corked = flags.more;
            return offered;
        }
        // `tcp_sendmsg_locked` copies the user's buffer piece by piece through an iterator
        // that advances over it (`msg_data_left`): the pieces here are views of `data` at
        // a running offset, so the rest of the write is never rebuilt (`split_to` per piece
        // made a view of the remainder too, and dropped the previous one).
        let mut data = data;
        let accepted = offered.min(space);
        let mut off = 0usize;
        let mut first_piece = true;
        while off < accepted {
            let nxt = self.nxt;
            let mut filled = None;
            if let Some(tail) = self.queue.back_mut() {
                // Only an entirely unsent tail may still grow.
                let room = size_goal.saturating_sub(tail.data.len());
                if !tail.is_sent() && tail.seq.ge(nxt) && room > 0 {
                    let piece = piece_at(&mut data, &mut off, accepted, room);
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
                        self.queued_truesize = self.queued_truesize.saturating_add(piece.truesize());
                        self.account(n);
                    }
                }
            }
            first_piece = false;
            let idx = match filled {
                Some(i) => i,
                None => {
                    let piece = piece_at(&mut data, &mut off, accepted, size_goal);
                    self.push_new(piece)
                }
            };
            // `if (skb->len < size_goal) continue;` then forced_push or tcp_push_one.
            let (full, at_head) = match self.queue.get(idx) {
                Some(e) => (e.len() >= size_goal32, e.seq == nxt && !e.is_sent()),
                None => (false, false),
            };
            if full {
                self.full_entry_pushed(at_head, max_window);
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

    /// Whether the tail entry may still take more of a write: entirely unsent and shorter
    /// than `size_goal` (`tcp_skb_can_collapse_to` and `copy > 0` in `tcp_sendmsg_locked`).
    fn tail_can_grow(&self, size_goal: usize) -> bool {
        self.queue.back().is_some_and(|tail| !tail.is_sent() && tail.seq.ge(self.nxt) && tail.data.len() < size_goal)
    }

    /// An entry just became full (`skb->len >= size_goal`): `forced_push` marks PSH and
    /// pushes everything pending, else an entry at the head of the unsent queue goes at
    /// once (`tcp_push_one`).
    fn full_entry_pushed(&mut self, at_head: bool, max_window: u32) {
        if self.forced_push(max_window) {
            self.mark_push();
            self.push_pending();
        } else if at_head {
            self.push_one = true;
        }
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
        self.queued_truesize = self.queued_truesize.saturating_add(piece.truesize());
        self.queue.push_back(QueuedSegment::unsent(seq, piece, self.last_send));
        self.account(n);
        self.queue.len() - 1
    }

    /// Whether the queue's buffers leave room under a send buffer of `limit` bytes
    /// (`sk_stream_memory_free`: `sk_wmem_queued < sk_sndbuf`, in buffer bytes).
    pub fn wmem_free(&self, limit: u32) -> bool {
        self.queued_truesize < super::recv::rmem_budget(limit)
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
        let mut rest = QueuedSegment::unsent(e.seq.wrapping_add(at), tail, e.sent_at);
        rest.psh = e.psh;
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

    /// Cuts a sent entry `idx` after `at` bytes, on a frame boundary where possible
    /// (`tcp_fragment` on the retransmission queue): both parts keep the scoreboard marks;
    /// `pcount` is recounted from the size it was sent with, and `packets_out` adjusted.
    pub fn fragment_sent(&mut self, idx: usize, at: u32) -> bool {
        let Some(e) = self.queue.get_mut(idx) else { return false };
        if at == 0 || at >= e.len() || !e.is_sent() {
            return false;
        }
        let seg = e.seg_size.max(1);
        let old = e.pcount;
        let tail = e.data.split_off(at as usize);
        let mut rest = QueuedSegment::unsent(e.seq.wrapping_add(at), tail, e.sent_at);
        rest.psh = e.psh;
        rest.seg_size = e.seg_size;
        rest.sacked = e.sacked;
        rest.lost = e.lost;
        rest.retrans = e.retrans;
        rest.ever_retrans = e.ever_retrans;
        rest.pcount = rest.len().div_ceil(seg).max(1);
        e.psh = false;
        e.pcount = at.div_ceil(seg).max(1);
        let new = e.pcount + rest.pcount;
        self.packets_out = self.packets_out.saturating_add(new).saturating_sub(old);
        self.queue.insert(idx + 1, rest);
        true
    }

    /// Joins the lost, not yet retransmitted entries after `idx` into it while it is
    /// shorter than `mss` (Linux `tcp_retrans_try_collapse`), so that retransmissions at a
    /// smaller MSS go out full-sized. Frame counts add up; no bytes are copied.
    pub fn collapse_lost(&mut self, idx: usize, mss: u32) {
        loop {
            let Some(cur) = self.queue.get(idx) else { return };
            if cur.len() >= mss {
                return;
            }
            let Some(next) = self.queue.get(idx + 1) else { return };
            if !next.is_sent() || !next.lost || next.retrans || next.sacked {
                return;
            }
            let Some(next) = self.queue.remove(idx + 1) else { return };
            let Some(cur) = self.queue.get_mut(idx) else { return };
            cur.data.append(next.data);
            cur.psh = next.psh;
            cur.pcount = cur.pcount.saturating_add(next.pcount);
            cur.ever_retrans |= next.ever_retrans;
        }
    }

    /// Recomputes `sacked_out`, `lost_out` and `retrans_out` from the scoreboard marks
    /// (`reno_sacked` is used instead of the marks for peers without SACK).
    pub fn recount(&mut self, reno_sacked: Option<u32>) {
        let (mut sacked, mut lost, mut retrans) = (0u32, 0u32, 0u32);
        for e in self.queue.iter().take_while(|e| e.is_sent()) {
            if e.sacked {
                sacked = sacked.saturating_add(e.pcount);
                continue;
            }
            if e.lost {
                lost = lost.saturating_add(e.pcount);
            }
            if e.retrans {
                retrans = retrans.saturating_add(e.pcount);
            }
        }
        if self.fin_counted {
            lost += u32::from(self.fin_lost);
            retrans += u32::from(self.fin_retrans);
        }
        self.sacked_out = match reno_sacked {
            // Linux `tcp_limit_reno_sacked`: never more than what is outstanding, less one.
            Some(n) => n.min(self.packets_out.saturating_sub(lost.max(1))),
            None => sacked,
        };
        self.lost_out = lost;
        self.retrans_out = retrans;
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
                self.queued_truesize = self.queued_truesize.saturating_sub(front.data.truesize());
                self.queue.pop_front();
            } else {
                if front.seq.lt(ack) {
                    // tcp_trim_head: the entry is partly acknowledged.
                    let cut = seq_dist(front.seq, ack);
                    let before = front.data.truesize();
                    front.data = front.data.slice(cut as usize..front.data.len());
                    let after = front.data.truesize();
                    self.queued_truesize = self.queued_truesize.saturating_sub(before.saturating_sub(after));
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
        self.queued_bytes = self.queued_bytes.saturating_sub(freed);
        if self.queue.is_empty() {
            self.queued_truesize = 0;
        }
        freed
    }
}

/// The next piece of a write: up to `want` bytes of `data` from `*off` (below `end`), which
/// advances. A piece that is all of `data` is moved out instead of viewed.
#[inline(never)]
fn piece_at<P: Payload>(data: &mut P, off: &mut usize, end: usize, want: usize) -> P {
    let n = want.min(end - *off);
    let piece = if *off == 0 && n == data.len() { core::mem::replace(data, P::empty()) } else { data.slice(*off..*off + n) };
    *off += n;
    piece
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
    /// The persist timer fired (RFC 9293 §3.8.6.1; `tcp_probe_timer` / `tcp_write_wakeup`).
    /// The persist timer (Linux `tcp_probe_timer`): RFC 1122 §4.2.2.17 keeps probing as
    /// long as the receiver answers, so only unanswered probes count towards the bound:
    /// `max_retries` (`tcp_retries2`), or for an orphan `orphan_retries`
    /// (`tcp_orphan_retries`), which is also reset at once when there are too many
    /// orphans or buffers run low (`tcp_out_of_resources`). A peer that closes its window
    /// and goes silent can no longer hold the queued data for ever.
    pub(super) fn on_persist(&mut self, shared: &mut Shared, now: Instant) {
        self.timers.persist = None;
        if !self.state.is_synchronized() || !self.snd.has_unsent() || self.snd.outstanding() > 0 {
            self.snd.probes_out = 0;
            return;
        }
        let mut max_probes = self.cfg.max_retries;
        if self.orphaned {
            // `tcp_out_of_resources`: a window closed this long counts double.
            let quiet = now.saturating_duration_since(self.snd.last_send) > self.cfg.max_rto.saturating_mul(2);
            if shared.orphans_out_of_resources(self.cfg.max_orphans, u32::from(quiet)) {
                shared.counters.abort_on_memory += 1;
                self.reset_and_close(shared, CloseReason::Timeout);
                return;
            }
            max_probes = self.cfg.orphan_retries;
        }
        if self.snd.probes_out >= max_probes {
            shared.counters.abort_on_timeout += 1;
            if self.state.counts_as_established() {
                shared.counters.estab_resets += 1;
            }
            self.reset_and_close(shared, CloseReason::Timeout);
            return;
        }
        self.snd.probes_out = self.snd.probes_out.saturating_add(1);
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
    /// (send-path §3 step 4, RFC 6675 `pipe` in segments).
    pub(super) fn in_flight(&self, _mss: u32) -> u32 {
        let s = &self.snd;
        s.packets_out.saturating_sub(s.sacked_out.saturating_add(s.lost_out)).saturating_add(s.retrans_out)
    }
}
