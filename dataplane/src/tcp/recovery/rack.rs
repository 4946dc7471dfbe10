//! RACK (RFC 8985 §6): time-based loss detection. The sender remembers the transmission
//! time of the most recently sent segment that has been delivered (`RACK.xmit_ts`,
//! `RACK.end_seq`) and the RTT measured from it; a segment sent before it that is still
//! undelivered after `RACK.rtt + RACK.reo_wnd` is lost. The reordering window adapts to
//! observed reordering and D-SACKs (§6.2 step 4).

use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant};

/// D-SACK-driven growth lasts this many recoveries (RFC 8985 §6.2 step 4: 16).
const REO_WND_PERSIST: u32 = 16;

/// RACK state of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rack {
    /// Transmission time of the most recently sent delivered segment.
    pub xmit_ts: Option<Instant>,
    /// Its end sequence number (ties on `xmit_ts` are broken by it).
    pub end_seq: SeqNum,
    /// RTT measured from that segment.
    pub rtt: Duration,
    /// Highest end sequence number delivered (`RACK.fack`).
    pub fack: SeqNum,
    /// Reordering was observed on this connection.
    pub reordering_seen: bool,
    /// Multiplier of `min_RTT / 4` (grows with D-SACKs).
    pub reo_wnd_mult: u32,
    /// Recoveries left before the multiplier resets.
    pub reo_wnd_persist: u32,
    /// SND.NXT when the multiplier last grew: one growth per round trip.
    pub dsack_round: Option<SeqNum>,
}

/// RFC 8985 §6.2 `RACK_sent_after`: whether (t1, seq1) was sent after (t2, seq2).
pub fn sent_after(t1: Instant, seq1: SeqNum, t2: Instant, seq2: SeqNum) -> bool {
    t1 > t2 || (t1 == t2 && seq1.gt(seq2))
}

impl Rack {
    /// Fresh state; `iss` seeds the sequence fields.
    pub fn new(iss: SeqNum) -> Self {
        Rack {
            xmit_ts: None,
            end_seq: iss,
            rtt: Duration::ZERO,
            fack: iss,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
        }
    }

    /// §6.2 step 2 (`RACK_update`): a segment sent at `xmit_ts` ending at `end_seq` was
    /// delivered (acknowledged or SACKed) at `now`. A retransmitted segment whose RTT is
    /// below `min_rtt` was probably delivered by its original transmission and is ignored
    /// (or, with timestamps, when the echo predates the retransmission: `ts_ambiguous`).
    pub fn on_delivered(&mut self, xmit_ts: Instant, end_seq: SeqNum, retransmitted: bool, ts_ambiguous: bool, min_rtt: Option<Duration>, now: Instant) {
        let rtt = now.saturating_duration_since(xmit_ts);
        if retransmitted && (ts_ambiguous || min_rtt.is_some_and(|m| rtt < m)) {
            return;
        }
        self.rtt = rtt;
        match self.xmit_ts {
            Some(t) if !sent_after(xmit_ts, end_seq, t, self.end_seq) => {}
            _ => {
                self.xmit_ts = Some(xmit_ts);
                self.end_seq = end_seq;
            }
        }
    }

    /// §6.2 step 3 (`RACK_detect_reordering`): a never-retransmitted segment below the
    /// highest delivered one arrived late: that is reordering. Returns whether it was.
    pub fn detect_reordering(&mut self, end_seq: SeqNum, retransmitted: bool) -> bool {
        if end_seq.gt(self.fack) {
            self.fack = end_seq;
            false
        } else if end_seq.lt(self.fack) && !retransmitted {
            self.reordering_seen = true;
            true
        } else {
            false
        }
    }

