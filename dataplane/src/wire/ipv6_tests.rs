use super::*;
use crate::wire::ethernet::EthernetAddress;
use crate::wire::v6_testdata::{ip, ECHO_REQUEST, NS, RS};
use proptest::prelude::*;

fn a(s: &str) -> Ipv6Addr {
    s.parse().expect("literal")
}

#[test]
fn parses_captured_echo_request() {
    let b = ip(ECHO_REQUEST);
    let p = Packet::new_checked(&b[..]).expect("valid");
    assert_eq!(p.version(), 6);
    assert_eq!(p.traffic_class(), 0);
    assert_eq!(p.flow_label(), 0x105d0);
    assert_eq!(p.payload_len(), 16);
    assert_eq!(p.hop_limit(), 64);
    assert_eq!(p.upper_layer(), Ok(UpperLayer { protocol: next_header::ICMPV6, offset: 40 }));
    let r = Repr::parse(&p).expect("valid");
    assert_eq!(
        r,
        Repr {
            src_addr: a("2001:db8::1"),
            dst_addr: a("2001:db8::2"),
            next_header: next_header::ICMPV6,
            payload_len: 16,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0x105d0,
        }
    );
    // Emitting the parsed header gives back the captured bytes.
    let mut out = b.clone();
    out[..HEADER_LEN].fill(0);
    r.emit(&mut Packet::new_unchecked(&mut out[..])).expect("fits");
    assert_eq!(out, b);
}

#[test]
fn padding_is_ignored_and_short_payload_rejected() {
    let mut b = ip(NS);
    b.extend_from_slice(&[0; 10]);
    let p = Packet::new_checked(&b[..]).expect("valid");
    assert_eq!(p.payload().len(), 32);
    let b = ip(NS);
    assert_eq!(Packet::new_checked(&b[..b.len() - 1]).err(), Some(Error::BadPayloadLen));
    for n in 0..HEADER_LEN {
        assert_eq!(Packet::new_checked(&b[..n]).err(), Some(Error::Truncated));
    }
    let mut v4 = b.clone();
    v4[0] = 0x45;
    assert_eq!(Packet::new_checked(&v4[..]).err(), Some(Error::BadVersion));
}

/// A packet with the given extension headers (each given as next-header-less bytes: the
/// walk fills in the chain) in front of an 8-byte upper-layer payload of `proto`.
fn with_extensions(exts: &[(u8, Vec<u8>)], proto: u8) -> Vec<u8> {
    let mut payload = Vec::new();
    for (i, (_, body)) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(proto, |e| e.0);
        let mut h = body.clone();
        h[0] = next;
        payload.extend_from_slice(&h);
    }
    payload.extend_from_slice(&[0xee; 8]);
    let repr = Repr {
        src_addr: a("2001:db8::1"),
        dst_addr: a("2001:db8::2"),
        next_header: exts.first().map_or(proto, |e| e.0),
        payload_len: payload.len(),
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut b = vec![0u8; HEADER_LEN];
    repr.emit(&mut Packet::new_unchecked(&mut b[..])).expect("fits");
    b.extend_from_slice(&payload);
    b
}

fn hbh(opts: &[u8]) -> (u8, Vec<u8>) {
    let mut h = vec![0, 0];
    h.extend_from_slice(opts);
    assert_eq!(h.len() % 8, 0);
    h[1] = u8::try_from(h.len() / 8 - 1).expect("small");
    (next_header::HOP_BY_HOP, h)
}

fn dst_opts(opts: &[u8]) -> (u8, Vec<u8>) {
    (next_header::DEST_OPTIONS, hbh(opts).1)
}

fn routing(segments_left: u8) -> (u8, Vec<u8>) {
    (next_header::ROUTING, vec![0, 0, 4, segments_left, 0, 0, 0, 0])
}

fn fragment(offset: u16, more: bool) -> (u8, Vec<u8>) {
    let w = (offset << 3) | u16::from(more);
    let [hi, lo] = w.to_be_bytes();
    (next_header::FRAGMENT, vec![0, 0, hi, lo, 0xde, 0xad, 0xbe, 0xef])
}

