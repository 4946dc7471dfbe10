use super::*;
use crate::wire::ethernet::EthernetAddress;
use crate::wire::v6_testdata::{ip, ECHO_REPLY, ECHO_REQUEST, NA, NS, RS};
use proptest::prelude::*;

fn a(s: &str) -> Ipv6Addr {
    s.parse().expect("literal")
}

/// The addresses and ICMPv6 message of a captured frame.
fn split(frame: &str) -> (Ipv6Addr, Ipv6Addr, Vec<u8>) {
    let b = ip(frame);
    let p = ipv6::Packet::new_checked(&b[..]).expect("valid");
    let up = p.upper_layer().expect("valid");
    assert_eq!(up.protocol, ipv6::next_header::ICMPV6);
    (p.src_addr(), p.dst_addr(), p.payload().get(up.offset - ipv6::HEADER_LEN..).expect("inside").to_vec())
}

fn quoted_header() -> ipv6::Repr {
    ipv6::Repr {
        src_addr: a("2001:db8::2"),
        dst_addr: a("2001:db8::7"),
        next_header: ipv6::next_header::TCP,
        payload_len: 1440,
        hop_limit: 63,
        traffic_class: 0,
        flow_label: 0x12345,
    }
}

#[test]
fn parses_captured_echo_request_and_reply() {
    let (src, dst, m) = split(ECHO_REQUEST);
    let p = Packet::new_checked(&m[..]).expect("long enough");
    assert!(p.verify_checksum(src, dst));
    assert!(!p.verify_checksum(dst, a("2001:db8::3")));
    let data = [0x61, 0x62, 0x63, 0x64, 0, 0, 0, 0];
    assert_eq!(Repr::parse(src, dst, &p, true), Ok(Repr::EchoRequest { ident: 0x34e3, seq_no: 1, data: &data }));
    let (src, dst, m) = split(ECHO_REPLY);
    let p = Packet::new_checked(&m[..]).expect("long enough");
    let reply = Repr::EchoReply { ident: 0x3534, seq_no: 1, data: &data };
    assert_eq!(Repr::parse(src, dst, &p, true), Ok(reply));
    // Our emitter gives the kernel's bytes, checksum included.
    let mut out = vec![0xa5u8; reply.buffer_len()];
    reply.emit(src, dst, &mut Packet::new_unchecked(&mut out[..])).expect("fits");
    assert_eq!(out, m);
}

#[test]
fn truncated_and_bad_checksum() {
    let (src, dst, m) = split(ECHO_REQUEST);
    for n in 0..HEADER_LEN {
        assert_eq!(Packet::new_checked(&m[..n]).err(), Some(Error::Truncated));
    }
    let mut m = m;
    m[9] ^= 0x40;
    let p = Packet::new_checked(&m[..]).expect("long enough");
    assert_eq!(Repr::parse(src, dst, &p, true), Err(Error::BadChecksum));
    assert!(Repr::parse(src, dst, &p, false).is_ok());
}

#[test]
fn parses_captured_neighbour_discovery() {
    let (src, dst, m) = split(NS);
    let p = Packet::new_checked(&m[..]).expect("long enough");
    assert_eq!(
        Repr::parse(src, dst, &p, true),
        Ok(Repr::Ndp(ndp::Repr::NeighborSolicit {
            target_addr: a("2001:db8::2"),
            lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 1])),
        }))
    );
    let (src, dst, m) = split(NA);
    let p = Packet::new_checked(&m[..]).expect("long enough");
    let na = ndp::Repr::NeighborAdvert {
        router: false,
        solicited: true,
        override_: true,
        target_addr: a("2001:db8::2"),
        lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 2])),
    };
    assert_eq!(Repr::parse(src, dst, &p, true), Ok(Repr::Ndp(na)));
    let mut out = vec![0u8; Repr::Ndp(na).buffer_len()];
    Repr::Ndp(na).emit(src, dst, &mut Packet::new_unchecked(&mut out[..])).expect("fits");
    assert_eq!(out, m, "our advertisement is the kernel's");
    let (src, dst, m) = split(RS);
    let p = Packet::new_checked(&m[..]).expect("long enough");
    let rs = Repr::Ndp(ndp::Repr::RouterSolicit { lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 2])) });
    assert_eq!(Repr::parse(src, dst, &p, true), Ok(rs));
    // A broken NDP message is an NDP error.
    let mut bad = m.clone();
    bad[9] = 0;
    Packet::new_unchecked(&mut bad[..]).fill_checksum(src, dst);
    let p = Packet::new_checked(&bad[..]).expect("long enough");
    assert_eq!(Repr::parse(src, dst, &p, true), Err(Error::Ndp(ndp::Error::ZeroLengthOption)));
}

