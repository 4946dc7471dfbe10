//! Turns the raw configuration tree into a [`Config`], checking every rule and
//! collecting every violation.

use std::path::PathBuf;

use config::{Value, ValueKind};
use tracing_subscriber::EnvFilter;

use super::parse::{self, CpuSet};
use super::raw::{as_string, as_uint, describe, Errors, Table};
use super::{
    Config, ConfigErrors, Device, DpdkConfig, LogConfig, LogFormat, Memory, MetricsConfig,
    Offloads, PortConfig,
};
use dataplane::impair::{DirectionParams, ImpairConfig, Probability};

/// The largest IP MTU whose frames (plus the 14-byte Ethernet header) fit one mbuf's
/// 2048-byte data room; above it frames take chained mbufs (`multi_seg`).
const MAX_SINGLE_MBUF_MTU: u32 = 2048 - 14;

/// DPDK's compile-time lcore limit (RTE_MAX_LCORE in Debian's build).
pub(crate) const MAX_LCORE: u32 = 128;

/// EAL options strait derives from the config itself; passing them again via
/// `extra_eal_args` would conflict.
const RESERVED_EAL_ARGS: &[(&str, &str)] = &[
    ("-l", "dpdk.lcores"),
    ("--lcores", "dpdk.lcores"),
    ("-c", "dpdk.lcores"),
    ("--main-lcore", "dpdk.lcores"),
    ("-m", "dpdk.memory_mb"),
    ("--no-huge", "dpdk.memory_mode"),
    ("--huge-dir", "dpdk.hugepage_dir"),
    ("--in-memory", "dpdk.memory_mode"),
    ("--no-shconf", "dpdk.memory_mode"),
    ("--no-telemetry", "always set"),
    ("--file-prefix", "set per process"),
    ("--no-pci", "[[port]] device"),
    ("-a", "[[port]] device"),
    ("--allow", "[[port]] device"),
    ("--vdev", "[[port]] device"),
];

/// Validates the whole tree.
pub(crate) fn config(root: &Value, cpus: &CpuSet) -> Result<Config, ConfigErrors> {
    let mut errs = Errors::default();
    let cfg = walk(root, cpus, &mut errs);
    match cfg {
        Some(cfg) if errs.0.is_empty() => Ok(cfg),
        _ => {
            if errs.0.is_empty() {
                // Unreachable by construction (every `None` records why); keep it an error.
                errs.push("config", "invalid configuration");
            }
            Err(ConfigErrors(errs.0))
        }
    }
}

fn walk(root: &Value, cpus: &CpuSet, errs: &mut Errors) -> Option<Config> {
    let top = Table::new(root, "", errs)?;
    top.deny_unknown(&["log", "dpdk", "tcp", "port", "app", "metrics", "listener", "pool", "admin", "shutdown"], errs);
    let empty = Value::new(None, ValueKind::Table(Default::default()));
    let log = log(top.get("log").unwrap_or(&empty), errs);
    let dpdk = dpdk(top.get("dpdk").unwrap_or(&empty), cpus, errs);
    let tcp = super::tcp::tcp(top.get("tcp").unwrap_or(&empty), errs);
    let ports = ports(top.get("port"), errs);
    if let (Some(d), Some(p)) = (&dpdk, &ports) {
        af_xdp_queues(p, d.lcores.len(), errs);
    }
    let apps = super::app::apps(top.get("app"), ports.as_deref(), errs);
    let metrics = metrics(top.get("metrics").unwrap_or(&empty), errs);
    let admin = super::ops::admin(top.get("admin").unwrap_or(&empty), errs);
    let shutdown = super::ops::shutdown(top.get("shutdown").unwrap_or(&empty), errs);
    let pools = super::proxy::pools(top.get("pool"), ports.as_deref(), errs);
    let listeners = super::proxy::listeners(top.get("listener"), ports.as_deref(), pools.as_deref(), apps.as_deref(), errs);
    // Without an explicit `[dpdk] mbufs`, the pool is sized from the sessions the
    // listeners admit (`pool::default_mbufs`).
    let mbufs_given = top.get("dpdk").is_some_and(|v| matches!(&v.kind, ValueKind::Table(m) if m.contains_key("mbufs")));
    let mut cfg = Config {
        log: log?,
        dpdk: dpdk?,
        tcp: tcp?,
        ports: ports?,
        apps: apps?,
        metrics: metrics?,
        listeners: listeners?,
        pools: pools?,
        admin: admin?,
        shutdown: shutdown?,
    };
    if !mbufs_given {
        let memory_mb = match cfg.dpdk.memory {
            Memory::NoHuge { size_mb } | Memory::Hugepages { size_mb, .. } => size_mb,
        };
        cfg.dpdk.mbufs = super::pool::default_mbufs(&cfg, memory_mb);
    }
    Some(cfg)
}

