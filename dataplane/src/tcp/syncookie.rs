//! SYN cookies (RFC 4987 §3.6), encoded the way Linux does (`net/ipv4/syncookies.c`).
//!
//! Under SYN flood the listener answers a SYN without keeping state: our ISN *is* the state.
//!
//! ```text
//! cookie = H(key, tuple, 0) + peer_isn + (count << 24) + ((H(key, tuple, count, 1) + mss_index) mod 2^24)
//! ```
//!
//! `count` is a minute counter. When the final ACK arrives (`SEG.ACK = cookie + 1`,
//! `SEG.SEQ = peer_isn + 1`), we peel off the first hash and the peer ISN, read the counter from
//! the top 8 bits, accept it if it is at most one minute behind ours, and recover the MSS index
//! from the low 24 bits. A forged ACK passes only with probability about 2 × 4 / 2^24.
//!
//! If the SYN carried timestamps, the window scale and SACK-permitted flag the peer offered are
//! stored in the low 6 bits of our TSval ([`SynCookies::encode_ts_options`], Linux's
//! `cookie_init_timestamp`), and come back in the ACK's TSecr ([`SynCookies::decode_ts_options`]).

use std::net::SocketAddr;

use crate::tcp::isn::{siphash24, tuple_bytes, TUPLE_BYTES_MAX};
use crate::tcp::seq::SeqNum;
use crate::time::Instant;

/// MSS values a cookie can carry (Linux `msstab`): index in the low bits of the cookie.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// Counter values (minutes) a cookie stays valid for: the minute it was made and the next.
const MAX_AGE: u32 = 2;
const NANOS_PER_MINUTE: u64 = 60_000_000_000;

/// Bits of the TSval carrying options (Linux `TSBITS`).
pub const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
const TS_OPT_WSCALE_MASK: u32 = 0xf;
const TS_OPT_SACK: u32 = 1 << 4;
/// ECN bit of the TSval options (set by Linux when ECN was negotiated; Strait does not use ECN
/// and never sets it, but tolerates it on decode).
pub const TS_OPT_ECN: u32 = 1 << 5;

/// What a valid cookie remembers about the SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieInfo {
    /// The MSS to use towards the peer (from [`MSS_TABLE`], at most what the peer announced).
    pub mss: u16,
}

/// SYN-cookie encoder/validator keyed with a secret.
#[derive(Clone)]
pub struct SynCookies {
    secret: [u8; 16],
}

impl core::fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SynCookies { secret: <redacted> }")
    }
}

fn minute_counter(now: Instant) -> u32 {
    (now.as_nanos() / NANOS_PER_MINUTE) as u32
}

impl SynCookies {
    /// A cookie jar keyed with `secret` (from a CSPRNG at start-up; distinct from the ISN key).
    pub const fn new(secret: [u8; 16]) -> Self {
        SynCookies { secret }
    }

    /// Linux `cookie_hash` / `cookie_v6_hash`: the keyed hash of the tuple (IPv4 or IPv6
    /// addresses in full), the minute counter and which of the two hashes.
    fn hash(&self, local: SocketAddr, remote: SocketAddr, count: u32, c: u8) -> u32 {
        let tuple = tuple_bytes(local, remote);
        let tuple = tuple.as_slice();
        let n = tuple.len();
        let mut input = [0u8; TUPLE_BYTES_MAX + 5];
        if let Some(d) = input.get_mut(..n) {
            d.copy_from_slice(tuple);
        }
        if let Some(d) = input.get_mut(n..n + 4) {
            d.copy_from_slice(&count.to_le_bytes());
        }
        if let Some(d) = input.get_mut(n + 4) {
            *d = c;
        }
        siphash24(&self.secret, input.get(..n + 5).unwrap_or(&[])) as u32
    }

    /// Our ISN for a SYN from `remote` (sequence `peer_isn`, announcing `mss`) to `local`, and
    /// the MSS the cookie encodes: the largest table entry not above `mss` (536 if `mss` is
    /// smaller than every entry, RFC 9293 §3.7.1 default).
    pub fn encode(
        &self,
        local: impl Into<SocketAddr>,
        remote: impl Into<SocketAddr>,
        peer_isn: SeqNum,
        mss: u16,
        now: Instant,
    ) -> (SeqNum, u16) {
        let (local, remote) = (local.into(), remote.into());
        let index = MSS_TABLE.iter().rposition(|&m| mss >= m).unwrap_or(0);
        let mss_used = MSS_TABLE.get(index).copied().unwrap_or(MSS_TABLE[0]);
        let count = minute_counter(now);
        let cookie = self
            .hash(local, remote, 0, 0)
            .wrapping_add(peer_isn.0)
            .wrapping_add(count << COOKIE_BITS)
            .wrapping_add(self.hash(local, remote, count, 1).wrapping_add(index as u32) & COOKIE_MASK);
        (SeqNum(cookie), mss_used)
    }

