//! IPv6 on an [`Interface`]: addressing (a configured address and prefix beside the
//! link-local address derived from the MAC), the groups the port listens to, answers to
//! neighbour solicitations for our addresses (RFC 4861 §7.2.3, §7.2.4), ICMPv6 echo
//! replies (RFC 4443 §4.2), and the IPv6 neighbour cache: filled from solicitations and
//! advertisements (RFC 4861 §7.2.3, §7.2.5), resolving next hops for outgoing packets with
//! multicast solicitations, retries and a bounded queue (§7.2.2), and re-confirming busy
//! entries with a unicast solicitation (§7.3.3). Every discarded packet is counted under
//! its [`DropReason`].
//!
//! TCP over IPv6 is handed up by offset as over IPv4 (Linux `ip6_input_finish` ->
//! `tcp_v6_rcv`), and "packet too big" quoting one of our segments goes to the TCP layer
//! (`icmpv6_rcv` -> `tcp_v6_err`). [`Interface::route_ip`] and
//! [`Interface::link_header_for_ip`] take either family, for the TCP egress.
//!
//! Our addresses go through duplicate address detection before use (`dad.rs`, RFC 4862
//! §5.4); router advertisements fill a default router list and an on-link prefix list
//! (`routers.rs`, RFC 4861 §6.3.4) that routing consults when no gateway is configured, and
//! router solicitations ask for them once the link-local address is usable (§6.3.7).
//! The solicited-node groups are reported with MLDv2 (`mld.rs`, RFC 3810) so that a
//! switch snooping MLD forwards our solicitations.
//!
//! The ICMPv6 messages themselves, received and sent (neighbour and router discovery, DAD
//! probes, MLD, echo), are in `interface_icmpv6.rs`.

use std::net::{IpAddr, Ipv6Addr};

use super::{Input, Interface, LinkResult, RxChecksum, MIN_FRAME_LEN};
use crate::net::counters::DropReason;
use crate::net::dad::{self, AddrState, Dad, DadEvent};
use crate::net::mld::{Listener, Report};
use crate::net::routers::Routers;
use crate::net::neighbor::{self, NeighborCache, NeighborConfig, Resolve};
use crate::time::Instant;
use crate::wire::ethernet::{self, EtherType, EthernetAddress};
use crate::wire::ipv6::addr;
use crate::wire::{icmpv6, ipv6, ndp};

/// IPv6 addressing of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Config {
    /// Our global (or unique local) address; the link-local one is always derived from the
    /// MAC (RFC 4291 §2.5.6, Appendix A).
    pub addr: Option<Ipv6Addr>,
    /// Prefix length of the on-link prefix of `addr` (values above 128 are taken as 128).
    pub prefix_len: u8,
    /// Default router for off-link destinations (usually link-local); when `None`, the
    /// routers learnt from advertisements serve.
    pub gateway: Option<Ipv6Addr>,
    /// Duplicate address detection probes per address (RFC 4862 `DupAddrDetectTransmits`,
    /// Linux `dad_transmits`); 0 uses addresses at once.
    pub dad_transmits: u8,
    /// Act on router advertisements (Linux `accept_ra`): learn default routers and on-link
    /// prefixes, and solicit them.
    pub accept_ra: bool,
}

impl Default for Ipv6Config {
    fn default() -> Self {
        Ipv6Config { addr: None, prefix_len: 64, gateway: None, dad_transmits: dad::DEFAULT_TRANSMITS, accept_ra: true }
    }
}

/// The IPv6 state of an interface.
#[derive(Debug)]
pub(super) struct V6 {
    cfg: Ipv6Config,
    link_local: Ipv6Addr,
    neighbors: NeighborCache<Ipv6Addr>,
    dad: Dad,
    routers: Routers,
    mld: Listener,
    /// The hop limit of the packets we originate (RFC 4861 §6.3.4 `CurHopLimit`, Linux
    /// `ipv6_devconf.hop_limit`): 64, or the last non-zero one a router advertised.
    hop_limit: u8,
    /// The IPv6 link MTU (RFC 4861 §6.3.4 `LinkMTU`, Linux `ipv6_devconf.mtu6`): the port's,
    /// or the last valid one a router advertised.
    mtu: u16,
}

