//! What each port can do on transmit, as data: the offloads its device granted, and what
//! its driver is known to get wrong ([`Quirks`], one row per DPDK driver in
//! [`DRIVER_QUIRKS`]). The TX planner ([`super::plan`]) decides from a [`TxCaps`] alone,
//! so the lcore never asks which driver it talks to.

/// What a DPDK driver (PMD) gets wrong or cannot do, beyond the offload bits it reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// The PMD checks `l2_len + l3_len + l4_len + tso_segsz` against the IP MTU, so a
    /// TSO segment size must leave room for the headers (DPDK 22.11 `net_tap`,
    /// `pmd_tx_burst`).
    pub tso_frame_within_mtu: bool,
    /// The PMD's software checksum "offload" sums each piece of a chain on its own and
    /// adds the sums, which is wrong when a piece other than the last has an odd length
    /// (RFC 1071 §2: the byte order of what follows shifts). DPDK 22.11 `net_tap`
    /// (`tap_tx_l4_add_rcksum`), also behind its software TSO.
    pub odd_piece_cksum_broken: bool,
    /// TX sends the first segment of a chain with the packet's length: only linear
    /// frames go out right. DPDK 22.11 `net_af_xdp` (`af_xdp_tx_zc`: one descriptor per
    /// mbuf, `desc->len = mbuf->pkt_len`).
    pub single_segment_tx: bool,
    /// Indirect or external (attached) mbufs are sent from the wrong buffer. DPDK 22.11
    /// `net_af_xdp` tests only `mbuf->pool == umem pool` before addressing the mbuf's
    /// own buffer.
    pub no_attached_mbufs: bool,
    /// TSO covers TCP over IPv4 only: an IPv6 super-frame would leave whole. DPDK 22.11
    /// `net_tap` segments with `rte_gso_segment`, which takes IPv4 TCP only and passes
    /// other packets through unsegmented (a kernel peer on the tap accepts them; a router
    /// behind it answers "packet too big" for each).
    pub no_ipv6_tso: bool,
}

/// Known driver quirks, by the driver name `rte_eth_dev_info` reports. A driver not listed
/// has none.
pub const DRIVER_QUIRKS: &[(&str, Quirks)] = &[
    (
        "net_tap",
        Quirks {
            tso_frame_within_mtu: true,
            odd_piece_cksum_broken: true,
            single_segment_tx: false,
            no_attached_mbufs: false,
            no_ipv6_tso: true,
        },
    ),
    (
        "net_af_xdp",
        Quirks {
            tso_frame_within_mtu: false,
            odd_piece_cksum_broken: false,
            single_segment_tx: true,
            no_attached_mbufs: true,
            no_ipv6_tso: false,
        },
    ),
];

/// The quirks of `driver` (none for a driver not in [`DRIVER_QUIRKS`]).
pub fn quirks(driver: &str) -> Quirks {
    DRIVER_QUIRKS.iter().find(|(name, _)| *name == driver).map(|(_, q)| *q).unwrap_or_default()
}

/// What the TX path of one port may use: granted offloads with the driver's quirks
/// applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxCaps {
    /// The device segments TCP super-frames (TSO) and fills in every checksum of them.
    pub tso: bool,
    /// The device fills in the IPv4 header checksum.
    pub ipv4_cksum: bool,
    /// The device fills in the TCP checksum (from the pseudo-header sum we write).
    pub tcp_cksum: bool,
    /// The device takes a frame as a chain of mbufs (scatter-gather).
    pub multi_seg: bool,
    /// A chain may hold indirect mbufs viewing other frames' buffers: the zero-copy way
    /// to send payload that was received or queued in mbufs.
    pub attached_mbufs: bool,
    /// See [`Quirks::tso_frame_within_mtu`].
    pub tso_frame_within_mtu: bool,
    /// See [`Quirks::odd_piece_cksum_broken`].
    pub odd_piece_cksum_broken: bool,
    /// See [`Quirks::no_ipv6_tso`].
    pub no_ipv6_tso: bool,
}

impl TxCaps {
    /// The capabilities of a port whose device granted `tso`, `ipv4_cksum`, `tcp_cksum`
    /// and `multi_seg`, run by a driver with `quirks`.
    pub fn new(tso: bool, ipv4_cksum: bool, tcp_cksum: bool, multi_seg: bool, quirks: Quirks) -> TxCaps {
        let multi_seg = multi_seg && !quirks.single_segment_tx;
        TxCaps {
            // TSO hands the device a chain (header mbuf + payload views).
            tso: tso && multi_seg && !quirks.no_attached_mbufs,
            ipv4_cksum,
            tcp_cksum,
            multi_seg,
            attached_mbufs: multi_seg && !quirks.no_attached_mbufs,
            tso_frame_within_mtu: quirks.tso_frame_within_mtu,
            odd_piece_cksum_broken: quirks.odd_piece_cksum_broken,
            no_ipv6_tso: quirks.no_ipv6_tso,
        }
    }

