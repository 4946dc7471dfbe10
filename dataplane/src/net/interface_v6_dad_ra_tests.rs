//! Unit tests of duplicate address detection and router discovery on [`Interface`]: the
//! probes and solicitations on the wire, what a tentative or duplicate address does and
//! does not answer, and routes from advertisements.

use std::net::{IpAddr, Ipv4Addr};

use super::tests::{a, drain, drain_no_mld, drop_of, frame6, ns, t, OUR_MAC, PEER_MAC};
use super::*;
use crate::net::dad::AddrState;
use crate::net::{InterfaceConfig, RxChecksum};
use crate::wire::mld;
use crate::wire::ndp::{PrefixInfo, Prefixes};

const GLOBAL: &str = "2001:db8::2";

fn iface(dad_transmits: u8, accept_ra: bool, gateway: Option<Ipv6Addr>) -> Interface {
    let mut i = Interface::new(InterfaceConfig {
        mac: OUR_MAC,
        ipv4: Ipv4Addr::new(10, 0, 0, 1),
        prefix_len: 24,
        gateway: None,
        mtu: 1500,
    });
    i.enable_ipv6(Ipv6Config { addr: Some(a(GLOBAL)), prefix_len: 64, gateway, dad_transmits, accept_ra });
    i
}

/// The ICMPv6 message of an outgoing frame, with its IPv6 source, destination and hop
/// limit, and the frame's Ethernet destination.
fn sent(frame: &[u8]) -> (EthernetAddress, Ipv6Addr, Ipv6Addr, u8, icmpv6::Repr<'_>) {
    let eth = ethernet::Frame::new_checked(frame).expect("frame");
    let ip = ipv6::Packet::new_checked(&frame[ethernet::HEADER_LEN..]).expect("IPv6");
    let (src, dst, hops) = (ip.src_addr(), ip.dst_addr(), ip.hop_limit());
    let end = ethernet::HEADER_LEN + ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let msg = icmpv6::Packet::new_checked(&frame[ethernet::HEADER_LEN + ipv6::HEADER_LEN..end]).expect("ICMPv6");
    let repr = icmpv6::Repr::parse(src, dst, &msg, true).expect("valid ICMPv6");
    (eth.dst_addr(), src, dst, hops, repr)
}

fn echo_to(dst: Ipv6Addr) -> Vec<u8> {
    frame6(OUR_MAC, a("2001:db8::1"), dst, 64, &icmpv6::Repr::EchoRequest { ident: 1, seq_no: 1, data: b"x" })
}

fn ra(lifetime: u16, lladdr: Option<EthernetAddress>, prefixes: &[PrefixInfo]) -> icmpv6::Repr<'static> {
    let mut ps = Prefixes::default();
    for &p in prefixes {
        assert!(ps.push(p));
    }
    icmpv6::Repr::Ndp(ndp::Repr::RouterAdvert {
        hop_limit: 64,
        managed: false,
        other_config: false,
        router_lifetime: lifetime,
        reachable_time: 0,
        retrans_time: 0,
        lladdr,
        mtu: None,
        prefixes: ps,
    })
}

fn ra_frame(src: Ipv6Addr, msg: &icmpv6::Repr<'_>) -> Vec<u8> {
    frame6(addr::multicast_mac(addr::ALL_NODES), src, addr::ALL_NODES, 255, msg)
}

