//! Unit tests of the TCP header and options (`super`): parsing, emitting, checksums, and
//! what malformed option areas give.

use super::*;
use proptest::prelude::*;

const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

/// A SYN as Linux sends it: MSS 1460, SACK-perm + TS, NOP wscale 7.
const LINUX_SYN: [u8; 40] = [
    0xc0, 0x01, 0x00, 0x50, // ports 49153 -> 80
    0x00, 0x00, 0x10, 0x00, // seq 4096
    0x00, 0x00, 0x00, 0x00, // ack 0
    0xa0, 0x02, 0xfa, 0xf0, // doff 10, SYN, window 64240
    0x00, 0x00, 0x00, 0x00, // checksum 0, urgent 0
    0x02, 0x04, 0x05, 0xb4, // MSS 1460
    0x04, 0x02, 0x08, 0x0a, // SACK-perm, TS
    0x00, 0x00, 0x00, 0x01, // TSval 1
    0x00, 0x00, 0x00, 0x00, // TSecr 0
    0x01, 0x03, 0x03, 0x07, // NOP, wscale 7
];

fn linux_syn_repr() -> TcpRepr {
    TcpRepr {
        src_port: 49153,
        dst_port: 80,
        seq: SeqNum(4096),
        ack: SeqNum(0),
        flags: Flags::SYN,
        window: 64240,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((1, 0)),
            sack_blocks: SackBlocks::new(),
        },
    }
}

/// A 20-byte header with the given option area appended and data offset set to match.
fn with_options(opts: &[u8]) -> Vec<u8> {
    let mut v = LINUX_SYN[..20].to_vec();
    v.extend_from_slice(opts);
    while v.len() & 3 != 0 {
        v.push(0);
    }
    v[12] = ((v.len() / 4) as u8) << 4;
    v
}

fn parse_opts(opts: &[u8]) -> Result<TcpOptions, Error> {
    let buf = with_options(opts);
    let p = Packet::new_checked(&buf[..])?;
    TcpRepr::parse(&p).map(|r| r.options)
}

#[test]
fn parse_linux_syn() {
    let p = Packet::new_checked(&LINUX_SYN[..]).unwrap();
    assert_eq!(p.header_len(), 40);
    assert_eq!(p.src_port(), 49153);
    assert_eq!(p.dst_port(), 80);
    assert_eq!(p.seq_number(), SeqNum(4096));
    assert_eq!(p.flags(), Flags::SYN);
    assert_eq!(p.window_len(), 64240);
    assert!(p.payload().is_empty());
    assert_eq!(TcpRepr::parse(&p).unwrap(), linux_syn_repr());
}

#[test]
fn aligned_timestamps_parse_as_the_general_walk_does() {
    let ts = [8, 10, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];
    let aligned: Vec<u8> = [1, 1].iter().chain(ts.iter()).copied().collect();
    // The same option, NOPs after it: not the aligned layout, so walked.
    let walked: Vec<u8> = ts.iter().chain([1, 1].iter()).copied().collect();
    let a = parse_opts(&aligned).unwrap();
    assert_eq!(a.timestamps, Some((0x1234_5678, 0x9abc_def0)));
    assert_eq!(a, parse_opts(&walked).unwrap());
    assert_eq!(a, TcpOptions { timestamps: Some((0x1234_5678, 0x9abc_def0)), ..TcpOptions::default() });
    // A timestamp option of the wrong length in the aligned place is still malformed.
    assert_eq!(parse_opts(&[1, 1, 8, 9, 0, 0, 0, 0, 0, 0, 0, 0]), Err(Error::Malformed));
}

#[test]
fn construct_over_junk_matches_linux_layout() {
    let repr = linux_syn_repr();
    assert_eq!(repr.header_len(), 40);
    let mut buf = [0xa5u8; 64];
    let n = repr.emit(&mut buf);
    assert_eq!(n, 40);
    assert_eq!(&buf[..40], &LINUX_SYN[..]);
    assert!(buf[40..].iter().all(|&b| b == 0xa5), "emit wrote past the header");
}

