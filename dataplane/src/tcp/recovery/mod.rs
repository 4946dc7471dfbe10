//! Loss-recovery building blocks, free of connection state so each can be tested alone:
//! SACK block validation and D-SACK recognition ([`sack`], RFC 2018, RFC 2883),
//! Proportional Rate Reduction ([`prr`], RFC 6937) and RACK's time-based loss detection
//! state ([`rack`], RFC 8985). The connection's scoreboard and the recovery state machine
//! that use them are in `connection/loss.rs`.

pub mod prr;
pub mod rack;
pub mod sack;

pub use prr::Prr;
pub use rack::Rack;
pub use sack::{classify, SackInput};
