//! Router discovery for a host (RFC 4861 §6.3), as Linux keeps it (`ndisc_router_discovery`,
//! `rt6_add_dflt_router`, `addrconf_prefix_rcv`, `addrconf_rs_timer`): the default router
//! list and the on-link prefix list learnt from router advertisements, each entry with its
//! lifetime, and the router solicitations sent after the link-local address becomes usable
//! until an advertisement arrives (RFC 7559 backoff: 4 s doubling up to an hour, without
//! end, Linux's `rtr_solicits = -1`).
//!
//! Both lists are bounded (a hostile neighbour cannot make them grow): an advertisement
//! from a router beyond [`MAX_ROUTERS`] or a prefix beyond [`MAX_PREFIXES`] is counted and
//! not kept. Addresses are not autoconfigured from prefixes (RFC 4862 SLAAC): a proxy's
//! listening address is configured.

use std::net::Ipv6Addr;

use crate::time::{Duration, Instant};
use crate::wire::ipv6::addr;
use crate::wire::ndp::PrefixInfo;

/// Default routers kept at most.
pub const MAX_ROUTERS: usize = 8;
/// On-link prefixes kept at most.
pub const MAX_PREFIXES: usize = 16;
/// RFC 4861 §10 `RTR_SOLICITATION_INTERVAL`, the first interval between solicitations.
pub const RTR_SOLICITATION_INTERVAL: Duration = Duration::from_secs(4);
/// RFC 7559 `MAX_RTR_SOLICITATION_INTERVAL` (Linux `rtr_solicit_max_interval`).
pub const MAX_RTR_SOLICITATION_INTERVAL: Duration = Duration::from_secs(3600);
/// A prefix valid lifetime meaning "forever" (RFC 4861 §4.6.2).
const INFINITE: u32 = u32::MAX;

/// What an advertisement changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Learnt {
    /// The router was added to the default router list.
    pub router_added: bool,
    /// The router left the list (router lifetime 0, RFC 4861 §6.3.4).
    pub router_removed: bool,
    /// The router could not be added: the list is full.
    pub routers_full: bool,
    /// On-link prefixes added.
    pub prefixes_added: u32,
    /// On-link prefixes that could not be added: the list is full.
    pub prefixes_full: u32,
}

#[derive(Debug, Clone, Copy)]
struct Router {
    addr: Ipv6Addr,
    expires: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Prefix {
    prefix: Ipv6Addr,
    len: u8,
    /// `None`: infinite.
    expires: Option<Instant>,
}

/// The router solicitation schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Solicit {
    /// Not started (the link-local address is not usable yet, or advertisements are not
    /// accepted).
    Idle,
    /// Next solicitation at `at`; the one after `interval` later.
    Due { at: Instant, interval: Duration },
    /// An advertisement arrived.
    Done,
}

/// The default router and on-link prefix lists of an interface.
#[derive(Debug, Clone)]
pub struct Routers {
    routers: [Option<Router>; MAX_ROUTERS],
    prefixes: [Option<Prefix>; MAX_PREFIXES],
    solicit: Solicit,
}

impl Default for Routers {
    fn default() -> Self {
        Routers { routers: [None; MAX_ROUTERS], prefixes: [None; MAX_PREFIXES], solicit: Solicit::Idle }
    }
}

impl Routers {
    /// The link-local address became usable at `now` (Linux `addrconf_dad_completed`):
    /// true when a solicitation is to go now. Linux sends that first one even when an
    /// advertisement came already; the later ones (`addrconf_rs_timer`) stop once one has.
    pub fn start_soliciting(&mut self, now: Instant) -> bool {
        match self.solicit {
            Solicit::Idle => {
                self.solicit = Solicit::Due { at: now + RTR_SOLICITATION_INTERVAL, interval: RTR_SOLICITATION_INTERVAL * 2 };
                true
            }
            Solicit::Done => true,
            Solicit::Due { .. } => false,
        }
    }

    /// Solicit at the first poll (the link-local address is usable from the start: no
    /// duplicate address detection).
    pub fn solicit_at_first_poll(&mut self) {
        if self.solicit == Solicit::Idle {
            self.solicit = Solicit::Due { at: Instant::ZERO, interval: RTR_SOLICITATION_INTERVAL };
        }
    }

    /// Whether a solicitation is due at `now`; if so the next one is scheduled.
    pub fn poll_solicit(&mut self, now: Instant) -> bool {
        match self.solicit {
            Solicit::Due { at, interval } if at <= now => {
                let next = (interval * 2).min(MAX_RTR_SOLICITATION_INTERVAL);
                self.solicit = Solicit::Due { at: now + interval, interval: next };
                true
            }
            _ => false,
        }
    }

