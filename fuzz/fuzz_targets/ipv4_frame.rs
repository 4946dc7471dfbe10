//! Fuzz target: the link/network layer on arbitrary Ethernet frames (IPv4 only, or dual-stack). `handle_frame` must
//! never panic, whatever the NIC's checksum verdict; every frame is either consumed,
//! dropped (and counted) or handed up as TCP with offsets inside the frame; what the
//! interface then transmits is never larger than the MTU plus the Ethernet header.
#![no_main]

use std::net::Ipv4Addr;

use dataplane::net::{Input, Interface, InterfaceConfig, Ipv6Config, RxChecksum};
use dataplane::time::{Duration, Instant};
use dataplane::wire::ethernet::EthernetAddress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frames)) = data.split_first() else { return };
    let mut iface = Interface::new(InterfaceConfig {
        mac: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
        ipv4: Ipv4Addr::new(198, 18, 0, 2),
        prefix_len: 24,
        gateway: Some(Ipv4Addr::new(198, 18, 0, 1)),
        mtu: 1500,
    });
    // Dual-stack when the selector's high bit is set: the IPv6 side (neighbour discovery,
    // ICMPv6 echo) too.
    if sel & 0x80 != 0 {
        iface.enable_ipv6(Ipv6Config {
            addr: Some("2001:db8::2".parse().expect("literal")),
            prefix_len: 64,
            gateway: Some("fe80::1".parse().expect("literal")),
            // Addresses usable at once (duplicate address detection has its unit tests),
            // router advertisements acted on.
            dad_transmits: 0,
            accept_ra: true,
        });
    }
    let csum = match sel % 3 {
        0 => RxChecksum::Unknown,
        1 => RxChecksum::Good,
        _ => RxChecksum::Bad,
    };
    let mut now = Instant::from_millis(1);
    // Several frames per input, split on a length prefix byte.
    let mut rest = frames;
    while let Some((&len, tail)) = rest.split_first() {
        let take = (usize::from(len) * 8).min(tail.len());
        let (frame, tail) = tail.split_at(take);
        rest = tail;
        if let Input::Tcp { l4_offset, l4_len, .. } = iface.handle_frame(frame, now, csum) {
            assert!(l4_offset.checked_add(l4_len).is_some_and(|end| end <= frame.len()), "TCP offsets outside the frame");
        }
        now += Duration::from_millis(u64::from(len) * 10);
        iface.poll(now);
        iface.poll_transmit(now, &mut |out: &[u8]| {
            assert!(out.len() <= 1500 + 14, "transmitted frame above the MTU: {}", out.len());
        });
    }
});
