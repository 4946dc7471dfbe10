//! Operating a running `strait`: configuration reload, drain on shutdown, per-server
//! admin state and the admin API (a unix socket, [`server`]) with `strait ctl` as its
//! client ([`ctl`]).
//!
//! [`Operator`] is the one place these act from, whichever asked (SIGHUP, SIGTERM, the admin
//! API). It reaches the lcores only through their command queues
//! ([`dataplane::command`]): a command is `try_send`, an answer comes back on a reply
//! channel with a timeout, so a slow or stuck lcore makes a command fail, never the
//! data path wait.
//!
//! The admin protocol is line based: the client sends one line of words, the server
//! answers with lines of output and a last line `ok` or `error: <reason>`, then closes.
//!
//! | request | what |
//! | --- | --- |
//! | `show` | listeners and servers with their state and counts |
//! | `show connections [limit N] [after LCORE:SESSION]` | proxy connections, a page at a time ([`show`]): lcore, session, 4-tuple, TCP state, cwnd, srtt, bytes; `more=yes next=LCORE:SESSION` when the list goes on |
//! | `show info` | the process: version, pid, uptime, configuration file, lcores, sessions, reloads, memory, dropped log lines |
//! | `server drain POOL ADDR` / `server enable POOL ADDR` | no new sessions to a server / again |
//! | `server maint POOL ADDR` | maintenance: no new sessions and no health checks (`server enable` ends it) |
//! | `server weight POOL ADDR N` | the server's weight until the next reload (0..=1000; 0: no new sessions) |
//! | `server kill POOL ADDR` | reset every session of the server now |
//! | `session kill LCORE ID` | reset one session (`show connections` prints lcore and id) |
//! | `reload` | re-read the configuration file (as SIGHUP) |
//! | `capture start FILE [port NAME] ...` / `capture stop` / `capture status` | packet capture to pcapng ([`capture`]) |
//! | `help` | this list |

pub mod capture;
pub mod ctl;
pub mod server;
pub mod show;

pub use show::{render, ConnRequest};
use show::yes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::app::proxy::admin::{AdminState, ConnPage, KillTarget, LcoreView, ProxyCommand, ProxyHandle as Handle};
use dataplane::command::Command;

use crate::config::Config;
use crate::systemd::Notifier;

/// How long an lcore may take to answer a command.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// After the last session is gone, time for the final FINs and ACKs to leave.
const DRAIN_LINGER: Duration = Duration::from_millis(200);

/// The requests, for `help` and errors.
pub const HELP: &str = "show | show connections [limit N] [after LCORE:SESSION] | show info | server drain|enable|maint POOL ADDR | server weight POOL ADDR N | \
server kill POOL ADDR | session kill LCORE ID | reload | \
capture start FILE [port NAME] [queue N] [frames N] [seconds N] [snaplen N] [rate N] [max-mb N] | capture stop | capture status | help";

/// Reloads (SIGHUP or `strait ctl reload`) applied on every lcore.
static RELOADS_OK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Reloads refused before anything changed (invalid file, or a change needing a restart).
static RELOADS_REJECTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Reloads an lcore could not apply (or did not answer in time).
static RELOADS_FAILED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Reloads since start: (applied, rejected, failed).
pub fn reload_counts() -> (u64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    (RELOADS_OK.load(Relaxed), RELOADS_REJECTED.load(Relaxed), RELOADS_FAILED.load(Relaxed))
}

/// What an operator can do to a running data plane, whoever asks (SIGHUP, SIGTERM, the
/// admin API): reload, drain, server admin state, queries. See the module docs.
pub struct Operator {
    config_path: PathBuf,
    config: Mutex<Config>,
    lcores: Vec<Handle>,
    notifier: Notifier,
    stop: Arc<AtomicBool>,
    draining: AtomicBool,
    started: Instant,
    /// The packet capture running, or the last one's result.
    capture: Mutex<CaptureState>,
}

/// Packet capture: at most one session at a time.
#[derive(Default)]
enum CaptureState {
    /// None since start.
    #[default]
    Never,
    /// Writing.
    Running(capture::Session),
    /// The last session's result.
    Done(capture::Summary),
}

