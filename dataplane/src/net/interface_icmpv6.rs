//! ICMPv6 on an [`Interface`], both directions: neighbour discovery (solicitations and
//! advertisements, RFC 4861 §7; router advertisements into `routers.rs`, §6.3.4; duplicate
//! address detection probes and defence, RFC 4862 §5.4), MLDv2 queries and reports
//! (RFC 3810), and echo replies (RFC 4443 §4.2). `interface_v6.rs` hands ICMPv6 up from
//! `rx_ipv6` and keeps the addressing, routing and neighbour resolution these use.

use std::net::Ipv6Addr;

use super::super::{Input, Interface, MIN_FRAME_LEN};
use crate::net::counters::DropReason;
use crate::net::dad::AddrState;
use crate::net::mld::Report;
use crate::time::Instant;
use crate::wire::ethernet::{self, EtherType, EthernetAddress};
use crate::wire::ipv6::addr;
use crate::wire::{icmpv6, ipv6, mld, ndp};

impl Interface {
    pub(super) fn rx_icmpv6(
        &mut self,
        message: &[u8],
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        eth_src: EthernetAddress,
        now: Instant,
    ) -> Result<Input, DropReason> {
        let packet = icmpv6::Packet::new_checked(message).map_err(|_| DropReason::Icmpv6Truncated)?;
        // ICMPv6 checksums are not offloaded: always verify (RFC 4443 §2.3).
        if !packet.verify_checksum(src, dst) {
            return Err(DropReason::Icmpv6BadChecksum);
        }
        if packet.msg_type() == mld::QUERY {
            return self.rx_mld_query(message, src, hop_limit, now);
        }
        let repr = icmpv6::Repr::parse(src, dst, &packet, false).map_err(|e| match e {
            icmpv6::Error::Truncated => DropReason::Icmpv6Truncated,
            icmpv6::Error::BadChecksum => DropReason::Icmpv6BadChecksum,
            icmpv6::Error::Malformed => DropReason::Icmpv6Malformed,
            icmpv6::Error::Ndp(_) => DropReason::NdpInvalid,
        })?;
        if src.is_unspecified() && !matches!(repr, icmpv6::Repr::Ndp(ndp::Repr::NeighborSolicit { .. })) {
            // Only duplicate address detection sends from :: (RFC 4862 §5.4.2).
            return Err(DropReason::Ipv6MartianSrc);
        }
        match repr {
            // RFC 4443 §4.2: reply to echo requests to our unicast addresses, from the
            // address the request went to.
            icmpv6::Repr::EchoRequest { ident, seq_no, data } if !dst.is_multicast() => {
                self.reply_echo_v6(dst, src, eth_src, ident, seq_no, data);
                Ok(Input::Consumed)
            }
            // RFC 8201 / RFC 4443 §3.2: for the TCP layer when it quotes a segment of ours
            // (`tcp_v6_err` finds the connection and checks the sequence number).
            icmpv6::Repr::PktTooBig { mtu, .. } => match icmpv6::QuotedTcp::of(&repr) {
                Some(quoted) if self.v6.as_ref().is_some_and(|v| v.is_ours(*quoted.local.ip())) => {
                    self.counters.rx_icmpv6_packet_too_big += 1;
                    Ok(Input::Icmpv6PacketTooBig { quoted, mtu })
                }
                _ => Err(DropReason::Icmpv6PacketTooBigForeign),
            },
            icmpv6::Repr::Ndp(n) => {
                if hop_limit != ndp::HOP_LIMIT {
                    return Err(DropReason::NdpBadHopLimit);
                }
                self.rx_ndp(n, src, dst, eth_src, now)
            }
            _ => Err(DropReason::Icmpv6Other),
        }
    }

