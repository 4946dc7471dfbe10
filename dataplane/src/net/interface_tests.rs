//! Unit tests of [`super::Interface`]: one per malformed-frame kind with its counter, exact
//! ARP/ICMP reply frames, neighbour resolution through the interface, and a never-panics
//! property over arbitrary frames.

use super::*;
use crate::wire::checksum;
use proptest::prelude::*;

const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const PEER_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const OTHER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const OTHER_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]);
const GW_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0xfe, 0xfe, 0xfe]);

fn config() -> InterfaceConfig {
    InterfaceConfig { mac: OUR_MAC, ipv4: OUR_IP, prefix_len: 24, gateway: Some(GATEWAY), mtu: 1500 }
}

fn iface() -> Interface {
    Interface::new(config())
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn drain(i: &mut Interface) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    i.poll_transmit(t(0), &mut |f: &[u8]| out.push(f.to_vec()));
    out
}

fn eth(dst: EthernetAddress, src: EthernetAddress, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn arp_payload(op: u16, sha: EthernetAddress, spa: Ipv4Addr, tha: EthernetAddress, tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0x00, 0x01, 0x08, 0x00, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha.0);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha.0);
    p.extend_from_slice(&tpa.octets());
    p
}

fn arp_request_to_us(sha: EthernetAddress, spa: Ipv4Addr) -> Vec<u8> {
    eth(EthernetAddress::BROADCAST, sha, 0x0806, &arp_payload(1, sha, spa, EthernetAddress::UNSPECIFIED, OUR_IP))
}

fn arp_reply_to_us(sha: EthernetAddress, spa: Ipv4Addr) -> Vec<u8> {
    eth(OUR_MAC, sha, 0x0806, &arp_payload(2, sha, spa, OUR_MAC, OUR_IP))
}

/// A valid IPv4 packet: DF, TTL 64, ident 1, checksum filled.
fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("test payload fits");
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, protocol, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum::checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn ip_frame(packet: &[u8]) -> Vec<u8> {
    eth(OUR_MAC, PEER_MAC, 0x0800, packet)
}

fn icmp_message(msg_type: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![msg_type, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn echo_request(ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let [i0, i1] = ident.to_be_bytes();
    let [s0, s1] = seq.to_be_bytes();
    icmp_message(8, 0, [i0, i1, s0, s1], data)
}

fn icmp_frame(message: &[u8]) -> Vec<u8> {
    ip_frame(&ipv4_packet(PEER_IP, OUR_IP, 1, message))
}

/// A 20-byte TCP header (content irrelevant to this layer) plus payload.
fn tcp_segment(payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];
    s.extend_from_slice(payload);
    s
}

/// Re-fill the IPv4 header checksum of a frame after a test mangled the header.
fn refill_ip_checksum(frame: &mut [u8]) {
    ipv4::Packet::new_unchecked(&mut frame[14..]).fill_checksum();
}

/// Feed `frame` to a fresh interface; it must be dropped for `reason`, with exactly that
/// counter incremented and nothing sent.
fn assert_dropped(frame: &[u8], rx_csum: RxChecksum, reason: DropReason) {
    let mut i = iface();
    assert_eq!(i.handle_frame(frame, t(0), rx_csum), Input::Dropped(reason), "frame {frame:02x?}");
    assert_eq!(i.counters().drops(reason), 1, "counter {}", reason.name());
    assert_eq!(i.counters().total_drops(), 1, "only {} counted", reason.name());
    assert_eq!(i.counters().rx_frames, 1);
    assert!(drain(&mut i).is_empty(), "a dropped frame triggers no output");
}

// ------------------------------------------------------------------ malformed frames

#[test]
fn truncated_ethernet_is_dropped() {
    let f = arp_request_to_us(PEER_MAC, PEER_IP);
    assert_dropped(&f[..13], RxChecksum::Unknown, DropReason::TruncatedEthernet);
    assert_dropped(&[], RxChecksum::Unknown, DropReason::TruncatedEthernet);
}

#[test]
fn wrong_ethertype_is_dropped() {
    assert_dropped(&eth(OUR_MAC, PEER_MAC, 0x86dd, &[0x60; 40]), RxChecksum::Unknown, DropReason::WrongEthertype);
    assert_dropped(&eth(OUR_MAC, PEER_MAC, 0x8100, &[0; 46]), RxChecksum::Unknown, DropReason::WrongEthertype);
    assert_dropped(&eth(OUR_MAC, PEER_MAC, 0x0042, &[0; 46]), RxChecksum::Unknown, DropReason::WrongEthertype);
}

#[test]
fn frame_for_another_mac_is_dropped() {
    let tcp = ipv4_packet(PEER_IP, OUR_IP, 6, &tcp_segment(b""));
    assert_dropped(&eth(OTHER_MAC, PEER_MAC, 0x0800, &tcp), RxChecksum::Unknown, DropReason::NotForUs);
    let multicast = EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]);
    assert_dropped(&eth(multicast, PEER_MAC, 0x0800, &tcp), RxChecksum::Unknown, DropReason::NotForUs);
}

