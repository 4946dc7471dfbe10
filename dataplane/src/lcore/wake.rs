//! Waking an lcore that is idle: frames handed to it by another lcore ([`super::steer`])
//! ring its [`Waker`], so that it polls again at once. An lcore that blocks waiting for
//! RX interrupts ([`super::idle`]) also listens on the waker's socket, which a ring then
//! writes to (once per sleep).

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};

/// A doorbell one lcore rings for another.
#[derive(Debug)]
pub struct Waker {
    rung: AtomicBool,
    /// Set by the owning lcore while it blocks; the ring that clears it writes a datagram.
    sleeping: AtomicBool,
    /// (the owner's end, the ringers' end); `None` where no socket pair could be made
    /// (the owner then never blocks, it naps).
    socket: Option<(UnixDatagram, UnixDatagram)>,
}

impl Default for Waker {
    fn default() -> Self {
        Waker::new()
    }
}

impl Waker {
    /// A waker not rung yet.
    pub fn new() -> Self {
        let socket = UnixDatagram::pair().ok().filter(|(a, b)| a.set_nonblocking(true).is_ok() && b.set_nonblocking(true).is_ok());
        Waker { rung: AtomicBool::new(false), sleeping: AtomicBool::new(false), socket }
    }

    /// Rings the bell (any thread).
    pub fn wake(&self) {
        // Relaxed load first: no write (no cache-line bounce) while it is rung already.
        if !self.rung.load(Ordering::Relaxed) {
            self.rung.store(true, Ordering::SeqCst);
        }
        // Pairs with `prepare_sleep`: either the owner sees `rung` before it blocks, or
        // this sees `sleeping` and writes to the socket it blocks on.
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            if let Some((_, ringer)) = &self.socket {
                // Full (cannot be: one datagram per sleep) or closed: the owner's wait
                // times out instead.
                let _ = ringer.send(&[1]);
            }
        }
    }

    /// Whether the bell rang since the last call (the owning lcore).
    pub fn take(&self) -> bool {
        self.rung.load(Ordering::Relaxed) && self.rung.swap(false, Ordering::Acquire)
    }

    /// The socket the owner blocks on (to register with its wait), if there is one.
    pub fn socket(&self) -> Option<&UnixDatagram> {
        self.socket.as_ref().map(|(owner, _)| owner)
    }

    /// The owner is about to block: returns `false` (do not block) if the bell rang
    /// already.
    pub fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.rung.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The owner is awake again: stops further datagrams and drains those sent.
    pub fn end_sleep(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        if let Some((owner, _)) = &self.socket {
            let mut buf = [0u8; 16];
            while owner.recv(&mut buf).is_ok() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_is_taken_once() {
        let w = Waker::new();
        assert!(!w.take());
        w.wake();
        w.wake();
        assert!(w.take());
        assert!(!w.take(), "taken");
    }

    #[test]
    fn a_ring_while_asleep_writes_one_datagram_and_none_when_awake() {
        let w = Waker::new();
        let owner = w.socket().expect("a socket pair");
        let mut buf = [0u8; 16];
        w.wake();
        assert!(owner.recv(&mut buf).is_err(), "awake: the ring only sets the flag");
        assert!(!w.prepare_sleep(), "rung before sleeping: do not block");
        assert!(w.take());
        assert!(w.prepare_sleep());
        w.wake();
        w.wake();
        assert_eq!(owner.recv(&mut buf).ok(), Some(1), "one datagram for the sleeper");
        assert!(owner.recv(&mut buf).is_err(), "only one per sleep");
        w.end_sleep();
        assert!(w.take());
    }

    #[test]
    fn end_sleep_drains_the_socket() {
        let w = Waker::new();
        assert!(w.prepare_sleep());
        w.wake();
        w.end_sleep();
        let mut buf = [0u8; 16];
        assert!(w.socket().expect("socket").recv(&mut buf).is_err(), "drained");
    }
}
