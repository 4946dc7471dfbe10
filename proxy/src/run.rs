//! `strait run`: bring up DPDK, the ports and one loop per lcore, then serve until told
//! to stop (SIGTERM or SIGINT).
//!
//! Start-up order: EAL -> mbuf pool -> ports (offloads negotiated, queues = lcores) ->
//! one [`Worker`] per lcore (workers on remote lcores, the first on the main lcore in this
//! thread, launched and stopped by [`Lcores`]) -> gratuitous ARP -> "strait ready".
//! Shutdown reverses it: raise the stop flag, wait for every lcore, log the final counters,
//! stop and close the ports, free the pool, clean up the EAL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dataplane::app::proxy::admin::{ProxyCommand, ProxyHandle};
use dataplane::app::proxy::{ProxyError, ProxyShared};
use dataplane::control;
use dataplane::app::AppSpec;
use dataplane::dpdk::{tsc_hz, DpdkError, Eal, Mempool, Offloads, Port, PortSettings};
use dataplane::lcore::{mesh, LcoreStats, Lcores, PortQueue, SteeringLinks, SteeringMode, TcpSetup, TscClock, Worker, WorkerReport, INBOX_CAPACITY};
use dataplane::rss::{symmetric_key, FlowSteering, DEFAULT_RETA_SIZE, KEY_LEN};
use dataplane::net::{Interface, InterfaceConfig, NeighborConfig};
use dataplane::tcp::StackError;
use dataplane::wire::ethernet::EthernetAddress;
use crate::control::{ControlPlane, Sources};
use strait::admin::server::AdminServer;
use strait::admin::{Ops, SignalThread};
use strait::config::{Config, Device, Memory, OffloadSwitches, PortConfig};

/// Why `strait run` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// DPDK refused something; the operation is named in the message.
    #[error("DPDK: {0}")]
    Dpdk(#[from] DpdkError),
    /// A configured device did not show up as a DPDK port.
    #[error("port `{port}`: device `{device}` is not a DPDK port ({source})")]
    NoSuchDevice {
        /// The port's configured name.
        port: String,
        /// The device string.
        device: String,
        /// What DPDK said.
        source: DpdkError,
    },
    /// A port could not be configured or started.
    #[error("port `{port}`: {source}")]
    Port {
        /// The port's configured name.
        port: String,
        /// What DPDK said.
        source: DpdkError,
    },
    /// Signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    /// The control plane (metrics endpoint, watchdog thread) could not start.
    #[error("control plane: {0}")]
    Control(std::io::Error),
    /// An AF_XDP port cannot work on this host as configured.
    #[error("port `{port}`: {reason}")]
    AfXdp {
        /// The port's configured name.
        port: String,
        /// What is missing, and what to do.
        reason: String,
    },
    /// An lcore loop ended abnormally.
    #[error("lcore {0} stopped abnormally")]
    Lcore(u32),
    /// No key for the TCP ISN generator and SYN cookies could be read.
    #[error("reading a random key from /dev/urandom: {0}")]
    Random(std::io::Error),
    /// A service could not start on an lcore.
    #[error("lcore {lcore}: starting the services: {source}")]
    Apps {
        /// The lcore.
        lcore: u32,
        /// What the TCP engine said.
        source: StackError,
    },
    /// The proxy's listeners could not start on an lcore.
    #[error("lcore {lcore}: starting the proxy: {source}")]
    Proxy {
        /// The lcore.
        lcore: u32,
        /// What went wrong.
        source: ProxyError,
    },
}

/// Mbuf data room: DPDK's default (2048 bytes of data + 128 of headroom).
const MBUF_DATA_ROOM: u16 = 2048 + 128;
/// Descriptors per TX ring (the adapter clamps to what the device allows).
const RING_DESCRIPTORS: u16 = 1024;
/// Descriptors per RX ring at most. An RX ring absorbs the bursts that arrive while the
/// lcore is busy (or preempted); with thousands of connections a 1024-entry AF_XDP ring
/// overflowed: the veth dropped 17 % of the frames for the socket (`rx_queue_0_drops`,
/// 10 000 keep-alive clients, deploy/bench/run.sh conc10000), each a retransmission.
const RX_RING_DESCRIPTORS: u16 = 4096;