#[test]
fn multicast_source_mac_is_dropped() {
    let tcp = ipv4_packet(PEER_IP, OUR_IP, 6, &tcp_segment(b""));
    assert_dropped(&eth(OUR_MAC, EthernetAddress::BROADCAST, 0x0800, &tcp), RxChecksum::Unknown, DropReason::BadSrcMac);
}

#[test]
fn truncated_ipv4_is_dropped() {
    let f = ip_frame(&ipv4_packet(PEER_IP, OUR_IP, 6, &tcp_segment(b"")));
    assert_dropped(&f[..14 + 19], RxChecksum::Unknown, DropReason::Ipv4Truncated);
    // IHL 15 (60 bytes) in a 40-byte packet.
    let mut f = f.clone();
    f[14] = 0x4f;
    assert_dropped(&f, RxChecksum::Unknown, DropReason::Ipv4Truncated);
}

#[test]
fn bad_ip_version_is_dropped() {
    let mut f = ip_frame(&ipv4_packet(PEER_IP, OUR_IP, 6, &tcp_segment(b"")));
    f[14] = 0x65;
    assert_dropped(&f, RxChecksum::Unknown, DropReason::Ipv4BadVersion);
}

#[test]
fn bad_ihl_is_dropped() {
    let mut f = ip_frame(&ipv4_packet(PEER_IP, OUR_IP, 6, &tcp_segment(b"")));
    f[14] = 0x44;
    assert_dropped(&f, RxChecksum::Unknown, DropReason::Ipv4BadHeaderLen);
}

#[test]
fn total_length_beyond_frame_or_below_header_is_dropped() {
    let f = ip_frame(&ipv4_packet(PEER_IP, OUR_IP, 6, &tcp_segment(b"")));
    let mut long = f.clone();
    long[16..18].copy_from_slice(&41u16.to_be_bytes());
    refill_ip_checksum(&mut long);
    assert_dropped(&long, RxChecksum::Unknown, DropReason::Ipv4BadTotalLen);
    let mut short = f;
    short[16..18].copy_from_slice(&19u16.to_be_bytes());
    refill_ip_checksum(&mut short);
    assert_dropped(&short, RxChecksum::Unknown, DropReason::Ipv4BadTotalLen);
}

#[test]
fn bad_ip_checksum_is_dropped_unless_nic_verified() {
    let mut f = ip_frame(&ipv4_packet(PEER_IP, OUR_IP, 6, &tcp_segment(b"")));
    f[24] ^= 0x10;
    assert_dropped(&f, RxChecksum::Unknown, DropReason::Ipv4BadChecksum);
    assert_dropped(&f, RxChecksum::Bad, DropReason::Ipv4BadChecksum);
    // A NIC that verified the checksum is trusted: no software check.
    let mut i = iface();
    assert!(matches!(i.handle_frame(&f, t(0), RxChecksum::Good), Input::Tcp { .. }));
}

#[test]
fn fragments_are_dropped() {
    let f = ip_frame(&ipv4_packet(PEER_IP, OUR_IP, 6, &tcp_segment(b"0123456789")));
    let mut first = f.clone();
    first[20] = 0x20; // MF, offset 0
    refill_ip_checksum(&mut first);
    assert_dropped(&first, RxChecksum::Unknown, DropReason::Ipv4Fragment);
    let mut later = f;
    later[20..22].copy_from_slice(&[0x00, 0xb9]); // offset 185 * 8 = 1480, last fragment
    refill_ip_checksum(&mut later);
    assert_dropped(&later, RxChecksum::Unknown, DropReason::Ipv4Fragment);
}

#[test]
fn ip_for_another_host_is_dropped() {
    let f = ip_frame(&ipv4_packet(PEER_IP, OTHER_IP, 6, &tcp_segment(b"")));
    assert_dropped(&f, RxChecksum::Unknown, DropReason::Ipv4NotForUs);
    let bcast = ip_frame(&ipv4_packet(PEER_IP, Ipv4Addr::BROADCAST, 1, &echo_request(1, 1, b"")));
    assert_dropped(&bcast, RxChecksum::Unknown, DropReason::Ipv4NotForUs);
}

#[test]
fn martian_sources_are_dropped() {
    for src in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(240, 0, 0, 1),
        OUR_IP,
        Ipv4Addr::new(10, 0, 0, 255),
    ] {
        let f = ip_frame(&ipv4_packet(src, OUR_IP, 6, &tcp_segment(b"")));
        assert_dropped(&f, RxChecksum::Unknown, DropReason::Ipv4MartianSrc);
    }
}

