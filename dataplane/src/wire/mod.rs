//! Zero-copy wire views and emitters, smoltcp style: `Packet<T: AsRef<[u8]>>` with checked
//! constructors for untrusted input, plus a `Repr` that parses and emits.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod tcp;