    /// §6.2 step 4: a D-SACK arrived while SND.NXT was `snd_nxt`; grow the window at most
    /// once per round trip (`snd_una` beyond the last growth's SND.NXT).
    pub fn on_dsack(&mut self, snd_una: SeqNum, snd_nxt: SeqNum) {
        if self.dsack_round.is_none_or(|r| snd_una.ge(r)) {
            self.dsack_round = Some(snd_nxt);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1).min(64);
            self.reo_wnd_persist = REO_WND_PERSIST;
        }
    }

    /// A recovery episode ended: the D-SACK growth decays after `REO_WND_PERSIST` of them.
    pub fn on_recovery_end(&mut self) {
        if self.reo_wnd_persist > 0 {
            self.reo_wnd_persist -= 1;
            if self.reo_wnd_persist == 0 {
                self.reo_wnd_mult = 1;
            }
        }
    }

    /// §6.2 step 4 (`RACK_update_reo_wnd`): the reordering window. Zero while no
    /// reordering was seen and either recovery is under way or `DupThresh` segments are
    /// SACKed (RACK then behaves like the RFC 6675 rule); else
    /// `min(reo_wnd_mult * min_RTT / 4, SRTT)`.
    pub fn reo_wnd(&self, in_recovery: bool, sacked_segments: u32, dupthresh: u32, min_rtt: Option<Duration>, srtt: Option<Duration>) -> Duration {
        if !self.reordering_seen && (in_recovery || sacked_segments >= dupthresh) {
            return Duration::ZERO;
        }
        let base = min_rtt.unwrap_or_default() / 4 * self.reo_wnd_mult;
        match srtt {
            Some(s) => base.min(s),
            None => base,
        }
    }

    /// §6.2 step 5 for one segment: `Some(remaining)` when a segment sent at `xmit_ts`
    /// ending at `end_seq` was sent before the RACK segment; `remaining` is zero when it is
    /// lost now, else the time until it will be (the reordering timer).
    pub fn check(&self, xmit_ts: Instant, end_seq: SeqNum, reo_wnd: Duration, now: Instant) -> Option<Duration> {
        let rack_ts = self.xmit_ts?;
        if !sent_after(rack_ts, self.end_seq, xmit_ts, end_seq) {
            return None;
        }
        let deadline = xmit_ts + self.rtt + reo_wnd;
        Some(deadline.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn segments_sent_before_the_delivered_one_are_lost_after_rtt_plus_reo_wnd() {
        let mut r = Rack::new(SeqNum(0));
        // Segment 2 (sent at 10 ms) SACKed at 60 ms: RACK.rtt = 50 ms.
        r.on_delivered(ms(10), SeqNum(2000), false, false, None, ms(60));
        assert_eq!(r.rtt, Duration::from_millis(50));
        // Segment 1 sent at 10 ms, lower sequence: sent before it.
        let wnd = Duration::from_millis(5);
        assert_eq!(r.check(ms(10), SeqNum(1000), wnd, ms(60)), Some(Duration::from_millis(5)));
        assert_eq!(r.check(ms(10), SeqNum(1000), wnd, ms(65)), Some(Duration::ZERO));
        // A segment sent later is not judged by it.
        assert_eq!(r.check(ms(20), SeqNum(3000), wnd, ms(65)), None);
    }

    #[test]
    fn reordering_window_is_quarter_min_rtt_until_recovery() {
        let mut r = Rack::new(SeqNum(0));
        let min = Some(Duration::from_millis(40));
        assert_eq!(r.reo_wnd(false, 1, 3, min, Some(Duration::from_millis(50))), Duration::from_millis(10));
        assert_eq!(r.reo_wnd(true, 1, 3, min, None), Duration::ZERO);
        assert_eq!(r.reo_wnd(false, 3, 3, min, None), Duration::ZERO);
        assert!(!r.detect_reordering(SeqNum(3000), false));
        assert!(r.detect_reordering(SeqNum(2000), false), "late original below fack is reordering");
        assert_eq!(r.reo_wnd(true, 5, 3, min, None), Duration::from_millis(10));
        r.on_dsack(SeqNum(0), SeqNum(5000));
        assert_eq!(r.reo_wnd(true, 5, 3, min, None), Duration::from_millis(20));
        // At most once per round trip.
        r.on_dsack(SeqNum(100), SeqNum(6000));
        assert_eq!(r.reo_wnd_mult, 2);
    }

    #[test]
    fn retransmission_acked_faster_than_min_rtt_is_ignored() {
        let mut r = Rack::new(SeqNum(0));
        r.on_delivered(ms(100), SeqNum(1000), true, false, Some(Duration::from_millis(30)), ms(110));
        assert_eq!(r.xmit_ts, None);
    }
}
