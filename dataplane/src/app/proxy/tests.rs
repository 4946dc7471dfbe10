//! The proxy between three engines — a client, the proxy, backend servers — with segments
//! routed by destination address (no wire): splicing both ways, back-pressure, half-close,
//! reset propagation, connect retry and timeouts, idle timeout, the connection limit, and
//! the server pickers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;
use super::admin::KillTarget;
use crate::app::{AppKind, AppSpec, Apps};
use crate::tcp::{HeapPayload, TcpConfig};

mod admin;
mod health;
mod lcores;
mod queue;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const FRONT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const BACK: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const BACKEND: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
/// Nobody answers here (segments are dropped): connect timeouts.
const BLACKHOLE: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 9);
const LISTEN_PORT: u16 = 80;
/// The backend engine's echo service.
const ECHO_PORT: u16 = 8080;
/// A port the backend test code serves by hand.
const MANUAL_PORT: u16 = 8081;
/// Nothing listens here: the backend resets (connection refused).
const CLOSED_PORT: u16 = 8082;

fn server(ip: Ipv4Addr, port: u16) -> ServerSpec {
    ServerSpec { addr: SocketAddr::from((ip, port)), local_ip: BACK.into(), weight: 1, max_connections: None }
}

fn spec(servers: Vec<ServerSpec>, max_connections: u32, idle_ms: u64) -> ProxySpec {
    ProxySpec {
        listeners: vec![ListenerSpec {
            name: "front".into(),
            listen: SocketAddr::from((FRONT, LISTEN_PORT)),
            pool: 0,
            max_connections,
            connect_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(idle_ms),
            nodelay: true,
            keepalive: None,
        }],
        pools: vec![PoolSpec {
            name: "web".into(),
            algorithm: Algorithm::RoundRobin,
            servers,
            proxy_protocol: None,
            nodelay: true,
            keepalive: None,
            max_queue: 0,
            queue_timeout: Duration::from_secs(1),
        }],
    }
}

type Seg = crate::testnet::InFlight<HeapPayload>;

struct Net {
    client: Engine<HeapPayload>,
    proxy: Engine<HeapPayload>,
    apps: Apps<HeapPayload>,
    backend: Engine<HeapPayload>,
    backend_apps: Apps<HeapPayload>,
    manual_listener: ListenerId,
    /// Events of connections on the manual backend port (others go to the echo service).
    backend_events: Vec<StackEvent>,
    client_events: Vec<StackEvent>,
    /// While true, segments towards the backend are held back (not lost).
    hold_backend: bool,
    held: Vec<Seg>,
    now: Instant,
}

impl Net {
    fn new(proxy_spec: &ProxySpec, proxy_cfg: TcpConfig) -> Net {
        Net::with_shared(proxy_spec, proxy_cfg, ProxyShared::new())
    }

    /// A net whose proxy shares its counters through `shared` (another lcore's, in
    /// `tests/lcores.rs`).
    fn with_shared(proxy_spec: &ProxySpec, proxy_cfg: TcpConfig, shared: ProxyShared) -> Net {
        let now = Instant::from_nanos(1_000_000);
        let mut proxy = Engine::new(proxy_cfg, [1; 16], now);
        let mut apps = Apps::new();
        apps.proxy_mut().set_shared(shared);
        assert_eq!(apps.start_proxy(&mut proxy, proxy_spec), Ok(()));
        let mut backend = Engine::new(TcpConfig::default(), [3; 16], now);
        let mut backend_apps = Apps::new();
        let echo = AppSpec::new(AppKind::Echo, SocketAddr::from((BACKEND, ECHO_PORT)));
        assert!(backend_apps.listen(&mut backend, &echo).is_ok());
        let manual_listener = backend.listen(SocketAddr::from((BACKEND, MANUAL_PORT))).unwrap_or_else(|e| panic!("{e}"));
        Net {
            client: Engine::new(TcpConfig::default(), [2; 16], now),
            proxy,
            apps,
            backend,
            backend_apps,
            manual_listener,
            backend_events: Vec::new(),
            client_events: Vec::new(),
            hold_backend: false,
            held: Vec::new(),
            now,
        }
    }

    fn route(&mut self, segs: Vec<Seg>) {
        for f in segs {
            let e = match f.1 {
                IpAddr::V4(CLIENT) => &mut self.client,
                IpAddr::V4(FRONT | BACK) => &mut self.proxy,
                IpAddr::V4(BACKEND) if self.hold_backend => {
                    self.held.push(f);
                    continue;
                }
                IpAddr::V4(BACKEND) => &mut self.backend,
                _ => continue,
            };
            crate::testnet::deliver(e, f, self.now);
        }
    }

