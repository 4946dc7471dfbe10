//! Sizing the mbuf pool from the sessions the configuration admits (issue 19).
//!
//! What one session holds (measured with `deploy/bench/run.sh` workloads `concN` and
//! `proxy/tests/many_connections.rs`; see docs/benchmarks/many-connections.md, "Memory per connection"):
//! an idle keep-alive session holds no mbuf at all (everything it received was relayed and
//! acknowledged); a busy one holds what is in flight, at least one segment each way while
//! a request and its response cross. The RX rings hold their descriptors' mbufs all the
//! time. So a pool that cannot give every admitted session one mbuf each way beside the
//! rings, and whose memory limit (12/16 of the pool for the connections' buffers) cannot
//! hold one segment each way per session, puts the lcores under memory pressure when they
//! are all busy at once, although nothing is wrong.

use super::Config;

/// Mbufs a busy session needs at the least: one segment in flight each way.
pub const MBUFS_PER_SESSION: u64 = 2;
/// RX descriptors each port queue keeps filled (`dataplane::runtime`'s cap; the pool's quarter rule
/// lowers it for small pools).
const RX_RING_MBUFS: u64 = 4096;
/// Headroom for TX rings, the TX backlog and control traffic.
const HEADROOM_MBUFS: u64 = 4096;
/// Bytes of memory one mbuf takes in the pool: the 2176-byte data room (2048 + 128
/// headroom), the 128-byte `rte_mbuf` and the mempool's object header, rounded up.
pub const MBUF_OBJECT_BYTES: u64 = 2432;
/// The default pool when nothing larger is needed (and the smallest default).
pub const DEFAULT_MBUFS: u32 = 8191;
/// The share of `memory_mb` a default pool may take (the rest: rings, EAL, tables).
const POOL_SHARE_PERCENT: u64 = 60;

/// The sixteenths of the pool the connections' buffers may hold together (the TCP memory
/// limit, Linux `tcp_mem[2]`: `dataplane::lcore::MEMORY_LIMIT_SIXTEENTHS`).
const LIMIT_SIXTEENTHS: u64 = dataplane::lcore::MEMORY_LIMIT_SIXTEENTHS as u64;

/// Mbufs the configuration needs for all its admitted sessions busy at once: the RX
/// rings of every port queue, one segment each way per session, and headroom; and a pool
/// whose memory limit holds those segments.
pub fn mbufs_needed(cfg: &Config) -> u64 {
    let sessions: u64 = cfg.listeners.iter().map(|l| u64::from(l.max_connections)).sum();
    let beside = rings_and_headroom(cfg) + MBUFS_PER_SESSION * sessions;
    let within_limit = (MBUFS_PER_SESSION * sessions * 16).div_ceil(LIMIT_SIXTEENTHS);
    beside.max(within_limit)
}

/// The RX rings of every port queue and the headroom.
fn rings_and_headroom(cfg: &Config) -> u64 {
    let lcores = cfg.dpdk.lcores.len().max(1) as u64;
    // An AF_XDP port may have more queues than lcores (`queue_count`, each with its ring).
    let queues: u64 = cfg
        .ports
        .iter()
        .map(|p| match &p.device {
            super::Device::Vdev(d) if super::af_xdp::is_af_xdp(&p.device) => {
                super::af_xdp::check(d, p.mtu).map_or(lcores, |a| u64::from(a.queue_count).max(lcores))
            }
            _ => lcores,
        })
        .sum();
    queues * RX_RING_MBUFS + HEADROOM_MBUFS
}

/// The pool size when `[dpdk] mbufs` is not set: [`mbufs_needed`] rounded up to a power of
/// two less one (DPDK's most efficient pool size), at least [`DEFAULT_MBUFS`], at most
/// what [`POOL_SHARE_PERCENT`] of the configured memory holds; [`DEFAULT_MBUFS`] without
/// listeners.
pub fn default_mbufs(cfg: &Config, memory_mb: u32) -> u32 {
    if cfg.listeners.is_empty() {
        // Services only (echo, sink): the long-standing default.
        return DEFAULT_MBUFS;
    }
    let fit = u64::from(memory_mb) * (1 << 20) * POOL_SHARE_PERCENT / 100 / MBUF_OBJECT_BYTES;
    let want = mbufs_needed(cfg).saturating_add(1).next_power_of_two() - 1;
    let mut n = want;
    while n > u64::from(DEFAULT_MBUFS) && n > fit {
        n /= 2; // 2^k - 1 -> 2^(k-1) - 1
    }
    u32::try_from(n.max(u64::from(DEFAULT_MBUFS))).unwrap_or(u32::MAX)
}