/// RX descriptors per ring: [`RX_RING_DESCRIPTORS`], fewer for a small pool so that the
/// RX rings (which PMDs like `net_tap` and `net_af_xdp` fill with mbufs up front) take at
/// most a quarter of it; a power of two, at least 64.
fn ring_descriptors(mbufs: u32, rx_rings: u16) -> u16 {
    let share = mbufs / 4 / u32::from(rx_rings.max(1));
    let pow2 = if share == 0 { 0 } else { 1u32 << (31 - share.leading_zeros()) };
    u16::try_from(pow2.clamp(64, u32::from(RX_RING_DESCRIPTORS))).unwrap_or(RX_RING_DESCRIPTORS)
}

/// The DPDK device name of a configured device: the vdev's driver instance name (the
/// part before the first comma) or the PCI address.
fn device_name(device: &Device) -> &str {
    match device {
        Device::Vdev(s) => s.split(',').next().unwrap_or(s),
        Device::Pci(s) => s,
    }
}

fn wanted_offloads(s: &OffloadSwitches) -> Offloads {
    Offloads {
        tso: s.tso,
        ipv4_cksum: s.ipv4_checksum,
        tcp_cksum: s.tcp_checksum,
        udp_cksum: s.udp_checksum,
        multi_seg: s.multi_seg,
        rss: s.rss,
        rx_cksum: s.rx_checksum,
    }
}

fn describe(o: &Offloads) -> String {
    let names = [
        (o.tso, "tso"),
        (o.ipv4_cksum, "ipv4-cksum"),
        (o.tcp_cksum, "tcp-cksum"),
        (o.udp_cksum, "udp-cksum"),
        (o.multi_seg, "multi-seg"),
        (o.rss, "rss"),
        (o.rx_cksum, "rx-cksum"),
    ];
    let on: Vec<&str> = names.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
    if on.is_empty() {
        "none".to_string()
    } else {
        on.join(",")
    }
}

/// A configured port, up: one DPDK device with a queue per lcore, or (an AF_XDP port of
/// several queues, see `strait::config::af_xdp::queue_vdevs`) one device per lcore.
struct UpPort {
    cfg: PortConfig,
    devices: Vec<Arc<Port>>,
    mac: EthernetAddress,
}

impl UpPort {
    /// The first (or only) device.
    fn port(&self) -> &Port {
        &self.devices[0]
    }

    /// The device and queue lcore number `index` owns.
    fn queue_for(&self, index: usize) -> (Arc<Port>, u16) {
        match self.devices.get(index) {
            Some(d) if self.devices.len() > 1 => (Arc::clone(d), 0),
            _ => (Arc::clone(&self.devices[0]), u16::try_from(index).unwrap_or(u16::MAX)),
        }
    }

    /// Each device with the name its metrics carry: the port's name, and for the
    /// per-queue devices of an AF_XDP port `<name>.q<i>`.
    fn named_devices(&self) -> Vec<(String, Arc<Port>)> {
        self.devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let name = if i == 0 { self.cfg.name.clone() } else { format!("{}.q{i}", self.cfg.name) };
                (name, Arc::clone(d))
            })
            .collect()
    }
}

/// The DPDK device names a configured port is made of.
fn device_names(pc: &PortConfig) -> Vec<String> {
    match &pc.device {
        Device::Vdev(s) if strait::config::af_xdp::is_af_xdp(&pc.device) => strait::config::af_xdp::queue_vdevs(s)
            .iter()
            .map(|v| v.split(',').next().unwrap_or(v).to_string())
            .collect(),
        d => vec![device_name(d).to_string()],
    }
}

fn bring_up(pc: &PortConfig, queues: u16, pool: &Mempool, rx_interrupts: bool) -> Result<UpPort, RunError> {
    let names = device_names(pc);
    // Per-queue devices take one queue each.
    let queues = if names.len() > 1 { 1 } else { queues };
    let mut devices = Vec::with_capacity(names.len());
    let mut mac = None;
    for name in &names {
        let (port, m) = bring_up_device(pc, name, queues, pool, rx_interrupts)?;
        mac.get_or_insert(m);
        devices.push(Arc::new(port));
    }
    let mac = mac.unwrap_or(EthernetAddress([0; 6]));
    Ok(UpPort { cfg: pc.clone(), devices, mac })
}

