//! A running data plane, brought up once and torn down once.
//!
//! [`Runtime::start`] takes a [`RuntimeSpec`] and brings up, in this order: the EAL
//! (`rte_eal_init`), the mbuf pool (one UMEM span when a port is AF_XDP), every port
//! ([`PortSpec`]: devices configured with one queue pair per lcore, offloads negotiated,
//! the RETA programmed where the device has RSS), the steering mesh (hardware or software,
//! `crate::lcore::steer`), and one [`Worker`] per lcore with its TCP engine, its services,
//! the proxy (sharing one [`ProxyShared`]) and its command queue; then it launches the
//! remote lcores. The first lcore is DPDK's main lcore: it runs in the caller's thread,
//! in [`Runtime::run_main`], until the stop flag is raised.
//!
//! Teardown is [`Runtime::stop`] — raise the stop flag, wait for every lcore (the main
//! lcore's worker is dropped if it never ran), log the final counters and port
//! statistics — and then dropping the runtime closes the ports, frees the pool and cleans
//! up the EAL, in that order (the fields' declaration order; the adapter refuses
//! `rte_eal_cleanup` while a pool or port is alive). `Drop` calls the same `stop`, so a
//! caller that returns early (its control plane failed to start) never leaves an lcore
//! running while the ports go. A start that fails half way drops what it brought up in
//! the same order (ports before the pool before the EAL: the locals' reverse order).
//!
//! What the caller's control plane needs is lent out: the lcores' command queues
//! ([`Runtime::handles`]), their statistics, the ports, the pool, what the proxies share
//! and the stop flag. Whatever holds a clone of a port or of the pool (a metrics thread)
//! must be gone before the runtime is dropped, or the EAL is not cleaned up (logged).

mod lcores;
mod port;

pub use port::PortSpec;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::app::proxy::admin::{ProxyCommand, ProxyHandle};
use crate::app::proxy::{OpsSpec, ProxyError, ProxyShared, ProxySpec};
use crate::command::{self, Command};
use crate::dpdk::{tsc_hz, DpdkError, Eal, Mempool, Port};
use crate::lcore::{LcoreStats, PortQueue, StackSpec, TscClock, Worker, WorkerReport};
use crate::tcp::StackError;

use lcores::Lcores;
use port::UpPort;

/// Mbuf data room: DPDK's default (2048 bytes of data + 128 of headroom).
pub const MBUF_DATA_ROOM: u16 = 2048 + 128;

/// Everything [`Runtime::start`] brings up (`strait::config` produces it from the file).
#[derive(Debug, Clone)]
pub struct RuntimeSpec {
    /// The EAL argument vector, argv\[0\] included (`rte_eal_init`).
    pub eal_args: Vec<String>,
    /// The lcores, in order; the first is DPDK's main lcore (the caller's thread).
    pub lcores: Vec<u32>,
    /// Mbufs in the packet pool.
    pub mbufs: u32,
    /// Per-lcore mbuf cache of the pool.
    pub mbuf_cache: u32,
    /// Idle lcores block on RX interrupts where every port's PMD offers them.
    pub rx_interrupts: bool,
    /// The ports, in order (an lcore's port index is its place here).
    pub ports: Vec<PortSpec>,
    /// Each lcore's TCP engine settings, ISN and SYN-cookie key, and built-in services.
    pub tcp: StackSpec,
    /// The proxy every lcore runs (listeners and pools).
    pub proxy: ProxySpec,
    /// The proxy's health checks and access log: each lcore's first command.
    pub proxy_ops: OpsSpec,
}

/// Why a data plane could not start, or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// DPDK refused something; the operation is named in the message.
    #[error("DPDK: {0}")]
    Dpdk(#[from] DpdkError),
    /// A configured device did not show up as a DPDK port.
    #[error("port `{port}`: device `{device}` is not a DPDK port ({source})")]
    NoSuchDevice {
        /// The port's name.
        port: String,
        /// The device name.
        device: String,
        /// What DPDK said.
        source: DpdkError,
    },
    /// A port was given no device.
    #[error("port `{port}`: no DPDK device")]
    NoDevice {
        /// The port's name.
        port: String,
    },
    /// A port could not be configured or started.
    #[error("port `{port}`: {source}")]
    Port {
        /// The port's name.
        port: String,
        /// What DPDK said.
        source: DpdkError,
    },
    /// The pool does not fit the one UMEM span DPDK 22.11's AF_XDP PMD registers.
    #[error("port `{port}`: the mbuf pool came in {chunks} memory chunks and {outside} of its mbufs lie outside the one span DPDK 22.11's AF_XDP PMD registers: give DPDK more memory (dpdk.memory_mb) or fewer dpdk.mbufs")]
    AfXdpUmem {
        /// The (first) AF_XDP port.
        port: String,
        /// Memory chunks the pool came in.
        chunks: u32,
        /// Mbufs outside the first chunk.
        outside: u32,
    },
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
    /// An lcore loop ended abnormally.
    #[error("lcore {0} stopped abnormally")]
    Lcore(u32),
}

