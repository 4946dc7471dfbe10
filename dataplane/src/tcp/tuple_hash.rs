//! The keyed hash of the connection and TIME-WAIT tables: foldhash (one folded 64x64->128
//! multiply per 4-tuple) instead of std's SipHash-1-3, keyed from the engine's secret.
//!
//! The tables are hashed by what a remote host chooses (its address and port), so an
//! unkeyed hash would let it pick 4-tuples that fall into one bucket and turn every lookup
//! into a walk (hash flooding; Linux keys `inet_ehashfn` with `net_secret` for the same
//! reason, `inet_ehash_secret` of `inet_ehashfn()`). The key here is 64 bits derived with
//! SipHash from the secret that also keys the ISNs (RFC 6528) and SYN cookies, so the
//! bucket of a tuple cannot be predicted without it; the hash itself is foldhash's, which
//! aims at this kind of resistance (not a cryptographic PRF) at a few instructions.

use core::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

use foldhash::fast::FoldHasher;
use foldhash::SharedSeed;

use super::isn::siphash24;
use super::time_wait::FourTuple;

/// A [`BuildHasher`] of [`FoldHasher`]s keyed from an engine's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TupleHashBuilder {
    seed: u64,
}

impl TupleHashBuilder {
    /// The hasher keyed by `secret` (the engine's ISN and SYN-cookie secret).
    pub fn new(secret: &[u8; 16]) -> Self {
        TupleHashBuilder { seed: siphash24(secret, b"strait 4-tuple table hash") }
    }
}

impl BuildHasher for TupleHashBuilder {
    type Hasher = FoldHasher<'static>;

    #[inline]
    fn build_hasher(&self) -> FoldHasher<'static> {
        FoldHasher::with_seed(self.seed, SharedSeed::global_fixed())
    }
}