impl V6 {
    /// Whether `a` is one of our addresses and usable (preferred).
    fn is_ours(&self, a: Ipv6Addr) -> bool {
        self.dad.state(a) == Some(AddrState::Preferred)
    }

    /// Whether `a` is one of our addresses in any state (tentative and duplicate ones too).
    fn holds(&self, a: Ipv6Addr) -> bool {
        self.dad.state(a).is_some()
    }

    /// The multicast groups we belong to (RFC 4291 §2.8: all-nodes and the solicited-node
    /// group of each of our addresses; joined while tentative, RFC 4862 §5.4.2).
    fn groups(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        let solicited = self.dad.addresses().filter(|&(_, s)| s != AddrState::Duplicate).map(|(a, _)| addr::solicited_node(a));
        std::iter::once(addr::ALL_NODES).chain(solicited)
    }

    fn is_our_group(&self, a: Ipv6Addr) -> bool {
        self.groups().any(|g| g == a)
    }

    /// The groups MLD reports: our solicited-node groups, once each (all-nodes is never
    /// reported, RFC 3810 §6). At most two.
    fn reported_groups(&self) -> ([Ipv6Addr; 2], usize) {
        let mut out = [Ipv6Addr::UNSPECIFIED; 2];
        let mut n = 0;
        for g in self.groups().filter(|&g| g != addr::ALL_NODES) {
            if !out[..n].contains(&g) && n < out.len() {
                out[n] = g;
                n += 1;
            }
        }
        (out, n)
    }
}

impl Interface {
    /// Enable IPv6 on this port with `cfg`: the link-local address derived from the MAC,
    /// and `cfg.addr` if set. Replaces any previous IPv6 configuration (and its neighbours).
    pub fn enable_ipv6(&mut self, mut cfg: Ipv6Config) {
        cfg.prefix_len = cfg.prefix_len.min(128);
        let mut neighbors = NeighborCache::new(NeighborConfig::default());
        if let Some(gw) = cfg.gateway {
            neighbors.pin(gw);
        }
        let link_local = addr::link_local_from_mac(self.cfg.mac);
        let dad = Dad::new([Some(link_local), cfg.addr], cfg.dad_transmits);
        let mut routers = Routers::default();
        if cfg.dad_transmits == 0 && cfg.accept_ra {
            routers.solicit_at_first_poll();
        }
        let mld = Listener::new(self.cfg.mac.0[5]);
        let mtu = self.cfg.mtu;
        self.v6 = Some(V6 { cfg, link_local, neighbors, dad, routers, mld, hop_limit: ipv6::DEFAULT_HOP_LIMIT, mtu });
    }

    /// The hop limit of the IPv6 packets we originate (TCP segments, echo replies): 64, or
    /// the last non-zero "Cur Hop Limit" a router advertised (RFC 4861 §6.3.4).
    pub fn ipv6_hop_limit(&self) -> u8 {
        self.v6.as_ref().map_or(ipv6::DEFAULT_HOP_LIMIT, |v| v.hop_limit)
    }

    /// The IPv6 link MTU: the port's, or the last valid MTU a router advertised (RFC 4861
    /// §6.3.4: at least 1280, at most the port's).
    pub fn ipv6_mtu(&self) -> u16 {
        self.v6.as_ref().map_or(self.cfg.mtu, |v| v.mtu)
    }

    /// Our IPv6 addresses (link-local first) and where duplicate address detection stands.
    pub fn ipv6_addresses(&self) -> Vec<(Ipv6Addr, AddrState)> {
        self.v6.as_ref().map(|v| v.dad.addresses().collect()).unwrap_or_default()
    }

    /// The default routers learnt from advertisements.
    pub fn ipv6_routers(&self) -> Vec<Ipv6Addr> {
        self.v6.as_ref().map(|v| v.routers.routers().collect()).unwrap_or_default()
    }