/// A running data plane (see the module documentation). Not `Send`: it holds the EAL,
/// which lives on the main lcore.
pub struct Runtime {
    // Dropped in declaration order, after `Drop::drop` stopped the lcores: the ports,
    // then the pool, then the EAL.
    lcores: Lcores,
    /// `None` until [`Runtime::stop`] ran; then the lcore that ended abnormally, if any.
    stopped: Option<Option<u32>>,
    stop: Arc<AtomicBool>,
    handles: Vec<ProxyHandle>,
    stats: Vec<(u32, Arc<LcoreStats>)>,
    shared: ProxyShared,
    in_use_at_start: u32,
    ports: Vec<UpPort>,
    pool: Mempool,
    eal: Eal,
}

impl Runtime {
    /// Brings up the data plane of `spec` and launches its remote lcores (see the module
    /// documentation). On an error, what was brought up is torn down before it returns.
    pub fn start(spec: RuntimeSpec) -> Result<Runtime, RuntimeError> {
        tracing::info!(args = %spec.eal_args.join(" "), "initialising DPDK");
        let eal = Eal::init(&spec.eal_args)?;
        let queues = u16::try_from(spec.lcores.len()).unwrap_or(u16::MAX);
        // DPDK 22.11's net_af_xdp registers the pool as one UMEM span (see MemoryLayout).
        let af_xdp = spec.ports.iter().find(|p| p.is_af_xdp());
        let pool = if af_xdp.is_some() {
            Mempool::new_packed("strait_mbufs", spec.mbufs, spec.mbuf_cache, MBUF_DATA_ROOM, -1)?
        } else {
            Mempool::new("strait_mbufs", spec.mbufs, spec.mbuf_cache, MBUF_DATA_ROOM, -1)?
        };
        let layout = pool.layout()?;
        if let Some(p) = af_xdp.filter(|_| !layout.fits_af_xdp_umem()) {
            return Err(RuntimeError::AfXdpUmem {
                port: p.name.clone(),
                chunks: layout.chunks,
                outside: layout.objects_outside_umem,
            });
        }
        tracing::info!(
            mbufs = spec.mbufs,
            chunks = layout.chunks,
            object_size = layout.object_size,
            outside_umem = layout.objects_outside_umem,
            "mbuf pool ready"
        );

        let mut ports = Vec::with_capacity(spec.ports.len());
        for p in &spec.ports {
            ports.push(port::bring_up(p, queues, &pool, spec.rx_interrupts)?);
        }
        let mut steering = port::flow_steering(&ports, queues).into_iter();

        let clock = TscClock::new(tsc_hz());
        let stop = Arc::new(AtomicBool::new(false));
        // Listener session counts, server connection counts, round-robin tickets and
        // health verdicts, shared by every lcore's proxy.
        let shared = ProxyShared::new();
        // Backends stay in every neighbour table whatever unsolicited traffic adds.
        let servers: Vec<Ipv4Addr> =
            spec.proxy.pools.iter().flat_map(|p| p.servers.iter().filter_map(|s| match s.addr {
                std::net::SocketAddr::V4(a) => Some(*a.ip()),
                std::net::SocketAddr::V6(_) => None,
            })).collect();
        let in_use_at_start = pool.in_use();
        let mut workers = Vec::with_capacity(spec.lcores.len());
        let mut stats = Vec::with_capacity(spec.lcores.len());
        let mut handles = Vec::with_capacity(spec.lcores.len());
        for (q, &lcore) in spec.lcores.iter().enumerate() {
            let queues: Vec<PortQueue> = ports
                .iter()
                .enumerate()
                .map(|(i, up)| {
                    let (device, queue) = up.queue_for(q);
                    let mut iface = up.interface(&servers);
                    iface.set_link_speaker(q == 0);
                    PortQueue::new(device, queue, iface)
                        .with_more_rx(up.more_rx_for(q, spec.lcores.len()))
                        .with_impairment(&up.spec.impair, lcore, i)
                })
                .collect();
            let lcore_stats = Arc::new(LcoreStats::default());
            stats.push((lcore, Arc::clone(&lcore_stats)));
            let mut w = Worker::new(lcore, queues, pool.clone(), clock, Arc::clone(&stop), lcore_stats, spec.tcp.clone())
                .map_err(|source| RuntimeError::Apps { lcore, source })?;
            w.start_proxy(&spec.proxy, &shared).map_err(|source| RuntimeError::Proxy { lcore, source })?;
            let (handle, inbox) = command::channel::<ProxyCommand>(lcore);
            // The queue is empty: this cannot fail. The lcore takes it on its first iteration.
            let _ = handle.send(Command::App(ProxyCommand::Configure(spec.proxy_ops.clone())));
            w.set_control(inbox);
            handles.push(handle);
            if let Some(links) = steering.next() {
                w = w.with_steering(links);
            }
            workers.push((lcore, w));
        }
        // A failed launch stops the lcores already launched before it returns.
        let lcores = Lcores::launch(&eal, Arc::clone(&stop), workers)?;
        Ok(Runtime { lcores, stopped: None, stop, handles, stats, shared, in_use_at_start, ports, pool, eal })
    }