#[test]
fn walks_every_extension_header_kind() {
    // Router Alert (MLD, RFC 2711) then PadN; Pad1s; routing with no segments left; an
    // atomic fragment (RFC 6946); destination options with a skippable unknown option.
    let exts = [
        hbh(&[5, 2, 0, 0, 1, 0]),
        dst_opts(&[0, 0, 0, 0, 0, 0]),
        routing(0),
        fragment(0, false),
        dst_opts(&[0x1e, 2, 0xaa, 0xbb, 1, 0]),
    ];
    let b = with_extensions(&exts, next_header::TCP);
    let p = Packet::new_checked(&b[..]).expect("valid");
    assert_eq!(p.upper_layer(), Ok(UpperLayer { protocol: next_header::TCP, offset: 40 + 40 }));
    let r = Repr::parse(&p).expect("valid");
    assert_eq!((r.next_header, r.payload_len), (next_header::TCP, 8));
    // Other next headers end the walk as they are.
    for proto in [next_header::ESP, next_header::AH, next_header::NO_NEXT_HEADER, 253] {
        let b = with_extensions(&[routing(0)], proto);
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.upper_layer(), Ok(UpperLayer { protocol: proto, offset: 48 }));
    }
}

#[test]
fn rejects_fragments_routing_and_misplaced_hop_by_hop() {
    for (off, more) in [(0, true), (185, false), (185, true)] {
        let b = with_extensions(&[fragment(off, more)], next_header::TCP);
        assert_eq!(Packet::new_checked(&b[..]).expect("valid").upper_layer(), Err(Error::Fragment));
    }
    let b = with_extensions(&[routing(1)], next_header::TCP);
    assert_eq!(Packet::new_checked(&b[..]).expect("valid").upper_layer(), Err(Error::SegmentsLeft));
    let b = with_extensions(&[dst_opts(&[1, 4, 0, 0, 0, 0]), hbh(&[1, 4, 0, 0, 0, 0])], next_header::TCP);
    assert_eq!(Packet::new_checked(&b[..]).expect("valid").upper_layer(), Err(Error::BadExtensionHeader));
}

#[test]
fn options_are_checked() {
    // Unknown options with action bits 01, 10, 11 discard; 00 is skipped (above).
    for ty in [0x5e, 0x9e, 0xde, 0xc2] {
        let b = with_extensions(&[dst_opts(&[ty, 4, 0, 0, 0, 0])], next_header::TCP);
        let r = Packet::new_checked(&b[..]).expect("valid").upper_layer();
        assert_eq!(r, Err(Error::UnrecognizedOption), "type {ty:#x}");
    }
    // An option length running past the header.
    let b = with_extensions(&[hbh(&[1, 5, 0, 0, 0, 0])], next_header::TCP);
    assert_eq!(Packet::new_checked(&b[..]).expect("valid").upper_layer(), Err(Error::BadExtensionHeader));
    let b = with_extensions(&[hbh(&[0, 0, 0, 0, 0, 1])], next_header::TCP);
    assert_eq!(Packet::new_checked(&b[..]).expect("valid").upper_layer(), Err(Error::BadExtensionHeader));
}

#[test]
fn chain_length_is_bounded() {
    let ok: Vec<_> = (0..MAX_EXTENSION_HEADERS).map(|_| dst_opts(&[1, 4, 0, 0, 0, 0])).collect();
    let b = with_extensions(&ok, next_header::TCP);
    assert!(Packet::new_checked(&b[..]).expect("valid").upper_layer().is_ok());
    let long: Vec<_> = (0..=MAX_EXTENSION_HEADERS).map(|_| dst_opts(&[1, 4, 0, 0, 0, 0])).collect();
    let b = with_extensions(&long, next_header::TCP);
    assert_eq!(Packet::new_checked(&b[..]).expect("valid").upper_layer(), Err(Error::TooManyExtensionHeaders));
}

#[test]
fn extension_header_past_the_payload_is_truncated() {
    let b = with_extensions(&[dst_opts(&[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])], next_header::TCP);
    // Cut the payload length inside the destination options header.
    let mut b = b;
    let mut p = Packet::new_unchecked(&mut b[..]);
    p.set_payload_len(10);
    assert_eq!(p.upper_layer(), Err(Error::Truncated));
    p.set_payload_len(1);
    assert_eq!(p.upper_layer(), Err(Error::Truncated));
}

