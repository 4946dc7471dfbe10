//! The monitor of a running `strait` (with `strait::admin`, its control plane): systemd
//! notifications and watchdog, the link monitor, and the Prometheus endpoint. They run on
//! their own threads, off the data path; they only read
//! what the lcores publish (relaxed atomics, and counter copies the lcores refresh with
//! `try_lock`), so they can never stall a loop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use dataplane::dpdk::{Mempool, Port};
use dataplane::lcore::LcoreStats;
use strait::metrics::snapshot::{
    granted_offload_names, unix_seconds, LcoreCounters, LcoreSnapshot, MempoolSnapshot, NetSnapshot, PortSnapshot,
    PortXstats, TcpSnapshot,
};
use strait::metrics::{Server, Snapshot, SnapshotSource};
use strait::systemd::{watchdog_interval, Notifier, WatchdogGate};

/// What the monitor reads.
#[derive(Clone)]
pub struct Sources {
    /// Each lcore's id and published statistics.
    pub lcores: Vec<(u32, Arc<LcoreStats>)>,
    /// Each DPDK device with the name its metrics carry (the port's, `<port>.q<i>` for
    /// the further queues of an AF_XDP port).
    pub ports: Vec<(String, Arc<Port>)>,
    /// Each configured port's name, in the order of every lcore's network counters (an
    /// AF_XDP port of several queues is several devices above, one port here).
    pub port_names: Vec<String>,
    /// The mbuf pool and its size.
    pub pool: Mempool,
    /// Mbufs the pool was created with.
    pub pool_size: u32,
    /// What the lcores' proxies share, among it every server's health verdict.
    pub proxy: dataplane::app::proxy::ProxyShared,
    /// Each port's link as the link monitor sees it (same order as `ports`).
    pub links: Arc<Vec<LinkState>>,
}

/// One port's link as the monitor thread last saw it.
#[derive(Debug, Default)]
pub struct LinkState {
    /// 0 not looked at yet, 1 down, 2 up.
    state: AtomicU8,
    /// Transitions seen.
    changes: AtomicU64,
}

impl LinkState {
    fn up(&self) -> Option<bool> {
        match self.state.load(Ordering::Relaxed) {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        }
    }
}

/// How often the link monitor looks at the ports (`rte_eth_link_get_nowait`, a read).
const LINK_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Looks at every port's link each [`LINK_CHECK_INTERVAL`]; logs each transition (down as
/// a warning) and records it for the metrics.
fn link_loop(ports: &[(String, Arc<Port>)], links: &[LinkState], stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    loop {
        for ((name, port), link) in ports.iter().zip(links) {
            let up = port.link_up();
            let before = link.state.swap(if up { 2 } else { 1 }, Ordering::Relaxed);
            match (before, up) {
                (0, true) => tracing::info!(port = %name, "link up"),
                (0, false) => tracing::warn!(port = %name, "link down at start"),
                (1, true) => {
                    link.changes.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(port = %name, "link up again");
                }
                (2, false) => {
                    link.changes.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(port = %name, "link down");
                }
                _ => {}
            }
        }
        let mut waited = Duration::ZERO;
        while waited < LINK_CHECK_INTERVAL {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(step);
            waited += step;
        }
    }
}

/// Builds a metrics snapshot from what the lcores published.
fn snapshot(src: &Sources, start_time: f64) -> Snapshot {
    let mut snap = Snapshot {
        start_time_seconds: start_time,
        log_dropped_lines: strait::logging::dropped_lines(),
        reloads: strait::admin::reload_counts(),
        admin_requests: strait::admin::server::request_counts(),
        ..Snapshot::default()
    };
    for (lcore, stats) in &src.lcores {
        snap.lcores.push(LcoreSnapshot::from_stats(*lcore, stats));
        snap.lcore_counters.push(LcoreCounters::from_stats(*lcore, stats));
        // A poisoned lock only means a panicking holder; the counters are still plain data.
        let published = match stats.published.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for (name, counters) in src.port_names.iter().zip(&published.net) {
            snap.net.push(NetSnapshot { port: name.clone(), lcore: *lcore, counters: counters.iter().collect() });
        }
        snap.tcp.push(TcpSnapshot {
            lcore: *lcore,
            counters: published.tcp.iter().collect(),
            connections: published.tcp_connections as u64,
            time_wait: published.tcp_time_wait as u64,
            buffer_bytes: published.tcp_buffer_bytes as u64,
        });
        for (name, v) in published.apps.iter() {
            match snap.apps.iter_mut().find(|(n, _)| *n == name) {
                Some(e) => e.1 = e.1.saturating_add(v),
                None => snap.apps.push((name, v)),
            }
        }
        snap.proxy.push(published.proxy);
        snap.lcore_passes.push((*lcore, published.busy_passes.0));
    }
    for (i, (name, port)) in src.ports.iter().enumerate() {
        if let Ok(stats) = port.stats() {
            let link = src.links.get(i);
            snap.ports.push(PortSnapshot {
                name: name.clone(),
                stats,
                granted_offloads: granted_offload_names(&port.granted()),
                link_up: link.and_then(LinkState::up),
                link_changes: link.map_or(0, |l| l.changes.load(Ordering::Relaxed)),
            });
        }
        // Read here, on the metrics thread: rte_eth_xstats_get only reads the counters.
        if let Ok(xstats) = port.xstats() {
            snap.port_xstats.push(PortXstats { port: name.clone(), xstats });
        }
    }
    snap.backends = src.proxy.health();
    snap.mempool = Some(MempoolSnapshot {
        in_use: u64::from(src.pool.in_use()),
        available: u64::from(src.pool.available()),
        size: u64::from(src.pool_size),
    });
    snap
}