    pub(super) fn rx_ndp(
        &mut self,
        n: ndp::Repr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        eth_src: EthernetAddress,
        now: Instant,
    ) -> Result<Input, DropReason> {
        match n {
            ndp::Repr::NeighborSolicit { target_addr, lladdr } => {
                // RFC 4861 §7.1.1: no source link-layer option from ::, and from :: only to a
                // solicited-node group.
                if src.is_unspecified() && (lladdr.is_some() || !dst.is_multicast()) {
                    return Err(DropReason::NdpInvalid);
                }
                let state = self.v6.as_ref().and_then(|v| v.dad.state(target_addr));
                match state {
                    None => return Err(DropReason::NdpNotForUs),
                    Some(AddrState::Tentative) if src.is_unspecified() => {
                        // RFC 4862 §5.4.3: another node probes the address we are probing:
                        // neither may have it.
                        self.dad_conflict(target_addr);
                        return Ok(Input::Consumed);
                    }
                    Some(AddrState::Tentative | AddrState::Duplicate) => return Err(DropReason::NdpTentativeTarget),
                    Some(AddrState::Preferred) => {}
                }
                if src.is_unspecified() {
                    // RFC 4862 §5.4.3: someone probes an address we hold: defend it with an
                    // advertisement to all-nodes, S clear (once per port: every lcore gets
                    // the probe, `lcore::steer`).
                    if self.link_speaker {
                        self.send_neighbor_advert(target_addr, addr::ALL_NODES, addr::multicast_mac(addr::ALL_NODES), false);
                    }
                    return Ok(Input::Consumed);
                }
                // RFC 4861 §7.2.3: learn (or update) the sender from its link-layer option;
                // one is required when the solicitation was multicast.
                match lladdr {
                    Some(mac) if mac.is_unicast() => self.learn_v6(src, mac, now, true),
                    Some(_) => return Err(DropReason::NdpInvalid),
                    None if dst.is_multicast() => return Err(DropReason::NdpInvalid),
                    None => {}
                }
                let eth_dst = lladdr.unwrap_or(eth_src);
                self.send_neighbor_advert(target_addr, src, eth_dst, true);
                Ok(Input::Consumed)
            }
            ndp::Repr::NeighborAdvert { solicited, target_addr, lladdr, .. } => {
                // RFC 4861 §7.1.2: S must be clear in an advertisement to a group.
                if solicited && dst.is_multicast() {
                    return Err(DropReason::NdpInvalid);
                }
                if self.v6.as_ref().is_some_and(|v| v.holds(target_addr)) {
                    if lladdr == Some(self.cfg.mac) {
                        return Err(DropReason::NdpNotForUs);
                    }
                    // RFC 4862 §5.4.4: an advertisement for a tentative address of ours
                    // means another node has it; for a preferred one it is a conflict we
                    // count (Linux logs it and keeps the address).
                    if self.dad_conflict(target_addr) {
                        return Ok(Input::Consumed);
                    }
                    return Err(DropReason::NdpAddressConflict);
                }
                // RFC 4861 §7.2.5: an advertisement updates an existing entry only; without
                // a target link-layer option there is nothing to learn.
                match lladdr {
                    Some(mac) if mac.is_unicast() => {
                        self.learn_v6(target_addr, mac, now, false);
                        Ok(Input::Consumed)
                    }
                    Some(_) => Err(DropReason::NdpInvalid),
                    None => Ok(Input::Consumed),
                }
            }
            ndp::Repr::RouterAdvert { hop_limit, router_lifetime, lladdr, mtu, prefixes, .. } => {
                // RFC 4861 §6.1.2: only from a link-local source.
                if !addr::is_link_local(src) {
                    return Err(DropReason::NdpInvalid);
                }
                self.counters.rx_router_advert += 1;
                if !self.v6.as_ref().is_some_and(|v| v.cfg.accept_ra) {
                    return Err(DropReason::NdpRouterAdvertIgnored);
                }
                // §6.3.4: record the router's link-layer address, creating the entry.
                match lladdr {
                    Some(mac) if mac.is_unicast() => self.learn_v6(src, mac, now, true),
                    Some(_) => return Err(DropReason::NdpInvalid),
                    None => {}
                }
                let Some(v6) = &mut self.v6 else { return Ok(Input::Consumed) };
                // §6.3.4: a non-zero Cur Hop Limit becomes ours (Linux
                // `ndisc_router_discovery`; its `accept_ra_min_hop_limit` is 1).
                if hop_limit != 0 {
                    v6.hop_limit = hop_limit;
                }
                // The MTU option becomes the link MTU if it is at least IPv6's minimum and
                // at most the port's; otherwise only the option is ignored (as Linux).
                if let Some(m) = mtu {
                    match u16::try_from(m) {
                        Ok(m) if usize::from(m) >= ipv6::MIN_MTU && m <= self.cfg.mtu => {
                            if v6.mtu != m {
                                v6.mtu = m;
                                self.counters.ra_mtu_changed += 1;
                            }
                        }
                        _ => self.counters.ra_mtu_ignored += 1,
                    }
                }
                let learnt = v6.routers.on_advert(src, router_lifetime, prefixes.iter().copied(), now);
                let c = &mut self.counters;
                c.ra_router_added += u64::from(learnt.router_added);
                c.ra_router_removed += u64::from(learnt.router_removed);
                c.ra_prefix_added += u64::from(learnt.prefixes_added);
                c.add_drops(DropReason::NdpPrefixListFull, u64::from(learnt.prefixes_full));
                if learnt.routers_full {
                    return Err(DropReason::NdpRouterListFull);
                }
                Ok(Input::Consumed)
            }
            // We are not a router (RFC 4861 §6.2.6 is for routers).
            ndp::Repr::RouterSolicit { .. } => Err(DropReason::Icmpv6Other),
        }
    }