/// A warning when the pool cannot hold every admitted session busy at once, naming the
/// keys to change; `None` when it can.
pub fn pool_warning(cfg: &Config) -> Option<String> {
    let need = mbufs_needed(cfg);
    let have = u64::from(cfg.dpdk.mbufs);
    if cfg.listeners.is_empty() || have >= need {
        return None;
    }
    let sessions: u64 = cfg.listeners.iter().map(|l| u64::from(l.max_connections)).sum();
    let room = have.saturating_sub(rings_and_headroom(cfg)).min(have * LIMIT_SIXTEENTHS / 16);
    let fits = room / MBUFS_PER_SESSION;
    Some(format!(
        "dpdk.mbufs: {have} mbufs cannot hold the {sessions} sessions the listeners admit \
         (max_connections) busy at once: that needs about {need} ({MBUFS_PER_SESSION} per session \
         beside the RX rings and headroom, within the connections' memory limit of \
         {LIMIT_SIXTEENTHS}/16 of the pool), so past about {fits} busy sessions the lcores enter \
         memory pressure and hold each connection to its share; raise dpdk.mbufs (and \
         dpdk.memory_mb, {MBUF_OBJECT_BYTES} bytes per mbuf) or lower max_connections"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cfg(extra: &str) -> Config {
        let toml = format!(
            "[dpdk]\nlcores = [0]\nmemory_mode = \"no-huge\"\n{extra}\n\
             [[port]]\nname = \"front\"\ndevice = \"net_tap0\"\nipv4 = \"198.18.0.2/24\"\n\
             [[listener]]\nname = \"web\"\nlisten = \"198.18.0.2:80\"\npool = \"web\"\nmax_connections = 20000\n\
             [[pool]]\nname = \"web\"\nservers = [{{ addr = \"198.18.0.10:80\" }}]\n"
        );
        Config::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_default_pool_follows_max_connections_within_memory() {
        // 4096 (one RX ring) + 2 x 20 000 + 4096 = 48 192, but the 40 000 mbufs of the
        // sessions must fit 12/16 of the pool: 53 334 -> 65 535 mbufs (155 MiB) fit in 60 %
        // of 512 MiB.
        let c = cfg("memory_mb = 512");
        assert_eq!(mbufs_needed(&c), 53_334);
        assert_eq!(c.dpdk.mbufs, 65_535);
        assert_eq!(pool_warning(&c), None);
        // 60 % of 128 MiB holds 33 113 mbufs: 32 767, and the warning says how far that
        // goes.
        let c = cfg("memory_mb = 128");
        assert_eq!(c.dpdk.mbufs, 32_767);
        let w = pool_warning(&c).unwrap_or_default();
        assert!(w.contains("dpdk.mbufs: 32767 mbufs cannot hold the 20000 sessions"), "{w}");
        assert!(w.contains("past about 12287 busy sessions"), "{w}");
    }

    #[test]
    fn the_memory_limit_bounds_the_sessions_a_large_pool_holds() {
        // 100 000 sessions: 2 x 100 000 mbufs beside 8 192 of rings and headroom, but the
        // connections may hold 12/16 of the pool: 266 667 needed.
        let mut c = cfg("memory_mb = 512");
        c.listeners[0].max_connections = 100_000;
        assert_eq!(mbufs_needed(&c), 266_667);
        c.dpdk.mbufs = 262_143;
        let w = pool_warning(&c).unwrap_or_default();
        assert!(w.contains("past about 98303 busy sessions") && w.contains("12/16 of the pool"), "{w}");
    }

    #[test]
    fn an_explicit_pool_is_kept_and_warned_about_when_short() {
        let c = cfg("memory_mb = 512\nmbufs = 16383");
        assert_eq!(c.dpdk.mbufs, 16_383);
        assert!(pool_warning(&c).is_some());
        let c = cfg("memory_mb = 1024\nmbufs = 65535");
        assert_eq!(pool_warning(&c), None);
    }
}
