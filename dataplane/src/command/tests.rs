//! The lcore queue with an application that records what reaches it: its commands go to
//! the application with the lcore's context, drain is run by the queue through
//! [`Controlled`], a full queue is an error. (The proxy's commands through this queue are
//! tested in `app/proxy/tests/admin.rs`.)

use std::sync::atomic::Ordering;

use super::*;
use crate::tcp::{HeapPayload, TcpConfig};

/// Sessions that end one per poll once told to stop accepting; records what it ran.
#[derive(Default)]
struct Recorder {
    ran: Vec<(u32, bool, &'static str)>,
    accepting: bool,
    sessions: usize,
    reset: usize,
}

impl Controlled<HeapPayload> for Recorder {
    type Command = &'static str;

    fn execute(&mut self, _: &mut Engine<HeapPayload>, cmd: &'static str, cx: &LcoreContext, _: Instant) {
        self.ran.push((cx.lcore, cx.draining, cmd));
    }

    fn stop_accepting(&mut self, _: &mut Engine<HeapPayload>, _: Instant) -> usize {
        self.accepting = false;
        1
    }

    fn sessions(&self) -> usize {
        self.sessions
    }

    fn reset_sessions(&mut self, _: &mut Engine<HeapPayload>, _: Instant) -> usize {
        let n = self.sessions;
        self.reset += n;
        self.sessions = 0;
        n
    }
}

fn engine() -> Engine<HeapPayload> {
    Engine::new(TcpConfig::default(), [1; 16], Instant::ZERO)
}

#[test]
fn application_commands_reach_the_application_with_the_lcore_context() {
    let (handle, mut inbox) = channel::<&'static str>(5);
    let mut app = Recorder { accepting: true, ..Recorder::default() };
    let mut e = engine();
    for cmd in ["one", "two", "three", "four", "five"] {
        assert_eq!(handle.send(Command::App(cmd)), Ok(()));
    }
    assert_eq!(poll(&mut inbox, &mut e, &mut app, Instant::ZERO), COMMANDS_PER_POLL, "a few per iteration");
    assert_eq!(app.ran.len(), COMMANDS_PER_POLL);
    assert_eq!(poll(&mut inbox, &mut e, &mut app, Instant::ZERO), 1);
    assert_eq!(app.ran.last(), Some(&(5, false, "five")));
    assert_eq!(poll(&mut inbox, &mut e, &mut app, Instant::ZERO), 0, "idle");
}

#[test]
fn drain_stops_accepting_then_resets_what_is_left_at_the_deadline() {
    let (handle, mut inbox) = channel::<&'static str>(2);
    let mut app = Recorder { accepting: true, sessions: 3, ..Recorder::default() };
    let mut e = engine();
    let t0 = Instant::from_nanos(1_000_000);
    assert_eq!(handle.send(Command::Drain { timeout: Duration::from_millis(10) }), Ok(()));
    assert_eq!(handle.send(Command::App("after")), Ok(()));
    poll(&mut inbox, &mut e, &mut app, t0);
    assert!(!app.accepting && handle.status().draining.load(Ordering::Relaxed));
    assert_eq!(app.ran, vec![(2, true, "after")], "commands learn that the lcore drains");
    assert!(!handle.status().drained.load(Ordering::Relaxed));
    poll(&mut inbox, &mut e, &mut app, t0 + Duration::from_millis(9));
    assert_eq!(app.reset, 0, "not before the deadline");
    poll(&mut inbox, &mut e, &mut app, t0 + Duration::from_millis(10));
    assert_eq!(app.reset, 3);
    assert_eq!(handle.status().drain_resets.load(Ordering::Relaxed), 3);
    assert!(handle.status().drained.load(Ordering::Relaxed));
}

#[test]
fn a_full_queue_is_an_error_not_a_wait() {
    let (handle, inbox) = channel::<&'static str>(7);
    for _ in 0..QUEUE_DEPTH {
        assert_eq!(handle.send(Command::Drain { timeout: Duration::ZERO }), Ok(()));
    }
    assert_eq!(handle.send(Command::Drain { timeout: Duration::ZERO }), Err(SendError::Full(7)));
    drop(inbox);
    assert_eq!(handle.send(Command::Drain { timeout: Duration::ZERO }), Err(SendError::Gone(7)));
}
