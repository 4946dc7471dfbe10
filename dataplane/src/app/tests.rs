//! Echo and sink against a client engine, segments handed across directly (no wire, no
//! loss): data integrity, back-pressure, close handling and connection clean-up.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::*;
use crate::tcp::{HeapPayload, TcpConfig};
use crate::testnet;
use crate::time::Duration;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PORT: u16 = 7;

/// The service engine (with its apps) and a client engine, back to back
/// ([`crate::testnet::Pair`]).
struct Pair {
    net: testnet::Pair<HeapPayload>,
    apps: Apps<HeapPayload>,
}

impl Pair {
    fn new(kind: AppKind, cfg: TcpConfig) -> Pair {
        Pair::with_spec(AppSpec::new(kind, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT)), cfg)
    }

    fn with_spec(spec: AppSpec, cfg: TcpConfig) -> Pair {
        let mut net = testnet::Pair::new(cfg.clone(), cfg, Instant::from_nanos(1_000_000));
        let mut apps = Apps::new();
        assert!(apps.listen(&mut net.server, &spec).is_ok());
        assert_eq!(apps.listen(&mut net.server, &spec).err(), Some(StackError::AddrInUse), "second listen on one address");
        Pair { net, apps }
    }

    /// One round: both engines transmit into each other, the services run, time moves
    /// 1 ms and timers fire. Returns the client's events.
    fn step(&mut self) -> Vec<StackEvent> {
        self.net.client_to_server();
        self.apps.poll(&mut self.net.server, self.net.now);
        self.net.server_to_client();
        self.net.advance(Duration::from_millis(1));
        self.apps.poll(&mut self.net.server, self.net.now);
        self.net.client_events()
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(7) ^ (i >> 9)) as u8).collect()
}

/// Sends `data` from a client, reads back what the service returns (from step
/// `read_from` on), closes; returns the bytes read back and whether the client saw `Closed`.
fn exchange(pair: &mut Pair, data: &[u8], read_from: usize) -> (Vec<u8>, bool) {
    let id = pair.net.client.connect(CLIENT, SocketAddrV4::new(SERVER, PORT), pair.net.now).unwrap_or_else(|e| panic!("{e}"));
    let mut sent = 0;
    let mut got = Vec::new();
    let mut closed = false;
    let mut shut = false;
    for step in 0..200_000 {
        let evs = pair.step();
        if sent < data.len() {
            let end = (sent + 100_000).min(data.len());
            if let Ok(n) = pair.net.client.write(id, HeapPayload::from_slice(&data[sent..end]), WriteFlags::NONE, pair.net.now) {
                sent += n;
            }
        } else if !shut {
            assert!(pair.net.client.shutdown_write(id, pair.net.now).is_ok());
            shut = true;
        }
        if step >= read_from {
            while let Ok(Some(p)) = pair.net.client.read(id, usize::MAX, pair.net.now) {
                if p.is_empty() {
                    break;
                }
                got.extend_from_slice(&p.to_vec());
            }
        }
        for ev in evs {
            if ev == StackEvent::Conn(id, Event::PeerClosed) {
                let _ = pair.net.client.close(id, pair.net.now);
            }
            if matches!(ev, StackEvent::Conn(i, Event::Closed { .. }) if i == id) {
                closed = true;
            }
        }
        if closed && pair.apps.connection_count() == 0 {
            break;
        }
    }
    (got, closed)
}

#[test]
fn echo_returns_every_byte_and_closes_after_the_peer() {
    let mut pair = Pair::new(AppKind::Echo, TcpConfig::default());
    let data = pattern(3 * 1024 * 1024 + 17);
    let (got, closed) = exchange(&mut pair, &data, 0);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed bytes differ");
    assert!(closed, "client connection did not close");
    assert_eq!(pair.apps.connection_count(), 0, "echo released its connection");
    let c = pair.apps.counters();
    assert_eq!((c.accepted, c.closed), (1, 1));
    assert_eq!(c.bytes_read, data.len() as u64);
    assert_eq!(c.bytes_written, data.len() as u64);
    assert_eq!(pair.net.server.connection_count(), 0);
}

