//! A packetdrill-style harness for the TCP engine: at virtual time `t` inject a segment from
//! the peer, then expect exactly the segments the engine sends back.
//!
//! Segments are written compactly, tcpdump/packetdrill style:
//!
//! ```text
//! S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,wscale 7>
//! P. 1:101(100) ack 1 win 257
//! R. 0 ack 1
//! ```
//!
//! Flags: `S` SYN, `F` FIN, `R` RST, `P` PSH, `.` ACK. Then the sequence number, optionally
//! as `start:end(len)` (the payload length), `ack N`, `win N` and `<options>`. In
//! expectations any number may be `*`; `win` and `<options>` are only compared when given.
//! The peer's numbers are absolute; the engine's are relative to its ISN, learned from the
//! first SYN it sends (as packetdrill does).
//!
//! Every script runs twice, over IPv4 and over IPv6 ([`both_families!`]): the addresses
//! change, and the engine is configured so that it announces and sends the same MSS over
//! both (its IPv6 MSS is 20 bytes below the IPv4 one, RFC 6691 §2), so the segments the
//! script expects are the same.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use dataplane::tcp::seq::SeqNum;
use dataplane::tcp::{ConnId, Engine, HeapPayload, ListenerId, Payload, Segment, TcpConfig};
use dataplane::time::{Duration, Instant};
use dataplane::wire::tcp::{Flags, SackBlocks, TcpOptions, TcpRepr};

/// Engine address over IPv4.
pub const LOCAL_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Scripted peer address over IPv4.
pub const REMOTE_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Engine address over IPv6 (RFC 3849 documentation prefix).
pub const LOCAL_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// Scripted peer address over IPv6.
pub const REMOTE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// The address family a script runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

thread_local! {
    /// The family of the scripts running on this thread (each test has its own thread).
    static FAMILY: Cell<Family> = const { Cell::new(Family::V4) };
}

/// Runs `script` over `family` (the addresses [`local`] and [`remote`] return, and the
/// engines [`Script::new`] makes).
pub fn run_over(family: Family, script: fn()) {
    FAMILY.with(|f| f.set(family));
    script();
}

/// The family of the script running.
pub fn family() -> Family {
    FAMILY.with(Cell::get)
}

/// The engine's address in the running script's family.
pub fn local() -> IpAddr {
    match family() {
        Family::V4 => LOCAL_V4.into(),
        Family::V6 => LOCAL_V6.into(),
    }
}

/// The scripted peer's address in the running script's family.
pub fn remote() -> IpAddr {
    match family() {
        Family::V4 => REMOTE_V4.into(),
        Family::V6 => REMOTE_V6.into(),
    }
}

/// The path MTU that carries the segments an IPv4 path MTU of `v4` carries, in the
/// running script's family: 20 bytes more over IPv6, whose header is that much longer.
pub fn path_mtu(v4: u32) -> u32 {
    match family() {
        Family::V4 => v4,
        Family::V6 => v4 + 20,
    }
}

/// Makes a `#[test]` of each script function named, once over IPv4 (`v4::name`) and once
/// over IPv6 (`v6::name`).
#[macro_export]
macro_rules! both_families {
    ($($name:ident),+ $(,)?) => {
        mod v4 {
            $(#[test] fn $name() { $crate::tcp_script::run_over($crate::tcp_script::Family::V4, super::$name) })+
        }
        mod v6 {
            $(#[test] fn $name() { $crate::tcp_script::run_over($crate::tcp_script::Family::V6, super::$name) })+
        }
    };
}
/// Engine (listening) port.
pub const LPORT: u16 = 8080;
/// Peer port.
pub const RPORT: u16 = 40000;

/// A number in a segment spec: a value or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val {
    /// Must equal.
    Is(u32),
    /// Anything.
    Any,
}

impl Val {
    fn get(self) -> u32 {
        match self {
            Val::Is(v) => v,
            Val::Any => 0,
        }
    }

    fn matches(self, v: u32) -> bool {
        match self {
            Val::Is(x) => x == v,
            Val::Any => true,
        }
    }
}

/// One option in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opt {
    Mss(Val),
    Wscale(Val),
    SackOk,
    Ts(Val, Val),
    Sack(Vec<(u32, u32)>),
}

