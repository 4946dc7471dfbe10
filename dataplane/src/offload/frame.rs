//! The header layout of an outgoing Ethernet (optionally 802.1Q-tagged) + IPv4 or IPv6 +
//! TCP frame, validated before any offload touches it, and the checksum work offloads
//! need. Every header field is read and written through [`crate::wire`].

use std::net::IpAddr;

use crate::wire::ethernet::{self, EtherType};
use crate::wire::{checksum, ipv4, ipv6, tcp};

/// Why a frame cannot be segmented or offloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// The buffer ends inside the headers.
    #[error("frame truncated inside its headers")]
    Truncated,
    /// Not an (optionally VLAN-tagged) IPv4 or IPv6 frame.
    #[error("neither an IPv4 nor an IPv6 frame")]
    NotIp,
    /// The IP header is malformed (version, IHL).
    #[error("malformed IP header")]
    BadIpHeader,
    /// The IP payload is not TCP (over IPv6: TCP is not the fixed header's next header;
    /// offloads here take no extension headers, and Strait writes none).
    #[error("not a TCP segment")]
    NotTcp,
    /// The packet is an IPv4 fragment; fragments cannot be segmented.
    #[error("IP fragment")]
    Fragment,
    /// The TCP data offset is below 5 words or beyond the buffer.
    #[error("malformed TCP header")]
    BadTcpHeader,
    /// The header buffer holds more than the headers.
    #[error("header buffer length does not match the headers")]
    HeaderLength,
    /// MSS of 0.
    #[error("segmentation size is zero")]
    ZeroMss,
    /// A segment (headers + MSS) would not fit the IP length field.
    #[error("segment exceeds the IP maximum packet size")]
    TooLarge,
}

/// Where the headers of a frame end (DPDK `l2_len`, `l3_len`, `l4_len`), and which IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLayout {
    /// Ethernet header, including a VLAN tag.
    pub l2_len: usize,
    /// IPv4 header with options, or the IPv6 fixed header.
    pub l3_len: usize,
    /// TCP header with options.
    pub l4_len: usize,
    /// IPv6 (DPDK `RTE_MBUF_F_TX_IPV6`), else IPv4.
    pub ipv6: bool,
}

impl HeaderLayout {
    /// Parses and validates the headers at the start of `frame`.
    pub fn parse(frame: &[u8]) -> Result<HeaderLayout, OffloadError> {
        let (l2_len, ethertype) =
            ethernet::Frame::new_unchecked(frame).link_header().map_err(|_| OffloadError::Truncated)?;
        let l3 = frame.get(l2_len..).ok_or(OffloadError::Truncated)?;
        let (l3_len, ipv6) = match ethertype {
            EtherType::Ipv4 => {
                let ip = ipv4::Packet::new_unchecked(l3);
                ip.check_header().map_err(|e| match e {
                    ipv4::Error::Truncated => OffloadError::Truncated,
                    _ => OffloadError::BadIpHeader,
                })?;
                if ip.protocol() != ipv4::protocol::TCP {
                    return Err(OffloadError::NotTcp);
                }
                if ip.is_fragment() {
                    return Err(OffloadError::Fragment);
                }
                (ip.header_len(), false)
            }
            EtherType::Ipv6 => {
                let ip = ipv6::Packet::new_unchecked(l3);
                ip.check_header().map_err(|e| match e {
                    ipv6::Error::Truncated => OffloadError::Truncated,
                    _ => OffloadError::BadIpHeader,
                })?;
                if ip.next_header() != ipv6::next_header::TCP {
                    return Err(OffloadError::NotTcp);
                }
                (ipv6::HEADER_LEN, true)
            }
            _ => return Err(OffloadError::NotIp),
        };
        let l4 = frame.get(l2_len + l3_len..).ok_or(OffloadError::Truncated)?;
        if l4.len() < tcp::HEADER_LEN {
            return Err(OffloadError::Truncated);
        }
        let seg = tcp::Packet::new_checked(l4).map_err(|_| OffloadError::BadTcpHeader)?;
        Ok(HeaderLayout { l2_len, l3_len, l4_len: seg.header_len(), ipv6 })
    }

