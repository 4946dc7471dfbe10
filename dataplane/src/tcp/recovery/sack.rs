//! Incoming SACK blocks (RFC 2018 §3): validation against the send window and D-SACK
//! recognition (RFC 2883 §4), as Linux's `tcp_is_sackblock_valid` and `tcp_check_dsack`.

use crate::tcp::seq::SeqNum;

/// The most SACK blocks an option can carry (RFC 2018 §3).
pub const MAX_BLOCKS: usize = 4;

/// The SACK information of one ACK after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackInput {
    /// A D-SACK block (RFC 2883): data the receiver got more than once.
    pub dsack: Option<(SeqNum, SeqNum)>,
    blocks: [(SeqNum, SeqNum); MAX_BLOCKS],
    len: usize,
    /// Blocks rejected as invalid (bad edges, beyond SND.NXT, too old).
    pub discarded: u32,
}

impl SackInput {
    /// Valid SACK blocks above SND.UNA, sorted by their left edge, clamped to
    /// `[SND.UNA, SND.NXT]`.
    pub fn blocks(&self) -> &[(SeqNum, SeqNum)] {
        self.blocks.get(..self.len).unwrap_or(&[])
    }

    fn push(&mut self, b: (SeqNum, SeqNum)) {
        if let Some(slot) = self.blocks.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }
}

/// Validates the SACK blocks of an ACK with cumulative acknowledgement `ack`, given
/// SND.UNA (before this ACK), SND.NXT and the largest window the peer offered.
///
/// RFC 2883 §4: the first block is a D-SACK when it lies below the cumulative ACK, or when
/// a second block contains it. A block is valid when its left edge is below its right edge,
/// its right edge is not beyond SND.NXT, and (for a D-SACK) it is not older than one
/// maximum window below SND.UNA, as Linux checks to resist forged SACKs.
pub fn classify(raw: &[(SeqNum, SeqNum)], ack: SeqNum, una: SeqNum, nxt: SeqNum, max_window: u32) -> SackInput {
    let mut out = SackInput::default();
    let floor = una.wrapping_sub(max_window.max(1));
    let valid_edges = |(l, r): (SeqNum, SeqNum)| l.lt(r) && r.le(nxt) && r.wrapping_sub(1).ge(floor);
    for (i, &(l, r)) in raw.iter().enumerate().take(MAX_BLOCKS) {
        if !valid_edges((l, r)) {
            out.discarded += 1;
            continue;
        }
        let is_dsack = i == 0
            && (l.lt(ack)
                || raw.get(1).is_some_and(|&(l1, r1)| valid_edges((l1, r1)) && l1.le(l) && r.le(r1)));
        if is_dsack {
            if l.ge(floor) {
                out.dsack = Some((l, r));
            } else {
                out.discarded += 1;
            }
            continue;
        }
        if r.le(ack.max(una)) {
            // Entirely acknowledged already: nothing to mark (old SACK information).
            continue;
        }
        out.push((l.max(ack.max(una)), r));
    }
    let n = out.len;
    if let Some(slice) = out.blocks.get_mut(..n) {
        // Insertion sort by left edge: at most four blocks.
        for i in 1..slice.len() {
            let mut j = i;
            while j > 0 && slice.get(j).zip(slice.get(j - 1)).is_some_and(|(a, b)| a.0.lt(b.0)) {
                slice.swap(j, j - 1);
                j -= 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(l: u32, r: u32) -> (SeqNum, SeqNum) {
        (SeqNum(l), SeqNum(r))
    }

    #[test]
    fn valid_blocks_are_sorted_and_clamped() {
        let got = classify(&[s(5000, 6000), s(2000, 3000)], SeqNum(1000), SeqNum(1000), SeqNum(8000), 65535);
        assert_eq!(got.blocks(), &[s(2000, 3000), s(5000, 6000)]);
        assert_eq!((got.dsack, got.discarded), (None, 0));
    }

    #[test]
    fn dsack_below_cumulative_ack() {
        let got = classify(&[s(500, 1000), s(2000, 3000)], SeqNum(1000), SeqNum(1000), SeqNum(8000), 65535);
        assert_eq!(got.dsack, Some(s(500, 1000)));
        assert_eq!(got.blocks(), &[s(2000, 3000)]);
    }

    #[test]
    fn dsack_contained_in_second_block() {
        let got = classify(&[s(2000, 2500), s(2000, 3000)], SeqNum(1000), SeqNum(1000), SeqNum(8000), 65535);
        assert_eq!(got.dsack, Some(s(2000, 2500)));
        assert_eq!(got.blocks(), &[s(2000, 3000)]);
    }

    #[test]
    fn invalid_blocks_are_discarded() {
        // Reversed edges, beyond SND.NXT, and a D-SACK older than a window.
        let got = classify(&[s(3000, 2000), s(7000, 9000)], SeqNum(1000), SeqNum(1000), SeqNum(8000), 65535);
        assert_eq!((got.blocks().len(), got.discarded), (0, 2));
        let old = classify(&[s(100, 200)], SeqNum(1_000_000), SeqNum(1_000_000), SeqNum(1_001_000), 65535);
        assert_eq!((old.dsack, old.discarded), (None, 1));
    }
}
