//! Connection-level tests: two connections wired back to back, no engine.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use super::*;
use crate::tcp::payload::HeapPayload;
use crate::wire::tcp::Flags;

type Conn = Connection<HeapPayload>;

const A: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000));
const B: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80));

fn cfg() -> TcpConfig {
    TcpConfig { max_quickacks: 0, ..TcpConfig::default() }
}

struct Pair {
    a: Conn,
    b: Conn,
    sa: Shared,
    sb: Shared,
    now: Instant,
    /// Every segment seen, `(from_a, segment)`.
    log: Vec<(bool, Segment<HeapPayload>)>,
}

fn drain(c: &mut Conn, s: &mut Shared, now: Instant) -> Vec<Segment<HeapPayload>> {
    let mut v = Vec::new();
    c.poll_transmit(s, now, &mut |seg| v.push(seg));
    v
}

impl Pair {
    /// Runs the handshake: A connects, B is created from A's SYN.
    fn connect(cfg_a: &TcpConfig, cfg_b: &TcpConfig) -> Pair {
        let mut sa = Shared::new(1000);
        let mut sb = Shared::new(1000);
        let now = Instant::from_millis(1);
        let mut a = Conn::connect(&mut sa, A, B, SeqNum(1000), &Arc::new(cfg_a.clone()), now);
        let syn = drain(&mut a, &mut sa, now);
        assert_eq!(syn.len(), 1);
        let b = Conn::accept_syn(&mut sb, B, A, SeqNum(5000), &syn[0].repr, &Arc::new(cfg_b.clone()), now);
        let log = vec![(true, syn[0].clone())];
        let mut p = Pair { a, b, sa, sb, now, log };
        p.run_until_idle(|_, _| true);
        assert_eq!(p.a.state(), State::Established);
        assert_eq!(p.b.state(), State::Established);
        assert_eq!(p.a.poll_event(), Some(Event::Connected));
        assert_eq!(p.b.poll_event(), Some(Event::Connected));
        p
    }

    /// Exchanges segments (through `keep`, which may drop them) and fires timers until
    /// nothing is pending; gives up after 100k steps.
    fn run_until_idle(&mut self, mut keep: impl FnMut(bool, &Segment<HeapPayload>) -> bool) {
        for _ in 0..100_000 {
            let from_a = drain(&mut self.a, &mut self.sa, self.now);
            let from_b = drain(&mut self.b, &mut self.sb, self.now);
            let idle = from_a.is_empty() && from_b.is_empty();
            for s in from_a {
                self.log.push((true, s.clone()));
                if keep(true, &s) {
                    self.b.handle_segment(&mut self.sb, &s.repr, s.payload, self.now);
                }
            }
            for s in from_b {
                self.log.push((false, s.clone()));
                if keep(false, &s) {
                    self.a.handle_segment(&mut self.sa, &s.repr, s.payload, self.now);
                }
            }
            if idle {
                let next = [self.a.next_deadline(), self.b.next_deadline()].into_iter().flatten().min();
                match next {
                    // Stop before lingering timers (keepalive, TIME-WAIT) run the clock far.
                    Some(t) if t.saturating_duration_since(self.now) < Duration::from_secs(10) => {
                        self.now = t.max(self.now);
                        self.a.handle_timeout(&mut self.sa, self.now);
                        self.b.handle_timeout(&mut self.sb, self.now);
                    }
                    _ => return,
                }
            }
        }
        panic!("no quiescence");
    }

    fn read_all(c: &mut Conn) -> Vec<u8> {
        let mut v = Vec::new();
        while let Some(d) = c.read(usize::MAX) {
            v.extend(d.to_vec());
        }
        v
    }