    /// Length of all headers.
    pub fn total(&self) -> usize {
        self.l2_len + self.l3_len + self.l4_len
    }

    /// Offset of the TCP header.
    pub fn l4_offset(&self) -> usize {
        self.l2_len + self.l3_len
    }

    /// The value of the IP length field for `payload` bytes after the headers: the IPv4
    /// total length (header included), the IPv6 payload length (fixed header excluded).
    pub fn ip_length(&self, payload: usize) -> Result<u16, OffloadError> {
        let len = if self.ipv6 { self.l4_len + payload } else { self.l3_len + self.l4_len + payload };
        u16::try_from(len).map_err(|_| OffloadError::TooLarge)
    }

    /// The IP source and destination of a frame this layout was parsed from.
    fn addresses(&self, frame: &[u8]) -> Option<(IpAddr, IpAddr)> {
        let ip = frame.get(self.l2_len..self.l4_offset())?;
        Some(if self.ipv6 {
            let p = ipv6::Packet::new_unchecked(ip);
            (p.src_addr().into(), p.dst_addr().into())
        } else {
            let p = ipv4::Packet::new_unchecked(ip);
            (p.src_addr().into(), p.dst_addr().into())
        })
    }

    /// The IP header of `frame`, IPv4's, for its length and checksum fields.
    fn ipv4_mut<'a>(&self, frame: &'a mut [u8]) -> Option<ipv4::Packet<&'a mut [u8]>> {
        if self.ipv6 {
            return None;
        }
        frame.get_mut(self.l2_len..self.l4_offset()).map(ipv4::Packet::new_unchecked)
    }

    /// Writes the IP length field of `frame` for `payload` bytes after the headers; over
    /// IPv4 the identification `ident` too, and returns the IPv4 header (`None` over IPv6)
    /// for its checksum.
    pub(crate) fn set_ip_length<'a>(
        &self,
        frame: &'a mut [u8],
        payload: usize,
        ident: u16,
    ) -> Result<Option<ipv4::Packet<&'a mut [u8]>>, OffloadError> {
        let len = self.ip_length(payload)?;
        let ip = frame.get_mut(self.l2_len..self.l4_offset()).ok_or(OffloadError::Truncated)?;
        if self.ipv6 {
            ipv6::Packet::new_unchecked(ip).set_payload_len(len);
            Ok(None)
        } else {
            let mut p = ipv4::Packet::new_unchecked(ip);
            p.set_total_len(len);
            p.set_ident(ident);
            Ok(Some(p))
        }
    }

    /// The TCP header and payload of `frame`.
    pub(crate) fn tcp_mut<'a>(&self, frame: &'a mut [u8]) -> Result<tcp::Packet<&'a mut [u8]>, OffloadError> {
        frame.get_mut(self.l4_offset()..).map(tcp::Packet::new_unchecked).ok_or(OffloadError::Truncated)
    }
}

/// Partial sum of the TCP pseudo-header (RFC 9293 §3.1; over IPv6 RFC 8200 §8.1) for a
/// TCP length.
pub(crate) fn pseudo_sum(frame: &[u8], l: &HeaderLayout, tcp_len: usize) -> Result<u32, OffloadError> {
    let (s, d) = l.addresses(frame).ok_or(OffloadError::Truncated)?;
    tcp::pseudo_header_sum(s, d, tcp_len).ok_or(OffloadError::TooLarge)
}