#[test]
fn unsupported_protocol_is_dropped() {
    let udp = ip_frame(&ipv4_packet(PEER_IP, OUR_IP, 17, &[0x12, 0x34, 0x00, 0x35, 0, 8, 0, 0]));
    assert_dropped(&udp, RxChecksum::Unknown, DropReason::Ipv4UnsupportedProtocol);
}

#[test]
fn truncated_icmp_is_dropped() {
    assert_dropped(&icmp_frame(&[8, 0, 0xf7, 0xff]), RxChecksum::Unknown, DropReason::IcmpTruncated);
}

#[test]
fn bad_icmp_checksum_is_dropped() {
    let mut m = echo_request(7, 1, b"ping");
    m[9] ^= 0xff;
    assert_dropped(&icmp_frame(&m), RxChecksum::Unknown, DropReason::IcmpBadChecksum);
    // The NIC's IP verdict says nothing about ICMP: still verified.
    assert_dropped(&icmp_frame(&m), RxChecksum::Good, DropReason::IcmpBadChecksum);
}

#[test]
fn non_echo_icmp_is_counted_and_dropped() {
    let quote = ipv4_packet(OUR_IP, PEER_IP, 6, &tcp_segment(b""));
    for m in [
        icmp_message(0, 0, [0, 1, 0, 1], b"reply"),           // echo reply
        icmp_message(3, 3, [0; 4], &quote[..28]),             // port unreachable
        icmp_message(11, 0, [0; 4], &quote[..28]),            // time exceeded
        icmp_message(13, 0, [0; 4], &[0; 12]),                // timestamp request
        icmp_message(8, 1, [0; 4], b""),                      // echo request, bad code
    ] {
        assert_dropped(&icmp_frame(&m), RxChecksum::Unknown, DropReason::IcmpOther);
    }
}

#[test]
fn frag_needed_quoting_our_tcp_segment_goes_up() {
    // The quote of a segment we sent from port 12345 to the peer's port 80, sequence 1.
    let quote = ipv4_packet(OUR_IP, PEER_IP, 6, &tcp_segment(&[0xaa; 1400]));
    let mut i = iface();
    let m = icmp_message(3, 4, [0, 0, 0x05, 0x00], &quote[..28]);
    let input = i.handle_frame(&icmp_frame(&m), t(0), RxChecksum::Unknown);
    let want = icmpv4::QuotedTcp {
        local: std::net::SocketAddrV4::new(OUR_IP, 12345),
        remote: std::net::SocketAddrV4::new(PEER_IP, 80),
        seq: 1,
    };
    assert_eq!(input, Input::IcmpFragNeeded { quoted: want, next_hop_mtu: 1280 });
    assert_eq!((i.counters().rx_icmp, i.counters().rx_icmp_frag_needed, i.counters().total_drops()), (1, 1, 0));
    assert!(drain(&mut i).is_empty(), "nothing is answered");
    // A router quoting more of the datagram (RFC 1812 §4.3.2.3) reads the same.
    let long = icmp_message(3, 4, [0, 0, 0x05, 0x00], &quote[..576 - 28]);
    assert_eq!(iface().handle_frame(&icmp_frame(&long), t(0), RxChecksum::Unknown), input);
}

#[test]
fn frag_needed_quoting_anything_else_is_foreign() {
    let tcp = ipv4_packet(OUR_IP, PEER_IP, 6, &tcp_segment(b""));
    let udp = ipv4_packet(OUR_IP, PEER_IP, 17, &tcp_segment(b""));
    let not_ours = ipv4_packet(OTHER_IP, PEER_IP, 6, &tcp_segment(b""));
    for (m, what) in [
        (icmp_message(3, 4, [0, 0, 0x05, 0x00], &udp[..28]), "UDP"),
        (icmp_message(3, 4, [0, 0, 0x05, 0x00], &not_ours[..28]), "another source"),
        (icmp_message(3, 4, [0, 0, 0x05, 0x00], &tcp[..27]), "7 bytes of TCP"),
        (icmp_message(3, 4, [0, 0, 0x05, 0x00], &tcp[..20]), "no TCP at all"),
    ] {
        let mut i = iface();
        let got = i.handle_frame(&icmp_frame(&m), t(0), RxChecksum::Unknown);
        assert_eq!(got, Input::Dropped(DropReason::IcmpFragNeededForeign), "{what}");
        assert_eq!(i.counters().icmp_frag_needed_foreign, 1, "{what}");
    }
}

#[test]
fn icmp_error_with_broken_quote_is_malformed() {
    let m = icmp_message(3, 1, [0; 4], &[0x45, 0, 0]);
    assert_dropped(&icmp_frame(&m), RxChecksum::Unknown, DropReason::IcmpMalformed);
}

