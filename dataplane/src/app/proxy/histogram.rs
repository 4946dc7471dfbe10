//! Fixed-bucket duration histograms the proxy keeps as plain counters on its lcore (no
//! locks, no atomics): the lcore publishes copies, the metrics endpoint sums the copies of
//! every lcore and renders them as Prometheus histograms (cumulative `le` buckets,
//! `_sum` in seconds, `_count`).
//!
//! Buckets are fixed at build time so that histograms of different lcores add up bucket by
//! bucket.

use crate::time::Duration;

/// Most buckets a histogram has (the `+Inf` bucket not counted).
pub const MAX_BUCKETS: usize = 16;

/// Upper bounds (inclusive, nanoseconds) of the connect-duration buckets: 100 µs to 10 s.
/// A backend on the same L2 segment answers a SYN in well under a millisecond; seconds mean
/// SYN retransmissions.
pub const CONNECT_BOUNDS_NS: &[u64] = &[
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Upper bounds (inclusive, nanoseconds) of the connection-duration buckets: 1 ms to 1 h.
pub const CONNECTION_BOUNDS_NS: &[u64] = &[
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    300_000_000_000,
    900_000_000_000,
    1_800_000_000_000,
    3_600_000_000_000,
];

/// Upper bounds (inclusive, nanoseconds) of the lcore busy-pass buckets: 10 µs to 1 s. A
/// pass over a handful of frames takes microseconds; a pass of tens of milliseconds (the
/// lcore preempted, or a burst of work) is how long the RX rings fill unattended, and an
/// AF_XDP ring of 2 048 frames overflows in 20 ms at 100 000 frames/s (docs/af_xdp.md).
pub const PASS_BOUNDS_NS: &[u64] = &[
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

/// A histogram of durations over fixed buckets. `counts[i]` counts the observations in
/// `(bounds[i-1], bounds[i]]` (not cumulative); observations above the last bound are only
/// in `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    /// Upper bounds of the buckets in nanoseconds, ascending ([`CONNECT_BOUNDS_NS`] or
    /// [`CONNECTION_BOUNDS_NS`]); at most [`MAX_BUCKETS`].
    bounds: &'static [u64],
    counts: [u64; MAX_BUCKETS],
    /// Sum of the observations, nanoseconds (saturating).
    sum_ns: u64,
    /// Observations.
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new(CONNECTION_BOUNDS_NS)
    }
}

impl Histogram {
    /// An empty histogram over `bounds` (nanoseconds, ascending; only the first
    /// [`MAX_BUCKETS`] are used).
    pub const fn new(bounds: &'static [u64]) -> Self {
        let bounds = if bounds.len() > MAX_BUCKETS { bounds.split_at(MAX_BUCKETS).0 } else { bounds };
        Histogram { bounds, counts: [0; MAX_BUCKETS], sum_ns: 0, count: 0 }
    }

    /// A connect-duration histogram ([`CONNECT_BOUNDS_NS`]).
    pub const fn connect() -> Self {
        Histogram::new(CONNECT_BOUNDS_NS)
    }

    /// A connection-duration histogram ([`CONNECTION_BOUNDS_NS`]).
    pub const fn connection() -> Self {
        Histogram::new(CONNECTION_BOUNDS_NS)
    }

    /// An lcore busy-pass histogram ([`PASS_BOUNDS_NS`]).
    pub const fn busy_pass() -> Self {
        Histogram::new(PASS_BOUNDS_NS)
    }

    /// Counts one observation.
    pub fn observe(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if let Some(i) = self.bounds.iter().position(|&b| ns <= b) {
            if let Some(c) = self.counts.get_mut(i) {
                *c += 1;
            }
        }
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.count += 1;
    }

    /// Adds `other`'s observations (bucket by bucket; both must use the same bounds, else
    /// only the totals are added and `false` is returned).
    pub fn merge(&mut self, other: &Histogram) -> bool {
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.count = self.count.saturating_add(other.count);
        if self.bounds != other.bounds {
            return false;
        }
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        true
    }

    /// The bucket upper bounds in nanoseconds.
    pub fn bounds_ns(&self) -> &'static [u64] {
        self.bounds
    }

    /// `(upper bound in seconds, cumulative count)` per bucket, the `+Inf` one left out (it
    /// is [`Histogram::count`]).
    pub fn cumulative_seconds(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bounds.iter().zip(self.counts.iter()).scan(0u64, |acc, (&b, &c)| {
            *acc = acc.saturating_add(c);
            Some((b as f64 / 1e9, *acc))
        })
    }

    /// Sum of the observations in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_ns as f64 / 1e9
    }

    /// Observations.
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_ascending_and_fit() {
        for b in [CONNECT_BOUNDS_NS, CONNECTION_BOUNDS_NS, PASS_BOUNDS_NS] {
            assert!(b.len() <= MAX_BUCKETS);
            assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        }
    }

    #[test]
    fn observations_land_in_their_bucket_and_accumulate() {
        let mut h = Histogram::connect();
        h.observe(Duration::from_micros(100)); // exactly on the first bound: le is inclusive
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_secs(60)); // above every bound: +Inf only
        let cum: Vec<(f64, u64)> = h.cumulative_seconds().collect();
        assert_eq!(cum.len(), CONNECT_BOUNDS_NS.len());
        assert_eq!(cum[0], (0.0001, 1));
        assert_eq!(cum[1], (0.00025, 1));
        assert_eq!(cum[2], (0.0005, 2));
        assert_eq!(cum[4], (0.0025, 3));
        assert_eq!(cum.last().map(|c| c.1), Some(3), "the 60 s observation is only in +Inf");
        assert_eq!(h.count(), 4);
        assert!((h.sum_seconds() - 60.0024).abs() < 1e-9, "{}", h.sum_seconds());
    }

    #[test]
    fn merging_adds_bucket_by_bucket_and_refuses_other_bounds() {
        let mut a = Histogram::connection();
        let mut b = Histogram::connection();
        a.observe(Duration::from_millis(3));
        b.observe(Duration::from_millis(3));
        b.observe(Duration::from_secs(2));
        assert!(a.merge(&b));
        let cum: Vec<u64> = a.cumulative_seconds().map(|c| c.1).collect();
        assert_eq!(cum[1], 2, "two observations ≤ 5 ms");
        assert_eq!(cum[7], 3, "three ≤ 5 s");
        assert_eq!(a.count(), 3);
        let mut c = Histogram::connect();
        assert!(!c.merge(&b), "different bounds do not mix");
        assert_eq!(c.count(), 2, "totals still add up");
    }

    #[test]
    fn huge_durations_saturate_instead_of_overflowing() {
        let mut h = Histogram::connection();
        h.observe(Duration::MAX);
        h.observe(Duration::MAX);
        assert_eq!(h.count(), 2);
        assert_eq!(h.sum_seconds(), u64::MAX as f64 / 1e9);
    }
}
