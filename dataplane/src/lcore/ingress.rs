//! The way in: a received frame through the network layer and, for TCP, into the engine,
//! where the frame itself becomes the segment's payload (no copy).

use crate::dpdk::{CksumStatus, Mbuf, MbufPayload, Mempool};
use crate::net::{Input, RxChecksum};
use crate::tcp::Engine;
use crate::time::Instant;

use super::port::PortQueue;
use super::stats::LcoreStats;

/// Passes one received frame of port `p` through the network layer and, for TCP, into
/// the engine (the frame becomes the payload: no copy). `corrupted`: the impairment
/// layer changed it, so the NIC's checksum verdict no longer holds. Below the pool's
/// reserve the engine itself sheds what does not advance a connection
/// ([`Engine::set_rx_shedding`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn receive_frame(
    p: &mut PortQueue,
    m: Mbuf,
    corrupted: bool,
    now: Instant,
    pool: &Mempool,
    stats: &LcoreStats,
    scratch: &mut Vec<u8>,
    engine: &mut Engine<MbufPayload>,
) {
    // The NIC's verdict predates a corruption: software verifies then.
    let csum = if p.rx_cksum_offload && !corrupted {
        rx_checksum(m.ip_cksum(), m.l4_cksum())
    } else {
        RxChecksum::Unknown
    };
    // A chained frame is linearised into a scratch buffer for the checks
    // rather than misparsed (the TCP payload itself is not taken from it).
    let input = if m.nb_segs() > 1 {
        scratch.clear();
        for seg in m.segments() {
            scratch.extend_from_slice(seg);
        }
        p.iface.handle_frame(scratch, now, csum)
    } else {
        p.iface.handle_frame(m.data(), now, csum)
    };
    match input {
        Input::Tcp { src, dst, l4_offset, l4_len, l4_checksum_verified } => {
            // The frame becomes the payload: no copy (RFC 9293 §3.10.7 from here on).
            match MbufPayload::from_rx(m, l4_offset, l4_len, pool) {
                Ok(segment) => {
                    LcoreStats::add(&stats.tcp_rx_segments, 1);
                    // Malformed segments and bad checksums are counted by the engine.
                    let _ = engine.handle_datagram(src, dst, segment, l4_checksum_verified, now);
                }
                Err(_) => LcoreStats::add(&stats.tcp_rx_dropped, 1),
            }
        }
        // Linux `tcp_v4_err`: the engine finds the connection by the quoted 4-tuple and
        // checks the quoted sequence number; each outcome is counted there
        // (`TCPPMTUReductions`, `OutOfWindowIcmps`, `IcmpInErrors`, `TCPICMPBadMTU`).
        Input::IcmpFragNeeded { quoted, next_hop_mtu } => {
            let seq = crate::tcp::seq::SeqNum(quoted.seq);
            let _ = engine.handle_icmp_frag_needed(quoted.local, quoted.remote, seq, next_hop_mtu, now);
        }
        // Linux `tcp_v6_err` for "packet too big" (RFC 8201): likewise, the MTU floored at
        // 1280 there.
        Input::Icmpv6PacketTooBig { quoted, mtu } => {
            let seq = crate::tcp::seq::SeqNum(quoted.seq);
            let _ = engine.handle_icmpv6_packet_too_big(quoted.local.into(), quoted.remote.into(), seq, mtu, now);
        }
        Input::Consumed | Input::Dropped(_) => {}
    }
}
/// The interface's `Good` means "IP header and L4 checksum both verified by the NIC";
/// anything less is `Unknown` (software verifies), a bad IP header is `Bad`.
fn rx_checksum(ip: CksumStatus, l4: CksumStatus) -> RxChecksum {
    let good = |s| matches!(s, CksumStatus::Good | CksumStatus::None);
    match (ip, l4) {
        (CksumStatus::Bad, _) => RxChecksum::Bad,
        (ip, l4) if good(ip) && good(l4) => RxChecksum::Good,
        _ => RxChecksum::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_verdicts_map_to_the_interface_s() {
        assert_eq!(rx_checksum(CksumStatus::Good, CksumStatus::Good), RxChecksum::Good);
        assert_eq!(rx_checksum(CksumStatus::Bad, CksumStatus::Good), RxChecksum::Bad);
        assert_eq!(rx_checksum(CksumStatus::Good, CksumStatus::Unknown), RxChecksum::Unknown);
    }
}