/// Hashes the 96 bits of an IPv4 4-tuple as one 128-bit word (one folded multiply in
/// foldhash), rather than field by field as a derived `Hash` would (a length prefix and a
/// byte write per address). An IPv6 tuple is three words: each address whole, then the
/// ports (Linux `inet6_ehashfn` hashes the whole remote address too, so a peer choosing
/// the host part of its /64 does not pick the bucket either).
impl Hash for FourTuple {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let ports = (u64::from(self.local.port()) << 16) | u64::from(self.remote.port());
        match (self.local.ip(), self.remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => {
                let ips = (u64::from(u32::from(l)) << 32) | u64::from(u32::from(r));
                state.write_u128((u128::from(ports) << 64) | u128::from(ips));
            }
            (l, r) => {
                state.write_u128(ip_bits(l));
                state.write_u128(ip_bits(r));
                // The family in the top bit: a mixed tuple never equals a pure one anyway.
                state.write_u64(ports | (1 << 63));
            }
        }
    }
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

    use super::*;

    fn tuple(remote_ip: Ipv4Addr, remote_port: u16) -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 443).into(),
            remote: SocketAddrV4::new(remote_ip, remote_port).into(),
        }
    }

    fn hash(b: &TupleHashBuilder, t: &FourTuple) -> u64 {
        b.hash_one(t)
    }

    #[test]
    fn keyed_by_the_secret() {
        let (a, a2, b) = (TupleHashBuilder::new(&[1; 16]), TupleHashBuilder::new(&[1; 16]), TupleHashBuilder::new(&[2; 16]));
        let t = tuple(Ipv4Addr::new(192, 0, 2, 7), 40_000);
        assert_eq!(hash(&a, &t), hash(&a2, &t), "same secret, same hash");
        assert_ne!(hash(&a, &t), hash(&b, &t), "another secret, another hash");
        // Every field counts.
        let mut other = t;
        other.local = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 444).into();
        assert_ne!(hash(&a, &t), hash(&a, &other));
        other = t;
        other.remote = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 8), 40_000).into();
        assert_ne!(hash(&a, &t), hash(&a, &other));
        other = t;
        other.local = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 443).into();
        assert_ne!(hash(&a, &t), hash(&a, &other));
        // Swapped ends are another tuple.
        let swapped = FourTuple { local: t.remote, remote: t.local };
        assert_ne!(hash(&a, &t), hash(&a, &swapped));
    }

    /// A peer choosing ports (or addresses in a /16) cannot put them into few buckets: the
    /// low bits (hashbrown's bucket index) and the top seven (its control byte) spread as
    /// a random function's would, and which tuples share a bucket changes with the key.
    #[test]
    fn chosen_tuples_spread_over_buckets() {
        const BUCKETS: u64 = 1024;
        let keys = [TupleHashBuilder::new(&[1; 16]), TupleHashBuilder::new(&[0xa5; 16])];
        let by_port: Vec<FourTuple> = (0..4096u16).map(|p| tuple(Ipv4Addr::new(198, 51, 100, 1), 1024 + p)).collect();
        let by_addr: Vec<FourTuple> =
            (0..4096u32).map(|i| tuple(Ipv4Addr::from(0xc633_0000 | i), 40_000)).collect();
        for set in [&by_port, &by_addr] {
            let mut colliding = Vec::new();
            for k in &keys {
                let bucket = |t: &FourTuple| hash(k, t) % BUCKETS;
                let mut load = vec![0u32; BUCKETS as usize];
                let mut tags = HashSet::new();
                for t in set.iter() {
                    load[bucket(t) as usize] += 1;
                    tags.insert(hash(k, t) >> 57);
                }
                // 4 tuples per bucket on average; a random function's fullest bucket of
                // 1024 holds about 12; a degenerate hash would put hundreds in one.
                let max = load.iter().copied().max().unwrap_or(0);
                assert!(max <= 16, "fullest bucket holds {max}");
                assert_eq!(tags.len(), 128, "all control-byte values occur");
                let first = bucket(&set[0]);
                colliding.push((0..set.len()).filter(|&i| bucket(&set[i]) == first).collect::<Vec<usize>>());
            }
            assert_ne!(colliding[0], colliding[1], "which tuples collide does not depend on the key");
        }
    }

    #[test]
    fn works_as_the_table_hasher() {
        let mut m: HashMap<FourTuple, u32, TupleHashBuilder> = HashMap::with_hasher(TupleHashBuilder::new(&[3; 16]));
        for p in 0..1000u16 {
            m.insert(tuple(Ipv4Addr::new(192, 0, 2, 1), p), u32::from(p));
        }
        for p in 0..1000u16 {
            assert_eq!(m.get(&tuple(Ipv4Addr::new(192, 0, 2, 1), p)), Some(&u32::from(p)));
        }
        assert_eq!(m.get(&tuple(Ipv4Addr::new(192, 0, 2, 2), 1)), None);
    }

    /// IPv6 tuples: every bit of both addresses counts (a peer varying only the high or
    /// only the low half of its address moves the bucket), and the table works over them.
    #[test]
    fn ipv6_tuples_hash_whole_addresses() {
        let b = TupleHashBuilder::new(&[5; 16]);
        let v6 = |r: u128, port: u16| FourTuple {
            local: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0002u128)), 443),
            remote: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(r)), port),
        };
        let base = 0x2001_0db8_0000_0000_0000_0000_0000_0001u128;
        let t = v6(base, 40_000);
        assert_ne!(hash(&b, &t), hash(&b, &v6(base ^ (1 << 100), 40_000)), "high bits count");
        assert_ne!(hash(&b, &t), hash(&b, &v6(base ^ 1, 40_000)), "low bits count");
        assert_ne!(hash(&b, &t), hash(&b, &v6(base, 40_001)), "ports count");
        let mut m: HashMap<FourTuple, u32, TupleHashBuilder> = HashMap::with_hasher(b);
        for i in 0..1000u32 {
            m.insert(v6(base + (u128::from(i) << 64), 1), i);
        }
        for i in 0..1000u32 {
            assert_eq!(m.get(&v6(base + (u128::from(i) << 64), 1)), Some(&i));
        }
        let v4 = tuple(Ipv4Addr::new(192, 0, 2, 1), 1);
        assert_eq!(m.get(&v4), None);
    }
}
