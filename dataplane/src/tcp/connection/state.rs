//! The RFC 9293 §3.3.2 connection states.

use core::fmt;

/// A connection state (RFC 9293 §3.3.2). LISTEN belongs to [`crate::tcp::listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection; the terminal state.
    Closed,
    /// Our SYN is sent; waiting for the peer's.
    SynSent,
    /// SYNs crossed or a listener answered a SYN; waiting for the ACK of our SYN.
    SynReceived,
    /// Data flows both ways.
    Established,
    /// We sent FIN; the peer has not acknowledged it.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer sent FIN; we may still send.
    CloseWait,
    /// Both sent FIN at once; waiting for the ACK of ours.
    Closing,
    /// The peer closed first, we sent FIN after; waiting for its ACK.
    LastAck,
    /// Both FINs acknowledged; lingering for 2*MSL (RFC 9293 §3.6.1).
    TimeWait,
}

impl State {
    /// States after the handshake (RFC 9293 §3.10.7.4 "synchronized states").
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Closed | State::SynSent | State::SynReceived)
    }

    /// States in which we may still send new data (send-path §1: ESTABLISHED, CLOSE-WAIT).
    pub fn can_send(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }

    /// States in which segment text is still accepted (RFC 9293 §3.10.7.4, seventh step).
    pub fn can_receive(self) -> bool {
        matches!(self, State::Established | State::FinWait1 | State::FinWait2)
    }

    /// States counted by `CurrEstab` (RFC 1213 `tcpCurrEstab`).
    pub fn counts_as_established(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }

    /// The RFC spelling of the state.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_classes_follow_rfc_9293() {
        assert!(!State::SynReceived.is_synchronized());
        assert!(State::TimeWait.is_synchronized());
        assert!(State::CloseWait.can_send());
        assert!(!State::FinWait1.can_send());
        assert!(State::FinWait2.can_receive());
        assert!(!State::CloseWait.can_receive());
        assert!(State::CloseWait.counts_as_established());
        assert_eq!(State::LastAck.to_string(), "LAST-ACK");
    }
}
