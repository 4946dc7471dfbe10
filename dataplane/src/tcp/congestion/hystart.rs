//! HyStart++ (RFC 9406): slow start that leaves early, into Conservative Slow Start (CSS),
//! when the round-trip time of a round rises above that of the previous one by a
//! threshold, instead of overshooting until loss.
//!
//! A "round" ends when the ACK covers `snd_nxt` as it was when the round began (RFC 9406
//! §4.2). The helper only decides the slow-start increment; the algorithm that owns it
//! applies it.

use crate::tcp::seq::SeqNum;
use crate::time::Duration;

/// RFC 9406 §4.3 constants.
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const MIN_RTT_DIVISOR: u32 = 8;
const N_RTT_SAMPLE: u32 = 8;
const CSS_GROWTH_DIVISOR: u32 = 4;
const CSS_ROUNDS: u32 = 5;
/// Growth limit per ACK in segments for non-paced senders (RFC 9406 §4.3: L = 8).
const L: u32 = 8;

/// Where the slow-start phase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Standard slow start (with the delay-increase check).
    SlowStart,
    /// Conservative slow start: growth divided by `CSS_GROWTH_DIVISOR`.
    Css,
    /// Slow start has ended (CSS completed, or loss); congestion avoidance owns the window.
    Done,
}

/// What one ACK does in slow start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Bytes to add to `cwnd`.
    pub increase: u32,
    /// CSS completed its rounds: set `ssthresh = cwnd` and enter congestion avoidance.
    pub enter_ca: bool,
}

/// HyStart++ state (RFC 9406 §4.2).
#[derive(Debug, Clone)]
pub struct HystartPlusPlus {
    phase: Phase,
    window_end: Option<SeqNum>,
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    rtt_sample_count: u32,
    css_baseline_min_rtt: Option<Duration>,
    css_rounds: u32,
}

impl Default for HystartPlusPlus {
    fn default() -> Self {
        HystartPlusPlus {
            phase: Phase::SlowStart,
            window_end: None,
            last_round_min_rtt: None,
            current_round_min_rtt: None,
            rtt_sample_count: 0,
            css_baseline_min_rtt: None,
            css_rounds: 0,
        }
    }
}

impl HystartPlusPlus {
    /// Current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Slow start begins again (after a timeout or idle restart): fresh rounds
    /// (RFC 9406 §4.2, "HyStart++ MAY be used ... after a retransmission timeout" ).
    pub fn restart(&mut self) {
        *self = HystartPlusPlus::default();
    }

    /// Loss ended slow start or CSS (RFC 9406 §4.2: "standard" response).
    pub fn on_loss(&mut self) {
        self.phase = Phase::Done;
    }

