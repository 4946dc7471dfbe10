//! One health verdict per server for two lcores' proxies (issue 15): each [`Net`] is one
//! lcore (its own engine and backend engine at the same addresses); the proxies share a
//! [`ProxyShared`]. One lcore checks each server, both follow its verdict, across reloads
//! and a drain; passive ejection stays on the lcore that saw the failures and is counted
//! for both.

use super::*;
use crate::app::proxy::health::{CheckSpec, PoolHealth};

const INTERVAL_MS: u64 = 20;

fn checks(fall: u32, rise: u32) -> OpsSpec {
    let check = CheckSpec {
        interval: Duration::from_millis(INTERVAL_MS),
        timeout: Duration::from_millis(10),
        rise,
        fall,
        send: Vec::new(),
        expect: Vec::new(),
    };
    OpsSpec { pools: vec![PoolHealth { check: Some(check), ..PoolHealth::default() }], access_log: false }
}

/// Server 0 refuses (nothing listens), server 1 echoes.
fn refusing_and_echo() -> ProxySpec {
    spec(vec![server(BACKEND, CLOSED_PORT), server(BACKEND, ECHO_PORT)], 100, 60_000)
}

fn two_lcores(sp: &ProxySpec, ops: &OpsSpec) -> (ProxyShared, Net, Net) {
    let shared = ProxyShared::new();
    let mut a = Net::with_shared(sp, TcpConfig::default(), shared.clone());
    let mut b = Net::with_shared(sp, TcpConfig::default(), shared.clone());
    for net in [&mut a, &mut b] {
        let now = net.now;
        net.apps.proxy_mut().configure(ops.clone(), now);
    }
    (shared, a, b)
}

fn both_steps(a: &mut Net, b: &mut Net, n: usize) {
    for _ in 0..n {
        a.step();
        b.step();
    }
}

fn available(net: &Net, flat: usize) -> bool {
    net.apps.proxy().server_available(flat, net.now)
}

/// Checks each lcore started on server `flat`.
fn checks_by(a: &Net, b: &Net, flat: usize) -> (u64, u64) {
    (a.stats().servers[flat].health_checks, b.stats().servers[flat].health_checks)
}

/// The backend of `net` starts answering on the refusing port.
fn listen_on_closed_port(net: &mut Net) {
    let echo = AppSpec::new(AppKind::Echo, SocketAddr::from((BACKEND, CLOSED_PORT)));
    assert!(net.backend_apps.listen(&mut net.backend, &echo).is_ok());
}

#[test]
fn one_lcore_checks_each_server_and_both_follow_its_verdict() {
    let (shared, mut a, mut b) = two_lcores(&refusing_and_echo(), &checks(2, 2));
    assert_eq!(shared.members(), 2);
    both_steps(&mut a, &mut b, 100);
    // 100 ms at one check per 20 ms: 5 or 6 checks of each server, all from one lcore.
    for flat in 0..2 {
        let (ca, cb) = checks_by(&a, &b, flat);
        assert!((ca == 0) != (cb == 0), "server {flat}: checks from lcore a {ca}, lcore b {cb}");
        assert!((5..=6).contains(&(ca + cb)), "server {flat}: {} checks in 100 ms", ca + cb);
        let (va, vb) = (a.apps.proxy().view(&a.proxy, None, a.now), b.apps.proxy().view(&b.proxy, None, b.now));
        assert_eq!((va.servers[flat].checking, vb.servers[flat].checking), (ca > 0, cb > 0), "the admin view says who");
        assert_eq!(va.servers[flat].health, vb.servers[flat].health, "one verdict");
    }
    // The refusing server is down for both lcores, though only one of them checked it.
    assert!(!available(&a, 0) && !available(&b, 0));
    assert!(available(&a, 1) && available(&b, 1));
    let health = shared.health();
    assert_eq!(health.len(), 2, "one entry per server, not per lcore: {health:?}");
    assert!(!health[1].up && health[1].went_down == 1, "sorted by port: 8082 is second: {health:?}");
    // New sessions on both lcores go to the echo server; none is tried on the down one.
    for net in [&mut a, &mut b] {
        for payload in [&b"one"[..], b"two"] {
            assert_eq!(round_trip(net, payload, 2000).1, payload);
        }
        assert_eq!(net.stats().servers[0].attempts, 0, "a down server gets no attempt on any lcore");
    }

    // It comes back (both backends listen): rise x interval later both lcores send to it
    // again. Each lcore's two sessions in a row take two round-robin turns: one each.
    listen_on_closed_port(&mut a);
    listen_on_closed_port(&mut b);
    both_steps(&mut a, &mut b, 2 * INTERVAL_MS as usize + 15);
    assert!(available(&a, 0) && available(&b, 0), "{:?}", shared.health());
    for net in [&mut a, &mut b] {
        for payload in [&b"three"[..], b"four"] {
            assert_eq!(round_trip(net, payload, 2000).1, payload);
        }
        assert_eq!(net.stats().servers[0].connected, 1, "every lcore sends to it again");
    }
}

