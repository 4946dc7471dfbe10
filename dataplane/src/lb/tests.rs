//! Acceptance tests of the load balancer: weighted distribution, Maglev disruption bounds
//! and determinism, health, and a property test that nothing panics.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};

use proptest::prelude::*;

use super::*;
use crate::tcp::sim_link::SimRng;

fn backend(id: usize, last: u8, weight: u32) -> Backend {
    Backend {
        id,
        addr: SocketAddr::from((Ipv4Addr::new(10, 2, 0, last), 8080)),
        weight,
    }
}

fn weighted_pool() -> Vec<Backend> {
    vec![backend(0, 1, 5), backend(1, 2, 3), backend(2, 3, 2)]
}

fn equal_pool(n: u8) -> Vec<Backend> {
    (0..n).map(|i| backend(usize::from(i), i + 1, 1)).collect()
}

fn client(i: u32) -> SocketAddr {
    // 100 000 distinct addresses spread over 172.16.0.0/12, source port varying too.
    SocketAddr::from((
        Ipv4Addr::from(0xac10_0000 + i * 7),
        1024 + (i % 60_000) as u16,
    ))
}

/// Asserts each backend got its weight's share of `total` picks within 5% (relative).
fn assert_shares(counts: &[u64], weights: &[u32]) {
    let total: u64 = counts.iter().sum();
    let wsum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    for (c, &w) in counts.iter().zip(weights) {
        let expected = total as f64 * f64::from(w) / wsum as f64;
        let err = (*c as f64 - expected).abs() / expected;
        assert!(err <= 0.05, "counts {counts:?} vs weights {weights:?}");
    }
}

#[test]
fn round_robin_5_3_2_matches_weights_and_interleaves() {
    let mut lb = Balancer::new(Algorithm::RoundRobin, &weighted_pool()).expect("valid pool");
    let mut counts = [0u64; 3];
    let mut run = 0;
    let mut last = usize::MAX;
    for i in 0..10_000 {
        let idx = lb.pick(client(i), |_| true).expect("all up");
        counts[idx] += 1;
        run = if idx == last { run + 1 } else { 1 };
        last = idx;
        // Smooth: never three of the same in a row (a burst would give five).
        assert!(run <= 2, "burst at pick {i}");
    }
    assert_eq!(counts, [5_000, 3_000, 2_000]);
    assert_shares(&counts, &[5, 3, 2]);
    assert_eq!(lb.stats().picks, 10_000);
}

#[test]
fn least_connections_5_3_2_with_connections_closing_matches_weights() {
    let mut lb = Balancer::new(Algorithm::LeastConnections, &weighted_pool()).expect("valid pool");
    let mut rng = SimRng::new(42);
    let mut open: VecDeque<(u64, usize)> = VecDeque::new();
    let mut counts = [0u64; 3];
    for step in 0..10_000u64 {
        // Connections live a random 0..400 picks (about 200 open at a time), independent of
        // their backend. (With only ~20 open, integer rounding of active/weight favours the
        // light backend by ~7%: inherent to the least-connections rule.)
        open.retain(|&(end, idx)| {
            if end <= step {
                lb.on_disconnect(idx);
                false
            } else {
                true
            }
        });
        // The pick is a backend with the least active/weight at the time of the pick.
        let ratio =
            |lb: &Balancer, i: usize| lb.active(i) as f64 / f64::from(lb.backends()[i].weight);
        let least = (0..3).map(|i| ratio(&lb, i)).fold(f64::MAX, f64::min);
        let idx = lb.pick(client(step as u32), |_| true).expect("all up");
        assert_eq!(ratio(&lb, idx), least, "step {step}");
        lb.on_connect(idx);
        counts[idx] += 1;
        open.push_back((step + rng.below(400), idx));
    }
    assert_shares(&counts, &[5, 3, 2]);
    assert_eq!(lb.stats().unbalanced_disconnects, 0);
}