/// Reports `reason` at `key` and yields `None`.
pub(crate) fn fail<T>(errs: &mut Errors, key: String, reason: impl Into<String>) -> Option<T> {
    errs.push(key, reason);
    None
}

fn log(value: &Value, errs: &mut Errors) -> Option<LogConfig> {
    let t = Table::new(value, "log", errs)?;
    t.deny_unknown(&["format", "level", "access", "queue_lines"], errs);
    let access = t.bool_or("access", false, errs);
    let default_lines = u32::try_from(crate::logging::BUFFERED_LINES).unwrap_or(u32::MAX);
    let queue_lines = t.uint_or("queue_lines", default_lines, 64, 4 << 20, errs);
    let format = match t.string("format", errs).as_deref() {
        None if t.get("format").is_none() => Some(LogFormat::Human),
        None => None,
        Some("human") => Some(LogFormat::Human),
        Some("json") => Some(LogFormat::Json),
        Some(other) => t.fail(
            errs,
            "format",
            format!("{other:?} is not a log format (expected \"human\" or \"json\")"),
        ),
    };
    let level = match t.get("level") {
        None => Some("info".to_string()),
        Some(_) => t.string("level", errs).and_then(|l| {
            if l.trim().is_empty() {
                return t.fail(errs, "level", "must not be empty (e.g. \"info\")");
            }
            match EnvFilter::try_new(&l) {
                Ok(_) => Some(l),
                Err(e) => t.fail(
                    errs,
                    "level",
                    format!("{l:?} is not a valid filter directive: {e}"),
                ),
            }
        }),
    };
    Some(LogConfig {
        format: format?,
        level: level?,
        access: access?,
        queue_lines: queue_lines?,
    })
}

fn dpdk(value: &Value, cpus: &CpuSet, errs: &mut Errors) -> Option<DpdkConfig> {
    let t = Table::new(value, "dpdk", errs)?;
    t.deny_unknown(
        &[
            "lcores",
            "memory_mode",
            "memory_mb",
            "hugepage_dir",
            "mbufs",
            "mbuf_cache",
            "extra_eal_args",
            "rx_interrupts",
        ],
        errs,
    );
    let lcores = lcores(&t, cpus, errs);

    let size_mb = t.uint_or("memory_mb", 256, 64, u32::MAX, errs);
    let hugepages = match t.string("memory_mode", errs).as_deref() {
        None if t.get("memory_mode").is_none() => Some(true),
        None => None,
        Some("hugepages") => Some(true),
        Some("no-huge") => Some(false),
        Some(other) => t.fail(
            errs,
            "memory_mode",
            format!("{other:?} is not a memory mode (expected \"no-huge\" or \"hugepages\")"),
        ),
    };
    let dir = match t.get("hugepage_dir") {
        None => Some(None),
        Some(_) => t.string("hugepage_dir", errs).and_then(|d| {
            if hugepages == Some(false) {
                t.fail(
                    errs,
                    "hugepage_dir",
                    "only valid with memory_mode = \"hugepages\"",
                )
            } else if !d.starts_with('/') || d.contains('\0') {
                t.fail(
                    errs,
                    "hugepage_dir",
                    format!("{d:?} must be an absolute path"),
                )
            } else {
                Some(Some(PathBuf::from(d)))
            }
        }),
    };

    let mbufs = t.uint_or("mbufs", 8191, 1023, u32::MAX, errs);
    let mbuf_cache = t.uint_or("mbuf_cache", 256, 0, 512, errs);
    if let (Some(mbufs), Some(cache)) = (mbufs, mbuf_cache) {
        // Redundant with today's bounds (mbufs >= 1023, cache <= 512) but kept so that
        // loosening either bound cannot produce a pool DPDK refuses.
        if !cache_fits(mbufs, cache) {
            t.fail::<()>(
                errs,
                "mbuf_cache",
                format!(
                    "{cache} is too large for {mbufs} mbufs (must be <= mbufs / 1.5 = {})",
                    u64::from(mbufs) * 2 / 3
                ),
            );
        }
    }
    let extra = extra_eal_args(&t, errs);
    let rx_interrupts = t.bool_or("rx_interrupts", true, errs);

    if let (Some(mbufs), Some(size_mb)) = (mbufs, size_mb) {
        let need_mb = u64::from(mbufs) * super::pool::MBUF_OBJECT_BYTES / (1 << 20) + 1;
        if need_mb > u64::from(size_mb) {
            t.fail::<()>(
                errs,
                "mbufs",
                format!(
                    "{mbufs} mbufs take about {need_mb} MiB ({} bytes each), more than memory_mb = {size_mb}",
                    super::pool::MBUF_OBJECT_BYTES
                ),
            );
        }
    }
    let memory = match (hugepages?, size_mb?, dir?) {
        (false, size_mb, _) => Memory::NoHuge { size_mb },
        (true, size_mb, dir) => Memory::Hugepages { size_mb, dir },
    };
    Some(DpdkConfig {
        lcores: lcores?,
        memory,
        mbufs: mbufs?,
        mbuf_cache: mbuf_cache?,
        extra_eal_args: extra?,
        rx_interrupts: rx_interrupts?,
    })
}

