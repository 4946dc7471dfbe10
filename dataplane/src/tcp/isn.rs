//! Initial sequence numbers per RFC 6528, and the SipHash-2-4 keyed hash behind them (also used
//! by [`super::syncookie`]).
//!
//! RFC 6528 §3: `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`, where `M` is
//! a timer ticking every 4 µs and `F` a keyed pseudo-random function. Connections to the same
//! 4-tuple therefore get monotonically advancing ISNs (RFC 9293 §3.4.1), while an off-path
//! attacker cannot predict the ISN of any tuple.

use std::net::{IpAddr, SocketAddr};

use crate::tcp::seq::SeqNum;
use crate::time::Instant;

/// SipHash-2-4 (Aumasson & Bernstein, 2012) of `data` under a 128-bit `key`.
pub fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let [k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12, k13, k14, k15] = *key;
    let k0 = u64::from_le_bytes([k0, k1, k2, k3, k4, k5, k6, k7]);
    let k1 = u64::from_le_bytes([k8, k9, k10, k11, k12, k13, k14, k15]);
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];

    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13);
        v[1] ^= v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16);
        v[3] ^= v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21);
        v[3] ^= v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17);
        v[1] ^= v[2];
        v[2] = v[2].rotate_left(32);
    }

    let compress = |m: u64, v: &mut [u64; 4]| {
        v[3] ^= m;
        round(v);
        round(v);
        v[0] ^= m;
    };

    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        compress(u64::from_le_bytes(w), &mut v);
    }
    let rem = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rem.len()].copy_from_slice(rem);
    // The final word carries the message length (mod 256) in its top byte.
    last[7] = data.len() as u8;
    compress(u64::from_le_bytes(last), &mut v);

    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// A 4-tuple serialised for hashing: local ip, local port, remote ip, remote port (12
/// bytes for IPv4, 36 for IPv6; Linux `secure_tcp_seq` and `secure_tcpv6_seq` hash the
/// addresses of their family the same way).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TupleBytes {
    buf: [u8; TUPLE_BYTES_MAX],
    len: usize,
}

/// The longest serialised tuple: two IPv6 addresses and two ports.
pub(crate) const TUPLE_BYTES_MAX: usize = 36;

impl TupleBytes {
    /// The serialised tuple.
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

fn put_ip(buf: &mut [u8; TUPLE_BYTES_MAX], at: usize, ip: IpAddr) -> usize {
    match ip {
        IpAddr::V4(a) => {
            if let Some(d) = buf.get_mut(at..at + 4) {
                d.copy_from_slice(&a.octets());
            }
            at + 4
        }
        IpAddr::V6(a) => {
            if let Some(d) = buf.get_mut(at..at + 16) {
                d.copy_from_slice(&a.octets());
            }
            at + 16
        }
    }
}

fn put_port(buf: &mut [u8; TUPLE_BYTES_MAX], at: usize, port: u16) -> usize {
    if let Some(d) = buf.get_mut(at..at + 2) {
        d.copy_from_slice(&port.to_be_bytes());
    }
    at + 2
}

/// Serialise a 4-tuple for hashing: local ip, local port, remote ip, remote port. An IPv4
/// tuple gives the same 12 bytes as ever, so its ISNs and cookies do not change.
pub(crate) fn tuple_bytes(local: SocketAddr, remote: SocketAddr) -> TupleBytes {
    let mut buf = [0u8; TUPLE_BYTES_MAX];
    let at = put_ip(&mut buf, 0, local.ip());
    let at = put_port(&mut buf, at, local.port());
    let at = put_ip(&mut buf, at, remote.ip());
    let len = put_port(&mut buf, at, remote.port());
    TupleBytes { buf, len }
}

/// RFC 6528 ISN generator. Hold one per process (or per lcore, with the same secret so that
/// a tuple's ISNs advance monotonically whichever lcore serves it).
#[derive(Clone)]
pub struct IsnGenerator {
    secret: [u8; 16],
}

impl core::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IsnGenerator { secret: <redacted> }")
    }
}

