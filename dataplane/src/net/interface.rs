//! The sans-IO link and network layer of one port: validates every received frame, answers
//! ARP and ICMP echo, hands TCP segments up by offset, and frames outgoing IPv4 packets with
//! the help of the ARP neighbour cache. IPv6 (neighbour discovery, ICMPv6 echo), when
//! enabled with [`Interface::enable_ipv6`], is in `interface_v6.rs` and
//! `interface_icmpv6.rs`.
//!
//! Every discarded frame is counted under its [`DropReason`]; nothing derived from input can
//! panic. Control traffic the interface generates (ARP, ICMP replies, framed IPv4 packets
//! from [`Interface::queue_ipv4`]) waits in a bounded queue drained by
//! [`Interface::poll_transmit`]. No clock is read: `now` is passed in.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use crate::net::counters::{DropReason, NetCounters};
use crate::net::neighbor::{self, NeighborCache, NeighborConfig, Resolve};
use crate::time::Instant;
use crate::wire::ethernet::{self, EtherType, EthernetAddress};
use crate::wire::{arp, icmpv4, ipv4, Error as WireError};

/// Smallest Ethernet frame without FCS (IEEE 802.3 minimum of 64 bytes minus the 4-byte
/// FCS). Frames the interface builds are zero-padded to it, since not every PMD pads.
pub const MIN_FRAME_LEN: usize = 60;
/// Smallest MTU an IPv4 link may have (RFC 791 §3.2: every host must accept 68 octets).
pub const MIN_MTU: u16 = 68;
/// Frames held in the transmit queue at most.
pub const TX_QUEUE_LEN: usize = 512;

/// Addressing of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Our MAC.
    pub mac: EthernetAddress,
    /// Our IPv4 address.
    pub ipv4: Ipv4Addr,
    /// Prefix length of the on-link subnet (values above 32 are taken as 32).
    pub prefix_len: u8,
    /// Default gateway for off-link destinations; without one every destination is
    /// treated as on-link.
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU of the link (values below 68 are raised to 68).
    pub mtu: u16,
}

/// The NIC's verdict on the receive checksums of a frame.
///
/// `Good` means the device verified the IPv4 header checksum *and*, for TCP, the TCP
/// checksum; pass it only when both hold. `Bad` means one of them failed: the interface then
/// re-checks the IPv4 header in software to know which, and hands a TCP segment up as
/// unverified so the TCP layer checks (and counts) it. `Unknown` means verify in software.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxChecksum {
    /// Verified by the device.
    Good,
    /// The device found a bad checksum.
    Bad,
    /// Not checked by the device.
    Unknown,
}

/// What became of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Handled here (ARP, ICMP echo); any reply is queued for [`Interface::poll_transmit`].
    Consumed,
    /// Discarded and counted.
    Dropped(DropReason),
    /// A TCP segment addressed to us. `frame[l4_offset..l4_offset + l4_len]` is the segment
    /// (header and payload, Ethernet padding excluded).
    Tcp {
        /// IP source (IPv4, or IPv6 for TCP over IPv6).
        src: IpAddr,
        /// IP destination (our address, of the same family).
        dst: IpAddr,
        /// Offset of the TCP header within the frame.
        l4_offset: usize,
        /// Length of the TCP segment.
        l4_len: usize,
        /// Whether the NIC verified the TCP checksum; if not, the TCP layer must.
        l4_checksum_verified: bool,
    },
    /// ICMP "fragmentation needed and DF set" (type 3 code 4, RFC 1191) quoting a TCP
    /// segment sent from our address: for the TCP layer, which validates it against a
    /// connection and its send window (RFC 5927 §4.1; Linux `icmp_unreach` ->
    /// `tcp_v4_err`).
    IcmpFragNeeded {
        /// The quoted segment (our side is `local`).
        quoted: icmpv4::QuotedTcp,
        /// The next-hop MTU the router reported (0 from pre-RFC 1191 routers).
        next_hop_mtu: u16,
    },
    /// ICMPv6 "packet too big" (RFC 4443 §3.2) quoting a TCP segment sent from one of our
    /// addresses: for the TCP layer (RFC 8201; Linux `icmpv6_rcv` -> `tcp_v6_err`).
    Icmpv6PacketTooBig {
        /// The quoted segment (our side is `local`).
        quoted: crate::wire::icmpv6::QuotedTcp,
        /// The MTU the router reported.
        mtu: u32,
    },
}

