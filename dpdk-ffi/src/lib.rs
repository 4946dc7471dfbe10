//! Raw bindings to the system DPDK (>= 22.11).
//!
//! * The bindgen output (`OUT_DIR/bindings.rs`) is restricted by allowlists to the EAL,
//!   ethdev, mbuf, mempool, lcore and ring APIs plus the Ethernet/IPv4/TCP/UDP header
//!   structs and the `RTE_*` constants the data plane uses.
//! * DPDK's `static inline` fast-path functions (rx/tx burst, mbuf alloc/free/append,
//!   ...) are not exported by its shared libraries; `shim/shim.c` wraps them as
//!   `strait_*` functions, and also provides accessors for `struct rte_mbuf` fields so
//!   that no Rust code depends on the mbuf bitfield layout.
//! * Constants DPDK defines via `RTE_BIT64()` (offload capability bits, RSS hash types),
//!   which bindgen cannot evaluate, are re-exported as `STRAIT_*`.
//!
//! Everything here is `unsafe` to call; the safe adapter is `dataplane::dpdk`.
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all)]
#![allow(clippy::undocumented_unsafe_blocks)]
#![allow(unsafe_op_in_unsafe_fn)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
