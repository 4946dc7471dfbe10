//! Per-server `max_connections` and the pool's queue (`queue.rs`): a full server gets no
//! more connections, sessions wait and are served when a place frees, or are reset at the
//! queue timeout or when the queue is full; the limit holds over two lcores.

use super::*;

/// One manual server taking at most one connection; `max_queue` sessions may wait
/// `queue_ms`.
fn limited(max_queue: u32, queue_ms: u64) -> ProxySpec {
    let mut sp = spec(vec![server(BACKEND, MANUAL_PORT)], 100, 60_000);
    sp.pools[0].servers[0].max_connections = Some(1);
    sp.pools[0].max_queue = max_queue;
    sp.pools[0].queue_timeout = Duration::from_millis(queue_ms);
    sp
}

#[test]
fn a_waiting_session_is_served_when_the_server_has_room_again() {
    let shared = ProxyShared::new();
    let mut net = Net::with_shared(&limited(10, 5_000), TcpConfig::default(), shared.clone());
    let a = net.connect();
    net.steps(20);
    assert!(net.accept_manual().is_some(), "A reached the server");
    let b = net.connect();
    net.steps(50);
    assert!(net.accept_manual().is_none(), "no second connection to a server with max_connections = 1");
    assert!(net.client_closed(b).is_none(), "B waits");
    assert_eq!(shared.queue_length("web"), 1);
    assert_eq!(net.stats().listeners[0].queued, 1);
    let now = net.now;
    assert!(net.client.abort(a, now).is_ok());
    net.steps(50);
    assert!(net.accept_manual().is_some(), "B reached the server once A was gone");
    assert!(net.client_closed(b).is_none());
    assert_eq!(shared.queue_length("web"), 0);
    assert_eq!(shared.server_connections("web", SocketAddr::from((BACKEND, MANUAL_PORT))), 1);
    let l = &net.stats().listeners[0];
    assert_eq!((l.queued, l.refused_queue_full, l.refused_queue_timeout), (1, 0, 0));
}

#[test]
fn a_session_waiting_past_the_queue_timeout_is_reset() {
    let shared = ProxyShared::new();
    let mut net = Net::with_shared(&limited(10, 50), TcpConfig::default(), shared.clone());
    let _a = net.connect();
    net.steps(20);
    let b = net.connect();
    net.steps(30);
    assert!(net.client_closed(b).is_none(), "B waits for 50 ms");
    net.steps(50);
    assert_eq!(net.client_closed(b), Some(CloseReason::Reset));
    assert_eq!(net.stats().listeners[0].refused_queue_timeout, 1);
    assert_eq!(shared.queue_length("web"), 0);
    assert_eq!(net.apps.proxy().session_count(), 1, "only A is left");
}

#[test]
fn a_session_finding_the_queue_full_is_reset() {
    let shared = ProxyShared::new();
    let mut net = Net::with_shared(&limited(1, 5_000), TcpConfig::default(), shared.clone());
    let _a = net.connect();
    net.steps(20);
    let b = net.connect();
    net.steps(20);
    let c = net.connect();
    net.steps(20);
    assert!(net.client_closed(b).is_none(), "B waits");
    assert_eq!(net.client_closed(c), Some(CloseReason::Reset), "C finds the queue full");
    let l = &net.stats().listeners[0];
    assert_eq!((l.queued, l.refused_queue_full), (1, 1));
    assert_eq!(shared.queue_length("web"), 1);
}

#[test]
fn no_queue_means_a_full_server_refuses_at_once() {
    let mut net = Net::new(&limited(0, 5_000), TcpConfig::default());
    let _a = net.connect();
    net.steps(20);
    let b = net.connect();
    net.steps(20);
    assert_eq!(net.client_closed(b), Some(CloseReason::Reset));
    assert_eq!(net.stats().listeners[0].refused_queue_full, 1);
}

#[test]
fn the_server_limit_and_the_queue_span_two_lcores() {
    let shared = ProxyShared::new();
    let sp = limited(10, 5_000);
    let mut a = Net::with_shared(&sp, TcpConfig::default(), shared.clone());
    let mut b = Net::with_shared(&sp, TcpConfig::default(), shared.clone());
    let a1 = a.connect();
    a.steps(20);
    assert!(a.accept_manual().is_some());
    let b1 = b.connect();
    b.steps(50);
    assert!(b.accept_manual().is_none(), "lcore b waits for lcore a's place");
    assert_eq!(shared.queue_length("web"), 1);
    let now = a.now;
    assert!(a.client.abort(a1, now).is_ok());
    a.steps(20);
    b.steps(20);
    assert!(b.accept_manual().is_some(), "served on lcore b");
    assert!(b.client_closed(b1).is_none());
    assert_eq!(shared.queue_length("web"), 0);
}

#[test]
fn a_reload_keeps_waiting_sessions_waiting() {
    let shared = ProxyShared::new();
    let sp = limited(10, 5_000);
    let mut net = Net::with_shared(&sp, TcpConfig::default(), shared.clone());
    let a = net.connect();
    net.steps(20);
    assert!(net.accept_manual().is_some());
    let b = net.connect();
    net.steps(20);
    let now = net.now;
    assert_eq!(net.apps.proxy_mut().reload(&mut net.proxy, &sp, OpsSpec::default(), now), Ok(()));
    assert_eq!(shared.queue_length("web"), 1, "still waiting after the reload");
    assert!(net.client.abort(a, now).is_ok());
    net.steps(50);
    assert!(net.accept_manual().is_some(), "served from the rebuilt queue");
    assert!(net.client_closed(b).is_none());
}
