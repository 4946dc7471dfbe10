//! IPv6 packets captured from Linux for the wire tests: two network namespaces joined by a
//! veth pair (02:00:00:00:00:01 with 2001:db8::1/64, 02:00:00:00:00:02 with 2001:db8::2/64),
//! `ping -6 -c1 -s 8 -p 61626364 2001:db8::2` from the first, read with an AF_PACKET socket.
//! Ethernet headers included.

/// Decodes a hex string (test data only).
pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// Neighbour solicitation for 2001:db8::2 from 2001:db8::1, to its solicited-node group
/// ff02::1:ff00:2 (Ethernet 33:33:ff:00:00:02), with a source link-layer address option.
pub(crate) const NS: &str = "3333ff00000202000000000186dd6000000000203aff20010db8000000000000000000000001ff0200000000000000000001ff00000287001c270000000020010db80000000000000000000000020101020000000001";

/// The solicited neighbour advertisement answering [`NS`]: S and O set, with a target
/// link-layer address option.
pub(crate) const NA: &str = "02000000000102000000000286dd6000000000203aff20010db800000000000000000000000220010db800000000000000000000000188008a716000000020010db80000000000000000000000020201020000000002";

/// Echo request, identifier 0x34e3, sequence 1, 8 data bytes, flow label 0x105d0.
pub(crate) const ECHO_REQUEST: &str = "02000000000202000000000186dd600105d000103a4020010db800000000000000000000000120010db800000000000000000000000280002a9534e300016162636400000000";

/// Echo reply (to a request of another run), identifier 0x3534, sequence 1.
pub(crate) const ECHO_REPLY: &str = "02000000000102000000000286dd60081c8f00103a4020010db800000000000000000000000220010db800000000000000000000000181002944353400016162636400000000";

/// Router solicitation from fe80::ff:fe00:2 (the EUI-64 link-local address of
/// 02:00:00:00:00:02) to all-routers ff02::2, with a source link-layer address option.
pub(crate) const RS: &str = "33330000000202000000000286dd6000000000103afffe80000000000000000000fffe000002ff02000000000000000000000000000285007b2a000000000101020000000002";

/// The IPv6 packet of a captured frame (after the 14-byte Ethernet header).
pub(crate) fn ip(frame: &str) -> Vec<u8> {
    hex(frame).split_off(14)
}
