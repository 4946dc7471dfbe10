//! Link/network layer counters of one interface: events, and one drop counter per reason so
//! that every discarded frame is accounted for under a name an operator can search for.
//!
//! [`DropReason`] names the reason a frame was dropped; [`NetCounters::count_drop`] bumps the
//! matching counter. [`NetCounters::iter`] lists every counter as `(name, value)` for metrics
//! export, events first, in declaration order.

/// Declares the counters struct, the drop-reason enum and the name tables from one list, so
/// that a counter cannot exist without its name or its drop reason.
macro_rules! net_counters {
    (
        events { $($ev:ident => $evdoc:literal,)* }
        drops { $($variant:ident => $field:ident: $doc:literal,)* }
    ) => {
        /// Counters of one interface (plain integers: an interface belongs to one lcore).
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct NetCounters {
            $(#[doc = $evdoc] pub $ev: u64,)*
            $(#[doc = $doc] pub $field: u64,)*
        }

        /// Why the interface discarded a frame or packet.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DropReason {
            $(#[doc = $doc] $variant,)*
        }

        impl DropReason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];

            /// The name of the counter this reason increments.
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => stringify!($field),)*
                }
            }
        }

        impl NetCounters {
            /// Number of counters [`NetCounters::iter`] yields.
            pub const LEN: usize = [$(stringify!($ev),)* $(stringify!($field),)*].len();

            /// Count one drop for `reason`.
            pub fn count_drop(&mut self, reason: DropReason) {
                self.add_drops(reason, 1);
            }

            /// Count `n` drops for `reason`.
            pub fn add_drops(&mut self, reason: DropReason, n: u64) {
                let c = match reason {
                    $(DropReason::$variant => &mut self.$field,)*
                };
                *c = c.saturating_add(n);
            }

            /// The value of the counter for `reason`.
            pub fn drops(&self, reason: DropReason) -> u64 {
                match reason {
                    $(DropReason::$variant => self.$field,)*
                }
            }

            /// Every counter as `(name, value)`, events first, for metrics export.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
                let all: [(&'static str, u64); Self::LEN] = [
                    $((stringify!($ev), self.$ev),)*
                    $((stringify!($field), self.$field),)*
                ];
                all.into_iter()
            }

            /// Sum of all drop counters.
            pub fn total_drops(&self) -> u64 {
                0u64 $(.saturating_add(self.$field))*
            }
        }
    };
}

