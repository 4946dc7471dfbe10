//! The TCP engine of one lcore: the connection table keyed by 4-tuple, listeners, the
//! TIME-WAIT table, the timer wheel and the counters. Like a [`Connection`] it is sans-IO:
//! segments and `now` in ([`Engine::handle_segment`], [`Engine::handle_timeouts`] and the
//! per-connection calls), segments out ([`Engine::poll_transmit`]), events out
//! ([`Engine::poll_event`]) and one deadline ([`Engine::next_deadline`]).
//!
//! Demultiplexing follows `tcp_v4_rcv`: established table, then TIME-WAIT, then listeners,
//! else an RST (RFC 9293 §3.10.7.1). The connection table itself (slots, insertion, what
//! follows each operation, reaping) is in `engine_table.rs`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use super::config::{KeepaliveConfig, TcpConfig};
use super::connection::{ConnInfo, Connection, Event, PmtuError, Segment, State, WriteError, WriteFlags};
use super::counters::Counters;
use super::isn::IsnGenerator;
use super::listener::Listener;
use super::payload::Payload;
use super::seq::SeqNum;
use super::shared::Shared;
use super::syncookie::SynCookies;
use super::time_wait::{FourTuple, TimeWaitAction, TimeWaitEntry, TimeWaitTable};
use super::timer_wheel::{TimerHandle, TimerWheel};
use super::tuple_hash::TupleHashBuilder;
use crate::time::Instant;
use crate::wire::tcp::{self as wire_tcp, Flags, Packet, TcpOptions, TcpRepr};

/// A connection handle: slot index plus generation, so stale handles are detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

/// One connection as [`Engine::connections`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSnapshot {
    /// Its handle.
    pub id: ConnId,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// Its state, RTT, windows and counts.
    pub info: ConnInfo,
}

/// A listener handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub(crate) u32);

/// What the engine tells the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackEvent {
    /// An event of an accepted or actively opened connection.
    Conn(ConnId, Event),
    /// A listener has a connection ready for [`Engine::accept`].
    Acceptable(ListenerId),
}

/// Errors of the engine's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    /// The handle does not name a live connection (it was closed and reaped).
    #[error("no such connection")]
    InvalidConn,
    /// The handle does not name a listener.
    #[error("no such listener")]
    InvalidListener,
    /// Something already listens on that address.
    #[error("address in use")]
    AddrInUse,
    /// No ephemeral port is free for that destination.
    #[error("no free ephemeral port")]
    NoPorts,
    /// The local and remote addresses are of different families (IPv4 and IPv6).
    #[error("local and remote addresses of different families")]
    FamilyMismatch,
    /// A write was refused.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// `addr` without an IPv6 flow label or scope: tuples compare by address and port only.
fn plain(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip(), addr.port())
}

/// Why a raw segment was refused before reaching TCP processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The TCP header is truncated or malformed (counted in `InErrs`).
    #[error("malformed TCP header")]
    Malformed,
    /// The checksum is wrong (counted in `InCsumErrors` and `InErrs`).
    #[error("bad TCP checksum")]
    Checksum,
}

struct Entry<P: Payload> {
    conn: Connection<P>,
    tuple: FourTuple,
    /// The listener while the connection waits in its SYN or accept queue.
    listener: Option<ListenerId>,
    /// The application owns it (active open, or passive after `accept`).
    accepted: bool,
    /// The deadline filed in the timer wheel, and its handle.
    scheduled: Option<Instant>,
    timer: Option<TimerHandle>,
    dirty: bool,
    /// The application called `close` or `abort`: nobody reads any more.
    released: bool,
    /// The buffer bytes last charged to [`Shared::allocated`] for this connection
    /// ([`Connection::buffer_bytes`] when it was last looked at).
    charged: usize,
}

struct Slot<P: Payload> {
    generation: u32,
    entry: Option<Entry<P>>,
}

/// What an engine is told about the buffers it shares with other engines
/// ([`Engine::set_memory_account`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryAccount {
    /// Buffer bytes all the engines' connections together may hold (Linux `tcp_mem[2]`).
    pub limit: usize,
    /// Buffer bytes the other engines' connections hold.
    pub foreign: usize,
    /// Connections in all the engines.
    pub connections: usize,
}

