//! Unit tests of IPv6 on [`Interface`]: answers byte-compared with Linux's (frames captured
//! from two namespaces, `wire/v6_testdata.rs`), one test per drop reason with its counter,
//! and a never-panics property over arbitrary IPv6 frames.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV6};

use super::*;
use crate::net::{InterfaceConfig, LinkResult, RxChecksum};
use crate::wire::v6_testdata::{hex, ECHO_REQUEST, NA, NS};
use proptest::prelude::*;

/// The address and MAC of the namespace that answered in the capture: we stand in for it.
pub(super) const OUR_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
pub(super) const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

pub(super) fn a(s: &str) -> Ipv6Addr {
    s.parse().expect("literal")
}

pub(super) fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn iface() -> Interface {
    let mut i = Interface::new(InterfaceConfig {
        mac: OUR_MAC,
        ipv4: Ipv4Addr::new(10, 0, 0, 1),
        prefix_len: 24,
        gateway: None,
        mtu: 1500,
    });
    i.enable_ipv6(Ipv6Config { addr: Some(a("2001:db8::2")), prefix_len: 64, dad_transmits: 0, accept_ra: false, ..Default::default() });
    i
}

pub(super) fn drain(i: &mut Interface) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    i.poll_transmit(t(0), &mut |f: &[u8]| out.push(f.to_vec()));
    out
}

/// [`drain`] without the MLD reports (to 33:33:00:00:00:16) that polls send; the tests of
/// MLD count those.
pub(super) fn drain_no_mld(i: &mut Interface) -> Vec<Vec<u8>> {
    let mld = addr::multicast_mac(crate::wire::mld::ALL_MLDV2_ROUTERS);
    drain(i).into_iter().filter(|f| f[..6] != mld.0).collect()
}

/// An Ethernet frame carrying an ICMPv6 message from `src` to `dst`.
pub(super) fn frame6(eth_dst: EthernetAddress, src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, msg: &icmpv6::Repr<'_>) -> Vec<u8> {
    let ip = ipv6::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: ipv6::next_header::ICMPV6,
        payload_len: msg.buffer_len(),
        hop_limit,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut f = ethernet::EthernetRepr { src_addr: PEER_MAC, dst_addr: eth_dst, ethertype: EtherType::Ipv6 }.to_bytes().to_vec();
    f.resize(ethernet::HEADER_LEN + ip.total_len(), 0);
    ip.emit(&mut ipv6::Packet::new_unchecked(&mut f[ethernet::HEADER_LEN..])).expect("fits");
    msg.emit(src, dst, &mut icmpv6::Packet::new_unchecked(&mut f[ethernet::HEADER_LEN + ipv6::HEADER_LEN..])).expect("fits");
    f
}

pub(super) fn ns(target: Ipv6Addr, lladdr: Option<EthernetAddress>) -> icmpv6::Repr<'static> {
    icmpv6::Repr::Ndp(ndp::Repr::NeighborSolicit { target_addr: target, lladdr })
}

pub(super) fn drop_of(i: &mut Interface, f: &[u8], reason: DropReason) {
    let before = i.counters().drops(reason);
    assert_eq!(i.handle_frame(f, t(1), RxChecksum::Unknown), Input::Dropped(reason));
    assert_eq!(i.counters().drops(reason), before + 1, "{}", reason.name());
    assert!(drain(i).is_empty());
}

#[test]
fn answers_a_solicitation_as_linux_does() {
    let mut i = iface();
    assert_eq!(i.handle_frame(&hex(NS), t(1), RxChecksum::Unknown), Input::Consumed);
    assert_eq!(drain(&mut i), vec![hex(NA)], "our advertisement is the kernel's, byte for byte");
    assert_eq!(i.ipv6_neighbor(a("2001:db8::1"), t(2)), Some(PEER_MAC));
    let c = i.counters();
    assert_eq!((c.rx_ipv6, c.rx_icmpv6, c.tx_neighbor_advert, c.ndp_learned), (1, 1, 1, 1));
}