    fn transmit(&mut self) {
        let mut out = crate::testnet::transmit(&mut [&mut self.client, &mut self.proxy, &mut self.backend], self.now);
        if !self.hold_backend {
            out.append(&mut self.held);
        }
        self.route(out);
    }

    fn backend_poll(&mut self) {
        while let Some(ev) = self.backend.poll_event() {
            let manual = match ev {
                StackEvent::Acceptable(l) => l == self.manual_listener,
                StackEvent::Conn(id, _) => {
                    self.backend.addresses(id).map(|(local, _)| local.port() == MANUAL_PORT).unwrap_or(true)
                }
            };
            if manual {
                self.backend_events.push(ev);
            } else {
                self.backend_apps.handle_event(&mut self.backend, ev, self.now);
            }
        }
    }

    /// One round: everything transmitted is delivered, services run (with the proxy's
    /// health checks), 1 ms passes, timers fire.
    fn step(&mut self) {
        self.transmit();
        self.apps.poll(&mut self.proxy, self.now);
        self.backend_poll();
        self.transmit();
        self.now += Duration::from_millis(1);
        crate::testnet::fire_timers(&mut [&mut self.client, &mut self.proxy, &mut self.backend], self.now);
        self.apps.poll(&mut self.proxy, self.now);
        self.backend_poll();
        while let Some(ev) = self.client.poll_event() {
            self.client_events.push(ev);
        }
    }

    fn steps(&mut self, n: usize) {
        for _ in 0..n {
            self.step();
        }
    }

    fn connect(&mut self) -> ConnId {
        self.client.connect(CLIENT, SocketAddr::from((FRONT, LISTEN_PORT)), self.now).unwrap_or_else(|e| panic!("{e}"))
    }

    fn client_saw(&self, id: ConnId, ev: Event) -> bool {
        self.client_events.contains(&StackEvent::Conn(id, ev))
    }

    fn client_closed(&self, id: ConnId) -> Option<CloseReason> {
        self.client_events.iter().find_map(|e| match e {
            StackEvent::Conn(i, Event::Closed { reason }) if *i == id => Some(*reason),
            _ => None,
        })
    }

    /// Accepts the pending manual backend connection.
    fn accept_manual(&mut self) -> Option<ConnId> {
        self.backend.accept(self.manual_listener)
    }

    fn read_all(e: &mut Engine<HeapPayload>, id: ConnId, now: Instant, into: &mut Vec<u8>) {
        while let Ok(Some(p)) = e.read(id, usize::MAX, now) {
            if p.is_empty() {
                break;
            }
            into.extend_from_slice(&p.to_vec());
        }
    }

    fn stats(&self) -> &ProxyStats {
        self.apps.proxy_stats()
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(13) ^ (i >> 11)) as u8).collect()
}

/// The client sends `data`, half-closes, reads until the proxy closes its side; returns
/// what came back.
fn round_trip(net: &mut Net, data: &[u8], max_steps: usize) -> (ConnId, Vec<u8>) {
    let id = net.connect();
    let mut sent = 0;
    let mut shut = false;
    let mut got = Vec::new();
    for _ in 0..max_steps {
        net.step();
        if sent < data.len() {
            let end = (sent + 64 * 1024).min(data.len());
            if let Ok(n) = net.client.write(id, HeapPayload::from_slice(&data[sent..end]), WriteFlags::NONE, net.now) {
                sent += n;
            }
        } else if !shut {
            assert_eq!(net.client.shutdown_write(id, net.now), Ok(()));
            shut = true;
        }
        let now = net.now;
        Net::read_all(&mut net.client, id, now, &mut got);
        if net.client_saw(id, Event::PeerClosed) {
            let _ = net.client.close(id, now);
        }
        if net.client_closed(id).is_some() && net.apps.proxy().session_count() == 0 {
            break;
        }
    }
    (id, got)
}

#[test]
fn splices_both_ways_through_an_echo_backend_and_releases_everything() {
    let mut net = Net::new(&spec(vec![server(BACKEND, ECHO_PORT)], 100, 60_000), TcpConfig::default());
    let data = pattern(2 * 1024 * 1024 + 5);
    let (id, got) = round_trip(&mut net, &data, 100_000);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ after the round trip");
    assert_eq!(net.client_closed(id), Some(CloseReason::Normal));
    net.steps(50);
    assert_eq!(net.apps.proxy().session_count(), 0);
    assert_eq!(net.proxy.connection_count(), 0, "both proxy connections released");
    let l = &net.stats().listeners[0];
    assert_eq!((l.active, l.total, l.resets), (0, 1, 0));
    assert_eq!((l.bytes_in, l.bytes_out), (data.len() as u64, data.len() as u64));
    let s = &net.stats().servers[0];
    assert_eq!((s.active, s.attempts, s.connected), (0, 1, 1));
    assert_eq!((s.bytes_in, s.bytes_out), (data.len() as u64, data.len() as u64));
    // Durations: one connect (a few simulated ms: one per step), one backend connection,
    // one session that lived longer than both.
    assert_eq!(s.connect_duration.count(), 1);
    assert!(s.connect_duration.sum_seconds() > 0.0 && s.connect_duration.sum_seconds() < 0.05);
    assert_eq!(s.connection_duration.count(), 1);
    assert_eq!(l.connection_duration.count(), 1);
    assert!(l.connection_duration.sum_seconds() >= s.connection_duration.sum_seconds());
    assert!(l.connection_duration.sum_seconds() > s.connect_duration.sum_seconds());
    assert_eq!(l.pool, "web");
}

