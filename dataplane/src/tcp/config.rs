//! Tunables of the TCP engine, with Linux-like defaults.

use super::congestion::Algorithm;
use crate::time::Duration;

/// Keepalive parameters (Linux `tcp_keepalive_time`, `_intvl`, `_probes`; RFC 9293 §3.8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes after which the connection is reset.
    pub probes: u32,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig { idle: Duration::from_secs(7200), interval: Duration::from_secs(75), probes: 9 }
    }
}

/// Packetization-layer path-MTU discovery (RFC 4821 / RFC 8899), as Linux's
/// `net.ipv4.tcp_mtu_probing` sysctl: the same three values, the same meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MtuProbing {
    /// 0: never probe; the path MTU changes only on ICMP "fragmentation needed".
    #[default]
    Off,
    /// 1: start at the interface MSS; once repeated timeouts suggest an ICMP black hole
    /// (Linux `tcp_mtu_probing` from `tcp_write_timeout`), fall back to `base_mss` and
    /// probe upwards from there.
    BlackHole,
    /// 2: start at `base_mss` and probe upwards from the first segment on (Linux
    /// `tcp_mtup_init` with `icsk_mtup.enabled` set at once).
    Always,
}

impl MtuProbing {
    /// The sysctl value: 0, 1 or 2.
    pub fn value(self) -> u8 {
        match self {
            MtuProbing::Off => 0,
            MtuProbing::BlackHole => 1,
            MtuProbing::Always => 2,
        }
    }

    /// From the sysctl value; `None` above 2.
    pub fn from_value(v: u8) -> Option<MtuProbing> {
        match v {
            0 => Some(MtuProbing::Off),
            1 => Some(MtuProbing::BlackHole),
            2 => Some(MtuProbing::Always),
            _ => None,
        }
    }
}

