//! Congestion control behind a trait, so that algorithms can be swapped per connection; a
//! connection holds one inline as a [`Congestion`] (no heap object, no indirect call per ACK).
//!
//! The connection keeps loss detection and recovery (SACK scoreboard, RFC 6675 / RFC 8985
//! loss marking, RFC 6582 NewReno partial ACKs, RFC 6298 timeouts) and drives the window
//! during recovery with Proportional Rate Reduction (RFC 6937) through
//! [`CongestionControl::set_cwnd`]; the algorithm owns `cwnd` and `ssthresh` outside
//! recovery and decides the reduction, as Linux's `tcp_congestion_ops` does
//! (`cong_avoid`, `ssthresh`, `undo_cwnd`, `cwnd_event`).
//!
//! Algorithms: [`NewReno`] (RFC 5681) and [`Cubic`] (RFC 9438, with HyStart++ slow start,
//! RFC 9406, in [`hystart`]). [`Algorithm`] picks one per connection
//! (`TcpConfig::congestion`).

pub mod cubic;
pub mod hystart;
mod newreno;

pub use cubic::Cubic;
pub use hystart::HystartPlusPlus;
pub use newreno::NewReno;

use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant};

/// The congestion-control algorithm of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// RFC 5681 / RFC 6582 NewReno with appropriate byte counting (RFC 3465).
    NewReno,
    /// RFC 9438 CUBIC with HyStart++ (RFC 9406); Linux's default.
    #[default]
    Cubic,
}

impl Algorithm {
    /// A fresh instance with `cwnd = initial_cwnd` bytes.
    pub fn build(self, initial_cwnd: u32) -> Congestion {
        match self {
            Algorithm::NewReno => Congestion::NewReno(NewReno::new(initial_cwnd)),
            Algorithm::Cubic => Congestion::Cubic(Cubic::new(initial_cwnd)),
        }
    }

    /// The name Linux uses (`tcp_congestion_control`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::NewReno => "reno",
            Algorithm::Cubic => "cubic",
        }
    }
}

impl core::str::FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "reno" | "newreno" => Ok(Algorithm::NewReno),
            "cubic" => Ok(Algorithm::Cubic),
            _ => Err(UnknownAlgorithm),
        }
    }
}

/// A congestion-control name that is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown congestion control algorithm (expected \"reno\" or \"cubic\")")]
pub struct UnknownAlgorithm;

/// The initial window of RFC 6928 §2 for `segments` (10 by default): `segments * mss`,
/// and never below the RFC 5681 §3.1 minimum of two segments.
pub fn initial_window(segments: u32, mss: u32) -> u32 {
    segments.max(2).saturating_mul(mss.max(1))
}

/// What one acknowledgement outside loss recovery tells the algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckSample {
    /// New bytes cumulatively acknowledged (or newly SACKed) by this ACK.
    pub acked: u32,
    /// The sender's current MSS.
    pub mss: u32,
    /// The sender was limited by `cwnd` (RFC 7661): the window only grows when it was
    /// actually used.
    pub cwnd_limited: bool,
    /// Arrival time.
    pub now: Instant,
    /// The RTT sample this ACK produced, if any (RFC 6298 / RFC 7323, Karn-filtered).
    pub rtt: Option<Duration>,
    /// The cumulative acknowledgement.
    pub ack: SeqNum,
    /// SND.NXT when the ACK arrived (HyStart++ rounds end when it is acknowledged).
    pub snd_nxt: SeqNum,
}

/// A congestion-control algorithm. All sizes are in bytes.
pub trait CongestionControl: core::fmt::Debug + Send {
    /// The algorithm.
    fn algorithm(&self) -> Algorithm;

    /// Current congestion window.
    fn cwnd(&self) -> u32;

    /// Current slow-start threshold.
    fn ssthresh(&self) -> u32;

    /// Sets the window during a reduction: Proportional Rate Reduction (RFC 6937) computes
    /// it from the data delivered while in recovery; undo restores it.
    fn set_cwnd(&mut self, cwnd: u32);

    /// New data was acknowledged outside loss recovery: slow start or congestion
    /// avoidance.
    fn on_ack(&mut self, ack: &AckSample);

