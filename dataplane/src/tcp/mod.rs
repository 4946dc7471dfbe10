//! The sans-IO TCP engine: segments and `now` in; segments to send, events and the next
//! deadline out. No DPDK, no clock, no I/O.

pub mod config;
pub mod congestion;
pub mod connection;
pub mod counters;
pub mod engine;
pub mod isn;
pub mod listener;
pub mod payload;
pub mod recovery;
pub mod seq;
pub mod shared;
pub mod sim_link;
pub mod simulator;
pub mod syncookie;
pub mod time_wait;
pub mod timer_wheel;
pub mod tuple_hash;

pub use config::{KeepaliveConfig, MtuProbing, TcpConfig};
pub use connection::{CloseReason, ConnInfo, Connection, Event, PmtuError, Segment, State, WriteError, WriteFlags};
pub use counters::Counters;
pub use engine::{ConnId, ConnSnapshot, Engine, InputError, ListenerId, MemoryAccount, StackError, StackEvent};
pub use payload::{HeapPayload, Payload};
pub use shared::Shared;
