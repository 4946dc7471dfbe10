//! NewReno congestion control (RFC 5681 slow start and congestion avoidance, RFC 6582 fast
//! recovery), with appropriate byte counting (RFC 3465) in congestion avoidance.

use super::{AckSample, Algorithm, CongestionControl};
use crate::time::Instant;

/// NewReno window arithmetic.
#[derive(Debug, Clone)]
pub struct NewReno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged since `cwnd` last grew in congestion avoidance.
    bytes_acked: u32,
}

impl NewReno {
    /// A NewReno instance with `cwnd = initial_cwnd` and an unbounded `ssthresh`
    /// (RFC 5681 §3.1: "arbitrarily high").
    pub fn new(initial_cwnd: u32) -> Self {
        NewReno { cwnd: initial_cwnd.max(1), ssthresh: u32::MAX, bytes_acked: 0 }
    }
}

impl CongestionControl for NewReno {
    fn algorithm(&self) -> Algorithm {
        Algorithm::NewReno
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
        if !a.cwnd_limited {
            return;
        }
        let mss = a.mss.max(1);
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 equation (2) with RFC 3465 L = 2*SMSS.
            self.cwnd = self.cwnd.saturating_add(a.acked.min(2 * mss));
        } else {
            // RFC 5681 §3.1 equation (3) via byte counting: one SMSS per cwnd acked.
            self.bytes_acked = self.bytes_acked.saturating_add(a.acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
    }

    fn on_congestion_event(&mut self, flight_size: u32, mss: u32, _now: Instant) {
        // RFC 5681 §3.2 equation (4), with FlightSize bounded by cwnd: data sent by limited
        // transmit "MUST NOT be included" (§3.2 step 2, RFC 3042), and SACKed data held by
        // the receiver beyond cwnd is no measure of the path (Linux `tcp_reno_ssthresh`
        // uses cwnd alone). Unbounded, a long SACK scoreboard raised ssthresh above cwnd.
        self.ssthresh = (flight_size.min(self.cwnd) / 2).max(2 * mss);
        self.bytes_acked = 0;
    }

    fn on_recovery_exit(&mut self, _mss: u32, _now: Instant) {
        // RFC 6582 §3.2 step 3 / RFC 6937 §3.1: deflate to ssthresh.
        self.cwnd = self.ssthresh;
    }

    fn on_timeout(&mut self, flight_size: u32, mss: u32, _now: Instant) {
        // RFC 5681 §3.1 equation (4), FlightSize bounded by cwnd as above.
        self.ssthresh = (flight_size.min(self.cwnd) / 2).max(2 * mss);
        // RFC 5681 §3.1: LW = 1 full-sized segment.
        self.cwnd = mss;
        self.bytes_acked = 0;
    }

    fn on_idle_restart(&mut self, mss: u32, initial_cwnd: u32, _now: Instant) {
        // RFC 5681 §4.1: RW = min(IW, cwnd).
        self.cwnd = self.cwnd.min(initial_cwnd).max(mss);
    }

    fn undo(&mut self, prior_cwnd: u32, prior_ssthresh: u32) {
        // Linux `tcp_reno_undo_cwnd`: never shrink on undo.
        self.cwnd = self.cwnd.max(prior_cwnd);
        self.ssthresh = self.ssthresh.max(prior_ssthresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::seq::SeqNum;

    fn ack(acked: u32, mss: u32, limited: bool) -> AckSample {
        AckSample { acked, mss, cwnd_limited: limited, now: Instant::ZERO, rtt: None, ack: SeqNum(0), snd_nxt: SeqNum(0) }
    }

    #[test]
    fn slow_start_then_avoidance_then_loss() {
        let mss = 1000;
        let mut cc = NewReno::new(10 * mss);
        cc.on_ack(&ack(mss, mss, true));
        assert_eq!(cc.cwnd(), 11 * mss, "slow start grows by acked bytes");
        cc.on_ack(&ack(mss, mss, false));
        assert_eq!(cc.cwnd(), 11 * mss, "no growth when not cwnd-limited (RFC 7661)");
        // FlightSize counts SACKed data the receiver holds: bounded by cwnd (11 MSS).
        cc.on_congestion_event(40 * mss, mss, Instant::ZERO);
        assert_eq!(cc.ssthresh(), 11 * mss / 2);
        // An application-limited flight below cwnd is what counts then.
        cc.on_congestion_event(20 * mss / 2, mss, Instant::ZERO);
        assert_eq!(cc.ssthresh(), 5 * mss);
        cc.set_cwnd(20 * mss);
        cc.on_congestion_event(20 * mss, mss, Instant::ZERO);
        assert_eq!(cc.ssthresh(), 10 * mss);
        cc.on_recovery_exit(mss, Instant::ZERO);
        assert_eq!(cc.cwnd(), 10 * mss);
        // Congestion avoidance: one MSS per window of acked bytes.
        for _ in 0..9 {
            cc.on_ack(&ack(mss, mss, true));
        }
        assert_eq!(cc.cwnd(), 10 * mss);
        cc.on_ack(&ack(mss, mss, true));
        assert_eq!(cc.cwnd(), 11 * mss);
        cc.on_timeout(4 * mss, mss, Instant::ZERO);
        assert_eq!(cc.cwnd(), mss, "loss window after RTO");
        assert_eq!(cc.ssthresh(), 2 * mss, "ssthresh floor is 2*SMSS");
        cc.undo(11 * mss, 10 * mss);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (11 * mss, 10 * mss), "undo restores the prior window");
    }
}