/// A parsed segment spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub flags: Flags,
    pub seq: Val,
    pub len: usize,
    pub ack: Option<Val>,
    pub win: Option<Val>,
    pub opts: Option<Vec<Opt>>,
}

fn num(tok: &str) -> Val {
    if tok == "*" {
        return Val::Any;
    }
    match tok.parse::<u32>() {
        Ok(v) => Val::Is(v),
        Err(_) => panic!("bad number {tok:?} in segment spec"),
    }
}

/// Parses a spec (panics with a message on a malformed script line: scripts are test code).
pub fn parse(spec: &str) -> Spec {
    let (head, opts) = match spec.split_once('<') {
        Some((h, rest)) => (h, Some(rest.trim_end().trim_end_matches('>'))),
        None => (spec, None),
    };
    let mut toks = head.split_whitespace();
    let fl = toks.next().unwrap_or_else(|| panic!("empty spec"));
    let mut flags = Flags::NONE;
    for c in fl.chars() {
        flags |= match c {
            'S' => Flags::SYN,
            'F' => Flags::FIN,
            'R' => Flags::RST,
            'P' => Flags::PSH,
            '.' => Flags::ACK,
            'U' => Flags::URG,
            _ => panic!("bad flag {c:?} in {spec:?}"),
        };
    }
    let seqtok = toks.next().unwrap_or_else(|| panic!("no sequence number in {spec:?}"));
    let (seq, len) = match seqtok.split_once(':') {
        Some((s, rest)) => {
            let l = rest.split_once('(').map(|(_, l)| l.trim_end_matches(')')).unwrap_or("0");
            (num(s), l.parse::<usize>().unwrap_or_else(|_| panic!("bad length in {spec:?}")))
        }
        None => (num(seqtok), 0),
    };
    let mut s = Spec { flags, seq, len, ack: None, win: None, opts: None };
    while let Some(t) = toks.next() {
        let v = toks.next().unwrap_or_else(|| panic!("{t} without value in {spec:?}"));
        match t {
            "ack" => s.ack = Some(num(v)),
            "win" => s.win = Some(num(v)),
            _ => panic!("unknown field {t:?} in {spec:?}"),
        }
    }
    if let Some(o) = opts {
        let mut list = Vec::new();
        for item in o.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let w: Vec<&str> = item.split_whitespace().collect();
            match w.as_slice() {
                ["mss", v] => list.push(Opt::Mss(num(v))),
                ["wscale", v] => list.push(Opt::Wscale(num(v))),
                ["sackOK"] => list.push(Opt::SackOk),
                ["TS", "val", v, "ecr", e] => list.push(Opt::Ts(num(v), num(e))),
                ["nop"] | ["eol"] => {}
                ["sack", blocks @ ..] => {
                    let b = blocks
                        .iter()
                        .map(|b| {
                            let (l, r) = b.split_once(':').unwrap_or_else(|| panic!("bad sack block {b}"));
                            (num(l).get(), num(r).get())
                        })
                        .collect();
                    list.push(Opt::Sack(b));
                }
                _ => panic!("unknown option {item:?}"),
            }
        }
        s.opts = Some(list);
    }
    s
}

/// Renders an emitted segment in the spec syntax (for failure messages).
pub fn render(seg: &Segment<HeapPayload>, our_isn: u32) -> String {
    let r = &seg.repr;
    let mut s = String::new();
    for (f, c) in [(Flags::SYN, 'S'), (Flags::FIN, 'F'), (Flags::RST, 'R'), (Flags::PSH, 'P'), (Flags::ACK, '.')] {
        if r.flags.contains(f) {
            s.push(c);
        }
    }
    let seq = r.seq.0.wrapping_sub(our_isn);
    let _ = write!(s, " {}:{}({})", seq, seq.wrapping_add(seg.payload.len() as u32), seg.payload.len());
    if r.flags.contains(Flags::ACK) {
        let _ = write!(s, " ack {}", r.ack.0);
    }
    let _ = write!(s, " win {}", r.window);
    let o = &r.options;
    let mut opts = Vec::new();
    if let Some(m) = o.mss {
        opts.push(format!("mss {m}"));
    }
    if o.sack_permitted {
        opts.push("sackOK".into());
    }
    if let Some((v, e)) = o.timestamps {
        opts.push(format!("TS val {v} ecr {e}"));
    }
    if let Some(w) = o.window_scale {
        opts.push(format!("wscale {w}"));
    }
    if !o.sack_blocks.is_empty() {
        let b: Vec<String> = o.sack_blocks.iter().map(|(l, r)| format!("{}:{}", l.0, r.0)).collect();
        opts.push(format!("sack {}", b.join(" ")));
    }
    if !opts.is_empty() {
        let _ = write!(s, " <{}>", opts.join(","));
    }
    s
}