    /// A valid advertisement from the link-local router `src` (RFC 4861 §6.3.4).
    pub fn on_advert(&mut self, src: Ipv6Addr, router_lifetime: u16, prefixes: impl Iterator<Item = PrefixInfo>, now: Instant) -> Learnt {
        let mut learnt = Learnt::default();
        self.solicit = Solicit::Done;
        let slot = self.routers.iter().position(|r| r.is_some_and(|r| r.addr == src));
        if router_lifetime == 0 {
            // "If the address is already present in the host's Default Router List and the
            // received Router Lifetime value is zero, immediately time-out the entry."
            if let Some(i) = slot {
                self.routers[i] = None;
                learnt.router_removed = true;
            }
        } else {
            let router = Router { addr: src, expires: now + Duration::from_secs(u64::from(router_lifetime)) };
            match slot.or_else(|| self.routers.iter().position(Option::is_none)) {
                Some(i) => {
                    learnt.router_added = self.routers[i].is_none();
                    self.routers[i] = Some(router);
                }
                None => learnt.routers_full = true,
            }
        }
        for p in prefixes {
            // Only on-link prefixes go to the prefix list; the link-local prefix is
            // ignored (RFC 4861 §6.3.4).
            if !p.on_link || addr::is_link_local(p.prefix) || p.prefix_len > 128 {
                continue;
            }
            let expires = (p.valid_lifetime != INFINITE).then(|| now + Duration::from_secs(u64::from(p.valid_lifetime)));
            let same = |q: &Prefix| q.len == p.prefix_len && addr::same_prefix(q.prefix, p.prefix, p.prefix_len);
            let slot = self.prefixes.iter().position(|q| q.as_ref().is_some_and(same));
            if p.valid_lifetime == 0 {
                if let Some(i) = slot {
                    self.prefixes[i] = None;
                }
                continue;
            }
            let entry = Prefix { prefix: p.prefix, len: p.prefix_len, expires };
            match slot {
                Some(i) => self.prefixes[i] = Some(entry),
                None => match self.prefixes.iter().position(Option::is_none) {
                    Some(i) => {
                        self.prefixes[i] = Some(entry);
                        learnt.prefixes_added += 1;
                    }
                    None => learnt.prefixes_full += 1,
                },
            }
        }
        learnt
    }

    /// Whether `dst` is inside an advertised on-link prefix.
    pub fn is_on_link(&self, dst: Ipv6Addr) -> bool {
        self.prefixes.iter().flatten().any(|p| addr::same_prefix(p.prefix, dst, p.len))
    }

    /// The default router to use (RFC 4861 §6.3.6): the first whose link-layer address is
    /// known by `reachable`, else the first in the list.
    pub fn default_router(&self, reachable: impl Fn(Ipv6Addr) -> bool) -> Option<Ipv6Addr> {
        let mut all = self.routers.iter().flatten().map(|r| r.addr);
        let first = all.clone().next();
        all.find(|&r| reachable(r)).or(first)
    }

    /// The routers in the list.
    pub fn routers(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.routers.iter().flatten().map(|r| r.addr)
    }

