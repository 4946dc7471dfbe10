//! Strait's configuration: the typed, validated result of a TOML file layered with
//! `STRAIT_*` environment overrides.
//!
//! ```toml
//! [log]                     # optional
//! format = "human"          # "human" | "json"
//! level = "info"            # tracing EnvFilter directive(s)
//!
//! access = false            # one line per closed proxy session (target strait::access, at info whatever `level` says)
//! queue_lines = 65536       # lines held while stderr is slow (64..=4194304); beyond, dropped and counted
//!
//! [dpdk]                    # optional, all keys have defaults
//! lcores = [0]
//! memory_mode = "hugepages" # "no-huge" | "hugepages"
//! memory_mb = 256
//! hugepage_dir = "/dev/hugepages"   # only with hugepages
//! mbufs = 8191             # default: sized from the listeners' max_connections (see `pool`)
//! mbuf_cache = 256
//! extra_eal_args = []
//! rx_interrupts = true      # idle lcores block on RX interrupts where the PMD has them
//!
//! [tcp]                     # optional, all keys have defaults (every connection)
//! congestion = "cubic"      # "cubic" | "newreno"
//! min_rto_ms = 200          # 1..=120000
//! sndbuf = 1048576          # bytes, 16 KiB..=1 GiB
//! rcvbuf = 1048576          # bytes, 16 KiB..=1 GiB
//! initial_cwnd = 10         # segments, 1..=100
//! tail_loss_probes = true
//! orphan_retries = 8        # 1..=15: unanswered retransmissions/probes of a closed connection
//! max_orphans = 4096        # 0..=1000000 per lcore: closed connections still sending
//! max_tw_buckets = 65536    # 0..=1000000 per lcore: TIME-WAIT entries (then skipped)
//! syn_backlog = 4096        # 1..=1000000 per listener and lcore: half-open connections
//! synack_retries = 5        # 0..=15: SYN-ACK retransmissions before a half-open one is dropped
//! accept_backlog = 4096     # 1..=1000000 per listener and lcore: established, not yet taken
//! syncookies = true         # SYN cookies once the SYN queue is full
//! mtu_probing = 1           # 0 | 1 | 2: PLPMTUD off, after a black hole (4 RTOs in a row), always
//! base_mss = 1024           # 48..=65495: MSS probing starts from / a black hole falls back to
//!
//! [[port]]                  # at least one
//! name = "tap0"
//! device = "net_tap0,iface=strait0" # vdev, or PCI "0000:01:00.0"
//! ipv4 = "198.18.0.2/24"
//! gateway = "198.18.0.1"    # optional
//! ipv6 = "2001:db8::2/64"   # optional: IPv6 beside IPv4 (global or unique local; the
//!                           # link-local address comes from the MAC); needs mtu >= 1280
//! ipv6_gateway = "fe80::1"  # optional: IPv6 router, link-local or on the prefix
//! ipv6_accept_ra = true     # default: default routers and on-link prefixes from router
//!                           # advertisements (used when there is no ipv6_gateway)
//! ipv6_dad_transmits = 1    # 0..=10: duplicate address detection probes, 1 s apart
//! mtu = 1500
//! mac = "02:00:00:00:00:01" # optional
//! arp_resolutions_per_second = 100 # 1..=1000000: new resolutions of unpinned addresses
//! [port.offloads]           # optional, each default true
//! tso = false
//! [port.impair]             # optional, off by default: seeded impairment for tests
//! seed = 1
//! rx_drop = 0.05            # probabilities, 0..=1
//! tx_drop = 0.05
//! reorder = 0.01            # reorder, duplicate, corrupt and delay apply both ways
//! duplicate = 0.0
//! corrupt = 0.0
//! delay_ms = 0
//!
//! [[app]]                   # optional, any number: services on the TCP stack
//! kind = "echo"             # "echo" (write back what is read) | "sink" (discard)
//! listen = "198.18.0.2:7"   # a port's address or 0.0.0.0, and a TCP port; IPv6 in
//!                           # brackets: "[2001:db8::2]:7", "[::]:7"
//! max_connections = 10000   # 1..=1000000: connections at once, more are reset
//! idle_timeout_ms = 60000   # 1..=86400000: a connection moving no byte this long is reset
//! ```
//!
//! Environment variables override file values: `STRAIT_` + the key path with `__`
//! between levels, e.g. `STRAIT_LOG__LEVEL=debug`, `STRAIT_DPDK__LCORES=0,1`. Only names
//! with a `__` are overrides: other `STRAIT_*` variables (`STRAIT_HUGEPAGES`, read by the
//! hugepage unit) are left alone. A key inside an entry of an array of tables
//! (`[[port]]`, `[[listener]]`, `[[pool]]`, `[[app]]`) names the entry by its index:
//! `STRAIT_PORT__0__MTU=1400` ([`env`]).
//!
//! Every problem is reported (see [`ConfigErrors`]), each naming its key path.

