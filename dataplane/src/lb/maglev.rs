//! Maglev consistent hashing (Eiben et al., "Maglev: A Fast and Reliable Software Network
//! Load Balancer", NSDI 2016, §3.4), with weights.
//!
//! * Table size: the smallest prime `M >= max(65 537, 100 × backends)`, so every backend's
//!   share is within about 1% of its ideal (paper §3.4: `M >> N`).
//! * Each backend's preference list is a full permutation of `0..M`:
//!   `offset = h1(id) mod M`, `skip = h2(id) mod (M − 1) + 1`, slot `j` = `offset + j·skip`
//!   (mod `M`, prime, so every skip generates the whole group). `h1`/`h2` are two
//!   independent seeded hashes of the backend's identity — its `addr:port`, NOT its index in
//!   the pool — so adding or removing a backend leaves everyone else's permutation alone and
//!   disturbs only about `1/N` of the table.
//! * Population goes by turns, each turn claiming the backend's next free preferred slot.
//!   Weights are repeated turns: backend `i`'s `k`-th turn comes at virtual time `k / w_i`
//!   (exact fractions), so over the table it claims `≈ M·w_i/Σw` slots. Ties go by
//!   `addr:port`, then index: the table depends on the pool as a set, not on its order or on
//!   the build, so every appliance with the same pool computes the same table.
//! * Lookup hashes the CLIENT's IPv4 address only (not its port): every connection from one
//!   client lands on the same backend, which is what session affinity through a proxy needs.
//!   A client behind a large NAT therefore loads one backend; use round robin or least
//!   connections where that matters.
//! * A backend that is down keeps its slots (so its clients come back when it does); a lookup
//!   landing on it falls back to the next table entries, i.e. to pseudo-random other
//!   backends in proportion to their weights, while every other client keeps its backend.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::net::IpAddr;

use super::hash::{backend_key, client_hash, hash64, SEED_OFFSET, SEED_SKIP};
use super::Backend;

/// The smallest table size, a prime (2^16 + 1).
pub(crate) const MIN_TABLE_SIZE: u64 = 65_537;

/// How many following entries a lookup tries before checking whether any backend is up at
/// all (so an all-down pool costs `O(backends)`, not `O(M)`, per lookup).
const QUICK_PROBES: u64 = 64;

/// A built Maglev lookup table: entry `i` is the pool index of the backend owning slot `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Maglev {
    table: Vec<u16>,
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lookup {
    /// The chosen backend.
    pub(crate) idx: usize,
    /// The client's own slot belonged to a backend that was down.
    pub(crate) fell_back: bool,
}

/// Backend `idx`'s next turn in the population, ordered by virtual time `k / w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Turn {
    k: u64,
    weight: u32,
    key: u64,
    idx: u16,
}

impl Ord for Turn {
    fn cmp(&self, other: &Self) -> Ordering {
        // k1/w1 vs k2/w2 exactly: k1·w2 vs k2·w1 (u64 × u32 fits u128).
        (u128::from(self.k) * u128::from(other.weight))
            .cmp(&(u128::from(other.k) * u128::from(self.weight)))
            .then(self.key.cmp(&other.key))
            .then(self.idx.cmp(&other.idx))
    }
}

impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A backend's walk along its permutation.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    pos: u64,
    skip: u64,
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// The table size for a pool of `backends`: the smallest prime `>= max(65 537, 100 × n)`.
pub(crate) fn table_size(backends: usize) -> u64 {
    let mut m = MIN_TABLE_SIZE.max((backends as u64).saturating_mul(100));
    while !is_prime(m) {
        m += 1;
    }
    m
}

impl Maglev {
    /// Builds the table for a validated pool: at most 65 536 backends, at least one with a
    /// non-zero weight. Weight-0 backends get no slots.
    pub(crate) fn build(backends: &[Backend]) -> Maglev {
        let m = table_size(backends.len());
        let mut cursors = Vec::with_capacity(backends.len());
        let mut heap = BinaryHeap::with_capacity(backends.len());
        for (i, b) in backends.iter().enumerate() {
            let key = backend_key(b.addr);
            cursors.push(Cursor {
                pos: hash64(key, SEED_OFFSET) % m,
                skip: hash64(key, SEED_SKIP) % (m - 1) + 1,
            });
            if let (Ok(idx), true) = (u16::try_from(i), b.weight > 0) {
                heap.push(Reverse(Turn {
                    k: 1,
                    weight: b.weight,
                    key,
                    idx,
                }));
            }
        }

        // `m` < 2^32 for any pool of at most 65 536 backends, so it fits usize.
        let size = usize::try_from(m).unwrap_or(usize::MAX);
        let mut table = vec![0u16; size];
        let mut taken = vec![false; size];
        let mut filled = 0usize;
        while filled < size {
            let Some(Reverse(turn)) = heap.pop() else {
                break;
            };
            let Some(c) = cursors.get_mut(usize::from(turn.idx)) else {
                break;
            };
            // Every permutation covers all of 0..m, so a free slot is always found.
            loop {
                let slot = c.pos as usize;
                c.pos = (c.pos + c.skip) % m;
                if let Some(t) = taken.get_mut(slot) {
                    if !*t {
                        *t = true;
                        if let Some(e) = table.get_mut(slot) {
                            *e = turn.idx;
                        }
                        filled += 1;
                        break;
                    }
                }
            }
            heap.push(Reverse(Turn {
                k: turn.k + 1,
                ..turn
            }));
        }
        Maglev { table }
    }

