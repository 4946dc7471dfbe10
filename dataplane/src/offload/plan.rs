//! The TX planner: how one TCP segment leaves on one port, decided from the port's
//! [`TxCaps`] and the segment's [`Shape`] alone (pure; table-tested over every capability
//! combination below, no DPDK needed). The lcore's egress carries the plan out.
//!
//! The choices, cheapest first (Linux makes the same ones in `tcp_write_xmit` ->
//! `sk_can_gso` / `validate_xmit_skb` -> `skb_gso_segment`):
//! * [`TxPlan::Tso`]: the device cuts the super-segment and fills in every checksum;
//! * [`TxPlan::Cut`]: cut here into MSS frames, each a header chained to its slice of the
//!   payload (no copy), when the device could take chains but must not segment (the frames
//!   are impaired one by one, or the driver would checksum a chain with odd pieces wrongly);
//! * [`TxPlan::Gso`]: software GSO, copying into linear frames (`tcp_gso_segment`);
//! * [`TxPlan::Frame`]: one frame, its payload chained (no copy) or copied (linear), each
//!   checksum by the device where granted, else in software.

use super::caps::TxCaps;

/// What the planner needs to know of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Payload bytes.
    pub payload_len: usize,
    /// Segment size of a super-segment (`Segment::mss`); 0 for a single frame.
    pub mss: u16,
    /// Ethernet + IPv4 + TCP header bytes.
    pub header_len: usize,
    /// The payload is held in pieces and one other than the last has an odd length.
    pub odd_inner_piece: bool,
    /// Cut by the device at its TSO segment size ([`tso_segsz`]), some frame would hold a
    /// piece other than its last of odd length ([`odd_piece_in_frames`]): with an odd
    /// segment size (a path MTU found by probing, an odd MSS option) frames start at odd
    /// offsets, so even pieces straddling them split oddly. Only asked of ports whose
    /// driver sums such chains wrongly.
    pub odd_piece_in_tso_frames: bool,
    /// Every wire frame must exist here (the impairment layer acts on frames: dropping a
    /// TSO super-frame would lose up to 44 frames at once).
    pub wire_frames: bool,
}

/// Who fills in a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cksum {
    /// The device (the field holds what it expects: 0 for IPv4, the pseudo-header sum for TCP).
    Device,
    /// Software, before the frame is queued.
    Software,
}

/// How a single frame holds its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// A header mbuf chained to views of the payload's buffers (no copy).
    Chained,
    /// Header and payload copied into one linear mbuf.
    Linear,
}

/// How one segment goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxPlan {
    /// One chained super-frame for the device to segment into `segsz`-byte frames.
    Tso {
        /// The segment size handed to the device (`tso_segsz`).
        segsz: u16,
    },
    /// Cut here into frames of at most `mss` bytes of payload, without copying; each
    /// frame is then planned on its own (as a [`TxPlan::Frame`]).
    Cut,
    /// Software GSO into linear frames (copies; checksums in software).
    Gso,
    /// One frame.
    Frame {
        /// How it holds its payload.
        body: Body,
        /// Who fills in the IPv4 header checksum.
        ip: Cksum,
        /// Who fills in the TCP checksum.
        tcp: Cksum,
        /// The TCP checksum is in software only because the driver would get this
        /// payload's odd-length pieces wrong (counted).
        odd_piece_fallback: bool,
    },
}

/// The plan for a segment of `shape` on a port that can do `caps`, whose IP MTU is `mtu`.
pub fn plan(caps: &TxCaps, shape: &Shape, mtu: u16) -> TxPlan {
    let mss = usize::from(shape.mss);
    let needs_segmentation = mss != 0 && shape.payload_len > mss;
    let odd_piece_fallback = caps.odd_piece_cksum_broken && shape.odd_inner_piece;
    if needs_segmentation {
        // The device may segment unless frames must exist here or it would checksum the
        // chain, or the frames it cuts from it, wrongly.
        let odd_frames = caps.odd_piece_cksum_broken && shape.odd_piece_in_tso_frames;
        if caps.tso && caps.attached_mbufs && !shape.wire_frames && !odd_piece_fallback && !odd_frames {
            return TxPlan::Tso { segsz: tso_segsz(caps, shape.mss, shape.header_len, mtu) };
        }
        return if caps.attached_mbufs { TxPlan::Cut } else { TxPlan::Gso };
    }
    let body = if shape.payload_len == 0 || caps.attached_mbufs { Body::Chained } else { Body::Linear };
    let ip = if caps.ipv4_cksum { Cksum::Device } else { Cksum::Software };
    let tcp = if caps.tcp_cksum && !odd_piece_fallback { Cksum::Device } else { Cksum::Software };
    TxPlan::Frame { body, ip, tcp, odd_piece_fallback: odd_piece_fallback && caps.tcp_cksum }
}