#[test]
fn answers_for_the_link_local_address() {
    let mut i = iface();
    let ll = i.ipv6_link_local().expect("enabled");
    assert_eq!(ll, a("fe80::ff:fe00:2"));
    let group = ipv6::addr::solicited_node(ll);
    let f = frame6(ipv6::addr::multicast_mac(group), a("fe80::1"), group, 255, &ns(ll, Some(PEER_MAC)));
    assert_eq!(i.handle_frame(&f, t(1), RxChecksum::Unknown), Input::Consumed);
    let out = drain(&mut i);
    assert_eq!(out.len(), 1);
    let ip = ipv6::Packet::new_checked(&out[0][14..]).expect("valid");
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (ll, a("fe80::1"), 255));
    let msg = icmpv6::Packet::new_checked(ip.payload()).expect("valid");
    let na = ndp::Repr::NeighborAdvert { router: false, solicited: true, override_: true, target_addr: ll, lladdr: Some(OUR_MAC) };
    assert_eq!(icmpv6::Repr::parse(ll, a("fe80::1"), &msg, true), Ok(icmpv6::Repr::Ndp(na)));
}

#[test]
fn echo_request_is_answered() {
    let mut i = iface();
    let req = hex(ECHO_REQUEST);
    assert_eq!(i.handle_frame(&req, t(1), RxChecksum::Unknown), Input::Consumed);
    let out = drain(&mut i);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..12], &[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    let ip = ipv6::Packet::new_checked(&out[0][14..]).expect("valid");
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    assert_eq!((src, dst), (a("2001:db8::2"), a("2001:db8::1")));
    let msg = icmpv6::Packet::new_checked(ip.payload()).expect("valid");
    let data = [0x61, 0x62, 0x63, 0x64, 0, 0, 0, 0];
    assert_eq!(icmpv6::Repr::parse(src, dst, &msg, true), Ok(icmpv6::Repr::EchoReply { ident: 0x34e3, seq_no: 1, data: &data }));
    assert_eq!(i.counters().tx_icmpv6_echo_reply, 1);
    // To all-nodes: not answered (counted).
    let echo = icmpv6::Repr::EchoRequest { ident: 1, seq_no: 1, data: b"x" };
    let f = frame6(ipv6::addr::multicast_mac(ipv6::addr::ALL_NODES), a("fe80::1"), ipv6::addr::ALL_NODES, 64, &echo);
    drop_of(&mut i, &f, DropReason::Icmpv6Other);
}

#[test]
fn defends_an_address_probed_by_dad() {
    let mut i = iface();
    let group = ipv6::addr::solicited_node(a("2001:db8::2"));
    let f = frame6(ipv6::addr::multicast_mac(group), Ipv6Addr::UNSPECIFIED, group, 255, &ns(a("2001:db8::2"), None));
    assert_eq!(i.handle_frame(&f, t(1), RxChecksum::Unknown), Input::Consumed);
    let out = drain(&mut i);
    assert_eq!(&out[0][..6], &[0x33, 0x33, 0, 0, 0, 1]);
    let ip = ipv6::Packet::new_checked(&out[0][14..]).expect("valid");
    assert_eq!(ip.dst_addr(), ipv6::addr::ALL_NODES);
    let msg = icmpv6::Packet::new_checked(ip.payload()).expect("valid");
    let r = icmpv6::Repr::parse(ip.src_addr(), ip.dst_addr(), &msg, true);
    assert!(matches!(r, Ok(icmpv6::Repr::Ndp(ndp::Repr::NeighborAdvert { solicited: false, override_: true, .. }))));
    // From :: with a link-layer option, or to a unicast address: invalid.
    let f = frame6(ipv6::addr::multicast_mac(group), Ipv6Addr::UNSPECIFIED, group, 255, &ns(a("2001:db8::2"), Some(PEER_MAC)));
    drop_of(&mut i, &f, DropReason::NdpInvalid);
    let f = frame6(OUR_MAC, Ipv6Addr::UNSPECIFIED, a("2001:db8::2"), 255, &ns(a("2001:db8::2"), None));
    drop_of(&mut i, &f, DropReason::NdpInvalid);
}

