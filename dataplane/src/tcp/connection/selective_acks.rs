//! The SACK blocks a receiver reports (RFC 2018 §4), kept as Linux keeps them in
//! `tcp_sock::selective_acks`: at most four, **most recently changed first**.
//!
//! RFC 2018 §4: the first block MUST hold the segment that triggered the ACK, and the
//! others SHOULD repeat the most recently reported blocks. Reporting by recency is what
//! lets a sender learn of every run of out-of-order data while it is new: with more holes
//! than an option has blocks (three beside timestamps), a run reported only while it is
//! among the lowest in sequence would reach the sender seconds late, once the holes below
//! it are filled. The sender then takes the age of that data as an RTT sample (Linux
//! `tcp_sacktag_one`: the transmit time of newly SACKed, never-retransmitted data), and its
//! RTO grows to tens of seconds.
//!
//! Measured with the 1 GB upload through 5 % loss and 1 % reordering of
//! `proxy/tests/proxy_bulk.rs` (a kernel sender, `ss -ti` every 2 s), four runs each: blocks
//! in sequence order after the most recent one (before) left the sender's smoothed RTT at
//! a median of 6 ms (up to 18), the upload took 40-48 s and the sender had 3-7 RTOs; by
//! recency, a median of 2 ms (up to 7), 35-40 s and 7-11 RTOs. A CI run of the old order
//! stalled that upload with the sender's smoothed RTT at 3.3 s and its RTO at 26 s.
//!
//! Linux also reports a copy of data already held out of order in a D-SACK block
//! (`tcp_data_queue_ofo` calling `tcp_dsack_set`). Strait does not: with it, the same
//! upload cost the kernel sender 9-18 RTOs against 7-11 without it (four runs each; its
//! RACK reordering window grows with every D-SACK), for no gain in time (36-38 s).
//!
//! Updated where data is held out of order (`tcp_sack_new_ofo_skb`, with
//! `tcp_sack_extend` and `tcp_sack_maybe_coalesce`), where RCV.NXT advances
//! (`tcp_sack_remove`) and where out-of-order data is pruned (`tcp_sack_reset`). The work
//! is a few comparisons per change; no walk of the out-of-order queue per ACK.

use crate::tcp::seq::SeqNum;
use crate::wire::tcp::SackBlocks;

/// How many blocks are kept (Linux `TCP_NUM_SACKS`): what an option without timestamps
/// carries.
const NUM_SACKS: usize = 4;

/// How many of the first blocks a sender is taken to have seen (Linux
/// `TCP_SACK_BLOCKS_EXPECTED`: "SACK packets might be lost, be conservative and use 2").
const BLOCKS_EXPECTED: usize = 2;

/// Blocks of out-of-order data held, most recently changed first.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SelectiveAcks {
    blocks: [(SeqNum, SeqNum); NUM_SACKS],
    len: usize,
}

/// `tcp_sack_extend`: whether `[seq, end)` overlaps or touches `block`, which then grows
/// to cover both.
fn extend(block: &mut (SeqNum, SeqNum), seq: SeqNum, end: SeqNum) -> bool {
    if seq.le(block.1) && block.0.le(end) {
        if seq.lt(block.0) {
            block.0 = seq;
        }
        if end.gt(block.1) {
            block.1 = end;
        }
        true
    } else {
        false
    }
}

impl SelectiveAcks {
    /// The data `[seq, end)` was received out of order and is held (or was held already):
    /// the block it extends moves to the front and absorbs any block it now touches, or a
    /// new block goes to the front, the oldest forgotten when four are kept
    /// (`tcp_sack_new_ofo_skb`).
    ///
    /// Returns the blocks as they were when the change moves a block from beyond the first
    /// [`BLOCKS_EXPECTED`] to the front, or adds one in front of that many: an ACK already
    /// owed must go out with those, or what it would have told the sender is lost (Linux
    /// calls `tcp_sack_compress_send_ack` there).
    pub fn on_ofo(&mut self, seq: SeqNum, end: SeqNum) -> Option<SackBlocks> {
        if !seq.lt(end) {
            return None;
        }
        let hit = (0..self.len).find(|&i| {
            let b = self.blocks[i];
            seq.le(b.1) && b.0.le(end)
        });
        let before = (hit.unwrap_or(self.len) >= BLOCKS_EXPECTED).then(|| self.first(NUM_SACKS));
        if let Some(i) = hit {
            extend(&mut self.blocks[i], seq, end);
            self.blocks[..=i].rotate_right(1);
            self.coalesce_first();
            return before;
        }
        if self.len < NUM_SACKS {
            self.len += 1;
        }
        self.blocks[..self.len].rotate_right(1);
        self.blocks[0] = (seq, end);
        before
    }

    /// `tcp_sack_maybe_coalesce`: merges into the first block every other block it now
    /// overlaps or touches.
    fn coalesce_first(&mut self) {
        let mut i = 1;
        while i < self.len {
            let other = self.blocks[i];
            if extend(&mut self.blocks[0], other.0, other.1) {
                self.blocks.copy_within(i + 1..self.len, i);
                self.len -= 1;
            } else {
                i += 1;
            }
        }
    }