/// The TCP engine. See the module documentation.
pub struct Engine<P: Payload> {
    pub(crate) cfg: Arc<TcpConfig>,
    pub(crate) shared: Shared,
    slots: Vec<Slot<P>>,
    free: Vec<u32>,
    /// Keyed by a fast hash keyed from the secret ([`TupleHashBuilder`]).
    table: HashMap<FourTuple, ConnId, TupleHashBuilder>,
    pub(crate) listeners: Vec<Option<Listener>>,
    listen_map: HashMap<SocketAddr, ListenerId>,
    time_wait: TimeWaitTable,
    wheel: TimerWheel<ConnId>,
    pub(crate) isn: IsnGenerator,
    pub(crate) cookies: SynCookies,
    events: VecDeque<StackEvent>,
    dirty: Vec<ConnId>,
    /// Scratch lists kept between calls so that the per-segment and per-pass paths reuse
    /// their capacity instead of allocating (`poll_transmit`, `handle_timeouts`).
    dirty_scratch: Vec<ConnId>,
    due_scratch: Vec<ConnId>,
    /// Segments not owned by a live connection: RSTs for closed ports, TIME-WAIT ACKs,
    /// SYN-cookie SYN-ACKs, last words of reaped connections.
    pub(crate) outbox: VecDeque<(IpAddr, IpAddr, Segment<P>)>,
    port_cursor: u32,
    /// Flow steering: active opens only take source ports whose flow this lcore owns
    /// (see [`Engine::set_steering`]).
    steering: Option<crate::rss::LcoreSteering>,
}

impl<P: Payload> core::fmt::Debug for Engine<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("connections", &self.table.len())
            .field("time_wait", &self.time_wait.len())
            .field("counters", &self.shared.counters)
            .finish_non_exhaustive()
    }
}

impl<P: Payload> Engine<P> {
    /// A new engine. `secret` keys the ISN generator (RFC 6528) and SYN cookies; take it
    /// from a CSPRNG at start-up.
    pub fn new(cfg: TcpConfig, secret: [u8; 16], now: Instant) -> Self {
        Engine {
            shared: Shared::new(cfg.challenge_ack_limit),
            time_wait: TimeWaitTable::new(cfg.max_time_wait, TupleHashBuilder::new(&secret)),
            cfg: Arc::new(cfg),
            slots: Vec::new(),
            free: Vec::new(),
            table: HashMap::with_hasher(TupleHashBuilder::new(&secret)),
            listeners: Vec::new(),
            listen_map: HashMap::new(),
            wheel: TimerWheel::new(now),
            isn: IsnGenerator::new(secret),
            cookies: SynCookies::new(secret),
            events: VecDeque::new(),
            dirty: Vec::new(),
            dirty_scratch: Vec::new(),
            due_scratch: Vec::new(),
            outbox: VecDeque::new(),
            port_cursor: 0,
            steering: None,
        }
    }

    /// Makes [`Engine::connect`] choose only source ports whose 4-tuple this lcore owns
    /// under `steering`, so that the return flow is steered (by RSS, or by the software
    /// redirect) to the lcore that opened it. `None` (the default): any free port.
    pub fn set_steering(&mut self, steering: Option<crate::rss::LcoreSteering>) {
        self.steering = steering;
    }

    /// Enters (`true`) or leaves memory pressure: while in it, receive windows stop
    /// opening beyond two segments and each connection is held to its fair share of
    /// buffers ([`Engine::set_memory_account`]); new connections are still accepted, as
    /// Linux does (only at the pool's reserve are they refused, see
    /// [`Engine::set_rx_shedding`]). Entering is counted (`TCPMemoryPressures`). Returns
    /// whether the state changed.
    pub fn set_memory_pressure(&mut self, on: bool) -> bool {
        if self.shared.memory_pressure == on {
            return false;
        }
        self.shared.memory_pressure = on;
        if on {
            self.shared.counters.memory_pressures += 1;
        }
        true
    }

    /// Tells the engine about the buffers it shares with other engines (lcores drawing on
    /// one mbuf pool): `account.limit` is what all their connections together may hold
    /// (Linux `tcp_mem[2]`), `account.foreign` what the others hold now, and
    /// `account.connections` how many connections all engines have. At or beyond the
    /// limit every connection sheds ([`Shared::shedding`]), checked at each segment and
    /// write against this engine's exact sum; under memory pressure each connection's fair
    /// share is the limit divided by all the connections (`__sk_mem_raise_allocated`:
    /// `tcp_mem[2] > sockets_allocated * usage`).
    pub fn set_memory_account(&mut self, account: MemoryAccount) {
        self.shared.hard_limit = account.limit;
        self.shared.foreign = account.foreign;
        self.shared.pressure_share = account.limit / account.connections.max(self.table.len()).max(1);
    }

