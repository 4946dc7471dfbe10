//! Software GSO: cuts a TCP super-segment into MSS-sized frames when the port cannot do
//! TSO (Linux `tcp_gso_segment` / `inet_gso_segment`, DPDK `rte_gso_segment`).
//!
//! Each frame gets the super-frame's headers with: the IP length of its size (IPv4 total
//! length, IPv6 payload length), over IPv4 ids incrementing from the super-frame's, the
//! sequence number of its first byte, CWR only on the first frame and FIN/PSH only on the
//! last (what a TSO NIC does), and the checksums computed in software (IPv6 has no header
//! checksum: Linux `ipv6_gso_segment` then `tcp6_gso_segment`). Header fields are read and
//! written through [`crate::wire`].

use super::frame::{pseudo_sum, HeaderLayout, OffloadError};
use crate::wire::tcp::{self, Flags};
use crate::wire::{checksum, ipv4};

/// Segments the super-frame whose headers are `headers` (Ethernet + IPv4 or IPv6 + TCP,
/// exactly)
/// and whose payload is the gather list `payload` into frames of at most `mss` payload
/// bytes, handing each finished frame to `out`. Returns the number of frames. A payload of
/// at most `mss` bytes (or none) gives one frame. The headers' own length and checksum
/// fields are ignored and rewritten.
pub fn gso_segment(
    headers: &[u8],
    payload: &[&[u8]],
    mss: u16,
    out: &mut impl FnMut(&[u8]),
) -> Result<usize, OffloadError> {
    let mut frame = Vec::new();
    gso_segment_into(headers, payload, mss, &mut |len, fill: &mut FillFrame<'_>| {
        frame.clear();
        frame.resize(len, 0);
        fill(&mut frame);
        out(&frame);
        true
    })
}

/// Fills one frame in the buffer it is given.
pub type FillFrame<'a> = dyn FnMut(&mut [u8]) + 'a;
/// Provides a buffer of the given length and fills it with [`FillFrame`]; false: no buffer.
pub type FrameSink<'a> = dyn FnMut(usize, &mut FillFrame<'_>) -> bool + 'a;