pub mod af_xdp;
mod app;
pub mod env;
mod ipv6;
mod ops;
mod parse;
pub mod pool;
mod proxy;
mod raw;
mod spec;
mod tcp;
mod validate;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use dataplane::app::{AppKind, AppSpec};
pub use dataplane::dpdk::Offloads;
pub use dataplane::impair::ImpairConfig;
pub use ops::{AdminConfig, HealthCheckConfig, PassiveHealthConfig, ShutdownConfig};
pub use parse::CpuSet;
pub use proxy::{ListenerConfig, PoolConfig, ServerConfig};
pub use tcp::TcpSection;
pub use dataplane::app::proxy::Algorithm;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Logging (`[log]`).
    pub log: LogConfig,
    /// DPDK EAL and memory (`[dpdk]`).
    pub dpdk: DpdkConfig,
    /// The TCP stack's settings for every connection (`[tcp]`).
    pub tcp: TcpSection,
    /// The network ports (`[[port]]`), at least one.
    pub ports: Vec<PortConfig>,
    /// Services on the TCP stack (`[[app]]`), possibly none.
    pub apps: Vec<AppSpec>,
    /// Proxy listeners (`[[listener]]`), possibly none.
    pub listeners: Vec<ListenerConfig>,
    /// Backend server pools (`[[pool]]`), possibly none.
    pub pools: Vec<PoolConfig>,
    /// The Prometheus endpoint (`[metrics]`).
    pub metrics: MetricsConfig,
    /// The admin API (`[admin]`).
    pub admin: AdminConfig,
    /// Shutdown (`[shutdown]`): the drain deadline.
    pub shutdown: ShutdownConfig,
}

/// `[metrics]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsConfig {
    /// Kernel address the Prometheus endpoint listens on (`listen = "127.0.0.1:9100"`);
    /// `None`: no endpoint.
    pub listen: Option<std::net::SocketAddr>,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive string, e.g. `info` or
    /// `info,dataplane::tcp=debug`. Already validated.
    pub level: String,
    /// One access-log line per closed proxy session (target `strait::access`), in
    /// `format` (`access = true`; default off).
    pub access: bool,
    /// Lines held for the writer thread while stderr is slow; beyond, lines are dropped
    /// and counted (`queue_lines`, default [`crate::logging::BUFFERED_LINES`]).
    pub queue_lines: u32,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[dpdk]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkConfig {
    /// CPU ids to run on; the first is DPDK's main lcore. Non-empty, distinct, online.
    pub lcores: Vec<u32>,
    /// How DPDK gets its memory.
    pub memory: Memory,
    /// Mbufs in the packet pool (>= 1023). Unset: sized from the sessions the listeners
    /// admit, within the memory ([`pool::default_mbufs`]); `check-config` warns when a pool
    /// cannot hold them all busy ([`pool::pool_warning`]).
    pub mbufs: u32,
    /// Per-lcore mbuf cache size (<= 512 and <= mbufs / 1.5).
    pub mbuf_cache: u32,
    /// Extra EAL arguments appended verbatim.
    pub extra_eal_args: Vec<String>,
    /// Idle lcores block until a frame arrives (RX queue interrupts) where every port's
    /// PMD offers them; otherwise, or when false, they nap between polls.
    pub rx_interrupts: bool,
}

/// DPDK memory mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Memory {
    /// `--no-huge`: ordinary pages (no hugepage setup needed; for tests and demos).
    NoHuge {
        /// Memory to reserve, MiB.
        size_mb: u32,
    },
    /// Hugepages (production).
    Hugepages {
        /// Memory to reserve, MiB.
        size_mb: u32,
        /// Hugetlbfs mount to use, if not the default one.
        dir: Option<PathBuf>,
    },
}

impl Memory {
    /// The reserved memory, MiB.
    pub fn size_mb(&self) -> u32 {
        match self {
            Memory::NoHuge { size_mb } | Memory::Hugepages { size_mb, .. } => *size_mb,
        }
    }
}