#[test]
fn addresses_are_probed_then_used_one_second_later() {
    let mut i = iface(1, false, None);
    let ll = i.ipv6_link_local().expect("enabled");
    assert_eq!(i.next_deadline(), Some(Instant::ZERO), "the probes are due at once");
    i.poll(t(0));
    let out = drain_no_mld(&mut i);
    assert_eq!(out.len(), 2);
    for (frame, target) in out.iter().zip([ll, a(GLOBAL)]) {
        // RFC 4862 §5.4.2: from ::, to the target's solicited-node group, hop limit 255,
        // no source link-layer option.
        let group = addr::solicited_node(target);
        let expected = icmpv6::Repr::Ndp(ndp::Repr::NeighborSolicit { target_addr: target, lladdr: None });
        assert_eq!(sent(frame), (addr::multicast_mac(group), Ipv6Addr::UNSPECIFIED, group, 255, expected));
    }
    assert_eq!(i.counters().tx_dad_probe, 2);
    // Tentative: not a source, packets to it dropped, solicitations for it unanswered.
    assert!(!i.has_addr(IpAddr::V6(a(GLOBAL))));
    assert!(i.holds_addr(IpAddr::V6(a(GLOBAL))), "held, not usable: a segment from it counts as an unusable source");
    assert!(!i.holds_addr(IpAddr::V6(a("2001:db8::3"))));
    drop_of(&mut i, &echo_to(a(GLOBAL)), DropReason::Ipv6DstTentative);
    let group = addr::solicited_node(a(GLOBAL));
    let solicit = frame6(addr::multicast_mac(group), a("2001:db8::1"), group, 255, &ns(a(GLOBAL), Some(PEER_MAC)));
    drop_of(&mut i, &solicit, DropReason::NdpTentativeTarget);
    assert_eq!(i.ipv6_addresses(), vec![(ll, AddrState::Tentative), (a(GLOBAL), AddrState::Tentative)]);
    i.poll(t(999));
    assert_eq!(i.counters().dad_preferred, 0);
    i.poll(t(1000));
    assert_eq!(i.counters().dad_preferred, 2);
    assert!(drain_no_mld(&mut i).is_empty(), "no more probes (one transmit), no router solicitation (accept_ra off)");
    assert!(i.has_addr(IpAddr::V6(a(GLOBAL))) && i.has_addr(IpAddr::V6(ll)));
    assert_eq!(i.handle_frame(&solicit, t(1001), RxChecksum::Unknown), Input::Consumed);
    assert_eq!(drain_no_mld(&mut i).len(), 1, "answered once preferred");
    assert_eq!(i.handle_frame(&echo_to(a(GLOBAL)), t(1002), RxChecksum::Unknown), Input::Consumed);
}

#[test]
fn an_advertisement_or_a_probe_for_a_tentative_address_makes_it_duplicate() {
    let mut i = iface(1, true, None);
    let ll = i.ipv6_link_local().expect("enabled");
    i.poll(t(0));
    let _ = drain_no_mld(&mut i);
    // RFC 4862 §5.4.4: another node advertises our global address.
    let na = icmpv6::Repr::Ndp(ndp::Repr::NeighborAdvert {
        router: false,
        solicited: false,
        override_: true,
        target_addr: a(GLOBAL),
        lladdr: Some(PEER_MAC),
    });
    // Linux defends it from the address itself, to all-nodes (`ndisc_recv_ns` ->
    // `ndisc_send_na`): not a martian source while ours is only tentative.
    let f = frame6(addr::multicast_mac(addr::ALL_NODES), a(GLOBAL), addr::ALL_NODES, 255, &na);
    assert_eq!(i.handle_frame(&f, t(10), RxChecksum::Unknown), Input::Consumed);
    // RFC 4862 §5.4.3: another node probes our link-local address at the same time.
    let group = addr::solicited_node(ll);
    let probe = frame6(addr::multicast_mac(group), Ipv6Addr::UNSPECIFIED, group, 255, &ns(ll, None));
    assert_eq!(i.handle_frame(&probe, t(20), RxChecksum::Unknown), Input::Consumed);
    assert!(drain_no_mld(&mut i).is_empty(), "a tentative address is not defended");
    assert_eq!(i.counters().dad_failed, 2);
    i.poll(t(5000));
    assert_eq!(i.ipv6_addresses(), vec![(ll, AddrState::Duplicate), (a(GLOBAL), AddrState::Duplicate)]);
    assert_eq!(i.counters().dad_preferred, 0);
    assert!(drain_no_mld(&mut i).is_empty(), "no router solicitation without a usable link-local address");
    // Never used: not a source, not answered, its group left.
    assert!(!i.has_addr(IpAddr::V6(a(GLOBAL))) && i.holds_addr(IpAddr::V6(a(GLOBAL))));
    drop_of(&mut i, &echo_to(a(GLOBAL)), DropReason::Ipv6DstTentative);
    let solicit = frame6(OUR_MAC, a("fe80::1"), a(GLOBAL), 255, &ns(a(GLOBAL), Some(PEER_MAC)));
    drop_of(&mut i, &solicit, DropReason::Ipv6DstTentative);
    assert!(!i.is_our_group_mac(addr::multicast_mac(addr::solicited_node(a(GLOBAL)))));
    // An advertisement for a preferred address is a conflict, counted, the address kept.
    let mut j = iface(0, false, None);
    let f = frame6(addr::multicast_mac(addr::ALL_NODES), a("fe80::1"), addr::ALL_NODES, 255, &na);
    drop_of(&mut j, &f, DropReason::NdpAddressConflict);
    assert!(j.has_addr(IpAddr::V6(a(GLOBAL))) && j.counters().dad_failed == 0);
}

