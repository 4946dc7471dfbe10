//! The command queue of an lcore: commands from the control plane — drain, packet capture, and whatever
//! the lcore's application defines ([`Command::App`]; the proxy's reload, server admin
//! state and admin views are in [`crate::app::proxy::admin`]). This queue knows no
//! application: it is generic over the application's command type and reaches the
//! application only through [`Controlled`].
//!
//! Each lcore has one bounded queue ([`channel`]: `std::sync::mpsc::sync_channel`, whose
//! `try_recv` takes no lock). The control plane sends with `try_send` (a full queue is an
//! error for the operator, never a wait); the lcore takes at most [`COMMANDS_PER_POLL`]
//! commands per loop iteration in [`poll`] and never blocks: answers go back on a reply
//! channel the command carries, with `try_send`. Drain progress is published through
//! atomics ([`DrainStatus`]).
//!
//! Sans-IO like the rest of the core: the caller hands in `now`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crate::tcp::{Engine, Payload};
use crate::time::{Duration, Instant};

/// Commands one lcore's queue holds at most.
pub const QUEUE_DEPTH: usize = 16;
/// Commands an lcore takes per loop iteration at most.
pub const COMMANDS_PER_POLL: usize = 4;

/// What an lcore is asked to do: the lcore's own commands, and its application's (`A`:
/// the proxy's are [`crate::app::proxy::admin::ProxyCommand`]).
#[derive(Debug)]
pub enum Command<A> {
    /// Stop accepting (the application closes its listeners), let established sessions
    /// finish for `timeout`, then reset the rest. Progress: [`DrainStatus`].
    Drain {
        /// How long sessions may take.
        timeout: Duration,
    },
    /// Start (`Some`) or stop (`None`) capturing this lcore's frames ([`crate::capture`]).
    Capture(Option<crate::capture::Tap>),
    /// Test-only: the lcore sleeps this long in one iteration (a stuck loop for watchdog
    /// tests; reachable only through `strait run --debug-stall-lcore-after`).
    DebugStall {
        /// How long.
        duration: std::time::Duration,
    },
    /// A command for the application the lcore runs ([`Controlled::execute`]).
    App(A),
}

/// What the lcore's queue needs from the application it serves: running its commands,
/// and a drain (stop accepting, count what is left, reset it at the deadline). The queue
/// knows nothing else of the application.
pub trait Controlled<P: Payload> {
    /// The application's commands.
    type Command: Send;

    /// Runs one command (answers go back on a reply channel the command carries, with
    /// `try_send`; never blocks).
    fn execute(&mut self, engine: &mut Engine<P>, cmd: Self::Command, lcore: &LcoreContext, now: Instant);

    /// Stops accepting new sessions; returns how many listeners were closed.
    fn stop_accepting(&mut self, engine: &mut Engine<P>, now: Instant) -> usize;

    /// Sessions still open.
    fn sessions(&self) -> usize;

    /// Resets every session left; returns how many.
    fn reset_sessions(&mut self, engine: &mut Engine<P>, now: Instant) -> usize;
}

/// What a command may need to know about the lcore running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcoreContext {
    /// The lcore.
    pub lcore: u32,
    /// A drain was started on it.
    pub draining: bool,
}

/// Drain progress of one lcore, read by the control plane (not to be confused with
/// `lcore::LcoreStats`, the lcore loop's counters).
#[derive(Debug, Default)]
pub struct DrainStatus {
    /// A drain was started.
    pub draining: AtomicBool,
    /// Draining and no session is left.
    pub drained: AtomicBool,
    /// Sessions reset because the drain deadline passed.
    pub drain_resets: AtomicU64,
}

/// The control plane's end of one lcore's queue.
#[derive(Debug)]
pub struct Handle<A> {
    lcore: u32,
    tx: SyncSender<Command<A>>,
    status: Arc<DrainStatus>,
}

impl<A> Clone for Handle<A> {
    fn clone(&self) -> Self {
        Handle { lcore: self.lcore, tx: self.tx.clone(), status: Arc::clone(&self.status) }
    }
}

/// Why a command did not reach an lcore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Its queue is full (the lcore is slow or stuck).
    #[error("lcore {0}: command queue full")]
    Full(u32),
    /// The lcore loop has ended.
    #[error("lcore {0}: not running")]
    Gone(u32),
}

