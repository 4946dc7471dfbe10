//! `[tcp]`: the stack's settings for every connection (client and backend side alike),
//! validated like the rest (errors name the key and say why). Applied at start; a change
//! needs a restart (the engines are built with them).

use std::time::Duration;

use dataplane::tcp::congestion::Algorithm as Congestion;
use dataplane::tcp::{MtuProbing, TcpConfig};

use config::Value;

use super::raw::{Errors, Table};

/// The validated `[tcp]` table, in the file's units and names; the engine takes it as a
/// [`TcpConfig`] ([`TcpSection::engine_config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSection {
    /// Congestion control (`congestion = "cubic" | "newreno"`; RFC 9438 / RFC 5681).
    pub congestion: Congestion,
    /// The RTO's lower bound (`min_rto_ms`, RFC 6298 §2.4 says 1 s, Linux uses 200 ms; a
    /// LAN deployment may go lower, as Linux's `ip route ... rto_min`).
    pub min_rto: Duration,
    /// Send buffer per connection, bytes (`sndbuf`): queued + unacknowledged data; the
    /// proxy's back-pressure point.
    pub sndbuf: u32,
    /// Receive buffer per connection, bytes (`rcvbuf`): the ceiling of the advertised window.
    pub rcvbuf: u32,
    /// Initial congestion window in segments (`initial_cwnd`, RFC 6928: 10).
    pub initial_cwnd: u32,
    /// Tail loss probes (`tail_loss_probes`, RFC 8985 §7), and with them Strait's ACK-stall
    /// probes in fast recovery and after an unanswered probe or an RTO.
    pub tail_loss_probes: bool,
    /// Unanswered retransmissions or zero-window probes of a connection the proxy has
    /// closed before it is reset (`orphan_retries`, Linux `tcp_orphan_retries`: 8).
    pub orphan_retries: u32,
    /// Closed connections still sending or closing, per lcore, beyond which they are reset
    /// at their next retransmission or probe (`max_orphans`, Linux `tcp_max_orphans`).
    pub max_orphans: u32,
    /// TIME-WAIT entries per lcore; beyond it a closing connection skips TIME-WAIT,
    /// counted `TCPTimeWaitOverflow` (`max_tw_buckets`, Linux `tcp_max_tw_buckets`).
    pub max_tw_buckets: u32,
    /// Half-open connections per listener and lcore (`syn_backlog`, Linux
    /// `tcp_max_syn_backlog`); beyond it a SYN is answered with a cookie
    /// (`syncookies`) or dropped, counted.
    pub syn_backlog: u32,
    /// SYN-ACK retransmissions before a half-open connection is dropped
    /// (`synack_retries`, Linux `tcp_synack_retries`: 5, about a minute).
    pub synack_retries: u32,
    /// Established connections waiting for the proxy per listener and lcore
    /// (`accept_backlog`, Linux's listen backlog capped by `somaxconn`); beyond it a SYN
    /// or cookie ACK is dropped and counted (`ListenOverflows`, `ListenDrops`), and the
    /// peer retransmits.
    pub accept_backlog: u32,
    /// SYN cookies once the SYN queue is full (`syncookies`, RFC 4987 §3.6, Linux
    /// `tcp_syncookies = 1`).
    pub syncookies: bool,
    /// Packetization-layer path-MTU discovery (`mtu_probing = 0 | 1 | 2`, Linux
    /// `tcp_mtu_probing`: off, on once a black hole is detected, always).
    pub mtu_probing: MtuProbing,
    /// The MSS probing starts from and a black hole falls back to (`base_mss`, Linux
    /// `tcp_base_mss`: 1024).
    pub base_mss: u16,
}

impl Default for TcpSection {
    fn default() -> Self {
        let d = TcpConfig::default();
        TcpSection {
            congestion: Congestion::Cubic,
            min_rto: d.min_rto,
            sndbuf: d.sndbuf,
            rcvbuf: d.rcvbuf,
            initial_cwnd: d.initial_cwnd_segments,
            // As Linux runs (`tcp_early_retrans` = 3): a lost tail is repaired after ~2 RTT
            // instead of an RTO.
            tail_loss_probes: true,
            orphan_retries: d.orphan_retries,
            max_orphans: d.max_orphans,
            max_tw_buckets: u32::try_from(d.max_time_wait).unwrap_or(u32::MAX),
            syn_backlog: u32::try_from(d.syn_backlog).unwrap_or(u32::MAX),
            synack_retries: d.synack_retries,
            accept_backlog: u32::try_from(d.accept_backlog).unwrap_or(u32::MAX),
            syncookies: d.syncookies,
            // 1, where Linux defaults to 0: a proxy faces clients behind tunnels, VPNs and
            // PPPoE links whose routers often drop ICMP "fragmentation needed" (RFC 2923
            // §2.1, RFC 4821 §1). With 0 such a client's connection stalls for good once
            // a full-sized segment is sent; with 1 it costs nothing until 4 timeouts in a
            // row, then falls back to `base_mss` and probes back up (RFC 4821 §3). 2
            // would start every connection at `base_mss` and probe, costing throughput on
            // healthy paths until the probes succeed.
            mtu_probing: MtuProbing::BlackHole,
            base_mss: d.base_mss,
        }
    }
}