/// The segment size handed to the device for a super-segment of `mss` with `header_len`
/// bytes of headers: `mss`, cut to fit the MTU with the headers where the driver counts
/// them ([`TxCaps::tso_frame_within_mtu`]).
pub fn tso_segsz(caps: &TxCaps, mss: u16, header_len: usize, mtu: u16) -> u16 {
    if !caps.tso_frame_within_mtu {
        return mss;
    }
    let room = usize::from(mtu).saturating_sub(header_len).max(1);
    mss.min(u16::try_from(room).unwrap_or(u16::MAX))
}

/// Whether cutting a payload held in pieces of `piece_lens` bytes into frames of `segsz`
/// bytes of payload gives some frame a piece other than its last of odd length: exactly
/// when a piece boundary falls at an odd distance from the start of the frame it lies in
/// (the pieces inside a frame are the differences of those distances).
pub fn odd_piece_in_frames(piece_lens: impl IntoIterator<Item = usize>, segsz: usize) -> bool {
    let segsz = segsz.max(1);
    let mut lens = piece_lens.into_iter().peekable();
    let mut boundary = 0usize;
    while let Some(len) = lens.next() {
        if lens.peek().is_none() {
            break;
        }
        boundary = boundary.saturating_add(len);
        if (boundary % segsz) % 2 == 1 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::caps::{quirks, Quirks};
    use super::*;

    const MTU: u16 = 1500;
    const HDR: usize = 14 + 20 + 32;

    fn shapes() -> impl Iterator<Item = Shape> {
        let lens = [0usize, 1, 1448, 1449, 64 * 1024 - 1];
        let msss = [0u16, 1448];
        lens.into_iter().flat_map(move |payload_len| {
            msss.into_iter().flat_map(move |mss| {
                [false, true].into_iter().flat_map(move |odd_inner_piece| {
                    [false, true].into_iter().flat_map(move |wire_frames| {
                        [false, true].into_iter().map(move |odd_piece_in_tso_frames| Shape {
                            payload_len,
                            mss,
                            header_len: HDR,
                            odd_inner_piece,
                            odd_piece_in_tso_frames,
                            wire_frames,
                        })
                    })
                })
            })
        })
    }

    /// The rules every plan keeps, for every capability combination and segment shape.
    #[test]
    fn every_capability_combination_gets_a_plan_the_port_can_carry() {
        let mut seen = [0usize; 4];
        for caps in TxCaps::all() {
            for shape in shapes() {
                let p = plan(&caps, &shape, MTU);
                let needs_segmentation = shape.mss != 0 && shape.payload_len > usize::from(shape.mss);
                let ctx = format!("{caps:?} {shape:?} -> {p:?}");
                match p {
                    TxPlan::Tso { segsz } => {
                        seen[0] += 1;
                        assert!(needs_segmentation, "TSO only for super-segments: {ctx}");
                        assert!(caps.tso && caps.attached_mbufs, "TSO only where granted, over a chain: {ctx}");
                        assert!(!shape.wire_frames, "impaired frames are cut here: {ctx}");
                        assert!(!(caps.odd_piece_cksum_broken && shape.odd_inner_piece), "{ctx}");
                        assert!(!(caps.odd_piece_cksum_broken && shape.odd_piece_in_tso_frames), "{ctx}");
                        assert!(segsz >= 1 && segsz <= shape.mss, "{ctx}");
                        if caps.tso_frame_within_mtu {
                            assert!(usize::from(segsz) + shape.header_len <= usize::from(MTU), "{ctx}");
                        } else {
                            assert_eq!(segsz, shape.mss, "{ctx}");
                        }
                    }
                    TxPlan::Cut => {
                        seen[1] += 1;
                        assert!(needs_segmentation, "{ctx}");
                        assert!(caps.attached_mbufs, "a zero-copy cut chains views: {ctx}");
                    }
                    TxPlan::Gso => {
                        seen[2] += 1;
                        assert!(needs_segmentation, "{ctx}");
                        assert!(!caps.attached_mbufs, "copying only where views cannot be sent: {ctx}");
                    }
                    TxPlan::Frame { body, ip, tcp, odd_piece_fallback } => {
                        seen[3] += 1;
                        assert!(!needs_segmentation, "a super-segment is never one frame: {ctx}");
                        if body == Body::Chained && shape.payload_len > 0 {
                            assert!(caps.attached_mbufs, "{ctx}");
                        }
                        if caps.attached_mbufs || shape.payload_len == 0 {
                            assert_eq!(body, Body::Chained, "no copy where views can be sent: {ctx}");
                        }
                        assert_eq!(ip == Cksum::Device, caps.ipv4_cksum, "{ctx}");
                        if tcp == Cksum::Device {
                            assert!(caps.tcp_cksum, "{ctx}");
                            assert!(!(caps.odd_piece_cksum_broken && shape.odd_inner_piece), "{ctx}");
                        } else {
                            assert!(!caps.tcp_cksum || (caps.odd_piece_cksum_broken && shape.odd_inner_piece), "{ctx}");
                        }
                        assert_eq!(odd_piece_fallback, caps.tcp_cksum && tcp == Cksum::Software, "{ctx}");
                    }
                }
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "every kind of plan occurs: {seen:?}");
    }

    /// The ports Strait runs on, as their drivers grant and misbehave.
    #[test]
    fn plans_of_the_known_ports() {
        let tap = TxCaps::new(true, true, true, true, quirks("net_tap"));
        let af_xdp = TxCaps::new(false, false, false, false, quirks("net_af_xdp"));
        let af_packet = TxCaps::new(false, false, false, false, Quirks::default());
        let nic = TxCaps::new(true, true, true, true, Quirks::default());
        let sup = Shape {
            payload_len: 20_000,
            mss: 1448,
            header_len: HDR,
            odd_inner_piece: false,
            odd_piece_in_tso_frames: false,
            wire_frames: false,
        };
        let one = Shape { payload_len: 1000, mss: 0, ..sup };
        // net_tap: TSO with the segment size cut to fit the MTU with the headers.
        assert_eq!(plan(&tap, &sup, MTU), TxPlan::Tso { segsz: 1500 - 66 });
        assert_eq!(plan(&nic, &sup, MTU), TxPlan::Tso { segsz: 1448 });
        // Odd pieces on net_tap: cut here, and each frame checksummed in software.
        let odd = Shape { odd_inner_piece: true, ..sup };
        assert_eq!(plan(&tap, &odd, MTU), TxPlan::Cut);
        // Even pieces that net_tap would cut at an odd segment size: cut here too; a
        // driver that sums right keeps TSO.
        let odd_frames = Shape { odd_piece_in_tso_frames: true, ..sup };
        assert_eq!(plan(&tap, &odd_frames, MTU), TxPlan::Cut);
        assert_eq!(plan(&nic, &odd_frames, MTU), TxPlan::Tso { segsz: 1448 });
        assert_eq!(
            plan(&tap, &Shape { odd_inner_piece: true, ..one }, MTU),
            TxPlan::Frame { body: Body::Chained, ip: Cksum::Device, tcp: Cksum::Software, odd_piece_fallback: true }
        );
        assert_eq!(plan(&nic, &odd, MTU), TxPlan::Tso { segsz: 1448 }, "a real NIC sums chains right");
        // Impairment: frames are cut here on every port that can chain.
        assert_eq!(plan(&nic, &Shape { wire_frames: true, ..sup }, MTU), TxPlan::Cut);
        // AF_XDP and af_packet: software GSO, linear frames, software checksums.
        for caps in [af_xdp, af_packet] {
            assert_eq!(plan(&caps, &sup, MTU), TxPlan::Gso);
            assert_eq!(
                plan(&caps, &one, MTU),
                TxPlan::Frame { body: Body::Linear, ip: Cksum::Software, tcp: Cksum::Software, odd_piece_fallback: false }
            );
        }
        // A segment that fits one MSS is one frame whatever `mss` says.
        let small = Shape { payload_len: 1448, ..sup };
        assert!(matches!(plan(&tap, &small, MTU), TxPlan::Frame { body: Body::Chained, .. }));
        // A pure ACK is a header alone: chained (nothing to chain) on every port.
        let ack = Shape { payload_len: 0, ..one };
        assert!(matches!(plan(&af_xdp, &ack, MTU), TxPlan::Frame { body: Body::Chained, .. }));
    }

    #[test]
    fn odd_pieces_in_the_frames_a_device_cuts() {
        // One piece: never an inner piece.
        assert!(!odd_piece_in_frames([20_001], 1223));
        // Even pieces, even segment size: every boundary at an even distance.
        assert!(!odd_piece_in_frames([2048, 2048, 2048, 100], 1434));
        // The same pieces cut at an odd size (a probed path MTU of 1275, 1223 bytes): the
        // boundary at 2048 lies 825 bytes into the second frame (starting at 1223).
        assert!(odd_piece_in_frames([2048, 2048, 2048, 100], 1223));
        // A boundary on a frame boundary is no inner piece, whatever the parity.
        assert!(!odd_piece_in_frames([1223, 1223, 5], 1223));
        // An odd inner piece inside a frame shows as an odd boundary distance.
        assert!(odd_piece_in_frames([100, 301, 600], 1448));
        assert!(!odd_piece_in_frames([], 1448));
        assert!(!odd_piece_in_frames([7, 9], 0), "a size of 0 is taken as 1, no panic");
    }
}
