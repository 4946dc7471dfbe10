//! The way out for TCP segments: the port that owns the source address, the link header
//! from its neighbour cache (ARP or neighbour discovery), the IPv4 or IPv6 + TCP headers
//! from the network layer
//! ([`crate::net::egress`]), and the frame(s) the TX planner ([`crate::offload::plan`])
//! chose for this port: a TSO super-frame, a zero-copy cut, software GSO or one frame.
//! Frames are queued on the port; the lcore flushes them after the engine's transmit
//! callback returns.

use std::net::IpAddr;

use crate::dpdk::{count_copy, Mbuf, MbufPayload, Mempool, TxOffload};
use crate::net::egress::TcpHeaders;
use crate::net::LinkResult;
use crate::offload::gso::{gso_segment_into, FillFrame};
use crate::offload::{odd_piece_in_frames, plan, tso_segsz, Body, Cksum, Shape, TxPlan};
use crate::tcp::{Payload, Segment};
use crate::time::Instant;
use crate::wire::{ethernet, tcp as wire_tcp};

use super::port::{PortQueue, Unresolved, UNRESOLVED_HOLD, UNRESOLVED_MAX};
use super::stats::LcoreStats;

/// Why a segment could not be built (no mbuf, a chain or offload the adapter refused, a
/// header that does not fit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BuildError;

impl From<crate::dpdk::DpdkError> for BuildError {
    fn from(_: crate::dpdk::DpdkError) -> Self {
        BuildError
    }
}

impl From<crate::net::egress::EgressError> for BuildError {
    fn from(_: crate::net::egress::EgressError) -> Self {
        BuildError
    }
}

/// Builds the frame(s) of one TCP segment and queues them on the port that owns `src`.
/// Every failure is counted; a lost segment is recovered by TCP's retransmission.
pub(super) fn transmit_segment(
    ports: &mut [PortQueue],
    pool: &Mempool,
    stats: &LcoreStats,
    src: IpAddr,
    dst: IpAddr,
    seg: Segment<MbufPayload>,
    now: Instant,
) {
    let Some(p) = ports.iter_mut().find(|p| p.iface.has_addr(src)) else {
        // An address still under duplicate address detection, or found duplicate, is
        // held but not a source (RFC 4862 §5.4): told apart from one no port has.
        let held = ports.iter().any(|p| p.iface.holds_addr(src));
        LcoreStats::add(if held { &stats.tcp_tx_unusable_source } else { &stats.tcp_tx_no_route }, 1);
        return;
    };
    let link = match p.iface.link_header_for_ip(dst, now) {
        LinkResult::Ready(h) => h,
        LinkResult::Pending => {
            // Held until the reply (`release_unresolved`), as Linux's `arp_queue` (and
            // the neighbour's queue for IPv6, `__neigh_event_send`).
            if p.unresolved.len() < UNRESOLVED_MAX {
                let hop = p.iface.route_ip(dst);
                p.unresolved.push(Unresolved { src, dst, hop, seg, since: now });
                LcoreStats::add(&stats.tcp_tx_awaiting_arp, 1);
            } else {
                LcoreStats::add(&stats.tcp_tx_unresolved, 1);
            }
            return;
        }
    };
    // IPv4 identifications (RFC 6864); IPv6 has none outside a fragment header.
    let ident = if src.is_ipv4() { p.iface.take_ip_idents(u16::try_from(seg.frame_count()).unwrap_or(u16::MAX)) } else { 0 };
    if build(p, pool, stats, &link, ident, src, dst, &seg).is_err() {
        LcoreStats::add(&stats.tcp_tx_build_failed, 1);
    }
}

