//! Flow steering: which lcore owns a TCP flow (over IPv4 or IPv6).
//!
//! Receive-side scaling hashes a packet's 4-tuple with the Toeplitz function (Microsoft
//! "RSS hashing", also DPDK `rte_softrss`) and looks the low bits of the hash up in a
//! redirection table (RETA) to pick the RX queue; lcore `i` owns queue `i` of every port.
//! Strait computes the same hash in software ([`Toeplitz`]) so that
//!
//! * on a device that steers by RSS with our key and RETA, the TCP engine can choose an
//!   active open's source port so that the *return* flow hashes to the opening lcore
//!   ([`FlowSteering::owner`] is what the NIC will compute);
//! * on a device without usable RSS (`net_tap` without rte_flow, a one-queue device), the
//!   lcore that received a frame computes the owner with the same function and hands
//!   mis-steered frames to it.
//!
//! The key is symmetric ([`symmetric_key`]): the hash of (a, b, pa, pb) equals that of
//! (b, a, pb, pa), so both directions of a connection have one owner.
//!
//! Sans-IO: no DPDK, no clock.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Length of the RSS key most NICs use (Intel, Mellanox): 40 bytes.
pub const KEY_LEN: usize = 40;

/// RETA entries when the device does not say (a power of two, as every RETA is).
pub const DEFAULT_RETA_SIZE: usize = 128;

/// Bytes of Toeplitz input for TCP over IPv4: source address, destination address,
/// source port, destination port (Microsoft RSS, "IPv4 with TCP").
const TUPLE_LEN: usize = 12;

/// Bytes of Toeplitz input for TCP over IPv6: the two 16-byte addresses, then the ports
/// (Microsoft RSS, "IPv6 with TCP", without extension headers; what NICs hash and DPDK's
/// `rte_softrss` over `rte_ipv6_tuple` computes). A 40-byte key covers it exactly.
const TUPLE_LEN_V6: usize = 36;

/// The symmetric Toeplitz key: the 16-bit pattern 0x6d5a repeated makes the hash of
/// (src, dst) equal that of (dst, src) (Woo & Park, "Scalable TCP Session Monitoring
/// with Symmetric Receive-side Scaling", 2012).
pub fn symmetric_key(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| if i % 2 == 0 { 0x6d } else { 0x5a })
        .collect()
}

/// Why a key cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an RSS key needs at least {} bytes for a TCP/IPv4 tuple, got {0}", TUPLE_LEN + 4)]
pub struct KeyTooShort(pub usize);

/// The Toeplitz hash with a fixed key, table-driven: for each input byte position, the
/// XOR of the 32-bit key windows selected by that byte's bits, precomputed for all 256
/// values (12 lookups per TCP/IPv4 tuple, 36 per TCP/IPv6 one). Key bits past the end of
/// a short key read as zero.
#[derive(Clone)]
pub struct Toeplitz {
    table: Box<[[u32; 256]; TUPLE_LEN_V6]>,
}

impl core::fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Toeplitz").finish_non_exhaustive()
    }
}

/// The 32 key bits starting at bit `bit` (bit 0 = most significant bit of `key[0]`);
/// bits past the end of the key read as zero.
fn key_window(key: &[u8], bit: usize) -> u32 {
    let byte = bit / 8;
    let shift = bit % 8;
    let get = |i: usize| u64::from(key.get(byte + i).copied().unwrap_or(0));
    let v = (get(0) << 32) | (get(1) << 24) | (get(2) << 16) | (get(3) << 8) | get(4);
    // 40 bits loaded; the window is the 32 bits after skipping `shift` leading bits.
    ((v >> (8 - shift)) & 0xffff_ffff) as u32
}

impl Toeplitz {
    /// The hash under `key` (at least 16 bytes: the input is 12 bytes and each input bit
    /// needs a 32-bit window).
    pub fn new(key: &[u8]) -> Result<Self, KeyTooShort> {
        if key.len() < TUPLE_LEN + 4 {
            return Err(KeyTooShort(key.len()));
        }
        let mut table = Box::new([[0u32; 256]; TUPLE_LEN_V6]);
        for (pos, row) in table.iter_mut().enumerate() {
            for (value, slot) in row.iter_mut().enumerate() {
                let mut h = 0u32;
                for b in 0..8 {
                    if value & (0x80 >> b) != 0 {
                        h ^= key_window(key, pos * 8 + b);
                    }
                }
                *slot = h;
            }
        }
        Ok(Toeplitz { table })
    }