/// As [`gso_segment`], building each frame in place: `out(len, fill)` provides a buffer of
/// `len` bytes (an mbuf's data room) and calls `fill` on it, which writes the frame's
/// headers and payload and both checksums, so that a frame is copied once, straight into
/// the buffer it is sent from. `out` returns false when it has no buffer (the frame is
/// lost; the count still includes it).
pub fn gso_segment_into(
    headers: &[u8],
    payload: &[&[u8]],
    mss: u16,
    out: &mut FrameSink<'_>,
) -> Result<usize, OffloadError> {
    let l = HeaderLayout::parse(headers)?;
    if headers.len() != l.total() {
        return Err(OffloadError::HeaderLength);
    }
    if mss == 0 {
        return Err(OffloadError::ZeroMss);
    }
    let mss = usize::from(mss);
    // The IP length field of a full-sized frame must fit (IPv4 counts its header in it).
    let full_len = l.ip_length(mss)?;
    let total_payload: usize = payload.iter().map(|c| c.len()).sum();
    let frames = total_payload.div_ceil(mss).max(1);
    let head = tcp::Packet::new_unchecked(headers.get(l.l4_offset()..).ok_or(OffloadError::Truncated)?);
    let (base_seq, flags) = (head.seq_number(), head.flags());
    // The IPv4 checksum of a full-sized frame with the first id, summed once; each frame's
    // id (and the last frame's total length) update it (RFC 1624 eqn. 3; Linux sums each
    // segment's header again, inet_gso_segment -> ip_send_check). IPv6 has none.
    let mut v4 = [0u8; ipv4::MAX_HEADER_LEN];
    let (base_id, ip_csum0) = match v4.get_mut(..l.l3_len).filter(|_| !l.ipv6) {
        Some(hdr) => {
            hdr.copy_from_slice(headers.get(l.l2_len..l.l4_offset()).ok_or(OffloadError::HeaderLength)?);
            let mut ip = ipv4::Packet::new_unchecked(hdr);
            ip.set_total_len(full_len);
            ip.set_checksum(0);
            let id = ip.ident();
            (id, checksum::checksum(ip.into_inner()))
        }
        None => (0, 0),
    };
    // The pseudo-header's addresses are summed once; each frame adds its TCP length.
    let pseudo_addrs = pseudo_sum(headers, &l, 0)?;

    // Cursor in the gather list: chunk index and offset in it.
    let (mut ci, mut co) = (0usize, 0usize);
    for i in 0..frames {
        let offset = i * mss;
        let len = mss.min(total_payload - offset);
        let ip_len = l.ip_length(len)?;
        let tcp_len = u32::try_from(l.l4_len + len).map_err(|_| OffloadError::TooLarge)?;
        let seq = base_seq + u32::try_from(offset).map_err(|_| OffloadError::TooLarge)?;
        let mut f = flags;
        if i > 0 {
            f.remove(Flags::CWR);
        }
        if i + 1 < frames {
            f.remove(Flags::FIN);
            f.remove(Flags::PSH);
        }
        // RFC 6864 §4.1: the IPv4 id wraps.
        let id = base_id.wrapping_add((i & 0xffff) as u16);
        let hlen = headers.len();
        let filled = {
            let mut fill = |frame: &mut [u8]| {
                if frame.len() < hlen {
                    return;
                }
                let (head, body) = frame.split_at_mut(hlen.min(frame.len()));
                head.copy_from_slice(&headers[..head.len()]);
                let mut at = 0;
                let mut need = len.min(body.len());
                while need > 0 {
                    let Some(chunk) = payload.get(ci) else { break };
                    let rest = chunk.get(co..).unwrap_or(&[]);
                    let take = rest.len().min(need);
                    body[at..at + take].copy_from_slice(&rest[..take]);
                    at += take;
                    need -= take;
                    co += take;
                    if co >= chunk.len() {
                        ci += 1;
                        co = 0;
                    }
                }
                if let Ok(Some(mut ip)) = l.set_ip_length(frame, len, id) {
                    ip.set_checksum(checksum::update16(checksum::update16(ip_csum0, base_id, id), full_len, ip_len));
                }
                let Ok(mut seg) = l.tcp_mut(frame) else { return };
                seg.set_seq_number(seq);
                seg.set_flags(f);
                seg.set_checksum(0);
                let csum = !checksum::fold(checksum::sum(seg.into_inner(), pseudo_addrs + tcp_len));
                if let Ok(mut seg) = l.tcp_mut(frame) {
                    seg.set_checksum(csum);
                }
            };
            out(hlen + len, &mut fill)
        };
        if !filled {
            // No buffer: skip this frame's payload so that the next frame starts right.
            let mut need = len;
            while need > 0 {
                let Some(chunk) = payload.get(ci) else { break };
                let take = chunk.len().saturating_sub(co).min(need);
                need -= take;
                co += take;
                if co >= chunk.len() {
                    ci += 1;
                    co = 0;
                }
            }
        }
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::super::frame::test_frames::{build, build6, repr, DST6, SRC6};
    use super::super::frame::verify_checksums;
    use super::super::reference;
    use super::*;
    use crate::wire::tcp::{Flags, Packet, TcpRepr};
    use proptest::prelude::*;

    fn run_gso(frame: &[u8], split: usize, mss: u16) -> Result<Vec<Vec<u8>>, OffloadError> {
        let l = HeaderLayout::parse(frame)?;
        let (h, p) = frame.split_at(l.total());
        let cut = split.min(p.len());
        let (a, b) = p.split_at(cut);
        let mut v = Vec::new();
        gso_segment(h, &[a, b], mss, &mut |f| v.push(f.to_vec()))?;
        Ok(v)
    }

    #[test]
    fn cuts_a_super_segment_like_a_nic() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let f = build(
            false,
            0,
            100,
            &repr(1000, Flags::ACK | Flags::PSH | Flags::FIN | Flags::CWR),
            &payload,
        );
        let frames = run_gso(&f, 777, 1448).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frames.len(), 3);
        let mut data = Vec::new();
        for (i, fr) in frames.iter().enumerate() {
            assert!(verify_checksums(fr), "frame {i} checksums");
            let ip_id = u16::from_be_bytes([fr[18], fr[19]]);
            assert_eq!(ip_id, 100 + i as u16);
            let p = Packet::new_checked(&fr[34..]).unwrap_or_else(|e| panic!("{e}"));
            let r = TcpRepr::parse(&p).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.seq.0, 1000 + 1448 * i as u32);
            assert_eq!(
                r.flags.contains(Flags::CWR),
                i == 0,
                "CWR only on the first"
            );
            assert_eq!(r.flags.contains(Flags::FIN), i == 2, "FIN only on the last");
            assert_eq!(r.flags.contains(Flags::PSH), i == 2, "PSH only on the last");
            data.extend_from_slice(p.payload());
        }
        assert_eq!(data, payload);
        assert_eq!(frames[2].len(), 34 + 32 + 3000 - 2 * 1448);
    }

    /// Linux `tcp6_gso_segment`: each IPv6 frame's payload length is its own, there is no
    /// IP id, and the checksum covers the v6 pseudo-header.
    #[test]
    fn cuts_an_ipv6_super_segment() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let f = build6(false, &repr(9, Flags::ACK | Flags::PSH), &payload);
        let frames = run_gso(&f, 1000, 1428).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frames.len(), 3);
        let mut data = Vec::new();
        for (i, fr) in frames.iter().enumerate() {
            assert!(verify_checksums(fr), "frame {i} checksums and length");
            let ip = crate::wire::ipv6::Packet::new_checked(&fr[14..]).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(usize::from(ip.payload_len()), fr.len() - 54);
            let p = Packet::new_checked(&fr[54..]).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.seq_number().0, 9 + 1428 * i as u32);
            assert_eq!(p.flags().contains(Flags::PSH), i == 2);
            data.extend_from_slice(p.payload());
        }
        assert_eq!(data, payload);
        assert_eq!(run_gso(&f, 0, 65535 - 32 + 1), Err(OffloadError::TooLarge), "payload length is 16 bits");
        assert_eq!(run_gso(&f, 0, 65535 - 32).map(|v| v.len()), Ok(1));
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        let f = build(false, 0, 1, &repr(1, Flags::ACK), b"abcdef");
        let mut sink = |_: &[u8]| {};
        assert_eq!(
            gso_segment(&f[..20], &[], 100, &mut sink),
            Err(OffloadError::Truncated)
        );
        assert_eq!(
            gso_segment(&f, &[], 100, &mut sink),
            Err(OffloadError::HeaderLength)
        );
        assert_eq!(
            gso_segment(&f[..66], &[b"x"], 0, &mut sink),
            Err(OffloadError::ZeroMss)
        );
        assert_eq!(
            gso_segment(&f[..66], &[b"x"], 65500, &mut sink),
            Err(OffloadError::TooLarge)
        );
        let mut n = 0;
        assert_eq!(
            gso_segment(&f[..66], &[], 100, &mut |_| n += 1),
            Ok(1),
            "empty payload: one frame"
        );
        assert_eq!(n, 1);
    }

    fn flag_strategy() -> impl Strategy<Value = Flags> {
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(f, p, c, e)| {
            let mut fl = Flags::ACK;
            if f {
                fl |= Flags::FIN;
            }
            if p {
                fl |= Flags::PSH;
            }
            if c {
                fl |= Flags::CWR;
            }
            if e {
                fl |= Flags::ECE;
            }
            fl
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Software GSO and the reference TSO model produce byte-identical frames, every
        /// frame parses and has valid checksums, and together they carry the payload.
        #[test]
        fn gso_matches_reference_tso(
            len in 0usize..24_000,
            mss in 64u16..9000,
            split in 0usize..24_000,
            seq in any::<u32>(),
            ip_id in any::<u16>(),
            flags in flag_strategy(),
            vlan in any::<bool>(),
            ip_opts in 0usize..3,
            no_ts in any::<bool>(),
            v6 in any::<bool>(),
        ) {
            let payload: Vec<u8> = (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8).collect();
            let mut r = repr(seq, flags);
            if no_ts {
                r.options.timestamps = None;
            }
            let f = if v6 { build6(vlan, &r, &payload) } else { build(vlan, ip_opts * 4, ip_id, &r, &payload) };
            let soft = run_gso(&f, split, mss).unwrap_or_else(|e| panic!("gso: {e}"));
            let reference = reference::tso_segment(&f, mss).unwrap_or_else(|e| panic!("reference: {e}"));
            prop_assert_eq!(soft.len(), reference.len());
            prop_assert_eq!(soft.len(), len.div_ceil(usize::from(mss)).max(1));
            let l = HeaderLayout::parse(&f).unwrap_or_else(|e| panic!("{e}"));
            let mut data = Vec::new();
            for (i, (a, b)) in soft.iter().zip(reference.iter()).enumerate() {
                prop_assert!(a == b, "frame {} differs", i);
                prop_assert!(verify_checksums(a), "frame {} checksums", i);
                let p = Packet::new_checked(&a[l.l4_offset()..]).unwrap_or_else(|e| panic!("{e}"));
                let t = TcpRepr::parse(&p).unwrap_or_else(|e| panic!("{e}"));
                prop_assert_eq!(t.seq.0, seq.wrapping_add((i * usize::from(mss)) as u32));
                let verified = if v6 {
                    crate::wire::tcp::verify_checksum(&a[l.l4_offset()..], SRC6, DST6)
                } else {
                    crate::wire::tcp::verify_checksum(
                        &a[l.l4_offset()..], std::net::Ipv4Addr::new(10, 0, 0, 1), std::net::Ipv4Addr::new(10, 0, 0, 2))
                };
                prop_assert!(verified, "frame {} TCP checksum against its own addresses", i);
                prop_assert!(p.payload().len() <= usize::from(mss));
                data.extend_from_slice(p.payload());
            }
            prop_assert_eq!(data, payload);
        }
    }
}