/// Sums the TCP segment of `frame` (header with a zero checksum field, and payload) with
/// its pseudo-header and stores the checksum.
fn fill_tcp_checksum(frame: &mut [u8], l: &HeaderLayout) -> Result<(), OffloadError> {
    let tcp_len = frame.len().saturating_sub(l.l4_offset());
    let pseudo = pseudo_sum(frame, l, tcp_len)?;
    l.tcp_mut(frame)?.set_checksum(0);
    let seg = frame.get(l.l4_offset()..).ok_or(OffloadError::Truncated)?;
    let csum = !checksum::fold(checksum::sum(seg, pseudo));
    l.tcp_mut(frame)?.set_checksum(csum);
    Ok(())
}

/// Computes the checksums of a single (non-super) frame in software: the IPv4 header
/// checksum (RFC 791; IPv6 has none) and the TCP checksum over pseudo-header, header and
/// payload. The IP length field must already be right.
pub fn fill_checksums(frame: &mut [u8]) -> Result<HeaderLayout, OffloadError> {
    let l = HeaderLayout::parse(frame)?;
    if let Some(mut ip) = l.ipv4_mut(frame) {
        ip.fill_checksum();
    }
    fill_tcp_checksum(frame, &l)?;
    Ok(l)
}

/// Whether the checksums of a single frame are right (the IPv4 header's and the TCP
/// segment's) and the IP length field matches the frame.
pub fn verify_checksums(frame: &[u8]) -> bool {
    let Ok(l) = HeaderLayout::parse(frame) else { return false };
    let Some(ip) = frame.get(l.l2_len..) else { return false };
    let Ok(want) = l.ip_length(frame.len() - l.total()) else { return false };
    let length_ok = if l.ipv6 {
        ipv6::Packet::new_unchecked(ip).payload_len() == want
    } else {
        let p = ipv4::Packet::new_unchecked(ip);
        p.total_len() == want && p.verify_checksum()
    };
    if !length_ok {
        return false;
    }
    let Ok(pseudo) = pseudo_sum(frame, &l, frame.len() - l.l4_offset()) else { return false };
    frame.get(l.l4_offset()..).is_some_and(|seg| checksum::fold(checksum::sum(seg, pseudo)) == 0xffff)
}

/// What the port adapter puts in the mbuf for hardware offload (`l2_len`, `l3_len`,
/// `l4_len`, `tso_segsz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwOffload {
    /// Header lengths.
    pub layout: HeaderLayout,
    /// Segmentation size for TSO; `None` for checksum offload only.
    pub tso_segsz: Option<u16>,
}

/// Prepares a frame for hardware checksum offload, and TSO when `tso_mss` is given (DPDK
/// `rte_net_intel_cksum_prepare`): the IPv4 checksum is zeroed (the NIC computes it, per
/// segment with TSO; IPv6 has none) and the TCP checksum field gets the folded,
/// uncomplemented pseudo-header sum — with the TCP length for checksum offload, without it
/// for TSO, since the NIC adds each segment's length itself (Intel 82599 datasheet
/// §7.2.5.2).
pub fn prepare_hw_offload(frame: &mut [u8], tso_mss: Option<u16>) -> Result<HwOffload, OffloadError> {
    let l = HeaderLayout::parse(frame)?;
    if tso_mss == Some(0) {
        return Err(OffloadError::ZeroMss);
    }
    if let Some(mss) = tso_mss {
        l.ip_length(usize::from(mss))?;
    }
    if let Some(mut ip) = l.ipv4_mut(frame) {
        ip.set_checksum(0);
    }
    let tcp_len = match tso_mss {
        Some(_) => 0,
        None => frame.len() - l.l4_offset(),
    };
    let pseudo = checksum::fold(pseudo_sum(frame, &l, tcp_len)?);
    l.tcp_mut(frame)?.set_checksum(pseudo);
    Ok(HwOffload { layout: l, tso_segsz: tso_mss })
}

#[cfg(test)]
pub(crate) mod test_frames {
    //! Builders of Ethernet + IPv4 or IPv6 + TCP frames for the offload tests.

    use std::net::Ipv6Addr;