#[test]
fn errors_round_trip_and_quote_tcp() {
    let quote = [0x01, 0xbb, 0xc3, 0x50, 1, 2, 3, 4, 0xee, 0xee];
    let (src, dst) = (a("2001:db8::fe"), a("2001:db8::2"));
    for repr in [
        Repr::PktTooBig { mtu: 1280, header: quoted_header(), data: &quote },
        Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, header: quoted_header(), data: &quote },
        Repr::TimeExceeded { code: 0, header: quoted_header(), data: &quote },
        Repr::ParamProblem { code: 1, pointer: 6, header: quoted_header(), data: &quote },
    ] {
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        assert_eq!(buf.len(), 8 + 40 + quote.len());
        repr.emit(src, dst, &mut Packet::new_unchecked(&mut buf[..])).expect("fits");
        let p = Packet::new_checked(&buf[..]).expect("long enough");
        let parsed = Repr::parse(src, dst, &p, true).expect("valid");
        assert_eq!(parsed, repr);
        let q = QuotedTcp::of(&parsed).expect("quotes TCP");
        assert_eq!(q.local, SocketAddrV6::new(a("2001:db8::2"), 443, 0, 0));
        assert_eq!(q.remote, SocketAddrV6::new(a("2001:db8::7"), 50000, 0, 0));
        assert_eq!(q.seq, 0x0102_0304);
    }
    // Packet too big: type 2, code 0, the MTU in the second word (RFC 4443 §3.2).
    let repr = Repr::PktTooBig { mtu: 1400, header: quoted_header(), data: &quote };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(src, dst, &mut Packet::new_unchecked(&mut buf[..])).expect("fits");
    assert_eq!((buf[0], buf[1]), (2, 0));
    assert_eq!(&buf[4..8], &1400u32.to_be_bytes());
    assert_eq!(QuotedTcp::parse(&quoted_header(), &quote[..7]), Err(Error::Malformed));
    let udp = ipv6::Repr { next_header: ipv6::next_header::UDP, ..quoted_header() };
    assert_eq!(QuotedTcp::parse(&udp, &quote), Err(Error::Malformed));
    assert_eq!(QuotedTcp::of(&Repr::Other { msg_type: 200, code: 0 }), None);
}

#[test]
fn broken_quotes_and_other_messages() {
    let (src, dst) = (a("fe80::1"), a("fe80::2"));
    // A packet too big quoting 10 bytes: not an IPv6 header.
    let mut b = vec![2, 0, 0, 0, 0, 0, 5, 0, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    Packet::new_unchecked(&mut b[..]).fill_checksum(src, dst);
    let p = Packet::new_checked(&b[..]).expect("long enough");
    assert_eq!(Repr::parse(src, dst, &p, true), Err(Error::Malformed));
    // Redirect, unknown types, echo with a non-zero code, packet too big with a non-zero code.
    for (t, c) in [(message::REDIRECT, 0u8), (200, 0), (128, 1), (2, 1)] {
        let mut b = [t, c, 0, 0, 0, 0, 0, 0];
        Packet::new_unchecked(&mut b[..]).fill_checksum(src, dst);
        let p = Packet::new_checked(&b[..]).expect("long enough");
        assert_eq!(Repr::parse(src, dst, &p, true), Ok(Repr::Other { msg_type: t, code: c }));
    }
}

#[test]
fn emit_into_short_buffer_fails() {
    let repr = Repr::EchoReply { ident: 1, seq_no: 2, data: b"xyz" };
    let mut buf = [0xa5u8; 10];
    let (s, d) = (a("::1"), a("::2"));
    assert_eq!(repr.emit(s, d, &mut Packet::new_unchecked(&mut buf[..])), Err(Error::Truncated));
    assert_eq!(buf, [0xa5; 10]);
}

proptest! {
    #[test]
    fn parse_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..120),
        ty in prop_oneof![Just(1u8), Just(2), Just(3), Just(4), Just(128), Just(129), 133u8..=137, any::<u8>()],
        verify in any::<bool>(),
    ) {
        let (src, dst) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
        let mut data = data;
        if let Some(t) = data.first_mut() {
            *t = ty;
        }
        if let Ok(p) = Packet::new_checked(&data[..]) {
            if let Ok(r) = Repr::parse(src, dst, &p, verify) {
                let _ = QuotedTcp::of(&r);
                let mut out = vec![0u8; r.buffer_len()];
                prop_assert!(r.emit(src, dst, &mut Packet::new_unchecked(&mut out[..])).is_ok());
                let q = Packet::new_checked(&out[..]).expect("emitted a header");
                prop_assert!(q.verify_checksum(src, dst));
            }
        }
    }

    #[test]
    fn echo_and_errors_round_trip(
        ident in any::<u16>(), seq_no in any::<u16>(), mtu in any::<u32>(), code in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..64), kind in 0u8..5,
        src in any::<u128>(), dst in any::<u128>(),
    ) {
        let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
        let repr = match kind {
            0 => Repr::EchoRequest { ident, seq_no, data: &data },
            1 => Repr::EchoReply { ident, seq_no, data: &data },
            2 => Repr::PktTooBig { mtu, header: quoted_header(), data: &data },
            3 => Repr::TimeExceeded { code, header: quoted_header(), data: &data },
            _ => Repr::ParamProblem { code, pointer: mtu, header: quoted_header(), data: &data },
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(src, dst, &mut Packet::new_unchecked(&mut buf[..])).expect("fits");
        let p = Packet::new_checked(&buf[..]).expect("long enough");
        prop_assert_eq!(Repr::parse(src, dst, &p, true), Ok(repr));
    }
}