    /// What the port can do for TCP over IPv6 (`RTE_MBUF_F_TX_IPV6`): the same, less TSO
    /// where the driver segments IPv4 only ([`Quirks::no_ipv6_tso`]).
    pub fn for_ipv6(&self) -> TxCaps {
        TxCaps { tso: self.tso && !self.no_ipv6_tso, ..*self }
    }

    /// The largest MSS (RFC 9293 §3.7.1: without options) whose segments this port sends
    /// as whole frames of at most `mtu` (IP MTU): the MTU less the IPv4 and TCP headers,
    /// and where the driver counts the Ethernet header in its TSO size check
    /// ([`Quirks::tso_frame_within_mtu`]) that too, so that the device cuts frames at the
    /// engine's segment boundaries (a retransmission of a 1448-byte segment over frames of
    /// 1434 bytes would overlap what the receiver SACKed, and each overlap comes back as a
    /// tiny D-SACK that undoes a window reduction).
    pub fn max_mss(&self, mtu: u16) -> u16 {
        let l2 = if self.tso && self.tso_frame_within_mtu { 14 } else { 0 };
        mtu.saturating_sub(20 + 20 + l2)
    }

    /// Every combination of the capability bits (for table tests of the planner).
    pub fn all() -> impl Iterator<Item = TxCaps> {
        (0u32..128).map(|b| {
            let bit = |i: u32| b & (1 << i) != 0;
            TxCaps {
                tso: bit(0),
                ipv4_cksum: bit(1),
                tcp_cksum: bit(2),
                multi_seg: bit(3),
                attached_mbufs: bit(4),
                tso_frame_within_mtu: bit(5),
                odd_piece_cksum_broken: bit(6),
                no_ipv6_tso: false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_have_their_quirks() {
        assert!(quirks("net_tap").odd_piece_cksum_broken && quirks("net_tap").tso_frame_within_mtu);
        assert!(quirks("net_af_xdp").single_segment_tx && quirks("net_af_xdp").no_attached_mbufs);
        assert_eq!(quirks("net_ixgbe"), Quirks::default());
        // net_tap's TSO is IPv4-only: IPv6 super-segments are cut here.
        let tap = TxCaps::new(true, true, true, true, quirks("net_tap"));
        assert!(tap.tso && !tap.for_ipv6().tso && tap.for_ipv6().attached_mbufs);
        let nic = TxCaps::new(true, true, true, true, quirks("net_ice"));
        assert!(nic.for_ipv6().tso, "a NIC's TSO covers IPv6");
        assert_eq!(quirks(""), Quirks::default());
    }

    #[test]
    fn quirks_take_away_what_the_device_reported() {
        // An AF_XDP port that claimed everything still gets linear frames only.
        let x = TxCaps::new(true, true, true, true, quirks("net_af_xdp"));
        assert!(!x.multi_seg && !x.attached_mbufs && !x.tso);
        assert!(x.ipv4_cksum && x.tcp_cksum, "checksum bits pass through");
        // net_tap keeps its offloads and carries its quirks to the planner.
        let t = TxCaps::new(true, true, true, true, quirks("net_tap"));
        assert!(t.tso && t.multi_seg && t.attached_mbufs && t.odd_piece_cksum_broken && t.tso_frame_within_mtu);
        // TSO needs a chain: without scatter-gather it is not usable.
        assert!(!TxCaps::new(true, true, true, false, Quirks::default()).tso);
    }

    #[test]
    fn the_mss_fits_the_frames_the_device_cuts() {
        let tap = TxCaps::new(true, true, true, true, quirks("net_tap"));
        assert_eq!(tap.max_mss(1500), 1446, "net_tap counts the Ethernet header in its TSO check");
        // With timestamps (12 bytes of options) a full segment is 1434 bytes: exactly the
        // frame net_tap cuts at 1500 - (14 + 20 + 32).
        assert_eq!(usize::from(tap.max_mss(1500)) - 12, 1500 - (14 + 20 + 32));
        let no_tso = TxCaps::new(false, true, true, true, quirks("net_tap"));
        assert_eq!(no_tso.max_mss(1500), 1460);
        assert_eq!(TxCaps::new(true, true, true, true, Quirks::default()).max_mss(1500), 1460);
        assert_eq!(TxCaps::default().max_mss(9000), 8960);
    }

    #[test]
    fn all_combinations_are_distinct() {
        let v: Vec<TxCaps> = TxCaps::all().collect();
        assert_eq!(v.len(), 128);
        for (i, a) in v.iter().enumerate() {
            assert!(v[i + 1..].iter().all(|b| b != a));
        }
    }
}
