//! Strait's side of the `bulk` benchmark: two engines over the in-memory IPv4 wire (each
//! segment emitted with both checksums in software, parsed and verified on the other side;
//! TSO handed over whole, or cut by software GSO), and the measured loops that drive them.

use super::*;

// ===================================================================================
// Strait's engine over the in-memory wire
// ===================================================================================

/// How the sender's segments reach the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxMode {
    /// Every segment as one packet (a super-segment too: TSO NIC + LRO receiver).
    Whole,
    /// Super-segments cut by software GSO into 1-MSS frames.
    SoftGso,
}

/// The wire between the engines: IPv4 packets in flight, in one direction at a time.
pub(super) struct Wire {
    mode: TxMode,
    ip_id: u16,
    frames: VecDeque<Vec<u8>>,
    gso_headers: Vec<u8>,
    pool: Pool,
    /// Packets that failed to emit, parse or verify: must stay 0.
    errors: u64,
}

impl Wire {
    fn new(mode: TxMode) -> Self {
        Wire { mode, ip_id: 0, frames: VecDeque::new(), gso_headers: Vec::new(), pool: Pool::default(), errors: 0 }
    }

    fn next_ip(&mut self, src: Ipv4Addr, dst: Ipv4Addr, payload_len: usize) -> ipv4::Repr {
        self.ip_id = self.ip_id.wrapping_add(1);
        ipv4::Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: ipv4::protocol::TCP,
            payload_len,
            ttl: ipv4::DEFAULT_TTL,
            ident: self.ip_id,
            dont_frag: true,
        }
    }

    /// Emits everything `engine` has to send; returns the number of packets.
    fn transmit<P: FromWire>(&mut self, engine: &mut Engine<P>, now: Instant) -> u64 {
        let mut n = 0;
        engine.poll_transmit(now, &mut |src, dst, seg| {
            let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (src, dst) else { return };
            n += if self.mode == TxMode::SoftGso && seg.mss > 0 && seg.payload.len() > usize::from(seg.mss) {
                self.emit_gso(src, dst, &seg)
            } else {
                self.emit_whole(src, dst, &seg)
            };
        });
        n
    }

    /// IPv4 header + TCP header + payload, both checksums in software (RFC 791, RFC 9293 §3.1).
    fn emit_whole<P: FromWire>(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &dataplane::tcp::Segment<P>) -> u64 {
        let hlen = seg.repr.header_len();
        let ip = self.next_ip(src, dst, hlen + seg.payload.len());
        let mut buf = take_buf(&self.pool, ip.total_len());
        buf.resize(ipv4::HEADER_LEN + hlen, 0);
        if ip.emit(&mut ipv4::Packet::new_unchecked(&mut buf[..])).is_err() {
            self.errors += 1;
            return 0;
        }
        let Some(tcp) = buf.get_mut(ipv4::HEADER_LEN..) else {
            self.errors += 1;
            return 0;
        };
        if seg.repr.emit(tcp) != hlen {
            self.errors += 1;
            return 0;
        }
        for c in seg.payload.chunks() {
            buf.extend_from_slice(c);
        }
        if let Some(tcp) = buf.get_mut(ipv4::HEADER_LEN..) {
            wire_tcp::fill_checksum(tcp, src, dst);
        }
        self.frames.push_back(buf);
        1
    }

    /// Software GSO of a super-segment: Ethernet + IPv4 + TCP headers, then `gso_segment`
    /// writes each 1-MSS frame with both checksums; the Ethernet header is stripped again.
    fn emit_gso<P: FromWire>(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &dataplane::tcp::Segment<P>) -> u64 {
        const ETH: usize = 14;
        let hlen = seg.repr.header_len();
        let ip = self.next_ip(src, dst, hlen);
        self.gso_headers.clear();
        self.gso_headers.resize(ETH + ipv4::HEADER_LEN + hlen, 0);
        if let Some(t) = self.gso_headers.get_mut(12..14) {
            t.copy_from_slice(&[0x08, 0x00]);
        }
        let ok = match self.gso_headers.get_mut(ETH..) {
            Some(l3) => ip.emit(&mut ipv4::Packet::new_unchecked(l3)).is_ok(),
            None => false,
        } && self.gso_headers.get_mut(ETH + ipv4::HEADER_LEN..).is_some_and(|l4| seg.repr.emit(l4) == hlen);
        if !ok {
            self.errors += 1;
            return 0;
        }
        let chunks: Vec<&[u8]> = seg.payload.chunks().collect();
        let (frames, pool) = (&mut self.frames, &self.pool);
        let mut n = 0;
        let r = gso_segment(&self.gso_headers, &chunks, seg.mss, &mut |frame: &[u8]| {
            let l3 = frame.get(ETH..).unwrap_or(&[]);
            let mut buf = take_buf(pool, l3.len());
            buf.extend_from_slice(l3);
            frames.push_back(buf);
            n += 1;
        });
        if r.is_err() {
            self.errors += 1;
        }
        n
    }

    /// Parses and verifies every packet in flight and hands it to `engine`.
    fn deliver<P: FromWire>(&mut self, engine: &mut Engine<P>, now: Instant) {
        while let Some(buf) = self.frames.pop_front() {
            let parsed =
                ipv4::Packet::new_checked(&buf[..]).and_then(|p| ipv4::Repr::parse(&p, true).map(|r| (r, p.header_len())));
            let Ok((ip, hlen)) = parsed else {
                self.errors += 1;
                continue;
            };
            if ip.protocol != ipv4::protocol::TCP {
                self.errors += 1;
                continue;
            }
            let seg = P::from_wire(buf, &self.pool).slice(hlen..hlen + ip.payload_len);
            if engine.handle_datagram(ip.src_addr, ip.dst_addr, seg, false, now).is_err() {
                self.errors += 1;
            }
        }
    }
}