    pub(super) fn learn_v6(&mut self, a: Ipv6Addr, mac: EthernetAddress, now: Instant, create: bool) {
        let Some(v6) = &mut self.v6 else { return };
        let learned = v6.neighbors.learn(a, mac, now, create);
        if learned.updated {
            self.counters.ndp_learned += 1;
        }
        if learned.evicted {
            self.counters.ndp_evicted += 1;
        }
        let header = self.eth_header(mac, EtherType::Ipv6);
        for packet in learned.flushed {
            self.push_ipv6_frame(&header, &packet);
        }
    }

    /// An MLD query (RFC 3810 §6.2): from a link-local router, hop limit 1; answered later.
    pub(super) fn rx_mld_query(&mut self, message: &[u8], src: Ipv6Addr, hop_limit: u8, now: Instant) -> Result<Input, DropReason> {
        if !addr::is_link_local(src) || hop_limit != mld::HOP_LIMIT {
            return Err(DropReason::MldInvalid);
        }
        let q = mld::Query::parse(message).map_err(|_| DropReason::MldInvalid)?;
        let Some(v6) = &mut self.v6 else { return Err(DropReason::WrongEthertype) };
        let ours = v6.reported_groups().0.contains(&q.group);
        v6.mld.on_query(q, ours, now);
        self.counters.rx_mld_query += 1;
        Ok(Input::Consumed)
    }

