//! Segmentation and checksum offload on the way out (send-path §4), sans-IO.
//!
//! The TCP engine hands the port adapter super-segments ([`crate::tcp::Segment`] with
//! `mss > 0`). The adapter either gives one to the NIC for TSO — after
//! [`prepare_hw_offload`] wrote the pseudo-header checksum and zeroed the IPv4 checksum, as
//! Intel / DPDK semantics require — or cuts it in software with [`gso_segment`]. Either way
//! the peer must see the same bytes: [`reference::tso_segment`] is an independent, simple
//! model of what a TSO NIC produces (Intel 82599 datasheet §7.2.4, Linux
//! `tcp_gso_segment`), and a property test holds the two to byte-identical output.
//!
//! * [`caps`]: what each port can do on transmit, as data (granted offloads, driver quirks).
//! * [`plan`]: the TX planner: TSO, a zero-copy cut, software GSO or one frame, per segment.
//! * [`frame`]: header layout of an Ethernet + IPv4 + TCP frame, checked; checksum helpers.
//! * [`gso`]: the software segmenter.
//! * [`reference`]: the reference segmenter (an oracle for tests; not for the data path).

pub mod caps;
pub mod frame;
pub mod gso;
pub mod plan;
pub mod reference;

pub use frame::{fill_checksums, prepare_hw_offload, verify_checksums, HeaderLayout, HwOffload, OffloadError};
pub use caps::{quirks, Quirks, TxCaps, DRIVER_QUIRKS};
pub use gso::gso_segment;
pub use plan::{odd_piece_in_frames, plan, tso_segsz, Body, Cksum, Shape, TxPlan};
