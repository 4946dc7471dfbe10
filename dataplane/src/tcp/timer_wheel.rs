//! A hierarchical hashed timing wheel (Varghese & Lauck, 1987) for connection timers.
//!
//! * Level 0: 4096 slots of 1 ms, holding timers due within the current 4.096 s block.
//! * Level 1: 4096 slots of one block (4.096 s) each, about 4.66 hours ahead. When the cursor
//!   enters a block, that block's level-1 slot is cascaded into level 0.
//! * Overflow: a single list for anything further out, re-examined only when its earliest
//!   entry comes within the level-1 horizon.
//!
//! Every timer lives in a doubly linked list threaded through a slab, so [`TimerWheel::insert`],
//! [`TimerWheel::cancel`] and [`TimerWheel::reschedule`] are O(1). [`TimerWheel::expire`] fires
//! due keys in `(deadline, insertion order)` order; it skips empty stretches using occupancy
//! bitmaps, so a long idle period costs no per-millisecond work.

use crate::time::Instant;

const TICK_NS: u64 = 1_000_000;
const BITS: u32 = 12;
const SLOTS: usize = 1 << BITS;
const MASK: u64 = (SLOTS as u64) - 1;
const WORDS: usize = SLOTS / 64;
/// List ids: `0..SLOTS` level 0, `SLOTS..2*SLOTS` level 1, then overflow.
const OVERFLOW: usize = 2 * SLOTS;
const NIL: u32 = u32::MAX;

/// Identifies a pending timer. Stale handles (fired or cancelled timers) are detected by a
/// generation count and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerHandle {
    index: u32,
    generation: u32,
}

#[derive(Debug, Clone)]
struct Node<K> {
    deadline: Instant,
    seq: u64,
    key: K,
    list: usize,
    prev: u32,
    next: u32,
}

#[derive(Debug, Clone)]
struct Entry<K> {
    generation: u32,
    node: Option<Node<K>>,
}

/// A timing wheel of `(deadline, key)` pairs. See the module documentation.
#[derive(Debug, Clone)]
pub struct TimerWheel<K: Copy> {
    entries: Vec<Entry<K>>,
    free: Vec<u32>,
    heads: Vec<u32>,
    l0_bits: [u64; WORDS],
    l1_bits: [u64; WORDS],
    /// Lower bound of the deadlines in each level-1 slot (not raised by cancellation).
    l1_min: Vec<Instant>,
    overflow_min: Option<Instant>,
    /// Every tick before `cur` has been processed.
    cur: u64,
    next_seq: u64,
    len: usize,
    scratch: Vec<(Instant, u64, K)>,
    /// [`next_deadline`](Self::next_deadline)'s answer until the wheel changes: the lcore
    /// asks every loop pass, and the level-0 answer walks a slot's list, which many
    /// connections may share.
    next_cache: core::cell::Cell<Option<Option<Instant>>>,
}

fn tick_of(t: Instant) -> u64 {
    t.as_nanos() / TICK_NS
}