#[test]
fn client_bytes_wait_in_the_engine_until_the_backend_connects() {
    let mut net = Net::new(&spec(vec![server(BACKEND, ECHO_PORT)], 100, 60_000), TcpConfig::default());
    net.hold_backend = true;
    let id = net.connect();
    net.steps(5);
    assert!(net.client_saw(id, Event::Connected), "client handshake with the proxy completes");
    assert_eq!(net.client.write(id, HeapPayload::from_slice(b"early bytes"), WriteFlags::NONE, net.now), Ok(11));
    net.steps(20);
    assert_eq!(net.stats().listeners[0].bytes_in, 0, "nothing is read before the backend connects");
    assert_eq!(net.stats().servers[0].connected, 0);
    net.hold_backend = false;
    let mut got = Vec::new();
    for _ in 0..50 {
        net.step();
        let now = net.now;
        Net::read_all(&mut net.client, id, now, &mut got);
    }
    assert_eq!(got, b"early bytes");
    assert_eq!(net.stats().listeners[0].bytes_in, 11);
}

#[test]
fn back_pressure_stalls_instead_of_buffering_and_delivers_everything() {
    // Small buffers on the proxy and a backend that does not read for a while: the
    // proxy must stall (counted), hold at most one chunk per direction, then deliver.
    let cfg = TcpConfig { sndbuf: 16 * 1024, rcvbuf: 16 * 1024, ..TcpConfig::default() };
    let mut net = Net::new(&spec(vec![server(BACKEND, MANUAL_PORT)], 100, 60_000), cfg);
    let data = pattern(4 * 1024 * 1024);
    let id = net.connect();
    let mut sent = 0;
    let mut received = Vec::new();
    let mut bconn = None;
    for step in 0..20_000 {
        net.step();
        if sent < data.len() {
            let end = (sent + 64 * 1024).min(data.len());
            if let Ok(n) = net.client.write(id, HeapPayload::from_slice(&data[sent..end]), WriteFlags::NONE, net.now) {
                sent += n;
            }
        }
        if bconn.is_none() {
            bconn = net.accept_manual();
        }
        if step == 1000 {
            // The backend has not read yet: the client is throttled well short of the end.
            assert!(sent < data.len(), "the client could send everything without the backend reading");
            assert!(net.stats().listeners[0].write_stalls > 0, "no back-pressure seen");
            // What the proxy passed on fits the backend's receive buffer (its window, with
            // window-scale rounding) plus the proxy's 16 KiB send buffer.
            let moved = net.stats().listeners[0].bytes_in;
            let bound = u64::from(TcpConfig::default().rcvbuf) + 2 * 16 * 1024;
            assert!(moved <= bound, "the proxy moved {moved} bytes to a backend that reads nothing");
        }
        if step > 1000 {
            if let Some(b) = bconn {
                let now = net.now;
                Net::read_all(&mut net.backend, b, now, &mut received);
            }
        }
        if received.len() == data.len() {
            break;
        }
    }
    assert!(received == data, "backend got {} of {} bytes, or different bytes", received.len(), data.len());
}

