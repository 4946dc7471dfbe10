//! CUBIC congestion control (RFC 9438) with HyStart++ slow start (RFC 9406).
//!
//! In congestion avoidance the window follows `W_cubic(t) = C*(t - K)^3 + W_max`
//! (RFC 9438 §4.2, figure 1), with `t` the time since the epoch began and
//! `K = cbrt((W_max - cwnd_epoch) / C)` (figure 2), towards the target `W_cubic(t + RTT)`
//! (§4.4, §4.5), never below the Reno-friendly estimate `W_est` (§4.3). A congestion event
//! sets `ssthresh = cwnd * β` and remembers `W_max`, with fast convergence (§4.6, §4.7).
//! Windows are computed in segments (floating point, as the RFC writes them) and stored in
//! bytes.

use super::hystart::{HystartPlusPlus, Phase};
use super::{AckSample, Algorithm, CongestionControl};
use crate::time::{Duration, Instant};

/// RFC 9438 §5: C = 0.4.
pub const C: f64 = 0.4;
/// RFC 9438 §4.6: β_cubic = 0.7.
pub const BETA: f64 = 0.7;

/// `W_cubic(t)` of RFC 9438 figure 1, in segments: `origin + C * (t - k)^3`.
pub fn w_cubic(t_secs: f64, k_secs: f64, origin: f64) -> f64 {
    let d = t_secs - k_secs;
    origin + C * d * d * d
}

/// `K` of RFC 9438 figure 2: the time for the window to grow back from `cwnd_epoch` to
/// `w_max` (both in segments); 0 when it is already there.
pub fn k_secs(w_max: f64, cwnd_epoch: f64) -> f64 {
    if cwnd_epoch >= w_max { 0.0 } else { ((w_max - cwnd_epoch) / C).cbrt() }
}

/// CUBIC state.
#[derive(Debug, Clone)]
pub struct Cubic {
    cwnd: u32,
    ssthresh: u32,
    /// Window before the last reduction, in segments (`W_max`, after fast convergence).
    w_max: f64,
    /// `cwnd_prior`: the window when the last congestion event happened (segments).
    cwnd_prior: f64,
    /// Start of the current congestion-avoidance epoch.
    epoch_start: Option<Instant>,
    /// `K` and the plateau (`W_max`, or the window itself when above it) of this epoch.
    k: f64,
    origin: f64,
    /// The Reno-friendly estimate `W_est` (segments).
    w_est: f64,
    /// Fractional growth not yet added to `cwnd` (bytes).
    acc: f64,
    /// Smallest RTT seen: the `RTT` of `W_cubic(t + RTT)` (as Linux's `delay_min`).
    min_rtt: Option<Duration>,
    hystart: HystartPlusPlus,
}

impl Cubic {
    /// A CUBIC instance with `cwnd = initial_cwnd` bytes and an unbounded `ssthresh`.
    pub fn new(initial_cwnd: u32) -> Self {
        Cubic {
            cwnd: initial_cwnd.max(1),
            ssthresh: u32::MAX,
            w_max: 0.0,
            cwnd_prior: 0.0,
            epoch_start: None,
            k: 0.0,
            origin: 0.0,
            w_est: 0.0,
            acc: 0.0,
            min_rtt: None,
            hystart: HystartPlusPlus::default(),
        }
    }

    /// `W_max` in segments.
    pub fn w_max(&self) -> f64 {
        self.w_max
    }

    /// `K` of the current epoch in seconds (0 before congestion avoidance began).
    pub fn k(&self) -> f64 {
        self.k
    }

    /// The HyStart++ phase (slow start, CSS, or done).
    pub fn hystart_phase(&self) -> Phase {
        self.hystart.phase()
    }

    /// RFC 9438 §4.6 / §4.7: remember `W_max` (with fast convergence) and set `ssthresh`.
    fn reduce(&mut self, mss: u32) {
        let mss_f = f64::from(mss.max(1));
        let cwnd_seg = f64::from(self.cwnd) / mss_f;
        self.w_max = if cwnd_seg < self.w_max { cwnd_seg * (1.0 + BETA) / 2.0 } else { cwnd_seg };
        self.cwnd_prior = cwnd_seg;
        self.ssthresh = to_bytes(cwnd_seg * BETA, mss).max(2 * mss.max(1));
        self.epoch_start = None;
        self.acc = 0.0;
        self.hystart.on_loss();
    }