    /// An MLDv2 report of our groups (RFC 3810 §5.2): from our link-local address once it
    /// is usable, from `::` before (§5.2.13), hop limit 1, behind a router alert (RFC 2711).
    pub(super) fn send_mld_report(&mut self, report: Report) {
        let Some(v6) = &self.v6 else { return };
        let (all, n) = v6.reported_groups();
        let (kind, groups) = match report {
            Report::Join => (mld::record::CHANGE_TO_EXCLUDE, &all[..n]),
            Report::Current(None) => (mld::record::MODE_IS_EXCLUDE, &all[..n]),
            Report::Current(Some(g)) => match all[..n].iter().position(|&x| x == g) {
                Some(i) => (mld::record::MODE_IS_EXCLUDE, &all[i..=i]),
                None => return,
            },
        };
        if groups.is_empty() {
            return;
        }
        let src = if v6.is_ours(v6.link_local) { v6.link_local } else { Ipv6Addr::UNSPECIFIED };
        let hbh = mld::HOP_BY_HOP_ROUTER_ALERT.len();
        let msg_len = mld::report_len(groups.len());
        let ip = ipv6::Repr {
            src_addr: src,
            dst_addr: mld::ALL_MLDV2_ROUTERS,
            next_header: ipv6::next_header::HOP_BY_HOP,
            payload_len: hbh + msg_len,
            hop_limit: mld::HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut frame = vec![0u8; (ethernet::HEADER_LEN + ipv6::HEADER_LEN + hbh + msg_len).max(MIN_FRAME_LEN)];
        frame[..ethernet::HEADER_LEN].copy_from_slice(&self.eth_header(addr::multicast_mac(mld::ALL_MLDV2_ROUTERS), EtherType::Ipv6));
        let rest = &mut frame[ethernet::HEADER_LEN..];
        let (ip_part, rest) = rest.split_at_mut(ipv6::HEADER_LEN);
        let (hbh_part, rest) = rest.split_at_mut(hbh);
        hbh_part.copy_from_slice(&mld::HOP_BY_HOP_ROUTER_ALERT);
        if ip.emit(&mut ipv6::Packet::new_unchecked(ip_part)).is_err()
            || mld::emit_report(src, kind, groups, &mut rest[..msg_len]).is_err()
        {
            return;
        }
        if self.push_tx(frame) {
            self.counters.tx_mld_report += 1;
        }
    }

    /// Marks our tentative address `a` duplicate (Linux `addrconf_dad_failure`); false if it
    /// was not tentative.
    pub(super) fn dad_conflict(&mut self, a: Ipv6Addr) -> bool {
        let failed = self.v6.as_mut().is_some_and(|v| v.dad.conflict(a));
        if failed {
            self.counters.dad_failed += 1;
        }
        failed
    }

    /// A duplicate address detection probe for `target` (RFC 4862 §5.4.2): a solicitation
    /// from `::` to its solicited-node group, without a source link-layer option.
    pub(super) fn send_dad_probe(&mut self, target: Ipv6Addr) {
        let group = addr::solicited_node(target);
        let ns = icmpv6::Repr::Ndp(ndp::Repr::NeighborSolicit { target_addr: target, lladdr: None });
        if self.push_icmpv6(Ipv6Addr::UNSPECIFIED, group, addr::multicast_mac(group), ndp::HOP_LIMIT, &ns) {
            self.counters.tx_dad_probe += 1;
        }
    }

    /// A router solicitation from our link-local address to all-routers, with our
    /// link-layer address (RFC 4861 §6.3.7, §4.1).
    pub(super) fn send_router_solicit(&mut self) {
        let Some(src) = self.v6.as_ref().map(|v| v.link_local).filter(|&a| self.v6.as_ref().is_some_and(|v| v.is_ours(a))) else {
            return;
        };
        let rs = icmpv6::Repr::Ndp(ndp::Repr::RouterSolicit { lladdr: Some(self.cfg.mac) });
        if self.push_icmpv6(src, addr::ALL_ROUTERS, addr::multicast_mac(addr::ALL_ROUTERS), ndp::HOP_LIMIT, &rs) {
            self.counters.tx_router_solicit += 1;
        }
    }

    /// A neighbour advertisement for our `target` (RFC 4861 §7.2.4): R clear, O set, S as
    /// given, with our link-layer address.
    pub(super) fn send_neighbor_advert(&mut self, target: Ipv6Addr, dst: Ipv6Addr, eth_dst: EthernetAddress, solicited: bool) {
        let na = icmpv6::Repr::Ndp(ndp::Repr::NeighborAdvert {
            router: false,
            solicited,
            override_: true,
            target_addr: target,
            lladdr: Some(self.cfg.mac),
        });
        if self.push_icmpv6(target, dst, eth_dst, ndp::HOP_LIMIT, &na) {
            self.counters.tx_neighbor_advert += 1;
        }
    }

    /// RFC 4443 §4.2: same identifier, sequence number and data, cut to fit the MTU (the
    /// reply must not be fragmented: we do not fragment).
    pub(super) fn reply_echo_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr, eth_dst: EthernetAddress, ident: u16, seq_no: u16, data: &[u8]) {
        let max_data = usize::from(self.ipv6_mtu()).saturating_sub(ipv6::HEADER_LEN + icmpv6::HEADER_LEN);
        let data = data.get(..max_data).unwrap_or(data);
        let reply = icmpv6::Repr::EchoReply { ident, seq_no, data };
        if self.push_icmpv6(src, dst, eth_dst, self.ipv6_hop_limit(), &reply) {
            self.counters.tx_icmpv6_echo_reply += 1;
        }
    }

    /// Frame and queue an ICMPv6 message; false if it could not be built or queued.
    pub(super) fn push_icmpv6(&mut self, src: Ipv6Addr, dst: Ipv6Addr, eth_dst: EthernetAddress, hop_limit: u8, msg: &icmpv6::Repr<'_>) -> bool {
        let ip = ipv6::Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: ipv6::next_header::ICMPV6,
            payload_len: msg.buffer_len(),
            hop_limit,
            traffic_class: 0,
            flow_label: 0,
        };
        let ip_start = ethernet::HEADER_LEN;
        let icmp_start = ip_start + ipv6::HEADER_LEN;
        let mut frame = vec![0u8; (icmp_start + msg.buffer_len()).max(MIN_FRAME_LEN)];
        let header = self.eth_header(eth_dst, EtherType::Ipv6);
        let (eth_part, rest) = frame.split_at_mut(ethernet::HEADER_LEN);
        eth_part.copy_from_slice(&header);
        let (ip_part, icmp_part) = rest.split_at_mut(ipv6::HEADER_LEN);
        if ip.emit(&mut ipv6::Packet::new_unchecked(ip_part)).is_err()
            || msg.emit(src, dst, &mut icmpv6::Packet::new_unchecked(icmp_part)).is_err()
        {
            return false;
        }
        self.push_tx(frame)
    }
}
