//! Fuzz target: the IPv6, ICMPv6 and neighbour discovery parsers on arbitrary bytes. None
//! may panic; the extension-header walk stays inside the packet; whatever parses re-emits
//! (without extension headers or unknown options) to bytes that parse back to the same
//! value, with a checksum that verifies.
#![no_main]

use std::net::Ipv6Addr;

use dataplane::wire::{icmpv6, ipv6, ndp};
use libfuzzer_sys::fuzz_target;

fn icmp_round_trip(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8], verify: bool) {
    let Ok(p) = icmpv6::Packet::new_checked(msg) else { return };
    let Ok(r) = icmpv6::Repr::parse(src, dst, &p, verify) else { return };
    let _ = icmpv6::QuotedTcp::of(&r);
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(src, dst, &mut icmpv6::Packet::new_unchecked(&mut out[..])).expect("a parsed message emits");
    let q = icmpv6::Packet::new_checked(&out[..]).expect("emitted a header");
    assert!(q.verify_checksum(src, dst), "emitted checksum does not verify");
    assert_eq!(icmpv6::Repr::parse(src, dst, &q, true).expect("re-parses"), r);
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let verify = sel & 1 != 0;
    // The bytes as a whole IPv6 packet.
    if let Ok(p) = ipv6::Packet::new_checked(rest) {
        if let Ok(up) = p.upper_layer() {
            let end = ipv6::HEADER_LEN + p.payload().len();
            assert!(up.offset <= end, "upper layer past the payload");
            let r = ipv6::Repr::parse(&p).expect("walked once, walks again");
            let upper = rest.get(up.offset..end).expect("inside");
            let mut out = vec![0u8; r.total_len()];
            r.emit(&mut ipv6::Packet::new_unchecked(&mut out[..])).expect("fits");
            out[ipv6::HEADER_LEN..].copy_from_slice(upper);
            let q = ipv6::Packet::new_checked(&out[..]).expect("emitted");
            assert_eq!(ipv6::Repr::parse(&q), Ok(r));
            if up.protocol == ipv6::next_header::ICMPV6 {
                icmp_round_trip(p.src_addr(), p.dst_addr(), upper, verify);
            }
        }
    }
    // As an ICMPv6 message, a quoted packet, an extension-header chain and an NDP message.
    icmp_round_trip(Ipv6Addr::LOCALHOST, "ff02::1".parse().expect("literal"), rest, verify);
    let _ = ipv6::Repr::parse_quoted(rest);
    if let Ok(up) = ipv6::walk(sel, rest, sel & 2 != 0) {
        assert!(up.offset <= rest.len());
    }
    if let Ok(r) = ndp::Repr::parse(rest) {
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out).expect("fits");
        assert_eq!(ndp::Repr::parse(&out), Ok(r));
    }
});