    /// The table: entry `i` is the pool index owning slot `i`.
    pub(crate) fn table(&self) -> &[u16] {
        &self.table
    }

    /// The backend for `client`: its slot's owner if `is_up`, else the owner of the first
    /// following slot (wrapping) that is up and has weight. `None` when no backend with a
    /// non-zero weight is up.
    pub(crate) fn lookup(
        &self,
        client: IpAddr,
        weights: &[u32],
        is_up: impl Fn(usize) -> bool,
    ) -> Option<Lookup> {
        let m = self.table.len() as u64;
        if m == 0 {
            return None;
        }
        let usable = |idx: usize| weights.get(idx).is_some_and(|&w| w > 0) && is_up(idx);
        let start = client_hash(client) % m;
        let at = |j: u64| {
            usize::from(
                self.table
                    .get(((start + j) % m) as usize)
                    .copied()
                    .unwrap_or(0),
            )
        };
        let first = at(0);
        if usable(first) {
            return Some(Lookup {
                idx: first,
                fell_back: false,
            });
        }
        let found = |range: std::ops::Range<u64>| range.map(at).find(|&idx| usable(idx));
        if let Some(idx) = found(1..QUICK_PROBES.min(m)) {
            return Some(Lookup {
                idx,
                fell_back: true,
            });
        }
        // Most of the pool is down: make sure something is up before walking the table.
        if !(0..weights.len()).any(usable) {
            return None;
        }
        if let Some(idx) = found(QUICK_PROBES.min(m)..m) {
            return Some(Lookup {
                idx,
                fell_back: true,
            });
        }
        // Only backends whose weight was too small to win a slot are up: share the clients
        // among them by the same hash.
        let up: Vec<usize> = (0..weights.len()).filter(|&i| usable(i)).collect();
        let n = up.len() as u64;
        up.get((client_hash(client) % n.max(1)) as usize)
            .map(|&idx| Lookup {
                idx,
                fell_back: true,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn pool(n: u8, weight: u32) -> Vec<Backend> {
        (0..n)
            .map(|i| Backend {
                id: usize::from(i),
                addr: SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, i + 1), 8080).into(),
                weight,
            })
            .collect()
    }

    #[test]
    fn table_size_is_a_prime_at_least_100_per_backend() {
        assert_eq!(table_size(1), 65_537);
        assert_eq!(table_size(655), 65_537);
        let m = table_size(1000);
        assert!(m >= 100_000 && is_prime(m));
        assert_eq!(m, 100_003);
        assert!(!is_prime(65_535) && is_prime(2) && !is_prime(1));
    }

    #[test]
    fn equal_weights_share_the_table_evenly() {
        let mg = Maglev::build(&pool(7, 1));
        let mut counts = [0usize; 7];
        for &e in mg.table() {
            counts[usize::from(e)] += 1;
        }
        let ideal = 65_537 / 7;
        for c in counts {
            // Turns alternate, so shares differ by at most one slot.
            assert!(c.abs_diff(ideal) <= 1, "{counts:?}");
        }
    }

    #[test]
    fn weights_set_table_shares_and_zero_weight_gets_nothing() {
        let mut backends = pool(4, 1);
        backends[0].weight = 5;
        backends[1].weight = 3;
        backends[2].weight = 2;
        backends[3].weight = 0;
        let mg = Maglev::build(&backends);
        let mut counts = [0usize; 4];
        for &e in mg.table() {
            counts[usize::from(e)] += 1;
        }
        assert_eq!(counts[3], 0);
        for (i, w) in [5usize, 3, 2].into_iter().enumerate() {
            let ideal = 65_537 * w / 10;
            assert!(counts[i].abs_diff(ideal) <= 2, "{counts:?}");
        }
    }

    #[test]
    fn lookup_falls_back_only_for_clients_of_a_down_backend() {
        let backends = pool(5, 1);
        let weights: Vec<u32> = backends.iter().map(|b| b.weight).collect();
        let mg = Maglev::build(&backends);
        let mut fell_back = 0;
        for i in 0..10_000u32 {
            let client = IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + i));
            let Some(all_up) = mg.lookup(client, &weights, |_| true) else {
                panic!("all up but no backend");
            };
            assert!(!all_up.fell_back);
            let Some(one_down) = mg.lookup(client, &weights, |i| i != 2) else {
                panic!("four up but no backend");
            };
            assert_ne!(one_down.idx, 2);
            if all_up.idx == 2 {
                assert!(one_down.fell_back);
                fell_back += 1;
            } else {
                assert_eq!(one_down, all_up);
            }
        }
        assert!((1_500..2_500).contains(&fell_back), "{fell_back}");
        assert_eq!(mg.lookup(IpAddr::V4(Ipv4Addr::LOCALHOST), &weights, |_| false), None);
        // Only one backend up: everyone reaches it, even after the quick probes.
        for i in 0..1_000u32 {
            let got = mg.lookup(IpAddr::V4(Ipv4Addr::from(i)), &weights, |i| i == 4);
            assert_eq!(got.map(|l| l.idx), Some(4));
        }
    }
}