#[test]
fn router_advertisements_give_the_default_route_and_on_link_prefixes() {
    let mut i = iface(1, true, None);
    let ll = i.ipv6_link_local().expect("enabled");
    let far = a("2001:db9::9");
    assert_eq!(i.route_v6(far), far, "no router known");
    i.poll(t(0));
    assert_eq!(drain_no_mld(&mut i).len(), 2, "the probes only");
    // Linux `addrconf_dad_completed`: a solicitation as soon as the link-local address is usable.
    i.poll(t(1000));
    let out = drain_no_mld(&mut i);
    assert_eq!(out.len(), 1);
    let rs = icmpv6::Repr::Ndp(ndp::Repr::RouterSolicit { lladdr: Some(OUR_MAC) });
    assert_eq!(sent(&out[0]), (addr::multicast_mac(addr::ALL_ROUTERS), ll, addr::ALL_ROUTERS, 255, rs));
    i.poll(t(4999));
    assert!(drain_no_mld(&mut i).is_empty());
    i.poll(t(5000));
    assert_eq!(drain_no_mld(&mut i).len(), 1, "again after RTR_SOLICITATION_INTERVAL");
    assert_eq!(i.counters().tx_router_solicit, 2);
    let router = a("fe80::1");
    let on_link = PrefixInfo {
        prefix_len: 64,
        on_link: true,
        autonomous: false,
        valid_lifetime: 7200,
        preferred_lifetime: 3600,
        prefix: a("2001:db8:5::"),
    };
    assert_eq!(i.handle_frame(&ra_frame(router, &ra(1800, Some(PEER_MAC), &[on_link])), t(6000), RxChecksum::Unknown), Input::Consumed);
    assert_eq!((i.counters().rx_router_advert, i.counters().ra_router_added, i.counters().ra_prefix_added), (1, 1, 1));
    assert_eq!(i.ipv6_routers(), vec![router]);
    assert_eq!(i.route_v6(far), router);
    assert_eq!(i.route_v6(a("2001:db8:5::7")), a("2001:db8:5::7"), "on the advertised prefix: direct");
    assert_eq!(i.ipv6_neighbor(router, t(6001)), Some(PEER_MAC), "its link-layer address recorded (§6.3.4)");
    let LinkResult::Ready(h) = i.link_header_for_ip(IpAddr::V6(far), t(6002)) else { panic!("the router is resolved") };
    assert_eq!(&h[..6], &PEER_MAC.0);
    i.poll(t(100_000));
    assert!(drain_no_mld(&mut i).is_empty(), "no solicitation after an advertisement");
    // The lifetime runs out: no default router any more.
    i.poll(t(6000 + 1_800_000));
    assert_eq!(i.counters().ra_router_removed, 1);
    assert_eq!(i.route_v6(far), far);
    // A later advertisement with lifetime 0 while known removes it at once.
    let _ = i.handle_frame(&ra_frame(router, &ra(60, None, &[])), t(2_000_000), RxChecksum::Unknown);
    assert_eq!(i.route_v6(far), router);
    let _ = i.handle_frame(&ra_frame(router, &ra(0, None, &[])), t(2_000_001), RxChecksum::Unknown);
    assert_eq!((i.route_v6(far), i.counters().ra_router_removed), (far, 2));
}

#[test]
fn a_configured_gateway_wins_and_accept_ra_off_ignores_advertisements() {
    let gw = a("fe80::99");
    let mut i = iface(0, true, Some(gw));
    let _ = i.handle_frame(&ra_frame(a("fe80::1"), &ra(1800, Some(PEER_MAC), &[])), t(1), RxChecksum::Unknown);
    assert_eq!(i.ipv6_routers(), vec![a("fe80::1")]);
    assert_eq!(i.route_v6(a("2001:db9::9")), gw);
    let mut j = iface(0, false, None);
    drop_of(&mut j, &ra_frame(a("fe80::1"), &ra(1800, Some(PEER_MAC), &[])), DropReason::NdpRouterAdvertIgnored);
    assert_eq!(j.counters().rx_router_advert, 1);
    assert!(j.ipv6_routers().is_empty());
    j.poll(t(10_000));
    assert!(drain_no_mld(&mut j).is_empty(), "no solicitations with accept_ra off");
}

