//! When an interface reports its multicast groups (RFC 3810 §6, as Linux's `mcast.c` does
//! for a host): unsolicited reports when the port comes up (the robustness variable's
//! count, one interval apart: Linux's `mld_ifc_start_work` with `mld_qrv` 2 and
//! `unsolicited_report_interval` 1 s), and one answer per query, delayed by a share of the
//! query's maximum response delay that is fixed per host (RFC 3810 §6.2 wants it random:
//! what matters is that hosts answer at different times, and the share comes from the
//! MAC). A pending answer to a general query covers group queries before it.
//!
//! Sans-IO: [`Listener::poll`] says which report is due; the interface builds it.

use std::net::Ipv6Addr;

use crate::time::{Duration, Instant};
use crate::wire::mld::Query;

/// RFC 3810 §9.1 robustness variable: unsolicited reports sent per change.
pub const ROBUSTNESS: u8 = 2;
/// RFC 3810 §9.11 unsolicited report interval (Linux's default for MLDv2).
pub const UNSOLICITED_INTERVAL: Duration = Duration::from_secs(1);

/// A report to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The groups were joined (state-change records for every group).
    Join,
    /// The answer to a query: every group (`None`) or the one asked about.
    Current(Option<Ipv6Addr>),
}

/// The reporting state of an interface.
#[derive(Debug, Clone)]
pub struct Listener {
    unsolicited_left: u8,
    /// `None` while none is left; `Instant::ZERO` means at the first poll.
    next_unsolicited: Option<Instant>,
    /// The pending answer to a query: when, and about which group (`None`: all).
    answer: Option<(Instant, Option<Ipv6Addr>)>,
    /// This host's share of a query's maximum response delay, in 1/256.
    share: u32,
}

impl Listener {
    /// Joins at the first poll; `share` (0..=255) fixes where in a query's response window
    /// this host answers.
    pub fn new(share: u8) -> Self {
        Listener { unsolicited_left: ROBUSTNESS, next_unsolicited: Some(Instant::ZERO), answer: None, share: u32::from(share) }
    }

    /// A valid query arrived at `now`; `ours` says whether a group-specific query is about
    /// one of our groups (others are ignored, RFC 3810 §6.2).
    pub fn on_query(&mut self, q: Query, ours: bool, now: Instant) {
        if !q.is_general() && !ours {
            return;
        }
        let delay = Duration::from_millis(u64::from(q.max_response_ms) * u64::from(self.share) / 256);
        let at = now + delay;
        let group = (!q.is_general()).then_some(q.group);
        self.answer = match self.answer {
            None => Some((at, group)),
            // A general answer already pending sooner covers this query (RFC 3810 §6.2 rule 1).
            Some((t, None)) if t <= at => Some((t, None)),
            Some((t, g)) if g == group => Some((t.min(at), g)),
            // Different groups pending: answer for all, at the earlier time.
            Some((t, _)) => Some((t.min(at), None)),
        };
    }

    /// The report due at `now`, if any.
    pub fn poll(&mut self, now: Instant) -> Option<Report> {
        if let Some(at) = self.next_unsolicited.filter(|&at| at <= now) {
            self.unsolicited_left = self.unsolicited_left.saturating_sub(1);
            self.next_unsolicited = (self.unsolicited_left > 0).then(|| at.max(now) + UNSOLICITED_INTERVAL);
            return Some(Report::Join);
        }
        match self.answer {
            Some((at, group)) if at <= now => {
                self.answer = None;
                Some(Report::Current(group))
            }
            _ => None,
        }
    }

    /// When [`Listener::poll`] next has something.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.next_unsolicited, self.answer.map(|(t, _)| t)].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn q(ms: u32, group: Ipv6Addr) -> Query {
        Query { max_response_ms: ms, group }
    }

    const G: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2);
    const H: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 3);

    #[test]
    fn joins_are_reported_robustness_times_one_interval_apart() {
        let mut l = Listener::new(128);
        assert_eq!(l.next_deadline(), Some(Instant::ZERO));
        assert_eq!(l.poll(t(3)), Some(Report::Join));
        assert_eq!(l.poll(t(500)), None);
        assert_eq!(l.next_deadline(), Some(t(1003)));
        assert_eq!(l.poll(t(1003)), Some(Report::Join));
        assert_eq!(l.poll(t(60_000)), None, "ROBUSTNESS reports only");
        assert_eq!(l.next_deadline(), None);
    }

    #[test]
    fn queries_are_answered_within_their_window() {
        let mut l = Listener::new(128);
        let _ = (l.poll(t(0)), l.poll(t(1000)));
        l.on_query(q(10_000, Ipv6Addr::UNSPECIFIED), false, t(2000));
        assert_eq!(l.next_deadline(), Some(t(7000)), "half-way through the 10 s window (share 128/256)");
        assert_eq!(l.poll(t(6999)), None);
        assert_eq!(l.poll(t(7000)), Some(Report::Current(None)));
        // A query about a group not ours is ignored; one about ours gets that group.
        l.on_query(q(1000, H), false, t(8000));
        assert_eq!(l.next_deadline(), None);
        l.on_query(q(1000, G), true, t(8000));
        assert_eq!(l.poll(t(8500)), Some(Report::Current(Some(G))));
    }

    #[test]
    fn a_pending_general_answer_covers_later_group_queries() {
        let mut l = Listener::new(0);
        let _ = (l.poll(t(0)), l.poll(t(1000)));
        let mut late = Listener::new(255);
        let _ = (late.poll(t(0)), late.poll(t(1000)));
        l.on_query(q(10_000, Ipv6Addr::UNSPECIFIED), false, t(2000));
        l.on_query(q(1000, G), true, t(2000));
        assert_eq!(l.poll(t(2000)), Some(Report::Current(None)), "share 0 answers at once, for all");
        late.on_query(q(1000, G), true, t(2000));
        late.on_query(q(1000, H), true, t(2000));
        assert_eq!(late.poll(t(3000)), Some(Report::Current(None)), "two groups pending: one answer for all");
        assert_eq!(late.poll(t(9000)), None);
    }
}