#[test]
fn half_close_keeps_the_other_direction_flowing() {
    let mut net = Net::new(&spec(vec![server(BACKEND, MANUAL_PORT)], 100, 60_000), TcpConfig::default());
    let id = net.connect();
    net.steps(5);
    assert_eq!(net.client.write(id, HeapPayload::from_slice(b"GET / HTTP/1.0\r\n\r\n"), WriteFlags::NONE, net.now), Ok(18));
    assert_eq!(net.client.shutdown_write(id, net.now), Ok(()));
    net.steps(20);
    let b = net.accept_manual().unwrap_or_else(|| panic!("backend connection not accepted"));
    net.step();
    let mut request = Vec::new();
    let now = net.now;
    Net::read_all(&mut net.backend, b, now, &mut request);
    assert_eq!(request, b"GET / HTTP/1.0\r\n\r\n");
    assert!(net.backend_events.contains(&StackEvent::Conn(b, Event::PeerClosed)), "the client's FIN reached the backend");
    // The backend answers after the client's FIN, then closes.
    let body = pattern(300 * 1024);
    let mut written = 0;
    let mut got = Vec::new();
    for _ in 0..5000 {
        if written < body.len() {
            if let Ok(n) = net.backend.write(b, HeapPayload::from_slice(&body[written..]), WriteFlags::NONE, net.now) {
                written += n;
            }
            if written == body.len() {
                assert_eq!(net.backend.close(b, net.now), Ok(()));
            }
        }
        net.step();
        let now = net.now;
        Net::read_all(&mut net.client, id, now, &mut got);
        if net.client_saw(id, Event::PeerClosed) {
            let _ = net.client.close(id, now);
        }
        if net.client_closed(id).is_some() && net.apps.proxy().session_count() == 0 {
            break;
        }
    }
    assert!(got == body, "client got {} of {} response bytes", got.len(), body.len());
    assert_eq!(net.client_closed(id), Some(CloseReason::Normal));
    assert_eq!(net.apps.proxy().session_count(), 0);
    assert_eq!(net.stats().listeners[0].resets, 0);
}

#[test]
fn a_backend_reset_resets_the_client() {
    let mut net = Net::new(&spec(vec![server(BACKEND, MANUAL_PORT)], 100, 60_000), TcpConfig::default());
    let id = net.connect();
    net.steps(10);
    let b = net.accept_manual().unwrap_or_else(|| panic!("backend connection not accepted"));
    assert_eq!(net.backend.abort(b, net.now), Ok(()));
    net.steps(10);
    assert_eq!(net.client_closed(id), Some(CloseReason::Reset));
    assert_eq!(net.stats().listeners[0].resets, 1);
    assert_eq!(net.stats().listeners[0].active, 0);
    assert_eq!(net.apps.proxy().session_count(), 0);
    assert_eq!(net.proxy.connection_count(), 0);
}

#[test]
fn the_operator_kills_a_servers_sessions_and_one_session() {
    let mut net = Net::new(&spec(vec![server(BACKEND, MANUAL_PORT)], 100, 60_000), TcpConfig::default());
    let (a, b) = (net.connect(), net.connect());
    net.steps(10);
    assert!(net.accept_manual().is_some() && net.accept_manual().is_some(), "both sessions connected");
    assert_eq!(net.apps.proxy().session_count(), 2);
    let other = SocketAddr::from((BACKEND, MANUAL_PORT + 1));
    let kill_other = KillTarget::Server { pool: "web".into(), addr: other };
    assert_eq!(net.apps.proxy_mut().kill(&mut net.proxy, &kill_other, net.now), 0, "no such server: nothing reset");
    assert_eq!(net.apps.proxy_mut().kill(&mut net.proxy, &KillTarget::Session(99), net.now), 0);
    // Session ids count from 0 in accept order.
    assert_eq!(net.apps.proxy_mut().kill(&mut net.proxy, &KillTarget::Session(0), net.now), 1);
    net.steps(10);
    assert_eq!(net.client_closed(a), Some(CloseReason::Reset));
    assert_eq!(net.client_closed(b), None, "the other session goes on");
    let all = KillTarget::Server { pool: "web".into(), addr: SocketAddr::from((BACKEND, MANUAL_PORT)) };
    assert_eq!(net.apps.proxy_mut().kill(&mut net.proxy, &all, net.now), 1);
    net.steps(10);
    assert_eq!(net.client_closed(b), Some(CloseReason::Reset));
    assert_eq!(net.apps.proxy().session_count(), 0);
    assert_eq!(net.proxy.connection_count(), 0);
}

#[test]
fn a_weight_set_by_the_operator_steers_new_sessions() {
    let servers = vec![server(BACKEND, MANUAL_PORT), server(BACKEND, ECHO_PORT)];
    let mut net = Net::new(&spec(servers, 100, 60_000), TcpConfig::default());
    let echo = SocketAddr::from((BACKEND, ECHO_PORT));
    assert_eq!(net.apps.proxy_mut().set_weight("web", echo, 0), Ok(()));
    assert!(net.apps.proxy_mut().set_weight("web", SocketAddr::from((BACKEND, 1)), 1).is_err_and(|e| e.contains("no server")));
    for _ in 0..4 {
        net.connect();
    }
    net.steps(20);
    let s = &net.stats().servers;
    assert_eq!((s[0].attempts, s[1].attempts), (4, 0), "weight 0: no new sessions");
}

