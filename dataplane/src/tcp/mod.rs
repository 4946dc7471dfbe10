//! The sans-IO TCP engine: segments and `now` in; segments to send, events and the next
//! deadline out. No DPDK, no clock, no I/O.

pub mod isn;
pub mod seq;
pub mod sim;
pub mod syncookie;
pub mod timer_wheel;