    /// The hash of an arbitrary input of at most 36 bytes (longer input is cut).
    pub fn hash(&self, input: &[u8]) -> u32 {
        self.table
            .iter()
            .zip(input)
            .fold(0, |h, (row, &b)| h ^ row[usize::from(b)])
    }

    /// The "IPv4 with TCP" hash: source address, destination address, source port,
    /// destination port, as they appear in the received packet.
    pub fn hash_ipv4_tcp(&self, src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) -> u32 {
        let mut input = [0u8; TUPLE_LEN];
        input[..4].copy_from_slice(&src.octets());
        input[4..8].copy_from_slice(&dst.octets());
        input[8..10].copy_from_slice(&src_port.to_be_bytes());
        input[10..12].copy_from_slice(&dst_port.to_be_bytes());
        self.hash(&input)
    }

    /// The "IPv6 with TCP" hash: source address, destination address, source port,
    /// destination port, as they appear in the received packet.
    pub fn hash_ipv6_tcp(&self, src: Ipv6Addr, dst: Ipv6Addr, src_port: u16, dst_port: u16) -> u32 {
        let mut input = [0u8; TUPLE_LEN_V6];
        input[..16].copy_from_slice(&src.octets());
        input[16..32].copy_from_slice(&dst.octets());
        input[32..34].copy_from_slice(&src_port.to_be_bytes());
        input[34..36].copy_from_slice(&dst_port.to_be_bytes());
        self.hash(&input)
    }

    /// The "IPv4" (addresses only) hash.
    pub fn hash_ipv4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let mut input = [0u8; 8];
        input[..4].copy_from_slice(&src.octets());
        input[4..].copy_from_slice(&dst.octets());
        self.hash(&input)
    }
}

/// Why a steering table cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SteeringError {
    /// The key is too short.
    #[error(transparent)]
    Key(#[from] KeyTooShort),
    /// The RETA is empty or its size is not a power of two.
    #[error("a redirection table needs a power-of-two number of entries, got {0}")]
    RetaSize(usize),
    /// No lcore to steer to.
    #[error("flow steering needs at least one lcore")]
    NoLcores,
}

/// The flow-to-lcore map shared by every lcore: Toeplitz hash, then RETA (entry
/// `hash % len` holds the owning lcore's index, which is also its queue number).
/// Cheap to clone (shared tables).
#[derive(Debug, Clone)]
pub struct FlowSteering {
    toeplitz: Arc<Toeplitz>,
    reta: Arc<[u16]>,
    lcores: u16,
}

impl FlowSteering {
    /// Steering over `lcores` lcores with the RETA filled round robin (entry `i` -> lcore
    /// `i % lcores`, what [`FlowSteering::reta`] hands to the device) and `key`.
    pub fn new(key: &[u8], reta_size: usize, lcores: u16) -> Result<Self, SteeringError> {
        if lcores == 0 {
            return Err(SteeringError::NoLcores);
        }
        if reta_size == 0 || !reta_size.is_power_of_two() {
            return Err(SteeringError::RetaSize(reta_size));
        }
        let reta: Arc<[u16]> = (0..reta_size)
            .map(|i| (i % usize::from(lcores)) as u16)
            .collect();
        Ok(FlowSteering {
            toeplitz: Arc::new(Toeplitz::new(key)?),
            reta,
            lcores,
        })
    }

    /// Number of lcores flows are spread over.
    pub fn lcores(&self) -> u16 {
        self.lcores
    }

    /// The redirection table: entry `i` is the queue (= lcore index) for hashes with
    /// `hash % len == i`.
    pub fn reta(&self) -> &[u16] {
        &self.reta
    }

    /// The hash function.
    pub fn toeplitz(&self) -> &Toeplitz {
        &self.toeplitz
    }