/// The script runner around one engine and one scripted peer.
pub struct Script {
    pub engine: Engine<HeapPayload>,
    pub now: Instant,
    pub our_isn: Option<u32>,
    /// Segments the engine sent that no expectation consumed yet, with their send time.
    pub out: VecDeque<(Instant, Segment<HeapPayload>)>,
    pub events: Vec<dataplane::tcp::StackEvent>,
    /// The peer's port (source of injected segments).
    pub peer_port: u16,
    /// The engine's port (destination of injected segments).
    pub our_port: u16,
}

/// A configuration that keeps scripts short: no quick-ack phase, 100 ms MSL.
pub fn script_config() -> TcpConfig {
    TcpConfig {
        max_quickacks: 0,
        msl: Duration::from_millis(500),
        rcvbuf: 65535,
        sndbuf: 65536,
        window_scaling: true,
        ..TcpConfig::default()
    }
}

impl Script {
    /// An engine over the running script's family. Over IPv6 its `mss` is raised by the 20
    /// bytes `effective_mss_v6` takes off, so it announces and sends the MSS the script
    /// was written for.
    pub fn new(mut cfg: TcpConfig) -> Script {
        if family() == Family::V6 {
            cfg.mss = cfg.mss.saturating_add(20);
        }
        Script {
            engine: Engine::new(cfg, [7; 16], Instant::ZERO),
            now: Instant::ZERO,
            our_isn: None,
            out: VecDeque::new(),
            events: Vec::new(),
            peer_port: RPORT,
            our_port: LPORT,
        }
    }

    pub fn listen(&mut self) -> ListenerId {
        match self.engine.listen(SocketAddr::new(local(), LPORT)) {
            Ok(l) => l,
            Err(e) => panic!("listen: {e}"),
        }
    }

    /// Active open towards the scripted peer; the peer port becomes `LPORT` on their side.
    pub fn connect(&mut self) -> ConnId {
        let id = match self.engine.connect(local(), SocketAddr::new(remote(), LPORT), self.now) {
            Ok(id) => id,
            Err(e) => panic!("connect: {e}"),
        };
        let (local, _) = self.engine.addresses(id).unwrap_or_else(|e| panic!("{e}"));
        // The scripted peer is the server side now.
        self.our_port = local.port();
        self.peer_port = LPORT;
        self.pump();
        id
    }

    fn isn(&self) -> u32 {
        self.our_isn.unwrap_or(0)
    }

    /// Collects everything the engine wants to send now.
    pub fn pump(&mut self) {
        let now = self.now;
        let mut segs = Vec::new();
        self.engine.poll_transmit(now, &mut |src, dst, seg| {
            assert_eq!((src, dst), (local(), remote()), "segment addressed wrongly");
            segs.push(seg);
        });
        for seg in segs {
            if self.our_isn.is_none() && seg.repr.flags.contains(Flags::SYN) {
                self.our_isn = Some(seg.repr.seq.0);
            }
            self.out.push_back((now, seg));
        }
        while let Some(ev) = self.engine.poll_event() {
            self.events.push(ev);
        }
    }

    /// Advances virtual time to `t_ms`, firing every timer on the way.
    pub fn advance_to(&mut self, t_ms: u64) {
        let target = Instant::from_millis(t_ms);
        assert!(target >= self.now, "time goes forward only");
        while let Some(d) = self.engine.next_deadline() {
            if d > target {
                break;
            }
            self.now = d.max(self.now);
            self.engine.handle_timeouts(self.now);
            self.pump();
        }
        self.now = target;
        self.pump();
    }

    /// Switches to another peer port (a new connection); the engine's ISN for it is learned
    /// again from its next SYN, or taken as 0 (absolute numbers) when `absolute`.
    pub fn new_peer(&mut self, port: u16, absolute: bool) {
        self.peer_port = port;
        self.our_isn = if absolute { Some(0) } else { None };
    }