#[test]
fn least_connections_prefers_the_least_loaded() {
    let mut lb = Balancer::new(Algorithm::LeastConnections, &equal_pool(3)).expect("valid pool");
    for _ in 0..5 {
        lb.on_connect(0);
        lb.on_connect(2);
    }
    for _ in 0..5 {
        let idx = lb.pick(client(1), |_| true);
        assert_eq!(idx, Some(1));
        lb.on_connect(1);
    }
    lb.on_disconnect(2);
    assert_eq!(lb.pick(client(1), |_| true), Some(2));
    // Down backends are skipped even when least loaded.
    for _ in 0..10 {
        let idx = lb.pick(client(1), |i| i != 2);
        assert!(matches!(idx, Some(0 | 1)), "{idx:?}");
    }
}

/// Where each of 100 000 clients goes, as backend addresses.
fn maglev_map(backends: &[Backend], is_up: impl Fn(usize) -> bool + Copy) -> Vec<SocketAddr> {
    let mut lb = Balancer::new(Algorithm::Maglev, backends).expect("valid pool");
    (0..100_000)
        .map(|i| {
            let idx = lb.pick(client(i), is_up).expect("a backend is up");
            backends[idx].addr
        })
        .collect()
}

#[test]
fn maglev_adding_an_11th_server_moves_about_a_11th_all_to_the_new_one() {
    let ten = equal_pool(10);
    let eleven = equal_pool(11);
    let new_addr = eleven[10].addr;
    let before = maglev_map(&ten, |_| true);
    let after = maglev_map(&eleven, |_| true);
    let (mut to_new, mut between_old) = (0usize, 0usize);
    for (b, a) in before.iter().zip(&after) {
        if a == &new_addr {
            to_new += 1;
        } else if a != b {
            between_old += 1;
        }
    }
    let moved = (to_new + between_old) as f64 / 100_000.0;
    assert!((0.07..=0.11).contains(&moved), "moved {moved}");
    assert!(
        (0.07..=0.11).contains(&(to_new as f64 / 100_000.0)),
        "to new {to_new}"
    );
    assert!(
        (between_old as f64 / 100_000.0) < 0.02,
        "between old {between_old}"
    );
}

#[test]
fn maglev_removing_a_server_moves_only_its_clients() {
    let ten = equal_pool(10);
    let removed = ten[3].addr;
    let nine: Vec<Backend> = ten
        .iter()
        .filter(|b| b.addr != removed)
        .enumerate()
        .map(|(id, b)| Backend { id, ..*b })
        .collect();
    let before = maglev_map(&ten, |_| true);
    let after = maglev_map(&nine, |_| true);
    let (mut its_clients, mut others_moved) = (0usize, 0usize);
    for (b, a) in before.iter().zip(&after) {
        assert_ne!(a, &removed);
        if b == &removed {
            its_clients += 1;
        } else if a != b {
            others_moved += 1;
        }
    }
    assert!((8_000..12_000).contains(&its_clients), "{its_clients}");
    assert!(
        (others_moved as f64 / 100_000.0) < 0.02,
        "others moved {others_moved}"
    );
    // Marking it down instead (health check) moves its clients and nobody else.
    let down = maglev_map(&ten, |i| i != 3);
    for (b, d) in before.iter().zip(&down) {
        assert_ne!(d, &removed);
        if b != &removed {
            assert_eq!(b, d);
        }
    }
}

#[test]
fn maglev_uses_the_client_ip_only() {
    let mut lb = Balancer::new(Algorithm::Maglev, &equal_pool(10)).expect("valid pool");
    for i in 0..1_000u32 {
        let ip = Ipv4Addr::from(0xc633_6400 + i);
        let first = lb.pick(SocketAddr::from((ip, 1)), |_| true);
        for port in [2, 80, 40_000, 65_535] {
            assert_eq!(lb.pick(SocketAddr::from((ip, port)), |_| true), first);
        }
    }
}