/// DPDK's rte_mempool_create() rejects a cache whose flush threshold (1.5 x size)
/// exceeds the pool size.
pub(crate) fn cache_fits(mbufs: u32, cache: u32) -> bool {
    u64::from(cache) * 3 <= u64::from(mbufs) * 2
}

fn lcores(t: &Table<'_>, cpus: &CpuSet, errs: &mut Errors) -> Option<Vec<u32>> {
    let path = t.path_of("lcores");
    if t.get("lcores").is_none() {
        return Some(vec![0]);
    }
    let items = t.array("lcores", errs)?;
    if items.is_empty() {
        return t.fail(errs, "lcores", "must list at least one CPU");
    }
    let before = errs.0.len();
    let mut out: Vec<u32> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(id) = as_uint(item, &format!("{path}[{i}]"), 0, u32::MAX, errs) else {
            continue;
        };
        if id >= MAX_LCORE {
            t.fail::<()>(
                errs,
                "lcores",
                format!("lcore {id} is out of range (DPDK lcore ids are < {MAX_LCORE})"),
            );
        } else if !cpus.contains(id) {
            t.fail::<()>(
                errs,
                "lcores",
                format!("lcore {id} does not exist (this machine has CPUs {cpus})"),
            );
        } else if out.contains(&id) {
            t.fail::<()>(errs, "lcores", format!("lcore {id} is listed twice"));
        } else {
            out.push(id);
        }
    }
    (errs.0.len() == before).then_some(out)
}

fn extra_eal_args(t: &Table<'_>, errs: &mut Errors) -> Option<Vec<String>> {
    let path = t.path_of("extra_eal_args");
    let items = t.array("extra_eal_args", errs)?;
    let before = errs.0.len();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = format!("{path}[{i}]");
        let Some(arg) = as_string(item, &key, errs) else {
            continue;
        };
        // `--opt=value`, or a short option with its value glued on (`-l1`, `-m512`).
        let name = if arg.starts_with("--") {
            arg.split_once('=').map_or(arg.as_str(), |(n, _)| n)
        } else if arg.starts_with('-') && arg.len() > 2 && arg.is_char_boundary(2) {
            &arg[..2]
        } else {
            arg.as_str()
        };
        if arg.is_empty() {
            errs.push_for(item, &key, "must not be empty");
        } else if arg.contains('\0') {
            errs.push_for(item, &key, "must not contain a NUL character");
        } else if let Some((_, from)) = RESERVED_EAL_ARGS.iter().find(|(opt, _)| *opt == name) {
            errs.push_for(
                item,
                &key,
                format!("{name} is set by strait from the config ({from}); do not pass it here"),
            );
        } else {
            out.push(arg);
        }
    }
    (errs.0.len() == before).then_some(out)
}

