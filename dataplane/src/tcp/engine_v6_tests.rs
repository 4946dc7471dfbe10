//! The engine over IPv6 (`tcp_v6_rcv`, `tcp_v6_connect`, `tcp_v6_err`): segments carried
//! as bytes with the IPv6 pseudo-header checksum, handshakes, SYN cookies and
//! "packet too big", beside the IPv4 behaviour they must not change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use super::*;
use crate::tcp::{Event, HeapPayload};
use crate::testnet::{events, fire_timers, transmit, CLIENT_KEY, SERVER_KEY};
use crate::time::Duration;

const SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const PORT: u16 = 7;

fn server_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V6(SERVER), PORT)
}

struct Net {
    client: Engine<HeapPayload>,
    server: Engine<HeapPayload>,
    now: Instant,
    /// Segments seen on the wire, as (source, destination, TCP bytes).
    seen: Vec<(IpAddr, IpAddr, Vec<u8>)>,
}

impl Net {
    fn new(server_cfg: TcpConfig) -> Net {
        let now = Instant::from_millis(1);
        Net {
            client: Engine::new(TcpConfig::default(), CLIENT_KEY, now),
            server: Engine::new(server_cfg, SERVER_KEY, now),
            now,
            seen: Vec::new(),
        }
    }

    /// Everything `from` sends, as bytes with the checksum of its family, into `to`
    /// through [`Engine::handle_datagram`] (software verification).
    fn carry(from: &mut Engine<HeapPayload>, to: &mut Engine<HeapPayload>, now: Instant, seen: &mut Vec<(IpAddr, IpAddr, Vec<u8>)>) {
        for (src, dst, seg) in transmit(&mut [from], now) {
            let bytes = bytes_of(src, dst, &seg);
            seen.push((src, dst, bytes.clone()));
            assert_eq!(to.handle_datagram(src, dst, HeapPayload::from_slice(&bytes), false, now), Ok(()));
        }
    }

    fn step(&mut self) {
        Net::carry(&mut self.client, &mut self.server, self.now, &mut self.seen);
        Net::carry(&mut self.server, &mut self.client, self.now, &mut self.seen);
        self.now += Duration::from_millis(1);
        fire_timers(&mut [&mut self.server, &mut self.client], self.now);
    }
}

fn bytes_of(src: IpAddr, dst: IpAddr, seg: &Segment<HeapPayload>) -> Vec<u8> {
    let hlen = seg.repr.header_len();
    let mut buf = vec![0u8; hlen];
    assert_eq!(seg.repr.emit(&mut buf), hlen);
    for c in seg.payload.chunks() {
        buf.extend_from_slice(c);
    }
    wire_tcp::fill_checksum(&mut buf, src, dst);
    buf
}

/// A v6 connection: (client id, server id).
fn connect(net: &mut Net, lid: ListenerId) -> (ConnId, ConnId) {
    let id = net.client.connect(CLIENT, server_addr(), net.now).unwrap_or_else(|e| panic!("{e}"));
    let mut sid = None;
    for _ in 0..5 {
        net.step();
        if sid.is_none() && events(&mut net.server).contains(&StackEvent::Acceptable(lid)) {
            sid = net.server.accept(lid);
        }
    }
    assert!(events(&mut net.client).contains(&StackEvent::Conn(id, Event::Connected)), "the client connected");
    (id, sid.unwrap_or_else(|| panic!("the server accepted")))
}

fn read_all(e: &mut Engine<HeapPayload>, id: ConnId, now: Instant) -> Vec<u8> {
    let mut got = Vec::new();
    while let Ok(Some(p)) = e.read(id, 1 << 20, now) {
        got.extend_from_slice(&p.to_vec());
    }
    got
}

