//! Proportional Rate Reduction (RFC 6937): during loss recovery, how many segments may be
//! sent for the data the peer reports delivered, so that the window comes down to
//! `ssthresh` smoothly (proportionally while the pipe is above it, PRR-SSRB slow start
//! back up to it when losses drained it below). Counted in segments, as Linux's
//! `tcp_cwnd_reduction` does.

/// PRR state of one recovery episode (RFC 6937 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prr {
    /// `RecoverFS`: the pipe when recovery began.
    pub recover_fs: u32,
    /// `prr_delivered`: segments delivered to the receiver since recovery began.
    pub delivered: u32,
    /// `prr_out`: segments sent since recovery began.
    pub out: u32,
}

impl Prr {
    /// Starts an episode with `recover_fs` segments in the pipe.
    pub fn new(recover_fs: u32) -> Self {
        Prr { recover_fs: recover_fs.max(1), delivered: 0, out: 0 }
    }

    /// One ACK reported `delivered` newly delivered segments (cumulatively acknowledged or
    /// newly SACKed); `pipe` is what is in flight now. Returns `sndcnt`, the segments that
    /// may be sent now: the connection sets `cwnd = pipe + sndcnt`.
    pub fn on_ack(&mut self, delivered: u32, pipe: u32, ssthresh: u32) -> u32 {
        self.delivered = self.delivered.saturating_add(delivered);
        let sndcnt = if pipe > ssthresh {
            // Proportional part: sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            let num = u64::from(self.delivered) * u64::from(ssthresh);
            let target = num.div_ceil(u64::from(self.recover_fs));
            u32::try_from(target.saturating_sub(u64::from(self.out))).unwrap_or(u32::MAX)
        } else {
            // PRR-SSRB: limit = MAX(prr_delivered - prr_out, DeliveredData) + MSS.
            let limit = self.delivered.saturating_sub(self.out).max(delivered).saturating_add(1);
            ssthresh.saturating_sub(pipe).min(limit)
        };
        // The fast retransmission itself always goes out (RFC 6937 §3.1 / Linux: when
        // nothing was sent yet in this episode).
        if self.out == 0 { sndcnt.max(1) } else { sndcnt }
    }

    /// `n` segments were sent during recovery.
    pub fn on_sent(&mut self, n: u32) {
        self.out = self.out.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_reduction_sends_ssthresh_over_recover_fs() {
        // RFC 6937 appendix: 20 in flight, ssthresh 10 (β = 1/2): one segment per two
        // delivered.
        let mut p = Prr::new(20);
        let mut sent = 0;
        for i in 0..10u32 {
            let pipe = 19 - i + sent;
            let n = p.on_ack(1, pipe, 10);
            p.on_sent(n);
            sent += n;
        }
        assert_eq!(sent, 5, "half of the delivered data is sent");
        assert_eq!(p.out, 5);
    }

    #[test]
    fn first_ack_always_allows_the_retransmission() {
        let mut p = Prr::new(20);
        assert_eq!(p.on_ack(0, 20, 10), 1);
    }

    #[test]
    fn ssrb_grows_back_to_ssthresh_when_pipe_is_below() {
        let mut p = Prr::new(20);
        p.on_sent(1);
        // Heavy loss: pipe 4 under ssthresh 10; 3 delivered allows min(6, max(3-1, 3) + 1) = 4.
        assert_eq!(p.on_ack(3, 4, 10), 4);
    }
}