/// The running monitor: metrics endpoint, watchdog and link threads. [`Monitor::shutdown`]
/// must run before the ports and the pool are dropped (it holds references to them).
pub struct Monitor {
    notifier: Arc<Notifier>,
    server: Option<Server>,
    watchdog: Option<JoinHandle<()>>,
    links: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Monitor {
    /// Starts the metrics endpoint (when `metrics` is set) and the watchdog thread (when
    /// systemd asked for one through `WATCHDOG_USEC`).
    pub fn start(metrics: Option<SocketAddr>, sources: Sources) -> std::io::Result<Monitor> {
        let notifier = Arc::new(Notifier::from_env());
        let stop = Arc::new(AtomicBool::new(false));
        let start_time = unix_seconds(SystemTime::now());
        let server = match metrics {
            Some(addr) => {
                let src = sources.clone();
                let source: SnapshotSource = Arc::new(move || snapshot(&src, start_time));
                let server = Server::start(addr, source)?;
                tracing::info!(listen = %server.local_addr(), "metrics endpoint up");
                Some(server)
            }
            None => None,
        };
        let interval = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
        );
        let watchdog = match interval {
            Some(every) if notifier.enabled() => {
                let (n, stop, lcores) = (Arc::clone(&notifier), Arc::clone(&stop), sources.lcores.clone());
                Some(
                    std::thread::Builder::new()
                        .name("strait-watchdog".into())
                        .spawn(move || watchdog_loop(&n, &stop, &lcores, every))?,
                )
            }
            _ => None,
        };
        let links = {
            let (ports, links, stop) = (sources.ports.clone(), Arc::clone(&sources.links), Arc::clone(&stop));
            Some(std::thread::Builder::new().name("strait-link".into()).spawn(move || link_loop(&ports, &links, &stop))?)
        };
        Ok(Monitor { notifier, server, watchdog, links, stop })
    }

    /// Tells systemd the service is ready.
    pub fn ready(&self, status: &str) {
        if let Err(e) = self.notifier.ready(status) {
            tracing::warn!(error = %e, "sd_notify READY failed");
        }
    }

    /// Tells systemd the service is stopping.
    pub fn stopping(&self, status: &str) {
        if let Err(e) = self.notifier.stopping(status) {
            tracing::warn!(error = %e, "sd_notify STOPPING failed");
        }
    }

    /// Stops the threads and releases the port and pool references.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        if let Some(l) = self.links.take() {
            let _ = l.join();
        }
    }
}

/// Sends WATCHDOG=1 every `every` while every lcore loop advances; withholds it (and logs)
/// while one is stuck, so that systemd restarts the service.
fn watchdog_loop(n: &Notifier, stop: &AtomicBool, lcores: &[(u32, Arc<LcoreStats>)], every: Duration) {
    let mut gate = WatchdogGate::default();
    let step = Duration::from_millis(50);
    'outer: loop {
        let mut waited = Duration::ZERO;
        while waited < every {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            std::thread::sleep(step);
            waited += step;
        }
        let iterations: Vec<u64> = lcores.iter().map(|(_, s)| s.iterations.load(Ordering::Relaxed)).collect();
        if gate.all_progressing(&iterations) {
            if let Err(e) = n.watchdog() {
                tracing::warn!(error = %e, "sd_notify WATCHDOG failed");
            }
        } else {
            tracing::error!(?iterations, "an lcore loop made no progress: withholding the systemd watchdog");
        }
    }
}