impl Operator {
    /// An operator of the lcores reached through `lcores`; `stop` ends their loops; `config`
    /// is what runs, loaded from `config_path` (re-read on reload).
    pub fn new(config_path: PathBuf, config: Config, lcores: Vec<Handle>, stop: Arc<AtomicBool>) -> Operator {
        Operator {
            config_path,
            config: Mutex::new(config),
            lcores,
            notifier: Notifier::from_env(),
            stop,
            draining: AtomicBool::new(false),
            started: Instant::now(),
            capture: Mutex::new(CaptureState::Never),
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Config> {
        // A panic while holding it leaves a whole Config behind: still usable.
        self.config.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Re-reads the configuration file and applies it to new connections on every lcore.
    /// Counted by outcome ([`reload_counts`], `strait_reloads_total{result}`).
    /// An invalid file, or a change that needs a restart, is refused with every reason
    /// (each naming its key) and the running configuration stays.
    pub fn reload(&self) -> Result<String, String> {
        let result = self.reload_config();
        let outcome = match &result {
            Ok(_) => &RELOADS_OK,
            Err(e) if e.starts_with("reload rejected") => &RELOADS_REJECTED,
            Err(_) => &RELOADS_FAILED,
        };
        outcome.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        result
    }

    fn reload_config(&self) -> Result<String, String> {
        let mut current = self.current();
        tracing::info!(config = %self.config_path.display(), "reloading the configuration");
        let new = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(errs) => {
                for e in &errs.0 {
                    tracing::error!(key = %e.key, reason = %e.reason, "reload rejected: invalid configuration; the running one stays");
                }
                let _ = self.notifier.status("reload rejected: invalid configuration");
                return Err(format!("reload rejected, the running configuration stays:\n{errs}"));
            }
        };
        let restart = current.restart_needed(&new);
        if !restart.is_empty() {
            for why in &restart {
                tracing::error!(reason = %why, "reload rejected; the running configuration stays");
            }
            let _ = self.notifier.status("reload rejected: a change needs a restart");
            return Err(format!("reload rejected, the running configuration stays:\n{}", restart.join("\n")));
        }
        if let Err(e) = self.notifier.reloading("reloading the configuration") {
            tracing::warn!(error = %e, "sd_notify RELOADING failed");
        }
        let spec = new.proxy_spec();
        let ops = new.ops_spec();
        let mut replies = Vec::new();
        let mut failed = Vec::new();
        // Two phases, so that a reload applies on every lcore or on none: each lcore
        // prepares (checks, opens new listener addresses) and answers; only when all have
        // prepared in time does each get the commit, else each gets the abort (an lcore
        // that answers late takes the abort after its prepare: its queue is in order).
        for h in &self.lcores {
            let (tx, rx) = sync_channel(1);
            match h.send(Command::App(ProxyCommand::PrepareReload { spec: spec.clone(), ops: ops.clone(), reply: tx })) {
                Ok(()) => replies.push((h.lcore(), rx)),
                Err(e) => failed.push(e.to_string()),
            }
        }
        for (lcore, rx) in replies {
            match rx.recv_timeout(REPLY_TIMEOUT) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push(format!("lcore {lcore}: {e}")),
                Err(_) => failed.push(format!("lcore {lcore}: no answer within {REPLY_TIMEOUT:?}")),
            }
        }
        let commit = failed.is_empty();
        for h in &self.lcores {
            let cmd = || Command::App(if commit { ProxyCommand::CommitReload } else { ProxyCommand::AbortReload });
            if let Err(e) = send_patiently(h, cmd) {
                // Only a stuck or stopped lcore: the one case where lcores can differ.
                failed.push(format!("{e}: {} not delivered", if commit { "commit" } else { "abort" }));
            }
        }
        if !commit {
            failed.push("rolled back on every lcore: the running configuration stays".to_string());
        }
        let result = if failed.is_empty() {
            *current = new;
            let summary = format!(
                "reloaded: {} listener(s), {} pool(s), {} server(s)",
                current.listeners.len(),
                current.pools.len(),
                current.pools.iter().map(|p| p.servers.len()).sum::<usize>()
            );
            tracing::info!(summary = %summary, "configuration reloaded");
            Ok(summary)
        } else {
            for f in &failed {
                tracing::error!(reason = %f, "reload failed on an lcore");
            }
            Err(format!("reload failed: {}", failed.join("; ")))
        };
        let status = match &result {
            Ok(s) => s.clone(),
            Err(_) => "reload failed: see the log".to_string(),
        };
        if let Err(e) = self.notifier.ready(&status) {
            tracing::warn!(error = %e, "sd_notify READY failed");
        }
        result
    }

    /// SIGTERM: stop accepting, let sessions finish until `[shutdown] drain_timeout`, reset
    /// the rest, then stop the lcores. Returns when the stop flag is raised. A second call
    /// (another SIGTERM) stops at once.
    pub fn drain_and_stop(&self) {
        if self.draining.swap(true, Ordering::Relaxed) {
            tracing::warn!("second stop signal: stopping without waiting for the drain");
            self.stop.store(true, Ordering::Relaxed);
            return;
        }
        let timeout = self.current().shutdown.drain_timeout;
        let _ = self.notifier.stopping(&format!("draining: up to {} ms", timeout.as_millis()));
        tracing::info!(timeout_ms = timeout.as_millis() as u64, "stopping: draining connections");
        let t = dataplane::time::Duration::from_nanos(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX));
        let mut sent = Vec::new();
        for h in &self.lcores {
            // A full queue gets a few more tries; an lcore that never takes it is stopped
            // with the others at the deadline.
            for _ in 0..50 {
                match h.send(Command::Drain { timeout: t }) {
                    Ok(()) => {
                        sent.push(h);
                        break;
                    }
                    Err(dataplane::command::SendError::Full(_)) => std::thread::sleep(Duration::from_millis(10)),
                    Err(e) => {
                        tracing::warn!(error = %e, "drain not delivered");
                        break;
                    }
                }
            }
        }
        let give_up = Instant::now() + timeout + Duration::from_secs(2);
        while Instant::now() < give_up && !self.stop.load(Ordering::Relaxed) {
            if sent.iter().all(|h| h.status().drained.load(Ordering::Relaxed)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let resets: u64 = self.lcores.iter().map(|h| h.status().drain_resets.load(Ordering::Relaxed)).sum();
        tracing::info!(sessions_reset = resets, "drain finished");
        std::thread::sleep(DRAIN_LINGER);
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Every lcore's view without connections (lcores that do not answer in time are
    /// named in `Err`).
    pub fn views(&self) -> Result<Vec<LcoreView>, String> {
        self.views_paged(|_| None)
    }

    /// Every lcore's view, with the connections of the page `page(lcore)` asks for.
    pub fn views_paged(&self, page: impl Fn(u32) -> Option<ConnPage>) -> Result<Vec<LcoreView>, String> {
        let mut pending = Vec::new();
        for h in &self.lcores {
            let (tx, rx) = sync_channel(1);
            h.send(Command::App(ProxyCommand::Show { connections: page(h.lcore()), reply: tx })).map_err(|e| e.to_string())?;
            pending.push((h.lcore(), rx));
        }
        let mut views = Vec::new();
        for (lcore, rx) in pending {
            views.push(
                rx.recv_timeout(REPLY_TIMEOUT)
                    .map_err(|_| format!("lcore {lcore}: no answer within {REPLY_TIMEOUT:?}"))?,
            );
        }
        Ok(views)
    }

    /// Drains or enables a server on every lcore.
    pub fn set_server(&self, pool: &str, addr: SocketAddr, state: AdminState) -> Result<String, String> {
        let mut pending = Vec::new();
        for h in &self.lcores {
            let (tx, rx) = sync_channel(1);
            h.send(Command::App(ProxyCommand::SetServer { pool: pool.to_string(), addr, state, reply: tx })).map_err(|e| e.to_string())?;
            pending.push((h.lcore(), rx));
        }
        for (lcore, rx) in pending {
            rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| format!("lcore {lcore}: no answer"))??;
        }
        tracing::info!(pool, server = %addr, state = state.name(), "server admin state set");
        Ok(format!("server {addr} in pool {pool}: {}", state.name()))
    }

    /// `show info`: the process at a glance (key=value, one line).
    pub fn info(&self) -> Result<String, String> {
        let views = self.views()?;
        let sessions: u64 = views.iter().map(|v| v.sessions).sum();
        let lcores: Vec<String> = self.lcores.iter().map(|h| h.lcore().to_string()).collect();
        let (ok, rejected, failed) = reload_counts();
        // The resident set from the kernel's view of this process (0 where /proc lacks it).
        let rss_kb = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").to_string())))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Ok(format!(
            "version={} pid={} uptime_s={} config={} lcores={} sessions={sessions} draining={} reloads_ok={ok} \
             reloads_rejected={rejected} reloads_failed={failed} rss_kb={rss_kb} log_dropped_lines={}\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            self.started.elapsed().as_secs(),
            self.config_path.display(),
            lcores.join(","),
            yes(self.draining.load(Ordering::Relaxed)),
            crate::logging::dropped_lines(),
        ))
    }

