//! One port queue's way out: the frames an lcore built in a pass, and those a TX ring did
//! not take, held for the next pass (bounded). Generic over the frame and the ring, so the
//! rules are tested here without a device.
//!
//! A ring that takes nothing must never block the queue for good: a PMD stops a burst at
//! a frame it cannot send (which would hold every frame behind it), and a device may stop
//! completing altogether. After [`TX_STALL_LIMIT`] without progress the head frame is
//! dropped (once per limit); after [`TX_STALL_FLUSH`] every waiting frame is. Every frame
//! dropped is counted in the [`Flushed`] result; the frames held are [`TxQueue::held`].

use crate::time::{Duration, Instant};

/// Frames (TSO super-frames count once) a port queue keeps for the next pass when its TX
/// ring does not take them all. A full ring is usually momentary (`net_tap`: the kernel
/// has not taken the last writes; AF_XDP: the kernel consumes 32 descriptors per kick);
/// dropping there would be loss TCP sees as congestion, in bursts.
pub const TX_BACKLOG_MAX: usize = 4096;
/// How long a ring may take nothing while frames wait before the head frame is dropped.
pub const TX_STALL_LIMIT: Duration = Duration::from_millis(5);
/// How long a ring may take nothing before every waiting frame is dropped: it is not one
/// frame the device refuses but the device that stopped.
pub const TX_STALL_FLUSH: Duration = Duration::from_millis(20);
/// Immediate retries of a burst the ring did not take whole.
const RETRIES: usize = 4;

/// A device TX ring: takes frames from the front of `frames` (removing them) and says how
/// many it took.
pub trait TxRing<F> {
    /// Sends what it can of `frames`, front first.
    fn send(&mut self, frames: &mut Vec<F>) -> usize;
}

/// What one [`TxQueue::flush`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Frames the ring took.
    pub sent: usize,
    /// Frames dropped because more than [`TX_BACKLOG_MAX`] waited (the newest).
    pub dropped_full: usize,
    /// Frames dropped because the ring took nothing for [`TX_STALL_LIMIT`] or
    /// [`TX_STALL_FLUSH`].
    pub dropped_refused: usize,
}

/// The frames of one port queue on their way to its ring.
#[derive(Debug)]
pub struct TxQueue<F> {
    /// Frames of this pass, then (during a flush) held + new.
    pending: Vec<F>,
    /// Frames the ring did not take, oldest first; sent before new ones.
    backlog: Vec<F>,
    /// Since when the ring has taken nothing while frames waited.
    stalled_since: Option<Instant>,
    /// When the head frame was last dropped for a stall.
    head_dropped_at: Option<Instant>,
}

impl<F> Default for TxQueue<F> {
    fn default() -> Self {
        TxQueue { pending: Vec::with_capacity(64), backlog: Vec::new(), stalled_since: None, head_dropped_at: None }
    }
}

impl<F> TxQueue<F> {
    /// Queues a frame for the next flush.
    pub fn push(&mut self, frame: F) {
        self.pending.push(frame);
    }

    /// The frames queued since the last flush (the impairment layer takes and returns them).
    pub fn pending_mut(&mut self) -> &mut Vec<F> {
        &mut self.pending
    }

    /// Frames held for the next pass.
    pub fn held(&self) -> usize {
        self.backlog.len()
    }