/// Two engines and the connections between them: `a` the client, `b` the server.
pub(super) struct OurPair<P: FromWire> {
    a: Engine<P>,
    b: Engine<P>,
    /// The first connection, client end and server end (the bulk transfers use it alone).
    ca: ConnId,
    cb: ConnId,
    /// Every connection (the first included): request/response transactions take them in
    /// turn, so that with thousands the engines' state is spread as on a busy proxy.
    conns: Vec<(ConnId, ConnId)>,
    now: Instant,
    wire: Wire,
    read_max: usize,
    pub(super) segs_ab: u64,
    pub(super) segs_ba: u64,
}

pub(super) fn our_config(tso: bool, nodelay: bool) -> TcpConfig {
    TcpConfig { tso, nodelay, rcvbuf: BUF as u32, sndbuf: BUF as u32, ..TcpConfig::default() }
}

impl<P: FromWire> OurPair<P> {
    pub(super) fn new(cfg: TcpConfig, mode: TxMode) -> Result<Self, String> {
        Self::with_conns(cfg, mode, 1)
    }

    /// `n` connections, opened in batches that the listener's backlog holds.
    pub(super) fn with_conns(cfg: TcpConfig, mode: TxMode, n: usize) -> Result<Self, String> {
        const BATCH: usize = 64;
        let mut a = Engine::new(cfg.clone(), [1; 16], Instant::ZERO);
        let mut b = Engine::new(cfg, [2; 16], Instant::ZERO);
        let server = SocketAddrV4::new(IP_B, PORT);
        let lid = b.listen(server).map_err(|e| format!("listen: {e}"))?;
        let mut wire = Wire::new(mode);
        let mut now = Instant::ZERO;
        let mut conns = Vec::with_capacity(n);
        while conns.len() < n {
            let mut clients = Vec::new();
            for _ in 0..BATCH.min(n - conns.len()) {
                clients.push(a.connect(IP_A, server, now).map_err(|e| format!("connect: {e}"))?);
            }
            let (mut servers, mut connected) = (Vec::new(), 0usize);
            for _ in 0..100 {
                wire.transmit(&mut a, now);
                wire.deliver(&mut b, now);
                while let Some(ev) = b.poll_event() {
                    if ev == StackEvent::Acceptable(lid) {
                        while let Some(c) = b.accept(lid) {
                            servers.push(c);
                        }
                    }
                }
                wire.transmit(&mut b, now);
                wire.deliver(&mut a, now);
                while let Some(ev) = a.poll_event() {
                    connected += usize::from(matches!(ev, StackEvent::Conn(c, Event::Connected) if clients.contains(&c)));
                }
                now += Duration::from_nanos(STEP_NS);
                if servers.len() == clients.len() && connected == clients.len() {
                    break;
                }
            }
            if servers.len() != clients.len() || connected != clients.len() {
                return Err(format!("handshakes did not complete ({} of {})", servers.len().min(connected), clients.len()));
            }
            // Paired by the client's port: the server end's remote port.
            let port = |e: &Engine<P>, c: ConnId, remote: bool| {
                e.addresses(c).map(|(l, r)| if remote { r.port() } else { l.port() }).unwrap_or(0)
            };
            clients.sort_by_key(|&c| port(&a, c, false));
            servers.sort_by_key(|&c| port(&b, c, true));
            conns.extend(clients.into_iter().zip(servers));
        }
        let &(ca, cb) = conns.first().ok_or("no connection")?;
        let read_max = usize::try_from(env_u64("STRAIT_BENCH_READ_MAX", READ_MAX as u64)).unwrap_or(READ_MAX);
        Ok(OurPair { a, b, ca, cb, conns, now, wire, read_max, segs_ab: 0, segs_ba: 0 })
    }

    /// Client -> server: emit, carry, parse, process.
    fn pump_ab(&mut self) {
        self.segs_ab += self.wire.transmit(&mut self.a, self.now);
        self.wire.deliver(&mut self.b, self.now);
    }