    fn congestion_avoidance(&mut self, a: &AckSample) {
        let mss = a.mss.max(1);
        let mss_f = f64::from(mss);
        let cwnd_seg = f64::from(self.cwnd) / mss_f;
        let epoch = match self.epoch_start {
            Some(e) => e,
            None => {
                // A new epoch (RFC 9438 §4.2): K from the window now; above W_max the
                // plateau is the window itself.
                self.epoch_start = Some(a.now);
                self.k = k_secs(self.w_max, cwnd_seg);
                self.origin = self.w_max.max(cwnd_seg);
                self.w_est = cwnd_seg;
                a.now
            }
        };
        let t = a.now.saturating_duration_since(epoch).as_secs_f64();
        let rtt = self.min_rtt.unwrap_or_default().as_secs_f64();
        let acked_seg = f64::from(a.acked) / mss_f;
        // RFC 9438 §4.3: W_est grows by α per window of ACKs; α is 1 once W_est reached the
        // window of the last congestion event.
        let alpha = if self.w_est >= self.cwnd_prior { 1.0 } else { 3.0 * (1.0 - BETA) / (1.0 + BETA) };
        self.w_est += alpha * acked_seg / cwnd_seg.max(1.0);
        if w_cubic(t, self.k, self.origin) < self.w_est {
            // Reno-friendly region: cwnd = W_est.
            let est = to_bytes(self.w_est, mss);
            if est > self.cwnd {
                self.cwnd = est;
            }
            return;
        }
        // §4.4 / §4.5: grow towards W_cubic(t + RTT), clamped to [cwnd, 1.5 * cwnd].
        let target = w_cubic(t + rtt, self.k, self.origin).clamp(cwnd_seg, 1.5 * cwnd_seg);
        self.acc += (target - cwnd_seg) / cwnd_seg.max(1.0) * f64::from(a.acked);
        if self.acc >= 1.0 {
            let whole = self.acc.floor();
            self.acc -= whole;
            self.cwnd = self.cwnd.saturating_add(whole.min(f64::from(u32::MAX)) as u32);
        }
    }
}

/// Segments (fractional) to bytes, saturating.
fn to_bytes(segments: f64, mss: u32) -> u32 {
    let b = segments * f64::from(mss.max(1));
    if b.is_finite() && b > 0.0 { b.min(f64::from(u32::MAX)) as u32 } else { 0 }
}