    fn events(c: &mut Conn) -> Vec<Event> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn handshake_negotiates_options() {
    let p = Pair::connect(&cfg(), &cfg());
    let ia = p.a.info();
    let ib = p.b.info();
    assert!(ia.timestamps && ib.timestamps);
    assert!(ia.sack && ib.sack);
    assert_eq!(ia.wscale, (cfg().rcv_wscale(), cfg().rcv_wscale()));
    assert_eq!(ia.snd_mss, 1460);
    assert_eq!(ia.snd_una, SeqNum(1001));
    assert_eq!(ib.rcv_nxt, SeqNum(1001));
    assert_eq!(p.sa.counters.active_opens, 1);
    assert_eq!(p.sb.counters.passive_opens, 1);
    assert_eq!(p.sa.counters.curr_estab, 1);
    let syn = &p.log[0].1.repr;
    assert_eq!(syn.flags, Flags::SYN);
    assert_eq!(syn.options.mss, Some(1460));
    assert!(syn.options.sack_permitted && syn.options.timestamps.is_some());
}

#[test]
fn handshake_without_options_falls_back() {
    let plain = TcpConfig { window_scaling: false, timestamps: false, sack: false, ..cfg() };
    let p = Pair::connect(&cfg(), &plain);
    let ia = p.a.info();
    assert!(!ia.timestamps && !ia.sack);
    assert_eq!(ia.wscale, (0, 0));
    let synack = &p.log[1].1.repr;
    assert_eq!(synack.options.window_scale, None, "SYN-ACK must not offer what the SYN lacked");
}

#[test]
fn bulk_data_both_ways_and_orderly_close() {
    let mut p = Pair::connect(&cfg(), &cfg());
    let da = pattern(300_000);
    let db = pattern(123_457);
    let (mut wa, mut wb) = (0, 0);
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        if wa < da.len() {
            if let Ok(n) = p.a.write(&mut p.sa, HeapPayload::from_slice(&da[wa..]), WriteFlags::NONE) {
                wa += n;
            }
        }
        if wb < db.len() {
            if let Ok(n) = p.b.write(&mut p.sb, HeapPayload::from_slice(&db[wb..]), WriteFlags::NONE) {
                wb += n;
            }
        }
        p.run_until_idle(|_, _| true);
        rb.extend(Pair::read_all(&mut p.b));
        ra.extend(Pair::read_all(&mut p.a));
        if wa == da.len() && wb == db.len() && rb.len() == da.len() && ra.len() == db.len() {
            break;
        }
    }
    assert!(rb == da, "A->B stream intact");
    assert!(ra == db, "B->A stream intact");
    p.a.close(&mut p.sa, p.now);
    p.run_until_idle(|_, _| true);
    assert_eq!(p.b.state(), State::CloseWait);
    assert!(Pair::events(&mut p.b).contains(&Event::PeerClosed));
    p.b.close(&mut p.sb, p.now);
    p.run_until_idle(|_, _| true);
    assert_eq!(p.b.state(), State::Closed);
    assert_eq!(p.a.state(), State::TimeWait);
    assert!(Pair::events(&mut p.a).contains(&Event::Closed { reason: CloseReason::Normal }));
    assert!(Pair::events(&mut p.b).contains(&Event::Closed { reason: CloseReason::Normal }));
    assert_eq!(p.sa.counters.curr_estab, 0);
    // TIME-WAIT ends after 2*MSL.
    p.now += cfg().msl * 2;
    p.a.handle_timeout(&mut p.sa, p.now);
    assert_eq!(p.a.state(), State::Closed);
}

#[test]
fn lost_segments_are_retransmitted() {
    let mut p = Pair::connect(&cfg(), &cfg());
    let data = pattern(50_000);
    let n = p.a.write(&mut p.sa, HeapPayload::from_slice(&data), WriteFlags::NONE).unwrap_or(0);
    assert_eq!(n, data.len());
    let mut count = 0;
    // Drop the 1st, 5th and 6th data segments on their first transmission and one ACK.
    p.run_until_idle(|from_a, s| {
        if from_a && !s.payload.is_empty() {
            count += 1;
            return !matches!(count, 1 | 5 | 6);
        }
        true
    });
    assert_eq!(Pair::read_all(&mut p.b), data);
    assert!(p.sa.counters.retrans_segs >= 3);
    assert_eq!(p.a.info().snd_una, p.a.info().snd_nxt);
}