fn bring_up_device(pc: &PortConfig, name: &str, queues: u16, pool: &Mempool, rx_interrupts: bool) -> Result<(Port, EthernetAddress), RunError> {
    let id = Port::by_name(name).map_err(|source| RunError::NoSuchDevice {
        port: pc.name.clone(),
        device: name.to_string(),
        source,
    })?;
    let want = wanted_offloads(&pc.offloads);
    let settings =
        PortSettings { rx_queues: queues, tx_queues: queues, rx_desc: ring_descriptors(pool.in_use().saturating_add(pool.available()), queues), tx_desc: RING_DESCRIPTORS, mtu: pc.mtu, want, rx_interrupts };
    let port_err = |source| RunError::Port { port: pc.name.clone(), source };
    let mut port = Port::configure(id, &settings, pool).map_err(port_err)?;
    let mac = match pc.mac {
        Some(m) => {
            // A configured MAC other than the device's: receive frames sent to it.
            port.set_promiscuous(true).map_err(port_err)?;
            EthernetAddress(m)
        }
        None => EthernetAddress(port.mac()),
    };
    port.start().map_err(port_err)?;
    if queues > 1 && port.granted().rss {
        // Hardware steering: the RETA round robin over the lcores' queues, as
        // `dataplane::rss::FlowSteering` computes it; else the lcores redirect in software.
        let reta: Vec<u16> = (0..port.reta_size()).map(|i| i % queues).collect();
        if let Err(e) = port.program_rss(&reta) {
            tracing::info!(port = %pc.name, error = %e, "no usable RSS: lcores steer flows in software");
        }
    }
    tracing::info!(
        port = %pc.name,
        device = name,
        driver = port.driver(),
        port_id = id,
        mac = %mac,
        ipv4 = %format!("{}/{}", pc.ipv4, pc.prefix_len),
        mtu = port.mtu(),
        queues,
        wanted = %describe(&want),
        granted = %describe(&port.granted()),
        "port up"
    );
    Ok((port, mac))
}

/// The steering mesh of `lcores` lcores: hardware where every port programmed the same
/// RETA size, else software with the default table (every lcore checks ownership either
/// way, see `dataplane::lcore::steer`).
fn flow_steering(ports: &[UpPort], lcores: u16) -> Vec<SteeringLinks> {
    let sizes: Vec<u16> = ports.iter().map(|up| if up.port().rss_programmed() { up.port().reta_size() } else { 0 }).collect();
    let hardware = lcores > 1 && !sizes.is_empty() && sizes.iter().all(|&s| s != 0 && s == sizes[0]);
    let (mode, size) = match sizes.first() {
        Some(&s) if hardware => (SteeringMode::Hardware, usize::from(s)),
        _ => (SteeringMode::Software, DEFAULT_RETA_SIZE),
    };
    match FlowSteering::new(&symmetric_key(KEY_LEN), size, lcores.max(1)) {
        Ok(s) => {
            tracing::info!(lcores, mode = mode.name(), reta_size = size, "flow steering");
            mesh(&s, mode, INBOX_CAPACITY)
        }
        Err(e) => {
            // Only an RETA size that is not a power of two gets here: steer in software.
            tracing::warn!(error = %e, "device RETA unusable: lcores steer flows in software");
            FlowSteering::new(&symmetric_key(KEY_LEN), DEFAULT_RETA_SIZE, lcores.max(1))
                .map(|s| mesh(&s, SteeringMode::Software, INBOX_CAPACITY))
                .unwrap_or_default()
        }
    }
}