#[test]
fn quoted_packet_may_be_cut_short() {
    let b = ip(ECHO_REQUEST);
    let (r, rest) = Repr::parse_quoted(&b[..48]).expect("header present");
    assert_eq!(r.next_header, next_header::ICMPV6);
    assert_eq!(r.payload_len, 16);
    assert_eq!(rest, &b[40..48]);
    assert_eq!(Repr::parse_quoted(&b[..39]).err(), Some(Error::Truncated));
    let b = with_extensions(&[routing(0)], next_header::TCP);
    let (r, rest) = Repr::parse_quoted(&b[..52]).expect("walks within the quote");
    assert_eq!((r.next_header, rest.len()), (next_header::TCP, 4));
    assert_eq!(Repr::parse_quoted(&b[..44]).err(), Some(Error::Truncated));
}

#[test]
fn emit_checks_lengths() {
    let mut r = Repr::parse(&Packet::new_checked(&ip(NS)[..]).expect("valid")).expect("valid");
    let mut short = [0u8; 39];
    assert_eq!(r.emit(&mut Packet::new_unchecked(&mut short[..])), Err(Error::Truncated));
    r.payload_len = 65536;
    let mut buf = [0u8; 40];
    assert_eq!(r.emit(&mut Packet::new_unchecked(&mut buf[..])), Err(Error::BadPayloadLen));
}

#[test]
fn addresses() {
    let mac = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
    // The source of the captured router solicitation is the kernel's EUI-64 address.
    let rs = ip(RS);
    let src = Packet::new_checked(&rs[..]).expect("valid").src_addr();
    assert_eq!(addr::link_local_from_mac(mac), src);
    assert_eq!(src, a("fe80::ff:fe00:2"));
    // RFC 4291 Appendix A: 34-56-78-9A-BC-DE -> 36-56-78-FF-FE-9A-BC-DE.
    let id = addr::eui64_interface_id(EthernetAddress([0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde]));
    assert_eq!(id, [0x36, 0x56, 0x78, 0xff, 0xfe, 0x9a, 0xbc, 0xde]);
    // The captured neighbour solicitation went to these.
    let ns = crate::wire::v6_testdata::hex(NS);
    assert_eq!(addr::solicited_node(a("2001:db8::2")), a("ff02::1:ff00:2"));
    assert_eq!(addr::multicast_mac(a("ff02::1:ff00:2")).0, ns[..6]);
    assert_eq!(addr::solicited_node(a("2001:db8::abcd:ef12:3456")), a("ff02::1:ff12:3456"));
    assert!(addr::is_link_local(a("fe80::1")) && addr::is_link_local(a("febf::1")));
    assert!(!addr::is_link_local(a("fec0::1")) && !addr::is_link_local(a("2001:db8::1")));
    assert!(addr::same_prefix(a("2001:db8::1"), a("2001:db8::ffff"), 64));
    assert!(!addr::same_prefix(a("2001:db8::1"), a("2001:db9::1"), 32));
    assert!(addr::same_prefix(a("2001:db8::1"), a("::"), 0));
    assert!(addr::same_prefix(a("2001:db8::1"), a("2001:db8::1"), 200));
    assert!(!addr::same_prefix(a("2001:db8::1"), a("2001:db8::3"), 127));
}

proptest! {
    #[test]
    fn parsing_never_panics(data in proptest::collection::vec(any::<u8>(), 0..160), nh in any::<u8>()) {
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = p.payload();
            if let Ok(up) = p.upper_layer() {
                prop_assert!(up.offset <= HEADER_LEN + p.payload().len());
                let r = Repr::parse(&p).expect("walk succeeded");
                prop_assert_eq!(r.payload_len + up.offset, HEADER_LEN + p.payload().len());
            }
        }
        let _ = Repr::parse_quoted(&data);
        if let Ok(up) = walk(nh, &data, true) {
            prop_assert!(up.offset <= data.len());
        }
    }

    #[test]
    fn emit_parse_round_trip(
        src in any::<u128>(), dst in any::<u128>(), nh in any::<u8>(), len in 0usize..2000,
        hop_limit in any::<u8>(), tc in any::<u8>(), flow in 0u32..0x10_0000,
    ) {
        // Extension-header values would start a walk over the payload bytes.
        prop_assume!(![0, 43, 44, 60].contains(&nh));
        let repr = Repr {
            src_addr: Ipv6Addr::from(src), dst_addr: Ipv6Addr::from(dst), next_header: nh,
            payload_len: len, hop_limit, traffic_class: tc, flow_label: flow,
        };
        let mut buf = vec![0xa5u8; repr.total_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])).expect("fits");
        let p = Packet::new_checked(&buf[..]).expect("valid");
        prop_assert_eq!(Repr::parse(&p), Ok(repr));
    }
}