impl CongestionControl for Cubic {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Cubic
    }

    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = cwnd.max(1);
    }

    fn on_ack(&mut self, a: &AckSample) {
        if let Some(r) = a.rtt {
            self.min_rtt = Some(self.min_rtt.map_or(r, |m| m.min(r)));
        }
        // RFC 9438 §5.8 / RFC 7661: no growth while application-limited.
        if !a.cwnd_limited {
            return;
        }
        if self.cwnd < self.ssthresh {
            // RFC 9406 HyStart++ slow start.
            let step = self.hystart.on_ack(a.acked, a.mss, a.rtt, a.ack, a.snd_nxt);
            if step.enter_ca {
                self.ssthresh = self.cwnd;
                return;
            }
            self.cwnd = self.cwnd.saturating_add(step.increase);
            return;
        }
        self.congestion_avoidance(a);
    }

    fn on_congestion_event(&mut self, _flight_size: u32, mss: u32, _now: Instant) {
        self.reduce(mss);
    }

    fn on_recovery_exit(&mut self, _mss: u32, _now: Instant) {
        self.cwnd = self.ssthresh;
        self.epoch_start = None;
    }

    fn on_timeout(&mut self, _flight_size: u32, mss: u32, _now: Instant) {
        self.reduce(mss);
        // RFC 9438 §4.8: the first avoidance stage after a timeout starts with K = 0 and
        // W_max = the window at its beginning.
        self.w_max = 0.0;
        self.cwnd = mss.max(1);
    }

    fn on_idle_restart(&mut self, mss: u32, initial_cwnd: u32, _now: Instant) {
        // RFC 5681 §4.1 restart window; the cubic epoch starts over (Linux shifts it on
        // `CA_EVENT_TX_START`).
        self.cwnd = self.cwnd.min(initial_cwnd).max(mss);
        self.epoch_start = None;
        self.acc = 0.0;
    }

    fn undo(&mut self, prior_cwnd: u32, prior_ssthresh: u32) {
        self.cwnd = self.cwnd.max(prior_cwnd);
        self.ssthresh = self.ssthresh.max(prior_ssthresh);
        self.epoch_start = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::seq::SeqNum;

    const MSS: u32 = 1000;

    fn sample(now: Instant, rtt_ms: u64) -> AckSample {
        AckSample {
            acked: MSS,
            mss: MSS,
            cwnd_limited: true,
            now,
            rtt: Some(Duration::from_millis(rtt_ms)),
            ack: SeqNum(0),
            snd_nxt: SeqNum(0),
        }
    }

    /// A CUBIC instance in congestion avoidance right after a loss at `w_max` segments.
    fn after_loss(w_max: u32, now: Instant) -> Cubic {
        let mut c = Cubic::new(w_max * MSS);
        c.on_ack(&AckSample { cwnd_limited: false, ..sample(now, 100) });
        c.on_congestion_event(w_max * MSS, MSS, now);
        c.on_recovery_exit(MSS, now);
        c
    }

    /// Runs CUBIC with a fixed 100 ms RTT, one ACK per segment spread evenly over each RTT,
    /// and returns `(t, cwnd in segments)` at each whole second after the epoch began.
    fn run(c: &mut Cubic, start: Instant, seconds: u64) -> Vec<(f64, f64)> {
        let rtt = Duration::from_millis(100);
        let mut now = start;
        let mut out = Vec::new();
        let end = start + Duration::from_secs(seconds);
        let mut next_mark = start + Duration::from_secs(1);
        while now < end {
            let acks = (c.cwnd() / MSS).max(1);
            let gap = rtt / acks;
            for _ in 0..acks {
                c.on_ack(&sample(now, 100));
                now += gap;
                if now >= next_mark {
                    let t = next_mark.saturating_duration_since(start).as_secs_f64();
                    out.push((t, f64::from(c.cwnd()) / f64::from(MSS)));
                    next_mark += Duration::from_secs(1);
                }
            }
        }
        out
    }

    #[test]
    fn cubic_growth_matches_rfc_formula_at_fixed_times() {
        // W_max large enough that the Reno-friendly estimate (α ≈ 0.53 segments per RTT)
        // stays far below the cubic curve for the whole run.
        let start = Instant::from_millis(1000);
        let mut c = after_loss(1000, start);
        // RFC 9438 §4.6: ssthresh = cwnd * β = 700 segments; W_max = 1000.
        assert_eq!(c.ssthresh(), 700 * MSS);
        assert_eq!(c.cwnd(), 700 * MSS);
        assert_eq!(c.w_max(), 1000.0);
        let points = run(&mut c, start, 14);
        // K = cbrt((1000 - 700) / 0.4) = cbrt(750) ≈ 9.086 s.
        assert!((c.k() - 750f64.cbrt()).abs() < 1e-9);
        assert_eq!(points.len(), 14);
        for (t, got) in points {
            // Growing towards W_cubic(t + RTT) by (target - cwnd) / cwnd per ACK, the
            // window follows W_cubic(t) one RTT behind the target.
            let want = w_cubic(t, c.k(), 1000.0);
            let err = (got - want).abs() / want;
            assert!(err < 0.01, "t={t}s: cwnd {got:.2} segments, RFC 9438 W_cubic(t) {want:.2} (error {err:.4})");
        }
        // The plateau: at t = K the curve is exactly W_max.
        assert!((w_cubic(750f64.cbrt(), c.k(), 1000.0) - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn fast_convergence_lowers_w_max() {
        let now = Instant::from_millis(1);
        let mut c = after_loss(100, now);
        // A second loss below the previous W_max: W_max = cwnd * (1 + β) / 2 (§4.7).
        c.on_congestion_event(70 * MSS, MSS, now);
        assert!((c.w_max() - 70.0 * 1.7 / 2.0).abs() < 1e-9);
        assert_eq!(c.ssthresh(), 49 * MSS);
    }

    #[test]
    fn reno_friendly_region_bounds_growth_from_below() {
        // Tiny W_max: W_cubic stays flat while W_est grows; cwnd follows W_est (§4.3).
        let start = Instant::from_millis(1);
        let mut c = after_loss(4, start);
        let before = c.cwnd();
        run(&mut c, start, 3);
        assert!(c.cwnd() > before);
    }

    #[test]
    fn timeout_collapses_to_one_segment_and_restarts_epoch_at_k_zero() {
        let now = Instant::from_millis(1);
        let mut c = after_loss(100, now);
        c.on_timeout(70 * MSS, MSS, now);
        assert_eq!(c.cwnd(), MSS);
        assert_eq!(c.ssthresh(), 49 * MSS);
        assert_eq!(c.w_max(), 0.0);
        c.undo(70 * MSS, 70 * MSS);
        assert_eq!((c.cwnd(), c.ssthresh()), (70 * MSS, 70 * MSS));
    }
}