#[test]
fn malformed_arp_is_dropped() {
    let good = arp_request_to_us(PEER_MAC, PEER_IP);
    assert_dropped(&good[..14 + 27], RxChecksum::Unknown, DropReason::ArpMalformed);
    let mut bad_hlen = good.clone();
    bad_hlen[14 + 4] = 8;
    assert_dropped(&bad_hlen, RxChecksum::Unknown, DropReason::ArpMalformed);
    let mut multicast_sender = good;
    multicast_sender[14 + 8] = 0x01;
    assert_dropped(&multicast_sender, RxChecksum::Unknown, DropReason::ArpMalformed);
}

#[test]
fn unsupported_arp_is_dropped() {
    let good = arp_request_to_us(PEER_MAC, PEER_IP);
    let mut htype = good.clone();
    htype[14 + 1] = 6;
    assert_dropped(&htype, RxChecksum::Unknown, DropReason::ArpUnsupported);
    let mut op = good;
    op[14 + 7] = 3;
    assert_dropped(&op, RxChecksum::Unknown, DropReason::ArpUnsupported);
}

#[test]
fn arp_for_another_host_is_dropped_and_not_learnt() {
    let f = eth(
        EthernetAddress::BROADCAST,
        PEER_MAC,
        0x0806,
        &arp_payload(1, PEER_MAC, PEER_IP, EthernetAddress::UNSPECIFIED, OTHER_IP),
    );
    assert_dropped(&f, RxChecksum::Unknown, DropReason::ArpNotForUs);
    let mut i = iface();
    i.handle_frame(&f, t(0), RxChecksum::Unknown);
    assert!(i.neighbors().is_empty(), "RFC 826: create entries only when targeted");
}

#[test]
fn arp_claiming_our_address_is_a_conflict() {
    let f = eth(
        EthernetAddress::BROADCAST,
        OTHER_MAC,
        0x0806,
        &arp_payload(1, OTHER_MAC, OUR_IP, EthernetAddress::UNSPECIFIED, OUR_IP),
    );
    assert_dropped(&f, RxChecksum::Unknown, DropReason::ArpAddressConflict);
}

// ------------------------------------------------------------------ ARP replies

#[test]
fn arp_request_gets_exact_reply() {
    let mut i = iface();
    let input = i.handle_frame(&arp_request_to_us(PEER_MAC, PEER_IP), t(0), RxChecksum::Unknown);
    assert_eq!(input, Input::Consumed);
    let frames = drain(&mut i);
    #[rustfmt::skip]
    let mut expected = vec![
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // dst: the asker
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src: us
        0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // Ethernet/IPv4, reply
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sha/spa: us
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 2, // tha/tpa: the asker
    ];
    expected.resize(MIN_FRAME_LEN, 0);
    assert_eq!(frames, vec![expected]);
    assert_eq!(i.counters().tx_arp_reply, 1);
    assert_eq!(i.counters().tx_frames, 1);
    assert_eq!(i.counters().rx_arp, 1);
}

#[test]
fn arp_request_to_us_teaches_the_sender() {
    let mut i = iface();
    i.handle_frame(&arp_request_to_us(PEER_MAC, PEER_IP), t(0), RxChecksum::Unknown);
    drain(&mut i);
    let expected =
        ethernet::EthernetRepr { src_addr: OUR_MAC, dst_addr: PEER_MAC, ethertype: EtherType::Ipv4 }.to_bytes();
    assert_eq!(i.link_header_for(PEER_IP, t(10)), LinkResult::Ready(expected));
    assert!(drain(&mut i).is_empty(), "no request needed for a learnt neighbour");
    assert_eq!(i.counters().arp_learned, 1);
}

#[test]
fn arp_probe_gets_reply_but_is_not_learnt() {
    // RFC 5227 §2.1.1 probe: sender protocol address 0.0.0.0.
    let mut i = iface();
    let f = arp_request_to_us(PEER_MAC, Ipv4Addr::UNSPECIFIED);
    assert_eq!(i.handle_frame(&f, t(0), RxChecksum::Unknown), Input::Consumed);
    assert!(i.neighbors().is_empty());
    let frames = drain(&mut i);
    assert_eq!(frames.len(), 1);
    let reply = arp::ArpRepr::parse(&arp::Packet::new_checked(&frames[0][14..]).expect("arp")).expect("valid");
    assert_eq!(reply.target_protocol_addr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(reply.target_hardware_addr, PEER_MAC);
}

#[test]
fn gratuitous_arp_format() {
    let mut i = iface();
    i.gratuitous_arp();
    let frames = drain(&mut i);
    #[rustfmt::skip]
    let mut expected = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sha/spa: us
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 1, // tha zero, tpa: us
    ];
    expected.resize(MIN_FRAME_LEN, 0);
    assert_eq!(frames, vec![expected]);
    assert_eq!(i.counters().tx_gratuitous_arp, 1);
}