#[test]
fn rto_backs_off_and_gives_up() {
    let c = TcpConfig { max_retries: 3, ..cfg() };
    let mut p = Pair::connect(&c, &cfg());
    let _ = p.a.write(&mut p.sa, HeapPayload::from_slice(b"hello"), WriteFlags::NONE);
    let mut times = Vec::new();
    let mut now = p.now;
    for _ in 0..10 {
        let segs = drain(&mut p.a, &mut p.sa, now);
        if !segs.is_empty() {
            times.push(now);
        }
        match p.a.next_deadline() {
            Some(t) => now = t,
            None => break,
        }
        p.a.handle_timeout(&mut p.sa, now);
        if p.a.state() == State::Closed {
            break;
        }
    }
    assert_eq!(times.len(), 4, "original + 3 retransmissions");
    let gaps: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[1] >= gaps[0] * 2 - Duration::from_millis(1), "exponential backoff: {gaps:?}");
    assert!(Pair::events(&mut p.a).contains(&Event::Closed { reason: CloseReason::Timeout }));
    assert_eq!(p.sa.counters.abort_on_timeout, 1);
}

#[test]
fn simultaneous_open_reaches_established() {
    let mut sa = Shared::new(10);
    let mut sb = Shared::new(10);
    let now = Instant::from_millis(5);
    let mut a = Conn::connect(&mut sa, A, B, SeqNum(100), &Arc::new(cfg()), now);
    let mut b = Conn::connect(&mut sb, B, A, SeqNum(900), &Arc::new(cfg()), now);
    let syn_a = drain(&mut a, &mut sa, now);
    let syn_b = drain(&mut b, &mut sb, now);
    a.handle_segment(&mut sa, &syn_b[0].repr, HeapPayload::empty(), now);
    b.handle_segment(&mut sb, &syn_a[0].repr, HeapPayload::empty(), now);
    assert_eq!(a.state(), State::SynReceived);
    assert_eq!(b.state(), State::SynReceived);
    let synack_a = drain(&mut a, &mut sa, now);
    let synack_b = drain(&mut b, &mut sb, now);
    assert_eq!(synack_a[0].repr.flags, Flags::SYN | Flags::ACK);
    assert_eq!(synack_a[0].repr.seq, SeqNum(100), "same ISN on the SYN-ACK");
    a.handle_segment(&mut sa, &synack_b[0].repr, HeapPayload::empty(), now);
    b.handle_segment(&mut sb, &synack_a[0].repr, HeapPayload::empty(), now);
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
    assert_eq!(a.poll_event(), Some(Event::Connected));
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut p = Pair::connect(&cfg(), &cfg());
    p.a.shutdown_write(&mut p.sa);
    p.b.shutdown_write(&mut p.sb);
    let fa = drain(&mut p.a, &mut p.sa, p.now);
    let fb = drain(&mut p.b, &mut p.sb, p.now);
    assert!(fa[0].repr.flags.contains(Flags::FIN) && fb[0].repr.flags.contains(Flags::FIN));
    p.a.handle_segment(&mut p.sa, &fb[0].repr, HeapPayload::empty(), p.now);
    p.b.handle_segment(&mut p.sb, &fa[0].repr, HeapPayload::empty(), p.now);
    assert_eq!(p.a.state(), State::Closing);
    assert_eq!(p.b.state(), State::Closing);
    p.run_until_idle(|_, _| true);
    assert_eq!(p.a.state(), State::TimeWait);
    assert_eq!(p.b.state(), State::TimeWait);
}

#[test]
fn writes_while_connecting_are_held_then_sent() {
    let mut sa = Shared::new(10);
    let now = Instant::ZERO;
    let c = TcpConfig { max_pending_connect_bytes: 10, ..cfg() };
    let mut a = Conn::connect(&mut sa, A, B, SeqNum(1), &Arc::new(c), now);
    assert_eq!(a.write(&mut sa, HeapPayload::from_slice(b"0123456789abc"), WriteFlags::NONE), Ok(10));
    assert_eq!(a.write(&mut sa, HeapPayload::from_slice(b"x"), WriteFlags::NONE), Err(WriteError::NoSpace));
    let segs = drain(&mut a, &mut sa, now);
    assert_eq!(segs.len(), 1, "only the SYN while connecting");
    a.shutdown_write(&mut sa);
    assert_eq!(a.state(), State::Closed, "shutdown in SYN-SENT closes");
    assert_eq!(a.write(&mut sa, HeapPayload::from_slice(b"x"), WriteFlags::NONE), Err(WriteError::Closed));
}