#[test]
fn advertisements_update_known_neighbours_only() {
    let mut i = iface();
    let na = |target: &str, mac: EthernetAddress, solicited: bool| {
        icmpv6::Repr::Ndp(ndp::Repr::NeighborAdvert {
            router: false,
            solicited,
            override_: true,
            target_addr: a(target),
            lladdr: Some(mac),
        })
    };
    let other = EthernetAddress([2, 0, 0, 0, 0, 9]);
    // Unknown neighbour: consumed, nothing learnt (RFC 4861 §7.2.5).
    let f = frame6(OUR_MAC, a("2001:db8::9"), a("2001:db8::2"), 255, &na("2001:db8::9", other, true));
    assert_eq!(i.handle_frame(&f, t(1), RxChecksum::Unknown), Input::Consumed);
    assert_eq!(i.ipv6_neighbor(a("2001:db8::9"), t(1)), None);
    // Known from its solicitation: updated.
    assert_eq!(i.handle_frame(&hex(NS), t(1), RxChecksum::Unknown), Input::Consumed);
    drain(&mut i);
    let f = frame6(OUR_MAC, a("2001:db8::1"), a("2001:db8::2"), 255, &na("2001:db8::1", other, true));
    assert_eq!(i.handle_frame(&f, t(2), RxChecksum::Unknown), Input::Consumed);
    assert_eq!(i.ipv6_neighbor(a("2001:db8::1"), t(2)), Some(other));
    // Someone else claiming our address.
    let f = frame6(OUR_MAC, a("2001:db8::9"), a("2001:db8::2"), 255, &na("2001:db8::2", other, false));
    drop_of(&mut i, &f, DropReason::NdpAddressConflict);
    // Solicited to a group.
    let f = frame6(ipv6::addr::multicast_mac(ipv6::addr::ALL_NODES), a("2001:db8::9"), ipv6::addr::ALL_NODES, 255, &na("2001:db8::9", other, true));
    drop_of(&mut i, &f, DropReason::NdpInvalid);
    // Entries expire (RFC 4861 §7.3.3 simplified to the ARP table's reachable time).
    i.poll(t(120_000));
    assert_eq!(i.ipv6_neighbor(a("2001:db8::1"), t(120_000)), None);
    assert_eq!(i.counters().ndp_expired, 1);
}

#[test]
fn drops_are_counted_by_reason() {
    let mut i = iface();
    let ns_frame = hex(NS);
    // Hop limit 254: crossed a router (not covered by the ICMPv6 checksum).
    let mut f = ns_frame.clone();
    f[14 + 7] = 254;
    drop_of(&mut i, &f, DropReason::NdpBadHopLimit);
    let mut f = ns_frame.clone();
    let last = f.len() - 1;
    f[last] ^= 1;
    drop_of(&mut i, &f, DropReason::Icmpv6BadChecksum);
    let group = ipv6::addr::solicited_node(a("2001:db8::2"));
    let gmac = ipv6::addr::multicast_mac(group);
    let f = frame6(gmac, a("2001:db8::1"), group, 255, &ns(a("2001:db8::3"), Some(PEER_MAC)));
    drop_of(&mut i, &f, DropReason::NdpNotForUs);
    let f = frame6(gmac, a("2001:db8::1"), group, 255, &ns(a("2001:db8::2"), None));
    drop_of(&mut i, &f, DropReason::NdpInvalid);
    let f = frame6(gmac, a("2001:db8::1"), group, 255, &ns(a("2001:db8::2"), Some(EthernetAddress::BROADCAST)));
    drop_of(&mut i, &f, DropReason::NdpInvalid);
    // Another group's MAC; our MAC but another address; a martian source.
    let other_group = ipv6::addr::solicited_node(a("2001:db8::3"));
    let f = frame6(ipv6::addr::multicast_mac(other_group), a("2001:db8::1"), other_group, 255, &ns(a("2001:db8::3"), None));
    drop_of(&mut i, &f, DropReason::NotForUs);
    let echo = icmpv6::Repr::EchoRequest { ident: 1, seq_no: 1, data: b"x" };
    let f = frame6(OUR_MAC, a("2001:db8::1"), a("2001:db8::3"), 64, &echo);
    drop_of(&mut i, &f, DropReason::Ipv6NotForUs);
    for src in ["ff02::1", "::1", "2001:db8::2", "::"] {
        let f = frame6(OUR_MAC, a(src), a("2001:db8::2"), 64, &echo);
        drop_of(&mut i, &f, DropReason::Ipv6MartianSrc);
    }
    // Router solicitations and redirects are for routers; router advertisements from a
    // global source are invalid; from a link-local one, counted.
    let rs = icmpv6::Repr::Ndp(ndp::Repr::RouterSolicit { lladdr: None });
    let f = frame6(OUR_MAC, a("fe80::1"), a("2001:db8::2"), 255, &rs);
    drop_of(&mut i, &f, DropReason::Icmpv6Other);
    let ra = icmpv6::Repr::Ndp(ndp::Repr::RouterAdvert {
        hop_limit: 64,
        managed: false,
        other_config: false,
        router_lifetime: 1800,
        reachable_time: 0,
        retrans_time: 0,
        lladdr: Some(PEER_MAC),
        mtu: Some(1500),
        prefixes: ndp::Prefixes::default(),
    });
    let f = frame6(OUR_MAC, a("2001:db8::1"), a("2001:db8::2"), 255, &ra);
    drop_of(&mut i, &f, DropReason::NdpInvalid);
    let f = frame6(OUR_MAC, a("fe80::1"), a("2001:db8::2"), 255, &ra);
    drop_of(&mut i, &f, DropReason::NdpRouterAdvertIgnored);
    assert_eq!(i.counters().rx_router_advert, 1, "valid, counted, not acted on with accept_ra off");
    // Malformed IPv6: truncated, bad version, payload past the frame.
    let echo_frame = hex(ECHO_REQUEST);
    drop_of(&mut i, &echo_frame[..14 + 39], DropReason::Ipv6Truncated);
    let mut f = echo_frame.clone();
    f[14] = 0x45;
    drop_of(&mut i, &f, DropReason::Ipv6BadVersion);
    drop_of(&mut i, &echo_frame[..echo_frame.len() - 1], DropReason::Ipv6BadPayloadLen);
    // UDP, a fragment, a routing header with segments left.
    let mut f = echo_frame.clone();
    f[14 + 6] = ipv6::next_header::UDP;
    drop_of(&mut i, &f, DropReason::Ipv6UnsupportedProtocol);
    let mut f = echo_frame.clone();
    f[14 + 6] = ipv6::next_header::FRAGMENT;
    f[14 + 40..14 + 44].copy_from_slice(&[58, 0, 0, 1]);
    drop_of(&mut i, &f, DropReason::Ipv6Fragment);
    f[14 + 6] = ipv6::next_header::ROUTING;
    f[14 + 40..14 + 44].copy_from_slice(&[58, 0, 4, 1]);
    drop_of(&mut i, &f, DropReason::Ipv6BadExtensionHeader);
    // A short ICMPv6 message.
    let mut f = echo_frame.clone();
    f[14 + 4..14 + 6].copy_from_slice(&4u16.to_be_bytes());
    drop_of(&mut i, &f, DropReason::Icmpv6Truncated);
}