#[test]
fn emit_into_short_buffer_writes_nothing() {
    let repr = linux_syn_repr();
    let mut buf = [0u8; 39];
    assert_eq!(repr.emit(&mut buf), 0);
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn option_layouts_follow_linux_order() {
    let mut o = TcpOptions { timestamps: Some((7, 9)), ..Default::default() };
    let mut buf = [0u8; 40];
    assert_eq!(o.emit(&mut buf), 12);
    assert_eq!(&buf[..4], &[1, 1, 8, 10]);

    o.timestamps = None;
    o.sack_permitted = true;
    o.window_scale = Some(3);
    assert_eq!(o.wire_len(), 8);
    assert_eq!(o.emit(&mut buf), 8);
    assert_eq!(&buf[..8], &[1, 3, 3, 3, 1, 1, 4, 2]);

    let mut blocks = SackBlocks::new();
    assert!(blocks.push(SeqNum(10), SeqNum(20)));
    let o = TcpOptions { timestamps: Some((1, 2)), sack_blocks: blocks, ..Default::default() };
    assert_eq!(o.wire_len(), 24);
    assert_eq!(o.emit(&mut buf), 24);
    assert_eq!(&buf[12..24], &[1, 1, 5, 10, 0, 0, 0, 10, 0, 0, 0, 20]);
}

#[test]
fn sack_blocks_truncated_to_option_space() {
    let mut blocks = SackBlocks::new();
    for i in 0..4 {
        assert!(blocks.push(SeqNum(i * 100), SeqNum(i * 100 + 50)));
    }
    assert!(!blocks.push(SeqNum(1), SeqNum(2)), "a fifth block is refused");
    assert_eq!(blocks.len(), 4);

    let mut repr = linux_syn_repr();
    repr.flags = Flags::ACK;
    repr.options = TcpOptions { sack_blocks: blocks, ..Default::default() };
    assert_eq!(repr.header_len(), 20 + 4 + 32);
    repr.options.timestamps = Some((5, 6));
    // RFC 2018 §3: with timestamps only three blocks fit.
    assert_eq!(repr.header_len(), 20 + 12 + 4 + 24);
    let mut buf = [0u8; 60];
    let n = repr.emit(&mut buf);
    let parsed = TcpRepr::parse(&Packet::new_checked(&buf[..n]).unwrap()).unwrap();
    assert_eq!(parsed.options.sack_blocks.as_slice(), &blocks.as_slice()[..3]);
    assert_eq!(parsed.options.timestamps, Some((5, 6)));
}

#[test]
fn new_checked_rejects_short_and_bad_offsets() {
    assert_eq!(Packet::new_checked(&[][..]).unwrap_err(), Error::Truncated);
    assert_eq!(Packet::new_checked(&LINUX_SYN[..19]).unwrap_err(), Error::Truncated);
    // Declares 40 bytes, has 39.
    assert_eq!(Packet::new_checked(&LINUX_SYN[..39]).unwrap_err(), Error::Truncated);
    let mut b = LINUX_SYN;
    b[12] = 4 << 4;
    assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    b[12] = 0;
    assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    b[12] = 15 << 4;
    assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
}

#[test]
fn payload_follows_header() {
    let mut buf = LINUX_SYN.to_vec();
    buf.extend_from_slice(b"hello");
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.payload(), b"hello");
    assert_eq!(p.options().len(), 20);
}

#[test]
fn setters_round_trip() {
    let mut buf = [0u8; 24];
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_src_port(1);
    p.set_dst_port(2);
    p.set_seq_number(SeqNum(3));
    p.set_ack_number(SeqNum(4));
    p.set_header_len(24);
    p.set_flags(Flags::PSH | Flags::ACK);
    p.set_window_len(5);
    p.set_checksum(6);
    p.set_urgent_at(7);
    p.options_mut().copy_from_slice(&[1, 1, 1, 0]);
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(
        (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.header_len()),
        (1, 2, SeqNum(3), SeqNum(4), 24)
    );
    assert_eq!((p.flags(), p.window_len(), p.checksum(), p.urgent_at()), (Flags::PSH | Flags::ACK, 5, 6, 7));
    assert_eq!(p.options(), &[1, 1, 1, 0]);
}