impl IsnGenerator {
    /// A generator keyed with `secret` (which should come from a CSPRNG at start-up).
    pub const fn new(secret: [u8; 16]) -> Self {
        IsnGenerator { secret }
    }

    /// The ISN for a connection on this 4-tuple at time `now` (RFC 6528 §3).
    pub fn isn(&self, local: impl Into<SocketAddr>, remote: impl Into<SocketAddr>, now: Instant) -> SeqNum {
        let f = siphash24(&self.secret, tuple_bytes(local.into(), remote.into()).as_slice()) as u32;
        // M: a 4 µs timer, truncated to 32 bits (it wraps every ~4.77 hours, as the RFC's does).
        let m = (now.as_nanos() / 4_000) as u32;
        SeqNum(f.wrapping_add(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

    fn key() -> [u8; 16] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn siphash_reference_vectors() {
        // From the SipHash paper / reference implementation (vectors.h), key 00..0f,
        // message 00..(n-1).
        let msg: Vec<u8> = (0u8..64).collect();
        assert_eq!(siphash24(&key(), &msg[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(&key(), &msg[..1]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash24(&key(), &msg[..8]), 0x93f5_f579_9a93_2462);
        assert_eq!(siphash24(&key(), &msg[..15]), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(&key(), &msg[..63]), 0x958a_324c_eb06_4572);
    }

    fn a(ip: [u8; 4], port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(ip), port)
    }

    #[test]
    fn deterministic_for_same_key() {
        let g1 = IsnGenerator::new([7; 16]);
        let g2 = IsnGenerator::new([7; 16]);
        let (l, r) = (a([10, 0, 0, 1], 80), a([10, 0, 0, 2], 40000));
        let t = Instant::from_millis(1234);
        assert_eq!(g1.isn(l, r, t), g2.isn(l, r, t));
        assert_eq!(g1.isn(l, r, t), g1.isn(l, r, t));
    }

    #[test]
    fn differs_per_tuple_and_key() {
        let g = IsnGenerator::new([7; 16]);
        let t = Instant::from_millis(1);
        let (l, r) = (a([10, 0, 0, 1], 80), a([10, 0, 0, 2], 40000));
        let base = g.isn(l, r, t);
        assert_ne!(base, g.isn(l, a([10, 0, 0, 2], 40001), t));
        assert_ne!(base, g.isn(a([10, 0, 0, 3], 80), r, t));
        assert_ne!(base, g.isn(r, l, t), "direction matters");
        assert_ne!(base, IsnGenerator::new([8; 16]).isn(l, r, t));
    }

    #[test]
    fn advances_with_time_in_4us_ticks() {
        let g = IsnGenerator::new([1; 16]);
        let (l, r) = (a([1, 2, 3, 4], 1), a([5, 6, 7, 8], 2));
        let t0 = Instant::from_nanos(1_000_000);
        let i0 = g.isn(l, r, t0);
        assert_eq!(g.isn(l, r, t0 + crate::time::Duration::from_nanos(3_999)), i0);
        assert_eq!(g.isn(l, r, t0 + crate::time::Duration::from_micros(4)) - i0, 1);
        assert_eq!(g.isn(l, r, t0 + crate::time::Duration::from_secs(1)) - i0, 250_000);
        assert!(g.isn(l, r, t0 + crate::time::Duration::from_secs(60)).gt(i0));
    }

    #[test]
    fn ipv6_tuples_hash_every_address_byte() {
        let g = IsnGenerator::new([7; 16]);
        let t = Instant::from_millis(1);
        let l = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)), 80);
        let r = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), 40000);
        let base = g.isn(l, r, t);
        assert_eq!(tuple_bytes(l, r).as_slice().len(), 36);
        // The high bytes of an address count too (not only the low 32 bits).
        let r2 = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1)), 40000);
        assert_ne!(base, g.isn(l, r2, t));
        assert_ne!(base, g.isn(r, l, t), "direction matters");
        // An IPv4 tuple serialises as before: 12 bytes.
        assert_eq!(tuple_bytes(a([10, 0, 0, 1], 80).into(), a([10, 0, 0, 2], 1).into()).as_slice().len(), 12);
    }
}
