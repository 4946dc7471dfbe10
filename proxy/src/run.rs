//! `strait run`: check the host, bring up the data plane (`dataplane::runtime::Runtime`:
//! EAL, mbuf pool, ports, steering, one worker per lcore), start the control plane
//! (metrics endpoint, watchdog, admin API, signals), then serve until told to stop
//! (SIGTERM or SIGINT). This file is the command's configuration and control plane only.
//!
//! Shutdown: the main lcore's loop returns once the stop flag is raised; the admin API
//! and the signal thread stop, the runtime stops every lcore and logs the final
//! counters, the monitor stops (it holds the ports and the pool), and dropping the
//! runtime closes the ports, frees the pool and cleans up the EAL.

use std::sync::Arc;

use dataplane::app::proxy::admin::ProxyHandle;
use dataplane::command;
use dataplane::runtime::{Runtime, RuntimeError};
use crate::monitor::{Monitor, Sources};
use strait::admin::server::AdminServer;
use strait::admin::{Operator, SignalThread};
use strait::config::{Config, Device};

/// Why `strait run` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The data plane could not start, or an lcore stopped abnormally.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    /// The monitor (metrics endpoint, watchdog thread) or the admin API could not start.
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
    /// No key for the TCP ISN generator and SYN cookies could be read.
    #[error("reading a random key from /dev/urandom: {0}")]
    Random(std::io::Error),
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
    // Registered first so that a signal during start-up is kept for the signal thread.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(RunError::Signals)?;

    prepare_af_xdp(&cfg)?;
    let spec = cfg.runtime_spec(&format!("strait-{}", std::process::id()), random_key()?);
    for a in &cfg.apps {
        tracing::info!(kind = a.kind.name(), listen = %a.listen, "service listening");
    }
    for l in &cfg.listeners {
        let servers: Vec<String> = cfg
            .pools
            .iter()
            .filter(|p| p.name == l.pool)
            .flat_map(|p| p.servers.iter().map(|s| format!("{} from {} weight {}", s.addr, s.local_ip, s.weight)))
            .collect();
        tracing::info!(listener = %l.name, listen = %l.listen, pool = %l.pool, servers = %servers.join(", "), "proxy listening");
    }
    // From here on every way out stops the lcores and tears the data plane down
    // (`Runtime`'s drop); the monitor, declared after it, goes first.
    let mut runtime = Runtime::start(spec)?;
    let named_ports = runtime.named_ports();
    let links = Arc::new(named_ports.iter().map(|_| crate::monitor::LinkState::default()).collect());
    let sources = Sources {
        lcores: runtime.lcore_stats().to_vec(),
        ports: named_ports,
        port_names: runtime.port_names(),
        pool: runtime.pool().clone(),
        pool_size: cfg.dpdk.mbufs,
        proxy: runtime.proxy_shared().clone(),
        links,
    };
    let monitor = Monitor::start(cfg.metrics.listen, sources).map_err(RunError::Control)?;
    let admin_socket = cfg.admin.socket.clone();
    let handles = runtime.handles().to_vec();
    let lcores = cfg.dpdk.lcores.clone();
    let ops = Arc::new(Operator::new(opts.config_path, cfg, handles.clone(), runtime.stop_flag()));
    let (signal_thread, admin) = match start_ops(&ops, signals, admin_socket.as_deref()) {
        Ok(started) => started,
        Err(e) => {
            monitor.shutdown();
            return Err(e);
        }
    };
    if let Some(after) = opts.debug_stall_lcore_after {
        debug_stall(&handles, after);
    }
    tracing::info!(lcores = ?lcores, ports = runtime.port_count(), "strait ready");
    monitor.ready(&format!("{} port(s) up, {} lcore(s)", runtime.port_count(), lcores.len()));
    runtime.run_main();
    monitor.stopping("stopping: waiting for lcores");
    tracing::info!("stopping: waiting for lcores");
    if let Some(a) = admin {
        a.shutdown();
    }
    signal_thread.shutdown();
    let stopped = runtime.stop();
    monitor.shutdown();
    drop(runtime);
    tracing::info!("strait stopped");
    Ok(stopped?)
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
    ops: &Arc<Operator>,
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
        let _ = h.send(command::Command::DebugStall { duration: DEBUG_STALL });
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "debug stall thread not started");
    }
}