    /// One ACK of `acked` new bytes while `cwnd < ssthresh`.
    pub fn on_ack(&mut self, acked: u32, mss: u32, rtt: Option<Duration>, ack: SeqNum, snd_nxt: SeqNum) -> Step {
        let n = acked.min(L.saturating_mul(mss.max(1)));
        if self.phase == Phase::Done {
            // Slow start below a threshold set by a loss: plain RFC 5681 growth.
            return Step { increase: n, enter_ca: false };
        }
        let mut enter_ca = false;
        // Round boundary: the ACK covers the end of the previous round.
        if self.window_end.is_none_or(|end| ack.ge(end)) {
            self.window_end = Some(snd_nxt);
            self.last_round_min_rtt = self.current_round_min_rtt;
            self.current_round_min_rtt = None;
            self.rtt_sample_count = 0;
            if self.phase == Phase::Css {
                self.css_rounds += 1;
                if self.css_rounds >= CSS_ROUNDS {
                    self.phase = Phase::Done;
                    enter_ca = true;
                }
            }
        }
        if let Some(r) = rtt {
            self.current_round_min_rtt = Some(self.current_round_min_rtt.map_or(r, |m| m.min(r)));
            self.rtt_sample_count += 1;
        }
        let checkable = self.rtt_sample_count >= N_RTT_SAMPLE;
        match (self.phase, self.current_round_min_rtt, self.last_round_min_rtt) {
            (Phase::SlowStart, Some(cur), Some(last)) if checkable => {
                let thresh = (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                if cur >= last + thresh {
                    self.css_baseline_min_rtt = Some(cur);
                    self.css_rounds = 0;
                    self.phase = Phase::Css;
                }
            }
            (Phase::Css, Some(cur), _) if checkable && self.css_baseline_min_rtt.is_some_and(|b| cur < b) => {
                // The exit was spurious: back to standard slow start.
                self.css_baseline_min_rtt = None;
                self.phase = Phase::SlowStart;
            }
            _ => {}
        }
        let increase = match self.phase {
            Phase::Css => n / CSS_GROWTH_DIVISOR,
            _ => n,
        };
        Step { increase: if enter_ca { 0 } else { increase }, enter_ca }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One round of `acks` ACKs of 1000 bytes each with RTT `rtt_ms`, starting at `*una`;
    /// returns the total increase and whether CA was entered. SND.NXT during the round is
    /// just past its last ACK, so the next round's first ACK ends it.
    fn round(h: &mut HystartPlusPlus, acks: u32, rtt_ms: u64, una: &mut u32) -> (u32, bool) {
        let mss = 1000;
        let mut inc = 0;
        let mut ca = false;
        let nxt = *una + acks * mss + 1;
        for i in 1..=acks {
            let s = h.on_ack(mss, mss, Some(Duration::from_millis(rtt_ms)), SeqNum(*una + i * mss), SeqNum(nxt));
            inc += s.increase;
            ca |= s.enter_ca;
        }
        *una += acks * mss;
        (inc, ca)
    }

    #[test]
    fn hystart_exit_on_rtt_increase_then_css_then_ca() {
        let mut h = HystartPlusPlus::default();
        let mut una = 0u32;
        // Two rounds at 40 ms: standard slow start, one MSS per MSS acknowledged.
        assert_eq!(round(&mut h, 10, 40, &mut una), (10_000, false));
        assert_eq!(round(&mut h, 10, 40, &mut una), (10_000, false));
        assert_eq!(h.phase(), Phase::SlowStart);
        // RTT threshold is clamp(40/8, 4, 16) = 5 ms: 44 ms stays in slow start...
        round(&mut h, 10, 44, &mut una);
        assert_eq!(h.phase(), Phase::SlowStart);
        // ... 50 ms (>= 44 + 5.5) leaves it after N_RTT_SAMPLE samples.
        let (inc, _) = round(&mut h, 10, 50, &mut una);
        assert_eq!(h.phase(), Phase::Css);
        // 7 ACKs at full growth; from the 8th sample on, a quarter.
        assert_eq!(inc, 7 * 1000 + 3 * 250);
        // CSS grows at a quarter; after CSS_ROUNDS rounds congestion avoidance begins.
        let mut entered = false;
        for _ in 0..CSS_ROUNDS {
            let (inc, ca) = round(&mut h, 10, 50, &mut una);
            if ca {
                entered = true;
                break;
            }
            assert_eq!(inc, 10 * 250);
        }
        assert!(entered, "CSS ends in congestion avoidance");
        assert_eq!(h.phase(), Phase::Done);
    }

    #[test]
    fn spurious_css_exit_resumes_slow_start() {
        let mut h = HystartPlusPlus::default();
        let mut una = 0u32;
        round(&mut h, 10, 20, &mut una);
        round(&mut h, 10, 30, &mut una);
        assert_eq!(h.phase(), Phase::Css);
        // The next round's RTT falls below the CSS baseline: back to slow start.
        round(&mut h, 10, 20, &mut una);
        assert_eq!(h.phase(), Phase::SlowStart);
    }

    #[test]
    fn growth_per_ack_is_limited_to_l_segments() {
        let mut h = HystartPlusPlus::default();
        let s = h.on_ack(100_000, 1000, None, SeqNum(100_000), SeqNum(200_000));
        assert_eq!(s.increase, L * 1000);
    }
}