    /// Server -> client.
    fn pump_ba(&mut self) {
        self.segs_ba += self.wire.transmit(&mut self.b, self.now);
        self.wire.deliver(&mut self.a, self.now);
    }

    /// Advances virtual time, runs due timers and drains the event queues.
    fn tick(&mut self) {
        self.now += Duration::from_nanos(STEP_NS);
        let now = self.now;
        for e in [&mut self.a, &mut self.b] {
            if e.next_deadline().is_some_and(|d| d <= now) {
                e.handle_timeouts(now);
            }
            while e.poll_event().is_some() {}
        }
    }

    /// Reads everything `conn` has; returns the bytes read.
    fn read_all(&mut self, server: bool, conn: ConnId, check_at: Option<u64>) -> Result<u64, String> {
        let engine = if server { &mut self.b } else { &mut self.a };
        let mut n = 0u64;
        loop {
            match engine.read(conn, self.read_max, self.now) {
                Ok(Some(p)) => {
                    if let Some(at) = check_at {
                        let mut off = at + n;
                        for c in p.chunks() {
                            verify(off, c)?;
                            off += c.len() as u64;
                        }
                    }
                    n += p.len() as u64;
                }
                Ok(None) => return Ok(n),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Writes as much of `data` as the send buffer takes.
    fn write(engine: &mut Engine<P>, conn: ConnId, data: P, now: Instant) -> Result<usize, String> {
        match engine.write(conn, data, WriteFlags::NONE, now) {
            Ok(n) => Ok(n),
            Err(StackError::Write(WriteError::NoSpace)) => Ok(0),
            Err(e) => Err(format!("write: {e}")),
        }
    }
}

/// Sends `total` bytes client -> server; verifies them when `check`.
#[inline(never)]
pub(super) fn measured_bulk_strait<P: FromWire>(p: &mut OurPair<P>, src: &P, total: u64, check: bool) -> Result<(), String> {
    let (mut sent, mut recvd, mut rounds) = (0u64, 0u64, 0u64);
    while recvd < total {
        while sent < total {
            let off = (sent % SRC_LEN as u64) as usize;
            let n = WRITE_CHUNK.min(SRC_LEN - off).min(usize::try_from(total - sent).unwrap_or(usize::MAX));
            let w = OurPair::<P>::write(&mut p.a, p.ca, src.slice(off..off + n), p.now)?;
            sent += w as u64;
            if w < n {
                break;
            }
        }
        p.pump_ab();
        recvd += p.read_all(true, p.cb, check.then_some(recvd))?;
        p.pump_ba();
        p.tick();
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(format!("bulk transfer stuck at {recvd} of {total} bytes"));
        }
    }
    if p.wire.errors > 0 {
        return Err(format!("{} packets failed to emit or parse", p.wire.errors));
    }
    Ok(())
}

/// `n` transactions: 1 KiB request, 1 KiB response, on the pair's connections in turn.
#[inline(never)]
pub(super) fn measured_rr_strait<P: FromWire>(p: &mut OurPair<P>, req: &P, resp: &P, n: u64, check: bool) -> Result<(), String> {
    let mut next = 0usize;
    for _ in 0..n {
        let Some(&(ca, cb)) = p.conns.get(next) else { return Err("no connection".into()) };
        next = if next + 1 == p.conns.len() { 0 } else { next + 1 };
        if OurPair::<P>::write(&mut p.a, ca, req.clone(), p.now)? != RR_SIZE {
            return Err("request not accepted whole".into());
        }
        let mut got = 0u64;
        for round in 0.. {
            p.pump_ab();
            got += p.read_all(true, cb, check.then_some(got))?;
            if got >= RR_SIZE as u64 {
                break;
            }
            p.pump_ba();
            p.tick();
            if round > 1000 {
                return Err("request stuck".into());
            }
        }
        if OurPair::<P>::write(&mut p.b, cb, resp.clone(), p.now)? != RR_SIZE {
            return Err("response not accepted whole".into());
        }
        got = 0;
        for round in 0.. {
            p.pump_ba();
            got += p.read_all(false, ca, check.then_some(got))?;
            if got >= RR_SIZE as u64 {
                break;
            }
            p.pump_ab();
            p.tick();
            if round > 1000 {
                return Err("response stuck".into());
            }
        }
        p.tick();
    }
    if p.wire.errors > 0 {
        return Err(format!("{} packets failed to emit or parse", p.wire.errors));
    }
    Ok(())
}

pub(super) fn run_bulk_strait<P: FromWire>(tso: bool, mode: TxMode, src: &P, total: u64, check: bool) -> Result<Sample, String> {
    let mut p = OurPair::<P>::new(our_config(tso, false), mode)?;
    let t = Stopwatch::start();
    measured_bulk_strait(&mut p, src, total, check)?;
    Ok(Sample { elapsed: t.elapsed(), units: total, segs_ab: p.segs_ab, segs_ba: p.segs_ba })
}