impl TcpSection {
    /// The engine configuration: `TcpConfig::default()` with these settings.
    pub fn engine_config(&self) -> TcpConfig {
        TcpConfig {
            congestion: self.congestion,
            min_rto: self.min_rto,
            sndbuf: self.sndbuf,
            rcvbuf: self.rcvbuf,
            initial_cwnd_segments: self.initial_cwnd,
            tlp: self.tail_loss_probes,
            orphan_retries: self.orphan_retries,
            max_orphans: self.max_orphans,
            max_time_wait: usize::try_from(self.max_tw_buckets).unwrap_or(usize::MAX),
            syn_backlog: usize::try_from(self.syn_backlog).unwrap_or(usize::MAX),
            synack_retries: self.synack_retries,
            accept_backlog: usize::try_from(self.accept_backlog).unwrap_or(usize::MAX),
            syncookies: self.syncookies,
            mtu_probing: self.mtu_probing,
            base_mss: self.base_mss,
            ..TcpConfig::default()
        }
    }
}

/// Smallest buffer accepted: a few full segments.
const MIN_BUFFER: u32 = 16 * 1024;
/// Largest receive buffer: the largest window RFC 7323 allows (2^30).
const MAX_RCVBUF: u32 = 1 << 30;
/// Largest send buffer.
const MAX_SNDBUF: u32 = 1 << 30;
/// Smallest `base_mss`: Linux `tcp_min_snd_mss`.
const MIN_BASE_MSS: u16 = 48;
/// Largest `base_mss`: an IPv4 packet of 65 535 bytes less 40 bytes of headers.
const MAX_BASE_MSS: u16 = 65495;

pub(crate) fn tcp(value: &Value, errs: &mut Errors) -> Option<TcpSection> {
    let t = Table::new(value, "tcp", errs)?;
    t.deny_unknown(
        &[
            "congestion",
            "min_rto_ms",
            "sndbuf",
            "rcvbuf",
            "initial_cwnd",
            "tail_loss_probes",
            "orphan_retries",
            "max_orphans",
            "max_tw_buckets",
            "syn_backlog",
            "synack_retries",
            "accept_backlog",
            "syncookies",
            "mtu_probing",
            "base_mss",
        ],
        errs,
    );
    let d = TcpSection::default();
    let congestion = match t.string("congestion", errs).as_deref() {
        None if t.get("congestion").is_none() => Some(d.congestion),
        None => None,
        Some("cubic") => Some(Congestion::Cubic),
        Some("newreno" | "reno") => Some(Congestion::NewReno),
        Some(other) => t.fail(errs, "congestion", format!("{other:?} is not a congestion control (expected \"cubic\" or \"newreno\")")),
    };
    let default_rto = u32::try_from(d.min_rto.as_millis()).unwrap_or(200);
    // Below the delayed-ACK timers of common peers (40 ms) spurious RTOs become frequent;
    // allowed for LANs, which is the operator's call. Above 120 s is the RTO's maximum.
    let min_rto = t.uint_or("min_rto_ms", default_rto, 1, 120_000, errs);
    let sndbuf = t.uint_or("sndbuf", d.sndbuf, MIN_BUFFER, MAX_SNDBUF, errs);
    let rcvbuf = t.uint_or("rcvbuf", d.rcvbuf, MIN_BUFFER, MAX_RCVBUF, errs);
    let initial_cwnd = t.uint_or("initial_cwnd", d.initial_cwnd, 1, 100, errs);
    let tail_loss_probes = t.bool_or("tail_loss_probes", d.tail_loss_probes, errs);
    let orphan_retries = t.uint_or("orphan_retries", d.orphan_retries, 1, 15, errs);
    let max_orphans = t.uint_or("max_orphans", d.max_orphans, 0, 1_000_000, errs);
    let max_tw_buckets = t.uint_or("max_tw_buckets", d.max_tw_buckets, 0, 1_000_000, errs);
    // A backlog of 0 would refuse every connection (or, for the SYN queue, answer every
    // SYN with a cookie); 1 is the operator's call.
    let syn_backlog = t.uint_or("syn_backlog", d.syn_backlog, 1, 1_000_000, errs);
    // 0: a lost SYN-ACK is never repaired (the client's SYN retransmission still is).
    let synack_retries = t.uint_or("synack_retries", d.synack_retries, 0, 15, errs);
    let accept_backlog = t.uint_or("accept_backlog", d.accept_backlog, 1, 1_000_000, errs);
    let syncookies = t.bool_or("syncookies", d.syncookies, errs);
    // Linux's values: 0 off, 1 after a black hole, 2 always.
    let mtu_probing = t.uint_or("mtu_probing", u32::from(d.mtu_probing.value()), 0, 2, errs);
    // From Linux `tcp_min_snd_mss` (48) to the largest IPv4 MSS; above the port's own MSS
    // it is cut to that.
    let base_mss = t.uint_or("base_mss", u32::from(d.base_mss), u32::from(MIN_BASE_MSS), u32::from(MAX_BASE_MSS), errs);
    Some(TcpSection {
        congestion: congestion?,
        min_rto: Duration::from_millis(u64::from(min_rto?)),
        sndbuf: sndbuf?,
        rcvbuf: rcvbuf?,
        initial_cwnd: initial_cwnd?,
        tail_loss_probes: tail_loss_probes?,
        orphan_retries: orphan_retries?,
        max_orphans: max_orphans?,
        max_tw_buckets: max_tw_buckets?,
        syn_backlog: syn_backlog?,
        synack_retries: synack_retries?,
        accept_backlog: accept_backlog?,
        syncookies: syncookies?,
        mtu_probing: mtu_probing.and_then(|v| MtuProbing::from_value(u8::try_from(v).ok()?))?,
        base_mss: u16::try_from(base_mss?).ok()?,
    })
}