    /// Check the ACK completing a cookie handshake, as Linux's `__cookie_v4_check`: pass
    /// `peer_isn = SEG.SEQ - 1` and `cookie = SEG.ACK - 1` (our ISN, as [`Self::encode`]
    /// returned it). Returns `None` for a forged cookie, one for another tuple, or one whose
    /// minute counter is two or more behind (or ahead of) ours.
    pub fn validate(
        &self,
        local: impl Into<SocketAddr>,
        remote: impl Into<SocketAddr>,
        peer_isn: SeqNum,
        cookie: SeqNum,
        now: Instant,
    ) -> Option<CookieInfo> {
        let (local, remote) = (local.into(), remote.into());
        let cookie = cookie.0;
        let count = minute_counter(now);
        let stripped = cookie.wrapping_sub(self.hash(local, remote, 0, 0).wrapping_add(peer_isn.0));
        // Age in minutes, modulo the 8 bits the cookie keeps of the counter.
        let age = count.wrapping_sub(stripped >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
        if age >= MAX_AGE {
            return None;
        }
        let made = count.wrapping_sub(age);
        let index = stripped.wrapping_sub(self.hash(local, remote, made, 1)) & COOKIE_MASK;
        let mss = *MSS_TABLE.get(usize::try_from(index).ok()?)?;
        Some(CookieInfo { mss })
    }

    /// The TSval for a cookie SYN-ACK: our timestamp clock `ts_now` with the peer's window
    /// scale (`None`: not offered) and SACK-permitted packed into its low bits (Linux
    /// `cookie_init_timestamp`; see [`ts_option_bits`] and [`cookie_tsval`]).
    pub fn encode_ts_options(&self, ts_now: u32, wscale: Option<u8>, sack_permitted: bool) -> u32 {
        cookie_tsval(ts_now, ts_option_bits(wscale, sack_permitted))
    }

    /// Recover `(window scale, SACK permitted)` from the TSecr of the cookie ACK; see
    /// [`decode_ts_options`].
    pub fn decode_ts_options(&self, tsecr: u32) -> (Option<u8>, bool) {
        decode_ts_options(tsecr)
    }
}

/// Pack the peer's window scale (`None`: not offered) and SACK-permitted into the 6 option
/// bits that go in the low bits of our SYN-ACK's TSval (Linux `cookie_init_timestamp`):
/// bits 0–3 the shift (15 = no window scaling), bit 4 SACK, bit 5 ECN (never set here).
pub fn ts_option_bits(wscale: Option<u8>, sack_permitted: bool) -> u32 {
    let mut options = match wscale {
        Some(s) => u32::from(s.min(crate::wire::tcp::MAX_WINDOW_SCALE)),
        None => TS_OPT_WSCALE_MASK,
    };
    if sack_permitted {
        options |= TS_OPT_SACK;
    }
    options
}

/// The TSval to send: `ts_now` with its low [`TS_BITS`] replaced by `options`, stepped back
/// one period if that would put it in the future (so our timestamp clock never runs ahead).
pub fn cookie_tsval(ts_now: u32, options: u32) -> u32 {
    let ts = (ts_now & !TS_MASK) | (options & TS_MASK);
    if ts > ts_now {
        ts.wrapping_sub(1 << TS_BITS)
    } else {
        ts
    }
}

/// Recover `(window scale, SACK permitted)` from the TSecr of the ACK completing a cookie
/// handshake (Linux `cookie_timestamp_decode`).
pub fn decode_ts_options(tsecr: u32) -> (Option<u8>, bool) {
    let sack = tsecr & TS_OPT_SACK != 0;
    let ws = tsecr & TS_OPT_WSCALE_MASK;
    let wscale = if ws == TS_OPT_WSCALE_MASK {
        None
    } else {
        // ws < 15; 15 would be "none", 14 is the RFC 7323 §2.3 maximum.
        Some((ws as u8).min(crate::wire::tcp::MAX_WINDOW_SCALE))
    };
    (wscale, sack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};

    const L: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 443);
    const R: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 51000);

    fn jar() -> SynCookies {
        SynCookies::new(*b"0123456789abcdef")
    }

    #[test]
    fn round_trip_each_mss() {
        let j = jar();
        let now = Instant::from_millis(3_600_000);
        for (announced, expected) in [(1460, 1460), (9000, 1460), (1459, 1440), (1400, 1300), (600, 536), (100, 536)] {
            let peer = SeqNum(0xffff_fff0);
            let (isn, mss) = j.encode(L, R, peer, announced, now);
            assert_eq!(mss, expected, "announced {announced}");
            let info = j.validate(L, R, peer, isn, now + Duration::from_secs(1));
            assert_eq!(info, Some(CookieInfo { mss: expected }));
        }
    }

    #[test]
    fn accepted_next_minute_rejected_after_two() {
        let j = jar();
        let t = Instant::from_nanos(10 * NANOS_PER_MINUTE + 59_000_000_000);
        let (isn, _) = j.encode(L, R, SeqNum(5), 1460, t);
        assert!(j.validate(L, R, SeqNum(5), isn, t + Duration::from_secs(2)).is_some(), "next minute");
        assert!(j.validate(L, R, SeqNum(5), isn, t + Duration::from_secs(61)).is_none(), "two minutes on");
        assert!(j.validate(L, R, SeqNum(5), isn, t + Duration::from_secs(600)).is_none());
        // A cookie from the future (clock went back or forged counter) is rejected too.
        assert!(j.validate(L, R, SeqNum(5), isn, t - Duration::from_secs(120)).is_none());
    }

    /// Linux `cookie_v6_init_sequence` / `__cookie_v6_check`: the hash covers the whole
    /// IPv6 addresses, so a cookie for one v6 tuple fails for another that differs only in
    /// an address's high bits.
    #[test]
    fn ipv6_cookies_round_trip_and_bind_the_whole_address() {
        let j = jar();
        let now = Instant::from_millis(5_000);
        let l = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)), 443);
        let r = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)), 51000);
        let (cookie, mss) = j.encode(l, r, SeqNum(99), 1440, now);
        assert_eq!(j.validate(l, r, SeqNum(99), cookie, now).map(|i| i.mss), Some(mss));
        let far = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 7)), 51000);
        assert_eq!(j.validate(l, far, SeqNum(99), cookie, now), None);
    }

    #[test]
    fn wrong_tuple_key_or_isn_rejected() {
        let j = jar();
        let now = Instant::from_millis(1);
        let (isn, _) = j.encode(L, R, SeqNum(77), 1460, now);
        let other = SocketAddrV4::new(*R.ip(), R.port() + 1);
        assert!(j.validate(L, other, SeqNum(77), isn, now).is_none());
        assert!(j.validate(R, L, SeqNum(77), isn, now).is_none());
        // The peer ISN enters the cookie additively (as in Linux), so an ISN a few units off just
        // shifts the MSS index; one far off lands outside the table.
        assert!(j.validate(L, R, SeqNum(77 + 1000), isn, now).is_none());
        assert!(SynCookies::new([0; 16]).validate(L, R, SeqNum(77), isn, now).is_none());
        // The low bits carry the MSS index, so an off-by-one cookie must not decode as the same MSS
        // (index 3 + 1 is out of the table: rejected).
        assert_eq!(j.validate(L, R, SeqNum(77), isn + 1, now), None, "the cookie, not SEG.ACK");
    }

    #[test]
    fn forged_cookies_rarely_pass() {
        let j = jar();
        let now = Instant::from_millis(1);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut passed = 0;
        for _ in 0..200_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if j.validate(L, R, SeqNum(rng as u32), SeqNum((rng >> 32) as u32), now).is_some() {
                passed += 1;
            }
        }
        // Expected 200k × 2 × 4 / 2^24 ≈ 0.1.
        assert!(passed <= 3, "{passed} forged cookies accepted");
    }

    #[test]
    fn ts_options_round_trip() {
        for ws in [None, Some(0), Some(7), Some(14)] {
            for sack in [false, true] {
                let opts = ts_option_bits(ws, sack);
                assert!(opts <= TS_MASK);
                let tsval = cookie_tsval(0x1234_5678, opts);
                assert!(tsval <= 0x1234_5678 && 0x1234_5678 - tsval < 64);
                assert_eq!(decode_ts_options(tsval), (ws, sack));
                let j = jar();
                let tsval = j.encode_ts_options(1_000_000, ws, sack);
                assert!(1_000_000 - tsval < 64);
                assert_eq!(j.decode_ts_options(tsval), (ws, sack));
            }
        }
        assert_eq!(ts_option_bits(Some(200), false), 14, "shift clamped per RFC 7323 §2.3");
        assert_eq!(decode_ts_options(TS_OPT_ECN | 0xf), (None, false));
    }

    #[test]
    fn cookie_tsval_never_runs_ahead() {
        assert_eq!(cookie_tsval(0x100, 0x3f), 0xff);
        assert_eq!(cookie_tsval(0x13f, 0x3f), 0x13f);
        assert_eq!(cookie_tsval(0x140, 0x01), 0x101);
        // Wraps rather than panicking at the bottom of the clock.
        assert_eq!(cookie_tsval(0, 5), 5u32.wrapping_sub(64));
    }

    proptest! {
        #[test]
        fn any_cookie_validates_within_a_minute(peer: u32, mss: u16, t in 0u64..u64::MAX / 2, dt in 0u64..60_000_000_000) {
            let j = jar();
            let now = Instant::from_nanos(t);
            let (isn, used) = j.encode(L, R, SeqNum(peer), mss, now);
            prop_assert!(MSS_TABLE.contains(&used));
            prop_assert!(used <= mss.max(536));
            let got = j.validate(L, R, SeqNum(peer), isn, now + Duration::from_nanos(dt));
            prop_assert_eq!(got, Some(CookieInfo { mss: used }));
        }
    }
}