/// Engine-wide and per-connection TCP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// MSS we announce and the upper bound of the MSS we send with (RFC 9293 §3.7.1).
    pub mss: u16,
    /// Receive buffer per connection in bytes; bounds the advertised window.
    pub rcvbuf: u32,
    /// Send buffer per connection in bytes (`sk_sndbuf`): queued + unacknowledged data.
    pub sndbuf: u32,
    /// Offer window scaling (RFC 7323 §2); the shift is derived from `rcvbuf`.
    pub window_scaling: bool,
    /// Offer and use timestamps (RFC 7323 §3) with PAWS (§5).
    pub timestamps: bool,
    /// Offer SACK-permitted (RFC 2018) and generate SACK blocks for out-of-order data.
    pub sack: bool,
    /// Report duplicate segments with D-SACK blocks (RFC 2883, Linux `tcp_dsack`).
    pub dsack: bool,
    /// Disable Nagle's algorithm (`TCP_NODELAY`).
    pub nodelay: bool,
    /// Initial retransmission timeout (RFC 6298 §2.1: 1 s).
    pub initial_rto: Duration,
    /// Lower bound of the RTO (Linux `TCP_RTO_MIN`, 200 ms).
    pub min_rto: Duration,
    /// Upper bound of the RTO (Linux `TCP_RTO_MAX`, 120 s).
    pub max_rto: Duration,
    /// SYN retransmissions of an active open before giving up (Linux `tcp_syn_retries`).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions of a half-open passive connection before it is dropped
    /// (Linux `tcp_synack_retries`: 5, about 63 s with a 1 s initial RTO). Bounds how
    /// long a flood from spoofed sources holds the SYN queue.
    pub synack_retries: u32,
    /// Overall deadline for an active open; `None` leaves only `syn_retries`.
    pub connect_timeout: Option<Duration>,
    /// Data retransmissions, and unanswered zero-window probes, before the connection is
    /// aborted (Linux `tcp_retries2`).
    pub max_retries: u32,
    /// The same bound for a connection the application has closed (an orphan; Linux
    /// `tcp_orphan_retries`, whose 0 means 8): nobody waits for it, so it gives up sooner.
    pub orphan_retries: u32,
    /// Orphaned connections (closed by the application, still sending or closing) an
    /// engine keeps at most; beyond that, or while buffers are low, an orphan is reset at
    /// its next retransmission or probe (Linux `tcp_max_orphans`, `tcp_out_of_resources`).
    pub max_orphans: u32,
    /// At most one duplicate ACK per this interval answers out-of-window or PAWS-rejected
    /// segments without data (Linux `tcp_invalid_ratelimit`, 500 ms): a peer, or a forger,
    /// cannot turn us into an ACK reflector or start an ACK loop.
    pub invalid_ratelimit: Duration,
    /// The shortest delayed-ACK timeout (RFC 9293 §3.8.6.3: under 0.5 s; Linux
    /// `TCP_ATO_MIN` = `TCP_DELACK_MIN`, 40 ms). The timeout adapts above it to the gaps
    /// between the peer's segments, up to 200 ms (`connection/delack.rs`).
    pub delayed_ack: Duration,
    /// The most owed ACKs sent at once in quick-ACK mode, granted at the first data, after
    /// a long silence and after out-of-window data (Linux `TCP_MAX_QUICKACKS`, 16; half a
    /// receive window of segments if that is fewer). 0 turns quick-ACK mode off.
    pub max_quickacks: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts `2 * msl` (RFC 9293 §3.4.2).
    pub msl: Duration,
    /// FIN-WAIT-2 timeout for connections closed with `close()` (Linux `tcp_fin_timeout`).
    pub fin_wait2_timeout: Duration,
    /// Keepalive; `None` disables it.
    pub keepalive: Option<KeepaliveConfig>,
    /// Out-of-order segments held per connection before new ones are dropped.
    pub ofo_max_segments: usize,
    /// Data written while the connection is still opening that is held (bytes).
    pub max_pending_connect_bytes: u32,
    /// Chain segments per queued segment before a new one is started (send-path §1).
    pub max_chain_segments: usize,
    /// The port can segment (hardware TSO or software GSO): `size_goal` becomes a whole
    /// multiple of the MSS up to `gso_max_size` and segments leave as super-segments
    /// (send-path §1, §3 step 3).
    pub tso: bool,
    /// Largest super-segment handed to the port, as an IPv4 packet (Linux `gso_max_size`).
    pub gso_max_size: u32,
    /// Clamp of the MSS we announce and send with (iptables `TCPMSS --set-mss`, `TCP_MAXSEG`).
    pub mss_clamp: Option<u16>,
    /// The IPv6 link MTU a router advertised below the ports' (RFC 4861 §6.3.4), set by
    /// [`crate::tcp::Engine::set_ipv6_link_mtu`]: IPv6 connections size their segments for
    /// it (`effective_mss_v6`). `None`: the ports' MTU (`mss`).
    pub ipv6_link_mtu: Option<u16>,
    /// Packetization-layer path-MTU discovery (RFC 4821 / RFC 8899, Linux `tcp_mtu_probing`):
    /// off, on after a black hole is detected, or always (start at `base_mss` and probe
    /// upwards).
    pub mtu_probing: MtuProbing,
    /// MSS PLPMTUD starts from (Linux `tcp_base_mss`).
    pub base_mss: u16,
    /// Re-probe a settled path MTU after this long (Linux `tcp_probe_interval`).
    pub mtu_probe_interval: Duration,
    /// Upper bound of the send buffer when it is auto-tuned from the congestion window
    /// (Linux `tcp_wmem[2]`); `None` keeps `sndbuf` fixed (`SO_SNDBUF` lock).
    pub sndbuf_max: Option<u32>,
    /// Initial congestion window in segments (RFC 6928: 10).
    pub initial_cwnd_segments: u32,
    /// Congestion-control algorithm of each connection (Linux `tcp_congestion_control`).
    pub congestion: Algorithm,
    /// RACK loss detection (RFC 8985 §6): time-based loss marking with a reordering
    /// window, for SACK peers. Off leaves the RFC 6675 `DupThresh` rule (Linux
    /// `tcp_recovery` bit 0).
    pub rack: bool,
    /// Tail loss probes (RFC 8985 §7, Linux `tcp_early_retrans`): a probe `2*SRTT` after
    /// the last transmission or ACK when nothing else would trigger recovery before the
    /// RTO. Off by default here: it changes the timing of every tail, and the scripted
    /// send-path tests expect a silent tail until the RTO. Also switches Strait's ACK-stall
    /// probes (`connection/probe.rs`: where RFC 8985 sends no probe, the first
    /// unacknowledged segment again after a PTO without an ACK).
    pub tlp: bool,
    /// F-RTO (RFC 5682, SACK-enhanced as in §3; Linux `tcp_frto`): after a retransmission
    /// timeout, the first advancing ACK lets new data go out instead of retransmitting
    /// the rest; data never retransmitted being acknowledged then shows the timeout was
    /// spurious and the window reduction is undone. Works without timestamps (with them,
    /// Eifel (RFC 3522) usually decides first).
    pub frto: bool,
    /// Duplicate-ACK / SACK threshold for loss marking (RFC 5681 §3.2, RFC 6675 `DupThresh`).
    pub dupthresh: u32,
    /// Challenge ACKs per second for the whole engine (RFC 5961 §7; Linux
    /// `tcp_challenge_ack_limit`).
    pub challenge_ack_limit: u32,
    /// Half-open connections per listener (SYN queue; Linux `tcp_max_syn_backlog`).
    pub syn_backlog: usize,
    /// Established connections waiting for `accept` per listener (Linux's listen backlog,
    /// capped by `somaxconn`).
    pub accept_backlog: usize,
    /// Answer SYNs with SYN cookies when the SYN queue is full.
    pub syncookies: bool,
    /// Entries in the TIME-WAIT table; beyond it TIME-WAIT state is dropped.
    pub max_time_wait: usize,
    /// Ephemeral port range for active opens (inclusive).
    pub ephemeral_ports: (u16, u16),
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            rcvbuf: 1 << 20,
            sndbuf: 1 << 20,
            window_scaling: true,
            timestamps: true,
            sack: true,
            dsack: true,
            nodelay: false,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            syn_retries: 6,
            synack_retries: 5,
            connect_timeout: Some(Duration::from_secs(75)),
            max_retries: 15,
            orphan_retries: 8,
            max_orphans: 4096,
            invalid_ratelimit: Duration::from_millis(500),
            delayed_ack: Duration::from_millis(40),
            max_quickacks: 16,
            msl: Duration::from_secs(30),
            fin_wait2_timeout: Duration::from_secs(60),
            keepalive: None,
            // The default receive buffer in full segments (1 MiB / 1448 B): a window's
            // worth of out-of-order data can be held, as Linux holds it within rcvbuf.
            ofo_max_segments: 768,
            max_pending_connect_bytes: 64 * 1024,
            max_chain_segments: 17,
            tso: false,
            gso_max_size: 65536,
            mss_clamp: None,
            ipv6_link_mtu: None,
            // Linux's default (0); the proxy's `[tcp]` default differs (see its settings).
            mtu_probing: MtuProbing::Off,
            base_mss: 1024,
            mtu_probe_interval: Duration::from_secs(600),
            sndbuf_max: None,
            initial_cwnd_segments: 10,
            congestion: Algorithm::default(),
            rack: true,
            tlp: false,
            frto: true,
            dupthresh: 3,
            challenge_ack_limit: 1000,
            // Linux's `somaxconn` (4096 since 5.4); a burst of thousands of clients
            // connecting at once is held rather than answered with cookies (which lose
            // the window scale without timestamps) or dropped.
            syn_backlog: 4096,
            accept_backlog: 4096,
            syncookies: true,
            max_time_wait: 65536,
            ephemeral_ports: (32768, 60999),
        }
    }
}