#[test]
fn a_client_reset_resets_the_backend() {
    let mut net = Net::new(&spec(vec![server(BACKEND, MANUAL_PORT)], 100, 60_000), TcpConfig::default());
    let id = net.connect();
    net.steps(10);
    let b = net.accept_manual().unwrap_or_else(|| panic!("backend connection not accepted"));
    assert_eq!(net.client.abort(id, net.now), Ok(()));
    net.steps(10);
    assert!(net.backend_events.contains(&StackEvent::Conn(b, Event::Closed { reason: CloseReason::Reset })));
    assert_eq!(net.apps.proxy().session_count(), 0);
}

#[test]
fn a_refused_connect_is_retried_on_the_next_server() {
    let servers = vec![server(BACKEND, CLOSED_PORT), server(BACKEND, ECHO_PORT)];
    let mut net = Net::new(&spec(servers, 100, 60_000), TcpConfig::default());
    let (_, got) = round_trip(&mut net, b"hello", 2000);
    assert_eq!(got, b"hello");
    let s = &net.stats().servers;
    assert_eq!((s[0].attempts, s[0].connect_refused, s[0].connected), (1, 1, 0));
    assert_eq!((s[1].attempts, s[1].connected), (1, 1));
    assert_eq!(net.stats().listeners[0].refused_connect_failed, 0);
}

#[test]
fn a_connect_timeout_is_retried_on_the_next_server() {
    let servers = vec![server(BLACKHOLE, 80), server(BACKEND, ECHO_PORT)];
    let mut net = Net::new(&spec(servers, 100, 60_000), TcpConfig::default());
    let (_, got) = round_trip(&mut net, b"slow", 3000);
    assert_eq!(got, b"slow");
    let s = &net.stats().servers;
    assert_eq!((s[0].connect_timeout, s[0].active), (1, 0));
    assert_eq!(s[1].connected, 1);
}

#[test]
fn the_client_is_reset_when_every_attempt_fails() {
    let mut net = Net::new(&spec(vec![server(BACKEND, CLOSED_PORT)], 100, 60_000), TcpConfig::default());
    let id = net.connect();
    net.steps(100);
    assert_eq!(net.client_closed(id), Some(CloseReason::Reset));
    let l = &net.stats().listeners[0];
    assert_eq!((l.refused_connect_failed, l.active), (1, 0));
    assert_eq!(net.stats().servers[0].connect_refused, MAX_CONNECT_ATTEMPTS as u64);
    assert_eq!(net.apps.proxy().session_count(), 0);
    assert_eq!(net.proxy.connection_count(), 0);
}

#[test]
fn an_idle_session_is_aborted() {
    let mut net = Net::new(&spec(vec![server(BACKEND, MANUAL_PORT)], 100, 200), TcpConfig::default());
    let id = net.connect();
    net.steps(100);
    assert!(net.client_closed(id).is_none(), "closed before the idle timeout");
    net.steps(200);
    assert_eq!(net.client_closed(id), Some(CloseReason::Reset));
    assert_eq!(net.stats().listeners[0].idle_timeouts, 1);
    assert_eq!(net.apps.proxy().session_count(), 0);
}

#[test]
fn activity_postpones_the_idle_abort_to_idle_timeout_after_the_last_byte() {
    // Idle timeout 200 ms; the client sends a byte every 100 ms for 600 ms through an echo
    // backend: the session's timer fires early each time and is re-armed from the last
    // activity, so the session lives; once the client goes quiet it is aborted 200 ms later.
    let mut net = Net::new(&spec(vec![server(BACKEND, ECHO_PORT)], 100, 200), TcpConfig::default());
    let id = net.connect();
    let mut got = Vec::new();
    for round in 0..6 {
        net.steps(100);
        assert!(net.client_closed(id).is_none(), "aborted while active (round {round})");
        assert_eq!(net.client.write(id, HeapPayload::from_slice(b"x"), WriteFlags::NONE, net.now), Ok(1));
        let now = net.now;
        Net::read_all(&mut net.client, id, now, &mut got);
    }
    net.steps(20);
    let now = net.now;
    Net::read_all(&mut net.client, id, now, &mut got);
    assert_eq!(got, b"xxxxxx", "every byte echoed");
    net.steps(150);
    assert!(net.client_closed(id).is_none(), "aborted before 200 ms of silence");
    net.steps(60);
    assert_eq!(net.client_closed(id), Some(CloseReason::Reset));
    assert_eq!(net.stats().listeners[0].idle_timeouts, 1);
    assert_eq!(net.apps.proxy().session_count(), 0);
}