    /// Index of the lcore that owns the TCP flow with this 4-tuple, in either direction
    /// (IPv4 or IPv6; addresses of mixed families are no flow and go to lcore 0).
    pub fn owner(&self, src: impl Into<IpAddr>, dst: impl Into<IpAddr>, src_port: u16, dst_port: u16) -> u16 {
        let h = match (src.into(), dst.into()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self.toeplitz.hash_ipv4_tcp(s, d, src_port, dst_port),
            (IpAddr::V6(s), IpAddr::V6(d)) => self.toeplitz.hash_ipv6_tcp(s, d, src_port, dst_port),
            _ => return 0,
        };
        // The NIC takes the hash's low bits (len is a power of two).
        let i = (h as usize) & (self.reta.len() - 1);
        self.reta.get(i).copied().unwrap_or(0)
    }

    /// This lcore's view: steering plus its own index, for the TCP engine's choice of
    /// ephemeral ports.
    pub fn for_lcore(&self, index: u16) -> LcoreSteering {
        LcoreSteering {
            steering: self.clone(),
            index,
        }
    }
}

/// [`FlowSteering`] as one lcore sees it.
#[derive(Debug, Clone)]
pub struct LcoreSteering {
    steering: FlowSteering,
    index: u16,
}

impl LcoreSteering {
    /// This lcore's index (and queue number).
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The shared map.
    pub fn steering(&self) -> &FlowSteering {
        &self.steering
    }

    /// Whether the connection `local:local_port` <-> `remote:remote_port` belongs to this
    /// lcore (the owner of the return flow, remote -> local, is the same by symmetry).
    pub fn owns(
        &self,
        local: impl Into<IpAddr>,
        local_port: u16,
        remote: impl Into<IpAddr>,
        remote_port: u16,
    ) -> bool {
        self.steering.owner(remote, local, remote_port, local_port) == self.index
    }
}

/// Where a received Ethernet frame carrying TCP over IPv4 or IPv6 should go: the 4-tuple
/// (src, dst, src port, dst port) read straight from the frame, or `None` for anything
/// else (ARP, ICMP other than below, fragments, malformed frames: the receiving lcore
/// handles and counts those itself). An ICMP "fragmentation needed" quoting a TCP segment
/// goes where that segment's connection lives: the quoted tuple, turned round to read as
/// the peer's segments do (the quote is one *we* sent), so that the owner's engine finds
/// the connection (RFC 1191; Linux `tcp_v4_err` looks the quote up the same way). Over
/// IPv6 likewise, past any extension headers, with "packet too big" (RFC 8201,
/// `tcp_v6_err`) in place of "fragmentation needed".
pub fn frame_tcp_tuple(frame: &[u8]) -> Option<(IpAddr, IpAddr, u16, u16)> {
    use crate::wire::{ethernet, icmpv4, ipv4, tcp};
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    match eth.ethertype() {
        ethernet::EtherType::Ipv4 => {}
        ethernet::EtherType::Ipv6 => return ipv6_tcp_tuple(eth.payload()),
        _ => return None,
    }
    let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
    // Only an unfragmented datagram carries ports (fragments are dropped anyway).
    if ip.is_fragment() {
        return None;
    }
    match ip.protocol() {
        ipv4::protocol::TCP => {
            let segment = tcp::Packet::new_checked(ip.payload()).ok()?;
            Some((ip.src_addr().into(), ip.dst_addr().into(), segment.src_port(), segment.dst_port()))
        }
        ipv4::protocol::ICMP => {
            let packet = icmpv4::Packet::new_checked(ip.payload()).ok()?;
            let repr = icmpv4::Repr::parse(&packet, false).ok()?;
            let icmpv4::Repr::DstUnreachable { reason: icmpv4::DstUnreachable::FragRequired, .. } = repr else {
                return None;
            };
            let q = icmpv4::QuotedTcp::of(&repr)?;
            Some(((*q.remote.ip()).into(), (*q.local.ip()).into(), q.remote.port(), q.local.port()))
        }
        _ => None,
    }
}