    /// Drops every frame (at shutdown, before the pool is counted).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.backlog.clear();
    }

    /// Hands the held frames, then the new ones, to `ring`; keeps what it does not take
    /// (bounded) for the next pass, and drops frames a stalled ring will not take.
    pub fn flush(&mut self, ring: &mut impl TxRing<F>, now: Instant) -> Flushed {
        let mut r = Flushed::default();
        if !self.backlog.is_empty() {
            // What the ring did not take last time goes first: pending = backlog + new.
            self.backlog.append(&mut self.pending);
            std::mem::swap(&mut self.pending, &mut self.backlog);
        }
        if self.pending.is_empty() {
            self.stalled_since = None;
            return r;
        }
        for _ in 0..RETRIES {
            r.sent += ring.send(&mut self.pending);
            if self.pending.is_empty() {
                break;
            }
        }
        if r.sent > 0 || self.pending.is_empty() {
            self.stalled_since = None;
            self.head_dropped_at = None;
        } else {
            let since = *self.stalled_since.get_or_insert(now);
            let stalled = now.saturating_duration_since(since);
            if stalled >= TX_STALL_FLUSH {
                r.dropped_refused += self.pending.len();
                self.pending.clear();
                self.stalled_since = None;
                self.head_dropped_at = None;
            } else if stalled >= TX_STALL_LIMIT
                && self.head_dropped_at.is_none_or(|t| now.saturating_duration_since(t) >= TX_STALL_LIMIT)
            {
                self.pending.remove(0);
                r.dropped_refused += 1;
                self.head_dropped_at = Some(now);
            }
        }
        if self.pending.len() > TX_BACKLOG_MAX {
            r.dropped_full += self.pending.len() - TX_BACKLOG_MAX;
            self.pending.truncate(TX_BACKLOG_MAX);
        }
        std::mem::swap(&mut self.pending, &mut self.backlog);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring that takes up to `room` frames per call, or refuses the frame `refuse`.
    struct Ring {
        room: usize,
        refuse: Option<u32>,
        out: Vec<u32>,
    }

    impl TxRing<u32> for Ring {
        fn send(&mut self, frames: &mut Vec<u32>) -> usize {
            let mut n = 0;
            while n < self.room && n < frames.len() && Some(frames[n]) != self.refuse {
                n += 1;
            }
            self.out.extend(frames.drain(..n));
            n
        }
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn held_frames_go_first_and_in_order() {
        let mut q = TxQueue::default();
        let mut ring = Ring { room: 3, refuse: None, out: vec![] };
        for f in 0..10 {
            q.push(f);
        }
        // Four tries of three frames: 10 sent... room 3 x 4 = 12 >= 10.
        assert_eq!(q.flush(&mut ring, at(0)).sent, 10);
        ring.room = 0;
        for f in 10..15 {
            q.push(f);
        }
        assert_eq!(q.flush(&mut ring, at(1)), Flushed::default());
        assert_eq!(q.held(), 5);
        ring.room = 100;
        q.push(15);
        assert_eq!(q.flush(&mut ring, at(2)).sent, 6);
        assert_eq!(ring.out, (0..16).collect::<Vec<_>>());
        assert_eq!(q.held(), 0);
    }

    #[test]
    fn the_backlog_is_bounded_and_the_newest_are_dropped() {
        let mut q = TxQueue::default();
        let mut ring = Ring { room: 0, refuse: None, out: vec![] };
        for f in 0..(TX_BACKLOG_MAX as u32 + 10) {
            q.push(f);
        }
        let r = q.flush(&mut ring, at(0));
        assert_eq!(r.dropped_full, 10);
        assert_eq!(q.held(), TX_BACKLOG_MAX);
        ring.room = usize::MAX;
        q.flush(&mut ring, at(1));
        assert_eq!(ring.out.first(), Some(&0));
        assert_eq!(ring.out.last(), Some(&(TX_BACKLOG_MAX as u32 - 1)));
    }

    #[test]
    fn a_refused_head_frame_is_dropped_after_the_stall_limit() {
        let mut q = TxQueue::default();
        let mut ring = Ring { room: 100, refuse: Some(0), out: vec![] };
        for f in 0..5 {
            q.push(f);
        }
        assert_eq!(q.flush(&mut ring, at(0)), Flushed::default(), "a PMD stops its burst at the frame it refuses");
        assert_eq!(q.flush(&mut ring, at(4)), Flushed::default());
        let r = q.flush(&mut ring, at(5));
        assert_eq!(r.dropped_refused, 1, "the head goes after 5 ms");
        // The rest flows on the next pass.
        assert_eq!(q.flush(&mut ring, at(6)).sent, 4);
        assert_eq!(ring.out, vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_ring_that_stops_taking_anything_cannot_block_the_queue() {
        let mut q = TxQueue::default();
        let mut ring = Ring { room: 0, refuse: None, out: vec![] };
        for f in 0..100 {
            q.push(f);
        }
        let mut refused = 0;
        for ms in 0..=20 {
            refused += q.flush(&mut ring, at(ms)).dropped_refused;
        }
        // One head frame at 5, 10 and 15 ms, then everything at 20 ms.
        assert_eq!(refused, 100);
        assert_eq!(q.held(), 0);
        // And when the device comes back, new frames flow.
        ring.room = 10;
        q.push(7);
        assert_eq!(q.flush(&mut ring, at(21)).sent, 1);
    }

    #[test]
    fn progress_resets_the_stall_clock() {
        let mut q = TxQueue::default();
        let mut ring = Ring { room: 0, refuse: None, out: vec![] };
        q.push(1);
        q.flush(&mut ring, at(0));
        ring.room = 1;
        q.push(2);
        assert_eq!(q.flush(&mut ring, at(4)).sent, 2);
        ring.room = 0;
        q.push(3);
        // Stalled since 10, not since 0.
        assert_eq!(q.flush(&mut ring, at(10)).dropped_refused, 0);
        assert_eq!(q.flush(&mut ring, at(14)).dropped_refused, 0);
        assert_eq!(q.flush(&mut ring, at(15)).dropped_refused, 1);
    }
}