    fn capture_state(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        self.capture.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a packet capture ([`capture`]); one at a time.
    pub fn capture_start(&self, words: &[&str]) -> Result<String, String> {
        let ports: Vec<String> = self.current().ports.iter().map(|p| p.name.clone()).collect();
        let req = capture::parse(words, &ports)?;
        let mut state = self.capture_state();
        if let CaptureState::Running(s) = &*state {
            if !s.finished() {
                return Err(format!("a capture is running ({}): capture stop first", s.status().path.display()));
            }
        }
        if let CaptureState::Running(s) = std::mem::take(&mut *state) {
            *state = CaptureState::Done(s.stop());
        }
        let path = req.path.display().to_string();
        let session = capture::Session::start(req, &ports, &self.lcores)?;
        *state = CaptureState::Running(session);
        Ok(format!("capture started: {path}"))
    }

    /// Ends the running capture and says what it wrote.
    pub fn capture_stop(&self) -> Result<String, String> {
        let mut state = self.capture_state();
        match std::mem::take(&mut *state) {
            CaptureState::Running(s) => {
                let summary = s.stop();
                let text = summary.render(false);
                *state = CaptureState::Done(summary);
                Ok(text)
            }
            other => {
                *state = other;
                Err("no capture is running".to_string())
            }
        }
    }

    /// The running capture's progress, or the last one's result.
    pub fn capture_status(&self) -> String {
        let mut state = self.capture_state();
        if matches!(&*state, CaptureState::Running(s) if s.finished()) {
            if let CaptureState::Running(s) = std::mem::take(&mut *state) {
                *state = CaptureState::Done(s.stop());
            }
        }
        match &*state {
            CaptureState::Never => "capture=off".to_string(),
            CaptureState::Running(s) => s.status().render(true),
            CaptureState::Done(summary) => summary.render(false),
        }
    }

    /// Sets a server's weight on every lcore (until the next reload).
    pub fn set_weight(&self, pool: &str, addr: SocketAddr, weight: u32) -> Result<String, String> {
        let mut pending = Vec::new();
        for h in &self.lcores {
            let (tx, rx) = sync_channel(1);
            h.send(Command::App(ProxyCommand::SetWeight { pool: pool.to_string(), addr, weight, reply: tx })).map_err(|e| e.to_string())?;
            pending.push((h.lcore(), rx));
        }
        for (lcore, rx) in pending {
            rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| format!("lcore {lcore}: no answer"))??;
        }
        tracing::info!(pool, server = %addr, weight, "server weight set by the operator");
        Ok(format!("server {addr} in pool {pool}: weight {weight}"))
    }