#[test]
fn a_v6_connection_carries_bytes_both_ways_with_v6_checksums_and_mss() {
    let mut net = Net::new(TcpConfig::default());
    let lid = net.server.listen(server_addr()).unwrap_or_else(|e| panic!("{e}"));
    let (id, sid) = connect(&mut net, lid);
    assert_eq!(net.server.addresses(sid), Ok((server_addr(), SocketAddr::new(IpAddr::V6(CLIENT), net.client.addresses(id).map(|(l, _)| l.port()).unwrap_or(0)))));
    // The SYN announces the IPv6 MSS: the MTU less 60 (1460 - 20 for a 1500-byte link).
    let (_, _, syn) = net.seen.first().cloned().unwrap_or_else(|| panic!("a SYN"));
    let syn = TcpRepr::parse(&Packet::new_checked(&syn[..]).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    assert!(syn.flags.contains(Flags::SYN));
    assert_eq!(syn.options.mss, Some(1440));
    assert_eq!(net.client.info(id).map(|i| i.snd_mss), Ok(1440));
    assert_eq!(net.client.info(id).map(|i| i.path_mtu), Ok(1500), "the path MTU is the link's");
    // Every segment went v6 to v6 and verifies with the v6 pseudo-header only.
    for (s, d, b) in &net.seen {
        assert!(s.is_ipv6() && d.is_ipv6());
        assert!(wire_tcp::verify_checksum(b, *s, *d));
        assert!(!wire_tcp::verify_checksum(b, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)));
    }
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    for _ in 0..200 {
        if sent < data.len() {
            sent += net.client.write(id, HeapPayload::from_slice(&data[sent..]), WriteFlags::NONE, net.now).unwrap_or(0);
        }
        net.step();
        got.extend(read_all(&mut net.server, sid, net.now));
    }
    assert_eq!(got, data, "client to server, intact");
    assert_eq!(net.server.write(sid, HeapPayload::from_slice(b"pong"), WriteFlags::NONE, net.now), Ok(4));
    net.step();
    net.step();
    assert_eq!(read_all(&mut net.client, id, net.now), b"pong");
    assert_eq!(net.server.counters().in_csum_errors, 0);
}

#[test]
fn a_segment_with_a_v4_pseudo_header_checksum_is_refused_over_v6() {
    let mut e: Engine<HeapPayload> = Engine::new(TcpConfig::default(), SERVER_KEY, Instant::from_millis(1));
    let syn = TcpRepr {
        src_port: 40_000,
        dst_port: PORT,
        seq: SeqNum(1),
        ack: SeqNum(0),
        flags: Flags::SYN,
        window: 1000,
        urgent: 0,
        options: TcpOptions::default(),
    };
    let mut b = vec![0u8; syn.header_len()];
    syn.emit(&mut b);
    wire_tcp::fill_checksum(&mut b, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let r = e.handle_datagram(CLIENT, SERVER, HeapPayload::from_slice(&b), false, Instant::from_millis(1));
    assert_eq!(r, Err(InputError::Checksum));
    assert_eq!(e.counters().in_csum_errors, 1);
}

#[test]
fn wildcard_listeners_are_per_family() {
    let mut net = Net::new(TcpConfig::default());
    // A `0.0.0.0` listener does not take v6: the SYN is answered with a RST.
    let v4_any = net.server.listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT)).unwrap_or_else(|e| panic!("{e}"));
    let id = net.client.connect(CLIENT, server_addr(), net.now).unwrap_or_else(|e| panic!("{e}"));
    net.step();
    net.step();
    assert_eq!(net.server.counters().no_port, 1);
    assert!(events(&mut net.client).iter().any(|e| matches!(e, StackEvent::Conn(c, Event::Closed { .. }) if *c == id)));
    // A `::` listener beside it does.
    let v6_any = net.server.listen(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), PORT)).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(v4_any, v6_any);
    let (_, sid) = connect(&mut net, v6_any);
    assert_eq!(net.server.addresses(sid).map(|(l, _)| l), Ok(server_addr()));
    // Mixed families cannot connect.
    assert_eq!(net.client.connect(Ipv4Addr::new(10, 0, 0, 1), server_addr(), net.now), Err(StackError::FamilyMismatch));
}

#[test]
fn syn_cookies_work_over_v6() {
    let cfg = TcpConfig { syn_backlog: 0, ..TcpConfig::default() };
    let mut net = Net::new(cfg);
    let lid = net.server.listen(server_addr()).unwrap_or_else(|e| panic!("{e}"));
    let (id, sid) = connect(&mut net, lid);
    assert_eq!(net.server.counters().syncookies_sent, 1);
    assert_eq!(net.server.counters().syncookies_recv, 1);
    assert_eq!(net.client.write(id, HeapPayload::from_slice(b"cookie"), WriteFlags::NONE, net.now), Ok(6));
    net.step();
    assert_eq!(read_all(&mut net.server, sid, net.now), b"cookie");
    // The cookie MSS is at most the v6 one we announce.
    assert!(net.server.info(sid).map(|i| i.snd_mss).unwrap_or(0) <= 1440);
}