#[test]
fn connections_beyond_the_limit_are_reset_and_counted() {
    let mut net = Net::new(&spec(vec![server(BACKEND, MANUAL_PORT)], 1, 60_000), TcpConfig::default());
    let first = net.connect();
    net.steps(10);
    let second = net.connect();
    net.steps(10);
    assert_eq!(net.client_closed(second), Some(CloseReason::Reset));
    assert!(net.client_closed(first).is_none());
    let l = &net.stats().listeners[0];
    assert_eq!((l.active, l.total, l.refused_max_connections), (1, 1, 1));
}

#[test]
fn a_listener_without_a_pool_is_refused() {
    let mut bad = spec(vec![server(BACKEND, ECHO_PORT)], 1, 1000);
    bad.listeners[0].pool = 3;
    let mut e: Engine<HeapPayload> = Engine::new(TcpConfig::default(), [0; 16], Instant::ZERO);
    assert_eq!(Proxy::new().start(&mut e, &bad), Err(ProxyError::NoPool("front".into())));
}

fn pool(algorithm: Algorithm, weights: &[u32]) -> PoolState {
    let backends: Vec<Backend> = weights
        .iter()
        .enumerate()
        .map(|(id, &weight)| Backend { id, addr: SocketAddr::from((BACKEND, 8000 + id as u16)), weight })
        .collect();
    let shared = shared::PoolShared::lookup(&ProxyShared::new(), "p", backends.iter().map(|b| b.addr));
    let queue = super::queue::PoolQueue::new(&PoolSpec {
        name: "p".into(),
        algorithm,
        servers: Vec::new(),
        proxy_protocol: None,
        nodelay: true,
        keepalive: None,
        max_queue: 0,
        queue_timeout: Duration::from_secs(1),
    });
    PoolState { first: 0, balancer: Balancer::new(algorithm, &backends).expect("valid pool"), proxy_protocol: None, nodelay: true, keepalive: None, shared, queue }
}

#[test]
fn retries_go_to_untried_servers_first_then_to_any() {
    let client = SocketAddr::from((CLIENT, 1));
    for algorithm in Algorithm::ALL {
        let mut p = pool(algorithm, &[5, 1, 1]);
        let first = p.pick(client, &[]).expect("a server");
        let second = p.pick(client, &[first]).expect("another server");
        assert_ne!(first, second, "{algorithm:?}: a retry avoids the server tried");
        let third = p.pick(client, &[first, second]).expect("the last server");
        let mut all = vec![first, second, third];
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2], "{algorithm:?}: three attempts cover the pool");
        assert!(p.pick(client, &[0, 1, 2]).is_some(), "{algorithm:?}: all tried, any may be retried");
    }
}

#[test]
fn round_robin_pool_follows_the_weights_smoothly() {
    let mut p = pool(Algorithm::RoundRobin, &[5, 1, 1]);
    let client = SocketAddr::from((CLIENT, 1));
    let picks: Vec<usize> = (0..7).filter_map(|_| p.pick(client, &[])).collect();
    // nginx's smooth weighted round robin: a a b a c a a.
    assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn maglev_pool_is_stable_per_client_address() {
    let mut p = pool(Algorithm::Maglev, &[1, 1, 1, 1]);
    let a = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 1000));
    let first = p.pick(a, &[]);
    assert!(first.is_some());
    for port in 0..10 {
        assert_eq!(p.pick(SocketAddr::new(a.ip(), port), &[]), first, "same client address, same server");
    }
}

#[test]
fn least_connections_follows_the_sessions_of_the_proxy() {
    // Server 0 (manual port) keeps session A open; session B goes to server 1 (echo) and
    // ends. Least connections then sends C to server 1 again (0 active there), where round
    // robin would go back to server 0: the proxy reports connects and disconnects to the
    // balancer.
    let mut sp = spec(vec![server(BACKEND, MANUAL_PORT), server(BACKEND, ECHO_PORT)], 100, 60_000);
    sp.pools[0].algorithm = Algorithm::LeastConnections;
    let mut net = Net::new(&sp, TcpConfig::default());
    let a = net.connect();
    net.steps(20);
    assert!(net.accept_manual().is_some(), "session A reached server 0");
    let (_, got) = round_trip(&mut net, b"bee", 2000);
    assert_eq!(got, b"bee");
    // Session A is still open, so `round_trip` could not wait for zero sessions.
    net.steps(50);
    assert_eq!(net.apps.proxy().session_count(), 1, "only A is left");
    let (_, got) = round_trip(&mut net, b"sea", 2000);
    assert_eq!(got, b"sea", "session C went to the echo server");
    let s = &net.stats().servers;
    assert_eq!((s[0].attempts, s[0].active), (1, 1));
    assert_eq!((s[1].attempts, s[1].connected, s[1].active), (2, 2, 0));
    assert_eq!(net.client_closed(a), None, "A untouched");
}