#[test]
fn nagle_holds_small_segments_until_acked() {
    let mut p = Pair::connect(&cfg(), &cfg());
    let _ = p.a.write(&mut p.sa, HeapPayload::from_slice(b"a"), WriteFlags::NONE);
    let first = drain(&mut p.a, &mut p.sa, p.now);
    assert_eq!(first.len(), 1);
    let _ = p.a.write(&mut p.sa, HeapPayload::from_slice(b"b"), WriteFlags::NONE);
    assert!(drain(&mut p.a, &mut p.sa, p.now).is_empty(), "Minshall: small segment in flight");
    p.b.handle_segment(&mut p.sb, &first[0].repr, first[0].payload.clone(), p.now);
    // B delays its ACK; the delayed-ACK timer releases it.
    assert!(drain(&mut p.b, &mut p.sb, p.now).is_empty());
    p.now += cfg().delayed_ack;
    p.b.handle_timeout(&mut p.sb, p.now);
    let ack = drain(&mut p.b, &mut p.sb, p.now);
    assert_eq!(ack.len(), 1);
    assert_eq!(p.sb.counters.delayed_acks, 1);
    p.a.handle_segment(&mut p.sa, &ack[0].repr, HeapPayload::empty(), p.now);
    let second = drain(&mut p.a, &mut p.sa, p.now);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].payload.to_vec(), b"b");

    // No-delay sends at once; MSG_MORE corks.
    let nd = TcpConfig { nodelay: true, ..cfg() };
    let mut q = Pair::connect(&nd, &cfg());
    let _ = q.a.write(&mut q.sa, HeapPayload::from_slice(b"a"), WriteFlags::NONE);
    let _ = drain(&mut q.a, &mut q.sa, q.now);
    let _ = q.a.write(&mut q.sa, HeapPayload::from_slice(b"b"), WriteFlags::NONE);
    assert_eq!(drain(&mut q.a, &mut q.sa, q.now).len(), 1);
    let _ = q.a.write(&mut q.sa, HeapPayload::from_slice(b"c"), WriteFlags::MORE);
    assert!(drain(&mut q.a, &mut q.sa, q.now).is_empty(), "corked");
    let _ = q.a.write(&mut q.sa, HeapPayload::from_slice(b"d"), WriteFlags::NONE);
    let s = drain(&mut q.a, &mut q.sa, q.now);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].payload.to_vec(), b"cd");
    assert!(s[0].repr.flags.contains(Flags::PSH));
}

#[test]
fn send_buffer_backpressure_and_writable_event() {
    let small = TcpConfig { sndbuf: 4000, ..cfg() };
    let mut p = Pair::connect(&small, &cfg());
    let data = pattern(10_000);
    assert_eq!(p.a.write(&mut p.sa, HeapPayload::from_slice(&data), WriteFlags::NONE), Ok(4000));
    assert_eq!(p.a.write(&mut p.sa, HeapPayload::from_slice(&data), WriteFlags::NONE), Err(WriteError::NoSpace));
    p.run_until_idle(|_, _| true);
    assert!(Pair::events(&mut p.a).contains(&Event::Writable));
    assert_eq!(p.a.send_space(&p.sa), 4000);
}

#[test]
fn zero_window_triggers_persist_probes() {
    let tiny = TcpConfig { rcvbuf: 4000, window_scaling: false, ..cfg() };
    let mut p = Pair::connect(&cfg(), &tiny);
    let data = pattern(20_000);
    let _ = p.a.write(&mut p.sa, HeapPayload::from_slice(&data), WriteFlags::NONE);
    // B never reads: its window closes.
    let mut guard = 0;
    while p.a.info().snd_wnd > 0 || p.a.info().snd_una != p.a.info().snd_nxt {
        p.run_until_idle(|_, _| true);
        guard += 1;
        assert!(guard < 100);
        if p.a.info().snd_wnd == 0 {
            break;
        }
    }
    assert_eq!(p.a.info().snd_wnd, 0);
    assert!(p.a.info().snd_una == p.a.info().snd_nxt, "nothing in flight");
    // run_until_idle already let the persist timer fire: probes use an old sequence number.
    assert!(p.sa.counters.window_probes >= 1);
    let una = p.a.info().snd_una;
    assert!(p.log.iter().any(|(from_a, s)| *from_a && s.repr.seq == una.wrapping_sub(1) && s.payload.is_empty()));
    let probes = p.sa.counters.window_probes;
    let t = p.a.next_deadline().unwrap_or(p.now);
    assert!(t > p.now, "persist timer armed");
    p.now = t;
    p.a.handle_timeout(&mut p.sa, p.now);
    let probe = drain(&mut p.a, &mut p.sa, p.now);
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0].repr.seq, una.wrapping_sub(1));
    assert_eq!(p.sa.counters.window_probes, probes + 1);
    // The reader drains: the window update lets the rest through.
    let mut got = Pair::read_all(&mut p.b);
    for _ in 0..100 {
        p.run_until_idle(|_, _| true);
        got.extend(Pair::read_all(&mut p.b));
        if got.len() == data.len() {
            break;
        }
        let t = p.now + Duration::from_secs(1);
        p.now = t;
        p.a.handle_timeout(&mut p.sa, p.now);
    }
    assert_eq!(got, data);
}

