//! A simulated one-way link for the deterministic simulator: loss, duplication, reordering,
//! propagation delay with jitter, and an optional serialisation rate, all driven by a seeded
//! RNG so that a run is a pure function of its seed.
//!
//! The link is FIFO (like a wire or netem with a rate): jitter varies the delay but never
//! lets an item overtake an earlier one. Reordering is explicit: a reordered item is held back
//! an extra `max(delay, 1 ms)` outside the FIFO, so items sent after it overtake it.

use std::collections::BinaryHeap;

use crate::time::{Duration, Instant};

/// SplitMix64 (Steele, Lea & Flood, 2014): a tiny, fast, statistically solid generator.
/// Deterministic per seed; not for cryptography.
#[derive(Debug, Clone)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator seeded with `seed`.
    pub const fn new(seed: u64) -> Self {
        SimRng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p` (clamped to `[0, 1]`; NaN counts as 0).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }

    /// Uniform in `[0, n)`; 0 when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: bias below 2^-64 × n, irrelevant for simulation.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Impairments of a [`SimLink`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinkParams {
    /// Probability an item is dropped.
    pub loss: f64,
    /// Probability an item is held back so that later items overtake it.
    pub reorder: f64,
    /// Probability an item is delivered twice.
    pub duplicate: f64,
    /// Propagation delay.
    pub delay: Duration,
    /// Extra delay, uniform in `[0, jitter]`, per item (FIFO order is kept).
    pub jitter: Duration,
    /// Serialisation rate in bits per second; `None` for infinitely fast.
    pub rate_bps: Option<u64>,
}

impl Default for LinkParams {
    /// A perfect link: no loss, no delay, infinite rate.
    fn default() -> Self {
        LinkParams {
            loss: 0.0,
            reorder: 0.0,
            duplicate: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_bps: None,
        }
    }
}

/// What happened on a link so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Items handed to [`SimLink::send`].
    pub sent: u64,
    /// Items dropped.
    pub lost: u64,
    /// Extra copies created.
    pub duplicated: u64,
    /// Items held back to be overtaken.
    pub reordered: u64,
    /// Items returned by [`SimLink::poll`].
    pub delivered: u64,
}

struct InFlight<P> {
    at: Instant,
    seq: u64,
    item: P,
}

impl<P> PartialEq for InFlight<P> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<P> Eq for InFlight<P> {}
impl<P> PartialOrd for InFlight<P> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<P> Ord for InFlight<P> {
    /// Reversed, so that `BinaryHeap` pops the earliest delivery first.
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A one-way simulated link carrying items of type `P`.
pub struct SimLink<P> {
    params: LinkParams,
    rng: SimRng,
    queue: BinaryHeap<InFlight<P>>,
    seq: u64,
    /// When the transmitter finishes serialising what it has been given.
    tx_free_at: Instant,
    /// Delivery time of the last in-order item (FIFO floor).
    last_fifo: Instant,
    len_of: fn(&P) -> usize,
    stats: LinkStats,
}

impl<P> core::fmt::Debug for SimLink<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimLink")
            .field("params", &self.params)
            .field("in_flight", &self.queue.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn mtu_len<P>(_: &P) -> usize {
    1500
}

impl<P> SimLink<P> {
    /// A link with impairments `params`, its randomness seeded with `seed`. For `rate_bps`
    /// every item counts as 1500 bytes unless [`with_len`](Self::with_len) says otherwise.
    pub fn new(params: LinkParams, seed: u64) -> Self {
        SimLink {
            params,
            rng: SimRng::new(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            tx_free_at: Instant::ZERO,
            last_fifo: Instant::ZERO,
            len_of: mtu_len::<P>,
            stats: LinkStats::default(),
        }
    }

    /// Use `len_of` to size items for the serialisation rate.
    #[must_use]
    pub fn with_len(mut self, len_of: fn(&P) -> usize) -> Self {
        self.len_of = len_of;
        self
    }

    /// The current impairments.
    pub fn params(&self) -> &LinkParams {
        &self.params
    }

    /// Change the impairments (e.g. to partition the link); items in flight are unaffected.
    pub fn set_params(&mut self, params: LinkParams) {
        self.params = params;
    }

    /// Counters.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Items in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// The next item whose delivery time is at or before `now`.
    pub fn poll(&mut self, now: Instant) -> Option<P> {
        if self.queue.peek()?.at > now {
            return None;
        }
        let item = self.queue.pop()?.item;
        self.stats.delivered += 1;
        Some(item)
    }

    /// When the next item will be delivered.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|f| f.at)
    }

    fn push(&mut self, at: Instant, item: P) {
        let seq = self.seq;
        self.seq += 1;
        self.queue.push(InFlight { at, seq, item });
    }

    /// The time `item` leaves the transmitter (after queueing and serialisation).
    fn departure(&mut self, now: Instant, item: &P) -> Instant {
        let Some(rate) = self.params.rate_bps.filter(|&r| r > 0) else { return now };
        let bits = u128::from(u64::try_from((self.len_of)(item)).unwrap_or(u64::MAX)) * 8;
        let nanos = u64::try_from(bits * 1_000_000_000 / u128::from(rate)).unwrap_or(u64::MAX);
        self.tx_free_at = self.tx_free_at.max(now) + Duration::from_nanos(nanos);
        self.tx_free_at
    }

    fn jitter(&mut self) -> Duration {
        let j = u64::try_from(self.params.jitter.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.below(j.saturating_add(1)))
    }
}

impl<P: Clone> SimLink<P> {
    /// Put `item` on the link at `now`. Dropped items still occupy the transmitter (they are
    /// lost on the wire, not before it).
    pub fn send(&mut self, now: Instant, item: P) {
        self.stats.sent += 1;
        let depart = self.departure(now, &item);
        // Draw every random decision in a fixed order so that runs replay exactly.
        let lost = self.rng.chance(self.params.loss);
        let dup = self.rng.chance(self.params.duplicate);
        let reorder = self.rng.chance(self.params.reorder);
        let jitter = self.jitter();
        if lost {
            self.stats.lost += 1;
            return;
        }
        let base = depart + self.params.delay + jitter;
        let at = if reorder {
            self.stats.reordered += 1;
            base + self.params.delay.max(Duration::from_millis(1))
        } else {
            let at = base.max(self.last_fifo);
            self.last_fifo = at;
            at
        };
        if dup {
            self.stats.duplicated += 1;
            self.push(at, item.clone());
        }
        self.push(at, item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<P: Clone>(link: &mut SimLink<P>) -> Vec<(Instant, P)> {
        let mut out = Vec::new();
        while let Some(t) = link.next_delivery() {
            while let Some(p) = link.poll(t) {
                out.push((t, p));
            }
        }
        out
    }

    fn lossy() -> LinkParams {
        LinkParams {
            loss: 0.1,
            reorder: 0.05,
            duplicate: 0.02,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(3),
            rate_bps: Some(100_000_000),
        }
    }

    #[test]
    fn loss_rate_about_right() {
        let mut link = SimLink::new(LinkParams { loss: 0.1, ..LinkParams::default() }, 42);
        for i in 0..100_000u32 {
            link.send(Instant::from_nanos(u64::from(i)), i);
        }
        let lost = link.stats().lost;
        assert!((9_500..=10_500).contains(&lost), "lost {lost} of 100000 at p=0.1");
        assert_eq!(drain(&mut link).len() as u64, 100_000 - lost);
    }

    #[test]
    fn duplicate_and_reorder_rates_about_right() {
        let mut link = SimLink::new(LinkParams { duplicate: 0.05, reorder: 0.2, ..LinkParams::default() }, 7);
        for i in 0..100_000u32 {
            link.send(Instant::from_nanos(u64::from(i) * 10_000), i);
        }
        let s = link.stats();
        assert!((4_500..=5_500).contains(&s.duplicated), "{s:?}");
        assert!((19_000..=21_000).contains(&s.reordered), "{s:?}");
        let got: Vec<u32> = drain(&mut link).into_iter().map(|(_, p)| p).collect();
        assert_eq!(got.len() as u64, 100_000 + s.duplicated);
        assert!(got.windows(2).any(|w| w[0] > w[1]), "reordering happened");
    }

    #[test]
    fn no_loss_preserves_order_despite_jitter_and_rate() {
        let params = LinkParams { loss: 0.0, reorder: 0.0, duplicate: 0.0, ..lossy() };
        let mut link = SimLink::new(params, 1).with_len(|v: &Vec<u8>| v.len());
        let mut now = Instant::ZERO;
        for i in 0..10_000u32 {
            link.send(now, i.to_be_bytes().repeat(100));
            now += Duration::from_micros(u64::from(i % 7) * 10);
        }
        let got = drain(&mut link);
        assert_eq!(got.len(), 10_000);
        for (i, (_, p)) in got.iter().enumerate() {
            assert_eq!(p[..4], (i as u32).to_be_bytes());
        }
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn delay_and_rate_shape_delivery_times() {
        // 1 Mbit/s, 1250-byte items: 10 ms each on the wire, plus 5 ms propagation.
        let params = LinkParams { delay: Duration::from_millis(5), rate_bps: Some(1_000_000), ..LinkParams::default() };
        let mut link = SimLink::new(params, 0).with_len(|_: &u8| 1250);
        link.send(Instant::ZERO, 1u8);
        link.send(Instant::ZERO, 2u8);
        assert_eq!(link.next_delivery(), Some(Instant::from_millis(15)));
        assert_eq!(link.poll(Instant::from_millis(14)), None);
        assert_eq!(link.poll(Instant::from_millis(15)), Some(1));
        assert_eq!(link.next_delivery(), Some(Instant::from_millis(25)));
        assert_eq!(link.poll(Instant::from_millis(30)), Some(2));
        assert_eq!(link.poll(Instant::from_millis(30)), None);
        assert_eq!(link.next_delivery(), None);
    }

    #[test]
    fn deterministic_per_seed() {
        let run = |seed| {
            let mut link = SimLink::new(lossy(), seed);
            let mut now = Instant::ZERO;
            for i in 0..5_000u32 {
                link.send(now, i);
                now += Duration::from_micros(50);
            }
            (drain(&mut link), link.stats())
        };
        assert_eq!(run(99), run(99));
        assert_ne!(run(99).0, run(100).0);
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut r = SimRng::new(5);
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            buckets[r.below(10) as usize] += 1;
        }
        assert!(buckets.iter().all(|&b| (9_000..11_000).contains(&b)), "{buckets:?}");
        assert!(!r.chance(0.0) && r.chance(1.0) && !r.chance(f64::NAN));
        assert_eq!(r.below(0), 0);
    }
}