#[test]
fn ipv6_is_dropped_when_not_enabled() {
    let mut i = Interface::new(InterfaceConfig {
        mac: OUR_MAC,
        ipv4: Ipv4Addr::new(10, 0, 0, 1),
        prefix_len: 24,
        gateway: None,
        mtu: 1500,
    });
    drop_of(&mut i, &hex(NS), DropReason::NotForUs);
    drop_of(&mut i, &hex(ECHO_REQUEST), DropReason::WrongEthertype);
    assert_eq!(i.ipv6_link_local(), None);
}

#[test]
fn echo_reply_fits_the_mtu() {
    let mut i = Interface::new(InterfaceConfig { mac: OUR_MAC, ipv4: Ipv4Addr::new(10, 0, 0, 1), prefix_len: 24, gateway: None, mtu: 1280 });
    i.enable_ipv6(Ipv6Config { addr: Some(a("2001:db8::2")), prefix_len: 64, dad_transmits: 0, accept_ra: false, ..Default::default() });
    let data = vec![7u8; 1400];
    let echo = icmpv6::Repr::EchoRequest { ident: 1, seq_no: 1, data: &data };
    let f = frame6(OUR_MAC, a("2001:db8::1"), a("2001:db8::2"), 64, &echo);
    assert_eq!(i.handle_frame(&f, t(1), RxChecksum::Unknown), Input::Consumed);
    let out = drain(&mut i);
    assert_eq!(out[0].len(), 14 + 1280);
}

/// The namespace that solicited in the capture: 02:00:00:00:00:01 with 2001:db8::1/64.
fn soliciting_iface(gateway: Option<Ipv6Addr>) -> Interface {
    let mut i = Interface::new(InterfaceConfig {
        mac: PEER_MAC,
        ipv4: Ipv4Addr::new(10, 0, 0, 2),
        prefix_len: 24,
        gateway: None,
        mtu: 1500,
    });
    i.enable_ipv6(Ipv6Config { addr: Some(a("2001:db8::1")), prefix_len: 64, gateway, dad_transmits: 0, accept_ra: false });
    i
}