#[test]
fn close_with_unread_data_resets() {
    let mut p = Pair::connect(&cfg(), &cfg());
    let _ = p.a.write(&mut p.sa, HeapPayload::from_slice(b"unread"), WriteFlags::NONE);
    p.run_until_idle(|_, _| true);
    p.b.close(&mut p.sb, p.now);
    let rst = drain(&mut p.b, &mut p.sb, p.now);
    assert_eq!(rst.len(), 1);
    assert!(rst[0].repr.flags.contains(Flags::RST));
    assert_eq!(p.sb.counters.abort_on_close, 1);
    p.a.handle_segment(&mut p.sa, &rst[0].repr, HeapPayload::empty(), p.now);
    assert_eq!(p.a.state(), State::Closed);
    assert!(Pair::events(&mut p.a).contains(&Event::Closed { reason: CloseReason::Reset }));
    assert_eq!(p.sa.counters.estab_resets, 1);
}

#[test]
fn keepalive_probes_then_resets() {
    let ka = TcpConfig {
        keepalive: Some(crate::tcp::config::KeepaliveConfig {
            idle: Duration::from_secs(10),
            interval: Duration::from_secs(1),
            probes: 2,
        }),
        ..cfg()
    };
    let mut p = Pair::connect(&ka, &cfg());
    let t0 = p.now;
    assert_eq!(p.a.next_deadline(), Some(t0 + Duration::from_secs(10)));
    // Answered probe: stays up.
    p.now = t0 + Duration::from_secs(10);
    p.a.handle_timeout(&mut p.sa, p.now);
    let probe = drain(&mut p.a, &mut p.sa, p.now);
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0].repr.seq, p.a.info().snd_una.wrapping_sub(1));
    p.b.handle_segment(&mut p.sb, &probe[0].repr, HeapPayload::empty(), p.now);
    let reply = drain(&mut p.b, &mut p.sb, p.now);
    assert_eq!(reply.len(), 1, "the peer answers an old-sequence probe with an ACK");
    p.a.handle_segment(&mut p.sa, &reply[0].repr, HeapPayload::empty(), p.now);
    assert_eq!(p.a.next_deadline(), Some(p.now + Duration::from_secs(10)));
    // Unanswered probes: reset.
    for _ in 0..3 {
        let Some(t) = p.a.next_deadline() else { break };
        p.now = t;
        p.a.handle_timeout(&mut p.sa, p.now);
        let _ = drain(&mut p.a, &mut p.sa, p.now);
    }
    assert_eq!(p.a.state(), State::Closed);
    assert_eq!(p.sa.counters.keepalive_probes, 3);
    assert!(Pair::events(&mut p.a).contains(&Event::Closed { reason: CloseReason::Timeout }));
}