/// One `[[port]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Unique name (`[a-z0-9_-]`, <= 32 characters).
    pub name: String,
    /// The DPDK device.
    pub device: Device,
    /// The port's IPv4 address.
    pub ipv4: Ipv4Addr,
    /// The subnet's prefix length (1..=32).
    pub prefix_len: u8,
    /// Default gateway, inside the subnet.
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU (576..=9000).
    pub mtu: u16,
    /// MAC address to use instead of the device's (unicast).
    pub mac: Option<[u8; 6]>,
    /// Offloads the operator allows (`[port.offloads]`, each on by default; the device
    /// grants what it supports).
    pub offloads: Offloads,
    /// Seeded impairment of the port's frames (`[port.impair]`, for tests); off by default.
    pub impair: ImpairConfig,
    /// New ARP resolutions of addresses that are neither the gateway nor a server, per
    /// second at most (`arp_resolutions_per_second`, default 100): replies to spoofed
    /// on-subnet sources cannot flood the neighbour table. Refusals are counted
    /// (`arp_resolution_rate_limited`).
    pub arp_resolutions_per_second: u32,
    /// IPv6 beside IPv4 (`ipv6 = "addr/len"`, `ipv6_gateway`), with the link-local
    /// address derived from the MAC; `None` for an IPv4-only port.
    pub ipv6: Option<dataplane::net::Ipv6Config>,
}

/// A DPDK device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A PCI address `DDDD:BB:DD.F` (lower case).
    Pci(String),
    /// A virtual device, the full `net_tap0,iface=strait0` string.
    Vdev(String),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Pci(s) | Device::Vdev(s) => f.write_str(s),
        }
    }
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// Key path (`dpdk.lcores`, `port[0].ipv4`), or the file for file-level problems.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Every problem found in a configuration (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One `error: key: reason` line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where environment overrides come from.
enum EnvSource {
    /// None at all.
    Off,
    /// The process environment.
    Process,
    /// A given map (tests).
    #[cfg(test)]
    Map(Vec<(String, String)>),
}

impl Config {
    /// Loads `path` (TOML), applies `STRAIT_*` environment overrides and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = config::File::from(path)
            .format(config::FileFormat::Toml)
            .required(true);
        Self::build(file, EnvSource::Process, &CpuSet::online())
    }

    /// Like [`Config::load`], for `check-config`: lcores are validated as DPDK lcore ids
    /// but not against this machine's CPUs, so a configuration for a bigger machine can be
    /// checked on a smaller one; [`Config::missing_lcores`] tells which are absent here
    /// (`run` refuses them).
    pub fn load_for_any_machine(path: &Path) -> Result<Config, ConfigErrors> {
        let file = config::File::from(path)
            .format(config::FileFormat::Toml)
            .required(true);
        Self::build(file, EnvSource::Process, &CpuSet::from_ids(0..validate::MAX_LCORE))
    }

    /// The configured lcores this machine does not have online.
    pub fn missing_lcores(&self) -> Vec<u32> {
        let online = CpuSet::online();
        self.dpdk.lcores.iter().copied().filter(|&c| !online.contains(c)).collect()
    }

    /// Parses and validates TOML text, without environment overrides.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigErrors> {
        Self::from_toml_str_for(s, &CpuSet::online())
    }

    /// Like [`Config::from_toml_str`], validating lcores against `cpus` instead of this
    /// machine's online CPUs.
    pub fn from_toml_str_for(s: &str, cpus: &CpuSet) -> Result<Config, ConfigErrors> {
        Self::build(
            config::File::from_str(s, config::FileFormat::Toml),
            EnvSource::Off,
            cpus,
        )
    }

    fn build<S>(file: S, env: EnvSource, cpus: &CpuSet) -> Result<Config, ConfigErrors>
    where
        S: config::Source + Send + Sync + 'static,
    {
        let mut builder = config::Config::builder().add_source(file);
        let env_source = || {
            config::Environment::with_prefix("STRAIT")
                .prefix_separator("_")
                .separator("__")
                .ignore_empty(true)
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("dpdk.lcores")
                .with_list_parse_key("dpdk.extra_eal_args")
        };
        let vars: Option<Vec<(String, String)>> = match env {
            EnvSource::Off => None,
            EnvSource::Process => Some(std::env::vars().collect()),
            #[cfg(test)]
            EnvSource::Map(vars) => Some(vars),
        };
        let mut entries = Vec::new();
        if let Some(vars) = vars {
            let overrides = env::env_overrides(vars).map_err(ConfigErrors)?;
            builder = builder.add_source(env_source().source(Some(overrides.plain.into_iter().collect())));
            entries = overrides.entries;
        }
        let mut tree = builder.build().map_err(|e| {
            let key = match &e {
                config::ConfigError::FileParse { uri: Some(uri), .. } => uri.clone(),
                _ => "config".to_string(),
            };
            let reason = match &e {
                config::ConfigError::FileParse { cause, .. } => {
                    cause.to_string().trim().replace('\n', "\n  ")
                }
                other => other.to_string(),
            };
            ConfigErrors(vec![ConfigError { key, reason }])
        })?;
        env::apply_entries(&mut tree.cache, &entries).map_err(ConfigErrors)?;
        validate::config(&tree.cache, cpus)
    }

    /// One line describing the configuration, for `check-config` and start-up logs.
    pub fn summary(&self) -> String {
        let ports: Vec<String> = self
            .ports
            .iter()
            .map(|p| {
                let v6 = match p.ipv6.and_then(|v| v.addr.map(|a| (a, v.prefix_len))) {
                    Some((a, len)) => format!(" {a}/{len}"),
                    None => String::new(),
                };
                format!(
                    "{} {} {}/{}{v6} mtu {}",
                    p.name, p.device, p.ipv4, p.prefix_len, p.mtu
                )
            })
            .collect();
        let memory = match &self.dpdk.memory {
            Memory::NoHuge { size_mb } => format!("no-huge {size_mb} MiB"),
            Memory::Hugepages { size_mb, .. } => format!("hugepages {size_mb} MiB"),
        };
        let lcores: Vec<String> = self.dpdk.lcores.iter().map(u32::to_string).collect();
        let format = match self.log.format {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        };
        let apps: Vec<String> = self.apps.iter().map(|a| format!("{} {}", a.kind.name(), a.listen)).collect();
        let apps = if apps.is_empty() { String::new() } else { format!("; apps [{}]", apps.join(", ")) };
        format!(
            "{} port{} [{}]{}; lcores [{}]; memory {}; {} mbufs (cache {}); log {} ({})",
            self.ports.len(),
            if self.ports.len() == 1 { "" } else { "s" },
            ports.join(", "),
            apps,
            lcores.join(","),
            memory,
            self.dpdk.mbufs,
            self.dpdk.mbuf_cache,
            self.log.level,
            format
        )
    }
}

