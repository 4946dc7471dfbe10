//! TCP sequence numbers: 32-bit values compared modulo 2^32.
//!
//! RFC 9293 §3.4: "the sequence number space ranges from 0 to 2^32 - 1 [...] all arithmetic
//! dealing with sequence numbers must be performed modulo 2^32". Two sequence numbers are
//! ordered by the sign of their 32-bit difference, which is meaningful only while they are less
//! than 2^31 apart. `SeqNum` therefore deliberately does not implement `Ord`/`PartialOrd`: use
//! [`SeqNum::lt`] and friends, which make the modular nature explicit at every call site.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence (or acknowledgement) number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// `self + n` modulo 2^32.
    #[inline]
    #[must_use]
    pub const fn wrapping_add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    /// `self - n` modulo 2^32.
    #[inline]
    #[must_use]
    pub const fn wrapping_sub(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n))
    }

    /// Signed distance `self - other`, interpreting the modular difference as an `i32`
    /// (RFC 9293 §3.4). Positive when `self` is "after" `other`.
    #[inline]
    pub const fn distance(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self < other` in sequence space (RFC 9293 §3.4).
    #[inline]
    pub const fn lt(self, other: SeqNum) -> bool {
        self.distance(other) < 0
    }

    /// `self <= other` in sequence space (RFC 9293 §3.4).
    #[inline]
    pub const fn le(self, other: SeqNum) -> bool {
        self.distance(other) <= 0
    }

    /// `self > other` in sequence space (RFC 9293 §3.4).
    #[inline]
    pub const fn gt(self, other: SeqNum) -> bool {
        self.distance(other) > 0
    }

    /// `self >= other` in sequence space (RFC 9293 §3.4).
    #[inline]
    pub const fn ge(self, other: SeqNum) -> bool {
        self.distance(other) >= 0
    }

    /// The later of `self` and `other` in sequence space.
    #[inline]
    #[must_use]
    pub const fn max(self, other: SeqNum) -> SeqNum {
        if self.ge(other) {
            self
        } else {
            other
        }
    }

    /// The earlier of `self` and `other` in sequence space.
    #[inline]
    #[must_use]
    pub const fn min(self, other: SeqNum) -> SeqNum {
        if self.le(other) {
            self
        } else {
            other
        }
    }

    /// `start <= self < start + len`, modulo 2^32. An empty window (`len == 0`) contains
    /// nothing. This is the acceptability test of RFC 9293 §3.10.7.4 for one octet.
    #[inline]
    pub const fn in_window(self, start: SeqNum, len: u32) -> bool {
        self.0.wrapping_sub(start.0) < len
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn add(self, rhs: u32) -> SeqNum {
        self.wrapping_add(rhs)
    }
}

impl AddAssign<u32> for SeqNum {
    #[inline]
    fn add_assign(&mut self, rhs: u32) {
        *self = self.wrapping_add(rhs);
    }
}

impl Sub<SeqNum> for SeqNum {
    type Output = i32;
    /// Signed distance, see [`SeqNum::distance`].
    #[inline]
    fn sub(self, rhs: SeqNum) -> i32 {
        self.distance(rhs)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u32> for SeqNum {
    fn from(v: u32) -> Self {
        SeqNum(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_around_zero() {
        let a = SeqNum(u32::MAX - 1);
        let b = a + 5;
        assert_eq!(b, SeqNum(3));
        assert!(a.lt(b));
        assert!(b.gt(a));
        assert_eq!(b - a, 5);
        assert_eq!(a - b, -5);
        assert_eq!(b.wrapping_sub(5), a);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
    }

    #[test]
    fn comparisons_on_equal_values() {
        let a = SeqNum(77);
        assert!(a.le(a) && a.ge(a));
        assert!(!a.lt(a) && !a.gt(a));
        assert_eq!(a - a, 0);
    }

    #[test]
    fn in_window_edges() {
        let start = SeqNum(u32::MAX - 2);
        assert!(start.in_window(start, 10));
        assert!((start + 9).in_window(start, 10));
        assert!(!(start + 10).in_window(start, 10));
        assert!(!start.wrapping_sub(1).in_window(start, 10));
        assert!(!start.in_window(start, 0));
    }

    #[test]
    fn add_assign_wraps() {
        let mut a = SeqNum(u32::MAX);
        a += 2;
        assert_eq!(a, SeqNum(1));
    }

    proptest! {
        #[test]
        fn antisymmetry(a: u32, b: u32) {
            let (a, b) = (SeqNum(a), SeqNum(b));
            // Exactly 2^31 apart is the one ambiguous distance: both look "before" the other.
            prop_assume!(a.0.wrapping_sub(b.0) != 1 << 31);
            if a != b {
                prop_assert_ne!(a.lt(b), b.lt(a));
                prop_assert_eq!(a.lt(b), b.gt(a));
            } else {
                prop_assert!(!a.lt(b) && !b.lt(a));
            }
            prop_assert_eq!(a.le(b), b.ge(a));
            prop_assert_eq!(a - b, (b - a).wrapping_neg());
        }

        #[test]
        fn transitivity_within_half_space(base: u32, x in 0u32..(1 << 30), y in 0u32..(1 << 30)) {
            // a < b < c with all pairwise distances under 2^31 implies a < c.
            let a = SeqNum(base);
            let b = a + x + 1;
            let c = b + y + 1;
            prop_assert!(a.lt(b) && b.lt(c));
            prop_assert!(a.lt(c));
            prop_assert_eq!(a.max(c), c);
            prop_assert_eq!(c.min(a), a);
        }

        #[test]
        fn add_then_distance(a: u32, n in 0u32..(1 << 31)) {
            let a = SeqNum(a);
            let b = a + n;
            prop_assert_eq!(i64::from(b - a), i64::from(n));
            prop_assert!(b.ge(a));
            prop_assert_eq!(b.wrapping_sub(n), a);
        }

        #[test]
        fn in_window_matches_distance(s: u32, x: u32, len: u32) {
            let (s, x) = (SeqNum(s), SeqNum(x));
            let expected = u64::from(x.0.wrapping_sub(s.0)) < u64::from(len);
            prop_assert_eq!(x.in_window(s, len), expected);
            if len > 0 && len <= 1 << 31 {
                prop_assert_eq!(x.in_window(s, len), s.le(x) && x.lt(s + len));
            }
        }
    }
}
