//! Per-connection timers and the RFC 6298 round-trip estimator.
//!
//! Timers are plain deadlines; the engine files `next_deadline()` into its timer wheel and
//! calls `handle_timeout(now)` when it is due. Nothing here reads a clock.

use super::{CloseReason, Connection, RstSpec, State};
use crate::tcp::payload::Payload;
use crate::tcp::shared::Shared;
use crate::time::{Duration, Instant};

/// RFC 6298 SRTT / RTTVAR / RTO with exponential backoff, in integer nanoseconds scaled
/// as Linux's `tcp_rtt_estimator` keeps them (`srtt_us << 3`, `mdev_us` = 4 RTTVAR): the
/// 1/8 and 1/4 gains are shifts, and K*RTTVAR (K = 4) is the scaled variance itself.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    /// 8 SRTT in nanoseconds; 0 before the first sample (samples are at least 1 µs).
    srtt8: u64,
    /// 4 RTTVAR in nanoseconds.
    rttvar4: u64,
    /// The RTO without backoff, in nanoseconds.
    rto: u64,
    min_rto: u64,
    max_rto: u64,
    /// Consecutive backoffs (RFC 6298 §5.5).
    backoff: u32,
    /// Smallest sample seen (RACK's `min_RTT`, CUBIC's `delay_min`).
    min_rtt: Option<Duration>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl RttEstimator {
    /// A fresh estimator: RTO = `initial` (RFC 6298 §2.1).
    pub fn new(initial: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt8: 0,
            rttvar4: 0,
            rto: nanos(initial),
            min_rto: nanos(min_rto),
            max_rto: nanos(max_rto),
            backoff: 0,
            min_rtt: None,
        }
    }

    /// Feeds one RTT measurement (RFC 6298 §2.2, §2.3). The caller applies Karn's rule
    /// (no samples from retransmitted segments, unless timestamps disambiguate them).
    pub fn sample(&mut self, rtt: Duration) {
        let rtt = rtt.max(Duration::from_micros(1));
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        let r = nanos(rtt);
        if self.srtt8 == 0 {
            // RFC 6298 §2.2: SRTT <- R, RTTVAR <- R/2.
            self.srtt8 = r.saturating_mul(8);
            self.rttvar4 = r.saturating_mul(2);
        } else {
            // RFC 6298 §2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|, then
            // SRTT <- 7/8 SRTT + 1/8 R' (Linux `tcp_rtt_estimator`: the error `m` is added
            // to the scaled SRTT, |m| less a quarter of the scaled variance to it; Linux's
            // damping of falling samples and its per-round `mdev_max_us` are not taken).
            let srtt = self.srtt8 >> 3;
            let delta = if r >= srtt {
                self.srtt8 = self.srtt8.saturating_add(r - srtt);
                r - srtt
            } else {
                self.srtt8 -= srtt - r;
                srtt - r
            };
            self.rttvar4 = (self.rttvar4 - (self.rttvar4 >> 2)).saturating_add(delta);
        }
        // RTO <- SRTT + max(K*RTTVAR, min RTO), K = 4, at most the maximum (RFC 6298 §2.4
        // with Linux's floor). RFC 6298 §2.4 clamps the sum to the minimum instead; Linux
        // floors the variance term (`tcp_rtt_estimator` keeps `rttvar_us` >=
        // `tcp_rto_min_us`, `__tcp_set_rto` adds SRTT to it), so the RTO stays above the
        // minimum by the RTT itself. That matters once RTT samples include delayed ACKs: a
        // kernel receiver may hold an ACK for up to 200 ms (`TCP_DELACK_MAX`), and
        // max(200 ms, SRTT + 4 RTTVAR) fires before it. Measured with 5 000 keep-alive
        // clients on AF_XDP (deploy/bench/run.sh, workload conc5000): 4 181 RTOs in 8 s,
        // 2 780 of them undone as spurious; 599 (558) with the floor.
        self.rto = (self.srtt8 >> 3).saturating_add(self.rttvar4.max(self.min_rto)).min(self.max_rto);
        self.backoff = 0;
    }

    /// Feeds the minimum filter only: the RTT of a never-retransmitted segment measured
    /// from its transmission time at full clock precision (Linux `tcp_update_rtt_min` from
    /// `ca_rtt_us`). Timestamp samples have a 1 ms granularity (RFC 7323 §4.1), so on
    /// sub-millisecond paths they overestimate the minimum, which RACK compares
    /// retransmissions against (RFC 8985 §6.2 step 2).
    #[inline]
    pub fn observe_min(&mut self, rtt: Duration) {
        let rtt = rtt.max(Duration::from_micros(1));
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
    }

    /// The current RTO including backoff.
    pub fn rto(&self) -> Duration {
        Duration::from_nanos(self.rto_nanos())
    }

    /// [`RttEstimator::rto`] in nanoseconds (per-segment callers skip `Duration`).
    #[inline]
    pub fn rto_nanos(&self) -> u64 {
        let factor = 1u64 << self.backoff.min(16);
        self.rto.saturating_mul(factor).min(self.max_rto)
    }

    /// When an RTO armed at `now` fires: `now` + [`RttEstimator::rto`], in integer
    /// nanoseconds (the timer is re-armed per segment sent and per ACK; a `Duration`
    /// there costs a division and a multiplication each way).
    #[inline]
    pub fn rto_deadline(&self, now: Instant) -> Instant {
        Instant::from_nanos(now.as_nanos().saturating_add(self.rto_nanos()))
    }

    /// [`RttEstimator::srtt`] in nanoseconds.
    #[inline]
    pub fn srtt_nanos(&self) -> Option<u64> {
        (self.srtt8 != 0).then_some(self.srtt8 >> 3)
    }

    /// The RTO without backoff.
    pub fn base_rto(&self) -> Duration {
        Duration::from_nanos(self.rto)
    }

    /// Doubles the RTO (RFC 6298 §5.5).
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// Clears backoff after an acknowledgement of new data (RFC 6298 §5.7 keeps the
    /// doubled value until a new sample; we follow Linux and reset on forward progress).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// Current backoff exponent.
    pub fn backoff(&self) -> u32 {
        self.backoff
    }

    /// Smoothed RTT, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        (self.srtt8 != 0).then(|| Duration::from_nanos(self.srtt8 >> 3))
    }

    /// RTT variation.
    pub fn rttvar(&self) -> Duration {
        Duration::from_nanos(self.rttvar4 >> 2)
    }

    /// Smallest RTT measured.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }
}