impl DpdkConfig {
    /// The EAL argument vector (argv\[0\] included) for this configuration and `ports`:
    /// lcores and main lcore, memory (`--no-huge --no-shconf`, or hugepages `--in-memory`), `--no-telemetry`, the file prefix, the
    /// PCI allow-list (or `--no-pci` when there is no PCI device), one `--vdev` per
    /// virtual device, then `extra_eal_args`.
    pub fn eal_args(&self, ports: &[PortConfig], file_prefix: &str) -> Vec<String> {
        let lcores: Vec<String> = self.lcores.iter().map(u32::to_string).collect();
        let mut args = vec!["strait".to_string()];
        if let Some(main) = self.lcores.first() {
            args.extend([
                "-l".to_string(),
                lcores.join(","),
                "--main-lcore".to_string(),
                main.to_string(),
            ]);
        }
        match &self.memory {
            Memory::NoHuge { size_mb } => {
                // DPDK 22.11 refuses `--in-memory` with `--no-huge`; `--no-shconf` keeps
                // the process from creating shared runtime files all the same.
                args.extend([
                    "--no-huge".to_string(),
                    "-m".to_string(),
                    size_mb.to_string(),
                    "--no-shconf".to_string(),
                ]);
            }
            Memory::Hugepages { size_mb, dir } => {
                if let Some(dir) = dir {
                    args.extend(["--huge-dir".to_string(), dir.display().to_string()]);
                }
                args.extend(["-m".to_string(), size_mb.to_string(), "--in-memory".to_string()]);
            }
        }
        args.extend([
            "--no-telemetry".to_string(),
            "--file-prefix".to_string(),
            file_prefix.to_string(),
        ]);
        if !ports.iter().any(|p| matches!(p.device, Device::Pci(_))) {
            args.push("--no-pci".to_string());
        }
        for p in ports {
            if let Device::Pci(addr) = &p.device {
                args.extend(["-a".to_string(), addr.clone()]);
            }
        }
        for p in ports {
            if let Device::Vdev(s) = &p.device {
                // An AF_XDP port of several queues is one device per queue.
                let devices = if af_xdp::is_af_xdp(&p.device) { af_xdp::queue_vdevs(s) } else { vec![s.clone()] };
                args.extend(devices.into_iter().map(|d| format!("--vdev={d}")));
            }
        }
        args.extend(self.extra_eal_args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests;