/// A router advertisement with Cur Hop Limit `hops`.
fn ra_with_hop_limit(hops: u8) -> icmpv6::Repr<'static> {
    let mut r = ra(600, None, &[]);
    if let icmpv6::Repr::Ndp(ndp::Repr::RouterAdvert { hop_limit, .. }) = &mut r {
        *hop_limit = hops;
    }
    r
}

#[test]
fn an_advertised_hop_limit_is_used_for_what_we_originate() {
    let mut i = iface(0, true, None);
    assert_eq!(i.ipv6_hop_limit(), 64, "Linux's default before any advertisement");
    // RFC 4861 §6.3.4: a non-zero Cur Hop Limit becomes ours...
    let _ = i.handle_frame(&ra_frame(a("fe80::1"), &ra_with_hop_limit(37)), t(1), RxChecksum::Unknown);
    assert_eq!(i.ipv6_hop_limit(), 37);
    // ...an unspecified one (0) leaves it as it is...
    let _ = i.handle_frame(&ra_frame(a("fe80::1"), &ra_with_hop_limit(0)), t(2), RxChecksum::Unknown);
    assert_eq!(i.ipv6_hop_limit(), 37);
    // ...and the echo replies we originate carry it (TCP segments take it in `lcore::egress`).
    let _ = drain_no_mld(&mut i);
    assert_eq!(i.handle_frame(&echo_to(ll_of(&i)), t(3), RxChecksum::Unknown), Input::Consumed);
    let out = drain_no_mld(&mut i);
    let replies: Vec<u8> = out.iter().map(|f| sent(f)).filter(|r| matches!(r.4, icmpv6::Repr::EchoReply { .. })).map(|r| r.3).collect();
    assert_eq!(replies, vec![37]);
    // With accept_ra off, advertisements change nothing.
    let mut j = iface(0, false, None);
    let _ = j.handle_frame(&ra_frame(a("fe80::1"), &ra_with_hop_limit(5)), t(1), RxChecksum::Unknown);
    assert_eq!(j.ipv6_hop_limit(), 64);
}

/// A router advertisement with the MTU option `mtu`.
fn ra_with_mtu(mtu: u32) -> icmpv6::Repr<'static> {
    let mut r = ra(600, None, &[]);
    if let icmpv6::Repr::Ndp(ndp::Repr::RouterAdvert { mtu: m, .. }) = &mut r {
        *m = Some(mtu);
    }
    r
}

#[test]
fn an_advertised_mtu_within_bounds_becomes_the_ipv6_link_mtu() {
    let mut i = iface(0, true, None);
    assert_eq!((i.ipv6_mtu(), i.mtu()), (1500, 1500), "the port's until a router says otherwise");
    // RFC 4861 §6.3.4: a valid MTU option becomes LinkMTU (IPv4 keeps the port's).
    let _ = i.handle_frame(&ra_frame(a("fe80::1"), &ra_with_mtu(1400)), t(1), RxChecksum::Unknown);
    assert_eq!((i.ipv6_mtu(), i.mtu(), i.counters().ra_mtu_changed), (1400, 1500, 1));
    // Below IPv6's minimum or above the port's MTU: the option is ignored and counted, the
    // rest of the advertisement still applies (Linux `ndisc_router_discovery`).
    for bad in [1279, 1501, 70_000] {
        let _ = i.handle_frame(&ra_frame(a("fe80::1"), &ra_with_mtu(bad)), t(2), RxChecksum::Unknown);
    }
    assert_eq!((i.ipv6_mtu(), i.counters().ra_mtu_ignored, i.counters().ra_router_added), (1400, 3, 1));
    // Echo replies fit it: a 1452-byte echo (1500 on the wire) comes back cut to 1400.
    let _ = drain_no_mld(&mut i);
    let big = frame6(OUR_MAC, a("2001:db8::1"), ll_of(&i), 64, &icmpv6::Repr::EchoRequest { ident: 1, seq_no: 1, data: &[7u8; 1452] });
    assert_eq!(i.handle_frame(&big, t(3), RxChecksum::Unknown), Input::Consumed);
    let out = drain_no_mld(&mut i);
    let reply = out.iter().find(|f| matches!(sent(f).4, icmpv6::Repr::EchoReply { .. })).unwrap_or_else(|| panic!("an echo reply"));
    assert_eq!(reply.len(), ethernet::HEADER_LEN + 1400);
}