#[test]
fn a_pool_the_balancer_refuses_is_an_error() {
    let mut bad = spec(vec![server(BACKEND, ECHO_PORT), server(BACKEND, ECHO_PORT)], 1, 1000);
    bad.pools[0].name = "dup".into();
    let mut e: Engine<HeapPayload> = Engine::new(TcpConfig::default(), [0; 16], Instant::ZERO);
    let err = Proxy::new().start(&mut e, &bad).expect_err("duplicate servers are refused");
    assert!(matches!(err, ProxyError::Pool { ref name, source: LbError::DuplicateBackend(_) } if name == "dup"), "{err:?}");
}

// ----- PROXY protocol -----

fn pp_spec(version: ProxyProtocol) -> ProxySpec {
    let mut s = spec(vec![server(BACKEND, MANUAL_PORT)], 100, 60_000);
    s.pools[0].proxy_protocol = Some(version);
    s
}

fn heap_factory() -> PayloadFactory<HeapPayload> {
    Box::new(|b: &[u8]| Some(HeapPayload::from_slice(b)))
}

/// The client connects and sends `early` while the backend is unreachable; then the
/// backend connects and reads. Returns (client conn, backend conn if one was accepted, what
/// the backend read, the client's address).
fn pp_session(net: &mut Net, early: &[u8]) -> (ConnId, Option<ConnId>, Vec<u8>, SocketAddr) {
    net.hold_backend = true;
    let id = net.connect();
    net.steps(5);
    assert!(net.client_saw(id, Event::Connected));
    let client_addr = net.client.addresses(id).map(|(local, _)| local).unwrap_or_else(|e| panic!("client addresses: {e}"));
    assert_eq!(net.client.write(id, HeapPayload::from_slice(early), WriteFlags::NONE, net.now), Ok(early.len()));
    net.steps(10);
    net.hold_backend = false;
    let mut bconn = None;
    let mut got = Vec::new();
    for _ in 0..100 {
        net.step();
        if bconn.is_none() {
            bconn = net.accept_manual();
        }
        if let Some(b) = bconn {
            let now = net.now;
            Net::read_all(&mut net.backend, b, now, &mut got);
        }
    }
    (id, bconn, got, client_addr)
}

#[test]
fn proxy_protocol_v1_header_goes_first_then_the_buffered_client_bytes() {
    let mut net = Net::new(&pp_spec(ProxyProtocol::V1), TcpConfig::default());
    net.apps.proxy_mut().set_payload_factory(heap_factory());
    let (id, bconn, got, client) = pp_session(&mut net, b"GET / early");
    let bconn = bconn.unwrap_or_else(|| panic!("the backend never got a connection"));
    let mut expected = format!("PROXY TCP4 {} {} {} {}\r\n", CLIENT, FRONT, client.port(), LISTEN_PORT).into_bytes();
    expected.extend_from_slice(b"GET / early");
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));
    // The other direction is untouched by the header.
    assert_eq!(net.backend.write(bconn, HeapPayload::from_slice(b"reply"), WriteFlags::NONE, net.now), Ok(5));
    let mut back = Vec::new();
    for _ in 0..20 {
        net.step();
        let now = net.now;
        Net::read_all(&mut net.client, id, now, &mut back);
    }
    assert_eq!(back, b"reply");
    let l = &net.stats().listeners[0];
    assert_eq!((l.bytes_in, l.bytes_out, l.refused_proxy_header, l.resets), (11, 5, 0, 0), "header bytes are not client bytes");
}

#[test]
fn proxy_protocol_v2_header_is_exact_and_precedes_client_bytes() {
    let mut net = Net::new(&pp_spec(ProxyProtocol::V2), TcpConfig::default());
    net.apps.proxy_mut().set_payload_factory(heap_factory());
    let (_, _, got, client) = pp_session(&mut net, b"hello");
    assert_eq!(got.len(), proxy_protocol::V2_TCP4_LEN + 5);
    assert_eq!(got.get(..12), Some(&proxy_protocol::V2_SIGNATURE[..]));
    assert_eq!(got.get(12..16), Some(&[0x21, 0x11, 0x00, 0x0C][..]));
    assert_eq!(got.get(16..20), Some(&CLIENT.octets()[..]));
    assert_eq!(got.get(20..24), Some(&FRONT.octets()[..]));
    assert_eq!(got.get(24..26), Some(&client.port().to_be_bytes()[..]));
    assert_eq!(got.get(26..28), Some(&LISTEN_PORT.to_be_bytes()[..]));
    assert_eq!(got.get(28..), Some(&b"hello"[..]));
}