/// FNV-1a over the table: a fingerprint to pin the table across builds and platforms.
fn fingerprint(table: &[u16]) -> u64 {
    table.iter().fold(0xcbf2_9ce4_8422_2325, |h: u64, &e| {
        let h = (h ^ u64::from(e & 0xff)).wrapping_mul(0x0100_0000_01b3);
        (h ^ u64::from(e >> 8)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn maglev_is_deterministic_across_builds_and_input_order() {
    let pool = weighted_pool();
    let mut a = Balancer::new(Algorithm::Maglev, &pool).expect("valid pool");
    let b = Balancer::new(Algorithm::Maglev, &pool).expect("valid pool");
    let ta = a.maglev_table().expect("maglev").to_vec();
    assert_eq!(ta.len(), 65_537);
    assert_eq!(Some(ta.as_slice()), b.maglev_table());
    // Pinned: a change here means appliances on different versions disagree.
    assert_eq!(fingerprint(&ta), GOLDEN_FINGERPRINT);

    // The same pool listed in another order gives the same client -> address mapping.
    let reversed: Vec<Backend> = pool
        .iter()
        .rev()
        .enumerate()
        .map(|(id, b)| Backend { id, ..*b })
        .collect();
    let mut c = Balancer::new(Algorithm::Maglev, &reversed).expect("valid pool");
    for i in 0..10_000 {
        let x = a.pick(client(i), |_| true).map(|idx| pool[idx].addr);
        let y = c.pick(client(i), |_| true).map(|idx| reversed[idx].addr);
        assert_eq!(x, y);
    }

    // set_backends rebuilds to the very same table.
    let mut d = Balancer::new(Algorithm::Maglev, &equal_pool(4)).expect("valid pool");
    d.set_backends(&pool).expect("valid pool");
    assert_eq!(d.maglev_table(), Some(ta.as_slice()));
}

const GOLDEN_FINGERPRINT: u64 = 12_985_958_775_799_283_022;

#[test]
fn maglev_weighted_clients_follow_weights() {
    let mut lb = Balancer::new(Algorithm::Maglev, &weighted_pool()).expect("valid pool");
    let mut counts = [0u64; 3];
    for i in 0..100_000 {
        counts[lb.pick(client(i), |_| true).expect("all up")] += 1;
    }
    assert_shares(&counts, &[5, 3, 2]);
}

#[test]
fn down_servers_are_never_picked() {
    let mut rng = SimRng::new(7);
    for algorithm in Algorithm::ALL {
        let pool = equal_pool(8);
        let mut lb = Balancer::new(algorithm, &pool).expect("valid pool");
        for round in 0..200u32 {
            let mask = rng.next_u64() as u8;
            let up = move |i: usize| mask & (1 << i) != 0;
            for i in 0..50 {
                let got = lb.pick(client(round * 50 + i), up);
                match got {
                    Some(idx) => {
                        assert!(up(idx), "{algorithm:?} picked down {idx}");
                        lb.on_connect(idx);
                    }
                    None => assert_eq!(mask, 0, "{algorithm:?} found nothing in {mask:#b}"),
                }
            }
        }
        assert!(lb.stats().no_backend > 0 || algorithm == Algorithm::Maglev);
    }
}

#[test]
fn drained_backends_are_never_picked_and_all_down_is_none() {
    let mut pool = equal_pool(3);
    pool[1].weight = 0;
    for algorithm in Algorithm::ALL {
        let mut lb = Balancer::new(algorithm, &pool).expect("valid pool");
        for i in 0..1_000 {
            assert_ne!(lb.pick(client(i), |_| true), Some(1));
        }
        assert_eq!(lb.pick(client(0), |i| i == 1), None);
        assert_eq!(lb.pick(client(0), |_| false), None);
        assert_eq!(lb.stats().no_backend, 2);
    }
}

#[test]
fn bad_pools_are_rejected_with_clear_errors() {
    let rr = Algorithm::RoundRobin;
    assert_eq!(Balancer::new(rr, &[]).err(), Some(LbError::EmptyPool));
    let mut zero = equal_pool(3);
    zero.iter_mut().for_each(|b| b.weight = 0);
    assert_eq!(
        Balancer::new(Algorithm::Maglev, &zero).err(),
        Some(LbError::ZeroTotalWeight)
    );
    let huge: Vec<Backend> = (0..=MAX_BACKENDS)
        .map(|i| Backend {
            id: i,
            addr: SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + i as u32), 80)),
            weight: 1,
        })
        .collect();
    assert_eq!(
        Balancer::new(rr, &huge).err(),
        Some(LbError::TooManyBackends(65_537))
    );
    let mut bad_id = equal_pool(3);
    bad_id[2].id = 7;
    assert_eq!(
        Balancer::new(rr, &bad_id).err(),
        Some(LbError::IdMismatch { position: 2, id: 7 })
    );
    let mut dup = equal_pool(3);
    dup[2].addr = dup[0].addr;
    assert_eq!(
        Balancer::new(rr, &dup).err(),
        Some(LbError::DuplicateBackend(dup[0].addr))
    );
    assert!(LbError::ZeroTotalWeight
        .to_string()
        .contains("zero total weight"));

    // A rejected set_backends leaves the balancer as it was.
    let mut lb = Balancer::new(Algorithm::Maglev, &equal_pool(3)).expect("valid pool");
    let table = lb.maglev_table().map(<[u16]>::to_vec);
    assert_eq!(
        lb.set_backends(&dup),
        Err(LbError::DuplicateBackend(dup[0].addr))
    );
    assert_eq!(lb.backends(), equal_pool(3).as_slice());
    assert_eq!(lb.maglev_table().map(<[u16]>::to_vec), table);
}

#[test]
fn set_backends_keeps_active_counts_by_address() {
    let mut lb = Balancer::new(Algorithm::LeastConnections, &equal_pool(3)).expect("valid pool");
    lb.on_connect(2);
    lb.on_connect(2);
    lb.on_connect(0);
    // Drop the first backend: the third becomes index 1 and keeps its two connections.
    let new: Vec<Backend> = equal_pool(3)[1..]
        .iter()
        .enumerate()
        .map(|(id, b)| Backend { id, ..*b })
        .collect();
    lb.set_backends(&new).expect("valid pool");
    assert_eq!((lb.active(0), lb.active(1)), (0, 2));
    lb.on_disconnect(7);
    lb.on_disconnect(0);
    assert_eq!(lb.stats().unknown_backend, 1);
    assert_eq!(lb.stats().unbalanced_disconnects, 1);
}

#[test]
fn algorithm_names_round_trip() {
    for a in Algorithm::ALL {
        assert_eq!(Algorithm::from_name(a.name()), Some(a));
    }
    assert_eq!(Algorithm::from_name("random"), None);
}

#[derive(Debug, Clone)]
enum Op {
    Pick(u32, u8),
    Connect(usize),
    Disconnect(usize),
    SetBackends(Vec<u32>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u32>(), any::<u8>()).prop_map(|(c, m)| Op::Pick(c, m)),
        2 => (0usize..12).prop_map(Op::Connect),
        2 => (0usize..12).prop_map(Op::Disconnect),
        1 => prop::collection::vec(prop_oneof![Just(0u32), 1u32..10, Just(u32::MAX)], 0..10)
            .prop_map(Op::SetBackends),
    ]
}