/// Keepalive set on one connection (`SO_KEEPALIVE` + `TCP_KEEPIDLE`/`INTVL`/`CNT`, as the
/// proxy does per listener and pool), the engine-wide setting off: a silent peer is reset
/// after idle + probes * interval (Linux `tcp_keepalive_timer`); without it, no timer.
#[test]
fn keepalive_set_per_connection_probes_a_silent_peer_then_resets() {
    let mut p = Pair::connect(&cfg(), &cfg());
    assert_eq!(p.a.next_deadline(), None, "no keepalive by default");
    let t0 = p.now;
    let ka = crate::tcp::config::KeepaliveConfig {
        idle: Duration::from_secs(30),
        interval: Duration::from_secs(5),
        probes: 3,
    };
    p.a.set_keepalive(Some(ka), t0);
    assert_eq!(p.a.next_deadline(), Some(t0 + Duration::from_secs(30)));
    let mut probes = 0;
    while let Some(t) = p.a.next_deadline() {
        p.now = t;
        p.a.handle_timeout(&mut p.sa, p.now);
        probes += drain(&mut p.a, &mut p.sa, p.now).len();
        if p.a.state() == State::Closed {
            break;
        }
    }
    assert_eq!(p.a.state(), State::Closed);
    assert_eq!(p.now, t0 + Duration::from_secs(30 + 3 * 5), "idle + probes * interval");
    assert_eq!(p.sa.counters.keepalive_probes, 3);
    assert!(probes >= 3);
    assert!(Pair::events(&mut p.a).contains(&Event::Closed { reason: CloseReason::Timeout }));
    // Turning it off clears the timer.
    let mut q = Pair::connect(&cfg(), &cfg());
    q.a.set_keepalive(Some(ka), q.now);
    q.a.set_keepalive(None, q.now);
    assert_eq!(q.a.next_deadline(), None);
}

#[test]
fn frames_carrying_sack_blocks_still_fit_the_mss() {
    // Both sides send; some of B's segments are lost, so A's data segments carry SACK
    // blocks (RFC 2018 §3) next to the timestamps the MSS was sized for. Each of A's frames
    // (a super-segment cut at its `mss`) must still fit: header + payload within the
    // negotiated MSS plus the usual options, as Linux `tcp_current_mss` ensures.
    let mut p = Pair::connect(&cfg(), &cfg());
    let (data_a, data_b) = (pattern(300_000), pattern(200_000));
    assert_eq!(p.a.write(&mut p.sa, HeapPayload::from_slice(&data_a), WriteFlags::NONE).unwrap_or(0), data_a.len());
    assert_eq!(p.b.write(&mut p.sb, HeapPayload::from_slice(&data_b), WriteFlags::NONE).unwrap_or(0), data_b.len());
    let mss_now = p.a.info().mss_now as usize;
    let limit = crate::wire::tcp::HEADER_LEN + 12 + mss_now;
    let (mut from_b, mut with_sack, mut oversize) = (0, 0, Vec::new());
    p.run_until_idle(|from_a, s| {
        if from_a && !s.payload.is_empty() {
            if !s.repr.options.sack_blocks.is_empty() {
                with_sack += 1;
            }
            let per_frame = if s.mss == 0 { s.payload.len() } else { usize::from(s.mss).min(s.payload.len()) };
            if s.repr.header_len() + per_frame > limit {
                oversize.push((s.repr.header_len(), per_frame, s.mss));
            }
        }
        if !from_a && !s.payload.is_empty() {
            from_b += 1;
            return from_b % 7 != 3;
        }
        true
    });
    assert!(with_sack > 0, "no data segment of A carried SACK blocks: the test tested nothing");
    assert!(oversize.is_empty(), "frames above the MSS (header, payload, mss): {:?}", &oversize[..oversize.len().min(5)]);
    assert_eq!(Pair::read_all(&mut p.b), data_a);
    assert_eq!(Pair::read_all(&mut p.a), data_b);
}

/// While buffers are nearly gone engine-wide (`rx_shed`), a connection may queue only
/// `tcp_wmem[0]` worth for sending: a relay then stops reading, so its peer's text is
/// shed rather than the pool's last mbufs queued (Linux `sk_wmem_schedule` under
/// `tcp_mem[2]`).
#[test]
fn writes_beyond_the_minimum_are_refused_while_shedding() {
    let mut p = Pair::connect(&cfg(), &cfg());
    p.sa.rx_shed = true;
    assert_eq!(
        p.a.write(&mut p.sa, HeapPayload::from_slice(&[1; 5000]), WriteFlags::NONE),
        Ok(5000),
        "under the minimum"
    );
    assert_eq!(p.a.write(&mut p.sa, HeapPayload::from_slice(&[2; 10]), WriteFlags::NONE), Err(WriteError::NoSpace));
    assert_eq!(p.sa.counters.sndbuf_full, 1);
    p.sa.rx_shed = false;
    assert_eq!(p.a.write(&mut p.sa, HeapPayload::from_slice(&[2; 10]), WriteFlags::NONE), Ok(10));
}
