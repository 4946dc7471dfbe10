//! Fuzz target: TCP header parsing. `Packet::new_checked` and `TcpRepr::parse` must never
//! panic on arbitrary bytes; whatever parses must emit a header that parses back to the same
//! representation (SACK blocks excepted that no longer fit beside the canonical option layout),
//! and the software checksum must verify after being filled in.
#![no_main]

use std::net::Ipv4Addr;

use dataplane::wire::tcp::{fill_checksum, verify_checksum, Packet, TcpRepr, MAX_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = (packet.payload(), packet.options(), packet.flags(), packet.checksum());
    let Ok(repr) = TcpRepr::parse(&packet) else { return };

    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = repr.emit(&mut buf);
    assert_eq!(n, repr.header_len(), "emit length disagrees with header_len");
    assert!(n <= MAX_HEADER_LEN && n % 4 == 0);
    let emitted = Packet::new_checked(&buf[..n]).expect("emitted header is well-formed");
    let again = TcpRepr::parse(&emitted).expect("emitted header parses");
    let kept = again.options.sack_blocks.len();
    assert!(kept <= repr.options.sack_blocks.len());
    assert_eq!(again.options.sack_blocks.as_slice(), &repr.options.sack_blocks.as_slice()[..kept]);
    let mut expected = repr;
    expected.options.sack_blocks.truncate(kept);
    assert_eq!(again, expected, "emit -> parse round trip");

    if data.len() <= usize::from(u16::MAX) {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut seg = data.to_vec();
        fill_checksum(&mut seg, src, dst);
        assert!(verify_checksum(&seg, src, dst), "filled checksum verifies");
    }
});
