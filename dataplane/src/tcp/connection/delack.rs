//! When received data is acknowledged: at once, or after a delay. The state Linux keeps in
//! `inet_connection_sock::icsk_ack` and the functions that drive it.
//!
//! RFC 9293 §3.8.6.3 and RFC 5681 §4.2 let a receiver delay an ACK (under 500 ms, and at
//! least for every second full-sized segment). Linux refines that, and so does this module:
//!
//! - **The ACK timeout (`ato`) follows the gaps between data segments**
//!   (`tcp_event_data_recv`). It shrinks towards 40 ms while segments come fast, and grows
//!   when a delayed ACK had to go out alone (`tcp_delack_timer_handler`). The delay
//!   actually armed is bounded by the smoothed RTT and 200 ms (`tcp_send_delayed_ack`).
//! - **Quick-ACK mode** ACKs every segment at once. It is entered on the first data
//!   segment, after a gap longer than the RTO, and after out-of-window data
//!   (`tcp_incr_quickack`, `tcp_enter_quickack_mode`). Each owed ACK sent uses one up
//!   (`tcp_dec_quickack_mode`).
//! - **Interactive (ping-pong) mode** holds ACKs back so that they ride on the reply. It is
//!   entered when data goes out within `ato` of data received (`tcp_event_data_sent`,
//!   `tcp_pingpong_thresh` = 1). It is left when the delayed ACK fired before a reply
//!   came, or on out-of-window data.
//! - **Pushed segments.** A segment shorter than the peer's full size ends one of its
//!   writes (`tcp_measure_rcv_mss`). Outside ping-pong mode, once the application has read
//!   such a segment and emptied the receive queue, the owed ACK goes at once
//!   (`__tcp_cleanup_rbuf`). A request answered after more than `ato` is therefore ACKed
//!   when it is read, not 40 ms later by the timer, as Linux does for a busy server.

use core::time::Duration;

use crate::time::Instant;

/// Times here are integer nanoseconds: this runs for every data segment, where halving and
/// comparing `Duration`'s (seconds, nanoseconds) pairs cost more than the logic.
const MS: u64 = 1_000_000;
/// The longest delay of an owed ACK (Linux `TCP_DELACK_MAX`, 200 ms), in nanoseconds.
pub const DELACK_MAX: u64 = 200 * MS;
/// The longest ACK timeout outside ping-pong mode before the RTT and [`DELACK_MAX`] bound
/// it (Linux `HZ / 2` in `tcp_send_delayed_ack`).
const ATO_MAX_BULK: u64 = 500 * MS;

/// `d` in nanoseconds (saturating).
#[inline]
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A short segment arrived since the last ACK (`ICSK_ACK_PUSHED`).
const PUSHED: u8 = 1;
/// More than one did (`ICSK_ACK_PUSHED2`).
const PUSHED2: u8 = 2;

/// The delayed-ACK state of one connection (Linux `icsk_ack`).
#[derive(Debug, Clone)]
pub struct DelayedAck {
    /// The ACK timeout (`icsk_ack.ato`) in nanoseconds; zero until the first data segment.
    ato: u64,
    /// When the last in-order data segment arrived (`icsk_ack.lrcvtime`).
    lrcvtime: Instant,
    /// Owed ACKs still sent at once (`icsk_ack.quick`).
    quick: u32,
    /// Interactive mode (`icsk_ack.pingpong` at `tcp_pingpong_thresh`).
    pingpong: bool,
    /// [`PUSHED`] and [`PUSHED2`] (`icsk_ack.pending`).
    pushed: u8,
}

/// The limits a connection's configuration and state put on the engine: the ACK timeout's
/// floor (Linux `TCP_ATO_MIN` = `TCP_DELACK_MIN`, 40 ms), the most quick ACKs granted at
/// once (`TCP_MAX_QUICKACKS`, 16), and the current RTO; times in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct AckLimits {
    pub ato_min: u64,
    pub max_quickacks: u32,
    pub rto: u64,
}

impl DelayedAck {
    pub fn new(now: Instant) -> Self {
        DelayedAck { ato: 0, lrcvtime: now, quick: 0, pingpong: false, pushed: 0 }
    }

    /// An in-order data segment of `len` bytes arrived; `rcv_mss` is the peer's segment
    /// size as estimated after it, `window` the receive window (`tcp_event_data_recv`, with
    /// `tcp_measure_rcv_mss`'s push marks).
    pub fn on_data(&mut self, now: Instant, len: usize, rcv_mss: u32, window: u32, lim: AckLimits) {
        if u32::try_from(len).is_ok_and(|l| l < rcv_mss) {
            if self.pushed & PUSHED != 0 {
                self.pushed |= PUSHED2;
            }
            self.pushed |= PUSHED;
        }
        if self.ato == 0 {
            // The first data segment: ACK the sender's slow start quickly.
            self.incr_quickack(rcv_mss, window, lim.max_quickacks);
            self.ato = lim.ato_min;
        } else {
            let gap = now.as_nanos().saturating_sub(self.lrcvtime.as_nanos());
            if gap <= lim.ato_min / 2 {
                self.ato = self.ato / 2 + lim.ato_min / 2;
            } else if gap < self.ato {
                self.ato = (self.ato / 2 + gap).min(lim.rto);
            } else if gap > lim.rto {
                // A long silence: the sender restarts from a small window.
                self.incr_quickack(rcv_mss, window, lim.max_quickacks);
            }
        }
        self.lrcvtime = now;
    }

