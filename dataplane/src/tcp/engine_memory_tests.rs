//! Unit tests of the engine under memory pressure and at the hard memory limit (Linux
//! `tcp_under_memory_pressure`, `tcp_mem[2]`), between two engines joined by a link.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::*;
use crate::tcp::{HeapPayload, WriteFlags};
use crate::testnet;
use crate::time::Duration;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// A client and a server engine (the shared [`crate::testnet::Pair`]), the server
/// listening and accepting everything.
struct Pair {
    net: testnet::Pair<HeapPayload>,
    lid: ListenerId,
    /// Payload bytes the server received.
    delivered: usize,
}

impl Pair {
    fn new() -> Pair {
        let mut net = testnet::Pair::new(TcpConfig::default(), TcpConfig::default(), Instant::from_millis(1));
        let lid = net.server.listen(SocketAddrV4::new(SERVER, 7)).unwrap();
        Pair { net, lid, delivered: 0 }
    }

    /// Rounds of transmitting both ways; returns the client's events.
    fn run(&mut self, rounds: usize) -> Vec<StackEvent> {
        let mut evs = Vec::new();
        for _ in 0..rounds {
            self.delivered += self.net.client_to_server();
            for ev in testnet::events(&mut self.net.server) {
                if ev == StackEvent::Acceptable(self.lid) {
                    while self.net.server.accept(self.lid).is_some() {}
                }
            }
            self.net.server_to_client();
            self.net.advance(Duration::from_millis(1));
            evs.extend(self.net.client_events());
        }
        evs
    }

    fn connect(&mut self) -> (ConnId, Vec<StackEvent>) {
        let id = self.net.client.connect(CLIENT, SocketAddrV4::new(SERVER, 7), self.net.now).unwrap();
        (id, self.run(5))
    }
}

#[test]
fn the_reserve_refuses_syns_with_a_rst_and_pressure_does_not() {
    let mut p = Pair::new();
    assert!(p.net.server.set_memory_pressure(true));
    assert!(!p.net.server.set_memory_pressure(true), "no change, no count");
    assert!(p.net.server.memory_pressure());
    // Under pressure a SYN is still accepted (Linux): the connection gets its share.
    let (id, evs) = p.connect();
    assert!(evs.contains(&StackEvent::Conn(id, Event::Connected)), "{evs:?}");
    // At the pool's reserve it is refused at once, not left hanging.
    p.net.server.set_rx_shedding(true);
    let (id, evs) = p.connect();
    assert!(
        evs.iter().any(|e| matches!(e, StackEvent::Conn(c, Event::Closed { .. }) if *c == id)),
        "refused at once, not left hanging: {evs:?}"
    );
    assert_eq!(p.net.server.connection_count(), 1);
    let c = p.net.server.counters();
    assert_eq!((c.memory_pressures, c.memory_pressure_refused), (1, 1));
    p.net.server.set_rx_shedding(false);
    assert!(p.net.server.set_memory_pressure(false));
    let (id, evs) = p.connect();
    assert!(evs.contains(&StackEvent::Conn(id, Event::Connected)), "{evs:?}");
    assert_eq!(p.net.server.counters().memory_pressures, 1, "leaving is not counted");
}

/// Bytes one connection may queue with nothing acknowledged, and the writes refused,
/// without pressure or under pressure with `budget` for all connections.
fn queued_before_refusal(budget: Option<usize>) -> (usize, u64) {
    let mut p = Pair::new();
    let (id, evs) = p.connect();
    assert!(evs.contains(&StackEvent::Conn(id, Event::Connected)), "{evs:?}");
    if let Some(b) = budget {
        p.net.client.set_memory_pressure(true);
        // The share is the limit over the connections; others hold nothing.
        p.net.client.set_memory_account(MemoryAccount { limit: b, foreign: 0, connections: 1 });
    }
    let mut queued = 0;
    while let Ok(n) = p.net.client.write(id, HeapPayload::from(vec![7u8; 16 * 1024]), WriteFlags::default(), p.net.now) {
        queued += n;
    }
    let c = p.net.client.counters();
    (queued, c.sndbuf_full + c.memory_pressure_write_limited)
}

#[test]
fn pressure_limits_what_a_connection_queues_to_its_share() {
    let (free, _) = queued_before_refusal(None);
    assert!(free >= 512 * 1024, "the whole send buffer without pressure: {free}");
    // One connection: its share is the whole budget. Each write may take half of what
    // is left of it, so a burst of large writes approaches the share without passing it.
    let (pressed, refused) = queued_before_refusal(Some(64 * 1024));
    assert!((48 * 1024..=64 * 1024).contains(&pressed), "about the share: {pressed}");
    assert_eq!(refused, 1, "the refusal is counted");
    // A tiny share still lets a connection queue the minimum every one keeps.
    let (minimum, _) = queued_before_refusal(Some(1));
    assert!(minimum > 0, "at least one write under the smallest share");
}