/// The connection's deadlines; `None` means the timer is stopped.
#[derive(Debug, Clone, Default)]
pub struct Timers {
    /// Retransmission of SYN, SYN-ACK, data or FIN (RFC 6298).
    pub rtx: Option<Instant>,
    /// Delayed ACK (RFC 9293 §3.8.6.3).
    pub delack: Option<Instant>,
    /// Zero-window probe (RFC 9293 §3.8.6.1).
    pub persist: Option<Instant>,
    /// Next keepalive action (RFC 9293 §3.8.4).
    pub keepalive: Option<Instant>,
    /// FIN-WAIT-2 for orphaned connections (Linux `tcp_fin_timeout`).
    pub fin_wait2: Option<Instant>,
    /// TIME-WAIT end (2*MSL).
    pub time_wait: Option<Instant>,
    /// Overall active-open deadline.
    pub connect: Option<Instant>,
    /// Tail loss probe timeout (RFC 8985 §7.2).
    pub tlp: Option<Instant>,
    /// RACK reordering timer (RFC 8985 §6.3).
    pub reo: Option<Instant>,
}

impl Timers {
    /// The earliest armed deadline. The engine asks after every operation on the
    /// connection (to refile its wheel entry when it changed), so this is a chain of
    /// branch-free minimums over the fields in place: a stopped timer counts as the end of
    /// time, and only when nothing earlier is armed is `is_some` asked (the iterator form,
    /// `flatten().min()` over a copied array, cost about 100 instructions a call).
    #[inline]
    pub fn next(&self) -> Option<Instant> {
        #[inline(always)]
        fn at(t: Option<Instant>) -> u64 {
            t.map_or(u64::MAX, Instant::as_nanos)
        }
        let min = at(self.rtx)
            .min(at(self.delack))
            .min(at(self.persist))
            .min(at(self.keepalive))
            .min(at(self.fin_wait2))
            .min(at(self.time_wait))
            .min(at(self.connect))
            .min(at(self.tlp))
            .min(at(self.reo));
        if min != u64::MAX {
            return Some(Instant::from_nanos(min));
        }
        let armed = self.rtx.is_some()
            || self.delack.is_some()
            || self.persist.is_some()
            || self.keepalive.is_some()
            || self.fin_wait2.is_some()
            || self.time_wait.is_some()
            || self.connect.is_some()
            || self.tlp.is_some()
            || self.reo.is_some();
        armed.then_some(Instant::from_nanos(u64::MAX))
    }

    /// Stops every timer.
    pub fn clear(&mut self) {
        *self = Timers::default();
    }
}

/// Whether an optional deadline has passed.
pub fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}