impl TcpConfig {
    /// The window-scale shift we offer: the smallest that lets `rcvbuf` be advertised
    /// (RFC 7323 §2.3: at most 14).
    pub fn rcv_wscale(&self) -> u8 {
        if !self.window_scaling {
            return 0;
        }
        let mut shift = 0u8;
        while shift < 14 && (self.rcvbuf >> shift) > 65535 {
            shift += 1;
        }
        shift
    }

    /// The MSS we announce, never below the IPv4 minimum of 536 (RFC 9293 §3.7.1) nor 0,
    /// and never above `mss_clamp`.
    pub fn effective_mss(&self) -> u16 {
        let mss = self.mss.max(536);
        match self.mss_clamp {
            Some(c) => mss.min(c.max(88)),
            None => mss,
        }
    }

    /// The MSS we announce over IPv6: the IPv4 one less the 20 bytes by which IPv6's
    /// header is longer (MTU - 60; RFC 6691 §2, RFC 8200 §8.3; Linux `tcp_v6_mss` from
    /// `tcp_mtu_to_mss`), never below 1220 (IPv6's minimum MTU of 1280 less the headers,
    /// RFC 8200 §5) unless `mss_clamp` says less; and within an advertised link MTU
    /// (`ipv6_link_mtu` less 60).
    pub fn effective_mss_v6(&self) -> u16 {
        let mut mss = self.mss.saturating_sub(IPV6_EXTRA_HEADER).max(IPV6_MIN_MSS);
        if let Some(mtu) = self.ipv6_link_mtu {
            mss = mss.min(mtu.saturating_sub(IPV6_EXTRA_HEADER + 40).max(IPV6_MIN_MSS));
        }
        match self.mss_clamp {
            Some(c) => mss.min(c.max(88)),
            None => mss,
        }
    }

