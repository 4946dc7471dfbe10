//! Zero-copy wire views and emitters, smoltcp style: `Packet<T: AsRef<[u8]>>` with checked
//! constructors for untrusted input, plus a `Repr` that parses and emits.
//!
//! `new_checked` never panics, whatever the input; getters on a checked view are then
//! in bounds. Emitters check the buffer length and return [`Error::Truncated`] rather than
//! panic when it is too short.

/// The constructors every packet view `$view<T: AsRef<[u8]>> { buffer: T }` has (smoltcp's
/// pattern), given its own `check_len(&self) -> Result<(), $err>`: `new_unchecked` for a
/// buffer the caller sized (to emit into), `new_checked` for untrusted input (never panics;
/// the view's getters are in bounds afterwards) and `into_inner`. With `; be16`, also the
/// big-endian field accessors `be16`/`set_be16` over a field's byte range.
macro_rules! packet_view {
    ($view:ident, $err:ty) => {
        impl<T: AsRef<[u8]>> $view<T> {
            /// Wrap a buffer without validation (one the caller sized, e.g. to emit into).
            /// Accessors may panic if it is too short.
            pub const fn new_unchecked(buffer: T) -> $view<T> {
                $view { buffer }
            }

            /// Wrap an untrusted buffer after the checks of `check_len`. Never panics; the
            /// getters of the view returned are in bounds.
            pub fn new_checked(buffer: T) -> Result<$view<T>, $err> {
                let view = $view::new_unchecked(buffer);
                view.check_len()?;
                Ok(view)
            }

            /// The underlying buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
    ($view:ident, $err:ty; be16) => {
        packet_view!($view, $err);

        impl<T: AsRef<[u8]>> $view<T> {
            fn be16(&self, r: core::ops::Range<usize>) -> u16 {
                $crate::wire::get_u16(self.buffer.as_ref(), r.start)
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            fn set_be16(&mut self, r: core::ops::Range<usize>, v: u16) {
                $crate::wire::put_u16(self.buffer.as_mut(), r.start, v)
            }
        }
    };
}

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod mld;
pub mod ndp;
pub mod tcp;

#[cfg(test)]
pub(crate) mod v6_testdata;

/// Why an Ethernet or ARP buffer was rejected. IPv4, ICMPv4, IPv6, ICMPv6, NDP and TCP have
/// their own finer-grained enums ([`ipv4::Error`], [`icmpv4::Error`], [`ipv6::Error`],
/// [`icmpv6::Error`], [`ndp::Error`], [`tcp::Error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header (or than what the header declares).
    #[error("truncated packet")]
    Truncated,
    /// A field is inconsistent with the format.
    #[error("malformed packet")]
    Malformed,
    /// The checksum does not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// Well-formed but not something we handle (non-Ethernet/IPv4 ARP, unknown operation...).
    #[error("unsupported packet")]
    Unsupported,
}

/// Reads a big-endian u16 at `at` (callers guarantee `at + 2 <= buf.len()`).
#[inline]
pub(crate) fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Writes a big-endian u16 at `at` (callers guarantee `at + 2 <= buf.len()`).
#[inline]
pub(crate) fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