    /// Grants up to half a window of quick ACKs, at least two, at most `max`
    /// (`tcp_incr_quickack`).
    fn incr_quickack(&mut self, rcv_mss: u32, window: u32, max: u32) {
        let mut quick = window / rcv_mss.max(1).saturating_mul(2);
        if quick == 0 {
            quick = 2;
        }
        self.quick = self.quick.max(quick.min(max));
    }

    /// Out-of-window or duplicate data: the peer may be retransmitting because our ACKs
    /// were lost, so ACK at once for a while (`tcp_enter_quickack_mode`).
    pub fn enter_quickack_mode(&mut self, rcv_mss: u32, window: u32, lim: AckLimits) {
        self.incr_quickack(rcv_mss, window, lim.max_quickacks);
        self.pingpong = false;
        self.ato = lim.ato_min;
    }

    /// Whether owed ACKs go at once (`tcp_in_quickack_mode`).
    pub fn quick_mode(&self) -> bool {
        self.quick > 0 && !self.pingpong
    }

    /// How long an ACK owed now may wait (`tcp_send_delayed_ack`): the ACK timeout, bounded
    /// by the smoothed RTT and by 200 ms for an interactive or pushed exchange, 500 ms
    /// otherwise, and never past [`DELACK_MAX`].
    pub fn delay(&self, srtt: Option<u64>, lim: AckLimits) -> Duration {
        let mut ato = self.ato.max(lim.ato_min);
        if ato > lim.ato_min {
            let mut max = if self.pingpong || self.pushed & PUSHED != 0 { DELACK_MAX } else { ATO_MAX_BULK };
            if let Some(srtt) = srtt {
                max = max.min(srtt.max(lim.ato_min));
            }
            ato = ato.min(max);
        }
        Duration::from_nanos(ato.min(DELACK_MAX))
    }

    /// A segment carrying our ACK went out; `owed` if an ACK was scheduled
    /// (`tcp_event_ack_sent`: `tcp_dec_quickack_mode`, and the push marks cleared with the
    /// delayed-ACK timer).
    pub fn on_ack_sent(&mut self, owed: bool, lim: AckLimits) {
        if owed && self.quick > 0 {
            if self.quick <= 1 {
                self.quick = 0;
                self.ato = lim.ato_min;
            } else {
                self.quick -= 1;
            }
        }
        self.pushed = 0;
    }

    /// Data went out: a reply within `ato` of the data received makes the exchange
    /// interactive (`tcp_event_data_sent`).
    pub fn on_data_sent(&mut self, now: Instant) {
        if now.as_nanos().saturating_sub(self.lrcvtime.as_nanos()) < self.ato {
            self.pingpong = true;
        }
    }

    /// The delayed-ACK timer fired with an ACK owed (`tcp_delack_timer_handler`): outside
    /// ping-pong mode the timeout was too short for this sender, so it doubles (up to the
    /// RTO); in ping-pong mode no reply came in time, so the exchange is not interactive
    /// any more.
    pub fn on_timeout(&mut self, lim: AckLimits) {
        if self.pingpong {
            self.pingpong = false;
            self.ato = lim.ato_min;
        } else {
            self.ato = self.ato.saturating_mul(2).min(lim.rto).max(lim.ato_min);
        }
    }

