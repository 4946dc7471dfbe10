//! The proxy's commands through a real lcore queue ([`crate::command`], the proxy as its
//! application) to a proxy between three engines (client, proxy, backends; segments routed
//! by destination address): drain, reload, admin state, the admin view, active health
//! checks and passive ejection.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc::sync_channel;

use std::sync::atomic::Ordering;

use super::*;
use crate::app::proxy::admin::{AdminState, ConnPage, HealthState, LcoreView, ProxyCommand};
use crate::app::proxy::{Algorithm, CheckSpec, ListenerSpec, PoolHealth, PoolSpec, ServerSpec};
use crate::app::{AppKind, AppSpec};
use crate::command::{channel, poll, Command, Handle, Inbox};
use crate::tcp::{CloseReason, ConnId, Event, HeapPayload, StackEvent, TcpConfig, WriteFlags};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const FRONT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const BACK: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);
const PORT: u16 = 80;
const ECHO: u16 = 8080;
/// Nothing listens here: connections are refused.
const CLOSED: u16 = 8081;

type Seg = crate::testnet::InFlight<HeapPayload>;

fn server(ip: Ipv4Addr, port: u16) -> ServerSpec {
    ServerSpec { addr: SocketAddr::from((ip, port)), local_ip: BACK.into(), weight: 1, max_connections: None }
}

fn listener(name: &str, port: u16, pool: usize) -> ListenerSpec {
    ListenerSpec {
        name: name.into(),
        listen: SocketAddr::from((FRONT, port)),
        pool,
        max_connections: 100,
        connect_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(60),
        nodelay: true,
        keepalive: None,
    }
}

