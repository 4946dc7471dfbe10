//! Two lcores' proxies sharing their counters ([`ProxyShared`]): each [`Net`] is one lcore
//! (its own engine, clients and backend engine at the same addresses), and the two
//! proxies see one listener limit, one count per server and one round robin.

use super::*;

fn two_lcores(sp: &ProxySpec) -> (ProxyShared, Net, Net) {
    let shared = ProxyShared::new();
    let a = Net::with_shared(sp, TcpConfig::default(), shared.clone());
    let b = Net::with_shared(sp, TcpConfig::default(), shared.clone());
    (shared, a, b)
}

fn both_steps(a: &mut Net, b: &mut Net, n: usize) {
    for _ in 0..n {
        a.step();
        b.step();
    }
}

fn manual() -> SocketAddr {
    SocketAddr::from((BACKEND, MANUAL_PORT))
}

#[test]
fn max_connections_is_one_limit_over_both_lcores() {
    let (shared, mut a, mut b) = two_lcores(&spec(vec![server(BACKEND, MANUAL_PORT)], 3, 60_000));
    let a1 = a.connect();
    let a2 = a.connect();
    both_steps(&mut a, &mut b, 10);
    let b1 = b.connect();
    let b2 = b.connect();
    both_steps(&mut a, &mut b, 10);
    assert_eq!(shared.listener_sessions("front"), 3);
    let open = [a1, a2].iter().filter(|&&c| a.client_closed(c).is_none()).count()
        + [b1, b2].iter().filter(|&&c| b.client_closed(c).is_none()).count();
    assert_eq!(open, 3, "three sessions in all, not three per lcore");
    assert_eq!(b.client_closed(b2), Some(CloseReason::Reset));
    let (la, lb) = (&a.stats().listeners[0], &b.stats().listeners[0]);
    assert_eq!((la.active, la.refused_max_connections), (2, 0));
    assert_eq!((lb.active, lb.refused_max_connections), (1, 1));
    assert_eq!(shared.server_connections("web", manual()), 3);

    // A session that ends on lcore a frees a place for lcore b.
    let now = a.now;
    assert!(a.client.abort(a1, now).is_ok());
    both_steps(&mut a, &mut b, 10);
    assert_eq!(shared.listener_sessions("front"), 2, "given back once, by the lcore that had it");
    let b3 = b.connect();
    both_steps(&mut a, &mut b, 10);
    assert!(b.client_closed(b3).is_none(), "admitted on lcore b");
    assert_eq!(shared.listener_sessions("front"), 3);
    assert_eq!(b.stats().listeners[0].refused_max_connections, 1);

    // Every session gone (resets on both lcores): both counts back to zero.
    for (net, ids) in [(&mut a, vec![a2]), (&mut b, vec![b1, b3])] {
        let now = net.now;
        for id in ids {
            let _ = net.client.abort(id, now);
        }
    }
    both_steps(&mut a, &mut b, 20);
    assert_eq!(a.apps.proxy().session_count() + b.apps.proxy().session_count(), 0);
    assert_eq!(shared.listener_sessions("front"), 0);
    assert_eq!(shared.server_connections("web", manual()), 0);
}

#[test]
fn least_connections_counts_the_other_lcores_sessions() {
    // Lcore a holds a session on server 0 (manual port). Lcore b, which has none, sends
    // its sessions to server 1 (echo): on its own counts it would have tied and picked
    // server 0, where nobody answers its data.
    let mut sp = spec(vec![server(BACKEND, MANUAL_PORT), server(BACKEND, ECHO_PORT)], 100, 60_000);
    sp.pools[0].algorithm = Algorithm::LeastConnections;
    let (shared, mut a, mut b) = two_lcores(&sp);
    let held = a.connect();
    a.steps(20);
    assert!(a.accept_manual().is_some(), "lcore a's session reached server 0");
    assert_eq!(shared.server_connections("web", manual()), 1);
    for payload in [&b"bee"[..], b"sea"] {
        let (_, got) = round_trip(&mut b, payload, 2000);
        assert_eq!(got, payload);
    }
    let s = &b.stats().servers;
    assert_eq!((s[0].attempts, s[1].attempts, s[1].connected), (0, 2, 2));
    assert!(a.client_closed(held).is_none());
}