#[test]
fn resolves_a_neighbour_as_linux_does_and_flushes_the_queue() {
    let mut i = soliciting_iface(None);
    let packet = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
    i.queue_ipv6(a("2001:db8::2"), packet.clone(), t(0));
    assert_eq!(drain(&mut i), vec![hex(NS)], "our solicitation is the kernel's, byte for byte");
    assert_eq!((i.counters().tx_neighbor_solicit, i.counters().ndp_queued), (1, 1));
    assert_eq!(i.link_header_for_v6(a("2001:db8::2"), t(1)), LinkResult::Pending);
    assert!(drain(&mut i).is_empty(), "one solicitation per retry interval");
    // The captured advertisement resolves it and releases the packet.
    assert_eq!(i.handle_frame(&hex(NA), t(2), RxChecksum::Unknown), Input::Consumed);
    let out = drain(&mut i);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..14], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd]);
    assert_eq!(&out[0][14..22], &packet[..]);
    assert_eq!(i.counters().tx_ipv6, 1);
    let LinkResult::Ready(h) = i.link_header_for_v6(a("2001:db8::2"), t(3)) else { panic!("resolved") };
    assert_eq!(&h[..6], &OUR_MAC.0);
    // Multicast goes to the group's MAC without resolution.
    let LinkResult::Ready(h) = i.link_header_for_v6(ipv6::addr::ALL_NODES, t(3)) else { panic!("multicast") };
    assert_eq!(&h[..6], &[0x33, 0x33, 0, 0, 0, 1]);
}

#[test]
fn off_link_goes_through_the_gateway_and_failures_are_counted() {
    let gw = a("fe80::1");
    let mut i = soliciting_iface(Some(gw));
    assert_eq!(i.route_v6(a("2001:db8::9")), a("2001:db8::9"));
    assert_eq!(i.route_v6(a("fe80::9")), a("fe80::9"));
    assert_eq!(i.route_v6(a("2001:db9::9")), gw);
    i.queue_ipv6(a("2001:db9::9"), vec![0x60; 48], t(0));
    i.queue_ipv6(a("2001:db9::8"), vec![0x60; 48], t(0));
    let out = drain(&mut i);
    assert_eq!(out.len(), 1);
    let ip = ipv6::Packet::new_checked(&out[0][14..]).expect("valid");
    // From our link-local address to the gateway's solicited-node group.
    assert_eq!(ip.src_addr(), i.ipv6_link_local().expect("enabled"));
    assert_eq!(ip.dst_addr(), ipv6::addr::solicited_node(gw));
    assert_eq!(&out[0][..6], &ipv6::addr::multicast_mac(ipv6::addr::solicited_node(gw)).0);
    // Retries every second, then failure with the queued packets dropped.
    i.poll(t(1000));
    i.poll(t(2000));
    assert_eq!(drain_no_mld(&mut i).len(), 2);
    i.poll(t(3000));
    assert_eq!(i.counters().ndp_resolution_failed, 1);
    assert_eq!(i.counters().ndp_unresolved_drop, 2);
    // Oversize packets are refused.
    i.queue_ipv6(a("2001:db8::2"), vec![0; 1501], t(4000));
    assert_eq!(i.counters().tx_too_big, 1);
}

/// An Ethernet frame carrying `l4` (upper-layer protocol `next`) from `src` to `dst`,
/// behind a hop-by-hop header when `hbh`.
fn ip6_frame(eth_dst: EthernetAddress, src: Ipv6Addr, dst: Ipv6Addr, next: u8, l4: &[u8], hbh: bool) -> Vec<u8> {
    let mut payload = Vec::new();
    if hbh {
        payload.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    payload.extend_from_slice(l4);
    let ip = ipv6::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: if hbh { ipv6::next_header::HOP_BY_HOP } else { next },
        payload_len: payload.len(),
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut f = ethernet::EthernetRepr { src_addr: PEER_MAC, dst_addr: eth_dst, ethertype: EtherType::Ipv6 }.to_bytes().to_vec();
    f.resize(ethernet::HEADER_LEN + ipv6::HEADER_LEN, 0);
    ip.emit(&mut ipv6::Packet::new_unchecked(&mut f[ethernet::HEADER_LEN..])).expect("fits");
    f.extend_from_slice(&payload);
    f
}

fn tcp_bytes(sport: u16, dport: u16, seq: u32, data: &[u8]) -> Vec<u8> {
    let mut seg = vec![0u8; 20];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&seq.to_be_bytes());
    seg[12] = 5 << 4;
    seg.extend_from_slice(data);
    seg
}