fn ll_of(i: &Interface) -> Ipv6Addr {
    i.ipv6_link_local().expect("enabled")
}

#[test]
fn the_router_list_is_bounded() {
    let mut i = iface(0, true, None);
    for k in 1..=crate::net::routers::MAX_ROUTERS as u16 {
        let r = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, k);
        assert_eq!(i.handle_frame(&ra_frame(r, &ra(600, None, &[])), t(1), RxChecksum::Unknown), Input::Consumed);
    }
    drop_of(&mut i, &ra_frame(a("fe80::ff"), &ra(600, None, &[])), DropReason::NdpRouterListFull);
    assert_eq!(i.ipv6_routers().len(), crate::net::routers::MAX_ROUTERS);
}

/// An MLD query body: general, `max_response_ms` to answer in.
fn general_query(max_response_ms: u16) -> Vec<u8> {
    let mut query = vec![0u8; 28];
    query[0] = mld::QUERY;
    query[4..6].copy_from_slice(&max_response_ms.to_be_bytes());
    query
}

/// An MLD message `body` from `src` to all-nodes with hop limit `hops`, behind the
/// hop-by-hop router alert.
fn mld_query_frame(src: Ipv6Addr, hops: u8, body: &[u8]) -> Vec<u8> {
    let mut f = ethernet::EthernetRepr { src_addr: PEER_MAC, dst_addr: addr::multicast_mac(addr::ALL_NODES), ethertype: EtherType::Ipv6 }.to_bytes().to_vec();
    let ip = ipv6::Repr {
        src_addr: src,
        dst_addr: addr::ALL_NODES,
        next_header: ipv6::next_header::HOP_BY_HOP,
        payload_len: 8 + body.len(),
        hop_limit: hops,
        traffic_class: 0,
        flow_label: 0,
    };
    f.resize(ethernet::HEADER_LEN + ipv6::HEADER_LEN, 0);
    ip.emit(&mut ipv6::Packet::new_unchecked(&mut f[ethernet::HEADER_LEN..])).expect("fits");
    f.extend_from_slice(&mld::HOP_BY_HOP_ROUTER_ALERT);
    let at = f.len();
    f.extend_from_slice(body);
    icmpv6::Packet::new_unchecked(&mut f[at..]).fill_checksum(src, addr::ALL_NODES);
    f
}

#[test]
fn a_quiet_lcore_keeps_the_state_but_leaves_the_link_to_the_speaker() {
    // Every lcore has its copy of the port; the first speaks for the link.
    let (mut speaker, mut quiet) = (iface(1, true, None), iface(1, true, None));
    quiet.set_link_speaker(false);
    let ll = speaker.ipv6_link_local().expect("enabled");
    for i in [&mut speaker, &mut quiet] {
        i.poll(t(0));
    }
    assert_eq!(drain_no_mld(&mut speaker).len(), 2, "the speaker probes both addresses");
    assert!(drain(&mut quiet).is_empty(), "no probe, no MLD join from a quiet copy");
    assert_eq!(quiet.counters().tx_dad_probe, 0);
    for i in [&mut speaker, &mut quiet] {
        i.poll(t(1000));
    }
    // Both finish detection together; only the speaker solicits routers.
    assert_eq!((speaker.counters().dad_preferred, quiet.counters().dad_preferred), (2, 2));
    assert!(quiet.has_addr(IpAddr::V6(a(GLOBAL))) && quiet.has_addr(IpAddr::V6(ll)));
    let out = drain_no_mld(&mut speaker);
    assert!(out.iter().any(|f| matches!(sent(f).4, icmpv6::Repr::Ndp(ndp::Repr::RouterSolicit { .. }))), "the speaker solicits routers");
    assert!(drain(&mut quiet).is_empty(), "a quiet copy does not");
    // Another node probes our address (the probe reaches every lcore): defended once.
    let group = addr::solicited_node(a(GLOBAL));
    let probe = frame6(addr::multicast_mac(group), Ipv6Addr::UNSPECIFIED, group, 255, &ns(a(GLOBAL), None));
    for i in [&mut speaker, &mut quiet] {
        assert_eq!(i.handle_frame(&probe, t(2000), RxChecksum::Unknown), Input::Consumed);
    }
    assert_eq!(drain_no_mld(&mut speaker).len(), 1, "the speaker defends the address");
    assert!(drain(&mut quiet).is_empty(), "a quiet copy does not");
    // A query reaches the lcore whose queue it arrived on: that one answers, quiet or not.
    let query = mld_query_frame(a("fe80::1"), 1, &general_query(1_000));
    assert_eq!(quiet.handle_frame(&query, t(3000), RxChecksum::Unknown), Input::Consumed);
    quiet.poll(t(4000));
    assert_eq!(drain(&mut quiet).len(), 1, "the query is answered");
    assert_eq!(quiet.counters().tx_mld_report, 1);
}