    /// The IPv6 configuration in force, if IPv6 is enabled.
    pub fn ipv6_config(&self) -> Option<&Ipv6Config> {
        self.v6.as_ref().map(|v| &v.cfg)
    }

    /// Our link-local address, if IPv6 is enabled.
    pub fn ipv6_link_local(&self) -> Option<Ipv6Addr> {
        self.v6.as_ref().map(|v| v.link_local)
    }

    /// The MAC of IPv6 neighbour `a` if it is known and reachable.
    pub fn ipv6_neighbor(&self, a: Ipv6Addr, now: Instant) -> Option<EthernetAddress> {
        self.v6.as_ref().and_then(|v| v.neighbors.lookup(a, now))
    }

    /// Whether a frame to `mac` is for one of our IPv6 groups (RFC 2464 §7: 33:33 and the
    /// low 32 bits of the group).
    pub(super) fn is_our_group_mac(&self, mac: EthernetAddress) -> bool {
        let Some(v6) = &self.v6 else { return false };
        v6.groups().any(|g| addr::multicast_mac(g) == mac)
    }

    /// Solicitation retries, resolution failures and expiry of IPv6 neighbours due at `now`;
    /// duplicate address detection; router solicitations and the expiry of what
    /// advertisements taught.
    pub(super) fn poll_v6(&mut self, now: Instant) {
        let Some(v6) = &mut self.v6 else { return };
        let mut dad_events = [None; 4];
        let mut n = 0;
        v6.dad.poll(now, |e| {
            if let Some(slot) = dad_events.get_mut(n) {
                *slot = Some(e);
                n += 1;
            }
        });
        let link_local = v6.link_local;
        let accept_ra = v6.cfg.accept_ra;
        let mut solicit = false;
        for e in dad_events.into_iter().flatten() {
            match e {
                // The probe is counted as sent on every lcore: their timers stay in step.
                DadEvent::Probe(a) if self.link_speaker => self.send_dad_probe(a),
                DadEvent::Probe(_) => {}
                DadEvent::Preferred(a) => {
                    self.counters.dad_preferred += 1;
                    if a == link_local && accept_ra {
                        // Linux `addrconf_dad_completed`: solicit routers from the link-local
                        // address once it is usable.
                        solicit |= self.v6.as_mut().is_some_and(|v| v.routers.start_soliciting(now));
                    }
                }
            }
        }
        let Some(v6) = &mut self.v6 else { return };
        let solicit = v6.routers.poll_solicit(now) || solicit;
        match v6.mld.poll(now) {
            // A query is answered by the lcore that received it; the joins once per port.
            Some(Report::Join) if !self.link_speaker => {}
            Some(report) => self.send_mld_report(report),
            None => {}
        }
        let Some(v6) = &mut self.v6 else { return };
        let (routers, prefixes) = v6.routers.expire(now);
        self.counters.ra_router_removed += u64::from(routers);
        self.counters.ra_prefix_expired += u64::from(prefixes);
        if solicit && self.link_speaker {
            self.send_router_solicit();
        }
        let Some(v6) = &mut self.v6 else { return };
        for event in v6.neighbors.poll(now) {
            match event {
                neighbor::Event::Request(a) => self.send_neighbor_solicit(a, None),
                neighbor::Event::Failed { dropped, .. } => {
                    self.counters.count_drop(DropReason::NdpResolutionFailed);
                    self.counters.add_drops(DropReason::NdpUnresolvedDrop, dropped as u64);
                }
                neighbor::Event::Expired(_) => self.counters.ndp_expired += 1,
            }
        }
    }