    /// Whether the engine is under memory pressure.
    pub fn memory_pressure(&self) -> bool {
        self.shared.memory_pressure
    }

    /// Sets whether buffers are nearly gone (below the lcore's reserve). While on,
    /// listeners answer SYNs with a RST (`TCPMemoryPressureRefused`), and
    /// received text that does not advance a connection's RCV.NXT is dropped
    /// (`TCPOFODrop`) and that connection's out-of-order queue pruned (`OfoPruned`), and
    /// in-order text behind unread data too (`TCPRcvQDrop`), as Linux does when
    /// `sk_rmem_schedule` fails under `tcp_mem` pressure; in-order text of a connection
    /// whose reader keeps up, and hole-filling text, is still taken, so connections that
    /// are not pinning buffers keep going and the ones that are give them back.
    pub fn set_rx_shedding(&mut self, on: bool) {
        self.shared.rx_shed = on;
    }

    /// The configuration.
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// The counters (`netstat -s`).
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Live connections (all states but TIME-WAIT entries).
    pub fn connection_count(&self) -> usize {
        self.table.len()
    }

    /// Buffer bytes the connections' queues pin ([`Shared::allocated`]).
    pub fn buffer_bytes(&self) -> usize {
        self.shared.allocated
    }

    /// Entries in the TIME-WAIT table.
    pub fn time_wait_count(&self) -> usize {
        self.time_wait.len()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<StackEvent> {
        self.events.pop_front()
    }

    // ----- input -----

    /// Processes a raw TCP segment (header + payload) whose IPv4 or IPv6 header was already
    /// validated (`tcp_v4_rcv` / `tcp_v6_rcv`). `segment` holds the TCP header in its first
    /// chunk; `checksum_ok` is true when the NIC verified the checksum, otherwise it is
    /// verified here (with the pseudo-header of the packet's family).
    pub fn handle_datagram(
        &mut self,
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        segment: P,
        checksum_ok: bool,
        now: Instant,
    ) -> Result<(), InputError> {
        let (src, dst) = (src.into(), dst.into());
        self.shared.counters.in_segs += 1;
        let first = segment.chunks().next().unwrap_or(&[]);
        let parsed = Packet::new_checked(first).map_err(|_| ()).and_then(|p| {
            let repr = TcpRepr::parse(&p).map_err(|_| ())?;
            Ok((repr, p.header_len()))
        });
        let Ok((repr, header_len)) = parsed else {
            self.shared.counters.in_errs += 1;
            return Err(InputError::Malformed);
        };
        if !checksum_ok {
            let ok = if segment.chunk_count() <= 1 {
                wire_tcp::verify_checksum(first, src, dst)
            } else {
                wire_tcp::verify_checksum(&segment.to_vec(), src, dst)
            };
            if !ok {
                self.shared.counters.in_csum_errors += 1;
                self.shared.counters.in_errs += 1;
                return Err(InputError::Checksum);
            }
        }
        // The header comes off in place (`__skb_pull` in `tcp_v4_rcv`'s path): no second
        // view of the buffer is made and the first dropped.
        let mut payload = segment;
        payload.advance(header_len);
        self.dispatch(src, dst, &repr, payload, now);
        Ok(())
    }

    /// Processes a parsed segment (checksum already verified). `src`/`dst` are the IP
    /// source and destination of the packet.
    pub fn handle_segment(&mut self, src: impl Into<IpAddr>, dst: impl Into<IpAddr>, repr: &TcpRepr, payload: P, now: Instant) {
        self.shared.counters.in_segs += 1;
        self.dispatch(src.into(), dst.into(), repr, payload, now);
    }

    fn dispatch(&mut self, src: IpAddr, dst: IpAddr, repr: &TcpRepr, payload: P, now: Instant) {
        let f = repr.flags;
        // Hostile or nonsensical headers: counted, never processed. TCP is unicast only
        // (`tcp_v4_rcv` drops broadcast/multicast; `tcp_v6_rcv` multicast, RFC 4291 §2.7);
        // an IPv4-mapped source over IPv6 is refused as Linux does (`tcp_v6_conn_request`).
        let bad_src = match src {
            IpAddr::V4(a) => a.is_broadcast() || a.is_multicast(),
            IpAddr::V6(a) => a.is_multicast() || a.to_ipv4_mapped().is_some(),
        };
        if repr.src_port == 0
            || repr.dst_port == 0
            || (f.contains(Flags::SYN) && (f.contains(Flags::FIN) || f.contains(Flags::RST)))
            || bad_src
            || dst.is_multicast()
            || src.is_ipv4() != dst.is_ipv4()
        {
            self.shared.counters.in_errs += 1;
            return;
        }
        let tuple = FourTuple { local: SocketAddr::new(dst, repr.dst_port), remote: SocketAddr::new(src, repr.src_port) };
        if let Some(&id) = self.table.get(&tuple) {
            if self.accept_queue_blocks(id, repr) {
                // Linux drops the third ACK while the accept queue is full; the SYN-ACK
                // retransmission will try again.
                self.shared.counters.listen_overflows += 1;
                self.shared.counters.listen_drops += 1;
                return;
            }
            if let Some((e, shared)) = self.split(id) {
                e.conn.handle_segment(shared, repr, payload, now);
            }
            self.after_op(id, now);
            return;
        }
        if self.time_wait.get(&tuple).is_some() {
            self.time_wait_input(&tuple, repr, payload, now);
            return;
        }
        if let Some(lid) = self.find_listener(&tuple.local) {
            self.listener_input(lid, tuple, repr, payload, now, None);
            return;
        }
        self.shared.counters.no_port += 1;
        self.reply_rst(&tuple, repr, payload.len());
    }

    fn accept_queue_blocks(&self, id: ConnId, repr: &TcpRepr) -> bool {
        let Some(e) = self.entry(id) else { return false };
        if e.accepted || e.conn.state() != State::SynReceived || !repr.flags.contains(Flags::ACK) {
            return false;
        }
        e.listener
            .and_then(|l| self.listeners.get(l.0 as usize))
            .and_then(|l| l.as_ref())
            .is_some_and(|l| l.accept_queue_full(self.cfg.accept_backlog))
    }

    fn time_wait_input(&mut self, tuple: &FourTuple, repr: &TcpRepr, payload: P, now: Instant) {
        let f = repr.flags;
        let tsval = repr.options.timestamps.map(|(v, _)| v);
        let action = self.time_wait.process(
            tuple,
            f.contains(Flags::SYN),
            f.contains(Flags::ACK),
            f.contains(Flags::RST),
            f.contains(Flags::FIN),
            repr.seq,
            u32::try_from(payload.len()).unwrap_or(u32::MAX),
            tsval,
            now,
            self.cfg.msl * 2,
        );
        match action {
            TimeWaitAction::Drop => {}
            TimeWaitAction::Ack => {
                if let Some(e) = self.time_wait.get(tuple).copied() {
                    let mut options = TcpOptions::default();
                    if let Some(recent) = e.ts_recent {
                        options.timestamps = Some(((now.as_millis() & 0xffff_ffff) as u32, recent));
                    }
                    let repr = TcpRepr {
                        src_port: tuple.local.port(),
                        dst_port: tuple.remote.port(),
                        seq: e.snd_nxt,
                        ack: e.rcv_nxt,
                        flags: Flags::ACK,
                        window: 0,
                        urgent: 0,
                        options,
                    };
                    self.shared.counters.out_segs += 1;
                    self.outbox.push_back((tuple.local.ip(), tuple.remote.ip(), Segment { repr, payload: P::empty(), mss: 0 }));
                }
            }
            TimeWaitAction::Reuse { isn } => {
                self.shared.counters.time_wait_recycled += 1;
                match self.find_listener(&tuple.local) {
                    Some(lid) => self.listener_input(lid, *tuple, repr, payload, now, Some(isn)),
                    None => {
                        self.shared.counters.no_port += 1;
                        self.reply_rst(tuple, repr, payload.len());
                    }
                }
            }
        }
    }

    /// RFC 9293 §3.10.7.1: the answer of a CLOSED port (`tcp_v4_send_reset`,
    /// `tcp_v6_send_reset`).
    pub(crate) fn reply_rst(&mut self, tuple: &FourTuple, repr: &TcpRepr, payload_len: usize) {
        if repr.flags.contains(Flags::RST) {
            return;
        }
        let (seq, ack, flags) = if repr.flags.contains(Flags::ACK) {
            (repr.ack, SeqNum(0), Flags::RST)
        } else {
            (SeqNum(0), repr.seq.wrapping_add(repr.seg_len(payload_len)), Flags::RST | Flags::ACK)
        };
        let rst = TcpRepr {
            src_port: tuple.local.port(),
            dst_port: tuple.remote.port(),
            seq,
            ack,
            flags,
            window: 0,
            urgent: 0,
            options: TcpOptions::default(),
        };
        self.shared.counters.out_rsts += 1;
        self.shared.counters.out_segs += 1;
        self.outbox.push_back((tuple.local.ip(), tuple.remote.ip(), Segment { repr: rst, payload: P::empty(), mss: 0 }));
    }

    // ----- listeners -----

    /// Starts listening on `addr` (`0.0.0.0` listens on every local IPv4 address, `::` on
    /// every IPv6 one: a wildcard of one family, as a Linux socket with `IPV6_V6ONLY`; a
    /// dual-stack service listens on both).
    pub fn listen(&mut self, addr: impl Into<SocketAddr>) -> Result<ListenerId, StackError> {
        let addr = plain(addr.into());
        if self.listen_map.contains_key(&addr) {
            return Err(StackError::AddrInUse);
        }
        let id = match self.listeners.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.listeners.push(None);
                self.listeners.len() - 1
            }
        };
        let lid = ListenerId(u32::try_from(id).map_err(|_| StackError::InvalidListener)?);
        if let Some(slot) = self.listeners.get_mut(id) {
            *slot = Some(Listener::new(addr));
        }
        self.listen_map.insert(addr, lid);
        Ok(lid)
    }

    /// Stops listening; connections not yet accepted are aborted.
    pub fn unlisten(&mut self, lid: ListenerId, now: Instant) -> Result<(), StackError> {
        let l = self.listeners.get_mut(lid.0 as usize).and_then(Option::take).ok_or(StackError::InvalidListener)?;
        self.listen_map.remove(&l.addr);
        let orphans: Vec<ConnId> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let e = s.entry.as_ref()?;
                (e.listener == Some(lid) && !e.accepted)
                    .then(|| ConnId { index: u32::try_from(i).unwrap_or(u32::MAX), generation: s.generation })
            })
            .collect();
        for id in orphans {
            if let Some((e, shared)) = self.split(id) {
                e.conn.abort(shared);
            }
            self.after_op(id, now);
        }
        Ok(())
    }

    fn find_listener(&self, local: &SocketAddr) -> Option<ListenerId> {
        let any = match local {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        self.listen_map.get(local).or_else(|| self.listen_map.get(&SocketAddr::new(any, local.port()))).copied()
    }

    /// Takes the next established connection of a listener (`inet_csk_accept`).
    pub fn accept(&mut self, lid: ListenerId) -> Option<ConnId> {
        loop {
            let id = self.listeners.get_mut(lid.0 as usize)?.as_mut()?.accept_queue.pop_front()?;
            let Some(e) = self.entry_mut(id) else { continue };
            e.accepted = true;
            e.listener = None;
            self.events.push_back(StackEvent::Conn(id, Event::Connected));
            let (readable, closed) = match self.entry(id) {
                Some(e) => (e.conn.readable_bytes() > 0, e.conn.peer_closed()),
                None => (false, false),
            };
            if readable {
                self.events.push_back(StackEvent::Conn(id, Event::Readable));
            }
            if closed {
                self.events.push_back(StackEvent::Conn(id, Event::PeerClosed));
            }
            return Some(id);
        }
    }

    // ----- active open -----

    /// Active open from `local_ip` to `remote` (`tcp_v4_connect`, `tcp_v6_connect`): picks
    /// an ephemeral port, derives the ISN (RFC 6528) and queues the SYN. Both addresses
    /// must be of one family (there is no IPv4-mapped IPv6 here).
    pub fn connect(
        &mut self,
        local_ip: impl Into<IpAddr>,
        remote: impl Into<SocketAddr>,
        now: Instant,
    ) -> Result<ConnId, StackError> {
        let (local_ip, remote) = (local_ip.into(), plain(remote.into()));
        if local_ip.is_ipv4() != remote.is_ipv4() {
            return Err(StackError::FamilyMismatch);
        }
        let (lo, hi) = self.cfg.ephemeral_ports;
        let (lo, hi) = (u32::from(lo.min(hi)), u32::from(lo.max(hi)));
        let span = hi - lo + 1;
        // Start from a keyed hash of the destination so ports are not predictable
        // (RFC 6056 §3.3.3), then walk the range.
        let offset = self.isn.isn(SocketAddr::new(local_ip, 0), remote, Instant::ZERO).0;
        for i in 0..span {
            self.port_cursor = self.port_cursor.wrapping_add(1);
            let port = lo + offset.wrapping_add(self.port_cursor).wrapping_add(i) % span;
            let Ok(port) = u16::try_from(port) else { continue };
            if self.steering.as_ref().is_some_and(|s| !s.owns(local_ip, port, remote.ip(), remote.port())) {
                continue;
            }
            let local = SocketAddr::new(local_ip, port);
            let tuple = FourTuple { local, remote };
            if self.table.contains_key(&tuple) || self.find_listener(&local).is_some() {
                continue;
            }
            let isn = if self.time_wait.get(&tuple).is_some() {
                match self.time_wait.reuse_for_connect(&tuple, now) {
                    Some(isn) => {
                        self.shared.counters.time_wait_recycled += 1;
                        isn
                    }
                    None => continue,
                }
            } else {
                self.isn.isn(local, remote, now)
            };
            let conn = Connection::connect(&mut self.shared, local, remote, isn, &self.cfg, now);
            let id = self.insert(conn, tuple, None, true);
            self.after_op(id, now);
            return Ok(id);
        }
        Err(StackError::NoPorts)
    }

    // ----- per-connection operations -----

    /// See [`Connection::write`].
    pub fn write(&mut self, id: ConnId, data: P, flags: WriteFlags, now: Instant) -> Result<usize, StackError> {
        let (e, shared) = self.split(id).ok_or(StackError::InvalidConn)?;
        let r = e.conn.write(shared, data, flags);
        self.after_data_op(id, now);
        Ok(r?)
    }

    /// See [`Connection::read`].
    pub fn read(&mut self, id: ConnId, max: usize, now: Instant) -> Result<Option<P>, StackError> {
        let e = self.entry_mut(id).ok_or(StackError::InvalidConn)?;
        let r = e.conn.read(max);
        // A read that finds nothing changes nothing the engine tracks (no buffer freed, no
        // window opened, no event, state and timers as they were): Linux `tcp_recvmsg`
        // with nothing copied leaves `tcp_cleanup_rbuf` no window to announce. The
        // bookkeeping of `after_op` is for reads that took data.
        if r.is_some() {
            self.after_data_op(id, now);
        }
        Ok(r)
    }

    /// See [`Connection::set_cork`].
    pub fn set_cork(&mut self, id: ConnId, cork: bool, now: Instant) -> Result<(), StackError> {
        self.entry_mut(id).ok_or(StackError::InvalidConn)?.conn.set_cork(cork);
        self.after_op(id, now);
        Ok(())
    }

    /// See [`Connection::set_nodelay`].
    pub fn set_nodelay(&mut self, id: ConnId, nodelay: bool, now: Instant) -> Result<(), StackError> {
        self.entry_mut(id).ok_or(StackError::InvalidConn)?.conn.set_nodelay(nodelay);
        self.after_op(id, now);
        Ok(())
    }

    /// See [`Connection::set_keepalive`].
    pub fn set_keepalive(
        &mut self,
        id: ConnId,
        keepalive: Option<KeepaliveConfig>,
        now: Instant,
    ) -> Result<(), StackError> {
        self.entry_mut(id).ok_or(StackError::InvalidConn)?.conn.set_keepalive(keepalive, now);
        self.after_op(id, now);
        Ok(())
    }

    /// See [`Connection::send_space`].
    pub fn send_space(&mut self, id: ConnId) -> Result<usize, StackError> {
        let (e, shared) = self.split(id).ok_or(StackError::InvalidConn)?;
        Ok(e.conn.send_space(shared))
    }

    /// See [`Connection::shutdown_write`].
    pub fn shutdown_write(&mut self, id: ConnId, now: Instant) -> Result<(), StackError> {
        let (e, shared) = self.split(id).ok_or(StackError::InvalidConn)?;
        e.conn.shutdown_write(shared);
        self.after_op(id, now);
        Ok(())
    }

    /// See [`Connection::close`]. The handle stays valid until [`Event::Closed`].
    ///
    /// Handle lifetime: a connection is removed once it is CLOSED or in TIME-WAIT and either
    /// the application released it (`close`/`abort`), it ended abnormally, or its received
    /// data has all been read; until then `read` still drains what arrived before the FIN.
    pub fn close(&mut self, id: ConnId, now: Instant) -> Result<(), StackError> {
        let (e, shared) = self.split(id).ok_or(StackError::InvalidConn)?;
        e.released = true;
        e.conn.close(shared, now);
        self.after_op(id, now);
        Ok(())
    }

    /// See [`Connection::abort`].
    pub fn abort(&mut self, id: ConnId, now: Instant) -> Result<(), StackError> {
        let (e, shared) = self.split(id).ok_or(StackError::InvalidConn)?;
        e.released = true;
        e.conn.abort(shared);
        self.after_op(id, now);
        Ok(())
    }

    /// See [`Connection::info`].
    pub fn info(&self, id: ConnId) -> Result<ConnInfo, StackError> {
        Ok(self.entry(id).ok_or(StackError::InvalidConn)?.conn.info())
    }

    /// A snapshot of one connection (`ss -ti`: state, RTT estimates, RTO, windows, bytes,
    /// retransmissions by cause) for the admin API; `None` for an unknown or stale handle.
    pub fn connection_info(&self, id: ConnId) -> Option<ConnInfo> {
        self.entry(id).map(|e| e.conn.info())
    }

    /// Every connection the engine holds (TIME-WAIT keeps none), with its addresses and a
    /// snapshot, in slot order.
    pub fn connections(&self) -> impl Iterator<Item = ConnSnapshot> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let e = slot.entry.as_ref()?;
            let id = ConnId { index: u32::try_from(index).ok()?, generation: slot.generation };
            Some(ConnSnapshot { id, local: e.tuple.local, remote: e.tuple.remote, info: e.conn.info() })
        })
    }

    /// Local and remote address of a connection.
    pub fn addresses(&self, id: ConnId) -> Result<(SocketAddr, SocketAddr), StackError> {
        let e = self.entry(id).ok_or(StackError::InvalidConn)?;
        Ok((e.tuple.local, e.tuple.remote))
    }

    // ----- output and time -----

    /// Emits every due segment as `(source IP, destination IP, segment)`; both addresses
    /// are of the connection's family.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut impl FnMut(IpAddr, IpAddr, Segment<P>)) {
        while let Some((s, d, seg)) = self.outbox.pop_front() {
            out(s, d, seg);
        }
        // Swap in the empty scratch list: connections made dirty while transmitting go to
        // it, and the drained one becomes the next scratch.
        let mut dirty = core::mem::take(&mut self.dirty_scratch);
        core::mem::swap(&mut dirty, &mut self.dirty);
        let Engine { slots, shared, wheel, .. } = self;
        for id in dirty.drain(..) {
            let Some(s) = slots.get_mut(id.index as usize) else { continue };
            if s.generation != id.generation {
                continue;
            }
            let Some(e) = s.entry.as_mut() else { continue };
            e.dirty = false;
            let (src, dst) = (e.tuple.local.ip(), e.tuple.remote.ip());
            e.conn.poll_transmit(shared, now, &mut |seg| out(src, dst, seg));
            Self::recharge(shared, e);
            Self::refile(wheel, e, id);
        }
        self.dirty_scratch = dirty;
    }

    /// The earliest time [`handle_timeouts`](Self::handle_timeouts) must run.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.wheel.next_deadline(), self.time_wait.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeouts(&mut self, now: Instant) {
        let mut due = core::mem::take(&mut self.due_scratch);
        self.wheel.expire(now, &mut due);
        for id in due.drain(..) {
            let Some((e, shared)) = self.split(id) else { continue };
            e.scheduled = None;
            e.timer = None;
            e.conn.handle_timeout(shared, now);
            self.after_op(id, now);
        }
        self.due_scratch = due;
        self.time_wait.expire(now);
    }
}

#[path = "engine_table.rs"]
mod table;

#[path = "engine_pmtu.rs"]
mod pmtu;

#[cfg(test)]
#[path = "engine_memory_tests.rs"]
mod memory_pressure_tests;

#[cfg(test)]
#[path = "engine_v6_tests.rs"]
mod v6_tests;