// ------------------------------------------------------------------ ICMP echo

fn parse_echo_reply(frame: &[u8]) -> (ipv4::Repr, u16, u16, Vec<u8>) {
    let eth = ethernet::Frame::new_checked(frame).expect("ethernet");
    assert_eq!(eth.dst_addr(), PEER_MAC);
    assert_eq!(eth.src_addr(), OUR_MAC);
    assert_eq!(eth.ethertype(), EtherType::Ipv4);
    let ip = ipv4::Packet::new_checked(eth.payload()).expect("ipv4");
    let ip_repr = ipv4::Repr::parse(&ip, true).expect("valid IPv4 with good checksum");
    let icmp = icmpv4::Packet::new_checked(ip.payload()).expect("icmp");
    assert!(icmp.verify_checksum());
    match icmpv4::Repr::parse(&icmp, true).expect("valid ICMP") {
        icmpv4::Repr::EchoReply { ident, seq_no, data } => (ip_repr, ident, seq_no, data.to_vec()),
        other => panic!("expected an echo reply, got {other:?}"),
    }
}

#[test]
fn echo_request_gets_reply_with_same_id_seq_payload() {
    let mut i = iface();
    let input = i.handle_frame(&icmp_frame(&echo_request(0x1234, 7, b"abcdefgh")), t(0), RxChecksum::Unknown);
    assert_eq!(input, Input::Consumed);
    let frames = drain(&mut i);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].len(), MIN_FRAME_LEN, "short reply padded to the Ethernet minimum");
    let (ip, ident, seq, data) = parse_echo_reply(&frames[0]);
    assert_eq!((ip.src_addr, ip.dst_addr, ip.protocol, ip.ttl), (OUR_IP, PEER_IP, 1, 64));
    assert_eq!(ip.payload_len, 8 + 8);
    assert_eq!((ident, seq), (0x1234, 7));
    assert_eq!(data, b"abcdefgh");
    assert_eq!(i.counters().rx_icmp, 1);
    assert_eq!(i.counters().tx_icmp_echo_reply, 1);
}

#[test]
fn full_size_echo_is_answered_in_full() {
    let mut i = iface();
    let payload: Vec<u8> = (0..1472u32).map(|n| (n % 251) as u8).collect();
    i.handle_frame(&icmp_frame(&echo_request(1, 2, &payload)), t(0), RxChecksum::Unknown);
    let frames = drain(&mut i);
    assert_eq!(frames[0].len(), 14 + 1500);
    let (_, _, _, data) = parse_echo_reply(&frames[0]);
    assert_eq!(data, payload);
}

#[test]
fn echo_reply_is_cut_to_mtu() {
    let mut i = Interface::new(InterfaceConfig { mtu: 576, ..config() });
    let payload = vec![0x5a; 1000];
    i.handle_frame(&icmp_frame(&echo_request(1, 2, &payload)), t(0), RxChecksum::Unknown);
    let frames = drain(&mut i);
    assert_eq!(frames[0].len(), 14 + 576);
    let (ip, _, _, data) = parse_echo_reply(&frames[0]);
    assert_eq!(ip.payload_len, 576 - 20);
    assert_eq!(data, vec![0x5a; 576 - 28]);
}

// ------------------------------------------------------------------ TCP hand-off

#[test]
fn tcp_is_handed_up_by_offset() {
    let mut i = iface();
    let seg = tcp_segment(b"hello");
    let mut f = ip_frame(&ipv4_packet(PEER_IP, OUR_IP, 6, &seg));
    f.resize(f.len() + 7, 0); // Ethernet padding must not reach TCP
    let input = i.handle_frame(&f, t(0), RxChecksum::Unknown);
    let Input::Tcp { src, dst, l4_offset, l4_len, l4_checksum_verified } = input else {
        panic!("expected TCP, got {input:?}");
    };
    assert_eq!((src, dst), (PEER_IP.into(), OUR_IP.into()));
    assert_eq!(&f[l4_offset..l4_offset + l4_len], &seg[..]);
    assert!(!l4_checksum_verified);
    assert_eq!(i.counters().rx_tcp, 1);
    assert_eq!(i.counters().total_drops(), 0);
}

#[test]
fn tcp_after_ip_options_and_nic_verdicts() {
    let seg = tcp_segment(b"x");
    let mut p = vec![0x46, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0];
    p.extend_from_slice(&PEER_IP.octets());
    p.extend_from_slice(&OUR_IP.octets());
    p.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
    p.extend_from_slice(&seg);
    let total = u16::try_from(p.len()).expect("small");
    p[2..4].copy_from_slice(&total.to_be_bytes());
    ipv4::Packet::new_unchecked(&mut p[..]).fill_checksum();
    let f = ip_frame(&p);
    let mut i = iface();
    let input = i.handle_frame(&f, t(0), RxChecksum::Good);
    assert_eq!(
        input,
        Input::Tcp { src: PEER_IP.into(), dst: OUR_IP.into(), l4_offset: 14 + 24, l4_len: seg.len(), l4_checksum_verified: true }
    );
    // `Bad` with a good IP header: the TCP checksum is the suspect, so it goes up unverified.
    let input = i.handle_frame(&f, t(0), RxChecksum::Bad);
    assert!(matches!(input, Input::Tcp { l4_checksum_verified: false, .. }));
}

