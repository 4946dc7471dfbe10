//! Smooth weighted round robin, as in nginx's `ngx_http_upstream_get_peer`.
//!
//! Every pick, each eligible backend's `current` grows by its weight; the backend with the
//! largest `current` wins and gives back the total weight of the eligible set. Over one cycle
//! of `Σw` picks each backend is chosen exactly `w` times, and the choices interleave: weights
//! 5:3:2 give `a b a c a b a c b a`-like sequences, never `a a a a a b b b c c` bursts.
//! Backends that are down (or have weight 0) are simply not eligible this pick.

/// The running state of a smooth weighted round robin over a pool.
#[derive(Debug, Clone, Default)]
pub(crate) struct SmoothWrr {
    current: Vec<i64>,
}

impl SmoothWrr {
    /// A fresh state for a pool of `len` backends.
    pub(crate) fn new(len: usize) -> Self {
        SmoothWrr {
            current: vec![0; len],
        }
    }

    /// Picks among the backends for which `eligible(idx)` holds, with `weights[idx]`
    /// (weight-0 backends are never picked). `None` when nothing is eligible.
    pub(crate) fn pick(
        &mut self,
        weights: &[u32],
        eligible: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        // 65 536 backends × u32::MAX < 2^48: neither sum nor `current` can overflow i64
        // (each `current` stays within ±total weight of the pool).
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for (idx, &w) in weights.iter().enumerate() {
            if w == 0 || !eligible(idx) {
                continue;
            }
            let Some(cur) = self.current.get_mut(idx) else {
                continue;
            };
            let w = i64::from(w);
            *cur += w;
            total += w;
            // Ties go to the lowest index, as in nginx.
            if best.is_none_or(|(_, bc)| *cur > bc) {
                best = Some((idx, *cur));
            }
        }
        let (b, _) = best?;
        if let Some(cur) = self.current.get_mut(b) {
            *cur -= total;
        }
        Some(b)
    }
}

/// The longest shared round-robin schedule built ([`schedule`]).
pub(crate) const MAX_SCHEDULE: usize = 1 << 16;

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One cycle of the smooth weighted round robin over every backend of weight > 0, with the
/// weights divided by their greatest common divisor: `Σw / gcd` picks, backend `i` appearing
/// `w_i / gcd` times, interleaved as [`SmoothWrr`] interleaves them. The lcores of a process
/// all build the same one and take positions in it from one shared ticket counter, so the
/// process as a whole runs one round robin. `None` when the cycle would be longer than
/// [`MAX_SCHEDULE`] (or every weight is 0).
pub(crate) fn schedule(weights: &[u32]) -> Option<Vec<u32>> {
    let g = weights.iter().copied().fold(0, gcd);
    if g == 0 {
        return None;
    }
    let reduced: Vec<u32> = weights.iter().map(|w| w / g).collect();
    let len: u64 = reduced.iter().map(|&w| u64::from(w)).sum();
    if len > MAX_SCHEDULE as u64 {
        return None;
    }
    let mut wrr = SmoothWrr::new(reduced.len());
    let mut out = Vec::with_capacity(usize::try_from(len).ok()?);
    for _ in 0..len {
        let i = wrr.pick(&reduced, |_| true)?;
        out.push(u32::try_from(i).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_5_3_2_interleave_and_sum_exactly_per_cycle() {
        let mut rr = SmoothWrr::new(3);
        let w = [5, 3, 2];
        let seq: Vec<usize> = (0..10).filter_map(|_| rr.pick(&w, |_| true)).collect();
        assert_eq!(seq.iter().filter(|&&i| i == 0).count(), 5);
        assert_eq!(seq.iter().filter(|&&i| i == 1).count(), 3);
        assert_eq!(seq.iter().filter(|&&i| i == 2).count(), 2);
        // Smooth: the heaviest backend never runs more than twice in a row.
        assert!(
            seq.windows(3)
                .all(|x| !(x[0] == 0 && x[1] == 0 && x[2] == 0)),
            "{seq:?}"
        );
        assert_eq!(seq, vec![0, 1, 2, 0, 0, 1, 0, 2, 1, 0]);
    }

    #[test]
    fn ineligible_and_zero_weight_backends_are_skipped() {
        let mut rr = SmoothWrr::new(3);
        let w = [1, 0, 1];
        for _ in 0..20 {
            let p = rr.pick(&w, |i| i != 2);
            assert_eq!(p, Some(0));
        }
        assert_eq!(rr.pick(&w, |i| i == 1), None);
    }

    #[test]
    fn the_schedule_is_one_reduced_cycle() {
        assert_eq!(schedule(&[5, 3, 2]), Some(vec![0, 1, 2, 0, 0, 1, 0, 2, 1, 0]));
        assert_eq!(schedule(&[4, 0, 4]), Some(vec![0, 2]), "gcd 4, weight 0 absent");
        assert_eq!(schedule(&[0, 0]), None);
        assert_eq!(schedule(&[1000; 3]), Some(vec![0, 1, 2]));
        let long: Vec<u32> = (1..=400).collect();
        assert_eq!(schedule(&long), None, "80 200 entries: too long");
    }
}
