//! The header layout of an outgoing Ethernet (optionally 802.1Q-tagged) + IPv4 + TCP frame,
//! validated before any offload touches it, and the checksum work offloads need.

use crate::wire::checksum;

/// EtherType of IPv4.
const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of an 802.1Q VLAN tag.
const ETHERTYPE_VLAN: u16 = 0x8100;
/// IP protocol number of TCP.
const PROTO_TCP: u8 = 6;

/// Why a frame cannot be segmented or offloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// The buffer ends inside the headers.
    #[error("frame truncated inside its headers")]
    Truncated,
    /// Not an (optionally VLAN-tagged) IPv4 frame.
    #[error("not an IPv4 frame")]
    NotIpv4,
    /// The IPv4 header is malformed (version, IHL).
    #[error("malformed IPv4 header")]
    BadIpv4Header,
    /// IPv4 payload is not TCP.
    #[error("not a TCP segment")]
    NotTcp,
    /// The packet is an IP fragment; fragments cannot be segmented.
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
    /// A segment (headers + MSS) would not fit an IPv4 total length.
    #[error("segment exceeds the IPv4 maximum packet size")]
    TooLarge,
}

/// Where the headers of a frame end (DPDK `l2_len`, `l3_len`, `l4_len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLayout {
    /// Ethernet header, including a VLAN tag.
    pub l2_len: usize,
    /// IPv4 header with options.
    pub l3_len: usize,
    /// TCP header with options.
    pub l4_len: usize,
}

impl HeaderLayout {
    /// Parses and validates the headers at the start of `frame`.
    pub fn parse(frame: &[u8]) -> Result<HeaderLayout, OffloadError> {
        let be16 = |off: usize| -> Result<u16, OffloadError> {
            match frame.get(off..off + 2) {
                Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
                None => Err(OffloadError::Truncated),
            }
        };
        let mut l2_len = 14;
        let mut ethertype = be16(12)?;
        if ethertype == ETHERTYPE_VLAN {
            l2_len = 18;
            ethertype = be16(16)?;
        }
        if ethertype != ETHERTYPE_IPV4 {
            return Err(OffloadError::NotIpv4);
        }
        let vihl = *frame.get(l2_len).ok_or(OffloadError::Truncated)?;
        if vihl >> 4 != 4 || vihl & 0x0f < 5 {
            return Err(OffloadError::BadIpv4Header);
        }
        let l3_len = usize::from(vihl & 0x0f) * 4;
        if frame.len() < l2_len + l3_len {
            return Err(OffloadError::Truncated);
        }
        let proto = *frame.get(l2_len + 9).ok_or(OffloadError::Truncated)?;
        if proto != PROTO_TCP {
            return Err(OffloadError::NotTcp);
        }
        // RFC 791: MF set or a non-zero fragment offset makes it a fragment.
        if be16(l2_len + 6)? & 0x3fff != 0 {
            return Err(OffloadError::Fragment);
        }
        let doff = *frame.get(l2_len + l3_len + 12).ok_or(OffloadError::Truncated)? >> 4;
        if doff < 5 {
            return Err(OffloadError::BadTcpHeader);
        }
        let l4_len = usize::from(doff) * 4;
        if frame.len() < l2_len + l3_len + l4_len {
            return Err(OffloadError::BadTcpHeader);
        }
        Ok(HeaderLayout { l2_len, l3_len, l4_len })
    }

    /// Length of all headers.
    pub fn total(&self) -> usize {
        self.l2_len + self.l3_len + self.l4_len
    }

    /// Offset of the TCP header.
    pub fn l4_offset(&self) -> usize {
        self.l2_len + self.l3_len
    }
}

/// The IPv4 source and destination of a validated frame.
fn addresses(frame: &[u8], l: &HeaderLayout) -> ([u8; 4], [u8; 4]) {
    let mut src = [0u8; 4];
    let mut dst = [0u8; 4];
    if let Some(s) = frame.get(l.l2_len + 12..l.l2_len + 16) {
        src.copy_from_slice(s);
    }
    if let Some(d) = frame.get(l.l2_len + 16..l.l2_len + 20) {
        dst.copy_from_slice(d);
    }
    (src, dst)
}

/// Partial sum of the TCP pseudo-header (RFC 9293 §3.1) for a TCP length.
pub(crate) fn pseudo_sum(frame: &[u8], l: &HeaderLayout, tcp_len: u16) -> u32 {
    let (s, d) = addresses(frame, l);
    checksum::pseudo_header_v4(s.into(), d.into(), PROTO_TCP, tcp_len)
}