/// The port's network layer; the next hops of `servers` on its subnet are pinned in its
/// neighbour table (the gateway is pinned by `Interface` itself).
fn interface_for(up: &UpPort, servers: &[std::net::Ipv4Addr]) -> Interface {
    let neighbors =
        NeighborConfig { resolutions_per_second: up.cfg.arp_resolutions_per_second, ..NeighborConfig::default() };
    let mut iface = Interface::with_neighbor_config(
        InterfaceConfig {
            mac: up.mac,
            ipv4: up.cfg.ipv4,
            prefix_len: up.cfg.prefix_len,
            gateway: up.cfg.gateway,
            mtu: up.port().mtu(),
        },
        neighbors,
    );
    for &s in servers {
        iface.pin_neighbor(s);
    }
    iface
}

fn log_report(report: &WorkerReport, ports: &[UpPort]) {
    for (counters, up) in report.net.iter().zip(ports) {
        let nonzero: Vec<String> =
            counters.iter().filter(|(_, v)| *v != 0).map(|(k, v)| format!("{k}={v}")).collect();
        tracing::info!(lcore = report.lcore, port = %up.cfg.name, counters = %nonzero.join(" "), "final counters");
    }
    let tcp: Vec<String> = report
        .tcp
        .iter()
        .chain(report.apps.iter())
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    tracing::info!(
        lcore = report.lcore,
        counters = %tcp.join(" "),
        connections = report.tcp_connections,
        pool_in_use = report.pool_in_use,
        payload_copies = report.copies.copies,
        payload_copied_bytes = report.copies.bytes,
        "final tcp counters"
    );
    if !report.proxy.listeners.is_empty() {
        tracing::info!(lcore = report.lcore, counters = %report.proxy.nonzero().join(" "), "final proxy counters");
    }
}

/// 16 bytes from the kernel's CSPRNG: the key of the ISN generator (RFC 6528) and the SYN
/// cookies.
fn random_key() -> Result<[u8; 16], RunError> {
    use std::io::Read;
    let mut key = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key)).map_err(RunError::Random)?;
    Ok(key)
}

/// Bytes of locked memory an AF_XDP UMEM of `mbufs` mbufs takes (object size of a
/// 2048 + 128 byte data room pool, rounded up).
fn af_xdp_umem_bytes(mbufs: u32) -> u64 {
    u64::from(mbufs) * 2432
}

/// Whether this process has CAP_IPC_LOCK (bit 14 of CapEff), with which the kernel does
/// not charge the UMEM to RLIMIT_MEMLOCK (`xdp_umem_account_pages`).
fn has_cap_ipc_lock() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 14) != 0)
}

/// What an AF_XDP port needs before DPDK opens it: the interface (and its queues) in this
/// network namespace, a readable custom XDP program, and locked memory for the UMEM
/// (RLIMIT_MEMLOCK raised, or CAP_IPC_LOCK). Each failure names the port and the remedy.
fn prepare_af_xdp(cfg: &Config) -> Result<(), RunError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    use strait::config::af_xdp;
    let mut any = false;
    for pc in &cfg.ports {
        let Device::Vdev(d) = &pc.device else { continue };
        if !af_xdp::is_af_xdp(&pc.device) {
            continue;
        }
        any = true;
        let fail = |reason: String| RunError::AfXdp { port: pc.name.clone(), reason };
        let args = af_xdp::check(d, pc.mtu).map_err(fail)?;
        af_xdp::check_host(&args).map_err(fail)?;
    }
    if !any {
        return Ok(());
    }
    let need = af_xdp_umem_bytes(cfg.dpdk.mbufs);
    let (soft, hard) = getrlimit(Resource::RLIMIT_MEMLOCK).unwrap_or((0, 0));
    if soft != RLIM_INFINITY && soft < need {
        // Raise to the hard limit we may set, or to infinity when privileged.
        let raised = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY)
            .or_else(|_| setrlimit(Resource::RLIMIT_MEMLOCK, hard, hard));
        let now = getrlimit(Resource::RLIMIT_MEMLOCK).map(|(s, _)| s).unwrap_or(soft);
        tracing::info!(before = soft, now, need, ok = raised.is_ok(), "RLIMIT_MEMLOCK for the AF_XDP UMEM");
        if now != RLIM_INFINITY && now < need && !has_cap_ipc_lock() {
            return Err(RunError::AfXdp {
                port: cfg.ports.iter().find(|p| af_xdp::is_af_xdp(&p.device)).map(|p| p.name.clone()).unwrap_or_default(),
                reason: format!(
                    "AF_XDP locks the mbuf pool as its UMEM ({} MiB for dpdk.mbufs = {}), but RLIMIT_MEMLOCK is {} KiB and cannot be raised: run as root or with CAP_IPC_LOCK, set LimitMEMLOCK=infinity (the systemd unit does), or lower dpdk.mbufs",
                    need >> 20,
                    cfg.dpdk.mbufs,
                    now >> 10
                ),
            });
        }
    }
    Ok(())
}