impl<P: Payload> Connection<P> {
    /// Runs every timer that is due at `now` (`tcp_write_timer`, `tcp_delack_timer`,
    /// `tcp_keepalive_timer`, TIME-WAIT expiry). Segments it makes due go out on the next
    /// [`poll_transmit`](Connection::poll_transmit).
    pub fn handle_timeout(&mut self, shared: &mut Shared, now: Instant) {
        if due(self.timers.connect, now) {
            self.timers.connect = None;
            if self.state == State::SynSent || self.state == State::SynReceived {
                self.close_now(shared, CloseReason::Timeout);
                return;
            }
        }
        // Linux keeps the loss probe and the RTO in one timer (`icsk_retransmit_timer`): a
        // tail probe capped at the RTO's time (`tcp_schedule_loss_probe`) fires instead of
        // it, and the RTO is re-armed behind the probe (`tcp_send_loss_probe` ->
        // `tcp_rearm_rto`).
        if self.timers.tlp.is_some_and(|t| t <= now && self.timers.rtx.is_none_or(|r| t <= r)) {
            self.on_tlp_timeout();
            if self.pending.tlp {
                self.timers.rtx = Some(self.rtt.rto_deadline(now));
            }
        }
        if due(self.timers.rtx, now) {
            self.on_rto(shared, now);
        }
        if due(self.timers.reo, now) {
            self.on_reo_timeout(shared, now);
        }
        if due(self.timers.tlp, now) {
            self.on_tlp_timeout();
        }
        if due(self.timers.delack, now) {
            self.timers.delack = None;
            if self.state.is_synchronized() {
                self.rcv.delack.on_timeout(self.ack_limits());
                self.pending.ack = true;
                shared.counters.delayed_acks += 1;
            }
        }
        if due(self.timers.persist, now) {
            self.on_persist(shared, now);
            if self.state == State::Closed {
                return;
            }
        }
        if due(self.timers.keepalive, now) {
            self.on_keepalive(shared, now);
        }
        if due(self.timers.fin_wait2, now) {
            self.timers.fin_wait2 = None;
            if self.state == State::FinWait2 {
                // Orphaned and the peer never closed: give up with a reset (Linux
                // `tcp_fin_timeout` expiry without TIME-WAIT room).
                let (seq, ack) = (self.snd.nxt, self.rcv.nxt);
                self.queue_rst(RstSpec { seq, ack: Some(ack) });
                self.close_now(shared, CloseReason::Timeout);
                return;
            }
        }
        if due(self.timers.time_wait, now) {
            self.timers.time_wait = None;
            if self.state == State::TimeWait {
                self.close_now(shared, CloseReason::Normal);
            }
        }
    }