/// Sends the held segments whose next hop has been resolved since (in the order they
/// were held), and drops, counted (`tcp_tx_unresolved`), those whose resolution failed
/// or that waited [`UNRESOLVED_HOLD`]. Returns the segments sent. Costs one emptiness
/// test per port when nothing waits.
pub(super) fn release_unresolved(ports: &mut [PortQueue], pool: &Mempool, stats: &LcoreStats, now: Instant) -> usize {
    let mut sent = 0;
    for i in 0..ports.len() {
        let mut k = 0;
        while let Some(p) = ports.get_mut(i) {
            let Some(u) = p.unresolved.get(k) else { break };
            let ready = p.iface.neighbor_resolved(u.hop, now);
            let failed = !ready
                && (!p.iface.neighbor_pending(u.hop) || now.saturating_duration_since(u.since) > UNRESOLVED_HOLD);
            if !ready && !failed {
                k += 1;
                continue;
            }
            // `remove`, not `swap_remove`: a flow's segments leave in order (at most
            // UNRESOLVED_MAX move).
            let u = p.unresolved.remove(k);
            if ready {
                transmit_segment(ports, pool, stats, u.src, u.dst, u.seg, now);
                sent += 1;
            } else {
                LcoreStats::add(&stats.tcp_tx_unresolved, 1);
            }
        }
    }
    sent
}

/// Whether a piece of `payload` other than the last has an odd length.
fn has_odd_inner_piece(payload: &MbufPayload) -> bool {
    let mut pieces = payload.chunks().peekable();
    while let Some(c) = pieces.next() {
        if pieces.peek().is_some() && c.len() % 2 == 1 {
            return true;
        }
    }
    false
}