fn ports(value: Option<&Value>, errs: &mut Errors) -> Option<Vec<PortConfig>> {
    let Some(value) = value else {
        return fail(errs, "port".into(), "at least one [[port]] is required");
    };
    let items = match &value.kind {
        ValueKind::Array(items) => items,
        ValueKind::Table(_) => {
            return fail(
                errs,
                "port".into(),
                "expected an array of tables: write [[port]], not [port]",
            );
        }
        _ => {
            return fail(
                errs,
                "port".into(),
                format!(
                    "expected an array of tables ([[port]]), found {}",
                    describe(value)
                ),
            );
        }
    };
    if items.is_empty() {
        return fail(errs, "port".into(), "at least one [[port]] is required");
    }
    let before = errs.0.len();
    let parsed: Vec<Option<PortConfig>> = items
        .iter()
        .enumerate()
        .map(|(i, v)| port(v, i, errs))
        .collect();

    // Cross-port rules: unique names, devices and addresses.
    for (i, p) in parsed.iter().enumerate() {
        let Some(p) = p else { continue };
        for (j, q) in parsed.iter().enumerate().take(i) {
            let Some(q) = q else { continue };
            if p.name == q.name {
                errs.push(
                    format!("port[{i}].name"),
                    format!("{:?} is already used by port[{j}]", p.name),
                );
            }
            if device_id(&p.device) == device_id(&q.device) {
                errs.push(
                    format!("port[{i}].device"),
                    format!("{:?} is already used by port[{j}]", device_id(&p.device)),
                );
            }
            if let (Some(a), Some(b)) = (p.ipv6.and_then(|v| v.addr), q.ipv6.and_then(|v| v.addr)) {
                if a == b {
                    errs.push(format!("port[{i}].ipv6"), format!("{a} is already used by port[{j}]"));
                }
            }
            if p.ipv4 == q.ipv4 {
                errs.push(
                    format!("port[{i}].ipv4"),
                    format!("{} is already used by port[{j}]", p.ipv4),
                );
            } else {
                // Overlapping subnets: which port an address is reached through would
                // depend on the order of the ports.
                let shorter = p.prefix_len.min(q.prefix_len);
                if parse::same_subnet(p.ipv4, shorter, q.ipv4) {
                    errs.push(
                        format!("port[{i}].ipv4"),
                        format!("{}/{} overlaps port[{j}]'s subnet {}/{}", p.ipv4, p.prefix_len, q.ipv4, q.prefix_len),
                    );
                }
            }
        }
    }
    // Offload and MTU combinations a device cannot honour.
    for (i, p) in parsed.iter().enumerate() {
        let Some(p) = p else { continue };
        if p.offloads.tso && !p.offloads.tcp_cksum {
            errs.push(
                format!("port[{i}].offloads.tso"),
                "TSO needs tcp_checksum = true (the device writes each segment's TCP checksum); set both or neither",
            );
        }
        if u32::from(p.mtu) > MAX_SINGLE_MBUF_MTU && !p.offloads.multi_seg {
            errs.push(
                format!("port[{i}].mtu"),
                format!(
                    "{} needs multi_seg = true in [port.offloads]: a frame above {MAX_SINGLE_MBUF_MTU} + 14 bytes does not fit one 2048-byte mbuf",
                    p.mtu
                ),
            );
        }
    }
    // The mbuf pool is packed for AF_XDP (dataplane::dpdk::MemoryLayout): a buffer may
    // span two pages, which a device DMAing through physical addresses cannot take.
    let af_xdp = parsed.iter().flatten().any(|p| super::af_xdp::is_af_xdp(&p.device));
    if af_xdp {
        for (i, p) in parsed.iter().enumerate() {
            if let Some(PortConfig { device: Device::Pci(pci), .. }) = p {
                errs.push(
                    format!("port[{i}].device"),
                    format!("PCI device {pci:?} cannot share the mbuf pool with a net_af_xdp port (the pool is packed for the AF_XDP UMEM; DMA needs IOVA-contiguous buffers)"),
                );
            }
        }
    }
    if errs.0.len() != before {
        return None;
    }
    parsed.into_iter().collect()
}

/// Whole queues per lcore on every AF_XDP port: the port opens `queue_count` sockets and
/// lcore `i` of `n` polls queues `i`, `i + n`, `i + 2n`...; a remainder would leave some
/// lcores more queues than others. More queues than lcores hold more frames while an lcore
/// waits for its CPU (the PMD keeps 2 048 buffers in each queue's fill ring).
fn af_xdp_queues(ports: &[PortConfig], lcores: usize, errs: &mut Errors) {
    for (i, p) in ports.iter().enumerate() {
        let Device::Vdev(d) = &p.device else { continue };
        if !super::af_xdp::is_af_xdp(&p.device) {
            continue;
        }
        if let Ok(args) = super::af_xdp::check(d, p.mtu) {
            let q = args.queue_count as usize;
            if q < lcores || !q.is_multiple_of(lcores.max(1)) {
                errs.push(
                    format!("port[{i}].device"),
                    format!(
                        "queue_count={} but dpdk.lcores has {lcores} lcore(s): an AF_XDP port needs a whole number of queues per lcore (queue_count={lcores}, {}, ..., and that many queues on {:?})",
                        args.queue_count,
                        2 * lcores,
                        args.iface
                    ),
                );
            }
        }
    }
}