#[test]
fn nop_eol_and_unknown_options() {
    // NOP, unknown kind 30 len 4, MSS, EOL, then garbage that must be ignored.
    let o = parse_opts(&[1, 30, 4, 0xff, 0xff, 2, 4, 0x05, 0x78, 0, 0xff, 0xff]).unwrap();
    assert_eq!(o.mss, Some(1400));
    assert_eq!(o.window_scale, None);
    // Unknown option with length exactly 2 (no body).
    assert_eq!(parse_opts(&[99, 2, 3, 3, 9, 0]).unwrap().window_scale, Some(9));
}

#[test]
fn window_scale_clamped_to_14() {
    // RFC 7323 §2.3.
    assert_eq!(parse_opts(&[3, 3, 15]).unwrap().window_scale, Some(14));
    assert_eq!(parse_opts(&[3, 3, 255]).unwrap().window_scale, Some(14));
    assert_eq!(parse_opts(&[3, 3, 14]).unwrap().window_scale, Some(14));
}

#[test]
fn sack_blocks_parse() {
    let o = parse_opts(&[1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]).unwrap();
    assert_eq!(o.sack_blocks.as_slice(), &[(SeqNum(1), SeqNum(2)), (SeqNum(3), SeqNum(4))]);
    let mut four = vec![5, 34];
    four.extend((0u8..32).collect::<Vec<_>>());
    assert_eq!(parse_opts(&four).unwrap().sack_blocks.len(), 4);
}