// ------------------------------------------------------------------ resolution

fn parse_arp(frame: &[u8]) -> (EthernetAddress, arp::ArpRepr) {
    let eth = ethernet::Frame::new_checked(frame).expect("ethernet");
    assert_eq!(eth.ethertype(), EtherType::Arp);
    assert_eq!(frame.len(), MIN_FRAME_LEN);
    let repr = arp::ArpRepr::parse(&arp::Packet::new_checked(eth.payload()).expect("arp")).expect("valid");
    (eth.dst_addr(), repr)
}

fn assert_broadcast_request_for(frame: &[u8], target: Ipv4Addr) {
    let (dst, repr) = parse_arp(frame);
    assert_eq!(dst, EthernetAddress::BROADCAST);
    assert_eq!(
        repr,
        arp::ArpRepr {
            operation: arp::Operation::Request,
            source_hardware_addr: OUR_MAC,
            source_protocol_addr: OUR_IP,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: target,
        }
    );
}

fn outgoing(dst: Ipv4Addr, tag: u8) -> Vec<u8> {
    ipv4_packet(OUR_IP, dst, 6, &tcp_segment(&[tag; 30]))
}

#[test]
fn route_picks_gateway_only_off_link() {
    let i = iface();
    assert_eq!(i.route(OTHER_IP), OTHER_IP);
    assert_eq!(i.route(Ipv4Addr::new(8, 8, 8, 8)), GATEWAY);
    let no_gw = Interface::new(InterfaceConfig { gateway: None, ..config() });
    assert_eq!(no_gw.route(Ipv4Addr::new(8, 8, 8, 8)), Ipv4Addr::new(8, 8, 8, 8));
    let everything = Interface::new(InterfaceConfig { prefix_len: 0, ..config() });
    assert_eq!(everything.route(Ipv4Addr::new(8, 8, 8, 8)), Ipv4Addr::new(8, 8, 8, 8));
}

#[test]
fn resolution_retries_then_fails() {
    let mut i = iface();
    i.queue_ipv4(OTHER_IP, outgoing(OTHER_IP, 1), t(0));
    i.queue_ipv4(OTHER_IP, outgoing(OTHER_IP, 2), t(10));
    let frames = drain(&mut i);
    assert_eq!(frames.len(), 1, "one request, however many packets wait");
    assert_broadcast_request_for(&frames[0], OTHER_IP);
    assert_eq!(i.next_deadline(), Some(t(1000)));
    i.poll(t(999));
    assert!(drain(&mut i).is_empty());
    for at in [1000, 2000] {
        i.poll(t(at));
        let frames = drain(&mut i);
        assert_eq!(frames.len(), 1, "retry at {at} ms");
        assert_broadcast_request_for(&frames[0], OTHER_IP);
    }
    i.poll(t(3000));
    assert!(drain(&mut i).is_empty());
    let c = i.counters();
    assert_eq!(c.tx_arp_request, 3);
    assert_eq!(c.arp_resolution_failed, 1);
    assert_eq!(c.arp_unresolved_drop, 2);
    assert_eq!(i.next_deadline(), None);
}

#[test]
fn queued_packets_are_flushed_on_reply() {
    let mut i = iface();
    i.queue_ipv4(OTHER_IP, outgoing(OTHER_IP, 1), t(0));
    i.queue_ipv4(OTHER_IP, outgoing(OTHER_IP, 2), t(0));
    drain(&mut i);
    assert_eq!(i.link_header_for(OTHER_IP, t(5)), LinkResult::Pending);
    assert!(drain(&mut i).is_empty(), "resolution already in progress: no second request");
    let input = i.handle_frame(&arp_reply_to_us(OTHER_MAC, OTHER_IP), t(100), RxChecksum::Unknown);
    assert_eq!(input, Input::Consumed);
    let frames = drain(&mut i);
    let header =
        ethernet::EthernetRepr { src_addr: OUR_MAC, dst_addr: OTHER_MAC, ethertype: EtherType::Ipv4 }.to_bytes();
    let expected: Vec<Vec<u8>> =
        [1u8, 2].iter().map(|&tag| [&header[..], &outgoing(OTHER_IP, tag)[..]].concat()).collect();
    assert_eq!(frames, expected);
    // Resolved now: framed at once.
    i.queue_ipv4(OTHER_IP, outgoing(OTHER_IP, 3), t(200));
    assert_eq!(drain(&mut i), vec![[&header[..], &outgoing(OTHER_IP, 3)[..]].concat()]);
    assert_eq!(i.counters().tx_ipv4, 3);
    assert_eq!(i.counters().arp_queued, 2);
    // No retry fires for a resolved entry.
    i.poll(t(1000));
    assert!(drain(&mut i).is_empty());
}