/// Result of [`Interface::link_header_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkResult {
    /// The Ethernet header to put in front of the IPv4 packet.
    Ready([u8; ethernet::HEADER_LEN]),
    /// The next hop is being resolved (or cannot be now); try again later.
    Pending,
}

/// One port's link and network layer.
#[derive(Debug)]
pub struct Interface {
    cfg: InterfaceConfig,
    netmask: u32,
    neighbors: NeighborCache,
    tx: VecDeque<Vec<u8>>,
    next_ident: u16,
    counters: NetCounters,
    /// IPv6 addressing and neighbours, when enabled.
    v6: Option<v6::V6>,
    /// Whether this interface speaks for the link where every lcore's copy of the port
    /// would say the same thing: duplicate address detection probes and the defence of an
    /// address probed by another node, router solicitations, unsolicited MLD reports.
    /// One lcore does (the first); the others keep the same state from the shared frames
    /// and stay quiet, so the link sees one probe, one defence, one report per port.
    link_speaker: bool,
}

#[path = "interface_v6.rs"]
mod v6;
pub use v6::Ipv6Config;

impl Interface {
    /// An interface with the default neighbour-cache settings.
    pub fn new(cfg: InterfaceConfig) -> Self {
        Self::with_neighbor_config(cfg, NeighborConfig::default())
    }

