use super::*;
use crate::wire::v6_testdata::{hex, ip, NA, NS};
use proptest::prelude::*;

fn a(s: &str) -> Ipv6Addr {
    s.parse().expect("literal")
}

/// The ICMPv6 message of a captured frame without extension headers.
fn msg(frame: &str) -> Vec<u8> {
    ip(frame).split_off(40)
}

/// A router advertisement laid out by hand per RFC 4861 §4.2, §4.6.1, §4.6.2, §4.6.4 (the
/// form radvd sends): hop limit 64, M clear, O set, lifetime 1800 s, reachable 30 000 ms,
/// retrans 1 000 ms; options: source link-layer address, MTU 1500, an unknown option
/// (type 25, RDNSS, RFC 8106: skipped), prefix 2001:db8::/64 with L and A, 86 400 / 14 400 s.
fn router_advert() -> Vec<u8> {
    hex(concat!(
        "86000000", "40", "40", "0708", "00007530", "000003e8",
        "0101", "020000000001",
        "0501", "0000", "000005dc",
        "1903", "0000", "00000e10", "20010db8000000000000000000000053",
        "0304", "40", "c0", "00015180", "00003840", "00000000", "20010db8000000000000000000000000",
    ))
}

fn prefix() -> PrefixInfo {
    PrefixInfo {
        prefix_len: 64,
        on_link: true,
        autonomous: true,
        valid_lifetime: 86_400,
        preferred_lifetime: 14_400,
        prefix: a("2001:db8::"),
    }
}

#[test]
fn parses_router_advert() {
    let r = Repr::parse(&router_advert()).expect("valid");
    let mut prefixes = Prefixes::default();
    assert!(prefixes.push(prefix()));
    assert_eq!(
        r,
        Repr::RouterAdvert {
            hop_limit: 64,
            managed: false,
            other_config: true,
            router_lifetime: 1800,
            reachable_time: 30_000,
            retrans_time: 1_000,
            lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 1])),
            mtu: Some(1500),
            prefixes,
        }
    );
    // Emitting it gives the same bytes less the unknown option.
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut out).expect("fits");
    let mut expect = router_advert();
    expect.drain(32..56);
    assert_eq!(out, expect);
}

#[test]
fn parses_captured_solicitation_and_advertisement() {
    let ns = Repr::parse(&msg(NS)).expect("valid");
    assert_eq!(
        ns,
        Repr::NeighborSolicit { target_addr: a("2001:db8::2"), lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 1])) }
    );
    let mut out = vec![0u8; ns.buffer_len()];
    ns.emit(&mut out).expect("fits");
    let mut m = msg(NS);
    m[2..4].fill(0);
    assert_eq!(out, m, "the kernel's solicitation, checksum left to ICMPv6");
    assert!(matches!(Repr::parse(&msg(NA)), Ok(Repr::NeighborAdvert { solicited: true, .. })));
}

#[test]
fn rejects_invalid_messages() {
    let ns = msg(NS);
    // Zero-length option (RFC 4861 §4.6), even after a valid one.
    let mut b = ns.clone();
    b[25] = 0;
    assert_eq!(Repr::parse(&b), Err(Error::ZeroLengthOption));
    let mut b = ns.clone();
    b.extend_from_slice(&[7, 0]);
    assert_eq!(Repr::parse(&b), Err(Error::ZeroLengthOption));
    // An option running past the end, and a lone option type byte.
    let mut b = ns.clone();
    b[25] = 2;
    assert_eq!(Repr::parse(&b), Err(Error::Truncated));
    let mut b = ns.clone();
    b.push(1);
    assert_eq!(Repr::parse(&b), Err(Error::Truncated));
    // A link-layer address option that is not Ethernet-sized (RFC 2464 §6).
    let mut b = ns.clone();
    b[25] = 2;
    b.extend_from_slice(&[0; 8]);
    assert_eq!(Repr::parse(&b), Err(Error::BadOption));
    // Non-zero code, short fixed part, multicast target.
    let mut b = ns.clone();
    b[1] = 1;
    assert_eq!(Repr::parse(&b), Err(Error::BadCode));
    assert_eq!(Repr::parse(&ns[..23]), Err(Error::Truncated));
    assert_eq!(Repr::parse(&ns[..1]), Err(Error::Truncated));
    let mut b = ns.clone();
    b[8] = 0xff;
    assert_eq!(Repr::parse(&b), Err(Error::MulticastTarget));
    let mut b = msg(NA);
    b[8] = 0xff;
    assert_eq!(Repr::parse(&b), Err(Error::MulticastTarget));
    // Not NDP.
    assert_eq!(Repr::parse(&[128, 0, 0, 0, 0, 0, 0, 0]), Err(Error::NotNdp));
    // Router advertisement options of the wrong size.
    let mut ra = router_advert();
    ra[25] = 2; // MTU option of 16 bytes
    assert_eq!(Repr::parse(&ra), Err(Error::BadOption));
    let mut ra = router_advert();
    ra[57] = 3; // prefix information of 24 bytes
    assert_eq!(Repr::parse(&ra), Err(Error::BadOption));
    let mut ra = router_advert();
    ra[58] = 129; // prefix length above 128
    assert_eq!(Repr::parse(&ra), Err(Error::BadOption));
}