    /// [`Self::effective_mss_v6`] for an IPv6 connection, else [`Self::effective_mss`].
    pub fn effective_mss_for(&self, ipv6: bool) -> u16 {
        if ipv6 { self.effective_mss_v6() } else { self.effective_mss() }
    }
}

/// How much longer IPv6's fixed header is than IPv4's without options (40 - 20 bytes).
pub const IPV6_EXTRA_HEADER: u16 = 20;
/// IPv6's minimum link MTU (RFC 8200 §5) less the IPv6 and TCP headers.
pub const IPV6_MIN_MSS: u16 = 1280 - 60;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_scale_covers_rcvbuf() {
        let mut c = TcpConfig { rcvbuf: 65535, ..TcpConfig::default() };
        assert_eq!(c.rcv_wscale(), 0);
        c.rcvbuf = 1 << 20;
        assert_eq!(c.rcv_wscale(), 5);
        assert!((c.rcvbuf >> c.rcv_wscale()) <= 65535);
        c.rcvbuf = u32::MAX;
        assert_eq!(c.rcv_wscale(), 14);
        c.window_scaling = false;
        assert_eq!(c.rcv_wscale(), 0);
    }

    #[test]
    fn ipv6_mss_is_the_mtu_less_sixty() {
        let c = TcpConfig { mss: 1460, mss_clamp: None, ..TcpConfig::default() };
        assert_eq!(c.effective_mss_for(false), 1460);
        assert_eq!(c.effective_mss_for(true), 1440);
        let jumbo = TcpConfig { mss: 8960, ..c.clone() };
        assert_eq!(jumbo.effective_mss_v6(), 8940);
        // Never below IPv6's minimum MTU's, unless clamped.
        let small = TcpConfig { mss: 536, ..c.clone() };
        assert_eq!(small.effective_mss_v6(), 1220);
        let clamped = TcpConfig { mss_clamp: Some(1000), ..c };
        assert_eq!(clamped.effective_mss_v6(), 1000);
        // A router's smaller link MTU (RFC 4861 §6.3.4): IPv6 only, never below 1220.
        let advertised = TcpConfig { mss: 1460, mss_clamp: None, ipv6_link_mtu: Some(1400), ..TcpConfig::default() };
        assert_eq!((advertised.effective_mss_v6(), advertised.effective_mss()), (1340, 1460));
        let tiny = TcpConfig { ipv6_link_mtu: Some(1000), ..advertised };
        assert_eq!(tiny.effective_mss_v6(), 1220);
    }
}