    /// An interface with explicit neighbour-cache settings.
    pub fn with_neighbor_config(mut cfg: InterfaceConfig, ncfg: NeighborConfig) -> Self {
        cfg.prefix_len = cfg.prefix_len.min(32);
        cfg.mtu = cfg.mtu.max(MIN_MTU);
        let netmask = match cfg.prefix_len {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p)),
        };
        let mut neighbors = NeighborCache::new(ncfg);
        if let Some(gw) = cfg.gateway {
            // The gateway carries every off-subnet flow: never evicted.
            neighbors.pin(gw);
        }
        Interface {
            cfg,
            netmask,
            neighbors,
            tx: VecDeque::new(),
            next_ident: 0,
            counters: NetCounters::default(),
            v6: None,
            link_speaker: true,
        }
    }

    /// Makes this interface speak for the link or stay quiet (see the field; on by
    /// default, off for every lcore's copy of a port but the first).
    pub fn set_link_speaker(&mut self, on: bool) {
        self.link_speaker = on;
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &InterfaceConfig {
        &self.cfg
    }

    /// Our MAC.
    pub fn mac(&self) -> EthernetAddress {
        self.cfg.mac
    }

    /// Our IPv4 address.
    pub fn ipv4(&self) -> Ipv4Addr {
        self.cfg.ipv4
    }

    /// The IP MTU.
    pub fn mtu(&self) -> u16 {
        self.cfg.mtu
    }

    /// The counters.
    pub fn counters(&self) -> &NetCounters {
        &self.counters
    }

    /// The neighbour cache (read-only, for inspection and metrics).
    pub fn neighbors(&self) -> &NeighborCache {
        &self.neighbors
    }

    /// Frames waiting in the transmit queue.
    pub fn tx_pending(&self) -> usize {
        self.tx.len()
    }

    // ---------------------------------------------------------------- receive

    /// Process one received Ethernet frame (without FCS).
    pub fn handle_frame(&mut self, frame: &[u8], now: Instant, rx_csum: RxChecksum) -> Input {
        self.counters.rx_frames += 1;
        match self.classify(frame, now, rx_csum) {
            Ok(input) => input,
            Err(reason) => {
                self.counters.count_drop(reason);
                Input::Dropped(reason)
            }
        }
    }

    fn classify(&mut self, frame: &[u8], now: Instant, rx_csum: RxChecksum) -> Result<Input, DropReason> {
        let eth = ethernet::Frame::new_checked(frame).map_err(|_| DropReason::TruncatedEthernet)?;
        let dst = eth.dst_addr();
        // IPv6 groups only carry IPv6 (RFC 2464 §7).
        let our_group = eth.ethertype() == EtherType::Ipv6 && self.is_our_group_mac(dst);
        if dst != self.cfg.mac && !dst.is_broadcast() && !our_group {
            return Err(DropReason::NotForUs);
        }
        let src = eth.src_addr();
        if src.is_multicast() {
            return Err(DropReason::BadSrcMac);
        }
        match eth.ethertype() {
            EtherType::Arp => {
                self.counters.rx_arp += 1;
                self.rx_arp(eth.payload(), now)
            }
            EtherType::Ipv4 => self.rx_ipv4(eth.payload(), src, rx_csum),
            EtherType::Ipv6 => self.rx_ipv6(eth.payload(), src, now, rx_csum),
            EtherType::Vlan | EtherType::Unknown(_) => Err(DropReason::WrongEthertype),
        }
    }

    fn rx_arp(&mut self, payload: &[u8], now: Instant) -> Result<Input, DropReason> {
        let arp_error = |e: WireError| match e {
            WireError::Unsupported => DropReason::ArpUnsupported,
            WireError::Truncated | WireError::Malformed | WireError::BadChecksum => DropReason::ArpMalformed,
        };
        let packet = arp::Packet::new_checked(payload).map_err(arp_error)?;
        let repr = arp::ArpRepr::parse(&packet).map_err(arp_error)?;
        let sha = repr.source_hardware_addr;
        let spa = repr.source_protocol_addr;
        if !sha.is_unicast() {
            return Err(DropReason::ArpMalformed);
        }
        if spa == self.cfg.ipv4 {
            // RFC 5227 §2.4: another host claims our address. Never learn it; a copy of our
            // own announcement (sha == our MAC) is simply not for us.
            return Err(if sha == self.cfg.mac { DropReason::ArpNotForUs } else { DropReason::ArpAddressConflict });
        }
        let for_us = repr.target_protocol_addr == self.cfg.ipv4;
        // RFC 826 "Packet Reception": merge the sender into an existing entry whatever the
        // target; add it only if the packet targets us. Probes (sender 0.0.0.0, RFC 5227
        // §2.1.1) and non-unicast senders are never learnt.
        let mut merged = false;
        if is_unicast_host(spa) {
            let learned = self.neighbors.learn(spa, sha, now, for_us);
            if learned.updated {
                merged = true;
                self.counters.arp_learned += 1;
            }
            if learned.evicted {
                self.counters.arp_evicted += 1;
            }
            let header = self.eth_header(sha, EtherType::Ipv4);
            for packet in learned.flushed {
                self.push_ipv4_frame(&header, &packet);
            }
        }
        if !for_us {
            return if merged { Ok(Input::Consumed) } else { Err(DropReason::ArpNotForUs) };
        }
        if repr.operation == arp::Operation::Request {
            // RFC 826: swap sender and target, fill in our address, send it to the asker.
            let reply = arp::ArpRepr {
                operation: arp::Operation::Reply,
                source_hardware_addr: self.cfg.mac,
                source_protocol_addr: self.cfg.ipv4,
                target_hardware_addr: sha,
                target_protocol_addr: spa,
            };
            if self.push_arp(sha, &reply) {
                self.counters.tx_arp_reply += 1;
            }
        }
        Ok(Input::Consumed)
    }

    fn rx_ipv4(&mut self, payload: &[u8], eth_src: EthernetAddress, rx_csum: RxChecksum) -> Result<Input, DropReason> {
        let packet = ipv4::Packet::new_checked(payload).map_err(|e| match e {
            ipv4::Error::Truncated => DropReason::Ipv4Truncated,
            ipv4::Error::BadVersion => DropReason::Ipv4BadVersion,
            ipv4::Error::BadHeaderLen => DropReason::Ipv4BadHeaderLen,
            ipv4::Error::BadTotalLen => DropReason::Ipv4BadTotalLen,
            ipv4::Error::BadChecksum => DropReason::Ipv4BadChecksum,
            ipv4::Error::Fragment => DropReason::Ipv4Fragment,
        })?;
        // `Bad` may refer to the TCP checksum: re-check the header to attribute it.
        if rx_csum != RxChecksum::Good && !packet.verify_checksum() {
            return Err(DropReason::Ipv4BadChecksum);
        }
        if packet.is_fragment() {
            return Err(DropReason::Ipv4Fragment);
        }
        let dst = packet.dst_addr();
        if dst != self.cfg.ipv4 {
            return Err(DropReason::Ipv4NotForUs);
        }
        let src = packet.src_addr();
        // RFC 1122 §3.2.1.3: discard datagrams whose source is not a unicast host address.
        if !is_unicast_host(src) || src == self.cfg.ipv4 || src == self.subnet_broadcast() {
            return Err(DropReason::Ipv4MartianSrc);
        }
        let hlen = packet.header_len();
        let l4_len = usize::from(packet.total_len()).saturating_sub(hlen);
        match packet.protocol() {
            ipv4::protocol::TCP => {
                self.counters.rx_tcp += 1;
                Ok(Input::Tcp {
                    src: IpAddr::V4(src),
                    dst: IpAddr::V4(dst),
                    l4_offset: ethernet::HEADER_LEN + hlen,
                    l4_len,
                    l4_checksum_verified: rx_csum == RxChecksum::Good,
                })
            }
            ipv4::protocol::ICMP => {
                self.counters.rx_icmp += 1;
                self.rx_icmp(packet.payload(), src, eth_src)
            }
            _ => Err(DropReason::Ipv4UnsupportedProtocol),
        }
    }

    fn rx_icmp(&mut self, message: &[u8], src: Ipv4Addr, eth_src: EthernetAddress) -> Result<Input, DropReason> {
        let packet = icmpv4::Packet::new_checked(message).map_err(|_| DropReason::IcmpTruncated)?;
        // ICMP checksums are never offloaded: always verify (RFC 1122 §3.2.2).
        if !packet.verify_checksum() {
            return Err(DropReason::IcmpBadChecksum);
        }
        let repr = icmpv4::Repr::parse(&packet, false).map_err(|e| match e {
            icmpv4::Error::Truncated => DropReason::IcmpTruncated,
            icmpv4::Error::BadChecksum => DropReason::IcmpBadChecksum,
            icmpv4::Error::Malformed => DropReason::IcmpMalformed,
        })?;
        match repr {
            icmpv4::Repr::EchoRequest { ident, seq_no, data } => {
                self.reply_echo(src, eth_src, ident, seq_no, data);
                Ok(Input::Consumed)
            }
            icmpv4::Repr::DstUnreachable { reason: icmpv4::DstUnreachable::FragRequired, next_hop_mtu, header, data } => {
                // Linux `icmp_unreach` hands the quote to the protocol (`tcp_v4_err`); only a
                // TCP segment we sent can concern us (RFC 5927 §4: the quote is checked).
                let quoted = icmpv4::QuotedTcp::parse(&header, data).map_err(|_| DropReason::IcmpFragNeededForeign)?;
                if *quoted.local.ip() != self.cfg.ipv4 {
                    return Err(DropReason::IcmpFragNeededForeign);
                }
                self.counters.rx_icmp_frag_needed += 1;
                Ok(Input::IcmpFragNeeded { quoted, next_hop_mtu })
            }
            _ => Err(DropReason::IcmpOther),
        }
    }

    /// RFC 1122 §3.2.2.6: reply with the same identifier, sequence number and data. The data
    /// is cut so that the reply fits the MTU. The reply goes back to the MAC the request came
    /// from (the sender itself, or the router that forwarded it).
    fn reply_echo(&mut self, dst: Ipv4Addr, eth_dst: EthernetAddress, ident: u16, seq_no: u16, data: &[u8]) {
        let max_data = usize::from(self.cfg.mtu) - ipv4::HEADER_LEN - icmpv4::HEADER_LEN;
        let data = data.get(..max_data).unwrap_or(data);
        let icmp = icmpv4::Repr::EchoReply { ident, seq_no, data };
        let ip = ipv4::Repr {
            src_addr: self.cfg.ipv4,
            dst_addr: dst,
            protocol: ipv4::protocol::ICMP,
            payload_len: icmp.buffer_len(),
            ttl: ipv4::DEFAULT_TTL,
            ident: self.take_ident(),
            dont_frag: false,
        };
        let ip_start = ethernet::HEADER_LEN;
        let icmp_start = ip_start + ipv4::HEADER_LEN;
        let mut frame = vec![0u8; (icmp_start + icmp.buffer_len()).max(MIN_FRAME_LEN)];
        let header = self.eth_header(eth_dst, EtherType::Ipv4);
        // `frame` is at least MIN_FRAME_LEN long, so these splits are in bounds.
        let (eth_part, rest) = frame.split_at_mut(ethernet::HEADER_LEN);
        eth_part.copy_from_slice(&header);
        let (ip_part, icmp_part) = rest.split_at_mut(ipv4::HEADER_LEN);
        if ip.emit(&mut ipv4::Packet::new_unchecked(ip_part)).is_err()
            || icmp.emit(&mut icmpv4::Packet::new_unchecked(icmp_part)).is_err()
        {
            return;
        }
        if self.push_tx(frame) {
            self.counters.tx_icmp_echo_reply += 1;
        }
    }

    // ---------------------------------------------------------------- transmit

    /// Hand every queued frame to `emit`, oldest first.
    pub fn poll_transmit(&mut self, _now: Instant, emit: &mut dyn FnMut(&[u8])) {
        while let Some(frame) = self.tx.pop_front() {
            emit(&frame);
            self.counters.tx_frames += 1;
        }
    }

    /// The next hop for `dst`: itself when on-link (or when there is no gateway), else the
    /// gateway.
    pub fn route(&self, dst: Ipv4Addr) -> Ipv4Addr {
        let on_link = (u32::from(dst) & self.netmask) == (u32::from(self.cfg.ipv4) & self.netmask);
        match self.cfg.gateway {
            Some(gw) if !on_link => gw,
            _ => dst,
        }
    }

    /// Identification numbers for the next `count` IPv4 datagrams this interface sends
    /// (the first is returned; the device or software GSO counts up from it). TCP sets DF,
    /// so these are atomic datagrams whose ID only has to differ between neighbours in
    /// time (RFC 6864 §4.1).
    pub fn take_ip_idents(&mut self, count: u16) -> u16 {
        let id = self.next_ident;
        self.next_ident = self.next_ident.wrapping_add(count.max(1));
        id
    }

    /// Never evicts the next hop towards `dst` from the neighbour table, nor rate-limits
    /// its resolution (a configured backend: [`NeighborCache::pin`]).
    pub fn pin_neighbor(&mut self, dst: Ipv4Addr) {
        let hop = self.route(dst);
        self.neighbors.pin(hop);
    }

    /// Pins the next hops towards exactly `dsts` (and the gateway), unpinning any other:
    /// the configured backends after a reload.
    pub fn pin_neighbors(&mut self, dsts: impl IntoIterator<Item = Ipv4Addr>) {
        let hops: Vec<Ipv4Addr> = dsts.into_iter().map(|d| self.route(d)).chain(self.cfg.gateway).collect();
        self.neighbors.set_pinned(hops);
    }

    /// Whether the next hop `hop` is pinned in the neighbour table.
    pub fn is_neighbor_pinned(&self, hop: Ipv4Addr) -> bool {
        self.neighbors.is_pinned(hop)
    }

    /// The Ethernet header for an IPv4 packet to `dst`, or `Pending` while the next hop is
    /// being resolved (this call starts the resolution and queues the first request).
    pub fn link_header_for(&mut self, dst: Ipv4Addr, now: Instant) -> LinkResult {
        let hop = self.route(dst);
        match self.resolve(hop, now) {
            Some(mac) => LinkResult::Ready(self.eth_header(mac, EtherType::Ipv4)),
            None => LinkResult::Pending,
        }
    }

    /// Frame and queue an IPv4 packet (header included) for `dst`. If the next hop is not
    /// resolved yet the packet waits in a small per-neighbour queue and is sent when the
    /// reply arrives; overflow, oversize and failed resolutions are counted drops.
    pub fn queue_ipv4(&mut self, dst: Ipv4Addr, ipv4_packet: Vec<u8>, now: Instant) {
        if ipv4_packet.len() > usize::from(self.cfg.mtu) {
            self.counters.count_drop(DropReason::TxTooBig);
            return;
        }
        let hop = self.route(dst);
        if let Some(mac) = self.resolve(hop, now) {
            let header = self.eth_header(mac, EtherType::Ipv4);
            self.push_ipv4_frame(&header, &ipv4_packet);
            return;
        }
        if !self.neighbors.is_pending(hop) {
            // `resolve` found the table full and counted it.
            return;
        }
        match self.neighbors.enqueue(hop, ipv4_packet) {
            Ok(()) => self.counters.arp_queued += 1,
            Err(_) => self.counters.count_drop(DropReason::ArpQueueOverflow),
        }
    }

    /// Queue a gratuitous ARP announcing our address (RFC 5227 §3: an ARP request with
    /// sender and target protocol address both ours, broadcast).
    pub fn gratuitous_arp(&mut self) {
        let announce = arp::ArpRepr {
            operation: arp::Operation::Request,
            source_hardware_addr: self.cfg.mac,
            source_protocol_addr: self.cfg.ipv4,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: self.cfg.ipv4,
        };
        if self.push_arp(EthernetAddress::BROADCAST, &announce) {
            self.counters.tx_gratuitous_arp += 1;
        }
    }

    /// Run ARP retries, resolution failures and expiry due at `now`.
    pub fn poll(&mut self, now: Instant) {
        for event in self.neighbors.poll(now) {
            match event {
                neighbor::Event::Request(addr) => self.send_arp_request(addr, EthernetAddress::BROADCAST),
                neighbor::Event::Failed { dropped, .. } => {
                    self.counters.count_drop(DropReason::ArpResolutionFailed);
                    self.counters.add_drops(DropReason::ArpUnresolvedDrop, dropped as u64);
                }
                neighbor::Event::Expired(_) => self.counters.arp_expired += 1,
            }
        }
        self.poll_v6(now);
    }

    /// The earliest time [`Interface::poll`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.neighbors.next_deadline(), self.next_deadline_v6()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---------------------------------------------------------------- helpers

    /// Resolve `hop`, sending whatever request that calls for. `None` while pending.
    fn resolve(&mut self, hop: Ipv4Addr, now: Instant) -> Option<EthernetAddress> {
        match self.neighbors.resolve(hop, now) {
            Resolve::Ready { mac, refresh } => {
                if refresh {
                    // RFC 1122 §2.3.2.1: re-confirm a cached entry by unicast.
                    self.send_arp_request(hop, mac);
                }
                Some(mac)
            }
            Resolve::Pending { send_request } => {
                if send_request {
                    self.send_arp_request(hop, EthernetAddress::BROADCAST);
                }
                None
            }
            Resolve::Full => {
                self.counters.count_drop(DropReason::ArpCacheFull);
                None
            }
            Resolve::RateLimited => {
                self.counters.count_drop(DropReason::ArpResolutionRateLimited);
                None
            }
        }
    }

    fn send_arp_request(&mut self, target: Ipv4Addr, eth_dst: EthernetAddress) {
        let request = arp::ArpRepr {
            operation: arp::Operation::Request,
            source_hardware_addr: self.cfg.mac,
            source_protocol_addr: self.cfg.ipv4,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: target,
        };
        if self.push_arp(eth_dst, &request) {
            self.counters.tx_arp_request += 1;
        }
    }

    fn eth_header(&self, dst: EthernetAddress, ethertype: EtherType) -> [u8; ethernet::HEADER_LEN] {
        ethernet::EthernetRepr { src_addr: self.cfg.mac, dst_addr: dst, ethertype }.to_bytes()
    }

    /// Build and queue an ARP frame; false if it could not be queued.
    fn push_arp(&mut self, eth_dst: EthernetAddress, repr: &arp::ArpRepr) -> bool {
        let mut frame = vec![0u8; MIN_FRAME_LEN];
        let header = self.eth_header(eth_dst, EtherType::Arp);
        let (eth_part, rest) = frame.split_at_mut(ethernet::HEADER_LEN);
        eth_part.copy_from_slice(&header);
        if repr.emit(&mut arp::Packet::new_unchecked(rest)).is_err() {
            return false;
        }
        self.push_tx(frame)
    }

    fn push_ipv4_frame(&mut self, header: &[u8; ethernet::HEADER_LEN], packet: &[u8]) {
        let mut frame = Vec::with_capacity((header.len() + packet.len()).max(MIN_FRAME_LEN));
        frame.extend_from_slice(header);
        frame.extend_from_slice(packet);
        if frame.len() < MIN_FRAME_LEN {
            frame.resize(MIN_FRAME_LEN, 0);
        }
        if self.push_tx(frame) {
            self.counters.tx_ipv4 += 1;
        }
    }

    fn push_tx(&mut self, frame: Vec<u8>) -> bool {
        if self.tx.len() >= TX_QUEUE_LEN {
            self.counters.count_drop(DropReason::TxQueueOverflow);
            return false;
        }
        self.tx.push_back(frame);
        true
    }

    fn take_ident(&mut self) -> u16 {
        self.take_ip_idents(1)
    }

    fn subnet_broadcast(&self) -> Ipv4Addr {
        if self.cfg.prefix_len >= 31 {
            // RFC 3021: /31 links have no broadcast address (and /32 has no subnet).
            return Ipv4Addr::BROADCAST;
        }
        Ipv4Addr::from(u32::from(self.cfg.ipv4) | !self.netmask)
    }
}

/// Whether `a` can be a unicast host: not unspecified, limited broadcast, multicast,
/// loopback or class E (RFC 1122 §3.2.1.3, RFC 1112 §4).
fn is_unicast_host(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback() || a.octets()[0] >= 240)
}

#[cfg(test)]
#[path = "interface_tests.rs"]
mod tests;