#[test]
fn solicitation_without_options_is_dad() {
    // Duplicate address detection: no source link-layer address option (RFC 4862 §5.4.2).
    let b = msg(NS);
    assert_eq!(Repr::parse(&b[..24]), Ok(Repr::NeighborSolicit { target_addr: a("2001:db8::2"), lladdr: None }));
    assert_eq!(Repr::parse(&hex("8500000000000000")), Ok(Repr::RouterSolicit { lladdr: None }));
}

#[test]
fn prefixes_beyond_the_limit_are_skipped() {
    let mut ra = router_advert();
    let opt = ra[56..88].to_vec();
    for i in 0..MAX_PREFIXES {
        let mut o = opt.clone();
        o[18] = u8::try_from(i + 1).expect("small");
        ra.extend_from_slice(&o);
    }
    let Ok(Repr::RouterAdvert { prefixes, .. }) = Repr::parse(&ra) else { panic!("valid") };
    assert_eq!(prefixes.len(), MAX_PREFIXES);
    let firsts: Vec<_> = prefixes.iter().map(|p| p.prefix.octets()[2]).collect();
    assert_eq!(firsts, [0x0d, 0x01, 0x02, 0x03]);
    let mut full = prefixes;
    assert!(!full.push(prefix()));
    assert_eq!(full, prefixes);
    assert!(Prefixes::default().is_empty() && !prefixes.is_empty());
}

#[test]
fn emit_into_short_buffer_fails() {
    let r = Repr::parse(&msg(NS)).expect("valid");
    let mut buf = [0u8; 31];
    assert_eq!(r.emit(&mut buf), Err(Error::Truncated));
}

fn mac() -> impl Strategy<Value = Option<EthernetAddress>> {
    proptest::option::of(any::<[u8; 6]>().prop_map(EthernetAddress))
}

fn unicast() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(|v| Ipv6Addr::from(v & !(0xff << 120)))
}

fn repr() -> impl Strategy<Value = Repr> {
    let pi = (0u8..=128, any::<bool>(), any::<bool>(), any::<u32>(), any::<u32>(), any::<u128>()).prop_map(
        |(prefix_len, on_link, autonomous, valid_lifetime, preferred_lifetime, p)| PrefixInfo {
            prefix_len,
            on_link,
            autonomous,
            valid_lifetime,
            preferred_lifetime,
            prefix: Ipv6Addr::from(p),
        },
    );
    prop_oneof![
        mac().prop_map(|lladdr| Repr::RouterSolicit { lladdr }),
        (unicast(), mac()).prop_map(|(target_addr, lladdr)| Repr::NeighborSolicit { target_addr, lladdr }),
        (any::<[bool; 3]>(), unicast(), mac()).prop_map(|([router, solicited, override_], target_addr, lladdr)| {
            Repr::NeighborAdvert { router, solicited, override_, target_addr, lladdr }
        }),
        (
            any::<(u8, bool, bool, u16, u32, u32)>(),
            mac(),
            proptest::option::of(any::<u32>()),
            proptest::collection::vec(pi, 0..=MAX_PREFIXES),
        )
            .prop_map(|((hop_limit, managed, other_config, router_lifetime, reachable_time, retrans_time), lladdr, mtu, ps)| {
                let mut prefixes = Prefixes::default();
                for p in ps {
                    prefixes.push(p);
                }
                Repr::RouterAdvert {
                    hop_limit,
                    managed,
                    other_config,
                    router_lifetime,
                    reachable_time,
                    retrans_time,
                    lladdr,
                    mtu,
                    prefixes,
                }
            }),
    ]
}

proptest! {
    #[test]
    fn emit_parse_round_trip(r in repr()) {
        let mut buf = vec![0xa5u8; r.buffer_len()];
        r.emit(&mut buf).expect("fits");
        prop_assert_eq!(Repr::parse(&buf), Ok(r));
    }

    #[test]
    fn parse_never_panics(ty in 133u8..=136, body in proptest::collection::vec(any::<u8>(), 0..120)) {
        let mut m = vec![ty, 0];
        m.extend_from_slice(&body);
        if let Ok(r) = Repr::parse(&m) {
            let mut out = vec![0u8; r.buffer_len()];
            prop_assert!(r.emit(&mut out).is_ok());
        }
    }
}