/// Runs the data plane described by `cfg` until SIGTERM or SIGINT.
pub fn run(cfg: Config, opts: RunOptions) -> Result<(), RunError> {
    let stop = Arc::new(AtomicBool::new(false));
    // Registered first so that a signal during start-up is kept for the signal thread.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(RunError::Signals)?;

    prepare_af_xdp(&cfg)?;
    let prefix = format!("strait-{}", std::process::id());
    let args = cfg.dpdk.eal_args(&cfg.ports, &prefix);
    tracing::info!(args = %args.join(" "), "initialising DPDK");
    let eal = Eal::init(&args)?;
    let mode = match &cfg.dpdk.memory {
        Memory::NoHuge { .. } => "no-huge",
        Memory::Hugepages { .. } => "hugepages",
    };
    let lcores = cfg.dpdk.lcores.clone();
    let queues = u16::try_from(lcores.len()).unwrap_or(u16::MAX);
    // DPDK 22.11's net_af_xdp registers the pool as one UMEM span (see MemoryLayout).
    let af_xdp = cfg.ports.iter().any(|p| device_name(&p.device).starts_with("net_af_xdp"));
    let pool = if af_xdp {
        Mempool::new_packed("strait_mbufs", cfg.dpdk.mbufs, cfg.dpdk.mbuf_cache, MBUF_DATA_ROOM, -1)?
    } else {
        Mempool::new("strait_mbufs", cfg.dpdk.mbufs, cfg.dpdk.mbuf_cache, MBUF_DATA_ROOM, -1)?
    };
    let layout = pool.layout()?;
    if af_xdp && !layout.fits_af_xdp_umem() {
        return Err(RunError::AfXdp {
            port: cfg.ports.iter().find(|p| device_name(&p.device).starts_with("net_af_xdp")).map(|p| p.name.clone()).unwrap_or_default(),
            reason: format!(
                "the mbuf pool came in {} memory chunks and {} of its mbufs lie outside the one span DPDK 22.11's AF_XDP PMD registers: give DPDK more memory (dpdk.memory_mb) or fewer dpdk.mbufs",
                layout.chunks, layout.objects_outside_umem
            ),
        });
    }
    tracing::info!(mbufs = cfg.dpdk.mbufs, memory = mode, chunks = layout.chunks, object_size = layout.object_size, outside_umem = layout.objects_outside_umem, "mbuf pool ready");

    let mut ports = Vec::with_capacity(cfg.ports.len());
    for pc in &cfg.ports {
        ports.push(bring_up(pc, queues, &pool, cfg.dpdk.rx_interrupts)?);
    }

    let clock = TscClock::new(tsc_hz());
    let mut steering_links = flow_steering(&ports, queues).into_iter();
    let tcp = TcpSetup {
        // `[tcp]`; tail loss probes on by default, as Linux runs.
        config: cfg.tcp.engine_config(),
        secret: random_key()?,
        apps: cfg.apps.iter().map(|a| AppSpec { kind: a.kind, listen: a.listen, max_connections: a.max_connections, idle_timeout: a.idle_timeout }).collect(),
    };
    for a in &cfg.apps {
        tracing::info!(kind = a.kind.name(), listen = %a.listen, "service listening");
    }
    let proxy = cfg.proxy_spec();
    for l in &cfg.listeners {
        let servers: Vec<String> = cfg
            .pools
            .iter()
            .filter(|p| p.name == l.pool)
            .flat_map(|p| p.servers.iter().map(|s| format!("{} from {} weight {}", s.addr, s.local_ip, s.weight)))
            .collect();
        tracing::info!(listener = %l.name, listen = %l.listen, pool = %l.pool, servers = %servers.join(", "), "proxy listening");
    }
    for pc in cfg.ports.iter().filter(|p| !p.impair.is_passthrough()) {
        let (rx, tx) = (pc.impair.rx, pc.impair.tx);
        tracing::warn!(
            port = %pc.name,
            seed = pc.impair.seed,
            rx_drop = rx.drop.as_f64(),
            tx_drop = tx.drop.as_f64(),
            reorder = rx.reorder.as_f64(),
            duplicate = rx.duplicate.as_f64(),
            corrupt = rx.corrupt.as_f64(),
            delay_ms = rx.delay.as_millis() as u64,
            "impairment enabled: frames are dropped, reordered, duplicated, corrupted and delayed on purpose"
        );
    }
    // Listener session counts, server connection counts and round-robin tickets, shared
    // by every lcore's proxy (`dataplane::app::proxy::ProxyShared`).
    let proxy_shared = ProxyShared::new();
    // Backends stay in every neighbour table whatever unsolicited traffic adds (issue 14).
    let servers: Vec<std::net::Ipv4Addr> =
        proxy.pools.iter().flat_map(|p| p.servers.iter().map(|s| *s.addr.ip())).collect();
    let in_use_at_start = pool.in_use();
    let mut workers = Vec::with_capacity(lcores.len());
    let mut all_stats = Vec::with_capacity(lcores.len());
    let mut handles = Vec::with_capacity(lcores.len());
    for (q, &lcore) in lcores.iter().enumerate() {
        let pqs: Vec<PortQueue> = ports
            .iter()
            .enumerate()
            .map(|(i, up)| {
                let (device, queue) = up.queue_for(q);
                PortQueue::new(device, queue, interface_for(up, &servers)).with_impairment(&up.cfg.impair, lcore, i)
            })
            .collect();
        let stats = Arc::new(LcoreStats::default());
        all_stats.push((lcore, Arc::clone(&stats)));
        let mut w = Worker::new(lcore, pqs, pool.clone(), clock, Arc::clone(&stop), stats, tcp.clone())
            .map_err(|source| RunError::Apps { lcore, source })?;
        w.start_proxy(&proxy, &proxy_shared).map_err(|source| RunError::Proxy { lcore, source })?;
        let (handle, inbox) = control::channel::<ProxyCommand>(lcore);
        // The queue is empty: this cannot fail. The lcore takes it on its first iteration.
        let _ = handle.send(control::Command::App(ProxyCommand::Configure(cfg.ops_spec())));
        w.set_control(inbox);
        handles.push(handle);
        if let Some(links) = steering_links.next() {
            w = w.with_steering(links);
        }
        workers.push((lcore, w));
    }

    // From here on every way out stops the lcores: `running.stop()`, or dropping it
    // (declared after the ports, the pool and the EAL: dropped before them).
    let mut running = Lcores::launch(&eal, Arc::clone(&stop), workers)?;
    let named_ports: Vec<(String, Arc<Port>)> = ports.iter().flat_map(UpPort::named_devices).collect();
    let links = Arc::new(named_ports.iter().map(|_| crate::control::LinkState::default()).collect());
    let sources = Sources {
        lcores: all_stats.clone(),
        ports: named_ports,
        pool: pool.clone(),
        pool_size: cfg.dpdk.mbufs,
        proxy: proxy_shared.clone(),
        links,
    };
    // On an error the lcores are stopped (`running` dropped) before it is reported.
    let control = ControlPlane::start(cfg.metrics.listen, sources).map_err(RunError::Control)?;
    let admin_socket = cfg.admin.socket.clone();
    let ops = Arc::new(Ops::new(opts.config_path, cfg, handles.clone(), Arc::clone(&stop)));
    let (signal_thread, admin) = match start_ops(&ops, signals, admin_socket.as_deref()) {
        Ok(started) => started,
        Err(e) => {
            control.shutdown();
            return Err(e);
        }
    };
    if let Some(after) = opts.debug_stall_lcore_after {
        debug_stall(&handles, after);
    }
    tracing::info!(lcores = ?lcores, ports = ports.len(), "strait ready");
    control.ready(&format!("{} port(s) up, {} lcore(s)", ports.len(), lcores.len()));
    running.run_main();
    stop.store(true, Ordering::Relaxed);
    control.stopping("stopping: waiting for lcores");
    tracing::info!("stopping: waiting for lcores");
    if let Some(a) = admin {
        a.shutdown();
    }
    signal_thread.shutdown();
    let (reports, failed) = running.stop();
    drop(running);
    control.shutdown();
    for r in &reports {
        log_report(r, &ports);
    }
    for (lcore, stats) in &all_stats {
        let nonzero: Vec<String> = stats.iter().filter(|(_, v)| *v != 0).map(|(k, v)| format!("{k}={v}")).collect();
        tracing::info!(lcore, counters = %nonzero.join(" "), "final lcore counters");
    }
    tracing::info!(in_use_at_start, in_use = pool.in_use(), "mbuf pool usage");
    for (name, device) in ports.iter().flat_map(UpPort::named_devices) {
        if let Ok(s) = device.stats() {
            tracing::info!(
                port = %name,
                ipackets = s.ipackets,
                opackets = s.opackets,
                imissed = s.imissed,
                ierrors = s.ierrors,
                oerrors = s.oerrors,
                rx_nombuf = s.rx_nombuf,
                "port statistics"
            );
        }
    }
    // Ports close before the pool, the pool before the EAL (see dataplane::dpdk docs).
    drop(ports);
    drop(pool);
    drop(eal);
    tracing::info!("strait stopped");
    match failed {
        Some(l) => Err(RunError::Lcore(l)),
        None => Ok(()),
    }
}