    /// The next hop for `dst` (RFC 4861 §5.2): itself when link-local, on our prefix or on
    /// an advertised on-link prefix, else the configured gateway, else a default router
    /// learnt from advertisements (one with a known link-layer address first, §6.3.6), else
    /// itself (no router known: resolution fails and is counted).
    pub fn route_v6(&self, dst: Ipv6Addr) -> Ipv6Addr {
        let Some(v6) = &self.v6 else { return dst };
        let on_link = addr::is_link_local(dst)
            || dst.is_multicast()
            || v6.cfg.addr.is_some_and(|a| addr::same_prefix(a, dst, v6.cfg.prefix_len))
            || v6.routers.is_on_link(dst);
        if on_link {
            return dst;
        }
        v6.cfg.gateway.or_else(|| v6.routers.default_router(|r| v6.neighbors.has_mapping(r))).unwrap_or(dst)
    }

    /// Pins the IPv6 next hops towards exactly `dsts` (and the IPv6 gateway) in the IPv6
    /// neighbour table, unpinning any other: the configured IPv6 backends, as
    /// [`Interface::pin_neighbors`] does for IPv4. Nothing without IPv6.
    pub fn pin_neighbors_v6(&mut self, dsts: impl IntoIterator<Item = Ipv6Addr>) {
        let Some(gw) = self.v6.as_ref().map(|v| v.cfg.gateway) else { return };
        let hops: Vec<Ipv6Addr> = dsts.into_iter().map(|d| self.route_v6(d)).chain(gw).collect();
        if let Some(v6) = &mut self.v6 {
            v6.neighbors.set_pinned(hops);
        }
    }

    /// Whether the IPv6 next hop `hop` is pinned in the IPv6 neighbour table.
    pub fn is_neighbor_pinned_v6(&self, hop: Ipv6Addr) -> bool {
        self.v6.as_ref().is_some_and(|v| v.neighbors.is_pinned(hop))
    }