    /// Builds the repr of a peer segment.
    pub fn build(&self, spec: &str) -> (TcpRepr, HeapPayload) {
        let s = parse(spec);
        let (src_port, dst_port) = (self.peer_port, self.our_port);
        let mut options = TcpOptions::default();
        for o in s.opts.iter().flatten() {
            match o {
                Opt::Mss(v) => options.mss = Some(v.get() as u16),
                Opt::Wscale(v) => options.window_scale = Some(v.get() as u8),
                Opt::SackOk => options.sack_permitted = true,
                Opt::Ts(v, e) => options.timestamps = Some((v.get(), e.get())),
                Opt::Sack(b) => {
                    let mut sb = SackBlocks::default();
                    for &(l, r) in b {
                        let _ = sb.push(SeqNum(l.wrapping_add(self.isn())), SeqNum(r.wrapping_add(self.isn())));
                    }
                    options.sack_blocks = sb;
                }
            }
        }
        let repr = TcpRepr {
            src_port,
            dst_port,
            seq: SeqNum(s.seq.get()),
            ack: SeqNum(s.ack.map(Val::get).unwrap_or(0).wrapping_add(if s.ack.is_some() { self.isn() } else { 0 })),
            flags: s.flags,
            window: s.win.map(Val::get).unwrap_or(65535) as u16,
            urgent: 0,
            options,
        };
        let payload: Vec<u8> = (0..s.len).map(|i| (s.seq.get() as usize + i) as u8).collect();
        (repr, HeapPayload::from_vec(payload))
    }

    /// At `t_ms`, the peer sends `spec`.
    pub fn inject(&mut self, t_ms: u64, spec: &str) {
        self.advance_to(t_ms);
        let (repr, payload) = self.build(spec);
        self.engine.handle_segment(remote(), local(), &repr, payload, self.now);
        self.pump();
    }

    /// Injects several segments at `t_ms` before collecting what the engine sends, as an
    /// lcore hands it a burst of frames and polls once.
    pub fn inject_round(&mut self, t_ms: u64, specs: &[&str]) {
        self.advance_to(t_ms);
        for spec in specs {
            let (repr, payload) = self.build(spec);
            self.engine.handle_segment(remote(), local(), &repr, payload, self.now);
        }
        self.pump();
    }

    /// Injects raw TCP bytes (for malformed-input scripts); returns the engine's verdict.
    pub fn inject_raw(&mut self, t_ms: u64, bytes: &[u8]) -> Result<(), dataplane::tcp::InputError> {
        self.advance_to(t_ms);
        let r = self.engine.handle_datagram(remote(), local(), HeapPayload::from_slice(bytes), false, self.now);
        self.pump();
        r
    }