    /// Resets the sessions `target` names on `lcore` (every lcore: `None`); how many.
    pub fn kill(&self, lcore: Option<u32>, target: &KillTarget) -> Result<usize, String> {
        let handles: Vec<&Handle> = self.lcores.iter().filter(|h| lcore.is_none_or(|l| h.lcore() == l)).collect();
        if handles.is_empty() {
            return Err(format!("no lcore {}", lcore.unwrap_or_default()));
        }
        let mut pending = Vec::new();
        for h in handles {
            let (tx, rx) = sync_channel(1);
            h.send(Command::App(ProxyCommand::Kill { target: target.clone(), reply: tx })).map_err(|e| e.to_string())?;
            pending.push((h.lcore(), rx));
        }
        let mut n = 0;
        for (lcore, rx) in pending {
            n += rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| format!("lcore {lcore}: no answer"))?;
        }
        Ok(n)
    }

    /// Answers one admin request line: the output, or the reason it failed.
    pub fn handle(&self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["show"] | ["show", "servers"] | ["show", "listeners"] => Ok(render(&self.views()?, None)),
            ["show", "connections", rest @ ..] => {
                let req = ConnRequest::parse(rest)?;
                let mut views = self.views_paged(|lcore| req.lcore_page(lcore))?;
                let page = req.cut(&mut views);
                Ok(render(&views, Some(&page)))
            }
            ["show", "info"] => self.info(),
            ["server", verb @ ("drain" | "enable" | "maint"), pool, addr] => {
                let state = match *verb {
                    "drain" => AdminState::Drain,
                    "maint" => AdminState::Maint,
                    _ => AdminState::Enabled,
                };
                self.set_server(pool, server_addr(addr)?, state)
            }
            ["server", "weight", pool, addr, weight] => {
                let weight = weight
                    .parse::<u32>()
                    .ok()
                    .filter(|w| *w <= MAX_WEIGHT)
                    .ok_or_else(|| format!("{weight:?} is not a weight (0..={MAX_WEIGHT})"))?;
                self.set_weight(pool, server_addr(addr)?, weight)
            }
            ["server", "kill", pool, addr] => {
                let target = KillTarget::Server { pool: pool.to_string(), addr: server_addr(addr)? };
                let n = self.kill(None, &target)?;
                Ok(format!("sessions of server {addr} in pool {pool} reset: {n}"))
            }
            ["session", "kill", lcore, id] => {
                let lcore: u32 = lcore.parse().map_err(|_| format!("{lcore:?} is not an lcore id"))?;
                let id: u64 = id.parse().map_err(|_| format!("{id:?} is not a session id"))?;
                match self.kill(Some(lcore), &KillTarget::Session(id))? {
                    0 => Err(format!("no session {id} on lcore {lcore}")),
                    _ => Ok(format!("session {id} on lcore {lcore} reset")),
                }
            }
            ["reload"] => self.reload(),
            ["capture", "start", rest @ ..] => self.capture_start(rest),
            ["capture", "stop"] => self.capture_stop(),
            ["capture"] | ["capture", "status"] => Ok(self.capture_status()),
            ["help"] => Ok(HELP.to_string()),
            [] => Err(format!("empty request (try: {HELP})")),
            _ => Err(format!("unknown request {line:?} (try: {HELP})")),
        }
    }
}