    /// RFC 9293 §3.8.4 / RFC 1122 §4.2.3.6 keepalive (`tcp_keepalive_timer`).
    fn on_keepalive(&mut self, shared: &mut Shared, now: Instant) {
        self.timers.keepalive = None;
        let Some(ka) = self.keepalive else { return };
        if !self.state.is_synchronized() || self.state == State::TimeWait {
            return;
        }
        if self.snd.outstanding() > 0 || self.snd.has_unsent() {
            // Data in flight: the retransmission timer watches the peer.
            self.keepalive_sent = 0;
            self.timers.keepalive = Some(now + ka.idle);
            return;
        }
        if self.keepalive_sent >= ka.probes {
            shared.counters.abort_on_timeout += 1;
            if self.state.counts_as_established() {
                shared.counters.estab_resets += 1;
            }
            let (seq, ack) = (self.snd.nxt, self.rcv.nxt);
            self.queue_rst(RstSpec { seq, ack: Some(ack) });
            self.close_now(shared, CloseReason::Timeout);
            return;
        }
        self.keepalive_sent += 1;
        self.pending.keepalive_probe = true;
        self.timers.keepalive = Some(now + ka.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6298_first_and_later_samples() {
        let mut r = RttEstimator::new(Duration::from_secs(1), Duration::from_millis(200), Duration::from_secs(120));
        assert_eq!(r.rto(), Duration::from_secs(1));
        r.sample(Duration::from_millis(100));
        assert_eq!(r.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(r.rttvar(), Duration::from_millis(50));
        // 100 + max(4*50, 200) = 300 ms.
        assert_eq!(r.rto(), Duration::from_millis(300));
        r.sample(Duration::from_millis(100));
        // RTTVAR = 3/4*50 + 0 = 37.5; SRTT = 100; RTO = 100 + max(150, 200) = 300 ms
        // (RFC 6298's clamp of the sum would give 250 ms).
        assert_eq!(r.rto(), Duration::from_millis(300));
        r.back_off();
        r.back_off();
        assert_eq!(r.rto(), Duration::from_millis(1200));
        for _ in 0..40 {
            r.back_off();
        }
        assert_eq!(r.rto(), Duration::from_secs(120), "backoff is capped at max RTO");
        let mut fresh = RttEstimator::new(Duration::from_secs(1), Duration::from_millis(200), Duration::from_secs(120));
        fresh.sample(Duration::from_micros(10));
        assert_eq!(fresh.rto(), Duration::from_micros(200_010), "min RTO floors the variance term");
    }

    #[test]
    fn the_rto_stays_an_srtt_above_the_minimum_like_linux() {
        // A steady 150 ms RTT (delayed ACKs included): RTTVAR decays towards 0. RFC 6298's
        // clamp would settle at max(200, 150 + 4 RTTVAR) -> 200 ms, under the 200 ms a
        // Linux receiver may delay an ACK on top of the RTT; Linux (`__tcp_set_rto`)
        // keeps SRTT + 200 ms.
        let mut r = RttEstimator::new(Duration::from_secs(1), Duration::from_millis(200), Duration::from_secs(120));
        for _ in 0..100 {
            r.sample(Duration::from_millis(150));
        }
        assert_eq!(r.srtt(), Some(Duration::from_millis(150)));
        assert!(r.rto() >= Duration::from_millis(350), "RTO {:?}", r.rto());
        assert!(r.rto() < Duration::from_millis(351), "RTO {:?}", r.rto());
    }

    /// The estimator as it was in `Duration` arithmetic (RFC 6298 §2.2-2.4 with the
    /// variance floored at the minimum RTO), for the comparison below.
    struct DurationEstimator {
        srtt: Option<Duration>,
        rttvar: Duration,
        rto: Duration,
    }

    impl DurationEstimator {
        fn sample(&mut self, rtt: Duration, min_rto: Duration, max_rto: Duration) {
            let rtt = rtt.max(Duration::from_micros(1));
            match self.srtt {
                None => {
                    self.srtt = Some(rtt);
                    self.rttvar = rtt / 2;
                }
                Some(srtt) => {
                    let delta = srtt.abs_diff(rtt);
                    self.rttvar = (self.rttvar * 3 + delta) / 4;
                    self.srtt = Some((srtt * 7 + rtt) / 8);
                }
            }
            let srtt = self.srtt.unwrap_or(rtt);
            self.rto = (srtt + (self.rttvar * 4).max(min_rto)).min(max_rto);
        }
    }

    #[test]
    fn integer_estimator_matches_the_duration_one_within_rounding() {
        let (min_rto, max_rto) = (Duration::from_millis(200), Duration::from_secs(120));
        // Sequences of samples from 1 µs to ~2 s: steady, jittery, falling, rising.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut worst = (0u64, 0u64, 0u64);
        for round in 0..200 {
            let mut int = RttEstimator::new(Duration::from_secs(1), min_rto, max_rto);
            let mut reference = DurationEstimator { srtt: None, rttvar: Duration::ZERO, rto: Duration::from_secs(1) };
            let base = (1 + next() % 2_000_000_000) >> (round % 20);
            for i in 0..500u64 {
                let jitter = next() % (base / 2 + 1);
                let r = match round % 4 {
                    0 => base,
                    1 => base / 2 + jitter,
                    2 => (base / (i + 1)).max(1),
                    _ => base.saturating_add(i * 1_000 + jitter),
                };
                let r = Duration::from_nanos(r);
                int.sample(r);
                reference.sample(r, min_rto, max_rto);
                let d = |a: Duration, b: Duration| u64::try_from(a.abs_diff(b).as_nanos()).unwrap_or(u64::MAX);
                let srtt = d(int.srtt().unwrap_or_default(), reference.srtt.unwrap_or_default());
                let var = d(int.rttvar(), reference.rttvar);
                let rto = d(int.rto(), reference.rto);
                worst = (worst.0.max(srtt), worst.1.max(var), worst.2.max(rto));
            }
        }
        // The Duration form floors SRTT and RTTVAR to a nanosecond at every step; the
        // scaled form keeps three and two more bits: a few nanoseconds apart at most.
        assert!(worst.0 <= 8 && worst.1 <= 8 && worst.2 <= 40, "srtt, rttvar, rto differ by up to {worst:?} ns");
    }

    #[test]
    fn timers_next_is_the_earliest() {
        let mut t = Timers::default();
        assert_eq!(t.next(), None);
        t.rtx = Some(Instant::from_millis(30));
        t.delack = Some(Instant::from_millis(10));
        assert_eq!(t.next(), Some(Instant::from_millis(10)));
        assert!(due(t.delack, Instant::from_millis(10)));
        assert!(!due(t.rtx, Instant::from_millis(10)));
        t.reo = Some(Instant::from_millis(5));
        t.time_wait = Some(Instant::from_millis(7));
        assert_eq!(t.next(), Some(Instant::from_millis(5)));
        t.clear();
        assert_eq!(t.next(), None);
        t.keepalive = Some(Instant::from_nanos(u64::MAX));
        assert_eq!(t.next(), Some(Instant::from_nanos(u64::MAX)), "armed at the end of time is armed");
        t.connect = Some(Instant::ZERO);
        assert_eq!(t.next(), Some(Instant::ZERO));
    }
}