    /// Whether `a` is one of this port's addresses: its IPv4 address, or (IPv6 enabled) its
    /// configured or link-local IPv6 address.
    pub fn has_addr(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => a == self.cfg.ipv4,
            IpAddr::V6(a) => self.v6.as_ref().is_some_and(|v| v.is_ours(a)),
        }
    }

    /// Whether `a` is one of this port's addresses in any state: [`Interface::has_addr`],
    /// or an IPv6 address still tentative or found duplicate.
    pub fn holds_addr(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(_) => self.has_addr(a),
            IpAddr::V6(a) => self.v6.as_ref().is_some_and(|v| v.holds(a)),
        }
    }

    /// The next hop for `dst` of either family ([`Interface::route`], [`Interface::route_v6`]).
    pub fn route_ip(&self, dst: IpAddr) -> IpAddr {
        match dst {
            IpAddr::V4(d) => IpAddr::V4(self.route(d)),
            IpAddr::V6(d) => IpAddr::V6(self.route_v6(d)),
        }
    }

    /// The Ethernet header for an IP packet to `dst` of either family (Linux
    /// `ip_finish_output2` / `ip6_finish_output2` -> `neigh_output`), or `Pending` while the
    /// next hop is being resolved by ARP or neighbour discovery.
    pub fn link_header_for_ip(&mut self, dst: IpAddr, now: Instant) -> LinkResult {
        match dst {
            IpAddr::V4(d) => self.link_header_for(d, now),
            IpAddr::V6(d) if self.v6.is_some() => self.link_header_for_v6(d, now),
            // No IPv6 on this port: nothing can resolve.
            IpAddr::V6(_) => LinkResult::Pending,
        }
    }

    /// Whether the next hop `hop` (from [`Interface::route_ip`]) is resolved now.
    pub fn neighbor_resolved(&self, hop: IpAddr, now: Instant) -> bool {
        match hop {
            IpAddr::V4(h) => self.neighbors.lookup(h, now).is_some(),
            IpAddr::V6(h) => self.v6.as_ref().is_some_and(|v| v.neighbors.lookup(h, now).is_some()),
        }
    }

    /// Whether the resolution of the next hop `hop` is still under way.
    pub fn neighbor_pending(&self, hop: IpAddr) -> bool {
        match hop {
            IpAddr::V4(h) => self.neighbors.is_pending(h),
            IpAddr::V6(h) => self.v6.as_ref().is_some_and(|v| v.neighbors.is_pending(h)),
        }
    }

    /// The Ethernet header for an IPv6 packet to `dst`, or `Pending` while the next hop is
    /// being resolved (this call starts the resolution and sends the first solicitation).
    /// Multicast destinations map to their 33:33 group address (RFC 2464 §7).
    pub fn link_header_for_v6(&mut self, dst: Ipv6Addr, now: Instant) -> LinkResult {
        if dst.is_multicast() {
            return LinkResult::Ready(self.eth_header(addr::multicast_mac(dst), EtherType::Ipv6));
        }
        let hop = self.route_v6(dst);
        match self.resolve_v6(hop, now) {
            Some(mac) => LinkResult::Ready(self.eth_header(mac, EtherType::Ipv6)),
            None => LinkResult::Pending,
        }
    }

    /// Frame and queue an IPv6 packet (header included) for `dst`: as
    /// [`Interface::queue_ipv4`], waiting in the pending neighbour's queue if need be.
    pub fn queue_ipv6(&mut self, dst: Ipv6Addr, packet: Vec<u8>, now: Instant) {
        if packet.len() > usize::from(self.ipv6_mtu()) {
            self.counters.count_drop(DropReason::TxTooBig);
            return;
        }
        if self.v6.is_none() {
            return;
        }
        if let LinkResult::Ready(header) = self.link_header_for_v6(dst, now) {
            self.push_ipv6_frame(&header, &packet);
            return;
        }
        let hop = self.route_v6(dst);
        let Some(v6) = &mut self.v6 else { return };
        if !v6.neighbors.is_pending(hop) {
            // `resolve_v6` found the table full (or rate-limited) and counted it.
            return;
        }
        match v6.neighbors.enqueue(hop, packet) {
            Ok(()) => self.counters.ndp_queued += 1,
            Err(_) => self.counters.count_drop(DropReason::NdpQueueOverflow),
        }
    }

    /// Resolve `hop`, sending whatever solicitation that calls for. `None` while pending.
    fn resolve_v6(&mut self, hop: Ipv6Addr, now: Instant) -> Option<EthernetAddress> {
        let v6 = self.v6.as_mut()?;
        match v6.neighbors.resolve(hop, now) {
            Resolve::Ready { mac, refresh } => {
                if refresh {
                    // RFC 4861 §7.3.3: probe a cached entry with a unicast solicitation.
                    self.send_neighbor_solicit(hop, Some(mac));
                }
                Some(mac)
            }
            Resolve::Pending { send_request } => {
                if send_request {
                    self.send_neighbor_solicit(hop, None);
                }
                None
            }
            Resolve::Full => {
                self.counters.count_drop(DropReason::NdpCacheFull);
                None
            }
            Resolve::RateLimited => {
                self.counters.count_drop(DropReason::NdpResolutionRateLimited);
                None
            }
        }
    }

    /// A neighbour solicitation for `target` (RFC 4861 §7.2.2): to its solicited-node group,
    /// or unicast to `mac` to re-confirm a cached entry; from our address on the target's
    /// prefix, else our link-local one; with our link-layer address.
    fn send_neighbor_solicit(&mut self, target: Ipv6Addr, mac: Option<EthernetAddress>) {
        let Some(v6) = &self.v6 else { return };
        let src = match v6.cfg.addr {
            Some(a) if !addr::is_link_local(target) && addr::same_prefix(a, target, v6.cfg.prefix_len) => a,
            _ => v6.link_local,
        };
        let (dst, eth_dst) = match mac {
            Some(mac) => (target, mac),
            None => {
                let group = addr::solicited_node(target);
                (group, addr::multicast_mac(group))
            }
        };
        let ns = icmpv6::Repr::Ndp(ndp::Repr::NeighborSolicit { target_addr: target, lladdr: Some(self.cfg.mac) });
        if self.push_icmpv6(src, dst, eth_dst, ndp::HOP_LIMIT, &ns) {
            self.counters.tx_neighbor_solicit += 1;
        }
    }

    fn push_ipv6_frame(&mut self, header: &[u8; ethernet::HEADER_LEN], packet: &[u8]) {
        let mut frame = Vec::with_capacity((header.len() + packet.len()).max(MIN_FRAME_LEN));
        frame.extend_from_slice(header);
        frame.extend_from_slice(packet);
        if frame.len() < MIN_FRAME_LEN {
            frame.resize(MIN_FRAME_LEN, 0);
        }
        if self.push_tx(frame) {
            self.counters.tx_ipv6 += 1;
        }
    }

    /// The earliest time the IPv6 neighbour cache has work to do.
    pub(super) fn next_deadline_v6(&self) -> Option<Instant> {
        let v = self.v6.as_ref()?;
        [v.neighbors.next_deadline(), v.dad.next_deadline(), v.routers.next_deadline(), v.mld.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    pub(super) fn rx_ipv6(
        &mut self,
        payload: &[u8],
        eth_src: EthernetAddress,
        now: Instant,
        rx_csum: RxChecksum,
    ) -> Result<Input, DropReason> {
        let Some(v6) = &self.v6 else { return Err(DropReason::WrongEthertype) };
        let packet = ipv6::Packet::new_checked(payload).map_err(ipv6_drop)?;
        let (src, dst) = (packet.src_addr(), packet.dst_addr());
        if !v6.is_ours(dst) && !v6.is_our_group(dst) {
            return Err(if v6.holds(dst) { DropReason::Ipv6DstTentative } else { DropReason::Ipv6NotForUs });
        }
        // RFC 4291 §2.7: never a multicast source; loopback never on a link (§2.5.3); our
        // own (usable) address is a loop or a spoof. One still under detection is not: the
        // node that holds it defends it from it (RFC 4862 §5.4.4). The unspecified source
        // is checked per message.
        if src.is_multicast() || src.is_loopback() || v6.is_ours(src) {
            return Err(DropReason::Ipv6MartianSrc);
        }
        self.counters.rx_ipv6 += 1;
        let up = packet.upper_layer().map_err(ipv6_drop)?;
        let end = ipv6::HEADER_LEN + packet.payload().len();
        if up.protocol == ipv6::next_header::TCP {
            // `tcp_v6_rcv`: unicast only, never from the unspecified address.
            if dst.is_multicast() || src.is_unspecified() {
                return Err(DropReason::Ipv6TcpToGroup);
            }
            self.counters.rx_tcp += 1;
            return Ok(Input::Tcp {
                src: IpAddr::V6(src),
                dst: IpAddr::V6(dst),
                l4_offset: ethernet::HEADER_LEN + up.offset,
                l4_len: end.saturating_sub(up.offset),
                l4_checksum_verified: rx_csum == RxChecksum::Good,
            });
        }
        if up.protocol != ipv6::next_header::ICMPV6 {
            return Err(DropReason::Ipv6UnsupportedProtocol);
        }
        self.counters.rx_icmpv6 += 1;
        let message = payload.get(up.offset..end).ok_or(DropReason::Ipv6Truncated)?;
        self.rx_icmpv6(message, src, dst, packet.hop_limit(), eth_src, now)
    }

}

fn ipv6_drop(e: ipv6::Error) -> DropReason {
    match e {
        ipv6::Error::Truncated => DropReason::Ipv6Truncated,
        ipv6::Error::BadVersion => DropReason::Ipv6BadVersion,
        ipv6::Error::BadPayloadLen => DropReason::Ipv6BadPayloadLen,
        ipv6::Error::Fragment => DropReason::Ipv6Fragment,
        ipv6::Error::TooManyExtensionHeaders
        | ipv6::Error::BadExtensionHeader
        | ipv6::Error::UnrecognizedOption
        | ipv6::Error::SegmentsLeft => DropReason::Ipv6BadExtensionHeader,
    }
}

#[path = "interface_icmpv6.rs"]
mod icmp;

#[cfg(test)]
#[path = "interface_v6_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "interface_v6_dad_ra_tests.rs"]
mod dad_ra_tests;