/// Sends `cmd()`, retrying for up to [`REPLY_TIMEOUT`] while the lcore's queue is full
/// (a reload's second phase must arrive).
fn send_patiently(h: &Handle, cmd: impl Fn() -> Command<ProxyCommand>) -> Result<(), dataplane::command::SendError> {
    let give_up = Instant::now() + REPLY_TIMEOUT;
    loop {
        match h.send(cmd()) {
            Err(dataplane::command::SendError::Full(_)) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

/// Weights `server weight` accepts (the configuration's `weight` is 1..=1000).
const MAX_WEIGHT: u32 = 1000;

/// A server's `ADDR` in a request.
fn server_addr(addr: &str) -> Result<SocketAddr, String> {
    addr.parse().map_err(|_| format!("{addr:?} is not an address and port (e.g. 198.18.1.1:8080 or [2001:db8::1]:8080)"))
}

/// The thread that turns signals into [`Operator`] calls.
pub struct SignalThread {
    handle: signal_hook::iterator::Handle,
    join: std::thread::JoinHandle<()>,
}

impl SignalThread {
    /// Handles SIGHUP (reload), SIGTERM and SIGINT (drain, then stop; a second one stops
    /// at once) until [`SignalThread::shutdown`].
    /// `signals` must cover them (registered early, so that none is lost at start-up).
    pub fn start(ops: Arc<Operator>, mut signals: signal_hook::iterator::Signals) -> std::io::Result<SignalThread> {
        use signal_hook::consts::SIGHUP;
        let handle = signals.handle();
        let join = std::thread::Builder::new().name("strait-signals".into()).spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    if let Err(e) = ops.reload() {
                        tracing::error!(error = %e, "SIGHUP: reload rejected");
                    }
                    continue;
                }
                // The drain waits on a thread of its own so that a second signal is seen.
                let o = Arc::clone(&ops);
                if std::thread::Builder::new().name("strait-drain".into()).spawn(move || o.drain_and_stop()).is_err() {
                    ops.stop.store(true, Ordering::Relaxed);
                }
            }
        })?;
        Ok(SignalThread { handle, join })
    }

    /// Stops handling signals and joins the thread.
    pub fn shutdown(self) {
        self.handle.close();
        let _ = self.join.join();
    }
}

#[cfg(test)]
mod tests;