    fn pending_dump(&self) -> String {
        let isn = self.isn();
        self.out
            .iter()
            .map(|(t, s)| format!("  t={}ms {}", t.as_millis(), render(s, isn)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The next segment sent must match `spec`.
    pub fn expect(&mut self, spec: &str) -> Segment<HeapPayload> {
        let want = parse(spec);
        let Some((_, seg)) = self.out.pop_front() else {
            panic!("t={}ms: expected `{spec}`, engine sent nothing", self.now.as_millis());
        };
        let isn = self.isn();
        let got = render(&seg, isn);
        let r = &seg.repr;
        let mut bad = Vec::new();
        if r.flags.bits() & !(Flags::URG | Flags::ECE | Flags::CWR).bits() != want.flags.bits() {
            bad.push("flags");
        }
        if !want.seq.matches(r.seq.0.wrapping_sub(isn)) {
            bad.push("seq");
        }
        if seg.payload.len() != want.len {
            bad.push("length");
        }
        match want.ack {
            Some(a) => {
                if !a.matches(r.ack.0) {
                    bad.push("ack");
                }
            }
            None => {
                if r.flags.contains(Flags::ACK) {
                    bad.push("ack (unexpected)");
                }
            }
        }
        if let Some(w) = want.win {
            if !w.matches(u32::from(r.window)) {
                bad.push("win");
            }
        }
        if let Some(opts) = &want.opts {
            let o = &r.options;
            let mut expect_mss = false;
            let mut expect_ws = false;
            let mut expect_sackok = false;
            let mut expect_ts = false;
            let mut expect_sack = false;
            for opt in opts {
                match opt {
                    Opt::Mss(v) => {
                        expect_mss = true;
                        if !o.mss.is_some_and(|m| v.matches(u32::from(m))) {
                            bad.push("mss");
                        }
                    }
                    Opt::Wscale(v) => {
                        expect_ws = true;
                        if !o.window_scale.is_some_and(|m| v.matches(u32::from(m))) {
                            bad.push("wscale");
                        }
                    }
                    Opt::SackOk => {
                        expect_sackok = true;
                        if !o.sack_permitted {
                            bad.push("sackOK");
                        }
                    }
                    Opt::Ts(v, e) => {
                        expect_ts = true;
                        if !o.timestamps.is_some_and(|(tv, te)| v.matches(tv) && e.matches(te)) {
                            bad.push("TS");
                        }
                    }
                    Opt::Sack(b) => {
                        expect_sack = true;
                        let got: Vec<(u32, u32)> =
                            o.sack_blocks.iter().map(|(l, r)| (l.0, r.0)).collect();
                        if &got != b {
                            bad.push("sack");
                        }
                    }
                }
            }
            if (o.mss.is_some() && !expect_mss)
                || (o.window_scale.is_some() && !expect_ws)
                || (o.sack_permitted && !expect_sackok)
                || (o.timestamps.is_some() && !expect_ts)
                || (!o.sack_blocks.is_empty() && !expect_sack)
            {
                bad.push("unexpected option");
            }
        }
        if !bad.is_empty() {
            panic!(
                "t={}ms: expected `{spec}`\n             got `{got}` (mismatch: {})\nstill queued:\n{}",
                self.now.as_millis(),
                bad.join(", "),
                self.pending_dump()
            );
        }
        seg
    }

    /// The next segment must match `spec` and must have been sent at `t_ms` (advancing
    /// time up to there first).
    pub fn expect_at(&mut self, t_ms: u64, spec: &str) -> Segment<HeapPayload> {
        if self.out.is_empty() {
            self.advance_to(t_ms);
        }
        let at = self.out.front().map(|(t, _)| *t);
        let seg = self.expect(spec);
        assert_eq!(at, Some(Instant::from_millis(t_ms)), "`{spec}` sent at the wrong time");
        seg
    }

    /// Nothing else was sent.
    pub fn expect_nothing(&mut self) {
        assert!(self.out.is_empty(), "t={}ms: expected silence, engine sent:\n{}", self.now.as_millis(), self.pending_dump());
    }

    /// Whether `ev` was reported (and forgets reported events up to it).
    pub fn saw_event(&mut self, ev: dataplane::tcp::StackEvent) -> bool {
        match self.events.iter().position(|e| *e == ev) {
            Some(i) => {
                self.events.drain(..=i);
                true
            }
            None => false,
        }
    }

    /// Passive handshake with the usual Linux-like SYN: returns the accepted connection.
    /// Peer ISN 0, peer TSval 100 at t=0; the engine answers at t=0.
    pub fn passive_open(&mut self) -> ConnId {
        let l = self.listen();
        self.inject(0, "S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,wscale 7>");
        self.expect("S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 0 ecr 100,wscale 0>");
        self.inject(10, ". 1 ack 1 win 512 <TS val 110 ecr 0>");
        self.expect_nothing();
        let id = match self.engine.accept(l) {
            Some(id) => id,
            None => panic!("nothing to accept"),
        };
        self.pump();
        id
    }

    pub fn write(&mut self, id: ConnId, data: &[u8]) -> usize {
        let n = self.engine.write(id, HeapPayload::from_slice(data), dataplane::tcp::WriteFlags::NONE, self.now).unwrap_or(0);
        self.pump();
        n
    }

    pub fn read_all(&mut self, id: ConnId) -> Vec<u8> {
        let mut v = Vec::new();
        while let Ok(Some(d)) = self.engine.read(id, usize::MAX, self.now) {
            v.extend(d.to_vec());
        }
        self.pump();
        v
    }

    pub fn state(&self, id: ConnId) -> Option<dataplane::tcp::State> {
        self.engine.info(id).ok().map(|i| i.state)
    }
}