#[test]
fn malformed_options_rejected() {
    let cases: &[(&str, &[u8])] = &[
        ("length 0", &[2, 0, 0, 0]),
        ("length 1", &[30, 1, 0, 0]),
        ("kind without length byte", &[1, 1, 1, 2]),
        ("runs past header", &[30, 8, 0, 0]),
        ("mss length 3", &[2, 3, 0, 0]),
        ("mss length 5", &[2, 5, 0, 0, 0, 0, 0, 0]),
        ("wscale length 2", &[3, 2, 0, 0]),
        ("wscale length 4", &[3, 4, 0, 0]),
        ("sack-perm length 3", &[4, 3, 0, 0]),
        ("sack no blocks", &[5, 2, 0, 0]),
        ("sack length 2+7", &[5, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("ts length 8", &[8, 8, 0, 0, 0, 0, 0, 0]),
        ("ts length 12", &[8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("mss past header", &[1, 1, 2, 4]),
    ];
    for (name, opts) in cases {
        assert_eq!(parse_opts(opts), Err(Error::Malformed), "{name}");
    }
    let mut five = vec![5, 42];
    five.extend([0u8; 40]);
    five.truncate(40);
    assert_eq!(parse_opts(&five), Err(Error::Malformed), "five SACK blocks (len 42) cannot fit");
}

#[test]
fn seg_len_counts_syn_and_fin() {
    let mut r = linux_syn_repr();
    assert_eq!(r.seg_len(0), 1);
    r.flags = Flags::SYN | Flags::FIN;
    assert_eq!(r.seg_len(10), 12);
    r.flags = Flags::ACK;
    assert_eq!(r.seg_len(1460), 1460);
}

#[test]
fn flags_ops_and_debug() {
    let mut f = Flags::SYN | Flags::ACK;
    assert!(f.contains(Flags::SYN) && f.contains(Flags::ACK) && !f.contains(Flags::FIN));
    assert_eq!(format!("{f:?}"), "S.");
    f.remove(Flags::SYN);
    f.insert(Flags::FIN);
    assert_eq!(format!("{f:?}"), "F.");
    assert_eq!(format!("{:?}", Flags::RST), "R");
    assert_eq!(format!("{:?}", Flags::NONE), "none");
    assert_eq!(format!("{}", Flags(0xff)), "FSRP.UEW");
    assert!((Flags::PSH & Flags::ACK).is_empty());
}

#[test]
fn checksum_fill_and_verify() {
    let mut seg = LINUX_SYN.to_vec();
    seg.extend_from_slice(b"odd");
    fill_checksum(&mut seg, SRC, DST);
    assert_ne!(Packet::new_unchecked(&seg[..]).checksum(), 0);
    assert!(verify_checksum(&seg, SRC, DST));
    assert!(!verify_checksum(&seg, SRC, Ipv4Addr::new(192, 168, 1, 3)));
    seg[25] ^= 0x10;
    assert!(!verify_checksum(&seg, SRC, DST));
    assert!(!verify_checksum(&seg[..10], SRC, DST));
}

#[test]
fn checksum_matches_reference() {
    // Independent RFC 1071 computation over pseudo-header + segment.
    let mut seg = LINUX_SYN.to_vec();
    seg.extend_from_slice(b"payload!!");
    fill_checksum(&mut seg, SRC, DST);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&SRC.octets());
    pseudo.extend_from_slice(&DST.octets());
    pseudo.extend_from_slice(&[0, PROTOCOL]);
    pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    let mut all = pseudo.clone();
    all.extend_from_slice(&seg);
    if all.len() % 2 == 1 {
        all.push(0);
    }
    let mut s: u32 = all.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    assert_eq!(s, 0xffff, "sum over a correctly checksummed segment is all ones");

    // Offload value: folded pseudo sum, not complemented.
    let mut ps: u32 = pseudo.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while ps > 0xffff {
        ps = (ps & 0xffff) + (ps >> 16);
    }
    assert_eq!(u32::from(pseudo_header_checksum(SRC, DST, seg.len() as u16)), ps);
}

fn arb_options() -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        proptest::option::of(any::<(u32, u32)>()),
        proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
    )
        .prop_map(|(mss, ws, sp, ts, blocks)| {
            let mut sack_blocks = SackBlocks::new();
            for (l, r) in blocks {
                sack_blocks.push(SeqNum(l), SeqNum(r));
            }
            TcpOptions { mss, window_scale: ws, sack_permitted: sp, timestamps: ts, sack_blocks }
        })
}

fn arb_repr() -> impl Strategy<Value = TcpRepr> {
    (any::<(u16, u16, u32, u32, u8, u16, u16)>(), arb_options()).prop_map(
        |((src_port, dst_port, seq, ack, flags, window, urgent), options)| TcpRepr {
            src_port,
            dst_port,
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags: Flags(flags),
            window,
            urgent,
            options,
        },
    )
}

proptest! {
    #[test]
    fn parse_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(p) = Packet::new_checked(&data[..]) {
            prop_assert!(p.header_len() >= HEADER_LEN && p.header_len() <= data.len());
            let _ = p.payload();
            if let Ok(r) = TcpRepr::parse(&p) {
                prop_assert!(r.header_len() <= MAX_HEADER_LEN);
                let mut out = [0u8; MAX_HEADER_LEN];
                let n = r.emit(&mut out);
                prop_assert_eq!(n, r.header_len());
            }
        }
    }

    #[test]
    fn parse_arbitrary_options_never_panics(opts in proptest::collection::vec(any::<u8>(), 0..=40)) {
        let _ = parse_opts(&opts);
    }

    #[test]
    fn emit_parse_identity(repr in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..16)) {
        let mut expected = repr;
        expected.options.sack_blocks.truncate(repr.options.sack_blocks_emitted());
        let hlen = repr.header_len();
        prop_assert!(hlen % 4 == 0 && hlen <= MAX_HEADER_LEN);
        let mut buf = vec![0x5a; hlen + payload.len()];
        prop_assert_eq!(repr.emit(&mut buf), hlen);
        buf[hlen..].copy_from_slice(&payload);
        fill_checksum(&mut buf, SRC, DST);
        prop_assert!(verify_checksum(&buf, SRC, DST));
        let p = Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert_eq!(TcpRepr::parse(&p).unwrap(), expected);
        // Alone, all four SACK blocks fit.
        if repr.options.len_without_sack() == 0 {
            prop_assert_eq!(expected.options.sack_blocks, repr.options.sack_blocks);
        }
    }
}