    /// Drops the routers and prefixes whose lifetime ended by `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> (u32, u32) {
        let (mut routers, mut prefixes) = (0, 0);
        for slot in &mut self.routers {
            if slot.is_some_and(|r| r.expires <= now) {
                *slot = None;
                routers += 1;
            }
        }
        for slot in &mut self.prefixes {
            if slot.is_some_and(|p| p.expires.is_some_and(|e| e <= now)) {
                *slot = None;
                prefixes += 1;
            }
        }
        (routers, prefixes)
    }

    /// When a solicitation or an expiry is next due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let solicit = match self.solicit {
            Solicit::Due { at, .. } => Some(at),
            _ => None,
        };
        let routers = self.routers.iter().flatten().map(|r| r.expires);
        let prefixes = self.prefixes.iter().flatten().filter_map(|p| p.expires);
        solicit.into_iter().chain(routers).chain(prefixes).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().expect("literal")
    }

    fn t(s: u64) -> Instant {
        Instant::from_millis(s * 1000)
    }

    fn prefix(p: &str, len: u8, on_link: bool, valid: u32) -> PrefixInfo {
        PrefixInfo { prefix_len: len, on_link, autonomous: true, valid_lifetime: valid, preferred_lifetime: valid, prefix: a(p) }
    }

    #[test]
    fn a_router_is_learnt_refreshed_and_forgotten_on_lifetime_zero() {
        let mut r = Routers::default();
        let gw = a("fe80::1");
        let l = r.on_advert(gw, 1800, std::iter::empty(), t(0));
        assert!(l.router_added);
        assert_eq!(r.default_router(|_| false), Some(gw));
        assert_eq!(r.next_deadline(), Some(t(1800)));
        let l = r.on_advert(gw, 600, std::iter::empty(), t(100));
        assert!(!l.router_added, "a refresh");
        assert_eq!(r.next_deadline(), Some(t(700)), "the newest lifetime counts");
        assert_eq!(r.expire(t(699)), (0, 0));
        let l = r.on_advert(gw, 0, std::iter::empty(), t(200));
        assert!(l.router_removed);
        assert_eq!(r.default_router(|_| true), None);
    }

    #[test]
    fn routers_expire_and_reachable_ones_are_preferred() {
        let mut r = Routers::default();
        let (r1, r2) = (a("fe80::1"), a("fe80::2"));
        r.on_advert(r1, 10, std::iter::empty(), t(0));
        r.on_advert(r2, 20, std::iter::empty(), t(0));
        assert_eq!(r.default_router(|_| false), Some(r1), "none known: the first");
        assert_eq!(r.default_router(|x| x == r2), Some(r2), "RFC 4861 §6.3.6: a reachable one first");
        assert_eq!(r.expire(t(10)), (1, 0));
        assert_eq!(r.default_router(|_| false), Some(r2));
        assert_eq!(r.expire(t(20)), (1, 0));
        assert_eq!(r.default_router(|_| true), None);
    }

    #[test]
    fn the_lists_are_bounded() {
        let mut r = Routers::default();
        for i in 0..MAX_ROUTERS as u16 {
            assert!(r.on_advert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i + 1), 100, std::iter::empty(), t(0)).router_added);
        }
        let l = r.on_advert(a("fe80::ff"), 100, std::iter::empty(), t(0));
        assert!(l.routers_full && !l.router_added);
        assert_eq!(r.routers().count(), MAX_ROUTERS);
        let many = (0..MAX_PREFIXES as u16 + 3).map(|i| PrefixInfo { prefix: Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0), ..prefix("::", 64, true, 100) });
        let l = r.on_advert(a("fe80::1"), 100, many, t(0));
        assert_eq!((l.prefixes_added, l.prefixes_full), (MAX_PREFIXES as u32, 3));
    }

    #[test]
    fn on_link_prefixes_follow_their_valid_lifetime() {
        let mut r = Routers::default();
        let gw = a("fe80::1");
        let ps = [
            prefix("2001:db8:1::", 64, true, 30),
            prefix("2001:db8:2::", 64, false, 30),
            prefix("fe80::", 64, true, 30),
            prefix("2001:db8:3::", 48, true, INFINITE),
        ];
        let l = r.on_advert(gw, 0, ps.into_iter(), t(0));
        assert_eq!(l.prefixes_added, 2, "off-link and link-local prefixes are not kept");
        assert!(r.is_on_link(a("2001:db8:1::99")) && r.is_on_link(a("2001:db8:3:7::1")));
        assert!(!r.is_on_link(a("2001:db8:2::1")));
        assert_eq!(r.default_router(|_| true), None, "router lifetime 0: not a default router");
        assert_eq!(r.expire(t(30)), (0, 1));
        assert!(!r.is_on_link(a("2001:db8:1::99")) && r.is_on_link(a("2001:db8:3::1")), "infinite stays");
        r.on_advert(gw, 0, [prefix("2001:db8:3::", 48, true, 0)].into_iter(), t(31));
        assert!(!r.is_on_link(a("2001:db8:3::1")), "valid lifetime 0 removes at once");
    }

    #[test]
    fn solicitations_back_off_until_an_advertisement() {
        let mut r = Routers::default();
        assert!(!r.poll_solicit(t(0)), "not started");
        assert!(r.start_soliciting(t(1)), "the first at once");
        assert!(!r.start_soliciting(t(1)), "once");
        let sent: Vec<u64> = (0..=40).filter(|&s| r.poll_solicit(t(s))).collect();
        assert_eq!(sent, vec![5, 13, 29], "4 s, then doubling (RFC 7559)");
        r.on_advert(a("fe80::1"), 100, std::iter::empty(), t(41));
        assert!(!(0..10_000).any(|s| r.poll_solicit(t(41 + s))));
        assert!(r.start_soliciting(t(20_000)), "an advertisement already came: Linux still sends the first");
        assert!(!(0..10_000).any(|s| r.poll_solicit(t(20_000 + s))), "but no more");
        let mut r = Routers::default();
        r.solicit_at_first_poll();
        assert!(r.poll_solicit(t(0)));
        let mut last = 0;
        for s in 0..20_000 {
            if r.poll_solicit(t(s)) {
                assert!(s - last <= 3600 || last == 0, "capped at an hour");
                last = s;
            }
        }
    }
}