fn pool_of(weights: &[u32]) -> Vec<Backend> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| backend(i, i as u8 + 1, w))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the pool, health and call sequence: no panic, and a pick is always an up,
    /// non-drained backend of the current pool.
    #[test]
    fn pick_never_panics_and_only_returns_usable_backends(
        algorithm in prop::sample::select(Algorithm::ALL.to_vec()),
        weights in prop::collection::vec(prop_oneof![Just(0u32), 1u32..10, Just(u32::MAX)], 1..10),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let mut pool = pool_of(&weights);
        let Ok(mut lb) = Balancer::new(algorithm, &pool) else {
            prop_assert!(weights.iter().all(|&w| w == 0));
            return Ok(());
        };
        for op in ops {
            match op {
                Op::Pick(c, mask) => {
                    let up = |i: usize| i >= 8 || mask & (1 << i) != 0;
                    if let Some(idx) = lb.pick(SocketAddr::from((Ipv4Addr::from(c), 1)), up) {
                        prop_assert!(idx < pool.len() && up(idx) && pool[idx].weight > 0);
                    } else {
                        prop_assert!((0..pool.len()).all(|i| !up(i) || pool[i].weight == 0));
                    }
                }
                Op::Connect(i) => lb.on_connect(i),
                Op::Disconnect(i) => lb.on_disconnect(i),
                Op::SetBackends(w) => {
                    let new = pool_of(&w);
                    if lb.set_backends(&new).is_ok() {
                        pool = new;
                    } else {
                        prop_assert!(w.iter().all(|&x| x == 0));
                    }
                }
            }
        }
    }
}

