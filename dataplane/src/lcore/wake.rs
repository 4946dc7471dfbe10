//! Waking an lcore that naps while idle: frames handed to it by another lcore
//! ([`super::steer`]) ring its [`Waker`], so that it polls again at once.

use std::sync::atomic::{AtomicBool, Ordering};

/// A doorbell one lcore rings for another.
#[derive(Debug, Default)]
pub struct Waker {
    rung: AtomicBool,
}

impl Waker {
    /// A waker not rung yet.
    pub fn new() -> Self {
        Waker::default()
    }

    /// Rings the bell (any thread).
    pub fn wake(&self) {
        // Relaxed load first: no write (no cache-line bounce) while it is rung already.
        if !self.rung.load(Ordering::Relaxed) {
            self.rung.store(true, Ordering::Release);
        }
    }

    /// Whether the bell rang since the last call (the owning lcore).
    pub fn take(&self) -> bool {
        self.rung.load(Ordering::Relaxed) && self.rung.swap(false, Ordering::Acquire)
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
}
