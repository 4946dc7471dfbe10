//! Weighted least connections, as in nginx's `least_conn`.
//!
//! The backend with the smallest `active / weight` wins (compared exactly, by
//! cross-multiplication). Ties — common when connections are short, since every count is then
//! 0 — are broken by a smooth weighted round robin among the tied backends, so an idle pool
//! still shares new connections in proportion to the weights instead of always picking the
//! first backend.

use super::rr::SmoothWrr;

/// Picks the eligible backend with the least `active(idx) / weights[idx]`, breaking ties with
/// `wrr`. `active(idx)` is the backend's count (this lcore's, or every lcore's: `SharedPool`).
/// Weight-0 backends are never picked. `None` when nothing is eligible.
pub(crate) fn pick(
    weights: &[u32],
    active: impl Fn(usize) -> u64,
    wrr: &mut SmoothWrr,
    eligible: impl Fn(usize) -> bool,
) -> Option<usize> {
    // `a / w` as a fraction; compare a1 × w2 with a2 × w1 in u128 (no overflow possible).
    let ratio = |idx: usize| -> Option<(u128, u128)> {
        let w = *weights.get(idx)?;
        if w == 0 || !eligible(idx) {
            return None;
        }
        Some((
            u128::from(active(idx)),
            u128::from(w),
        ))
    };
    let mut min: Option<(u128, u128)> = None;
    for idx in 0..weights.len() {
        if let Some((a, w)) = ratio(idx) {
            if min.is_none_or(|(ma, mw)| a * mw < ma * w) {
                min = Some((a, w));
            }
        }
    }
    let (ma, mw) = min?;
    wrr.pick(weights, |idx| {
        ratio(idx).is_some_and(|(a, w)| a * mw == ma * w)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_loaded_relative_to_weight_wins() {
        let weights = [2, 1, 1];
        let mut wrr = SmoothWrr::new(3);
        // 3/2 = 1.5, 2/1 = 2, 1/1 = 1: backend 2.
        assert_eq!(pick(&weights, |i| [3, 2, 1][i], &mut wrr, |_| true), Some(2));
        // 2/2 = 1 ties 1/1 = 1 on backend 2 -> smooth WRR between 0 (w2) and 2 (w1).
        let picks: Vec<_> = (0..3)
            .filter_map(|_| pick(&weights, |i| [2, 2, 1][i], &mut wrr, |_| true))
            .collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 2);
        assert_eq!(picks.iter().filter(|&&i| i == 2).count(), 1);
    }

    #[test]
    fn down_and_zero_weight_backends_are_skipped() {
        let weights = [1, 0, 1];
        let mut wrr = SmoothWrr::new(3);
        assert_eq!(pick(&weights, |i| [9, 0, 5][i], &mut wrr, |i| i != 2), Some(0));
        assert_eq!(pick(&weights, |i| [9, 0, 5][i], &mut wrr, |i| i == 1), None);
    }
}