/// `ip6_input_finish` -> `tcp_v6_rcv`: a segment to our address goes up by offset, past
/// any extension headers; to a group or from `::` it is dropped and counted.
#[test]
fn tcp_over_ipv6_goes_up_by_offset() {
    let mut i = iface();
    let seg = tcp_bytes(40000, 80, 1, b"hello");
    for (hbh, verified) in [(false, RxChecksum::Unknown), (true, RxChecksum::Good)] {
        let f = ip6_frame(OUR_MAC, a("2001:db8::1"), a("2001:db8::2"), ipv6::next_header::TCP, &seg, hbh);
        let Input::Tcp { src, dst, l4_offset, l4_len, l4_checksum_verified } = i.handle_frame(&f, t(1), verified) else {
            panic!("TCP goes up");
        };
        assert_eq!((src, dst), (IpAddr::V6(a("2001:db8::1")), IpAddr::V6(a("2001:db8::2"))));
        assert_eq!(&f[l4_offset..l4_offset + l4_len], &seg[..]);
        assert_eq!(l4_offset, 14 + 40 + if hbh { 8 } else { 0 });
        assert_eq!(l4_checksum_verified, verified == RxChecksum::Good);
    }
    // Our link-local address takes TCP too.
    let ll = i.ipv6_link_local().expect("enabled");
    let f = ip6_frame(OUR_MAC, a("fe80::1"), ll, ipv6::next_header::TCP, &seg, false);
    assert!(matches!(i.handle_frame(&f, t(1), RxChecksum::Unknown), Input::Tcp { .. }));
    assert_eq!(i.counters().rx_tcp, 3);
    let group = ipv6::addr::solicited_node(a("2001:db8::2"));
    let f = ip6_frame(ipv6::addr::multicast_mac(group), a("2001:db8::1"), group, ipv6::next_header::TCP, &seg, false);
    drop_of(&mut i, &f, DropReason::Ipv6TcpToGroup);
    let f = ip6_frame(OUR_MAC, Ipv6Addr::UNSPECIFIED, a("2001:db8::2"), ipv6::next_header::TCP, &seg, false);
    drop_of(&mut i, &f, DropReason::Ipv6TcpToGroup);
}

