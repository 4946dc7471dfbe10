//! Deterministic hashes for load balancing.
//!
//! Maglev tables must be identical on every appliance and across builds, so nothing here may
//! depend on the Rust version, the platform or a random seed (`std`'s `DefaultHasher` is
//! explicitly unspecified across releases). The mixer is the MurmurHash3 64-bit finaliser
//! (`fmix64`, a bijection with full avalanche), applied twice with distinct seeds.

use std::net::{IpAddr, SocketAddr};
#[cfg(test)]
use std::net::{Ipv4Addr, SocketAddrV4};

/// Seed of the Maglev `offset` hash of a backend.
pub(crate) const SEED_OFFSET: u64 = 0x6d61_676c_6576_6f66; // "maglevof"
/// Seed of the Maglev `skip` hash of a backend.
pub(crate) const SEED_SKIP: u64 = 0x6d61_676c_6576_736b; // "maglevsk"
/// Seed of the client-address lookup hash.
pub(crate) const SEED_CLIENT: u64 = 0x6d61_676c_6576_636c; // "maglevcl"
/// Folds IPv6 addresses (backends' and clients') into 64 bits.
pub(crate) const SEED_V6: u64 = 0x6d61_676c_6576_7636; // "maglevv6"

/// MurmurHash3's 64-bit finaliser (Appleby, public domain).
const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// A seeded 64-bit hash of a 64-bit key. Different seeds give hashes that behave as
/// independent for our purposes (two rounds of a full-avalanche bijection keyed by the seed).
pub(crate) const fn hash64(key: u64, seed: u64) -> u64 {
    fmix64(fmix64(key ^ seed).wrapping_add(seed.rotate_left(29)))
}

/// The identity of a backend as a 64-bit integer: its address and port, never its
/// position in the pool (so adding or removing a backend leaves the others' hashes alone).
/// An IPv4 backend is its 48 bits as ever; an IPv6 one folds its 128-bit address (each
/// half through the hash) with the port, and sets the top bit so it never equals an IPv4
/// key.
pub(crate) fn backend_key(addr: SocketAddr) -> u64 {
    match addr.ip() {
        IpAddr::V4(a) => (u64::from(u32::from(a)) << 16) | u64::from(addr.port()),
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let folded = hash64((bits >> 64) as u64, SEED_V6) ^ hash64(bits as u64, SEED_V6.rotate_left(17));
            (folded ^ u64::from(addr.port())) | (1 << 63)
        }
    }
}

/// The lookup hash of a client: its IP address only, so every flow of a client maps to the
/// same backend whatever its source port. An IPv6 client is hashed whole (both halves of
/// its address).
pub(crate) fn client_hash(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => hash64(u64::from(u32::from(a)), SEED_CLIENT),
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            hash64(hash64((bits >> 64) as u64, SEED_CLIENT) ^ (bits as u64), SEED_V6)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_pinned_so_tables_match_across_builds() {
        // Golden values: if these change, every appliance's Maglev table changes with them.
        assert_eq!(fmix64(0), 0);
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
        let key = backend_key(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80).into());
        assert_eq!(key, 0x0a00_0001_0050);
        assert_ne!(hash64(key, SEED_OFFSET), hash64(key, SEED_SKIP));
        assert_eq!(hash64(key, SEED_OFFSET), hash64(key, SEED_OFFSET));
    }

    #[test]
    fn client_hash_ignores_nothing_but_the_port() {
        let a = client_hash(Ipv4Addr::new(192, 0, 2, 1).into());
        let b = client_hash(Ipv4Addr::new(192, 0, 2, 2).into());
        assert_ne!(a, b);
        assert_eq!(a, client_hash(Ipv4Addr::new(192, 0, 2, 1).into()));
    }
}