#[test]
fn packet_too_big_lowers_the_path_mtu_not_below_1280() {
    let mut net = Net::new(TcpConfig::default());
    let lid = net.server.listen(server_addr()).unwrap_or_else(|e| panic!("{e}"));
    let (id, _) = connect(&mut net, lid);
    let (local, remote) = net.client.addresses(id).unwrap_or_else(|e| panic!("{e}"));
    let data = vec![1u8; 20_000];
    assert!(net.client.write(id, HeapPayload::from_slice(&data), WriteFlags::NONE, net.now).is_ok());
    let una = net.client.info(id).map(|i| i.snd_una).unwrap_or(SeqNum(0));
    let _ = transmit(&mut [&mut net.client], net.now);
    assert_eq!(net.client.handle_icmpv6_packet_too_big(local, remote, una, 1400, net.now), Ok(1400));
    assert_eq!(net.client.info(id).map(|i| (i.path_mtu, i.mss_now <= 1400 - 60)), Ok((1400, true)));
    // RFC 8201 §4: a report below IPv6's minimum MTU is taken as 1280.
    assert_eq!(net.client.handle_icmpv6_packet_too_big(local, remote, una, 600, net.now), Ok(1280));
    assert_eq!(net.client.info(id).map(|i| i.path_mtu), Ok(1280));
    assert_eq!(net.client.handle_icmpv6_packet_too_big(local, remote, una, 1000, net.now), Err(PmtuError::NotSmaller));
    assert_eq!(net.client.counters().pmtu_reductions, 2);
    // Out of the window, or for no connection: counted, not applied.
    assert_eq!(
        net.client.handle_icmpv6_packet_too_big(local, remote, una.wrapping_add(1 << 30), 1300, net.now),
        Err(PmtuError::OutOfWindow)
    );
    let stranger = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9)), 80);
    assert_eq!(net.client.handle_icmpv6_packet_too_big(local, stranger, una, 1300, net.now), Err(PmtuError::UnknownConnection));
    // Segments after it fit the new MTU: IPv6 header, TCP header and payload per frame.
    let out = transmit(&mut [&mut net.client], net.now);
    assert!(!out.is_empty());
    for (_, _, seg) in out {
        let per_frame = if seg.mss > 0 { usize::from(seg.mss) } else { seg.payload.len() };
        assert!(per_frame + seg.repr.header_len() + 40 <= 1280, "{per_frame} bytes per frame");
    }
}

#[test]
fn an_advertised_link_mtu_lowers_v6_connections_and_the_mss_of_new_ones() {
    let mut net = Net::new(TcpConfig::default());
    let lid = net.server.listen(server_addr()).unwrap_or_else(|e| panic!("{e}"));
    let (id, _) = connect(&mut net, lid);
    let data = vec![3u8; 20_000];
    assert!(net.client.write(id, HeapPayload::from_slice(&data), WriteFlags::NONE, net.now).is_ok());
    let _ = transmit(&mut [&mut net.client], net.now);
    // A router advertised 1400 (RFC 4861 §6.3.4): the established connection comes down
    // at once, as for a "packet too big" but without a segment to quote.
    assert_eq!(net.client.set_ipv6_link_mtu(Some(1400), net.now), 1);
    assert_eq!(net.client.info(id).map(|i| (i.path_mtu, i.mss_now <= 1400 - 60)), Ok((1400, true)));
    assert_eq!(net.client.counters().pmtu_reductions, 1);
    assert_eq!(net.client.set_ipv6_link_mtu(Some(1400), net.now), 0, "the same MTU again changes nothing");
    for (_, _, seg) in transmit(&mut [&mut net.client], net.now) {
        let per_frame = if seg.mss > 0 { usize::from(seg.mss) } else { seg.payload.len() };
        assert!(per_frame + seg.repr.header_len() + 40 <= 1400, "{per_frame} bytes per frame");
    }
    // A new connection announces and uses the MSS the advertised MTU allows (1400 - 60).
    net.seen.clear();
    let (id2, _) = connect(&mut net, lid);
    let (_, _, syn) = net.seen.first().cloned().unwrap_or_else(|| panic!("a SYN"));
    let syn = TcpRepr::parse(&Packet::new_checked(&syn[..]).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(syn.options.mss, Some(1340));
    assert_eq!(net.client.info(id2).map(|i| i.snd_mss), Ok(1340));
    // IPv4 is not the router's business: its MSS stays the port's.
    assert_eq!((net.client.config().effective_mss_v6(), net.client.config().effective_mss()), (1340, 1460));
}