#[test]
fn the_verdict_and_its_checker_survive_a_reload_and_a_drain() {
    let sp = refusing_and_echo();
    let ops = checks(2, 2);
    let (shared, mut a, mut b) = two_lcores(&sp, &ops);
    both_steps(&mut a, &mut b, 60);
    assert!(!available(&a, 0) && !available(&b, 0));
    let before = checks_by(&a, &b, 0);
    // Both lcores reload, one after the other, with a changed weight: the server keeps its
    // name, so its verdict (down) and its checker stay.
    let mut next = sp.clone();
    next.pools[0].servers[1].weight = 3;
    for net in [&mut a, &mut b] {
        let now = net.now;
        assert_eq!(net.apps.proxy_mut().reload(&mut net.proxy, &next, ops.clone(), now), Ok(()));
        assert!(!available(net, 0), "still down right after the reload");
    }
    both_steps(&mut a, &mut b, 60);
    let after = checks_by(&a, &b, 0);
    assert!(!available(&a, 0) && !available(&b, 0));
    assert!(
        (before.0 == 0 && after.0 == 0 && after.1 > before.1) || (before.1 == 0 && after.1 == 0 && after.0 > before.0),
        "the same lcore keeps checking: {before:?} then {after:?}"
    );

    // Drain (SIGTERM): listeners close, but the checker keeps checking (sessions still
    // waiting or retrying need the verdict); the server comes back for both lcores.
    for net in [&mut a, &mut b] {
        let now = net.now;
        net.apps.proxy_mut().close_listeners(&mut net.proxy, now);
        listen_on_closed_port(net);
    }
    both_steps(&mut a, &mut b, 60);
    assert!(available(&a, 0) && available(&b, 0), "{:?}", shared.health());
    let drained = checks_by(&a, &b, 0);
    assert!(drained.0 + drained.1 > after.0 + after.1, "checks ran while draining");

    // A reload that switches the checks off forgets their verdict; one that removes the
    // server lets its entry go once nothing holds it.
    let mut gone = sp.clone();
    gone.pools[0].servers.remove(0);
    for net in [&mut a, &mut b] {
        let now = net.now;
        assert_eq!(net.apps.proxy_mut().reload(&mut net.proxy, &gone, OpsSpec::default(), now), Ok(()));
    }
    assert_eq!(shared.health().len(), 1, "only the echo server's verdict is left: {:?}", shared.health());
}

#[test]
fn a_reload_that_switches_checks_off_brings_the_server_up_on_both_lcores() {
    let sp = refusing_and_echo();
    let (shared, mut a, mut b) = two_lcores(&sp, &checks(1, 1));
    both_steps(&mut a, &mut b, 30);
    assert!(!available(&a, 0) && !available(&b, 0));
    // Checks off: whichever lcore applies it first resets the verdict; the checker, once it
    // has applied it too, checks no more, so it stays up.
    for net in [&mut a, &mut b] {
        let now = net.now;
        assert_eq!(net.apps.proxy_mut().reload(&mut net.proxy, &sp, OpsSpec::default(), now), Ok(()));
    }
    both_steps(&mut a, &mut b, 60);
    assert!(available(&a, 0) && available(&b, 0), "{:?}", shared.health());
    let (ca, cb) = checks_by(&a, &b, 0);
    both_steps(&mut a, &mut b, 60);
    assert_eq!(checks_by(&a, &b, 0), (ca, cb), "no check runs without checks configured");
}

#[test]
fn passive_ejection_stays_local_and_is_reported_for_every_lcore() {
    let ops = OpsSpec {
        pools: vec![PoolHealth { check: None, passive_failures: 2, passive_recovery: Duration::from_millis(500) }],
        access_log: false,
    };
    let (shared, mut a, mut b) = two_lcores(&refusing_and_echo(), &ops);
    // Lcore a's sessions meet the refusing server (round robin, the retry hides it).
    for _ in 0..4 {
        assert_eq!(round_trip(&mut a, b"ok", 2000).1, b"ok");
    }
    assert!(!available(&a, 0), "ejected on the lcore that saw the failures");
    assert!(available(&b, 0), "not on the other");
    for net in [&a, &b] {
        let h = &net.apps.proxy().backend_health()[0];
        assert_eq!((h.ejected_lcores, h.ejections, h.up), (1, 1, true), "reported to every lcore: {h:?}");
    }
    let view = b.apps.proxy().view(&b.proxy, None, b.now);
    assert!(!view.servers[0].ejected, "lcore b's own view");
    assert_eq!(shared.health()[1].ejected_lcores, 1);
    both_steps(&mut a, &mut b, 510);
    assert!(available(&a, 0), "back after the recovery time");
    assert_eq!(shared.health()[1].ejected_lcores, 0, "its unit given back");
    assert_eq!(shared.health()[1].ejections, 1);
}

#[test]
fn a_proxy_joining_a_registry_late_keeps_its_health_there() {
    let mut net = Net::new(&refusing_and_echo(), TcpConfig::default());
    let now = net.now;
    net.apps.proxy_mut().configure(checks(1, 1), now);
    net.steps(30);
    assert!(!available(&net, 0));
    // Its servers' verdicts are looked up again in the registry it joins (where nobody
    // has checked them yet: up), and its checks write them there.
    let shared = ProxyShared::new();
    net.apps.proxy_mut().set_shared(shared.clone());
    assert!(available(&net, 0));
    net.steps(30);
    assert!(!available(&net, 0));
    assert!(!shared.health()[1].up, "{:?}", shared.health());
}