/// What identifies a device to DPDK: the PCI address, or the vdev's instance name.
fn device_id(d: &Device) -> &str {
    match d {
        Device::Pci(s) => s,
        Device::Vdev(s) => s.split(',').next().unwrap_or(s),
    }
}

fn port(value: &Value, index: usize, errs: &mut Errors) -> Option<PortConfig> {
    let path = format!("port[{index}]");
    let t = Table::new(value, &path, errs)?;
    t.deny_unknown(
        &[
            "name", "device", "ipv4", "gateway", "mtu", "mac", "offloads", "impair",
            "arp_resolutions_per_second", "ipv6", "ipv6_gateway", "ipv6_accept_ra", "ipv6_dad_transmits",
        ],
        errs,
    );
    let before = errs.0.len();

    let name = t
        .required_string("name", errs)
        .and_then(|n| match parse::port_name(&n) {
            Ok(()) => Some(n),
            Err(why) => t.fail(errs, "name", why),
        });

    let device = t.required_string("device", errs).and_then(|d| {
        if d.starts_with("net_") {
            match parse::vdev(&d) {
                Ok(()) => Some(Device::Vdev(d)),
                Err(why) => t.fail(errs, "device", why),
            }
        } else if parse::is_pci_address(&d) {
            Some(Device::Pci(d.to_ascii_lowercase()))
        } else {
            t.fail(errs, "device",
                format!("{d:?} is neither a DPDK vdev (net_<driver>[,key=value...]) nor a PCI address (DDDD:BB:DD.F)"),
            )
        }
    });

    let addr = t
        .required_string("ipv4", errs)
        .and_then(|s| match parse::ipv4_with_prefix(&s) {
            Ok(a) => Some(a),
            Err(why) => t.fail(errs, "ipv4", why),
        });

    let gateway = t
        .string("gateway", errs)
        .and_then(|s| match parse::ipv4(&s) {
            Ok(gw) => Some(gw),
            Err(why) => t.fail(errs, "gateway", why),
        });
    if let (Some(gw), Some((ip, len))) = (gateway, addr) {
        if !parse::same_subnet(ip, len, gw) {
            t.fail::<()>(
                errs,
                "gateway",
                format!("{gw} is not inside the port's subnet {ip}/{len}"),
            );
        } else if gw == ip {
            t.fail::<()>(errs, "gateway", format!("{gw} is the port's own address"));
        } else if let Err(why) = parse::host_address(gw, len) {
            t.fail::<()>(errs, "gateway", why);
        }
    }

    let mtu = t
        .uint_or("mtu", 1500, 576, 9000, errs)
        .and_then(|m| u16::try_from(m).ok());

    if let (Some(Device::Vdev(d)), Some(mtu)) = (&device, mtu) {
        if super::af_xdp::is_af_xdp(&Device::Vdev(d.clone())) {
            if let Err(why) = super::af_xdp::check(d, mtu) {
                t.fail::<()>(errs, "device", why);
            }
        }
    }

    let v6 = super::ipv6::port(&t, mtu, errs);

    let arp_rate = t.uint_or(
        "arp_resolutions_per_second",
        dataplane::net::NeighborConfig::default().resolutions_per_second,
        1,
        1_000_000,
        errs,
    );

    let mac = t.string("mac", errs).and_then(|s| match parse::mac(&s) {
        Ok(m) => Some(m),
        Err(why) => t.fail(errs, "mac", why),
    });

    let offloads = match t.get("offloads") {
        None => Some(Offloads::ALL),
        Some(v) => offloads(v, &t.path_of("offloads"), errs),
    };
    let impair = match t.get("impair") {
        None => Some(ImpairConfig::default()),
        Some(v) => impair(v, &t.path_of("impair"), errs),
    };

    if errs.0.len() != before {
        return None;
    }
    let (ipv4, prefix_len) = addr?;
    Some(PortConfig {
        name: name?,
        device: device?,
        ipv4,
        prefix_len,
        gateway,
        mtu: mtu?,
        mac,
        offloads: offloads?,
        impair: impair?,
        arp_resolutions_per_second: arp_rate?,
        ipv6: v6,
    })
}