/// Bytes a client gets into a server that never reads, with or without pressure.
fn unread_bytes_accepted(pressure: bool) -> usize {
    let mut p = Pair::new();
    let (id, evs) = p.connect();
    assert!(evs.contains(&StackEvent::Conn(id, Event::Connected)), "{evs:?}");
    p.net.server.set_memory_pressure(pressure);
    p.delivered = 0;
    for _ in 0..200 {
        let _ = p.net.client.write(id, HeapPayload::from(vec![7u8; 16 * 1024]), WriteFlags::default(), p.net.now);
        p.run(2);
    }
    p.delivered
}

#[test]
fn pressure_stops_receive_windows_from_opening() {
    let normal = unread_bytes_accepted(false);
    let pressed = unread_bytes_accepted(true);
    // Without pressure the window opens to rcvbuf; with it, only what was already
    // advertised (a window never shrinks) plus at most two segments is taken.
    assert!(pressed < normal / 2, "pressure {pressed} vs normal {normal}");
    assert!(pressed <= 65_535 + 2 * 1460 + 1460, "{pressed} bytes taken under pressure");
}

#[test]
fn the_engine_sums_what_its_connections_hold_and_gives_it_back() {
    let mut p = Pair::new();
    let (id, _) = p.connect();
    assert_eq!(p.net.client.buffer_bytes(), 0);
    let n = p.net.client.write(id, HeapPayload::from(vec![7u8; 40_000]), WriteFlags::default(), p.net.now).unwrap();
    assert_eq!(n, 40_000);
    assert!(p.net.client.buffer_bytes() >= 40_000, "queued for sending: {}", p.net.client.buffer_bytes());
    p.run(20);
    // Acknowledged on the client; held unread on the server.
    assert_eq!(p.net.client.buffer_bytes(), 0);
    let held = p.net.server.buffer_bytes();
    assert!(held >= 40_000, "unread on the server: {held}");
    let sid = p.net.server.connections().next().unwrap().id;
    let mut read = 0;
    while let Ok(Some(d)) = p.net.server.read(sid, usize::MAX, p.net.now) {
        read += d.len();
    }
    assert_eq!((read, p.net.server.buffer_bytes()), (40_000, 0));
    // Unread text of a connection that is reset goes with it.
    let _ = p.net.client.write(id, HeapPayload::from(vec![7u8; 8_000]), WriteFlags::default(), p.net.now);
    p.run(5);
    assert!(p.net.server.buffer_bytes() > 0);
    p.net.server.abort(sid, p.net.now).unwrap();
    assert_eq!(p.net.server.buffer_bytes(), 0);
}

/// An account whose other engines already hold the whole limit.
const OVER: MemoryAccount = MemoryAccount { limit: 1 << 20, foreign: 1 << 20, connections: 2 };

#[test]
fn at_the_hard_limit_writes_stop_at_the_minimum() {
    let mut p = Pair::new();
    let (id, _) = p.connect();
    p.net.client.set_memory_account(OVER);
    let mut queued = 0;
    while let Ok(n) = p.net.client.write(id, HeapPayload::from(vec![7u8; 1_000]), WriteFlags::default(), p.net.now) {
        queued += n;
    }
    // `tcp_wmem[0]`: the minimum every connection keeps, and no more.
    assert!((1..=super::super::connection::SHED_MIN_WMEM + 1_000).contains(&queued), "{queued}");
    assert_eq!(p.net.client.send_space(id), Ok(0), "nothing more is offered either");
    assert_eq!(p.net.client.counters().memory_limited, 1);
    // Below the limit again, the connection queues its send buffer.
    p.net.client.set_memory_account(MemoryAccount { foreign: 0, ..OVER });
    assert!(p.net.client.write(id, HeapPayload::from(vec![7u8; 1_000]), WriteFlags::default(), p.net.now).is_ok());
}

#[test]
fn at_the_hard_limit_unread_text_is_dropped_but_an_empty_queue_takes_one_segment() {
    let mut p = Pair::new();
    let (id, _) = p.connect();
    p.net.server.set_memory_account(OVER);
    p.delivered = 0;
    let _ = p.net.client.write(id, HeapPayload::from(vec![7u8; 20_000]), WriteFlags::default(), p.net.now);
    p.run(3);
    // The first segment lands in the empty queue (Linux `tcp_data_queue` forces
    // `sk_forced_mem_schedule` then, so a connection always progresses); what follows it
    // while unread is dropped, counted, and retransmitted later.
    let sid = p.net.server.connections().next().unwrap().id;
    let unread = p.net.server.info(sid).unwrap();
    assert!(p.delivered > 1_460, "the client sent its window: {}", p.delivered);
    assert!(p.net.server.buffer_bytes() > 0 && p.net.server.buffer_bytes() <= 4 * 1_460, "{unread:?}");
    let c = p.net.server.counters();
    // Behind the first drop the rest arrives out of order and goes too.
    assert!(c.rcvq_drop > 0 && c.memory_limited == c.rcvq_drop + c.ofo_drop, "{c:?}");
    // Once the others give their buffers back, everything arrives.
    p.net.server.set_memory_account(MemoryAccount { foreign: 0, ..OVER });
    let mut read = 0;
    for _ in 0..400 {
        while let Ok(Some(d)) = p.net.server.read(sid, usize::MAX, p.net.now) {
            read += d.len();
        }
        p.run(1);
        p.net.now += Duration::from_millis(50);
    }
    assert_eq!(read, 20_000);
}