net_counters! {
    events {
        rx_frames => "Frames handed to `handle_frame`.",
        rx_arp => "Frames with the ARP EtherType addressed to us (counted before ARP validation).",
        rx_icmp => "Valid IPv4 packets to us carrying ICMP (counted before ICMP validation).",
        rx_tcp => "TCP segments to us (over IPv4 or IPv6) handed to the TCP layer (TCP checksum checked there).",
        rx_icmp_frag_needed => "ICMP fragmentation-needed messages quoting a TCP segment from our address, handed to the TCP layer (validated there against a connection and its send window).",
        tx_frames => "Frames handed out by `poll_transmit`.",
        tx_arp_request => "ARP requests queued (resolution, retries, refresh probes).",
        tx_arp_reply => "ARP replies queued.",
        tx_gratuitous_arp => "Gratuitous ARP announcements queued.",
        tx_icmp_echo_reply => "ICMP echo replies queued.",
        tx_ipv4 => "IPv4 packets from upper layers framed for transmission.",
        arp_learned => "Neighbour entries created or refreshed from ARP.",
        arp_evicted => "Neighbour entries evicted to make room.",
        arp_expired => "Neighbour entries that expired.",
        arp_queued => "Packets queued while waiting for ARP resolution.",
        rx_ipv6 => "IPv6 packets to us (valid fixed header, our address or group), before the extension-header walk.",
        rx_icmpv6 => "ICMPv6 messages to us (counted before ICMPv6 validation).",
        rx_router_advert => "Valid router advertisements (RFC 4861 §6.1.2); acted on unless the port has `ipv6_accept_ra = false`.",
        tx_router_solicit => "Router solicitations sent once the link-local address is usable, until an advertisement arrives (RFC 4861 §6.3.7, RFC 7559 backoff).",
        ra_router_added => "Default routers added from router advertisements (RFC 4861 §6.3.4).",
        ra_router_removed => "Default routers removed: advertised with router lifetime 0, or their lifetime ran out.",
        ra_prefix_added => "On-link prefixes added from router advertisements (RFC 4861 §6.3.4).",
        ra_prefix_expired => "On-link prefixes whose valid lifetime ran out.",
        ra_mtu_changed => "Router advertisements that changed the IPv6 link MTU (RFC 4861 §6.3.4 MTU option); TCP over IPv6 follows it.",
        ra_mtu_ignored => "Router advertisements whose MTU option was below 1280 or above the port's MTU: the option ignored, the rest applied (Linux `ndisc_router_discovery`).",
        tx_mld_report => "MLDv2 reports of our solicited-node groups sent: when the port comes up and in answer to queries (RFC 3810), for switches snooping MLD.",
        rx_mld_query => "MLD queries accepted (RFC 3810 §6.2): answered with a report after a share of their maximum response delay.",
        tx_dad_probe => "Duplicate address detection probes sent: neighbour solicitations from :: for one of our tentative addresses (RFC 4862 §5.4.2).",
        dad_preferred => "Our IPv6 addresses that passed duplicate address detection and became usable.",
        dad_failed => "Our IPv6 addresses found duplicate by duplicate address detection (RFC 4862 §5.4.5): never used; the log names the address. Fix the conflict, then restart.",
        tx_icmpv6_echo_reply => "ICMPv6 echo replies queued.",
        tx_neighbor_advert => "Neighbour advertisements queued (answers to solicitations, RFC 4861 §7.2.4).",
        tx_neighbor_solicit => "Neighbour solicitations queued (resolution, retries, unicast reachability probes).",
        tx_ipv6 => "IPv6 packets from upper layers framed for transmission.",
        ndp_queued => "Packets queued while waiting for IPv6 neighbour resolution.",
        ndp_learned => "IPv6 neighbour entries created or refreshed from neighbour discovery.",
        ndp_evicted => "IPv6 neighbour entries evicted to make room.",
        ndp_expired => "IPv6 neighbour entries that expired.",
        rx_icmpv6_packet_too_big => "ICMPv6 packet-too-big messages quoting a TCP segment from our address, handed to the TCP layer (RFC 8201; validated there against a connection and its send window).",
    }
    drops {
        TruncatedEthernet => truncated_ethernet: "Frame shorter than an Ethernet header.",
        WrongEthertype => wrong_ethertype: "EtherType other than IPv4/ARP (IPv6, VLAN, ...).",
        NotForUs => not_for_us: "Destination MAC neither ours nor broadcast.",
        BadSrcMac => bad_src_mac: "Multicast/broadcast source MAC.",
        ArpMalformed => arp_malformed: "ARP packet truncated or with inconsistent lengths/addresses.",
        ArpUnsupported => arp_unsupported: "ARP for other hardware/protocols or unknown opcode.",
        ArpNotForUs => arp_not_for_us: "Valid ARP whose target is another host.",
        ArpAddressConflict => arp_address_conflict: "ARP from another MAC claiming our address.",
        Ipv4Truncated => ipv4_truncated: "IPv4 header truncated.",
        Ipv4BadVersion => ipv4_bad_version: "IPv4 version field not 4.",
        Ipv4BadHeaderLen => ipv4_bad_header_len: "IPv4 IHL below 5.",
        Ipv4BadTotalLen => ipv4_bad_total_len: "IPv4 total length below header or beyond frame.",
        Ipv4BadChecksum => ipv4_bad_checksum: "IPv4 header checksum wrong.",
        Ipv4Fragment => ipv4_fragment: "IPv4 fragment (not reassembled).",
        Ipv4NotForUs => ipv4_not_for_us: "IPv4 destination not our address.",
        Ipv4MartianSrc => ipv4_martian_src: "IPv4 source broadcast, multicast, zero or loopback.",
        Ipv4UnsupportedProtocol => ipv4_unsupported_protocol: "IPv4 protocol other than ICMP/TCP.",
        IcmpTruncated => icmp_truncated: "ICMP message shorter than its header.",
        IcmpBadChecksum => icmp_bad_checksum: "ICMP checksum wrong.",
        IcmpMalformed => icmp_malformed: "ICMP error whose quoted header is unusable.",
        IcmpFragNeededForeign => icmp_frag_needed_foreign: "ICMP fragmentation needed quoting no TCP segment of ours (other protocol, short quote, other source address).",
        IcmpOther => icmp_other: "ICMP message other than echo request or fragmentation needed (counted, not acted on).",
        ArpQueueOverflow => arp_queue_overflow: "Packet dropped: the queue of its pending neighbour was full.",
        ArpResolutionFailed => arp_resolution_failed: "Neighbour resolutions that failed after all retries.",
        ArpUnresolvedDrop => arp_unresolved_drop: "Queued packets dropped because resolution failed.",
        ArpCacheFull => arp_cache_full: "Resolution not started: neighbour table full of pending or pinned entries.",
        ArpResolutionRateLimited => arp_resolution_rate_limited: "Resolution not started: more than NeighborConfig::resolutions_per_second new ones (unpinned addresses).",
        TxQueueOverflow => tx_queue_overflow: "Frame dropped: the interface transmit queue was full.",
        TxTooBig => tx_too_big: "Packet from an upper layer larger than the MTU.",
        Ipv6Truncated => ipv6_truncated: "IPv6 packet shorter than its fixed header, or an extension header cut short.",
        Ipv6BadVersion => ipv6_bad_version: "IPv6 version field not 6.",
        Ipv6BadPayloadLen => ipv6_bad_payload_len: "IPv6 payload length beyond the frame.",
        Ipv6BadExtensionHeader => ipv6_bad_extension_header: "IPv6 extension header chain too long, misplaced hop-by-hop, bad option lengths, unrecognised option to discard, or routing header with segments left.",
        Ipv6Fragment => ipv6_fragment: "IPv6 fragment (not reassembled).",
        Ipv6NotForUs => ipv6_not_for_us: "IPv6 destination neither one of our addresses nor one of our groups.",
        Ipv6MartianSrc => ipv6_martian_src: "IPv6 source multicast, loopback, one of ours, or unspecified outside duplicate address detection.",
        Ipv6UnsupportedProtocol => ipv6_unsupported_protocol: "IPv6 upper-layer protocol other than ICMPv6 and TCP.",
        Ipv6TcpToGroup => ipv6_tcp_to_group: "TCP over IPv6 to a multicast group or from the unspecified address (TCP is unicast, RFC 4291 §2.7).",
        Icmpv6PacketTooBigForeign => icmpv6_packet_too_big_foreign: "ICMPv6 packet too big quoting no TCP segment of ours (other protocol, short quote, other source address).",
        Icmpv6Truncated => icmpv6_truncated: "ICMPv6 message shorter than its header.",
        Icmpv6BadChecksum => icmpv6_bad_checksum: "ICMPv6 checksum wrong.",
        Icmpv6Malformed => icmpv6_malformed: "ICMPv6 error whose quoted header is unusable.",
        Icmpv6Other => icmpv6_other: "ICMPv6 message other than echo request or neighbour discovery we act on (counted, not acted on).",
        NdpBadHopLimit => ndp_bad_hop_limit: "Neighbour discovery message with hop limit other than 255 (RFC 4861 §6.1, §7.1).",
        NdpInvalid => ndp_invalid: "Neighbour discovery message failing RFC 4861 validation (code, lengths, options, multicast target, option from the unspecified address).",
        NdpNotForUs => ndp_not_for_us: "Valid neighbour solicitation whose target is not one of our addresses.",
        NdpAddressConflict => ndp_address_conflict: "Neighbour advertisement from another MAC claiming one of our addresses.",
        NdpQueueOverflow => ndp_queue_overflow: "IPv6 packet dropped: the queue of its pending neighbour was full.",
        NdpResolutionFailed => ndp_resolution_failed: "IPv6 neighbour resolutions that failed after all retries.",
        NdpUnresolvedDrop => ndp_unresolved_drop: "Queued IPv6 packets dropped because resolution failed.",
        NdpCacheFull => ndp_cache_full: "IPv6 resolution not started: neighbour table full of pending or pinned entries.",
        NdpResolutionRateLimited => ndp_resolution_rate_limited: "IPv6 resolution not started: more than NeighborConfig::resolutions_per_second new ones.",
        MldInvalid => mld_invalid: "MLD query not from a link-local address, with a hop limit other than 1, or shorter than a query (RFC 3810 §5.1.14, §6.2).",
        Ipv6DstTentative => ipv6_dst_tentative: "IPv6 packet to one of our addresses that is still under duplicate address detection or was found duplicate (RFC 4862 §5.4: not usable).",
        NdpTentativeTarget => ndp_tentative_target: "Neighbour solicitation from a unicast source for one of our tentative or duplicate addresses: not answered (RFC 4862 §5.4.3).",
        NdpRouterAdvertIgnored => ndp_router_advert_ignored: "Router advertisement not acted on: the port has `ipv6_accept_ra = false`.",
        NdpRouterListFull => ndp_router_list_full: "Router advertisement from a router that could not be added: the default router list is full (routers::MAX_ROUTERS).",
        NdpPrefixListFull => ndp_prefix_list_full: "On-link prefix of a router advertisement not kept: the prefix list is full (routers::MAX_PREFIXES).",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_drop_hits_the_named_counter_only() {
        for &reason in DropReason::ALL {
            let mut c = NetCounters::default();
            c.count_drop(reason);
            assert_eq!(c.drops(reason), 1);
            assert_eq!(c.total_drops(), 1);
            let nonzero: Vec<_> = c.iter().filter(|(_, v)| *v != 0).collect();
            assert_eq!(nonzero, vec![(reason.name(), 1)]);
        }
    }

    #[test]
    fn iter_lists_every_counter_once() {
        let c = NetCounters { rx_frames: 7, tx_frames: 3, ..NetCounters::default() };
        let all: Vec<_> = c.iter().collect();
        assert_eq!(all.len(), NetCounters::LEN);
        assert_eq!(all[0], ("rx_frames", 7));
        assert!(all.contains(&("tx_frames", 3)));
        let mut names: Vec<_> = all.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NetCounters::LEN);
        assert!(names.contains(&"ipv4_bad_checksum"));
    }

    #[test]
    fn counters_saturate() {
        let mut c = NetCounters { ipv4_fragment: u64::MAX - 1, ..NetCounters::default() };
        c.add_drops(DropReason::Ipv4Fragment, 5);
        assert_eq!(c.ipv4_fragment, u64::MAX);
    }
}