fn put16(frame: &mut [u8], off: usize, v: u16) {
    if let Some(b) = frame.get_mut(off..off + 2) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// Computes both checksums of a single (non-super) frame in software: the IPv4 header
/// checksum (RFC 791) and the TCP checksum over pseudo-header, header and payload. The
/// IPv4 total length must already be right.
pub fn fill_checksums(frame: &mut [u8]) -> Result<HeaderLayout, OffloadError> {
    let l = HeaderLayout::parse(frame)?;
    let ip = l.l2_len;
    put16(frame, ip + 10, 0);
    let ip_csum = checksum::checksum(frame.get(ip..ip + l.l3_len).ok_or(OffloadError::Truncated)?);
    put16(frame, ip + 10, ip_csum);
    let tcp = l.l4_offset();
    let tcp_len = u16::try_from(frame.len() - tcp).map_err(|_| OffloadError::TooLarge)?;
    put16(frame, tcp + 16, 0);
    let pseudo = pseudo_sum(frame, &l, tcp_len);
    let seg = frame.get(tcp..).ok_or(OffloadError::Truncated)?;
    let tcp_csum = !checksum::fold(checksum::sum(seg, pseudo));
    put16(frame, tcp + 16, tcp_csum);
    Ok(l)
}

/// Whether the IPv4 header checksum and the TCP checksum of a single frame are right and
/// the IPv4 total length matches the frame.
pub fn verify_checksums(frame: &[u8]) -> bool {
    let Ok(l) = HeaderLayout::parse(frame) else { return false };
    let ip = l.l2_len;
    let Some(hdr) = frame.get(ip..ip + l.l3_len) else { return false };
    if checksum::fold(checksum::sum(hdr, 0)) != 0xffff {
        return false;
    }
    let total = frame.get(ip + 2..ip + 4).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    if total != Some(frame.len() - l.l2_len) {
        return false;
    }
    let tcp = l.l4_offset();
    let Ok(tcp_len) = u16::try_from(frame.len() - tcp) else { return false };
    let pseudo = pseudo_sum(frame, &l, tcp_len);
    frame.get(tcp..).is_some_and(|seg| checksum::fold(checksum::sum(seg, pseudo)) == 0xffff)
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
/// segment with TSO) and the TCP checksum field gets the folded, uncomplemented
/// pseudo-header sum — with the TCP length for checksum offload, without it for TSO, since
/// the NIC adds each segment's length itself (Intel 82599 datasheet §7.2.5.2).
pub fn prepare_hw_offload(frame: &mut [u8], tso_mss: Option<u16>) -> Result<HwOffload, OffloadError> {
    let l = HeaderLayout::parse(frame)?;
    if tso_mss == Some(0) {
        return Err(OffloadError::ZeroMss);
    }
    if let Some(mss) = tso_mss {
        if l.l3_len + l.l4_len + usize::from(mss) > usize::from(u16::MAX) {
            return Err(OffloadError::TooLarge);
        }
    }
    let ip = l.l2_len;
    put16(frame, ip + 10, 0);
    let tcp = l.l4_offset();
    let tcp_len = match tso_mss {
        Some(_) => 0,
        None => u16::try_from(frame.len() - tcp).map_err(|_| OffloadError::TooLarge)?,
    };
    let pseudo = checksum::fold(pseudo_sum(frame, &l, tcp_len));
    put16(frame, tcp + 16, pseudo);
    Ok(HwOffload { layout: l, tso_segsz: tso_mss })
}

#[cfg(test)]
pub(crate) mod test_frames {
    //! Builders of Ethernet + IPv4 + TCP frames for the offload tests.

    use crate::tcp::seq::SeqNum;
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
    use super::test_frames::{build, repr};
    use super::*;
    use crate::wire::tcp::Flags;

    #[test]
    fn layout_parses_plain_and_vlan_frames_and_rejects_bad_ones() {
        let r = repr(1, Flags::ACK);
        let f = build(false, 0, 1, &r, b"abc");
        assert_eq!(HeaderLayout::parse(&f), Ok(HeaderLayout { l2_len: 14, l3_len: 20, l4_len: 32 }));
        let v = build(true, 8, 1, &r, b"");
        assert_eq!(HeaderLayout::parse(&v), Ok(HeaderLayout { l2_len: 18, l3_len: 28, l4_len: 32 }));
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
        assert_eq!(HeaderLayout::parse(&v6), Err(OffloadError::NotIpv4));
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