impl<A> Handle<A> {
    /// The lcore.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Queues `cmd` without waiting.
    pub fn send(&self, cmd: Command<A>) -> Result<(), SendError> {
        self.tx.try_send(cmd).map_err(|e| match e {
            TrySendError::Full(_) => SendError::Full(self.lcore),
            TrySendError::Disconnected(_) => SendError::Gone(self.lcore),
        })
    }

    /// Drain progress.
    pub fn status(&self) -> &DrainStatus {
        &self.status
    }
}

/// The lcore's end of its queue, with the drain it is running.
#[derive(Debug)]
pub struct Inbox<A> {
    lcore: u32,
    rx: Receiver<Command<A>>,
    status: Arc<DrainStatus>,
    drain_deadline: Option<Instant>,
    drain_reset_done: bool,
    /// The capture session this lcore feeds, if any.
    capture: Option<crate::capture::Tap>,
}

impl<A> Inbox<A> {
    /// The capture session this lcore feeds (`None`: capture off).
    pub fn capture_mut(&mut self) -> Option<&mut crate::capture::Tap> {
        self.capture.as_mut()
    }
}

/// A queue for `lcore`.
pub fn channel<A>(lcore: u32) -> (Handle<A>, Inbox<A>) {
    let (tx, rx) = sync_channel(QUEUE_DEPTH);
    let status = Arc::new(DrainStatus::default());
    (
        Handle { lcore, tx, status: Arc::clone(&status) },
        Inbox { lcore, rx, status, drain_deadline: None, drain_reset_done: false, capture: None },
    )
}

/// Runs the commands waiting for this lcore (at most [`COMMANDS_PER_POLL`]) and the drain
/// deadline, for the application `app`; returns how much work was done (0: idle).
pub fn poll<P: Payload, C: Controlled<P>>(
    inbox: &mut Inbox<C::Command>,
    engine: &mut Engine<P>,
    app: &mut C,
    now: Instant,
) -> usize {
    let mut work = 0;
    for _ in 0..COMMANDS_PER_POLL {
        let Ok(cmd) = inbox.rx.try_recv() else { break };
        work += 1;
        execute(inbox, cmd, engine, app, now);
    }
    if let Some(deadline) = inbox.drain_deadline {
        if !inbox.drain_reset_done && now >= deadline {
            inbox.drain_reset_done = true;
            let n = app.reset_sessions(engine, now);
            inbox.status.drain_resets.fetch_add(n as u64, Ordering::Relaxed);
            if n > 0 {
                tracing::warn!(lcore = inbox.lcore, sessions = n, "drain deadline passed: sessions reset");
                work += n;
            }
        }
        if app.sessions() == 0 && !inbox.status.drained.load(Ordering::Relaxed) {
            inbox.status.drained.store(true, Ordering::Relaxed);
            tracing::info!(lcore = inbox.lcore, "drained: no session left");
        }
    }
    work
}

fn execute<P: Payload, C: Controlled<P>>(
    inbox: &mut Inbox<C::Command>,
    cmd: Command<C::Command>,
    engine: &mut Engine<P>,
    app: &mut C,
    now: Instant,
) {
    let lcore = inbox.lcore;
    match cmd {
        Command::Drain { timeout } => {
            let closed = app.stop_accepting(engine, now);
            inbox.drain_deadline = Some(now + timeout);
            inbox.status.draining.store(true, Ordering::Relaxed);
            tracing::info!(
                lcore,
                listeners_closed = closed,
                sessions = app.sessions(),
                timeout_ms = timeout.as_millis() as u64,
                "draining: listeners closed"
            );
        }
        Command::Capture(tap) => {
            tracing::info!(lcore, on = tap.is_some(), "packet capture");
            inbox.capture = tap;
        }
        Command::DebugStall { duration } => {
            tracing::warn!(lcore, ms = duration.as_millis() as u64, "debug: stalling this lcore on request");
            std::thread::sleep(duration);
        }
        Command::App(cmd) => {
            let cx = LcoreContext { lcore, draining: inbox.drain_deadline.is_some() };
            app.execute(engine, cmd, &cx, now);
        }
    }
}

#[cfg(test)]
mod tests;