#[test]
fn off_link_destination_resolves_the_gateway() {
    let mut i = iface();
    let far = Ipv4Addr::new(198, 51, 100, 7);
    assert_eq!(i.link_header_for(far, t(0)), LinkResult::Pending);
    let frames = drain(&mut i);
    assert_broadcast_request_for(&frames[0], GATEWAY);
    i.handle_frame(&arp_reply_to_us(GW_MAC, GATEWAY), t(50), RxChecksum::Unknown);
    let expected =
        ethernet::EthernetRepr { src_addr: OUR_MAC, dst_addr: GW_MAC, ethertype: EtherType::Ipv4 }.to_bytes();
    assert_eq!(i.link_header_for(far, t(60)), LinkResult::Ready(expected));
}

#[test]
fn pending_queue_overflow_is_counted() {
    let mut i = iface();
    let limit = NeighborConfig::default().queue_len;
    for n in 0..=limit {
        i.queue_ipv4(OTHER_IP, outgoing(OTHER_IP, n as u8), t(0));
    }
    assert_eq!(i.counters().arp_queue_overflow, 1);
    assert_eq!(i.neighbors().queued(OTHER_IP), limit);
}

#[test]
fn oversize_packet_is_refused() {
    let mut i = Interface::new(InterfaceConfig { mtu: 576, ..config() });
    i.queue_ipv4(OTHER_IP, ipv4_packet(OUR_IP, OTHER_IP, 6, &[0; 600]), t(0));
    assert_eq!(i.counters().tx_too_big, 1);
    assert!(drain(&mut i).is_empty(), "nothing resolved for a refused packet");
}

#[test]
fn full_neighbor_table_is_counted() {
    let ncfg = NeighborConfig { capacity: 1, ..NeighborConfig::default() };
    let mut i = Interface::with_neighbor_config(config(), ncfg);
    i.queue_ipv4(OTHER_IP, outgoing(OTHER_IP, 1), t(0));
    i.queue_ipv4(PEER_IP, outgoing(PEER_IP, 1), t(0));
    assert_eq!(i.counters().arp_cache_full, 1);
    assert_eq!(i.counters().arp_queue_overflow, 0);
}

#[test]
fn learnt_entries_expire() {
    let mut i = iface();
    i.handle_frame(&arp_request_to_us(PEER_MAC, PEER_IP), t(0), RxChecksum::Unknown);
    drain(&mut i);
    assert!(matches!(i.link_header_for(PEER_IP, t(1000)), LinkResult::Ready(_)));
    assert_eq!(i.next_deadline(), Some(t(60_000)));
    i.poll(t(60_000));
    assert_eq!(i.counters().arp_expired, 1);
    assert_eq!(i.link_header_for(PEER_IP, t(60_001)), LinkResult::Pending);
    let frames = drain(&mut i);
    assert_broadcast_request_for(&frames[0], PEER_IP);
}

#[test]
fn busy_entry_is_refreshed_by_unicast_before_expiry() {
    let mut i = iface();
    i.handle_frame(&arp_request_to_us(PEER_MAC, PEER_IP), t(0), RxChecksum::Unknown);
    drain(&mut i);
    assert!(matches!(i.link_header_for(PEER_IP, t(56_000)), LinkResult::Ready(_)));
    let frames = drain(&mut i);
    assert_eq!(frames.len(), 1);
    let (dst, repr) = parse_arp(&frames[0]);
    assert_eq!(dst, PEER_MAC, "refresh goes by unicast");
    assert_eq!(repr.target_protocol_addr, PEER_IP);
    i.handle_frame(&arp_reply_to_us(PEER_MAC, PEER_IP), t(56_010), RxChecksum::Unknown);
    assert!(matches!(i.link_header_for(PEER_IP, t(100_000)), LinkResult::Ready(_)));
}

#[test]
fn reply_not_targeting_us_still_updates_known_entry() {
    let mut i = iface();
    i.handle_frame(&arp_request_to_us(PEER_MAC, PEER_IP), t(0), RxChecksum::Unknown);
    drain(&mut i);
    // PEER_IP moved to a new MAC and announces it (gratuitous ARP, RFC 826 merge).
    let f = eth(
        EthernetAddress::BROADCAST,
        OTHER_MAC,
        0x0806,
        &arp_payload(1, OTHER_MAC, PEER_IP, EthernetAddress::UNSPECIFIED, PEER_IP),
    );
    assert_eq!(i.handle_frame(&f, t(10), RxChecksum::Unknown), Input::Consumed);
    assert!(drain(&mut i).is_empty(), "no reply to an announcement for another address");
    let expected =
        ethernet::EthernetRepr { src_addr: OUR_MAC, dst_addr: OTHER_MAC, ethertype: EtherType::Ipv4 }.to_bytes();
    assert_eq!(i.link_header_for(PEER_IP, t(20)), LinkResult::Ready(expected));
}