    /// RCV.NXT advanced to `nxt`: blocks it reached are gone (`tcp_sack_remove`); all of
    /// them when nothing is held out of order any more (`ofo_empty`).
    pub fn on_rcv_nxt(&mut self, nxt: SeqNum, ofo_empty: bool) {
        if ofo_empty {
            self.len = 0;
            return;
        }
        let mut kept = 0;
        for i in 0..self.len {
            if nxt.lt(self.blocks[i].0) {
                self.blocks[kept] = self.blocks[i];
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// Out-of-order data was pruned: nothing is reported until new data is held
    /// (`tcp_prune_ofo_queue` calling `tcp_sack_reset`; RFC 2018 §8 allows the reneging).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The first `max` blocks, most recent first.
    pub fn first(&self, max: usize) -> SackBlocks {
        let mut out = SackBlocks::new();
        for &(s, e) in self.blocks.iter().take(self.len.min(max)) {
            out.push(s, e);
        }
        out
    }

    /// Whether no block is kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    fn blocks(a: &SelectiveAcks) -> Vec<(u32, u32)> {
        a.first(NUM_SACKS).iter().map(|&(l, r)| (l.0, r.0)).collect()
    }

    #[test]
    fn the_most_recently_changed_block_comes_first() {
        let mut a = SelectiveAcks::default();
        a.on_ofo(s(200), s(300));
        a.on_ofo(s(400), s(500));
        a.on_ofo(s(600), s(700));
        assert_eq!(blocks(&a), [(600, 700), (400, 500), (200, 300)]);
        // Data extending the oldest block brings it to the front, the rest keep their order.
        a.on_ofo(s(300), s(350));
        assert_eq!(blocks(&a), [(200, 350), (600, 700), (400, 500)]);
        // A duplicate arrival inside a block counts as a change of it too (Linux reports the
        // block holding the segment that triggered the ACK first, RFC 2018 §4).
        a.on_ofo(s(450), s(460));
        assert_eq!(blocks(&a), [(400, 500), (200, 350), (600, 700)]);
    }

    #[test]
    fn a_fifth_run_forgets_the_least_recent_block() {
        let mut a = SelectiveAcks::default();
        for k in 1..=5u32 {
            a.on_ofo(s(k * 1000), s(k * 1000 + 100));
        }
        assert_eq!(blocks(&a), [(5000, 5100), (4000, 4100), (3000, 3100), (2000, 2100)]);
        assert_eq!(a.first(3).as_slice().len(), 3, "three beside timestamps");
    }

    #[test]
    fn a_segment_bridging_two_blocks_merges_them() {
        let mut a = SelectiveAcks::default();
        a.on_ofo(s(100), s(200));
        a.on_ofo(s(500), s(600));
        a.on_ofo(s(300), s(400));
        a.on_ofo(s(200), s(300));
        assert_eq!(blocks(&a), [(100, 400), (500, 600)]);
        a.on_ofo(s(400), s(500));
        assert_eq!(blocks(&a), [(100, 600)]);
    }

    #[test]
    fn a_change_beyond_the_first_two_blocks_hands_back_the_blocks_before_it() {
        let mut a = SelectiveAcks::default();
        assert!(a.on_ofo(s(200), s(300)).is_none());
        assert!(a.on_ofo(s(400), s(500)).is_none(), "a second block: the first is still seen");
        let before = a.on_ofo(s(600), s(700)).map(|b| b.as_slice().iter().map(|&(l, r)| (l.0, r.0)).collect::<Vec<_>>());
        assert_eq!(before, Some(vec![(400, 500), (200, 300)]), "a third block pushes the oldest out of two");
        assert!(a.on_ofo(s(650), s(750)).is_none(), "extending the first");
        assert!(a.on_ofo(s(450), s(550)).is_none(), "extending the second");
        assert!(a.on_ofo(s(250), s(260)).is_some(), "bringing the third to the front");
        assert_eq!(blocks(&a), [(200, 300), (400, 550), (600, 750)]);
    }

    #[test]
    fn blocks_reached_by_rcv_nxt_are_removed() {
        let mut a = SelectiveAcks::default();
        a.on_ofo(s(200), s(300));
        a.on_ofo(s(500), s(600));
        a.on_ofo(s(800), s(900));
        a.on_rcv_nxt(s(300), false);
        assert_eq!(blocks(&a), [(800, 900), (500, 600)]);
        a.on_rcv_nxt(s(600), false);
        assert_eq!(blocks(&a), [(800, 900)]);
        a.on_rcv_nxt(s(600), true);
        assert!(a.is_empty());
        a.on_ofo(s(1000), s(1000));
        assert!(a.is_empty(), "an empty range is no block");
    }

    #[test]
    fn sequence_wrap_is_handled() {
        let mut a = SelectiveAcks::default();
        a.on_ofo(s(u32::MAX - 99), s(u32::MAX));
        a.on_ofo(s(u32::MAX), s(100));
        assert_eq!(blocks(&a), [(u32::MAX - 99, 100)]);
        a.on_rcv_nxt(s(100), false);
        assert!(a.is_empty());
    }
}