#[test]
fn solicited_node_groups_are_reported_and_queries_answered() {
    let mut i = iface(1, false, None);
    let ll = i.ipv6_link_local().expect("enabled");
    let report_of = |frame: &[u8]| {
        // Ethernet, IPv6 (hop limit 1, next header hop-by-hop), the router alert, MLDv2.
        let ip = ipv6::Packet::new_checked(&frame[ethernet::HEADER_LEN..]).expect("IPv6");
        assert_eq!((ip.hop_limit(), ip.next_header(), ip.dst_addr()), (1, ipv6::next_header::HOP_BY_HOP, mld::ALL_MLDV2_ROUTERS));
        assert_eq!(&frame[..6], &addr::multicast_mac(mld::ALL_MLDV2_ROUTERS).0);
        let at = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
        assert_eq!(&frame[at..at + 8], &mld::HOP_BY_HOP_ROUTER_ALERT);
        let msg = &frame[at + 8..at + 8 + usize::from(ip.payload_len()) - 8];
        assert!(icmpv6::Packet::new_unchecked(msg).verify_checksum(ip.src_addr(), ip.dst_addr()));
        let groups: Vec<(u8, Ipv6Addr)> = msg[8..]
            .chunks_exact(20)
            .map(|r| (r[0], Ipv6Addr::from(<[u8; 16]>::try_from(&r[4..20]).expect("16 bytes"))))
            .collect();
        (ip.src_addr(), msg[0], groups)
    };
    // Joined when the port comes up, from :: while the addresses are tentative (RFC 3810
    // §5.2.13): the two solicited-node groups (ours share one when their low 24 bits agree).
    i.poll(t(0));
    let out = drain(&mut i);
    let reports: Vec<_> = out.iter().filter(|f| f[..6] == addr::multicast_mac(mld::ALL_MLDV2_ROUTERS).0).collect();
    assert_eq!(reports.len(), 1);
    let groups = vec![(mld::record::CHANGE_TO_EXCLUDE, addr::solicited_node(ll))];
    assert_eq!(report_of(reports[0]), (Ipv6Addr::UNSPECIFIED, mld::REPORT_V2, groups.clone()), "fe80::ff:fe00:2 and 2001:db8::2 share ff02::1:ff00:2");
    i.poll(t(1000));
    let again = drain(&mut i);
    let report = again.iter().find(|f| f[..6] == addr::multicast_mac(mld::ALL_MLDV2_ROUTERS).0).expect("the second report");
    assert_eq!(report_of(report).0, ll, "from the link-local address once usable");
    assert_eq!(i.counters().tx_mld_report, 2);
    i.poll(t(30_000));
    assert!(drain(&mut i).is_empty(), "two unsolicited reports, no more");
    // A general query from a router: answered within its window, current state.
    let query = general_query(10_000);
    let query_frame = mld_query_frame;
    assert_eq!(i.handle_frame(&query_frame(a("fe80::1"), 1, &query), t(40_000), RxChecksum::Unknown), Input::Consumed);
    assert_eq!(i.counters().rx_mld_query, 1);
    i.poll(t(50_000));
    let out = drain(&mut i);
    assert_eq!(out.len(), 1, "one answer within the 10 s window");
    assert_eq!(report_of(&out[0]).2, vec![(mld::record::MODE_IS_EXCLUDE, addr::solicited_node(ll))]);
    // Not from a link-local router, or not hop limit 1: invalid.
    drop_of(&mut i, &query_frame(a("2001:db8::1"), 1, &query), DropReason::MldInvalid);
    drop_of(&mut i, &query_frame(a("fe80::1"), 2, &query), DropReason::MldInvalid);
}
