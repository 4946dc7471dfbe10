//! Seeded impairment of a port's frames, for testing the stack against a bad network on a
//! real port: drop, reorder, duplicate, corrupt (flip one byte) and delay.
//!
//! Sans-IO like the rest of the core: the lcore hands frames and `now` in
//! ([`Impairer::push`]) and takes the frames that are due back out ([`Impairer::poll`]).
//! The queueing itself is [`SimLink`], the simulator's seeded link (loss, duplication,
//! explicit reordering, FIFO delay), so a run replays exactly per seed. Corruption is this
//! module's own: it flips one byte of an IPv4 frame's payload (L4 header or data), which
//! the receiver's checksum validation must then reject (RFC 9293 §3.1: the TCP checksum
//! covers the header and data; a one-byte change always alters a ones'-complement sum).
//!
//! Frames held back (reordered or delayed) occupy buffers: at most [`MAX_HELD`] per
//! direction are kept; beyond that a frame is dropped and counted as `overflow`, so a long
//! delay can never drain the mbuf pool.

use crate::tcp::sim_link::{LinkParams, SimLink, SimRng};
use crate::time::{Duration, Instant};
use crate::wire::{ethernet, ipv4};

/// Frames a direction holds back at most (reordered or delayed), per lcore and port.
pub const MAX_HELD: usize = 1024;

/// A probability in parts per million (exact, comparable, hashable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Probability(u32);

impl Probability {
    /// Never.
    pub const ZERO: Probability = Probability(0);
    /// Always.
    pub const ONE: Probability = Probability(1_000_000);

    /// `p` if it is a number within `0..=1` (rounded to parts per million), else `None`.
    pub fn from_f64(p: f64) -> Option<Probability> {
        if !(0.0..=1.0).contains(&p) {
            return None;
        }
        // In range and finite: the product lies in 0..=1e6.
        Some(Probability((p * 1_000_000.0).round() as u32))
    }

    /// As a float in `0..=1`.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1_000_000.0
    }

    /// Whether it is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Impairments of one direction of one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionParams {
    /// Probability a frame is dropped.
    pub drop: Probability,
    /// Probability a frame is held back (by `max(delay, 1 ms)`) so that later ones pass it.
    pub reorder: Probability,
    /// Probability a frame is delivered twice.
    pub duplicate: Probability,
    /// Probability one byte of a frame's IPv4 payload is flipped.
    pub corrupt: Probability,
    /// Added to every frame (order kept).
    pub delay: Duration,
}

impl DirectionParams {
    /// Whether every frame passes untouched and at once.
    pub fn is_passthrough(&self) -> bool {
        self.drop.is_zero()
            && self.reorder.is_zero()
            && self.duplicate.is_zero()
            && self.corrupt.is_zero()
            && self.delay.is_zero()
    }

    fn link_params(&self) -> LinkParams {
        LinkParams {
            loss: self.drop.as_f64(),
            reorder: self.reorder.as_f64(),
            duplicate: self.duplicate.as_f64(),
            delay: self.delay,
            ..LinkParams::default()
        }
    }
}

/// Impairments of one port (`[port.impair]`), both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImpairConfig {
    /// Seed of the random decisions (mixed with the lcore and direction).
    pub seed: u64,
    /// Received frames, before the network layer sees them.
    pub rx: DirectionParams,
    /// Transmitted frames, before the TX burst.
    pub tx: DirectionParams,
}

impl ImpairConfig {
    /// Whether both directions pass every frame untouched.
    pub fn is_passthrough(&self) -> bool {
        self.rx.is_passthrough() && self.tx.is_passthrough()
    }
}

/// What one direction did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImpairCounters {
    /// Frames handed in.
    pub frames: u64,
    /// Frames dropped on purpose.
    pub dropped: u64,
    /// Frames held back to be overtaken.
    pub reordered: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Frames with one byte flipped.
    pub corrupted: u64,
    /// Frames dropped because [`MAX_HELD`] frames were already held back.
    pub overflow: u64,
}

impl ImpairCounters {
    /// `(name, value)` of every counter.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("frames", self.frames),
            ("dropped", self.dropped),
            ("reordered", self.reordered),
            ("duplicated", self.duplicated),
            ("corrupted", self.corrupted),
            ("overflow", self.overflow),
        ]
        .into_iter()
    }
}

/// A frame leaving the impairer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impaired<F> {
    /// The frame.
    pub frame: F,
    /// Whether a byte of it was flipped: a receiver must not trust a hardware checksum
    /// verdict taken before that.
    pub corrupted: bool,
}

/// One direction of one port: frames in, impaired frames out when due.
pub struct Impairer<F> {
    params: DirectionParams,
    link: SimLink<Impaired<F>>,
    rng: SimRng,
    corrupted: u64,
    overflow: u64,
}