    use crate::tcp::seq::SeqNum;
    use crate::wire::ipv6;
    use crate::wire::tcp::{Flags, TcpOptions, TcpRepr};

    /// A frame: Ethernet (VLAN-tagged when `vlan`), IPv4 with `ip_opts` option bytes, TCP
    /// from `repr`, then `payload`. Lengths and checksums are filled in.
    pub fn build(vlan: bool, ip_opts: usize, ip_id: u16, repr: &TcpRepr, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let ihl = 5 + ip_opts / 4;
        let tcp_len = repr.header_len() + payload.len();
        let total = u16::try_from(ihl * 4 + tcp_len).unwrap_or(u16::MAX);
        f.push(0x40 | u8::try_from(ihl).unwrap_or(5));
        f.push(0);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&ip_id.to_be_bytes());
        f.extend_from_slice(&[0x40, 0x00, 64, 6, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        // Record-route-ish NOP options (1 = NOP), as many as asked.
        f.extend(std::iter::repeat_n(1u8, ihl * 4 - 20));
        let start = f.len();
        f.resize(start + repr.header_len(), 0);
        repr.emit(&mut f[start..]);
        f.extend_from_slice(payload);
        f
    }

    /// An IPv6 frame: Ethernet (VLAN-tagged when `vlan`), the IPv6 fixed header from
    /// 2001:db8::1 to 2001:db8::2 (hop limit 64), TCP from `repr`, then `payload`. The
    /// payload length is filled in, the TCP checksum is not.
    pub fn build6(vlan: bool, repr: &TcpRepr, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
        }
        f.extend_from_slice(&[0x86, 0xdd]);
        let ip = ipv6::Repr {
            src_addr: SRC6,
            dst_addr: DST6,
            next_header: ipv6::next_header::TCP,
            payload_len: repr.header_len() + payload.len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        let start = f.len();
        f.resize(start + ipv6::HEADER_LEN + repr.header_len(), 0);
        let _ = ip.emit(&mut ipv6::Packet::new_unchecked(&mut f[start..start + ipv6::HEADER_LEN]));
        repr.emit(&mut f[start + ipv6::HEADER_LEN..]);
        f.extend_from_slice(payload);
        f
    }

    /// The addresses of [`build6`]'s frames.
    pub const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    pub const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// A data segment header with timestamps.
    pub fn repr(seq: u32, flags: Flags) -> TcpRepr {
        TcpRepr {
            src_port: 8080,
            dst_port: 40000,
            seq: SeqNum(seq),
            ack: SeqNum(77),
            flags,
            window: 512,
            urgent: 0,
            options: TcpOptions { timestamps: Some((1, 2)), ..TcpOptions::default() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_frames::{build, build6, repr, DST6, SRC6};
    use super::*;
    use crate::wire::tcp::Flags;

    #[test]
    fn layout_parses_plain_and_vlan_frames_and_rejects_bad_ones() {
        let r = repr(1, Flags::ACK);
        let f = build(false, 0, 1, &r, b"abc");
        assert_eq!(HeaderLayout::parse(&f), Ok(HeaderLayout { l2_len: 14, l3_len: 20, l4_len: 32, ipv6: false }));
        let v = build(true, 8, 1, &r, b"");
        assert_eq!(HeaderLayout::parse(&v), Ok(HeaderLayout { l2_len: 18, l3_len: 28, l4_len: 32, ipv6: false }));
        let six = build6(true, &r, b"abc");
        assert_eq!(HeaderLayout::parse(&six), Ok(HeaderLayout { l2_len: 18, l3_len: 40, l4_len: 32, ipv6: true }));
        let mut hop_by_hop = six.clone();
        hop_by_hop[18 + 6] = 0;
        assert_eq!(HeaderLayout::parse(&hop_by_hop), Err(OffloadError::NotTcp), "no extension headers");
        assert_eq!(HeaderLayout::parse(&six[..18 + 39]), Err(OffloadError::Truncated));
        assert_eq!(HeaderLayout::parse(&f[..30]), Err(OffloadError::Truncated));
        let mut udp = f.clone();
        udp[14 + 9] = 17;
        assert_eq!(HeaderLayout::parse(&udp), Err(OffloadError::NotTcp));
        let mut frag = f.clone();
        frag[14 + 6] = 0x20;
        assert_eq!(HeaderLayout::parse(&frag), Err(OffloadError::Fragment));
        let mut v6 = f.clone();
        v6[12] = 0x86;
        v6[13] = 0xdd;
        assert_eq!(HeaderLayout::parse(&v6), Err(OffloadError::BadIpHeader), "an IPv4 header behind the IPv6 type");
        let mut arp = f.clone();
        arp[13] = 0x06;
        assert_eq!(HeaderLayout::parse(&arp), Err(OffloadError::NotIp));
        let mut doff = f.clone();
        doff[14 + 20 + 12] = 0x40;
        assert_eq!(HeaderLayout::parse(&doff), Err(OffloadError::BadTcpHeader));
    }

    #[test]
    fn software_checksums_verify_and_corruption_is_caught() {
        let mut f = build(false, 4, 9, &repr(5, Flags::ACK | Flags::PSH), b"hello, world");
        assert!(!verify_checksums(&f), "built without checksums");
        assert!(fill_checksums(&mut f).is_ok());
        assert!(verify_checksums(&f));
        let last = f.len() - 1;
        f[last] ^= 1;
        assert!(!verify_checksums(&f));
    }

    #[test]
    fn ipv6_checksums_cover_the_v6_pseudo_header_and_the_payload_length() {
        let mut f = build6(false, &repr(5, Flags::ACK | Flags::PSH), b"hello, v6");
        assert!(!verify_checksums(&f), "built without a TCP checksum");
        assert_eq!(fill_checksums(&mut f).map(|l| l.ipv6), Ok(true));
        assert!(verify_checksums(&f));
        assert!(crate::wire::tcp::verify_checksum(&f[54..], SRC6, DST6));
        let mut short = f.clone();
        short.push(0);
        assert!(!verify_checksums(&short), "payload length no longer matches the frame");
        let mut g = build6(false, &repr(5, Flags::ACK), &[7u8; 3000]);
        assert!(prepare_hw_offload(&mut g, Some(1428)).is_ok());
        let want = checksum::fold(checksum::pseudo_header_v6(SRC6, DST6, 6, 0));
        assert_eq!(u16::from_be_bytes([g[54 + 16], g[54 + 17]]), want, "TSO: no length");
    }

    #[test]
    fn hw_offload_writes_the_pseudo_header_sum() {
        let payload = vec![7u8; 3000];
        let mut f = build(false, 0, 9, &repr(5, Flags::ACK), &payload);
        let off = prepare_hw_offload(&mut f, Some(1448)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(off.tso_segsz, Some(1448));
        assert_eq!(&f[14 + 10..14 + 12], &[0, 0], "IPv4 checksum zeroed");
        let want = checksum::fold(checksum::pseudo_header_v4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 6, 0));
        assert_eq!(u16::from_be_bytes([f[14 + 20 + 16], f[14 + 20 + 17]]), want, "TSO: no length");
        let mut g = build(false, 0, 9, &repr(5, Flags::ACK), b"xy");
        assert!(prepare_hw_offload(&mut g, None).is_ok());
        let want = crate::wire::tcp::pseudo_header_checksum([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 34);
        assert_eq!(u16::from_be_bytes([g[14 + 20 + 16], g[14 + 20 + 17]]), want, "checksum offload: with length");
        assert_eq!(prepare_hw_offload(&mut g, Some(0)), Err(OffloadError::ZeroMss));
        assert_eq!(prepare_hw_offload(&mut g, Some(65500)), Err(OffloadError::TooLarge));
    }
}