#[test]
fn round_robin_takes_turns_across_lcores() {
    // Weights 1:1: lcore a's first session takes server 0, lcore b's first server 1 (each
    // lcore on its own would start with server 0).
    let (_shared, mut a, mut b) =
        two_lcores(&spec(vec![server(BACKEND, MANUAL_PORT), server(BACKEND, ECHO_PORT)], 100, 60_000));
    let _held = a.connect();
    a.steps(20);
    let (_, got) = round_trip(&mut b, b"bee", 2000);
    assert_eq!(got, b"bee");
    assert_eq!((a.stats().servers[0].attempts, a.stats().servers[1].attempts), (1, 0));
    assert_eq!((b.stats().servers[0].attempts, b.stats().servers[1].attempts), (0, 1));
}

#[test]
fn reload_keeps_the_shared_counts_and_prunes_what_nobody_uses() {
    let sp = spec(vec![server(BACKEND, MANUAL_PORT)], 2, 60_000);
    let (shared, mut a, mut b) = two_lcores(&sp);
    let a1 = a.connect();
    let a2 = a.connect();
    both_steps(&mut a, &mut b, 10);
    assert_eq!(shared.listener_sessions("front"), 2);
    // Both lcores reload, one after the other: the manual server is removed (its sessions
    // drain), the echo server is added, the listener keeps its name and limit.
    let next = spec(vec![server(BACKEND, ECHO_PORT)], 2, 60_000);
    for net in [&mut a, &mut b] {
        let now = net.now;
        assert_eq!(net.apps.proxy_mut().reload(&mut net.proxy, &next, OpsSpec::default(), now), Ok(()));
    }
    assert_eq!(shared.listener_sessions("front"), 2, "the old sessions still count");
    assert_eq!(shared.server_connections("web", manual()), 2, "and still hold the removed server");
    let b1 = b.connect();
    both_steps(&mut a, &mut b, 10);
    assert_eq!(b.client_closed(b1), Some(CloseReason::Reset), "the limit still holds");
    // The old sessions end: both counts go to zero once.
    let now = a.now;
    for id in [a1, a2] {
        assert!(a.client.abort(id, now).is_ok());
    }
    both_steps(&mut a, &mut b, 20);
    assert_eq!(a.apps.proxy().session_count(), 0);
    assert_eq!(shared.listener_sessions("front"), 0);
    assert_eq!(shared.server_connections("web", manual()), 0);
    // Now sessions go to the echo server, counted there, and end.
    let (_, got) = round_trip(&mut b, b"sea", 2000);
    assert_eq!(got, b"sea");
    assert_eq!(shared.server_connections("web", SocketAddr::from((BACKEND, ECHO_PORT))), 0);
    // A later reload on each lcore forgets the removed server: nothing holds it.
    for net in [&mut a, &mut b] {
        let now = net.now;
        assert_eq!(net.apps.proxy_mut().reload(&mut net.proxy, &next, OpsSpec::default(), now), Ok(()));
    }
    assert_eq!(shared.entries(), (1, 1, 1), "listener front, server web/echo, pool web");
}

#[test]
fn a_renamed_listener_starts_its_own_count() {
    let (shared, mut a, mut b) = two_lcores(&spec(vec![server(BACKEND, MANUAL_PORT)], 1, 60_000));
    let a1 = a.connect();
    a.steps(10);
    let mut next = spec(vec![server(BACKEND, MANUAL_PORT)], 1, 60_000);
    next.listeners[0].name = "renamed".into();
    for net in [&mut a, &mut b] {
        let now = net.now;
        assert_eq!(net.apps.proxy_mut().reload(&mut net.proxy, &next, OpsSpec::default(), now), Ok(()));
    }
    assert_eq!(shared.listener_sessions("front"), 1, "the old listener's session, draining");
    let b1 = b.connect();
    both_steps(&mut a, &mut b, 10);
    assert!(b.client_closed(b1).is_none(), "the new listener has its own limit");
    assert_eq!(shared.listener_sessions("renamed"), 1);
    assert!(a.client_closed(a1).is_none());
    assert_eq!(shared.server_connections("web", manual()), 2);
}