impl<F> core::fmt::Debug for Impairer<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Impairer")
            .field("params", &self.params)
            .field("held", &self.link.in_flight())
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl<F: Clone> Impairer<F> {
    /// A direction impaired by `params`, its decisions drawn from `seed`.
    pub fn new(params: DirectionParams, seed: u64) -> Self {
        Impairer {
            params,
            link: SimLink::new(params.link_params(), seed),
            // A second stream for corruption, so the link's decisions replay as in the simulator.
            rng: SimRng::new(seed ^ 0x5eed_c0de_dead_beef),
            corrupted: 0,
            overflow: 0,
        }
    }

    /// Hands `frame` in at `now`. With the corruption probability, `corrupt` is called
    /// with the frame and 64 random bits and returns whether it changed the frame (a
    /// frame it cannot change passes uncorrupted and uncounted).
    pub fn push(&mut self, now: Instant, mut frame: F, corrupt: impl FnOnce(&mut F, u64) -> bool) {
        if self.link.in_flight() >= MAX_HELD {
            self.overflow += 1;
            return;
        }
        let mut corrupted = false;
        if self.rng.chance(self.params.corrupt.as_f64()) {
            let bits = self.rng.next_u64();
            corrupted = corrupt(&mut frame, bits);
            if corrupted {
                self.corrupted += 1;
            }
        }
        self.link.send(now, Impaired { frame, corrupted });
    }

}

impl<F> Impairer<F> {
    /// The impairments.
    pub fn params(&self) -> &DirectionParams {
        &self.params
    }

    /// Whether frames pass untouched and at once (callers may skip the impairer).
    pub fn is_passthrough(&self) -> bool {
        self.params.is_passthrough()
    }

    /// The next frame due at `now`, if any.
    pub fn poll(&mut self, now: Instant) -> Option<Impaired<F>> {
        self.link.poll(now)
    }

    /// When the next held frame is due.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.link.next_delivery()
    }

    /// Frames held back.
    pub fn held(&self) -> usize {
        self.link.in_flight()
    }

    /// What this direction did so far.
    pub fn counters(&self) -> ImpairCounters {
        let s = self.link.stats();
        ImpairCounters {
            frames: s.sent + self.overflow,
            dropped: s.lost,
            reordered: s.reordered,
            duplicated: s.duplicated,
            corrupted: self.corrupted,
            overflow: self.overflow,
        }
    }
}

/// Flips one byte of the IPv4 payload (L4 header or data, within the IPv4 total length
/// and within `frame`, which may be only the first segment of a chain) of an Ethernet
/// frame, chosen by `bits`. Returns `false`, leaving the frame alone, when it is not IPv4
/// or has no payload byte in `frame`.
pub fn corrupt_ipv4_payload(frame: &mut [u8], bits: u64) -> bool {
    let Ok(eth) = ethernet::Frame::new_checked(&frame[..]) else { return false };
    if eth.ethertype() != ethernet::EtherType::Ipv4 {
        return false;
    }
    let Some(ip_bytes) = frame.get(ethernet::HEADER_LEN..) else { return false };
    // The header only: the total length may reach past this (first) segment.
    let Some(ip_header) = ip_bytes.get(..ipv4::HEADER_LEN) else { return false };
    let ip = ipv4::Packet::new_unchecked(ip_header);
    let ihl = ip.header_len();
    let total = usize::from(ip.total_len());
    let start = ethernet::HEADER_LEN + ihl;
    let end = (ethernet::HEADER_LEN + total).min(frame.len());
    if ihl < ipv4::HEADER_LEN || end <= start {
        return false;
    }
    let span = (end - start) as u64;
    let at = start + ((u128::from(bits & 0xffff_ffff) * u128::from(span)) >> 32) as usize;
    // A non-zero mask: the byte always changes.
    let mask = ((bits >> 32) as u8) | 1;
    match frame.get_mut(at) {
        Some(b) => {
            *b ^= mask;
            true
        }
        None => false,
    }
}