/// What two lcores' balancers share, as plain cells (the proxy's is atomics).
#[derive(Default)]
struct TestShared {
    ticket: std::cell::Cell<u64>,
    active: std::cell::RefCell<Vec<u64>>,
}

impl SharedPool for TestShared {
    fn next_ticket(&self) -> u64 {
        let t = self.ticket.get();
        self.ticket.set(t + 1);
        t
    }
    fn active(&self, idx: usize) -> u64 {
        self.active.borrow().get(idx).copied().unwrap_or(0)
    }
}

#[test]
fn shared_round_robin_runs_one_sequence_over_all_lcores() {
    // Weights 1:1 and two lcores taking one connection each: one on each backend (each
    // lcore's own round robin would have sent both to backend 0).
    let pool = equal_pool(2);
    let shared = TestShared::default();
    let mut a = Balancer::new(Algorithm::RoundRobin, &pool).unwrap();
    let mut b = Balancer::new(Algorithm::RoundRobin, &pool).unwrap();
    let first = a.pick_shared(client(1), |_| true, &shared);
    let second = b.pick_shared(client(2), |_| true, &shared);
    assert_eq!((first, second), (Some(0), Some(1)));
    // Weighted 5:3:2 over three lcores taking turns unevenly: exact shares per cycle.
    let pool = weighted_pool();
    let shared = TestShared::default();
    let mut lcores: Vec<Balancer> = (0..3).map(|_| Balancer::new(Algorithm::RoundRobin, &pool).unwrap()).collect();
    let mut counts = [0u64; 3];
    for i in 0..1000usize {
        let l = [0, 0, 1, 2, 0, 1, 0][i % 7];
        let p = lcores[l].pick_shared(client(i as u32), |_| true, &shared).unwrap();
        counts[p] += 1;
    }
    assert_eq!(counts, [500, 300, 200]);
}

#[test]
fn shared_round_robin_skips_down_backends_locally() {
    let pool = weighted_pool();
    let shared = TestShared::default();
    let mut lb = Balancer::new(Algorithm::RoundRobin, &pool).unwrap();
    let mut counts = [0u64; 3];
    for i in 0..1000 {
        let p = lb.pick_shared(client(i), |i| i != 0, &shared).unwrap();
        counts[p] += 1;
    }
    assert_eq!(counts[0], 0);
    assert_shares(&counts[1..], &[3, 2]);
    assert_eq!(lb.pick_shared(client(0), |_| false, &shared), None);
    assert_eq!(lb.stats().no_backend, 1);
}

#[test]
fn shared_least_connections_uses_the_global_counts() {
    let pool = equal_pool(2);
    let shared = TestShared::default();
    let mut a = Balancer::new(Algorithm::LeastConnections, &pool).unwrap();
    let mut b = Balancer::new(Algorithm::LeastConnections, &pool).unwrap();
    // Connections that come and stay, mostly on lcore a: the global counts stay within one.
    for i in 0..100u32 {
        let lb = if i % 4 == 3 { &mut b } else { &mut a };
        let p = lb.pick_shared(client(i), |_| true, &shared).unwrap();
        shared.active.borrow_mut().resize(2, 0);
        shared.active.borrow_mut()[p] += 1;
        let act = shared.active.borrow().clone();
        assert!(act[0].abs_diff(act[1]) <= 1, "{act:?}");
    }
    // Another lcore's connections count: backend 0 loaded elsewhere, b picks 1.
    *shared.active.borrow_mut() = vec![7, 3];
    assert_eq!(b.pick_shared(client(0), |_| true, &shared), Some(1));
    assert_eq!(b.active(0), 0, "the balancer's own counts are not used");
}

#[test]
fn shared_maglev_is_the_plain_lookup() {
    let pool = equal_pool(5);
    let shared = TestShared::default();
    let mut a = Balancer::new(Algorithm::Maglev, &pool).unwrap();
    let mut b = Balancer::new(Algorithm::Maglev, &pool).unwrap();
    for i in 0..100 {
        assert_eq!(a.pick_shared(client(i), |_| true, &shared), b.pick(client(i), |_| true));
    }
}
