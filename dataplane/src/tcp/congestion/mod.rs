//! Congestion control behind a trait, so that algorithms can be swapped per connection.
//!
//! The connection keeps loss detection and recovery (RFC 5681 fast retransmit, RFC 6582
//! NewReno partial ACKs, RFC 6298 timeouts); the algorithm only owns `cwnd` and `ssthresh`
//! and is told about ACKs and congestion events, as Linux's `tcp_congestion_ops` is.

mod newreno;

pub use newreno::NewReno;

use crate::time::Instant;

/// A congestion-control algorithm. All sizes are in bytes.
pub trait CongestionControl: core::fmt::Debug + Send {
    /// Current congestion window.
    fn cwnd(&self) -> u32;

    /// Current slow-start threshold.
    fn ssthresh(&self) -> u32;

    /// `acked` new bytes were cumulatively acknowledged outside loss recovery.
    /// `cwnd_limited`: whether the sender was limited by `cwnd` (RFC 7661): the window only
    /// grows when it was actually used.
    fn on_ack(&mut self, acked: u32, mss: u32, cwnd_limited: bool, now: Instant);

    /// Loss detected by duplicate ACKs (RFC 5681 §3.2 step 2): set `ssthresh` and `cwnd`
    /// for fast recovery from the flight size at the time of the loss.
    fn on_fast_retransmit(&mut self, flight_size: u32, mss: u32);

    /// Fast recovery ended with a full ACK (RFC 6582 §3.2 step 3): deflate the window.
    fn on_recovery_exit(&mut self, mss: u32);

    /// The retransmission timer expired (RFC 5681 §3.1, equation 4): collapse to the loss
    /// window.
    fn on_timeout(&mut self, flight_size: u32, mss: u32);

    /// The connection was idle for longer than an RTO (RFC 5681 §4.1): restart window.
    fn on_idle_restart(&mut self, mss: u32, initial_cwnd: u32);
}