fn spec(servers: Vec<ServerSpec>) -> ProxySpec {
    ProxySpec {
        listeners: vec![listener("front", PORT, 0)],
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

struct Net {
    client: Engine<HeapPayload>,
    proxy: Engine<HeapPayload>,
    apps: Apps<HeapPayload>,
    backend: Engine<HeapPayload>,
    backend_apps: Apps<HeapPayload>,
    handle: Handle<ProxyCommand>,
    inbox: Inbox<ProxyCommand>,
    events: Vec<StackEvent>,
    now: Instant,
}

impl Net {
    fn new(spec: &ProxySpec) -> Net {
        let now = Instant::from_nanos(1_000_000);
        let mut proxy = Engine::new(TcpConfig::default(), [1; 16], now);
        let mut apps = Apps::new();
        apps.proxy_mut().set_payload_factory(heap_factory());
        assert_eq!(apps.start_proxy(&mut proxy, spec), Ok(()));
        let mut backend = Engine::new(TcpConfig::default(), [3; 16], now);
        let mut backend_apps = Apps::new();
        for ip in [A, B] {
            let echo = AppSpec::new(AppKind::Echo, SocketAddr::from((ip, ECHO)));
            assert!(backend_apps.listen(&mut backend, &echo).is_ok());
        }
        let (handle, inbox) = channel(3);
        Net {
            client: Engine::new(TcpConfig::default(), [2; 16], now),
            proxy,
            apps,
            backend,
            backend_apps,
            handle,
            inbox,
            events: Vec::new(),
            now,
        }
    }

    fn route(&mut self, segs: Vec<Seg>) {
        for f in segs {
            let e = match f.1 {
                IpAddr::V4(CLIENT) => &mut self.client,
                IpAddr::V4(FRONT | BACK) => &mut self.proxy,
                IpAddr::V4(A | B) => &mut self.backend,
                _ => continue,
            };
            crate::testnet::deliver(e, f, self.now);
        }
    }

    fn transmit(&mut self) {
        let out = crate::testnet::transmit(&mut [&mut self.client, &mut self.proxy, &mut self.backend], self.now);
        self.route(out);
    }

    /// One millisecond: deliver, run the lcore's control poll and the services, timers.
    fn step(&mut self) {
        self.transmit();
        poll(&mut self.inbox, &mut self.proxy, self.apps.proxy_mut(), self.now);
        self.apps.poll(&mut self.proxy, self.now);
        self.backend_apps.poll(&mut self.backend, self.now);
        self.transmit();
        self.now += Duration::from_millis(1);
        crate::testnet::fire_timers(&mut [&mut self.client, &mut self.proxy, &mut self.backend], self.now);
        while let Some(ev) = self.client.poll_event() {
            self.events.push(ev);
        }
    }

    fn steps(&mut self, n: usize) {
        for _ in 0..n {
            self.step();
        }
    }

    fn connect(&mut self, port: u16) -> ConnId {
        self.client.connect(CLIENT, SocketAddr::from((FRONT, port)), self.now).unwrap_or_else(|e| panic!("{e}"))
    }

    fn closed(&self, id: ConnId) -> Option<CloseReason> {
        self.events.iter().find_map(|e| match e {
            StackEvent::Conn(i, Event::Closed { reason }) if *i == id => Some(*reason),
            _ => None,
        })
    }

    /// Writes `data` on `id` and reads until as many bytes came back (the echo).
    fn echo(&mut self, id: ConnId, data: &[u8]) -> Vec<u8> {
        let n = self.client.write(id, HeapPayload::from_slice(data), WriteFlags::NONE, self.now);
        assert_eq!(n.ok(), Some(data.len()));
        let mut got = Vec::new();
        for _ in 0..200 {
            self.step();
            while let Ok(Some(p)) = self.client.read(id, usize::MAX, self.now) {
                if p.is_empty() {
                    break;
                }
                got.extend_from_slice(&p.to_vec());
            }
            if got.len() >= data.len() {
                break;
            }
        }
        got
    }

    /// A proxy command.
    fn send(&mut self, cmd: ProxyCommand) {
        self.send_lcore(Command::App(cmd));
    }

    /// An lcore command (drain).
    fn send_lcore(&mut self, cmd: Command<ProxyCommand>) {
        assert_eq!(self.handle.send(cmd), Ok(()));
    }

    fn show(&mut self, connections: bool) -> LcoreView {
        self.show_page(connections.then_some(ConnPage::FIRST))
    }

    fn show_page(&mut self, connections: Option<ConnPage>) -> LcoreView {
        let (tx, rx) = sync_channel(1);
        self.send(ProxyCommand::Show { connections, reply: tx });
        self.step();
        rx.try_recv().unwrap_or_else(|e| panic!("no view: {e}"))
    }

    /// Prepare, then commit when prepared (as the control plane does with one lcore).
    fn reload(&mut self, spec: ProxySpec, ops: OpsSpec) -> Result<(), String> {
        let (tx, rx) = sync_channel(1);
        self.send(ProxyCommand::PrepareReload { spec, ops, reply: tx });
        self.step();
        let r = rx.try_recv().unwrap_or_else(|e| panic!("no reply: {e}"));
        self.send(if r.is_ok() { ProxyCommand::CommitReload } else { ProxyCommand::AbortReload });
        self.step();
        r
    }

    fn set_server(&mut self, addr: SocketAddr, state: AdminState) -> Result<(), String> {
        let (tx, rx) = sync_channel(1);
        self.send(ProxyCommand::SetServer { pool: "web".into(), addr, state, reply: tx });
        self.step();
        rx.try_recv().unwrap_or_else(|e| panic!("no reply: {e}"))
    }

    /// Per-server active sessions as the admin view reports them.
    fn active(&mut self) -> Vec<(SocketAddr, u64, bool)> {
        self.show(false).servers.iter().map(|s| (s.addr, s.active, s.configured)).collect()
    }
}

#[test]
fn drain_refuses_new_connections_and_lets_sessions_finish() {
    let mut net = Net::new(&spec(vec![server(A, ECHO)]));
    let old = net.connect(PORT);
    assert_eq!(net.echo(old, b"before"), b"before");
    net.send_lcore(Command::Drain { timeout: Duration::from_secs(5) });
    net.steps(2);
    assert!(net.handle.status().draining.load(Ordering::Relaxed));
    assert!(!net.apps.proxy().accepting());
    // A new client is refused (RST to its SYN: no listener).
    let new = net.connect(PORT);
    net.steps(20);
    assert_eq!(net.closed(new), Some(CloseReason::Refused));
    // The established session keeps flowing until the client is done.
    assert_eq!(net.echo(old, b"during drain"), b"during drain");
    assert!(!net.handle.status().drained.load(Ordering::Relaxed));
    assert!(net.client.close(old, net.now).is_ok());
    net.steps(50);
    assert_eq!(net.closed(old), Some(CloseReason::Normal));
    assert!(net.handle.status().drained.load(Ordering::Relaxed), "no session left: drained");
    assert_eq!(net.handle.status().drain_resets.load(Ordering::Relaxed), 0);
}

#[test]
fn drain_deadline_resets_what_is_left() {
    let mut net = Net::new(&spec(vec![server(A, ECHO)]));
    let id = net.connect(PORT);
    assert_eq!(net.echo(id, b"x"), b"x");
    net.send_lcore(Command::Drain { timeout: Duration::from_millis(50) });
    net.steps(40);
    assert_eq!(net.closed(id), None, "before the deadline the session lives");
    net.steps(30);
    assert_eq!(net.closed(id), Some(CloseReason::Reset), "the client sees a reset");
    assert!(net.handle.status().drained.load(Ordering::Relaxed));
    assert_eq!(net.handle.status().drain_resets.load(Ordering::Relaxed), 1);
    let refused = net.reload(spec(vec![server(A, ECHO)]), OpsSpec::default());
    assert!(refused.is_err_and(|e| e.contains("draining")), "no reload while draining");
}

#[test]
fn reload_moves_new_sessions_and_keeps_old_ones_flowing() {
    let mut net = Net::new(&spec(vec![server(A, ECHO)]));
    let old = net.connect(PORT);
    assert_eq!(net.echo(old, b"to A"), b"to A");
    assert_eq!(net.reload(spec(vec![server(B, ECHO)]), OpsSpec::default()), Ok(()));
    // The old session still moves data, on A, which is listed as removed.
    assert_eq!(net.echo(old, b"still A"), b"still A");
    let a = SocketAddr::from((A, ECHO));
    let b = SocketAddr::from((B, ECHO));
    assert_eq!(net.active(), vec![(b, 0, true), (a, 1, false)]);
    // New sessions go to B only.
    let new = net.connect(PORT);
    assert_eq!(net.echo(new, b"to B"), b"to B");
    assert_eq!(net.active(), vec![(b, 1, true), (a, 1, false)]);
    // Once A's session ends, a later reload forgets A.
    assert!(net.client.close(old, net.now).is_ok());
    net.steps(50);
    assert_eq!(net.reload(spec(vec![server(B, ECHO)]), OpsSpec::default()), Ok(()));
    assert_eq!(net.active(), vec![(b, 1, true)]);
    let stats = net.apps.proxy_stats();
    assert_eq!(stats.listeners.len(), 1);
    assert_eq!(stats.listeners[0].total, 2, "the listener kept its counters");
}

#[test]
fn reload_adds_and_removes_listeners() {
    let mut net = Net::new(&spec(vec![server(A, ECHO)]));
    let old = net.connect(PORT);
    assert_eq!(net.echo(old, b"a"), b"a");
    let mut next = spec(vec![server(A, ECHO)]);
    next.listeners = vec![listener("other", 81, 0)];
    assert_eq!(net.reload(next, OpsSpec::default()), Ok(()));
    let view = net.show(false);
    let names: Vec<(&str, bool)> = view.listeners.iter().map(|l| (l.name.as_str(), l.open)).collect();
    assert_eq!(names, vec![("other", true), ("front", false)], "front stays, closed, while its session lives");
    let refused = net.connect(PORT);
    let fresh = net.connect(81);
    assert_eq!(net.echo(fresh, b"new listener"), b"new listener");
    assert_eq!(net.closed(refused), Some(CloseReason::Refused));
    assert_eq!(net.echo(old, b"old listener's session"), b"old listener's session");
}

#[test]
fn a_prepared_reload_changes_nothing_until_committed_and_an_abort_undoes_it() {
    let mut net = Net::new(&spec(vec![server(A, ECHO)]));
    let a = SocketAddr::from((A, ECHO));
    let mut next = spec(vec![server(B, ECHO)]);
    next.listeners.push(listener("other", 81, 0));
    let (tx, rx) = sync_channel(1);
    net.send(ProxyCommand::PrepareReload { spec: next.clone(), ops: OpsSpec::default(), reply: tx });
    net.step();
    assert_eq!(rx.try_recv().ok(), Some(Ok(())));
    // Prepared, not applied: new sessions still go to A.
    let s = net.connect(PORT);
    assert_eq!(net.echo(s, b"still A"), b"still A");
    assert_eq!(net.active(), vec![(a, 1, true)]);
    net.send(ProxyCommand::AbortReload);
    net.step();
    assert_eq!(net.active(), vec![(a, 1, true)]);
    let refused = net.connect(81);
    net.steps(20);
    assert_eq!(net.closed(refused), Some(CloseReason::Refused), "the aborted reload's listener is closed again");
    // A commit without a prepared reload does nothing; prepare + commit applies.
    net.send(ProxyCommand::CommitReload);
    net.step();
    assert_eq!(net.active(), vec![(a, 1, true)]);
    assert_eq!(net.reload(next, OpsSpec::default()), Ok(()));
    let fresh = net.connect(81);
    assert_eq!(net.echo(fresh, b"to B"), b"to B");
}

#[test]
fn an_invalid_reload_changes_nothing() {
    let mut net = Net::new(&spec(vec![server(A, ECHO)]));
    let mut next = spec(vec![server(B, ECHO)]);
    // Two listeners on one address: the engine refuses the second.
    next.listeners.push(ListenerSpec { name: "dup".into(), ..listener("x", 82, 0) });
    next.listeners.push(ListenerSpec { name: "dup2".into(), ..listener("x", 82, 0) });
    let err = net.reload(next, OpsSpec::default());
    assert!(err.as_ref().is_err_and(|e| e.contains("dup2")), "{err:?}");
    let mut zero = spec(vec![ServerSpec { weight: 0, ..server(B, ECHO) }]);
    zero.pools[0].name = "web".into();
    assert!(net.reload(zero, OpsSpec::default()).is_err_and(|e| e.contains("zero total weight")));
    // Still the old configuration: port 82 refuses, port 80 reaches A.
    let c = net.connect(82);
    let ok = net.connect(PORT);
    assert_eq!(net.echo(ok, b"A"), b"A");
    assert_eq!(net.closed(c), Some(CloseReason::Refused));
    assert_eq!(net.active()[0], (SocketAddr::from((A, ECHO)), 1, true));
}

#[test]
fn a_drained_server_gets_no_new_sessions_until_enabled() {
    let mut net = Net::new(&spec(vec![server(A, ECHO), server(B, ECHO)]));
    let a = SocketAddr::from((A, ECHO));
    let b = SocketAddr::from((B, ECHO));
    assert_eq!(net.set_server(a, AdminState::Drain), Ok(()));
    let ids: Vec<ConnId> = (0..4).map(|_| net.connect(PORT)).collect();
    net.steps(20);
    assert_eq!(net.active(), vec![(a, 0, true), (b, 4, true)]);
    assert_eq!(net.show(false).servers[0].admin, AdminState::Drain);
    assert_eq!(net.set_server(a, AdminState::Enabled), Ok(()));
    let more: Vec<ConnId> = (0..4).map(|_| net.connect(PORT)).collect();
    net.steps(20);
    assert!(net.active()[0].1 >= 2, "A takes sessions again: {:?}", net.active());
    let unknown = net.set_server(SocketAddr::from((A, 1)), AdminState::Drain);
    assert!(unknown.is_err_and(|e| e.contains("no server")));
    assert_eq!(ids.len() + more.len(), 8);
}

#[test]
fn show_lists_every_connection_with_its_tcp_state() {
    let mut net = Net::new(&spec(vec![server(A, ECHO)]));
    let id = net.connect(PORT);
    assert_eq!(net.echo(id, b"hello"), b"hello");
    let view = net.show(true);
    assert_eq!(view.lcore, 3);
    assert_eq!(view.sessions, 1);
    assert_eq!(view.connections.len(), 2);
    let client = &view.connections[0];
    assert_eq!((client.side, client.state.as_str()), ("client", "ESTABLISHED"));
    assert_eq!(client.local, SocketAddr::from((FRONT, PORT)));
    assert_eq!(client.remote.ip(), CLIENT);
    assert_eq!(client.bytes_received, 5);
    assert!(client.cwnd > 0 && client.srtt.is_some());
    let backend = &view.connections[1];
    assert_eq!((backend.side, backend.remote), ("backend", SocketAddr::from((A, ECHO))));
    assert_eq!(backend.local.ip(), BACK);
    assert_eq!(backend.bytes_acked, 5);
    assert!(net.show(false).connections.is_empty());
    assert!(!view.more, "one session: the page is not cut");
}

/// `show connections` pages: a page holds at most `limit` sessions (both connections of
/// each), in id order after the cursor, and says whether more follow.
#[test]
fn show_pages_through_the_sessions() {
    let mut net = Net::new(&spec(vec![server(A, ECHO)]));
    let ids: Vec<ConnId> = (0..5).map(|_| net.connect(PORT)).collect();
    for &id in &ids {
        assert_eq!(net.echo(id, b"x"), b"x");
    }
    let mut seen: Vec<u64> = Vec::new();
    let mut after = None;
    for page in 0..3 {
        let view = net.show_page(Some(ConnPage { after, limit: 2 }));
        assert_eq!(view.sessions, 5);
        let sessions: Vec<u64> = view.connections.iter().map(|c| c.session).collect();
        let mut distinct = sessions.clone();
        distinct.dedup();
        assert_eq!(sessions.len(), 2 * distinct.len(), "both sides of each session: {sessions:?}");
        assert_eq!(distinct.len(), if page < 2 { 2 } else { 1 }, "page {page}: {sessions:?}");
        assert!(distinct.windows(2).all(|w| w[0] < w[1]), "id order: {distinct:?}");
        assert!(after.is_none_or(|a| distinct[0] > a), "after the cursor");
        assert_eq!(view.more, page < 2, "page {page} says whether more follow");
        seen.extend(&distinct);
        after = distinct.last().copied();
    }
    assert_eq!(seen.len(), 5, "every session once: {seen:?}");
    // Past the end: nothing, and nothing more.
    let view = net.show_page(Some(ConnPage { after, limit: 2 }));
    assert!(view.connections.is_empty() && !view.more);
    // A limit of 0 still shows one session; a huge one is clamped.
    let view = net.show_page(Some(ConnPage { after: None, limit: 0 }));
    assert_eq!((view.connections.len(), view.more), (2, true));
    let view = net.show_page(Some(ConnPage { after: None, limit: usize::MAX }));
    assert_eq!((view.connections.len(), view.more), (10, false));
}

fn checks(fall: u32, rise: u32) -> OpsSpec {
    let check = CheckSpec {
        interval: Duration::from_millis(20),
        timeout: Duration::from_millis(10),
        rise,
        fall,
        send: Vec::new(),
        expect: Vec::new(),
    };
    OpsSpec { pools: vec![PoolHealth { check: Some(check), ..PoolHealth::default() }], access_log: false }
}

#[test]
fn active_checks_take_a_refusing_server_down_and_bring_it_back() {
    let mut net = Net::new(&spec(vec![server(A, CLOSED), server(B, ECHO)]));
    net.send(ProxyCommand::Configure(checks(3, 2)));
    // Checks at 0, 20, 40 ms fail: down after the third (fall x interval, plus the
    // 5 ms health poll).
    net.steps(50);
    let view = net.show(false);
    assert_eq!(view.servers[0].health, HealthState::Down, "{view:?} {:?}", net.apps.proxy().backend_health());
    assert_eq!(view.servers[1].health, HealthState::Up);
    assert!(view.servers.iter().all(|s| s.checking), "the only lcore checks every server: {view:?}");
    let health = net.apps.proxy().backend_health();
    assert!(health[0].checks_failed >= 3 && !health[0].up && health[0].went_down == 1, "{health:?}");
    let published = net.apps.proxy().shared().health();
    assert_eq!(published.len(), 2, "published for the control plane");
    assert_eq!((published[0].pool.as_str(), published[0].addr), ("web", Some(SocketAddr::from((A, CLOSED)))));
    assert!(!published[0].up && published[1].up);
    assert!(health[1].checks_passed >= 2 && health[1].up);
    // Every new session goes to B, none is even tried on A.
    for _ in 0..4 {
        let id = net.connect(PORT);
        assert_eq!(net.echo(id, b"ok"), b"ok");
    }
    assert_eq!(net.apps.proxy_stats().servers[0].attempts, 0);
    // A starts listening: two passing checks bring it back.
    let echo = AppSpec::new(AppKind::Echo, SocketAddr::from((A, CLOSED)));
    assert!(net.backend_apps.listen(&mut net.backend, &echo).is_ok());
    net.steps(45);
    assert_eq!(net.show(false).servers[0].health, HealthState::Up);
}

#[test]
fn checks_with_expect_need_the_right_reply() {
    let mut net = Net::new(&spec(vec![server(A, ECHO)]));
    let mut ops = checks(1, 1);
    if let Some(c) = ops.pools[0].check.as_mut() {
        c.send = b"PING".to_vec();
        c.expect = b"PONG".to_vec();
    }
    net.send(ProxyCommand::Configure(ops.clone()));
    net.steps(15);
    // The echo server answers PING: wrong reply, down.
    assert_eq!(net.show(false).servers[0].health, HealthState::Down);
    if let Some(c) = ops.pools[0].check.as_mut() {
        c.expect = b"PI".to_vec();
    }
    assert_eq!(net.reload(spec(vec![server(A, ECHO)]), ops), Ok(()));
    net.steps(30);
    assert_eq!(net.show(false).servers[0].health, HealthState::Up);
}

#[test]
fn failed_connects_eject_a_server_for_the_recovery_time() {
    let mut net = Net::new(&spec(vec![server(A, CLOSED), server(B, ECHO)]));
    let ops = OpsSpec {
        pools: vec![PoolHealth { check: None, passive_failures: 2, passive_recovery: Duration::from_millis(500) }],
        access_log: false,
    };
    net.send(ProxyCommand::Configure(ops));
    // Round robin sends every other session to A first; the retry hides it.
    for _ in 0..4 {
        let id = net.connect(PORT);
        assert_eq!(net.echo(id, b"ok"), b"ok");
    }
    let health = net.apps.proxy().backend_health();
    assert_eq!((health[0].ejections, health[0].ejected_lcores), (1, 1), "{health:?}");
    assert!(health[0].up, "ejection is not the checks' verdict");
    let view = net.show(false);
    assert!(view.servers[0].ejected && !view.servers[1].ejected, "{view:?}");
    let tried = net.apps.proxy_stats().servers[0].attempts;
    for _ in 0..4 {
        let id = net.connect(PORT);
        assert_eq!(net.echo(id, b"ok"), b"ok");
    }
    assert_eq!(net.apps.proxy_stats().servers[0].attempts, tried, "ejected: not tried");
    net.steps(500);
    assert!(net.apps.proxy().server_available(0, net.now), "back after the recovery time");
    assert_eq!(net.apps.proxy().backend_health()[0].ejected_lcores, 0, "its unit given back");
    assert!(!net.show(false).servers[0].ejected);
}