#[test]
fn transmit_queue_is_bounded() {
    let mut i = iface();
    for _ in 0..TX_QUEUE_LEN + 3 {
        i.gratuitous_arp();
    }
    assert_eq!(i.tx_pending(), TX_QUEUE_LEN);
    assert_eq!(i.counters().tx_queue_overflow, 3);
    assert_eq!(drain(&mut i).len(), TX_QUEUE_LEN);
    assert_eq!(i.counters().tx_frames, TX_QUEUE_LEN as u64);
}

#[test]
fn pinned_neighbours_follow_the_configured_servers() {
    let mut i = iface();
    assert!(i.is_neighbor_pinned(GATEWAY), "the gateway is pinned from the start");
    i.pin_neighbors([PEER_IP, Ipv4Addr::new(192, 0, 2, 7)]);
    assert!(i.is_neighbor_pinned(PEER_IP));
    assert!(i.is_neighbor_pinned(GATEWAY), "an off-subnet server's hop is the gateway");
    assert!(!i.is_neighbor_pinned(Ipv4Addr::new(192, 0, 2, 7)), "off-subnet addresses are not neighbours");
    // A reload replaced PEER_IP by OTHER_IP: the old one may be evicted again.
    i.pin_neighbors([OTHER_IP]);
    assert!(i.is_neighbor_pinned(OTHER_IP) && !i.is_neighbor_pinned(PEER_IP));
    assert!(i.is_neighbor_pinned(GATEWAY), "the gateway stays pinned");
}

#[test]
fn config_is_clamped() {
    let i = Interface::new(InterfaceConfig { prefix_len: 40, mtu: 10, ..config() });
    assert_eq!(i.config().prefix_len, 32);
    assert_eq!(i.mtu(), MIN_MTU);
    assert_eq!(i.route(OTHER_IP), GATEWAY, "/32: every other address is off-link");
}

// ------------------------------------------------------------------ never panics

/// Frames that get past the outer checks often enough to exercise the inner parsers.
fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
    let raw = proptest::collection::vec(any::<u8>(), 0..128);
    let after_eth =
        (prop_oneof![Just(0x0800u16), Just(0x0806u16), any::<u16>()], proptest::collection::vec(any::<u8>(), 0..128))
            .prop_map(|(et, body)| eth(OUR_MAC, PEER_MAC, et, &body));
    let after_ip = (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..96), any::<bool>()).prop_map(
        |(proto, body, mangle)| {
            let mut f = ip_frame(&ipv4_packet(PEER_IP, OUR_IP, proto % 8, &body));
            if mangle {
                f[14] = body.first().copied().unwrap_or(0x40);
            }
            f
        },
    );
    let icmp = (any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64))
        .prop_map(|(ty, code, body)| icmp_frame(&icmp_message(ty % 16, code % 8, [0; 4], &body)));
    prop_oneof![raw, after_eth, after_ip, icmp]
}

proptest! {
    #[test]
    fn handle_frame_never_panics(
        frames in proptest::collection::vec(frame_strategy(), 1..8),
        csum in prop_oneof![Just(RxChecksum::Good), Just(RxChecksum::Bad), Just(RxChecksum::Unknown)],
    ) {
        let mut i = iface();
        let mut dropped = 0u64;
        for (n, f) in frames.iter().enumerate() {
            match i.handle_frame(f, t(n as u64), csum) {
                Input::Tcp { l4_offset, l4_len, .. } => prop_assert!(l4_offset + l4_len <= f.len()),
                Input::Dropped(r) => {
                    dropped += 1;
                    prop_assert!(i.counters().drops(r) >= 1);
                }
                Input::IcmpFragNeeded { quoted, .. } => prop_assert_eq!(*quoted.local.ip(), OUR_IP),
                Input::Icmpv6PacketTooBig { .. } => prop_assert!(false, "IPv6 is off"),
                Input::Consumed => {}
            }
            i.poll(t(n as u64 * 1000));
        }
        prop_assert_eq!(i.counters().rx_frames, frames.len() as u64);
        prop_assert!(i.counters().total_drops() >= dropped);
        let mut sent = 0;
        i.poll_transmit(t(0), &mut |f: &[u8]| {
            sent += 1;
            assert!(f.len() >= MIN_FRAME_LEN && f.len() <= 14 + 1500);
        });
        prop_assert_eq!(i.counters().tx_frames, sent);
    }
}