    /// Each lcore's command queue, in lcore order.
    pub fn handles(&self) -> &[ProxyHandle] {
        &self.handles
    }

    /// The flag that ends every lcore's loop when raised (a drain raises it when done).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Each lcore's id and published statistics, in lcore order.
    pub fn lcore_stats(&self) -> &[(u32, Arc<LcoreStats>)] {
        &self.stats
    }

    /// Each DPDK device with the name its metrics carry: the port's name, and for the
    /// per-queue devices of an AF_XDP port `<name>.q<i>`.
    pub fn named_ports(&self) -> Vec<(String, Arc<Port>)> {
        self.ports.iter().flat_map(UpPort::named_devices).collect()
    }

    /// Each configured port's name, in port order (the order of an lcore's ports and of
    /// its network counters).
    pub fn port_names(&self) -> Vec<String> {
        self.ports.iter().map(|p| p.spec.name.clone()).collect()
    }

    /// Ports brought up.
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// The mbuf pool.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// What every lcore's proxy shares (global counts, health verdicts).
    pub fn proxy_shared(&self) -> &ProxyShared {
        &self.shared
    }

    /// Runs the main lcore's worker in this thread until the stop flag is raised (at most
    /// once; at once after [`Runtime::stop`]).
    pub fn run_main(&mut self) {
        if self.stopped.is_none() {
            self.lcores.run_main();
        }
    }

    /// Stops every lcore and logs what they and the ports counted (see the module
    /// documentation); fails if an lcore ended abnormally. A second call does nothing
    /// more and gives the same answer.
    pub fn stop(&mut self) -> Result<(), RuntimeError> {
        let failed = match self.stopped {
            Some(failed) => failed,
            None => {
                self.stop.store(true, Ordering::Relaxed);
                let (reports, failed) = self.lcores.stop(&self.eal);
                self.stopped = Some(failed);
                self.log_final(&reports);
                failed
            }
        };
        match failed {
            Some(lcore) => Err(RuntimeError::Lcore(lcore)),
            None => Ok(()),
        }
    }

    fn log_final(&self, reports: &[WorkerReport]) {
        for report in reports {
            log_report(report, &self.ports);
        }
        for (lcore, stats) in &self.stats {
            let nonzero: Vec<String> = stats.iter().filter(|(_, v)| *v != 0).map(|(k, v)| format!("{k}={v}")).collect();
            tracing::info!(lcore, counters = %nonzero.join(" "), "final lcore counters");
        }
        tracing::info!(in_use_at_start = self.in_use_at_start, in_use = self.pool.in_use(), "mbuf pool usage");
        for (name, device) in self.named_ports() {
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
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Then the fields go: the ports, the pool, the EAL.
        let _ = self.stop();
    }
}

fn log_report(report: &WorkerReport, ports: &[UpPort]) {
    for (counters, up) in report.net.iter().zip(ports) {
        let nonzero: Vec<String> = counters.iter().filter(|(_, v)| *v != 0).map(|(k, v)| format!("{k}={v}")).collect();
        tracing::info!(lcore = report.lcore, port = %up.spec.name, counters = %nonzero.join(" "), "final counters");
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
