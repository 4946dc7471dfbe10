//! One health verdict per server for the whole process (issue 15; HAProxy: one check and
//! one state per server per process, whatever the number of threads).
//!
//! **Who checks.** Every lcore's proxy joins the [`super::ProxyShared`] registry and gets
//! a member index (the order the lcores' proxies were set up in). The active checks of a
//! server run on exactly one member: [`checker`], a fixed hash of the server's stable name
//! (pool name, address) modulo the number of members, so the checks of many servers spread
//! over the lcores, and a reload, which keeps names, keeps each server's checker. Only
//! lcores can reach the DPDK ports, so the checker is an lcore, not the control plane.
//!
//! **What is shared.** The checker writes the server's [`Verdict`] (a few atomics: the
//! verdict, the rise/fall streaks, the check counters); every lcore reads the verdict before
//! it picks the server (one relaxed load of a line that changes only when a check ends).
//! The streaks live here too, not on the checker, so the verdict does not depend on which
//! member ran the previous check. Passive ejection stays local to the lcore that saw its
//! sessions' connects fail (`health.rs`), and is reported here: how many lcores eject the
//! server now (a [`Counter`] unit each ejecting lcore holds, given back when the ejection
//! ends or its proxy drops it) and how many ejections there were.
//!
//! **Identity.** Verdicts are kept in the registry by (pool name, address) like the
//! connection counts, so a reload that keeps a server keeps its verdict, and a server
//! removed while its sessions drain keeps its entry until nothing holds it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use super::admin::AdminState;
use super::health::BackendHealth;
use super::shared::{Counter, Held};

/// The health verdict of one server, shared by every lcore.
#[derive(Debug)]
pub struct Verdict {
    /// The active checks' verdict (servers start up, as in HAProxy).
    up: AtomicBool,
    /// Consecutive passed and failed checks (written by the checker only).
    successes: AtomicU32,
    failures: AtomicU32,
    passed: AtomicU64,
    failed: AtomicU64,
    went_down: AtomicU64,
    /// Lcores whose passive ejection holds the server out now.
    ejected: Arc<Counter>,
    ejections: AtomicU64,
    /// The server's weight and admin state now (set on every lcore at once by the
    /// operator's commands and reloads; each lcore publishes its own, the same).
    weight: AtomicU32,
    admin: AtomicU8,
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict {
            up: AtomicBool::new(true),
            successes: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            passed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            went_down: AtomicU64::new(0),
            ejected: Arc::new(Counter::default()),
            ejections: AtomicU64::new(0),
            weight: AtomicU32::new(0),
            admin: AtomicU8::new(0),
        }
    }
}

/// What one check result did to the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Nothing changed.
    None,
    /// `rise` checks passed in a row: up again.
    Rose,
    /// `fall` checks failed in a row: down.
    Fell,
}