/// The frame(s) of one segment, queued on `p`, as the planner says.
#[allow(clippy::too_many_arguments)]
fn build(
    p: &mut PortQueue,
    pool: &Mempool,
    stats: &LcoreStats,
    link: &[u8; ethernet::HEADER_LEN],
    ident: u16,
    src: IpAddr,
    dst: IpAddr,
    seg: &Segment<MbufPayload>,
) -> Result<(), BuildError> {
    let plen = seg.payload.len();
    let mut hdr = TcpHeaders::new(link, src, dst, ident, p.iface.ipv6_hop_limit(), &seg.repr, plen)?;
    let v6 = hdr.is_ipv6();
    // What the port can do for this family (TSO may be IPv4-only).
    let caps = if v6 { p.caps.for_ipv6() } else { p.caps };
    let shape = Shape {
        payload_len: plen,
        mss: seg.mss,
        header_len: hdr.len(),
        // Only a port whose driver sums chains wrongly needs to know (a walk of the chain).
        odd_inner_piece: caps.odd_piece_cksum_broken && has_odd_inner_piece(&seg.payload),
        // The same for the frames the device would cut, at the segment size it would use.
        odd_piece_in_tso_frames: caps.odd_piece_cksum_broken
            && caps.tso
            && seg.mss != 0
            && plen > usize::from(seg.mss)
            && odd_piece_in_frames(
                seg.payload.chunks().map(<[u8]>::len),
                usize::from(tso_segsz(&caps, seg.mss, hdr.len(), p.port.mtu())),
            ),
        wire_frames: p.impair.is_some(),
    };
    let base = TxOffload {
        l2_len: ethernet::HEADER_LEN as u8,
        l3_len: u16::try_from(hdr.ip_header_len()).map_err(|_| BuildError)?,
        l4_len: u8::try_from(hdr.tcp_header_len()).map_err(|_| BuildError)?,
        ipv4: !v6,
        ipv6: v6,
        ..TxOffload::default()
    };
    match plan(&caps, &shape, p.port.mtu()) {
        TxPlan::Tso { segsz } => {
            // The device cuts the payload into `segsz` pieces and fills in every checksum
            // (`RTE_MBUF_F_TX_IPV6` and no IP checksum over IPv6).
            hdr.prepare_tso();
            let mut m = Mbuf::from_slice(pool, hdr.bytes())?;
            seg.payload.chain_onto(&mut m, pool)?;
            m.set_tx_offload(TxOffload { tso_segsz: segsz, ip_cksum: !v6, tcp_cksum: true, tso: true, ..base })?;
            LcoreStats::add(&stats.tso_segments, 1);
            p.tx.push(m);
        }
        TxPlan::Cut => {
            // Linux `tcp_gso_segment` semantics without copying: CWR on the first frame
            // only, FIN and PSH on the last only, IP ids counting up; each frame a header
            // chained to its slice of the payload, planned on its own.
            let mss = usize::from(seg.mss);
            let mut off = 0usize;
            let mut i: u16 = 0;
            while off < plen {
                let len = mss.min(plen - off);
                let last = off + len >= plen;
                let mut repr = seg.repr;
                repr.seq = seg.repr.seq + u32::try_from(off).map_err(|_| BuildError)?;
                if off > 0 {
                    repr.flags.remove(wire_tcp::Flags::CWR);
                }
                if !last {
                    repr.flags.remove(wire_tcp::Flags::FIN);
                    repr.flags.remove(wire_tcp::Flags::PSH);
                }
                let piece = Segment { repr, payload: seg.payload.slice(off..off + len), mss: 0 };
                build(p, pool, stats, link, ident.wrapping_add(i), src, dst, &piece)?;
                off += len;
                i = i.wrapping_add(1);
            }
        }
        TxPlan::Gso => {
            // Software GSO (Linux `tcp_gso_segment`, over IPv6 `tcp6_gso_segment`): each
            // frame is built once, in the mbuf it is sent from (headers, the payload
            // copied, the checksums).
            let mut stack: [&[u8]; 16] = [&[]; 16];
            let mut n = 0;
            let mut heap: Vec<&[u8]> = Vec::new();
            for c in seg.payload.chunks() {
                if n < stack.len() {
                    stack[n] = c;
                    n += 1;
                } else {
                    if heap.is_empty() {
                        heap.extend_from_slice(&stack);
                    }
                    heap.push(c);
                }
            }
            let chunks: &[&[u8]] = if heap.is_empty() { &stack[..n] } else { &heap };
            let tx = &mut p.tx;
            let mut failed = false;
            let frames = gso_segment_into(hdr.bytes(), chunks, seg.mss, &mut |len, fill: &mut FillFrame<'_>| {
                let Ok(mut m) = Mbuf::alloc(pool) else {
                    failed = true;
                    return false;
                };
                match m.append(len) {
                    Some(room) => {
                        fill(room);
                        tx.push(m);
                        true
                    }
                    None => {
                        failed = true;
                        false
                    }
                }
            })
            .map_err(|_| BuildError)?;
            count_copy(plen);
            LcoreStats::add(&stats.gso_frames, frames as u64);
            if failed {
                return Err(BuildError);
            }
        }
        TxPlan::Frame { body, ip, tcp, odd_piece_fallback } => {
            if odd_piece_fallback {
                LcoreStats::add(&stats.tx_sw_cksum_odd_pieces, 1);
            }
            hdr.set_checksums(ip, tcp, |s| seg.payload.checksum_sum(s))?;
            let mut m = Mbuf::from_slice(pool, hdr.bytes())?;
            match body {
                Body::Chained => seg.payload.chain_onto(&mut m, pool)?,
                Body::Linear if plen > 0 => {
                    // No chains on this port: one linear frame (a counted copy).
                    let room = m.append(plen).ok_or(BuildError)?;
                    // copy_to counts the copy.
                    if seg.payload.copy_to(room) != plen {
                        return Err(BuildError);
                    }
                }
                Body::Linear => {}
            }
            // IPv6 has no header checksum for the device to fill in.
            let ip_device = ip == Cksum::Device && !v6;
            let offloaded = ip_device || tcp == Cksum::Device;
            if !offloaded && m.len() < crate::net::interface::MIN_FRAME_LEN {
                // Not every PMD pads short frames; the IPv4 total length excludes the
                // padding. (A short frame whose last segment is a shared payload view
                // stays unpadded.)
                if let Some(pad) = m.append(crate::net::interface::MIN_FRAME_LEN - m.len()) {
                    pad.fill(0);
                }
            }
            if offloaded {
                m.set_tx_offload(TxOffload { ip_cksum: ip_device, tcp_cksum: tcp == Cksum::Device, ..base })?;
            }
            p.tx.push(m);
        }
    }
    Ok(())
}
