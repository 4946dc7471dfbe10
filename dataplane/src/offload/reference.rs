//! A reference model of hardware TSO, written independently of [`super::gso`] and as
//! plainly as possible, to check it: what an Intel NIC (82599 datasheet §7.2.4 "TCP
//! segmentation") or Linux `tcp_gso_segment` puts on the wire for one super-frame.
//!
//! Per segment: the headers are copied; the IPv4 total length (IPv6 payload length) is set
//! to the segment's; the IPv4 id is the original plus the segment index; the TCP sequence number advances
//! by the bytes before the segment; of the TCP flags, CWR stays only on the first segment
//! and FIN and PSH only on the last; both checksums are computed from scratch with the
//! textbook RFC 1071 loop (IPv6: no header checksum, the RFC 8200 §8.1 pseudo-header).
//! Not for the data path: it allocates per frame. Its byte offsets are written out on
//! purpose, so that it shares no code with [`crate::wire`], which `gso` uses.

use super::frame::OffloadError;
use crate::wire::checksum::reference_rfc1071;

/// Segments the contiguous super-frame `frame` (headers then payload) at `mss`.
pub fn tso_segment(frame: &[u8], mss: u16) -> Result<Vec<Vec<u8>>, OffloadError> {
    if mss == 0 {
        return Err(OffloadError::ZeroMss);
    }
    // Ethernet, with one optional 802.1Q tag.
    if frame.len() < 14 {
        return Err(OffloadError::Truncated);
    }
    let mut eth_len = 14;
    if frame[12] == 0x81 && frame[13] == 0x00 {
        eth_len = 18;
    }
    if frame.len() < eth_len {
        return Err(OffloadError::Truncated);
    }
    let v6 = match (frame[eth_len - 2], frame[eth_len - 1]) {
        (0x08, 0x00) => false,
        (0x86, 0xdd) => true,
        _ => return Err(OffloadError::NotIp),
    };
    if frame.len() < eth_len + if v6 { 40 } else { 20 } {
        return Err(OffloadError::Truncated);
    }
    let ip_len = if v6 { 40 } else { usize::from(frame[eth_len] & 0x0f) * 4 };
    if frame[eth_len] >> 4 != if v6 { 6 } else { 4 } || ip_len < 20 {
        return Err(OffloadError::BadIpHeader);
    }
    if frame[eth_len + if v6 { 6 } else { 9 }] != 6 {
        return Err(OffloadError::NotTcp);
    }
    let tcp_start = eth_len + ip_len;
    if frame.len() < tcp_start + 20 {
        return Err(OffloadError::Truncated);
    }
    let tcp_len = usize::from(frame[tcp_start + 12] >> 4) * 4;
    let payload_start = tcp_start + tcp_len;
    if tcp_len < 20 || frame.len() < payload_start {
        return Err(OffloadError::BadTcpHeader);
    }
    let length_field_base = if v6 { tcp_len } else { ip_len + tcp_len };
    if length_field_base + usize::from(mss) > 65535 {
        return Err(OffloadError::TooLarge);
    }
    let payload = &frame[payload_start..];
    let first_id = if v6 { 0 } else { u16::from_be_bytes([frame[eth_len + 4], frame[eth_len + 5]]) };
    let first_seq = u32::from_be_bytes([frame[tcp_start + 4], frame[tcp_start + 5], frame[tcp_start + 6], frame[tcp_start + 7]]);
    let flags = frame[tcp_start + 13];

    let pieces: Vec<&[u8]> = if payload.is_empty() { vec![&[][..]] } else { payload.chunks(usize::from(mss)).collect() };
    let count = pieces.len();
    let mut out = Vec::new();
    let mut sent_before: u32 = 0;
    for (i, piece) in pieces.into_iter().enumerate() {
        let mut f = Vec::new();
        f.extend_from_slice(&frame[..payload_start]);
        f.extend_from_slice(piece);
        // IP header.
        let length = (length_field_base + piece.len()) as u16;
        if v6 {
            f[eth_len + 4..eth_len + 6].copy_from_slice(&length.to_be_bytes());
        } else {
            f[eth_len + 2..eth_len + 4].copy_from_slice(&length.to_be_bytes());
            let id = first_id.wrapping_add(i as u16);
            f[eth_len + 4..eth_len + 6].copy_from_slice(&id.to_be_bytes());
            f[eth_len + 10] = 0;
            f[eth_len + 11] = 0;
            let ip_sum = reference_rfc1071(&f[eth_len..tcp_start]);
            f[eth_len + 10..eth_len + 12].copy_from_slice(&ip_sum.to_be_bytes());
        }
        // TCP header.
        let seq = first_seq.wrapping_add(sent_before);
        f[tcp_start + 4..tcp_start + 8].copy_from_slice(&seq.to_be_bytes());
        let first = i == 0;
        let last = i == count - 1;
        let mut fl = flags;
        if !first {
            fl &= !0x80; // CWR
        }
        if !last {
            fl &= !0x01; // FIN
            fl &= !0x08; // PSH
        }
        f[tcp_start + 13] = fl;
        f[tcp_start + 16] = 0;
        f[tcp_start + 17] = 0;
        // Pseudo-header (RFC 9293 §3.1; RFC 8200 §8.1 over IPv6: addresses, a 32-bit
        // length, three zero bytes and the next header) followed by the segment, summed in
        // one buffer.
        let seg_len = (tcp_len + piece.len()) as u32;
        let mut sum_buf = Vec::new();
        if v6 {
            sum_buf.extend_from_slice(&f[eth_len + 8..eth_len + 40]);
            sum_buf.extend_from_slice(&seg_len.to_be_bytes());
            sum_buf.extend_from_slice(&[0, 0, 0, 6]);
        } else {
            sum_buf.extend_from_slice(&f[eth_len + 12..eth_len + 20]);
            sum_buf.extend_from_slice(&[0, 6]);
            sum_buf.extend_from_slice(&(seg_len as u16).to_be_bytes());
        }
        sum_buf.extend_from_slice(&f[tcp_start..]);
        let tcp_sum = reference_rfc1071(&sum_buf);
        f[tcp_start + 16..tcp_start + 18].copy_from_slice(&tcp_sum.to_be_bytes());
        out.push(f);
        sent_before = sent_before.wrapping_add(piece.len() as u32);
    }
    Ok(out)
}