    /// After the application read `copied` bytes and left `queue_empty`, whether an owed
    /// ACK goes at once because the read ended a pushed write (`__tcp_cleanup_rbuf`).
    pub fn ack_after_read(&self, copied: usize, queue_empty: bool) -> bool {
        copied > 0 && queue_empty && (self.pushed & PUSHED2 != 0 || (self.pushed & PUSHED != 0 && !self.pingpong))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIM: AckLimits = AckLimits { ato_min: 40 * MS, max_quickacks: 16, rto: 200 * MS };

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn first_data_grants_half_a_window_of_quick_acks() {
        let mut d = DelayedAck::new(ms(0));
        assert!(!d.quick_mode());
        // 64 KiB window of 1 000-byte segments: 32, capped at 16.
        d.on_data(ms(1), 1000, 1000, 65_536, LIM);
        assert!(d.quick_mode());
        assert_eq!(d.quick, 16);
        // A 1 500-byte window grants none, raised to the minimum of two.
        let mut d = DelayedAck::new(ms(0));
        d.on_data(ms(1), 1000, 1000, 1500, LIM);
        assert_eq!(d.quick, 2);
        // No quick ACKs when the configuration grants none.
        let mut d = DelayedAck::new(ms(0));
        d.on_data(ms(1), 1000, 1000, 65_536, AckLimits { max_quickacks: 0, ..LIM });
        assert!(!d.quick_mode());
    }

    #[test]
    fn each_owed_ack_uses_up_one_quick_ack_and_the_last_resets_the_timeout() {
        let mut d = DelayedAck::new(ms(0));
        d.on_data(ms(1), 1000, 1000, 1500, LIM);
        d.on_ack_sent(false, LIM);
        assert_eq!(d.quick, 2, "an ACK not owed uses none");
        d.on_ack_sent(true, LIM);
        assert_eq!(d.quick, 1);
        d.ato = 90 * MS;
        d.on_ack_sent(true, LIM);
        assert!(!d.quick_mode());
        assert_eq!(d.ato, LIM.ato_min);
    }

    #[test]
    fn a_reply_within_the_timeout_makes_the_exchange_interactive() {
        let mut d = DelayedAck::new(ms(0));
        d.on_data_sent(ms(1));
        assert!(!d.pingpong, "nothing received yet");
        d.on_data(ms(10), 100, 536, 65_536, LIM);
        d.on_data_sent(ms(60));
        assert!(!d.pingpong, "50 ms later is past the 40 ms timeout");
        d.on_data(ms(100), 100, 536, 65_536, LIM);
        d.on_data_sent(ms(101));
        assert!(d.pingpong);
        assert!(!d.quick_mode(), "quick ACKs are held back while interactive");
        // The delayed ACK fired before the next reply: no longer interactive.
        d.on_timeout(LIM);
        assert!(!d.pingpong);
        assert_eq!(d.ato, LIM.ato_min);
    }

    #[test]
    fn a_missed_delayed_ack_doubles_the_timeout_up_to_the_rto() {
        let mut d = DelayedAck::new(ms(0));
        d.on_data(ms(1), 1448, 1448, 65_536, LIM);
        d.on_timeout(LIM);
        assert_eq!(d.ato, 80 * MS);
        d.on_timeout(LIM);
        d.on_timeout(LIM);
        assert_eq!(d.ato, LIM.rto);
    }

    #[test]
    fn the_timeout_follows_the_gaps_between_segments() {
        let mut d = DelayedAck::new(ms(0));
        d.on_data(ms(0), 1448, 1448, 65_536, LIM);
        d.ato = 160 * MS;
        // Segments 10 ms apart halve it towards 40 ms.
        d.on_data(ms(10), 1448, 1448, 65_536, LIM);
        assert_eq!(d.ato, 100 * MS);
        // A 60 ms gap, under the timeout: half of it plus the gap.
        d.on_data(ms(70), 1448, 1448, 65_536, LIM);
        assert_eq!(d.ato, 110 * MS);
        // A gap past the RTO grants quick ACKs again.
        d.quick = 0;
        d.on_data(ms(400), 1448, 1448, 65_536, LIM);
        assert!(d.quick_mode());
    }

    #[test]
    fn the_delay_is_bounded_by_the_rtt_and_200_ms() {
        let mut d = DelayedAck::new(ms(0));
        d.on_data(ms(0), 1448, 1448, 65_536, LIM);
        assert_eq!(d.delay(None, LIM), Duration::from_millis(40));
        d.ato = 400 * MS;
        assert_eq!(d.delay(None, LIM), Duration::from_millis(200));
        assert_eq!(d.delay(Some(5 * MS), LIM), Duration::from_millis(40), "never under the floor");
        assert_eq!(d.delay(Some(70 * MS), LIM), Duration::from_millis(70));
    }

    #[test]
    fn reading_a_pushed_segment_acks_at_once_unless_interactive() {
        let mut d = DelayedAck::new(ms(0));
        d.on_data(ms(0), 1448, 1448, 65_536, LIM);
        assert!(!d.ack_after_read(1448, true), "a full-sized segment is not pushed");
        d.on_data(ms(1), 100, 1448, 65_536, LIM);
        assert!(d.ack_after_read(100, true));
        assert!(!d.ack_after_read(100, false), "data left unread");
        assert!(!d.ack_after_read(0, true), "nothing read");
        d.pingpong = true;
        assert!(!d.ack_after_read(100, true), "the reply will carry it");
        d.on_data(ms(2), 100, 1448, 65_536, LIM);
        assert!(d.ack_after_read(100, true), "two pushed segments: ACK even when interactive");
        d.on_ack_sent(true, LIM);
        assert!(!d.ack_after_read(100, true), "an ACK clears the marks");
    }

    #[test]
    fn out_of_window_data_leaves_interactive_mode_for_quick_acks() {
        let mut d = DelayedAck::new(ms(0));
        d.on_data(ms(0), 100, 536, 65_536, LIM);
        d.on_data_sent(ms(1));
        assert!(d.pingpong);
        d.ato = 120 * MS;
        d.enter_quickack_mode(536, 65_536, LIM);
        assert!(d.quick_mode());
        assert_eq!(d.ato, LIM.ato_min);
    }
}