    /// A congestion event (loss detected by SACK, duplicate ACKs or RACK; RFC 5681 §3.2
    /// step 2, RFC 9438 §4.6): set `ssthresh` for the reduction. `cwnd` is then driven by
    /// PRR until [`on_recovery_exit`](Self::on_recovery_exit).
    fn on_congestion_event(&mut self, flight_size: u32, mss: u32, now: Instant);

    /// Recovery ended (RFC 6582 §3.2 step 3, RFC 6937 §3.1): the window becomes
    /// `ssthresh`.
    fn on_recovery_exit(&mut self, mss: u32, now: Instant);

    /// The retransmission timer expired (RFC 5681 §3.1 equation 4, RFC 9438 §4.8):
    /// collapse to the loss window.
    fn on_timeout(&mut self, flight_size: u32, mss: u32, now: Instant);

    /// The connection was idle for longer than an RTO (RFC 5681 §4.1, RFC 7661): restart
    /// from `min(cwnd, initial_cwnd)`.
    fn on_idle_restart(&mut self, mss: u32, initial_cwnd: u32, now: Instant);

    /// The last reduction was spurious (RFC 3522 Eifel, RFC 2883 D-SACK): restore the
    /// window and threshold saved before it (Linux `undo_cwnd`).
    fn undo(&mut self, prior_cwnd: u32, prior_ssthresh: u32);
}

/// The algorithm of one connection, held inline: one of the two, dispatched by a match
/// rather than through a `Box<dyn CongestionControl>` (one heap object less per connection,
/// and its state beside the connection's; Linux keeps it inline too, `icsk_ca_priv`).
#[derive(Debug)]
pub enum Congestion {
    /// [`NewReno`].
    NewReno(NewReno),
    /// [`Cubic`].
    Cubic(Cubic),
}

/// `$self`'s algorithm as `$cc`, whichever it is.
macro_rules! dispatch {
    ($self:expr, $cc:ident => $e:expr) => {
        match $self {
            Congestion::NewReno($cc) => $e,
            Congestion::Cubic($cc) => $e,
        }
    };
}

/// The [`CongestionControl`] calls, as inherent methods: callers need no trait in scope.
impl Congestion {
    /// [`CongestionControl::algorithm`].
    pub fn algorithm(&self) -> Algorithm {
        dispatch!(self, cc => cc.algorithm())
    }

    /// [`CongestionControl::cwnd`].
    pub fn cwnd(&self) -> u32 {
        dispatch!(self, cc => cc.cwnd())
    }

    /// [`CongestionControl::ssthresh`].
    pub fn ssthresh(&self) -> u32 {
        dispatch!(self, cc => cc.ssthresh())
    }

    /// [`CongestionControl::set_cwnd`].
    pub fn set_cwnd(&mut self, cwnd: u32) {
        dispatch!(self, cc => cc.set_cwnd(cwnd))
    }

    /// [`CongestionControl::on_ack`].
    pub fn on_ack(&mut self, ack: &AckSample) {
        dispatch!(self, cc => cc.on_ack(ack))
    }

    /// [`CongestionControl::on_congestion_event`].
    pub fn on_congestion_event(&mut self, flight_size: u32, mss: u32, now: Instant) {
        dispatch!(self, cc => cc.on_congestion_event(flight_size, mss, now))
    }

    /// [`CongestionControl::on_recovery_exit`].
    pub fn on_recovery_exit(&mut self, mss: u32, now: Instant) {
        dispatch!(self, cc => cc.on_recovery_exit(mss, now))
    }

    /// [`CongestionControl::on_timeout`].
    pub fn on_timeout(&mut self, flight_size: u32, mss: u32, now: Instant) {
        dispatch!(self, cc => cc.on_timeout(flight_size, mss, now))
    }

    /// [`CongestionControl::on_idle_restart`].
    pub fn on_idle_restart(&mut self, mss: u32, initial_cwnd: u32, now: Instant) {
        dispatch!(self, cc => cc.on_idle_restart(mss, initial_cwnd, now))
    }

    /// [`CongestionControl::undo`].
    pub fn undo(&mut self, prior_cwnd: u32, prior_ssthresh: u32) {
        dispatch!(self, cc => cc.undo(prior_cwnd, prior_ssthresh))
    }
}