/// How `strait run` was asked to run, besides the configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration file (re-read on reload).
    pub config_path: std::path::PathBuf,
    /// Test-only: stall the first lcore for [`DEBUG_STALL`] this long after start.
    pub debug_stall_lcore_after: Option<std::time::Duration>,
}

/// How long `--debug-stall-lcore-after` stalls the lcore.
const DEBUG_STALL: std::time::Duration = std::time::Duration::from_secs(10);

/// The signal thread (reload, drain) and the admin API.
fn start_ops(
    ops: &Arc<Ops>,
    signals: signal_hook::iterator::Signals,
    admin_socket: Option<&std::path::Path>,
) -> Result<(SignalThread, Option<AdminServer>), RunError> {
    let admin = match admin_socket {
        Some(path) => {
            let o = Arc::clone(ops);
            let server = AdminServer::start(path, Arc::new(move |line: &str| o.handle(line)))
                .map_err(|e| RunError::Control(std::io::Error::new(e.kind(), format!("admin socket {}: {e}", path.display()))))?;
            tracing::info!(socket = %path.display(), "admin API up");
            Some(server)
        }
        None => None,
    };
    let signal_thread = SignalThread::start(Arc::clone(ops), signals).map_err(RunError::Signals)?;
    Ok((signal_thread, admin))
}

/// `--debug-stall-lcore-after`: a thread that stalls the first lcore once (watchdog tests).
fn debug_stall(handles: &[ProxyHandle], after: std::time::Duration) {
    let Some(h) = handles.first().cloned() else { return };
    tracing::warn!(after_ms = after.as_millis() as u64, "debug: an lcore will be stalled on purpose (--debug-stall-lcore-after)");
    let spawned = std::thread::Builder::new().name("strait-debug-stall".into()).spawn(move || {
        std::thread::sleep(after);
        let _ = h.send(control::Command::DebugStall { duration: DEBUG_STALL });
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "debug stall thread not started");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_rings_take_at_most_a_quarter_of_a_small_pool() {
        assert_eq!(ring_descriptors(32767, 1), RX_RING_DESCRIPTORS);
        assert_eq!(ring_descriptors(65535, 2), RX_RING_DESCRIPTORS);
        assert_eq!(ring_descriptors(1023, 1), 128);
        assert_eq!(ring_descriptors(1023, 2), 64);
        assert_eq!(ring_descriptors(100, 4), 64, "never below 64");
        assert_eq!(ring_descriptors(8191, 1), 1024);
    }
}