fn bit_set(bits: &mut [u64; WORDS], i: usize) {
    if let Some(w) = bits.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

fn bit_clear(bits: &mut [u64; WORDS], i: usize) {
    if let Some(w) = bits.get_mut(i / 64) {
        *w &= !(1 << (i % 64));
    }
}

/// First set bit at index `>= from`.
fn find_from(bits: &[u64; WORDS], from: usize) -> Option<usize> {
    let mut w = from / 64;
    let mut word = bits.get(w)? & (u64::MAX << (from % 64));
    loop {
        if word != 0 {
            return Some(w * 64 + word.trailing_zeros() as usize);
        }
        w += 1;
        word = *bits.get(w)?;
    }
}

impl<K: Copy> TimerWheel<K> {
    /// An empty wheel whose clock starts at `now`.
    pub fn new(now: Instant) -> Self {
        TimerWheel {
            entries: Vec::new(),
            free: Vec::new(),
            heads: vec![NIL; OVERFLOW + 1],
            l0_bits: [0; WORDS],
            l1_bits: [0; WORDS],
            l1_min: vec![Instant::from_nanos(u64::MAX); SLOTS],
            overflow_min: None,
            cur: tick_of(now),
            next_seq: 0,
            len: 0,
            scratch: Vec::new(),
            next_cache: core::cell::Cell::new(None),
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// File `key` to fire at `deadline`. A deadline in the past fires on the next
    /// [`expire`](Self::expire).
    pub fn insert(&mut self, deadline: Instant, key: K) -> TimerHandle {
        *self.next_cache.get_mut() = None;
        let seq = self.next_seq;
        self.next_seq += 1;
        let node = Node { deadline, seq, key, list: OVERFLOW, prev: NIL, next: NIL };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                // More than 2^32 - 1 concurrent timers is beyond any configuration.
                let i = u32::try_from(self.entries.len()).unwrap_or(NIL - 1);
                self.entries.push(Entry { generation: 0, node: None });
                i
            }
        };
        let generation = match self.entries.get_mut(index as usize) {
            Some(e) => {
                e.node = Some(node);
                e.generation
            }
            None => 0,
        };
        self.len += 1;
        self.place(index);
        TimerHandle { index, generation }
    }

    fn node(&self, h: TimerHandle) -> Option<&Node<K>> {
        self.entries.get(h.index as usize).filter(|e| e.generation == h.generation)?.node.as_ref()
    }

    /// The deadline of a pending timer.
    pub fn deadline(&self, handle: TimerHandle) -> Option<Instant> {
        self.node(handle).map(|n| n.deadline)
    }

    /// Whether `handle` refers to a pending timer.
    pub fn contains(&self, handle: TimerHandle) -> bool {
        self.node(handle).is_some()
    }

    /// Remove a pending timer, returning its key; `None` if it already fired or was cancelled.
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<K> {
        *self.next_cache.get_mut() = None;
        self.node(handle)?;
        self.unlink(handle.index);
        let e = self.entries.get_mut(handle.index as usize)?;
        let node = e.node.take()?;
        e.generation = e.generation.wrapping_add(1);
        self.free.push(handle.index);
        self.len -= 1;
        Some(node.key)
    }

    /// Move a pending timer to `deadline`, keeping its handle. It is ordered as if freshly
    /// inserted. Returns `false` (and does nothing) for a stale handle.
    pub fn reschedule(&mut self, handle: TimerHandle, deadline: Instant) -> bool {
        *self.next_cache.get_mut() = None;
        if self.node(handle).is_none() {
            return false;
        }
        self.unlink(handle.index);
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(n) = self.entries.get_mut(handle.index as usize).and_then(|e| e.node.as_mut()) {
            n.deadline = deadline;
            n.seq = seq;
        }
        self.place(handle.index);
        true
    }

    /// A time no later than the earliest pending deadline (`None` when empty). It is exact when
    /// that deadline falls in the current 4.096 s block, and otherwise never later than it, so
    /// calling [`expire`](Self::expire) at the returned time always makes progress.
    pub fn next_deadline(&self) -> Option<Instant> {
        if let Some(cached) = self.next_cache.get() {
            return cached;
        }
        let next = self.compute_next_deadline();
        self.next_cache.set(Some(next));
        next
    }

    fn compute_next_deadline(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        if let Some(s) = find_from(&self.l0_bits, (self.cur & MASK) as usize) {
            return self.list_min(s);
        }
        let start = (((self.cur >> BITS) + 1) & MASK) as usize;
        let l1 = find_from(&self.l1_bits, start).or_else(|| find_from(&self.l1_bits, 0));
        if let Some(s) = l1 {
            return self.l1_min.get(s).copied();
        }
        self.overflow_min
    }

    fn list_min(&self, list: usize) -> Option<Instant> {
        let mut i = *self.heads.get(list)?;
        let mut min: Option<Instant> = None;
        while let Some(n) = self.entries.get(i as usize).and_then(|e| e.node.as_ref()) {
            min = Some(min.map_or(n.deadline, |m| m.min(n.deadline)));
            i = n.next;
        }
        min
    }

    /// Append to `out` the key of every timer with `deadline <= now`, in deadline order (ties in
    /// insertion order), removing them from the wheel.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<K>) {
        *self.next_cache.get_mut() = None;
        let now_tick = tick_of(now);
        if now_tick < self.cur {
            // Time went backwards: nothing can be due that was not due before.
            return;
        }
        loop {
            self.fire_slot(now, out);
            if self.cur >= now_tick {
                break;
            }
            // Next occupied level-0 slot in this block.
            let from = (self.cur & MASK) as usize + 1;
            if let Some(s) = find_from(&self.l0_bits, from) {
                let t = (self.cur & !MASK) | s as u64;
                self.cur = t.min(now_tick);
                continue;
            }
            let cur_block = self.cur >> BITS;
            let now_block = now_tick >> BITS;
            if now_block == cur_block {
                self.cur = now_tick;
                break;
            }
            // Jump to the next block with work, or to now's block.
            let mut target = now_block;
            if let Some(b) = self.next_l1_block() {
                target = target.min(b);
            }
            if let Some(t) = self.overflow_min {
                target = target.min((tick_of(t) >> BITS).max(cur_block + 1));
            }
            self.enter_block(target);
        }
    }

    /// The block of the first occupied level-1 slot after the current block.
    fn next_l1_block(&self) -> Option<u64> {
        let cur_block = self.cur >> BITS;
        let start = ((cur_block + 1) & MASK) as usize;
        let s = find_from(&self.l1_bits, start).or_else(|| find_from(&self.l1_bits, 0))? as u64;
        // Slots map to blocks in (cur_block, cur_block + SLOTS).
        let dist = s.wrapping_sub(cur_block) & MASK;
        Some(cur_block + if dist == 0 { SLOTS as u64 } else { dist })
    }

    /// Move the cursor to the first tick of `block`, cascading its level-1 slot into level 0
    /// and pulling overflow entries that are now within the level-1 horizon.
    fn enter_block(&mut self, block: u64) {
        self.cur = block << BITS;
        let slot = SLOTS + (block & MASK) as usize;
        self.replace_list(slot);
        if let Some(t) = self.overflow_min {
            if tick_of(t) >> BITS < block + SLOTS as u64 {
                self.overflow_min = None;
                self.replace_list(OVERFLOW);
            }
        }
    }

    /// Detach every node of `list` and place each again relative to the current cursor.
    fn replace_list(&mut self, list: usize) {
        let Some(head) = self.heads.get_mut(list) else { return };
        let mut i = core::mem::replace(head, NIL);
        self.list_emptied(list);
        while i != NIL {
            let next = match self.entries.get_mut(i as usize).and_then(|e| e.node.as_mut()) {
                Some(n) => {
                    let next = n.next;
                    n.prev = NIL;
                    n.next = NIL;
                    next
                }
                None => NIL,
            };
            self.place(i);
            i = next;
        }
    }

    fn list_emptied(&mut self, list: usize) {
        if list < SLOTS {
            bit_clear(&mut self.l0_bits, list);
        } else if list < OVERFLOW {
            bit_clear(&mut self.l1_bits, list - SLOTS);
            if let Some(m) = self.l1_min.get_mut(list - SLOTS) {
                *m = Instant::from_nanos(u64::MAX);
            }
        } else {
            self.overflow_min = None;
        }
    }

    /// Fire what is due in the level-0 slot of the current tick.
    fn fire_slot(&mut self, now: Instant, out: &mut Vec<K>) {
        let list = (self.cur & MASK) as usize;
        let mut i = self.heads.get(list).copied().unwrap_or(NIL);
        let mut fired = core::mem::take(&mut self.scratch);
        fired.clear();
        while let Some(e) = self.entries.get(i as usize) {
            let Some(n) = e.node.as_ref() else { break };
            let (next, deadline, seq, key) = (n.next, n.deadline, n.seq, n.key);
            if deadline <= now {
                let h = TimerHandle { index: i, generation: e.generation };
                if self.cancel(h).is_some() {
                    fired.push((deadline, seq, key));
                }
            }
            i = next;
        }
        fired.sort_unstable_by_key(|&(d, s, _)| (d, s));
        out.extend(fired.iter().map(|&(_, _, k)| k));
        self.scratch = fired;
    }

    /// Link node `index` into the list its deadline belongs to.
    fn place(&mut self, index: u32) {
        let Some(n) = self.entries.get(index as usize).and_then(|e| e.node.as_ref()) else { return };
        let deadline = n.deadline;
        let t = tick_of(deadline).max(self.cur);
        let (block, cur_block) = (t >> BITS, self.cur >> BITS);
        let list = if block == cur_block {
            let s = (t & MASK) as usize;
            bit_set(&mut self.l0_bits, s);
            s
        } else if block - cur_block < SLOTS as u64 {
            let s = (block & MASK) as usize;
            bit_set(&mut self.l1_bits, s);
            if let Some(m) = self.l1_min.get_mut(s) {
                *m = (*m).min(deadline);
            }
            SLOTS + s
        } else {
            self.overflow_min = Some(self.overflow_min.map_or(deadline, |m| m.min(deadline)));
            OVERFLOW
        };
        let Some(head) = self.heads.get_mut(list) else { return };
        let old = core::mem::replace(head, index);
        if let Some(n) = self.entries.get_mut(index as usize).and_then(|e| e.node.as_mut()) {
            n.list = list;
            n.prev = NIL;
            n.next = old;
        }
        if let Some(o) = self.entries.get_mut(old as usize).and_then(|e| e.node.as_mut()) {
            o.prev = index;
        }
    }

    /// Unlink node `index` from its list (the node itself stays allocated).
    fn unlink(&mut self, index: u32) {
        let Some(n) = self.entries.get(index as usize).and_then(|e| e.node.as_ref()) else { return };
        let (list, prev, next) = (n.list, n.prev, n.next);
        if let Some(p) = self.entries.get_mut(prev as usize).and_then(|e| e.node.as_mut()) {
            p.next = next;
        } else if let Some(h) = self.heads.get_mut(list) {
            *h = next;
        }
        if let Some(x) = self.entries.get_mut(next as usize).and_then(|e| e.node.as_mut()) {
            x.prev = prev;
        }
        if self.heads.get(list) == Some(&NIL) {
            self.list_emptied(list);
        }
        if let Some(n) = self.entries.get_mut(index as usize).and_then(|e| e.node.as_mut()) {
            n.prev = NIL;
            n.next = NIL;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn fires_in_deadline_order() {
        let mut w = TimerWheel::new(ms(0));
        w.insert(ms(30), 'c');
        w.insert(Instant::from_nanos(10_500_000), 'b');
        w.insert(Instant::from_nanos(10_100_000), 'a');
        w.insert(ms(5000), 'd');
        w.insert(ms(3 * 3600 * 1000), 'e');
        w.insert(ms(10 * 3600 * 1000), 'f');
        assert_eq!(w.len(), 6);
        assert_eq!(w.next_deadline(), Some(Instant::from_nanos(10_100_000)));
        let mut out = Vec::new();
        w.expire(ms(9), &mut out);
        assert!(out.is_empty());
        w.expire(Instant::from_nanos(10_200_000), &mut out);
        assert_eq!(out, ['a'], "same tick, later deadline stays");
        w.expire(ms(31), &mut out);
        assert_eq!(out, ['a', 'b', 'c']);
        assert!(w.next_deadline().is_some_and(|d| d <= ms(5000)));
        w.expire(ms(11 * 3600 * 1000), &mut out);
        assert_eq!(out, ['a', 'b', 'c', 'd', 'e', 'f']);
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn cancel_and_reschedule() {
        let mut w = TimerWheel::new(ms(100));
        let a = w.insert(ms(200), 1u32);
        let b = w.insert(ms(300), 2);
        let c = w.insert(ms(20_000), 3);
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(a), None, "double cancel is harmless");
        assert!(w.reschedule(c, ms(150)));
        assert_eq!(w.deadline(c), Some(ms(150)));
        assert_eq!(w.next_deadline(), Some(ms(150)));
        let mut out = Vec::new();
        w.expire(ms(1000), &mut out);
        assert_eq!(out, [3, 2]);
        assert!(!w.reschedule(b, ms(5000)), "fired handle is stale");
        assert!(!w.contains(b));
        // A freed slot is reused without reviving old handles.
        let d = w.insert(ms(2000), 4);
        assert!(w.contains(d) && !w.contains(a) && !w.contains(c));
    }

    #[test]
    fn a_timer_moved_within_its_slot_fires_at_its_new_time_and_place() {
        let mut w = TimerWheel::new(ms(0));
        let a = w.insert(Instant::from_nanos(10_100_000), 'a');
        w.insert(Instant::from_nanos(10_500_000), 'b');
        // Same 1 ms slot, later than b: fires after it, and not before its new deadline.
        assert!(w.reschedule(a, Instant::from_nanos(10_700_000)));
        assert_eq!(w.next_deadline(), Some(Instant::from_nanos(10_500_000)));
        let mut out = Vec::new();
        w.expire(Instant::from_nanos(10_600_000), &mut out);
        assert_eq!(out, ['b']);
        w.expire(ms(11), &mut out);
        assert_eq!(out, ['b', 'a']);
        // Within one level-1 slot (a later 4.096 s block): moved later and earlier.
        let c = w.insert(ms(9_000), 'c');
        assert!(w.reschedule(c, ms(9_500)));
        assert!(w.next_deadline().is_some_and(|d| d <= ms(9_500)));
        assert!(w.reschedule(c, ms(8_500)));
        assert!(w.next_deadline().is_some_and(|d| d <= ms(8_500)));
        w.expire(ms(8_499), &mut out);
        assert_eq!(out, ['b', 'a']);
        w.expire(ms(8_500), &mut out);
        assert_eq!(out, ['b', 'a', 'c']);
    }

    #[test]
    fn past_deadline_fires_next_expire() {
        let mut w = TimerWheel::new(ms(1000));
        w.insert(ms(10), 7u8);
        let mut out = Vec::new();
        w.expire(ms(1000), &mut out);
        assert_eq!(out, [7]);
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let mut w = TimerWheel::new(ms(1000));
        w.insert(ms(1500), 1u8);
        let mut out = Vec::new();
        w.expire(ms(10), &mut out);
        assert!(out.is_empty());
        w.expire(ms(1500), &mut out);
        assert_eq!(out, [1]);
    }

    #[test]
    fn long_idle_jump_is_cheap_and_correct() {
        let mut w = TimerWheel::new(Instant::ZERO);
        for i in 0..100u64 {
            w.insert(ms(i * 7_919_000), i);
        }
        let mut out = Vec::new();
        w.expire(ms(u64::from(u32::MAX)), &mut out);
        assert_eq!(out, (0..100).collect::<Vec<_>>());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Cancel(usize),
        Reschedule(usize, u64),
        /// Push a timer back by under 2 ms: often within its slot (an RTO re-armed per ACK).
        Nudge(usize, u64),
        Advance(u64),
    }

    fn delay() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..20_000_000,               // within 20 ms
            0u64..10_000_000_000,           // within 10 s
            0u64..6 * 3600 * 1_000_000_000, // within 6 h (overflow)
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => delay().prop_map(Op::Insert),
            1 => any::<usize>().prop_map(Op::Cancel),
            1 => (any::<usize>(), delay()).prop_map(|(i, d)| Op::Reschedule(i, d)),
            2 => (any::<usize>(), 0u64..2_000_000).prop_map(|(i, d)| Op::Nudge(i, d)),
            3 => delay().prop_map(Op::Advance),
        ]
    }

    proptest! {
        #[test]
        fn matches_btreemap_model(start in 0u64..1u64 << 50, ops in proptest::collection::vec(op(), 1..200)) {
            let mut now = Instant::from_nanos(start);
            let mut w = TimerWheel::new(now);
            // Model: (deadline, seq) -> key, plus handle bookkeeping.
            let mut model: BTreeMap<(Instant, u64), usize> = BTreeMap::new();
            let mut live: HashMap<usize, (TimerHandle, Instant, u64)> = HashMap::new();
            let mut handles: Vec<usize> = Vec::new();
            let mut seq = 0u64;
            for op in ops {
                match op {
                    Op::Insert(d) => {
                        let key = handles.len();
                        let deadline = now + Duration::from_nanos(d);
                        let h = w.insert(deadline, key);
                        model.insert((deadline, seq), key);
                        live.insert(key, (h, deadline, seq));
                        handles.push(key);
                        seq += 1;
                    }
                    Op::Cancel(i) if !handles.is_empty() => {
                        let key = handles[i % handles.len()];
                        if let Some((h, d, s)) = live.remove(&key) {
                            prop_assert_eq!(w.cancel(h), Some(key));
                            model.remove(&(d, s));
                        }
                    }
                    Op::Reschedule(i, dl) if !handles.is_empty() => {
                        let key = handles[i % handles.len()];
                        if let Some((h, d, s)) = live.get(&key).copied() {
                            let nd = now + Duration::from_nanos(dl);
                            prop_assert!(w.reschedule(h, nd));
                            model.remove(&(d, s));
                            model.insert((nd, seq), key);
                            live.insert(key, (h, nd, seq));
                            seq += 1;
                        }
                    }
                    Op::Nudge(i, dl) if !handles.is_empty() => {
                        let key = handles[i % handles.len()];
                        if let Some((h, d, s)) = live.get(&key).copied() {
                            let nd = d.max(now) + Duration::from_nanos(dl);
                            prop_assert!(w.reschedule(h, nd));
                            prop_assert_eq!(w.deadline(h), Some(nd));
                            model.remove(&(d, s));
                            model.insert((nd, seq), key);
                            live.insert(key, (h, nd, seq));
                            seq += 1;
                        }
                    }
                    Op::Advance(d) => {
                        now += Duration::from_nanos(d);
                        let mut got = Vec::new();
                        w.expire(now, &mut got);
                        let mut want = Vec::new();
                        while let Some((&(dl, s), &k)) = model.iter().next() {
                            if dl > now { break; }
                            model.remove(&(dl, s));
                            live.remove(&k);
                            want.push(k);
                        }
                        prop_assert_eq!(got, want);
                    }
                    _ => {}
                }
                prop_assert_eq!(w.len(), model.len());
                let first = model.keys().next().map(|&(d, _)| d);
                let nd = w.next_deadline();
                prop_assert_eq!(nd.is_some(), first.is_some());
                if let (Some(nd), Some(first)) = (nd, first) {
                    prop_assert!(nd <= first, "next_deadline {:?} after earliest {:?}", nd, first);
                    // Exact within the current block.
                    if tick_of(first) >> BITS == tick_of(now) >> BITS {
                        prop_assert_eq!(nd, first);
                    }
                }
            }
        }

        #[test]
        fn expire_at_next_deadline_makes_progress(delays in proptest::collection::vec(0u64..20_000_000_000_000, 1..50)) {
            let mut w = TimerWheel::new(Instant::ZERO);
            for (i, d) in delays.iter().enumerate() {
                w.insert(Instant::from_nanos(*d), i);
            }
            let mut out = Vec::new();
            let mut steps = 0;
            while let Some(t) = w.next_deadline() {
                let before = (w.len(), t);
                w.expire(t, &mut out);
                prop_assert!(w.len() < before.0 || w.next_deadline() > Some(before.1));
                steps += 1;
                prop_assert!(steps < 10_000);
            }
            prop_assert_eq!(out.len(), delays.len());
        }
    }
}