impl Verdict {
    /// Whether the checks let the server take new sessions.
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Counts one check result (the checker only: the streaks are read-modify-written
    /// without a compare-and-swap, which is right with one writer).
    pub(crate) fn record(&self, ok: bool, rise: u32, fall: u32) -> Transition {
        if ok {
            self.passed.fetch_add(1, Ordering::Relaxed);
            self.failures.store(0, Ordering::Relaxed);
            let n = self.successes.load(Ordering::Relaxed).saturating_add(1);
            self.successes.store(n, Ordering::Relaxed);
            if !self.up() && n >= rise {
                self.up.store(true, Ordering::Relaxed);
                return Transition::Rose;
            }
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.successes.store(0, Ordering::Relaxed);
            let n = self.failures.load(Ordering::Relaxed).saturating_add(1);
            self.failures.store(n, Ordering::Relaxed);
            if self.up() && n >= fall {
                self.up.store(false, Ordering::Relaxed);
                self.went_down.fetch_add(1, Ordering::Relaxed);
                return Transition::Fell;
            }
        }
        Transition::None
    }

    /// Forgets the checks' verdict (the pool's checks were switched off): up, no streak.
    /// Every lcore applying the reload does it; it is idempotent, and once the checker has
    /// applied it no check writes the verdict any more.
    pub(crate) fn reset(&self) {
        self.up.store(true, Ordering::Relaxed);
        self.successes.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
    }

    /// One lcore ejects the server: counted, and held until the returned unit drops.
    pub(crate) fn eject(&self) -> Held {
        self.ejections.fetch_add(1, Ordering::Relaxed);
        self.ejected.hold()
    }

    /// Lcores ejecting the server now.
    pub fn ejected_lcores(&self) -> u64 {
        self.ejected.get()
    }

    /// Publishes the server's weight and admin state as this lcore has them.
    pub(crate) fn publish(&self, weight: u32, admin: AdminState) {
        self.weight.store(weight, Ordering::Relaxed);
        let code = AdminState::ALL.iter().position(|&s| s == admin).unwrap_or(0);
        self.admin.store(u8::try_from(code).unwrap_or(0), Ordering::Relaxed);
    }

    /// The counters of the server `addr` of pool `pool`, for the metrics.
    pub fn snapshot(&self, pool: &str, addr: SocketAddr) -> BackendHealth {
        BackendHealth {
            pool: pool.to_string(),
            addr: Some(addr),
            up: self.up(),
            checks_passed: self.passed.load(Ordering::Relaxed),
            checks_failed: self.failed.load(Ordering::Relaxed),
            went_down: self.went_down.load(Ordering::Relaxed),
            ejections: self.ejections.load(Ordering::Relaxed),
            ejected_lcores: self.ejected_lcores(),
            weight: self.weight.load(Ordering::Relaxed),
            admin: AdminState::ALL
                .get(usize::from(self.admin.load(Ordering::Relaxed)))
                .copied()
                .unwrap_or_default(),
        }
    }
}

/// The member (lcore proxy, in the order they joined the registry) that runs the checks
/// of server `addr` of pool `pool` when `members` proxies share the registry: FNV-1a of
/// the name, modulo `members` (0 when there are none). Fixed for a name, so a reload keeps
/// it, and the same on every lcore.
pub fn checker(pool: &str, addr: SocketAddr, members: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let port = addr.port().to_be_bytes();
    // The address's own bytes: 4 for IPv4 (as ever), 16 for IPv6.
    let mut ip = [0u8; 16];
    let n = match addr.ip() {
        std::net::IpAddr::V4(a) => {
            ip[..4].copy_from_slice(&a.octets());
            4
        }
        std::net::IpAddr::V6(a) => {
            ip = a.octets();
            16
        }
    };
    let bytes = pool.bytes().chain([0]).chain(ip.into_iter().take(n)).chain(port);
    let h = bytes.fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    if members == 0 {
        return 0;
    }
    // The remainder is below `members`, a u32.
    u32::try_from(h % u64::from(members)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_count_consecutive_results() {
        let v = Verdict::default();
        assert!(v.up(), "servers start up");
        assert_eq!(v.record(false, 2, 3), Transition::None);
        assert_eq!(v.record(false, 2, 3), Transition::None);
        assert_eq!(v.record(true, 2, 3), Transition::None, "a pass breaks the failure streak");
        assert_eq!(v.record(false, 2, 3), Transition::None);
        assert_eq!(v.record(false, 2, 3), Transition::None);
        assert_eq!(v.record(false, 2, 3), Transition::Fell);
        assert!(!v.up());
        assert_eq!(v.record(false, 2, 3), Transition::None, "already down");
        assert_eq!(v.record(true, 2, 3), Transition::None);
        assert_eq!(v.record(true, 2, 3), Transition::Rose);
        let s = v.snapshot("web", "198.18.1.1:80".parse().unwrap());
        assert_eq!((s.up, s.checks_passed, s.checks_failed, s.went_down), (true, 3, 6, 1));
        v.record(false, 2, 1);
        assert!(!v.up());
        v.reset();
        assert!(v.up(), "checks switched off: up");
        assert_eq!(v.record(false, 1, 2), Transition::None, "the streak started again");
    }

    #[test]
    fn ejections_are_counted_and_held_per_lcore() {
        let v = Verdict::default();
        let a = v.eject();
        let b = v.eject();
        assert_eq!(v.ejected_lcores(), 2);
        drop(a);
        assert_eq!(v.ejected_lcores(), 1);
        drop(b);
        let s = v.snapshot("web", "198.18.1.1:80".parse().unwrap());
        assert_eq!((s.ejected_lcores, s.ejections), (0, 2));
        assert!(s.up, "ejection is not the checks' verdict");
    }

    #[test]
    fn the_checker_is_one_member_fixed_by_the_name() {
        let a: SocketAddr = "198.18.1.1:80".parse().unwrap();
        assert_eq!(checker("web", a, 0), 0);
        assert_eq!(checker("web", a, 1), 0);
        for members in 1..8 {
            let c = checker("web", a, members);
            assert!(c < members);
            assert_eq!(c, checker("web", a, members), "the same on every lcore");
        }
        // Many servers over 4 lcores: every lcore checks some.
        let mut per = [0u32; 4];
        for i in 0..64u8 {
            let s = SocketAddr::new(std::net::Ipv4Addr::new(198, 18, 1, i).into(), 8080);
            per[checker("web", s, 4) as usize] += 1;
        }
        assert!(per.iter().all(|&n| n >= 6), "spread: {per:?}");
    }
}