/// `icmpv6_rcv` -> `tcp_v6_err`: a packet-too-big quoting a segment from our address goes
/// to the TCP layer with the quoted tuple and sequence number; one quoting another
/// source is dropped and counted.
#[test]
fn packet_too_big_quoting_our_segment_goes_to_tcp() {
    let mut i = iface();
    let ours = tcp_bytes(80, 40000, 0xdead_beef, &[0; 100]);
    let ptb = |src: Ipv6Addr| {
        let header = ipv6::Repr {
            src_addr: src,
            dst_addr: a("2001:db9::7"),
            next_header: ipv6::next_header::TCP,
            payload_len: ours.len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        frame6(OUR_MAC, a("2001:db8::fe"), a("2001:db8::2"), 64, &icmpv6::Repr::PktTooBig { mtu: 1400, header, data: &ours })
    };
    let input = i.handle_frame(&ptb(a("2001:db8::2")), t(1), RxChecksum::Unknown);
    let Input::Icmpv6PacketTooBig { quoted, mtu } = input else { panic!("for TCP, got {input:?}") };
    assert_eq!(mtu, 1400);
    assert_eq!(quoted.local, SocketAddrV6::new(a("2001:db8::2"), 80, 0, 0));
    assert_eq!(quoted.remote, SocketAddrV6::new(a("2001:db9::7"), 40000, 0, 0));
    assert_eq!(quoted.seq, 0xdead_beef);
    assert_eq!(i.counters().rx_icmpv6_packet_too_big, 1);
    drop_of(&mut i, &ptb(a("2001:db8::5")), DropReason::Icmpv6PacketTooBigForeign);
}

/// One call per step for either family (`ip_finish_output2` / `ip6_finish_output2`):
/// which addresses are ours, the next hop, the link header, the resolution's state.
#[test]
fn either_family_routes_and_resolves_through_one_call() {
    let gw = a("fe80::1");
    let mut i = soliciting_iface(Some(gw));
    let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    assert!(i.has_addr(v4) && i.has_addr(IpAddr::V6(a("2001:db8::1"))));
    assert!(i.has_addr(IpAddr::V6(i.ipv6_link_local().expect("enabled"))));
    assert!(!i.has_addr(IpAddr::V6(a("2001:db8::2"))) && !i.has_addr(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3))));
    assert_eq!(i.route_ip(IpAddr::V6(a("2001:db9::9"))), IpAddr::V6(gw));
    assert_eq!(i.route_ip(IpAddr::V6(a("2001:db8::2"))), IpAddr::V6(a("2001:db8::2")));
    let peer = IpAddr::V6(a("2001:db8::2"));
    assert_eq!(i.link_header_for_ip(peer, t(0)), LinkResult::Pending);
    assert!(i.neighbor_pending(peer) && !i.neighbor_resolved(peer, t(0)));
    assert_eq!(drain(&mut i), vec![hex(NS)], "the solicitation went out");
    assert_eq!(i.handle_frame(&hex(NA), t(1), RxChecksum::Unknown), Input::Consumed);
    assert!(i.neighbor_resolved(peer, t(1)) && !i.neighbor_pending(peer));
    let LinkResult::Ready(h) = i.link_header_for_ip(peer, t(1)) else { panic!("resolved") };
    assert_eq!(&h[..6], &OUR_MAC.0);
    assert_eq!(&h[12..], &[0x86, 0xdd]);
    // A port without IPv6 owns no v6 address and resolves none.
    let mut plain = Interface::new(InterfaceConfig {
        mac: PEER_MAC,
        ipv4: Ipv4Addr::new(10, 0, 0, 2),
        prefix_len: 24,
        gateway: None,
        mtu: 1500,
    });
    assert!(!plain.has_addr(peer));
    assert_eq!(plain.link_header_for_ip(peer, t(0)), LinkResult::Pending);
    assert!(!plain.neighbor_pending(peer));
}

/// Configured IPv6 backends stay in the IPv6 neighbour table: their next hops (and the
/// router) are pinned, and a new set replaces the old.
#[test]
fn ipv6_backends_next_hops_are_pinned() {
    let gw = a("fe80::1");
    let mut i = soliciting_iface(Some(gw));
    i.pin_neighbors_v6([a("2001:db8::7"), a("2001:db9::7")]);
    assert!(i.is_neighbor_pinned_v6(a("2001:db8::7")), "on the prefix: itself");
    assert!(i.is_neighbor_pinned_v6(gw), "off the prefix: the router");
    i.pin_neighbors_v6([a("2001:db8::8")]);
    assert!(!i.is_neighbor_pinned_v6(a("2001:db8::7")) && i.is_neighbor_pinned_v6(a("2001:db8::8")));
    assert!(i.is_neighbor_pinned_v6(gw), "the router stays pinned");
}

proptest! {
    #[test]
    fn arbitrary_ipv6_frames_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        next in prop_oneof![Just(0u8), Just(43), Just(44), Just(58), Just(60), any::<u8>()],
        to_group in any::<bool>(),
    ) {
        let mut i = iface();
        let dst = if to_group { ipv6::addr::solicited_node(a("2001:db8::2")) } else { a("2001:db8::2") };
        let eth_dst = if to_group { ipv6::addr::multicast_mac(dst) } else { OUR_MAC };
        let mut f = ethernet::EthernetRepr { src_addr: PEER_MAC, dst_addr: eth_dst, ethertype: EtherType::Ipv6 }.to_bytes().to_vec();
        let ip = ipv6::Repr {
            src_addr: a("fe80::1"), dst_addr: dst, next_header: next, payload_len: body.len(),
            hop_limit: 255, traffic_class: 0, flow_label: 0,
        };
        f.resize(14 + 40, 0);
        ip.emit(&mut ipv6::Packet::new_unchecked(&mut f[14..])).expect("fits");
        f.extend_from_slice(&body);
        let _ = i.handle_frame(&f, t(1), RxChecksum::Unknown);
        for out in drain(&mut i) {
            prop_assert!(out.len() <= 1514);
        }
    }
}