#[test]
fn echo_holds_back_when_the_send_buffer_is_full() {
    // A small send buffer and a client that does not read at first: echo must stall
    // (counted) rather than buffer without bound, then resume and deliver everything.
    let cfg = TcpConfig { sndbuf: 16 * 1024, rcvbuf: 16 * 1024, ..TcpConfig::default() };
    let mut pair = Pair::new(AppKind::Echo, cfg);
    let data = pattern(200 * 1024);
    let (got, closed) = exchange(&mut pair, &data, 3000);
    assert!(got == data, "echoed bytes differ ({} of {})", got.len(), data.len());
    assert!(closed);
    assert!(pair.apps.counters().write_stalls > 0, "no back-pressure seen with a 16 KiB send buffer");
}

#[test]
fn sink_discards_and_closes() {
    let mut pair = Pair::new(AppKind::Sink, TcpConfig::default());
    let data = pattern(512 * 1024);
    let (got, closed) = exchange(&mut pair, &data, 0);
    assert!(got.is_empty(), "sink wrote {} bytes", got.len());
    assert!(closed);
    let c = pair.apps.counters();
    assert_eq!(c.bytes_read, data.len() as u64);
    assert_eq!(c.bytes_written, 0);
    assert_eq!((c.accepted, c.closed), (1, 1));
}

#[test]
fn many_connections_are_all_released() {
    let mut pair = Pair::new(AppKind::Echo, TcpConfig::default());
    for i in 0..50 {
        let data = pattern(1000 + i * 37);
        let (got, closed) = exchange(&mut pair, &data, 0);
        assert!(got == data && closed, "connection {i}");
    }
    assert_eq!(pair.apps.counters().accepted, 50);
    assert_eq!(pair.apps.counters().closed, 50);
    assert_eq!(pair.apps.connection_count(), 0);
}

#[test]
fn events_of_unknown_connections_are_ignored() {
    let mut pair = Pair::new(AppKind::Echo, TcpConfig::default());
    let stray = pair.net.client.connect(CLIENT, SocketAddrV4::new(SERVER, 9), pair.net.now).unwrap_or_else(|e| panic!("{e}"));
    let now = pair.net.now;
    pair.apps.handle_event(&mut pair.net.server, StackEvent::Conn(stray, Event::Readable), now);
    pair.apps.handle_event(&mut pair.net.server, StackEvent::Acceptable(ListenerId(99)), now);
    assert_eq!(pair.apps.connection_count(), 0);
    assert_eq!(pair.apps.counters(), &AppCounters::default());
}

/// `max_connections` and `idle_timeout`: before them, any number of peers could open
/// connections to echo or sink and hold them, and their buffers, for ever. A third
/// connection to a 2-connection service is reset at once; of the two, the one that stays
/// silent is reset after the 5 s idle timeout while the one sending a byte a second lives.
#[test]
fn connection_limit_and_idle_timeout() {
    for kind in [AppKind::Echo, AppKind::Sink] {
        let spec = AppSpec {
            max_connections: 2,
            idle_timeout: Duration::from_secs(5),
            ..AppSpec::new(kind, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT))
        };
        let mut p = Pair::with_spec(spec, TcpConfig::default());
        let dst = SocketAddrV4::new(SERVER, PORT);
        let ids: Vec<ConnId> =
            (0..3).map(|_| p.net.client.connect(CLIENT, dst, p.net.now).unwrap_or_else(|e| panic!("{e}"))).collect();
        let mut closed = Vec::new();
        for step in 0..8_000u32 {
            if step % 1000 == 500 {
                let _ = p.net.client.write(ids[0], HeapPayload::from_slice(b"x"), WriteFlags::NONE, p.net.now);
            }
            for ev in p.step() {
                if let StackEvent::Conn(id, Event::Closed { reason }) = ev {
                    closed.push((id, reason, step));
                }
            }
        }
        assert_eq!(p.apps.counters().refused_max_connections, 1, "{kind:?}");
        assert_eq!(p.apps.counters().idle_timeouts, 1, "{kind:?}");
        assert_eq!(p.apps.connection_count(), 1, "{kind:?}: the active one remains");
        assert_eq!(closed.len(), 2, "{kind:?}: {closed:?}");
        assert!(closed.iter().all(|&(id, r, _)| id != ids[0] && r == crate::tcp::CloseReason::Reset), "{kind:?}: {closed:?}");
        let idle_reset = closed.iter().map(|&(_, _, step)| step).max().unwrap_or(0);
        assert!((5_000..5_100).contains(&idle_reset), "{kind:?}: reset at {idle_reset} ms");
    }
}