/// Seed of one direction of one port on one lcore: distinct streams from one configured seed.
pub fn direction_seed(seed: u64, lcore: u32, port: usize, tx: bool) -> u64 {
    let mut r = SimRng::new(seed ^ (u64::from(lcore) << 40) ^ ((port as u64) << 8) ^ u64::from(tx));
    r.next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Input, Interface, InterfaceConfig, RxChecksum};
    use crate::tcp::seq::SeqNum;
    use crate::wire::tcp as wire_tcp;

    fn p(x: f64) -> Probability {
        Probability::from_f64(x).unwrap_or_default()
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn drain(imp: &mut Impairer<u32>, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| imp.poll(now).map(|f| f.frame)).collect()
    }

    #[test]
    fn probability_accepts_zero_to_one_only() {
        assert_eq!(Probability::from_f64(0.0), Some(Probability::ZERO));
        assert_eq!(Probability::from_f64(1.0), Some(Probability::ONE));
        assert_eq!(p(0.05).as_f64(), 0.05);
        assert_eq!(Probability::from_f64(-0.01), None);
        assert_eq!(Probability::from_f64(1.5), None);
        assert_eq!(Probability::from_f64(f64::NAN), None);
        assert_eq!(Probability::from_f64(f64::INFINITY), None);
    }

    #[test]
    fn passthrough_delivers_everything_at_once_in_order() {
        let mut imp = Impairer::new(DirectionParams::default(), 1);
        assert!(imp.is_passthrough());
        for i in 0..100u32 {
            imp.push(ms(1), i, |_, _| panic!("no corruption at p=0"));
        }
        assert_eq!(drain(&mut imp, ms(1)), (0..100).collect::<Vec<_>>());
        assert_eq!(imp.counters(), ImpairCounters { frames: 100, ..ImpairCounters::default() });
    }

    #[test]
    fn drop_rate_about_right_and_counted() {
        let mut imp = Impairer::new(DirectionParams { drop: p(0.05), ..DirectionParams::default() }, 7);
        let mut got = Vec::new();
        for i in 0..100_000u32 {
            imp.push(ms(0), i, |_, _| false);
            got.extend(drain(&mut imp, ms(0)));
        }
        let c = imp.counters();
        assert!((4_500..=5_500).contains(&c.dropped), "{c:?}");
        assert_eq!(got.len() as u64, 100_000 - c.dropped);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "drop alone keeps order");
    }

    #[test]
    fn reorder_holds_frames_back_so_later_ones_overtake() {
        let mut imp = Impairer::new(DirectionParams { reorder: p(0.1), ..DirectionParams::default() }, 3);
        let mut got = Vec::new();
        for i in 0..10_000u32 {
            let now = Instant::from_nanos(u64::from(i) * 10_000);
            imp.push(now, i, |_, _| false);
            got.extend(drain(&mut imp, now));
        }
        got.extend(drain(&mut imp, ms(1_000)));
        let c = imp.counters();
        assert!((800..=1_200).contains(&c.reordered), "{c:?}");
        assert_eq!(got.len(), 10_000);
        assert!(got.windows(2).any(|w| w[0] > w[1]), "some frame was overtaken");
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn duplicate_delivers_twice() {
        let mut imp = Impairer::new(DirectionParams { duplicate: p(1.0), ..DirectionParams::default() }, 3);
        imp.push(ms(0), 9, |_, _| false);
        assert_eq!(drain(&mut imp, ms(0)), vec![9, 9]);
        assert_eq!(imp.counters().duplicated, 1);
    }

    #[test]
    fn delay_holds_every_frame_for_the_delay() {
        let mut imp =
            Impairer::new(DirectionParams { delay: Duration::from_millis(5), ..DirectionParams::default() }, 3);
        imp.push(ms(10), 1, |_, _| false);
        imp.push(ms(11), 2, |_, _| false);
        assert_eq!(imp.next_delivery(), Some(ms(15)));
        assert!(drain(&mut imp, ms(14)).is_empty());
        assert_eq!(drain(&mut imp, ms(15)), vec![1]);
        assert_eq!(drain(&mut imp, ms(16)), vec![2]);
        assert_eq!(imp.held(), 0);
    }

    #[test]
    fn held_frames_are_bounded() {
        let mut imp =
            Impairer::new(DirectionParams { delay: Duration::from_secs(1), ..DirectionParams::default() }, 3);
        for i in 0..(MAX_HELD as u32 + 10) {
            imp.push(ms(0), i, |_, _| false);
        }
        assert_eq!(imp.held(), MAX_HELD);
        let c = imp.counters();
        assert_eq!((c.frames, c.overflow), (MAX_HELD as u64 + 10, 10));
        assert_eq!(drain(&mut imp, ms(1_000)).len(), MAX_HELD);
    }

    #[test]
    fn corruption_marks_and_counts_only_changed_frames() {
        let mut imp = Impairer::new(DirectionParams { corrupt: p(1.0), ..DirectionParams::default() }, 3);
        imp.push(ms(0), 1, |f, _| {
            *f += 100;
            true
        });
        imp.push(ms(0), 2, |_, _| false);
        let a = imp.poll(ms(0));
        let b = imp.poll(ms(0));
        assert_eq!(a, Some(Impaired { frame: 101, corrupted: true }));
        assert_eq!(b, Some(Impaired { frame: 2, corrupted: false }));
        assert_eq!(imp.counters().corrupted, 1);
    }

    #[test]
    fn same_seed_same_run() {
        let params = DirectionParams {
            drop: p(0.05),
            reorder: p(0.01),
            duplicate: p(0.01),
            corrupt: p(0.0),
            delay: Duration::from_millis(1),
        };
        let run = |seed| {
            let mut imp = Impairer::new(params, seed);
            let mut got = Vec::new();
            for i in 0..5_000u32 {
                let now = Instant::from_nanos(u64::from(i) * 20_000);
                imp.push(now, i, |_, _| false);
                got.extend(drain(&mut imp, now));
            }
            got.extend(drain(&mut imp, ms(10_000)));
            (got, imp.counters())
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11).0, run(12).0);
        assert_ne!(direction_seed(1, 0, 0, false), direction_seed(1, 0, 0, true));
        assert_ne!(direction_seed(1, 0, 0, false), direction_seed(1, 1, 0, false));
    }

    const OURS: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const PEER: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const OUR_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 18, 0, 2);
    const PEER_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 18, 0, 1);

    /// An Ethernet + IPv4 + TCP frame (SYN with `payload`) from the peer to us, checksums valid.
    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let repr = wire_tcp::TcpRepr {
            src_port: 40_000,
            dst_port: 7,
            seq: SeqNum(1),
            ack: SeqNum(0),
            flags: wire_tcp::Flags::SYN,
            window: 1000,
            urgent: 0,
            options: wire_tcp::TcpOptions::default(),
        };
        let tcp_len = repr.header_len() + payload.len();
        let mut f = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp_len];
        f[..6].copy_from_slice(&OURS);
        f[6..12].copy_from_slice(&PEER);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = ipv4::Repr {
            src_addr: PEER_IP,
            dst_addr: OUR_IP,
            protocol: ipv4::protocol::TCP,
            payload_len: tcp_len,
            ttl: 64,
            ident: 1,
            dont_frag: true,
        };
        let (_, rest) = f.split_at_mut(ethernet::HEADER_LEN);
        let (ip_bytes, tcp_bytes) = rest.split_at_mut(ipv4::HEADER_LEN);
        ip.emit(&mut ipv4::Packet::new_unchecked(ip_bytes)).unwrap();
        let h = repr.emit(tcp_bytes);
        tcp_bytes[h..].copy_from_slice(payload);
        wire_tcp::fill_checksum(tcp_bytes, PEER_IP, OUR_IP);
        f
    }

    fn iface() -> Interface {
        Interface::new(InterfaceConfig {
            mac: ethernet::EthernetAddress(OURS),
            ipv4: OUR_IP,
            prefix_len: 24,
            gateway: None,
            mtu: 1500,
        })
    }

    #[test]
    fn intact_frame_reaches_tcp() {
        let mut i = iface();
        let f = tcp_frame(b"hello");
        assert!(matches!(i.handle_frame(&f, ms(0), RxChecksum::Unknown), Input::Tcp { .. }));
    }

    #[test]
    fn every_corrupted_byte_is_caught_by_checksum_validation() {
        let original = tcp_frame(b"hello, impaired world");
        for bits in (0..400u64).map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            let mut f = original.clone();
            assert!(corrupt_ipv4_payload(&mut f, bits));
            let changed: Vec<usize> = (0..f.len()).filter(|&k| f[k] != original[k]).collect();
            assert_eq!(changed.len(), 1, "exactly one byte flipped");
            assert!(changed[0] >= ethernet::HEADER_LEN + ipv4::HEADER_LEN, "only the IPv4 payload");
            // The TCP layer sees it only if the checksum (verified in software) passes;
            // it must not.
            let mut i = iface();
            if let Input::Tcp { l4_offset, l4_len, .. } = i.handle_frame(&f, ms(0), RxChecksum::Unknown) {
                let seg = &f[l4_offset..l4_offset + l4_len];
                assert!(!wire_tcp::verify_checksum(seg, PEER_IP, OUR_IP), "corruption at {} undetected", changed[0]);
            }
        }
    }

    #[test]
    fn corruption_leaves_non_ipv4_and_empty_payloads_alone() {
        let mut arp = tcp_frame(b"");
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        let before = arp.clone();
        assert!(!corrupt_ipv4_payload(&mut arp, 12345));
        assert_eq!(arp, before);
        let mut short = tcp_frame(b"")[..ethernet::HEADER_LEN + ipv4::HEADER_LEN].to_vec();
        assert!(!corrupt_ipv4_payload(&mut short, 1));
        assert!(!corrupt_ipv4_payload(&mut [0u8; 3], 1));
    }
}
