//! Duplicate address detection for our IPv6 addresses (RFC 4862 §5.4), as Linux runs it
//! (`addrconf_dad_start`, `addrconf_dad_work`, `addrconf_dad_failure`): an address is
//! *tentative* until `transmits` probes (neighbour solicitations from `::`, RFC 4862
//! §5.4.2) have gone out one retransmission interval apart with no answer, then
//! *preferred*; an advertisement for it, or another node's probe for it, while tentative
//! makes it *duplicate* (§5.4.3, §5.4.4) and it is never used. With `transmits` 0 an
//! address is preferred at once (Linux `accept_dad = 0` / `nodad`).
//!
//! Sans-IO: [`Dad::poll`] reports the probes to send and the addresses that became
//! preferred; the interface sends them. Linux delays the first probe by a random time up
//! to one second (RFC 4862 §5.4.2, a SHOULD against many nodes probing at once after a
//! power cut); we probe at the first poll, so an address is usable one interval after the
//! port comes up.

use std::net::Ipv6Addr;

use crate::time::{Duration, Instant};

/// RFC 4861 §10 `RETRANS_TIMER`: the interval between probes and the wait after the last.
pub const RETRANS_TIMER: Duration = Duration::from_secs(1);

/// Linux's `dad_transmits` default (RFC 4862 §5.1 `DupAddrDetectTransmits`).
pub const DEFAULT_TRANSMITS: u8 = 1;

/// Where an address stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrState {
    /// Under detection: not used as a source, packets to it dropped, solicitations for it
    /// not answered.
    Tentative,
    /// Usable.
    Preferred,
    /// Another node holds it: never used (Linux `IFA_F_DADFAILED`).
    Duplicate,
}

/// What [`Dad::poll`] asks of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DadEvent {
    /// Send a probe for this address.
    Probe(Ipv6Addr),
    /// This address passed detection and is now preferred.
    Preferred(Ipv6Addr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    addr: Ipv6Addr,
    state: AddrState,
    /// Probes still to send.
    probes_left: u8,
    /// When the next probe (or the verdict) is due; `None`: at the first poll.
    due: Option<Instant>,
}

/// The detection state of an interface's addresses (its link-local address and at most
/// one configured address).
#[derive(Debug, Clone)]
pub struct Dad {
    entries: [Option<Entry>; 2],
}

impl Dad {
    /// Starts detection of `addrs` with `transmits` probes each.
    pub fn new(addrs: [Option<Ipv6Addr>; 2], transmits: u8) -> Self {
        let entry = |a: Option<Ipv6Addr>| {
            a.map(|addr| Entry {
                addr,
                state: if transmits == 0 { AddrState::Preferred } else { AddrState::Tentative },
                probes_left: transmits,
                due: None,
            })
        };
        Dad { entries: [entry(addrs[0]), entry(addrs[1])] }
    }

    /// The state of `a`, `None` when it is not one of ours.
    pub fn state(&self, a: Ipv6Addr) -> Option<AddrState> {
        self.entries.iter().flatten().find(|e| e.addr == a).map(|e| e.state)
    }