/// [`frame_tcp_tuple`] of an IPv6 packet.
fn ipv6_tcp_tuple(packet: &[u8]) -> Option<(IpAddr, IpAddr, u16, u16)> {
    use crate::wire::{icmpv6, ipv6, tcp};
    let ip = ipv6::Packet::new_checked(packet).ok()?;
    // Fragments and unknown options are refused by the walk (and dropped by the port).
    let up = ip.upper_layer().ok()?;
    let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let l4 = packet.get(up.offset..end)?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    match up.protocol {
        ipv6::next_header::TCP => {
            let segment = tcp::Packet::new_checked(l4).ok()?;
            Some((IpAddr::V6(src), IpAddr::V6(dst), segment.src_port(), segment.dst_port()))
        }
        ipv6::next_header::ICMPV6 => {
            let message = icmpv6::Packet::new_checked(l4).ok()?;
            let repr = icmpv6::Repr::parse(src, dst, &message, false).ok()?;
            let icmpv6::Repr::PktTooBig { .. } = repr else { return None };
            let q = icmpv6::QuotedTcp::of(&repr)?;
            Some((IpAddr::V6(*q.remote.ip()), IpAddr::V6(*q.local.ip()), q.remote.port(), q.local.port()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of Microsoft's "Verifying the RSS Hash Calculation".
    const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    /// (destination, destination port, source, source port, IPv4 hash, IPv4-with-TCP hash).
    type Vector = ([u8; 4], u16, [u8; 4], u16, u32, u32);
    const MS_VECTORS: [Vector; 5] = [
        (
            [161, 142, 100, 80],
            1766,
            [66, 9, 149, 187],
            2794,
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            [65, 69, 140, 83],
            4739,
            [199, 92, 111, 2],
            14230,
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            [12, 22, 207, 184],
            38024,
            [24, 19, 198, 95],
            12898,
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            [209, 142, 163, 6],
            2217,
            [38, 27, 205, 30],
            48228,
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            [202, 188, 127, 2],
            1303,
            [153, 39, 163, 191],
            44251,
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    /// Bit-by-bit Toeplitz, straight from the definition, to check the tables.
    fn reference(key: &[u8], input: &[u8]) -> u32 {
        let mut h = 0u32;
        for (i, &byte) in input.iter().enumerate() {
            for b in 0..8 {
                if byte & (0x80 >> b) != 0 {
                    h ^= key_window(key, i * 8 + b);
                }
            }
        }
        h
    }

    #[test]
    fn microsoft_verification_vectors() {
        let t = Toeplitz::new(&MS_KEY).expect("40-byte key");
        for (dst, dport, src, sport, ip_hash, tcp_hash) in MS_VECTORS {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            assert_eq!(
                t.hash_ipv4(src, dst),
                ip_hash,
                "IPv4 hash of {src} -> {dst}"
            );
            assert_eq!(
                t.hash_ipv4_tcp(src, dst, sport, dport),
                tcp_hash,
                "TCP hash of {src}:{sport} -> {dst}:{dport}"
            );
        }
    }

    #[test]
    fn tables_match_the_bitwise_definition() {
        let key = symmetric_key(KEY_LEN);
        let t = Toeplitz::new(&key).expect("key");
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..1000 {
            // xorshift: varied inputs without a dependency.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let input: Vec<u8> = x
                .to_be_bytes()
                .iter()
                .chain(&(x as u32).to_le_bytes())
                .copied()
                .collect();
            assert_eq!(t.hash(&input), reference(&key, &input));
            assert_eq!(
                Toeplitz::new(&MS_KEY).expect("key").hash(&input),
                reference(&MS_KEY, &input)
            );
        }
    }

    #[test]
    fn key_window_reads_zero_past_the_end() {
        let key = [0xff; 16];
        assert_eq!(key_window(&key, 0), 0xffff_ffff);
        assert_eq!(
            key_window(&key, 116),
            0xfff0_0000,
            "12 key bits left at bit 116"
        );
        assert_eq!(key_window(&key, 128), 0);
    }

    #[test]
    fn symmetric_key_hashes_both_directions_alike() {
        let t = Toeplitz::new(&symmetric_key(KEY_LEN)).expect("key");
        let a = Ipv4Addr::new(198, 18, 90, 1);
        let b = Ipv4Addr::new(198, 18, 90, 2);
        for port in [1u16, 80, 1024, 40000, 65535] {
            assert_eq!(
                t.hash_ipv4_tcp(a, b, port, 8080),
                t.hash_ipv4_tcp(b, a, 8080, port)
            );
        }
        assert_ne!(
            t.hash_ipv4_tcp(a, b, 1, 2),
            t.hash_ipv4_tcp(a, b, 2, 1) ^ 1,
            "not constant"
        );
        // The Microsoft key is not symmetric: the property comes from the key.
        let ms = Toeplitz::new(&MS_KEY).expect("key");
        assert_ne!(
            ms.hash_ipv4_tcp(a, b, 1234, 80),
            ms.hash_ipv4_tcp(b, a, 80, 1234)
        );
    }

    #[test]
    fn short_keys_and_bad_tables_are_refused() {
        assert_eq!(Toeplitz::new(&[0; 15]).err(), Some(KeyTooShort(15)));
        let key = symmetric_key(KEY_LEN);
        assert_eq!(
            FlowSteering::new(&key, 100, 2).err(),
            Some(SteeringError::RetaSize(100))
        );
        assert_eq!(
            FlowSteering::new(&key, 0, 2).err(),
            Some(SteeringError::RetaSize(0))
        );
        assert_eq!(
            FlowSteering::new(&key, 128, 0).err(),
            Some(SteeringError::NoLcores)
        );
    }

    /// Microsoft's "IPv6 with TCP" vectors (the same key; DPDK's `test_thash` checks
    /// `rte_softrss` against them): source, destination, source port, destination port.
    #[test]
    fn ipv6_tcp_hash_matches_the_reference_vectors() {
        let t = Toeplitz::new(&MS_KEY).expect("key");
        let v = |a: [u16; 8]| Ipv6Addr::new(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
        let vectors = [
            (v([0x3ffe, 0x2501, 0x200, 0x1fff, 0, 0, 0, 7]), v([0x3ffe, 0x2501, 0x200, 3, 0, 0, 0, 1]), 2794, 1766, 0x4020_7d3d),
            (
                v([0x3ffe, 0x501, 8, 0, 0x260, 0x97ff, 0xfe40, 0xefab]),
                v([0xff02, 0, 0, 0, 0, 0, 0, 1]),
                14230,
                4739,
                0xdde5_1bbf,
            ),
            (
                v([0x3ffe, 0x1900, 0x4545, 3, 0x200, 0xf8ff, 0xfe21, 0x67cf]),
                v([0xfe80, 0, 0, 0, 0x200, 0xf8ff, 0xfe21, 0x67cf]),
                44251,
                38024,
                0x02d1_feef,
            ),
        ];
        for (src, dst, sp, dp, want) in vectors {
            assert_eq!(t.hash_ipv6_tcp(src, dst, sp, dp), want, "{src} -> {dst}");
        }
    }

    /// Symmetric over IPv6 too: both directions of a v6 flow have one owner, flows spread,
    /// and an lcore's active opens pick ports whose return flow it owns.
    #[test]
    fn ipv6_flows_have_one_owner_both_ways() {
        let s = FlowSteering::new(&symmetric_key(KEY_LEN), 128, 3).expect("steering");
        let client = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let server = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        let mut per_lcore = [0u32; 3];
        for port in 10000..13000u16 {
            let o = s.owner(client, server, port, 80);
            assert_eq!(o, s.owner(server, client, 80, port), "both directions, one owner");
            assert!(s.for_lcore(o).owns(server, 80, client, port));
            per_lcore[usize::from(o)] += 1;
        }
        assert!(per_lcore.iter().all(|&n| n > 500), "flows spread over every lcore: {per_lcore:?}");
        assert_eq!(s.owner(IpAddr::V6(client), IpAddr::V4(Ipv4Addr::LOCALHOST), 1, 2), 0, "mixed families: lcore 0");
    }

    #[test]
    fn owner_is_the_reta_entry_of_the_hash_and_spreads_flows() {
        let key = symmetric_key(KEY_LEN);
        let s = FlowSteering::new(&key, 128, 3).expect("steering");
        assert_eq!(s.reta().len(), 128);
        assert_eq!(&s.reta()[..4], &[0, 1, 2, 0]);
        let client = Ipv4Addr::new(198, 18, 91, 1);
        let server = Ipv4Addr::new(198, 18, 91, 2);
        let mut per_lcore = [0u32; 3];
        for port in 10000..13000u16 {
            let o = s.owner(client, server, port, 7);
            let h = s.toeplitz().hash_ipv4_tcp(client, server, port, 7);
            assert_eq!(o, s.reta()[h as usize % 128]);
            assert_eq!(
                o,
                s.owner(server, client, 7, port),
                "both directions, one owner"
            );
            per_lcore[usize::from(o)] += 1;
        }
        assert!(
            per_lcore.iter().all(|&n| n > 500),
            "flows spread over every lcore: {per_lcore:?}"
        );
        let one = FlowSteering::new(&key, 128, 1).expect("steering");
        assert!(
            (0..1000u16).all(|p| one.owner(client, server, p, 7) == 0),
            "one lcore owns everything"
        );
    }

    #[test]
    fn lcore_view_owns_its_share_of_ports() {
        let s = FlowSteering::new(&symmetric_key(KEY_LEN), 128, 2).expect("steering");
        let local = Ipv4Addr::new(198, 18, 92, 2);
        let remote = Ipv4Addr::new(198, 18, 92, 1);
        let (l0, l1) = (s.for_lcore(0), s.for_lcore(1));
        for port in 32768..33768u16 {
            assert_ne!(
                l0.owns(local, port, remote, 80),
                l1.owns(local, port, remote, 80),
                "exactly one owner"
            );
            // The frame the remote sends back is steered to the owner.
            let owner = s.owner(remote, local, 80, port);
            assert!(s.for_lcore(owner).owns(local, port, remote, 80));
        }
    }

    fn tcp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 3] = 40; // total length
        f[14 + 9] = 6;
        f[34 + 12] = 5 << 4; // TCP data offset
        f[14 + 12..14 + 16].copy_from_slice(&src);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn frame_tuple_reads_tcp_over_ipv4() {
        let f = tcp_frame([198, 18, 93, 1], [198, 18, 93, 2], 40000, 7);
        assert_eq!(
            frame_tcp_tuple(&f),
            Some((
                IpAddr::V4(Ipv4Addr::new(198, 18, 93, 1)),
                IpAddr::V4(Ipv4Addr::new(198, 18, 93, 2)),
                40000,
                7
            ))
        );
        let mut opts = f.clone();
        opts[14] = 0x46;
        opts[14 + 3] = 44; // total length with the options
        opts.splice(34..34, [0u8; 4]);
        assert_eq!(
            frame_tcp_tuple(&opts).map(|t| t.2),
            Some(40000),
            "IP options are skipped"
        );
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(frame_tcp_tuple(&arp), None);
        let mut udp = f.clone();
        udp[14 + 9] = 17;
        assert_eq!(frame_tcp_tuple(&udp), None);
        let mut frag = f.clone();
        frag[14 + 6] = 0x20;
        assert_eq!(frame_tcp_tuple(&frag), None, "more fragments");
        let mut frag = f.clone();
        frag[14 + 7] = 0x01;
        assert_eq!(frame_tcp_tuple(&frag), None, "fragment offset");
        let mut df = f.clone();
        df[14 + 6] = 0x40;
        assert!(frame_tcp_tuple(&df).is_some(), "DF is not a fragment");
        for cut in 0..38 {
            assert_eq!(frame_tcp_tuple(&f[..cut]), None, "truncated at {cut}");
        }
        let mut bad_ihl = f.clone();
        bad_ihl[14] = 0x44;
        assert_eq!(frame_tcp_tuple(&bad_ihl), None);
        // Fragmentation needed quoting a segment we sent to 198.18.93.1:40000 from port 7:
        // steered as that peer's segments are.
        let mut icmp = f[..34].to_vec();
        icmp[14 + 9] = 1;
        icmp[14 + 12..14 + 16].copy_from_slice(&[198, 18, 93, 254]);
        let mut msg = vec![3, 4, 0, 0, 0, 0, 0x05, 0x00];
        let mut quote = f[14..34].to_vec();
        quote[12..16].copy_from_slice(&[198, 18, 93, 2]);
        quote[16..20].copy_from_slice(&[198, 18, 93, 1]);
        msg.extend_from_slice(&quote);
        msg.extend_from_slice(&[0, 7, 0x9c, 0x40, 0, 0, 0, 1]);
        crate::wire::icmpv4::Packet::new_unchecked(&mut msg[..]).fill_checksum();
        icmp.extend_from_slice(&msg);
        let total = u16::try_from(icmp.len() - 14).expect("small");
        icmp[14 + 2..14 + 4].copy_from_slice(&total.to_be_bytes());
        assert_eq!(
            frame_tcp_tuple(&icmp),
            Some((IpAddr::V4(Ipv4Addr::new(198, 18, 93, 1)), IpAddr::V4(Ipv4Addr::new(198, 18, 93, 2)), 40000, 7)),
            "frag-needed follows its connection"
        );
        let mut port_unreach = icmp.clone();
        port_unreach[34 + 1] = 3;
        assert_eq!(frame_tcp_tuple(&port_unreach), None, "other ICMP stays");
        for cut in 34..icmp.len() {
            assert_eq!(frame_tcp_tuple(&icmp[..cut]), None, "ICMP truncated at {cut}");
        }
        let mut v6 = f;
        v6[14] = 0x65;
        assert_eq!(frame_tcp_tuple(&v6), None);
    }

    /// TCP over IPv6, behind a hop-by-hop header too, and a "packet too big" quoting one
    /// of our segments, which goes where its connection lives (`tcp_v6_err`).
    #[test]
    fn frame_tuple_reads_tcp_over_ipv6() {
        use crate::wire::{icmpv6, ipv6};
        let peer = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let us = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        let frame = |next: u8, l4: &[u8], src: Ipv6Addr, dst: Ipv6Addr| {
            let mut f = vec![0u8; 14 + 40];
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            let ip = ipv6::Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: next,
                payload_len: l4.len(),
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
            };
            ip.emit(&mut ipv6::Packet::new_unchecked(&mut f[14..])).expect("header");
            f.extend_from_slice(l4);
            f
        };
        let mut seg = vec![0u8; 20];
        seg[0..2].copy_from_slice(&40000u16.to_be_bytes());
        seg[2..4].copy_from_slice(&80u16.to_be_bytes());
        seg[12] = 5 << 4;
        let want = Some((IpAddr::V6(peer), IpAddr::V6(us), 40000, 80));
        assert_eq!(frame_tcp_tuple(&frame(6, &seg, peer, us)), want);
        // Behind a hop-by-hop header (next header TCP, length 0, PadN of 4).
        let mut hbh = vec![6, 0, 1, 4, 0, 0, 0, 0];
        hbh.extend_from_slice(&seg);
        assert_eq!(frame_tcp_tuple(&frame(0, &hbh, peer, us)), want);
        // A fragment is no flow.
        let mut frag = vec![6, 0, 0, 1, 0, 0, 0, 1];
        frag.extend_from_slice(&seg);
        assert_eq!(frame_tcp_tuple(&frame(44, &frag, peer, us)), None);
        // Packet too big from a router, quoting our segment (us -> peer).
        let mut quoted = frame(6, &{
            let mut s = seg.clone();
            s[0..2].copy_from_slice(&80u16.to_be_bytes());
            s[2..4].copy_from_slice(&40000u16.to_be_bytes());
            s
        }, us, peer)[14..].to_vec();
        quoted.truncate(48);
        let router = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
        let mut msg = vec![icmpv6::message::PKT_TOO_BIG, 0, 0, 0, 0, 0, 0x05, 0x00];
        msg.extend_from_slice(&quoted);
        icmpv6::Packet::new_unchecked(&mut msg[..]).fill_checksum(router, us);
        assert_eq!(frame_tcp_tuple(&frame(58, &msg, router, us)), want, "packet too big follows its connection");
        let mut other = msg.clone();
        other[0] = icmpv6::message::TIME_EXCEEDED;
        icmpv6::Packet::new_unchecked(&mut other[..]).fill_checksum(router, us);
        assert_eq!(frame_tcp_tuple(&frame(58, &other, router, us)), None, "other ICMPv6 stays");
        let f = frame(6, &seg, peer, us);
        for cut in 14..f.len() {
            assert_eq!(frame_tcp_tuple(&f[..cut]), None, "truncated at {cut}");
        }
    }
}
