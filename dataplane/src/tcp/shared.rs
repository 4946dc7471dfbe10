//! State shared by every connection of one engine: counters and the challenge-ACK budget.

use super::counters::Counters;
use crate::time::{Duration, Instant};

/// Engine-wide state that connections update while they process segments.
#[derive(Debug, Clone)]
pub struct Shared {
    /// `netstat -s` style counters.
    pub counters: Counters,
    /// Buffers are low (see `Engine::set_memory_pressure`): receive windows stop opening
    /// beyond [`PRESSURE_RCVBUF_MSS`] segments and each connection is held to its fair share.
    pub memory_pressure: bool,
    /// Buffers are nearly gone (the lcore's reserve, see `Engine::set_rx_shedding`):
    /// listeners refuse new connections, connections take only received text that
    /// advances RCV.NXT, and drop their out-of-order data.
    pub rx_shed: bool,
    /// Under memory pressure, the buffer bytes (`truesize`) a connection may hold and still
    /// queue more: the memory limit over all connections (see
    /// `Engine::set_memory_account`). `usize::MAX` until one is set.
    pub pressure_share: usize,
    /// Buffer bytes (`truesize`) the connections' receive, out-of-order and send queues
    /// pin together (Linux `tcp_memory_allocated`, /proc/net/sockstat "mem"), as of each
    /// connection's last operation (see `Engine::recharge`).
    pub allocated: usize,
    /// What the connections of the other engines drawing on the same buffers hold (the
    /// other lcores, as they last reported it; see `Engine::set_memory_account`).
    pub foreign: usize,
    /// The buffer bytes all connections together may hold (Linux `tcp_mem[2]`): at or
    /// beyond it every engine sheds as at the pool's reserve ([`Shared::shedding`]).
    /// `usize::MAX` until one is set.
    pub hard_limit: usize,
    challenge: ChallengeAckLimiter,
}

/// Under memory pressure a connection's receive buffer counts as this many MSS at most.
pub const PRESSURE_RCVBUF_MSS: u32 = 2;

impl Shared {
    /// Linux `tcp_check_oom` for an orphan: more orphans than `max` (each counted
    /// `1 << shift` times, as `tcp_too_many_orphans` does for a connection that has been
    /// quiet long) or buffers low.
    pub fn orphans_out_of_resources(&self, max: u32, shift: u32) -> bool {
        self.memory_pressure || self.counters.orphans.checked_shl(shift).unwrap_or(u64::MAX) > u64::from(max)
    }
}

impl Shared {
    /// Whether the connections together hold the hard limit or more (Linux
    /// `__sk_mem_raise_allocated` over `tcp_mem[2]`).
    pub fn over_hard_limit(&self) -> bool {
        self.allocated.saturating_add(self.foreign) >= self.hard_limit
    }

    /// Whether buffers are nearly gone: the pool's reserve is reached ([`Shared::rx_shed`])
    /// or the connections hold the hard limit. Connections then take only received text
    /// that advances RCV.NXT into an empty receive queue, drop their out-of-order data,
    /// and queue no more than the minimum for sending.
    pub fn shedding(&self) -> bool {
        self.rx_shed || self.over_hard_limit()
    }

    /// Fresh counters and a challenge-ACK budget of `challenge_ack_limit` per second.
    pub fn new(challenge_ack_limit: u32) -> Self {
        Shared {
            counters: Counters::default(),
            memory_pressure: false,
            rx_shed: false,
            pressure_share: usize::MAX,
            allocated: 0,
            foreign: 0,
            hard_limit: usize::MAX,
            challenge: ChallengeAckLimiter::new(challenge_ack_limit),
        }
    }

    /// Takes one challenge ACK from the per-second budget (RFC 5961 §7); counts the ACK as
    /// sent or as suppressed.
    pub fn allow_challenge_ack(&mut self, now: Instant) -> bool {
        if self.challenge.allow(now) {
            self.counters.challenge_acks += 1;
            true
        } else {
            self.counters.challenge_acks_limited += 1;
            false
        }
    }
}

/// A fixed one-second-window budget (Linux `tcp_challenge_ack_limit`).
#[derive(Debug, Clone)]
struct ChallengeAckLimiter {
    limit: u32,
    window_start: Option<Instant>,
    used: u32,
}

impl ChallengeAckLimiter {
    fn new(limit: u32) -> Self {
        ChallengeAckLimiter { limit, window_start: None, used: 0 }
    }

    fn allow(&mut self, now: Instant) -> bool {
        let fresh = match self.window_start {
            None => true,
            Some(start) => now.saturating_duration_since(start) >= Duration::from_secs(1),
        };
        if fresh {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used < self.limit {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_acks_are_limited_per_second() {
        let mut s = Shared::new(2);
        let t = Instant::from_millis(5);
        assert!(s.allow_challenge_ack(t));
        assert!(s.allow_challenge_ack(t));
        assert!(!s.allow_challenge_ack(t + Duration::from_millis(999)));
        assert!(s.allow_challenge_ack(t + Duration::from_secs(1)));
        assert_eq!(s.counters.challenge_acks, 3);
        assert_eq!(s.counters.challenge_acks_limited, 1);
    }
}