#[test]
fn pools_without_proxy_protocol_send_no_header() {
    let mut net = Net::new(&spec(vec![server(BACKEND, MANUAL_PORT)], 100, 60_000), TcpConfig::default());
    net.apps.proxy_mut().set_payload_factory(heap_factory());
    let (_, _, got, _) = pp_session(&mut net, b"plain");
    assert_eq!(got, b"plain");
}

#[test]
fn a_header_that_cannot_be_built_resets_the_session_and_is_counted() {
    // A factory out of buffers (an empty mempool), and no factory at all.
    for factory in [Some(Box::new(|_: &[u8]| None) as PayloadFactory<HeapPayload>), None] {
        let mut net = Net::new(&pp_spec(ProxyProtocol::V1), TcpConfig::default());
        if let Some(f) = factory {
            net.apps.proxy_mut().set_payload_factory(f);
        }
        let (id, bconn, got, _) = pp_session(&mut net, b"never forwarded");
        assert!(got.is_empty(), "no byte may reach the backend without its header: {got:?}");
        assert_eq!(net.client_closed(id), Some(CloseReason::Reset), "the client learns with a reset");
        if let Some(b) = bconn {
            assert!(net.backend.addresses(b).is_err(), "the backend connection was reset too");
        }
        let l = &net.stats().listeners[0];
        assert_eq!((l.refused_proxy_header, l.active, l.bytes_in), (1, 0, 0));
        assert_eq!(net.apps.proxy().session_count(), 0);
    }
}

/// The response's second small piece reaches the client at once with `nodelay` (the
/// default), while the first is still unacknowledged (the client, interactive, delays its
/// ACK); with Nagle on the client connection it waits for that ACK.
fn second_piece_delay(nodelay: bool) -> usize {
    let mut s = spec(vec![server(BACKEND, MANUAL_PORT)], 100, 60_000);
    s.listeners[0].nodelay = nodelay;
    let mut net = Net::new(&s, TcpConfig::default());
    let id = net.connect();
    net.steps(5);
    assert_eq!(net.client.write(id, HeapPayload::from_slice(b"GET /"), WriteFlags::NONE, net.now), Ok(5));
    net.steps(20);
    let b = net.accept_manual().unwrap_or_else(|| panic!("backend connection not accepted"));
    net.step();
    let mut sink = Vec::new();
    let now = net.now;
    Net::read_all(&mut net.backend, b, now, &mut sink);
    // The backend sends small pieces at once too; a first 64 KiB takes the client out
    // of quick-ACK mode (Linux tcp_incr_quickack), so that it delays its ACKs.
    assert_eq!(net.backend.set_nodelay(b, true, net.now), Ok(()));
    let head = pattern(64 * 1024);
    let (mut written, mut got) = (0, Vec::new());
    for _ in 0..2000 {
        if written < head.len() {
            if let Ok(n) = net.backend.write(b, HeapPayload::from_slice(&head[written..]), WriteFlags::NONE, net.now) {
                written += n;
            }
        }
        net.step();
        let now = net.now;
        Net::read_all(&mut net.client, id, now, &mut got);
        if got.len() == head.len() {
            break;
        }
    }
    assert_eq!(got.len(), head.len());
    // The client answers at once, which makes its connection interactive (Linux
    // `tcp_event_data_sent` within the ACK timeout): from now on it holds its ACKs back
    // for a reply to carry, even after reading a short segment (`__tcp_cleanup_rbuf`).
    assert_eq!(net.client.write(id, HeapPayload::from_slice(b"ok"), WriteFlags::NONE, net.now), Ok(2));
    // Let every ACK settle.
    net.steps(300);
    let mut got = Vec::new();
    assert_eq!(net.backend.write(b, HeapPayload::from_slice(&[1u8; 100]), WriteFlags::NONE, net.now), Ok(100));
    for _ in 0..5 {
        net.step();
        let now = net.now;
        Net::read_all(&mut net.client, id, now, &mut got);
    }
    assert_eq!(got.len(), 100, "the first piece is relayed at once either way");
    assert_eq!(net.backend.write(b, HeapPayload::from_slice(&[2u8; 100]), WriteFlags::NONE, net.now), Ok(100));
    for step in 1..200 {
        net.step();
        let now = net.now;
        Net::read_all(&mut net.client, id, now, &mut got);
        if got.len() == 200 {
            return step;
        }
    }
    panic!("the second piece never arrived");
}

#[test]
fn nodelay_relays_a_small_tail_without_waiting_for_an_ack() {
    let fast = second_piece_delay(true);
    let nagle = second_piece_delay(false);
    assert!(fast <= 3, "with nodelay the tail takes {fast} ms");
    assert!(nagle > fast + 10, "Nagle holds the tail for the delayed ACK ({nagle} ms vs {fast} ms)");
}