/// `[port.impair]`: seeded drop/reorder/duplicate/corrupt/delay of the port's frames.
/// Missing keys mean no impairment of that kind; `seed` defaults to 1.
fn impair(value: &Value, path: &str, errs: &mut Errors) -> Option<ImpairConfig> {
    let t = Table::new(value, path, errs)?;
    t.deny_unknown(&["seed", "rx_drop", "tx_drop", "reorder", "duplicate", "corrupt", "delay_ms"], errs);
    // Evaluate every key before combining, so that all bad ones are reported.
    let seed = t.uint_or("seed", 1, 0, u32::MAX, errs);
    let rx_drop = probability(&t, "rx_drop", errs);
    let tx_drop = probability(&t, "tx_drop", errs);
    let reorder = probability(&t, "reorder", errs);
    let duplicate = probability(&t, "duplicate", errs);
    let corrupt = probability(&t, "corrupt", errs);
    let delay_ms = t.uint_or("delay_ms", 0, 0, 10_000, errs);
    let both = DirectionParams {
        drop: Probability::ZERO,
        reorder: reorder?,
        duplicate: duplicate?,
        corrupt: corrupt?,
        delay: std::time::Duration::from_millis(u64::from(delay_ms?)),
    };
    Some(ImpairConfig {
        seed: u64::from(seed?),
        rx: DirectionParams { drop: rx_drop?, ..both },
        tx: DirectionParams { drop: tx_drop?, ..both },
    })
}

/// The probability under `key` (a number within 0..=1), or zero when absent. Strings
/// from the environment are parsed.
fn probability(t: &Table<'_>, key: &str, errs: &mut Errors) -> Option<Probability> {
    let Some(v) = t.get(key) else { return Some(Probability::ZERO) };
    let x = match &v.kind {
        ValueKind::Float(f) => Some(*f),
        ValueKind::I64(n) => Some(*n as f64),
        ValueKind::U64(n) => Some(*n as f64),
        ValueKind::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match x.and_then(Probability::from_f64) {
        Some(p) => Some(p),
        None => t.fail(errs, key, format!("expected a probability between 0 and 1, found {}", describe(v))),
    }
}

fn offloads(value: &Value, path: &str, errs: &mut Errors) -> Option<Offloads> {
    let t = Table::new(value, path, errs)?;
    t.deny_unknown(
        &[
            "tso",
            "ipv4_checksum",
            "tcp_checksum",
            "udp_checksum",
            "multi_seg",
            "rss",
            "rx_checksum",
        ],
        errs,
    );
    // Evaluate every switch before combining, so that all mistyped ones are reported.
    let tso = t.bool_or("tso", true, errs);
    let ipv4_checksum = t.bool_or("ipv4_checksum", true, errs);
    let tcp_checksum = t.bool_or("tcp_checksum", true, errs);
    let udp_checksum = t.bool_or("udp_checksum", true, errs);
    let multi_seg = t.bool_or("multi_seg", true, errs);
    let rss = t.bool_or("rss", true, errs);
    let rx_checksum = t.bool_or("rx_checksum", true, errs);
    Some(Offloads {
        tso: tso?,
        ipv4_cksum: ipv4_checksum?,
        tcp_cksum: tcp_checksum?,
        udp_cksum: udp_checksum?,
        multi_seg: multi_seg?,
        rss: rss?,
        rx_cksum: rx_checksum?,
    })
}

/// `[metrics]`: where the Prometheus endpoint listens (a kernel address, off the data
/// path); absent means no endpoint.
fn metrics(value: &Value, errs: &mut Errors) -> Option<MetricsConfig> {
    let t = Table::new(value, "metrics", errs)?;
    t.deny_unknown(&["listen"], errs);
    if t.get("listen").is_none() {
        return Some(MetricsConfig { listen: None });
    }
    let listen = t.string("listen", errs)?;
    match listen.trim().parse::<std::net::SocketAddr>() {
        Ok(addr) => Some(MetricsConfig { listen: Some(addr) }),
        Err(_) => t.fail(errs, "listen", format!("{listen:?} is not an address and port (e.g. \"127.0.0.1:9100\")")),
    }
}