    /// Our addresses and their states.
    pub fn addresses(&self) -> impl Iterator<Item = (Ipv6Addr, AddrState)> + '_ {
        self.entries.iter().flatten().map(|e| (e.addr, e.state))
    }

    /// Another node answered for `a` or probes it too: if `a` is ours and tentative it is
    /// duplicate (RFC 4862 §5.4.3 and §5.4.4, Linux `addrconf_dad_failure`); returns
    /// whether that happened.
    pub fn conflict(&mut self, a: Ipv6Addr) -> bool {
        match self.entries.iter_mut().flatten().find(|e| e.addr == a) {
            Some(e) if e.state == AddrState::Tentative => {
                e.state = AddrState::Duplicate;
                e.due = None;
                true
            }
            _ => false,
        }
    }

    /// Sends what is due at `now` through `event`.
    pub fn poll(&mut self, now: Instant, mut event: impl FnMut(DadEvent)) {
        for e in self.entries.iter_mut().flatten() {
            if e.state != AddrState::Tentative || e.due.is_some_and(|d| d > now) {
                continue;
            }
            if e.probes_left > 0 {
                e.probes_left -= 1;
                e.due = Some(now + RETRANS_TIMER);
                event(DadEvent::Probe(e.addr));
            } else {
                e.state = AddrState::Preferred;
                e.due = None;
                event(DadEvent::Preferred(e.addr));
            }
        }
    }

    /// When [`Dad::poll`] next has work: `Instant::ZERO` while a first probe waits.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .iter()
            .flatten()
            .filter(|e| e.state == AddrState::Tentative)
            .map(|e| e.due.unwrap_or(Instant::ZERO))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
    const GLOBAL: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn events(d: &mut Dad, now: Instant) -> Vec<DadEvent> {
        let mut out = Vec::new();
        d.poll(now, |e| out.push(e));
        out
    }

    #[test]
    fn probes_then_prefers_one_interval_later() {
        let mut d = Dad::new([Some(LL), Some(GLOBAL)], 1);
        assert_eq!(d.state(GLOBAL), Some(AddrState::Tentative));
        assert_eq!(d.next_deadline(), Some(Instant::ZERO), "the first probe goes at the first poll");
        assert_eq!(events(&mut d, t(5)), vec![DadEvent::Probe(LL), DadEvent::Probe(GLOBAL)]);
        assert_eq!(d.next_deadline(), Some(t(1005)));
        assert!(events(&mut d, t(1004)).is_empty());
        assert_eq!(d.state(LL), Some(AddrState::Tentative));
        assert_eq!(events(&mut d, t(1005)), vec![DadEvent::Preferred(LL), DadEvent::Preferred(GLOBAL)]);
        assert_eq!((d.state(LL), d.state(GLOBAL)), (Some(AddrState::Preferred), Some(AddrState::Preferred)));
        assert_eq!(d.next_deadline(), None);
        assert!(events(&mut d, t(9000)).is_empty());
    }

    #[test]
    fn several_transmits_are_spaced_by_the_retransmission_timer() {
        let mut d = Dad::new([Some(LL), None], 3);
        let mut probes = Vec::new();
        for ms in (0..=4000).step_by(250) {
            for e in events(&mut d, t(ms)) {
                probes.push((ms, e));
            }
        }
        assert_eq!(
            probes,
            vec![(0, DadEvent::Probe(LL)), (1000, DadEvent::Probe(LL)), (2000, DadEvent::Probe(LL)), (3000, DadEvent::Preferred(LL))]
        );
    }

    #[test]
    fn a_conflict_while_tentative_makes_the_address_duplicate_for_good() {
        let mut d = Dad::new([Some(LL), Some(GLOBAL)], 1);
        let _ = events(&mut d, t(0));
        assert!(d.conflict(GLOBAL));
        assert!(!d.conflict(GLOBAL), "already duplicate");
        assert!(!d.conflict(Ipv6Addr::LOCALHOST), "not ours");
        assert_eq!(events(&mut d, t(1000)), vec![DadEvent::Preferred(LL)]);
        assert_eq!(d.state(GLOBAL), Some(AddrState::Duplicate));
        assert!(!d.conflict(LL), "a preferred address is defended, not given up");
        assert_eq!(d.state(LL), Some(AddrState::Preferred));
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn no_transmits_means_preferred_at_once() {
        let mut d = Dad::new([Some(LL), Some(GLOBAL)], 0);
        assert_eq!(d.state(GLOBAL), Some(AddrState::Preferred));
        assert_eq!(d.next_deadline(), None);
        assert!(events(&mut d, t(0)).is_empty());
        assert_eq!(d.addresses().count(), 2);
    }
}
