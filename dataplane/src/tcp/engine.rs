//! The TCP engine of one lcore: the connection table keyed by 4-tuple, listeners, the
//! TIME-WAIT table, the timer wheel and the counters. Like a [`Connection`] it is sans-IO:
//! segments and `now` in ([`Engine::handle_segment`], [`Engine::handle_timeouts`] and the
//! per-connection calls), segments out ([`Engine::poll_transmit`]), events out
//! ([`Engine::poll_event`]) and one deadline ([`Engine::next_deadline`]).
//!
//! Demultiplexing follows `tcp_v4_rcv`: established table, then TIME-WAIT, then listeners,
//! else an RST (RFC 9293 §3.10.7.1).

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
        let payload = segment.slice(header_len..segment.len());
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

    /// ICMP "fragmentation needed" (type 3 code 4) quoting a segment we sent from `local`
    /// to `remote` with sequence number `seq` (RFC 1191; validated per RFC 5927 §4.1). See
    /// [`Connection::handle_icmp_frag_needed`]. Returns the new path MTU.
    pub fn handle_icmp_frag_needed(
        &mut self,
        local: impl Into<SocketAddr>,
        remote: impl Into<SocketAddr>,
        seq: SeqNum,
        next_hop_mtu: u16,
        now: Instant,
    ) -> Result<u32, PmtuError> {
        let tuple = FourTuple { local: local.into(), remote: remote.into() };
        self.icmp_input(tuple, now, |conn, shared| conn.handle_icmp_frag_needed(shared, seq, next_hop_mtu))
    }

    /// ICMPv6 "packet too big" (RFC 8201) quoting a segment we sent from `local` to
    /// `remote` with sequence number `seq`, reporting `mtu` (Linux `tcp_v6_err`): validated
    /// and counted as [`Self::handle_icmp_frag_needed`]; see
    /// [`Connection::handle_icmpv6_packet_too_big`]. Returns the new path MTU.
    pub fn handle_icmpv6_packet_too_big(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        seq: SeqNum,
        mtu: u32,
        now: Instant,
    ) -> Result<u32, PmtuError> {
        let tuple = FourTuple { local: plain(local), remote: plain(remote) };
        self.icmp_input(tuple, now, |conn, shared| conn.handle_icmpv6_packet_too_big(shared, seq, mtu))
    }

    /// The connection an ICMP error quotes, found by its tuple (`tcp_v4_err` /
    /// `tcp_v6_err`), and the error applied; an unknown one counts in `IcmpInErrors`.
    fn icmp_input(
        &mut self,
        tuple: FourTuple,
        now: Instant,
        apply: impl FnOnce(&mut Connection<P>, &mut Shared) -> Result<u32, PmtuError>,
    ) -> Result<u32, PmtuError> {
        let Some(&id) = self.table.get(&tuple) else {
            self.shared.counters.icmp_in_errors += 1;
            return Err(PmtuError::UnknownConnection);
        };
        let (e, shared) = self.split(id).ok_or(PmtuError::UnknownConnection)?;
        let r = apply(&mut e.conn, shared);
        if r == Err(PmtuError::UnknownConnection) {
            shared.counters.icmp_in_errors += 1;
        }
        self.after_op(id, now);
        r
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

    // ----- table management -----

    fn entry(&self, id: ConnId) -> Option<&Entry<P>> {
        let s = self.slots.get(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.entry.as_ref()
    }

    /// The entry and the shared counters, borrowed together.
    fn split(&mut self, id: ConnId) -> Option<(&mut Entry<P>, &mut Shared)> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        Some((s.entry.as_mut()?, &mut self.shared))
    }

    fn entry_mut(&mut self, id: ConnId) -> Option<&mut Entry<P>> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.entry.as_mut()
    }

    pub(crate) fn insert(&mut self, conn: Connection<P>, tuple: FourTuple, listener: Option<ListenerId>, accepted: bool) -> ConnId {
        let entry = Entry { conn, tuple, listener, accepted, scheduled: None, timer: None, dirty: false, released: false, charged: 0 };
        let id = match self.free.pop() {
            Some(index) => {
                let generation = match self.slots.get_mut(index as usize) {
                    Some(slot) => {
                        slot.generation = slot.generation.wrapping_add(1);
                        slot.entry = Some(entry);
                        slot.generation
                    }
                    None => 0,
                };
                ConnId { index, generation }
            }
            None => {
                let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Slot { generation: 0, entry: Some(entry) });
                ConnId { index, generation: 0 }
            }
        };
        self.table.insert(tuple, id);
        id
    }

    /// Brings [`Shared::allocated`] up to date with what the connection's queues pin now
    /// (Linux charges `sk_forward_alloc` to `tcp_memory_allocated` as queues grow and
    /// shrink: `sk_mem_schedule`, `sk_mem_reclaim`). Called after every operation on the
    /// connection, so the sum is exact between operations at the cost of one subtraction.
    #[inline(always)]
    fn recharge(shared: &mut Shared, e: &mut Entry<P>) {
        let now = e.conn.buffer_bytes();
        if now != e.charged {
            shared.allocated = shared.allocated.saturating_sub(e.charged).saturating_add(now);
            e.charged = now;
        }
    }

    /// Files the connection's next deadline in the wheel when it changed (most operations
    /// leave it as it was: nothing to do then). Inlined into its two callers: as a call it
    /// spent a sixth of its instructions saving and restoring registers.
    #[inline(always)]
    fn refile(wheel: &mut TimerWheel<ConnId>, e: &mut Entry<P>, id: ConnId) {
        let next = e.conn.next_deadline();
        if e.scheduled == next {
            return;
        }
        e.scheduled = next;
        e.timer = match (e.timer, next) {
            (Some(h), Some(t)) => {
                if wheel.reschedule(h, t) {
                    Some(h)
                } else {
                    Some(wheel.insert(t, id))
                }
            }
            (Some(h), None) => {
                wheel.cancel(h);
                None
            }
            (None, Some(t)) => Some(wheel.insert(t, id)),
            (None, None) => None,
        };
    }

    /// After any input to a connection: route its events, reap it when it is finished or
    /// move it to TIME-WAIT, mark it for transmission and refile its timer. One slot
    /// lookup; the engine's other fields are borrowed beside it.
    pub(crate) fn after_op(&mut self, id: ConnId, now: Instant) {
        self.after_op_with(id, now, true);
    }

    /// `after_op` for a read or write: `Connection::read` and `Connection::write` arm no
    /// timer (as Linux's `tcp_recvmsg` and `tcp_sendmsg` leave the retransmission timer to
    /// transmission, `tcp_event_new_data_sent`), and every operation that can ends with a
    /// refile (`after_op`, `poll_transmit`), so the filed deadline is still the
    /// connection's: no refile. Events, reaping, the transmit mark and the memory recharge
    /// are as for any operation.
    fn after_data_op(&mut self, id: ConnId, now: Instant) {
        self.after_op_with(id, now, false);
    }

    #[inline(always)]
    fn after_op_with(&mut self, id: ConnId, now: Instant, timers: bool) {
        let Engine { slots, events, listeners, dirty, wheel, shared, .. } = self;
        let Some(s) = slots.get_mut(id.index as usize) else { return };
        if s.generation != id.generation {
            return;
        }
        let Some(e) = s.entry.as_mut() else { return };
        Self::recharge(shared, e);
        while let Some(ev) = e.conn.poll_event() {
            if e.accepted {
                events.push_back(StackEvent::Conn(id, ev));
            } else if ev == Event::Connected {
                // Handshake of a passive connection done: SYN queue -> accept queue.
                if let Some(l) = e.listener.and_then(|l| listeners.get_mut(l.0 as usize)).and_then(Option::as_mut) {
                    l.syn_queue = l.syn_queue.saturating_sub(1);
                    l.accept_queue.push_back(id);
                }
                if let Some(l) = e.listener {
                    events.push_back(StackEvent::Acceptable(l));
                }
            }
        }
        // A normally closed connection stays until its data is read (or it is released).
        let reapable = matches!(e.conn.state(), State::Closed | State::TimeWait)
            && (e.released
                || !e.accepted
                || e.conn.readable_bytes() == 0
                || e.conn.close_reason() != Some(super::connection::CloseReason::Normal));
        if reapable {
            self.reap(id, now);
            return;
        }
        if !e.dirty {
            e.dirty = true;
            dirty.push(id);
        }
        if timers {
            Self::refile(wheel, e, id);
        } else {
            debug_assert_eq!(e.scheduled, e.conn.next_deadline(), "a read or write changed a timer");
        }
    }

    /// Removes a finished connection; TIME-WAIT moves to the compact table.
    fn reap(&mut self, id: ConnId, now: Instant) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else { return };
        if slot.generation != id.generation {
            return;
        }
        let Some(mut e) = slot.entry.take() else { return };
        self.shared.allocated = self.shared.allocated.saturating_sub(e.charged);
        self.free.push(id.index);
        self.table.remove(&e.tuple);
        if let Some(h) = e.timer.take() {
            self.wheel.cancel(h);
        }
        // Last words (RST, final ACK).
        let (src, dst) = (e.tuple.local.ip(), e.tuple.remote.ip());
        let outbox = &mut self.outbox;
        e.conn.poll_transmit(&mut self.shared, now, &mut |seg| outbox.push_back((src, dst, seg)));
        if let Some(l) = e.listener.and_then(|l| self.listeners.get_mut(l.0 as usize)).and_then(Option::as_mut) {
            if !l.accept_queue.contains(&id) {
                l.syn_queue = l.syn_queue.saturating_sub(1);
            }
            l.accept_queue.retain(|&c| c != id);
        }
        if e.conn.state() == State::TimeWait {
            let tw = e.conn.time_wait_info();
            let entry = TimeWaitEntry {
                snd_nxt: tw.snd_nxt,
                rcv_nxt: tw.rcv_nxt,
                ts_recent: tw.ts_recent,
                ts_recent_stamp: tw.ts_recent_stamp,
                expires: tw.expires.unwrap_or(now + self.cfg.msl * 2),
            };
            if !self.time_wait.insert(e.tuple, entry) {
                self.shared.counters.time_wait_overflow += 1;
            }
        }
    }

    /// Registers a passive connection in the table and its listener's SYN queue.
    pub(crate) fn insert_embryonic(&mut self, conn: Connection<P>, tuple: FourTuple, lid: ListenerId, now: Instant) -> ConnId {
        let id = self.insert(conn, tuple, Some(lid), false);
        if let Some(l) = self.listeners.get_mut(lid.0 as usize).and_then(Option::as_mut) {
            l.syn_queue += 1;
        }
        self.after_op(id, now);
        id
    }

    /// Registers a connection established by a SYN cookie directly in the accept queue.
    pub(crate) fn insert_established(&mut self, conn: Connection<P>, tuple: FourTuple, lid: ListenerId, now: Instant) -> ConnId {
        let id = self.insert(conn, tuple, Some(lid), false);
        if let Some(l) = self.listeners.get_mut(lid.0 as usize).and_then(Option::as_mut) {
            // `after_op` moves it from the SYN queue to the accept queue on `Connected`.
            l.syn_queue += 1;
        }
        self.after_op(id, now);
        id
    }

    /// Feeds a segment to a connection (used by the listener for data on a cookie ACK).
    pub(crate) fn deliver(&mut self, id: ConnId, repr: &TcpRepr, payload: P, now: Instant) {
        if let Some((e, shared)) = self.split(id) {
            e.conn.handle_segment(shared, repr, payload, now);
        }
        self.after_op(id, now);
    }
}

#[cfg(test)]
mod memory_pressure_tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use super::*;
    use crate::tcp::{HeapPayload, WriteFlags};
    use crate::testnet;
    use crate::time::Duration;

    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    /// A client and a server engine (the shared [`crate::testnet::Pair`]), the server
    /// listening and accepting everything.
    struct Pair {
        net: testnet::Pair<HeapPayload>,
        lid: ListenerId,
        /// Payload bytes the server received.
        delivered: usize,
    }

    impl Pair {
        fn new() -> Pair {
            let mut net = testnet::Pair::new(TcpConfig::default(), TcpConfig::default(), Instant::from_millis(1));
            let lid = net.server.listen(SocketAddrV4::new(SERVER, 7)).unwrap();
            Pair { net, lid, delivered: 0 }
        }

        /// Rounds of transmitting both ways; returns the client's events.
        fn run(&mut self, rounds: usize) -> Vec<StackEvent> {
            let mut evs = Vec::new();
            for _ in 0..rounds {
                self.delivered += self.net.client_to_server();
                for ev in testnet::events(&mut self.net.server) {
                    if ev == StackEvent::Acceptable(self.lid) {
                        while self.net.server.accept(self.lid).is_some() {}
                    }
                }
                self.net.server_to_client();
                self.net.advance(Duration::from_millis(1));
                evs.extend(self.net.client_events());
            }
            evs
        }

        fn connect(&mut self) -> (ConnId, Vec<StackEvent>) {
            let id = self.net.client.connect(CLIENT, SocketAddrV4::new(SERVER, 7), self.net.now).unwrap();
            (id, self.run(5))
        }
    }

    #[test]
    fn the_reserve_refuses_syns_with_a_rst_and_pressure_does_not() {
        let mut p = Pair::new();
        assert!(p.net.server.set_memory_pressure(true));
        assert!(!p.net.server.set_memory_pressure(true), "no change, no count");
        assert!(p.net.server.memory_pressure());
        // Under pressure a SYN is still accepted (Linux): the connection gets its share.
        let (id, evs) = p.connect();
        assert!(evs.contains(&StackEvent::Conn(id, Event::Connected)), "{evs:?}");
        // At the pool's reserve it is refused at once, not left hanging.
        p.net.server.set_rx_shedding(true);
        let (id, evs) = p.connect();
        assert!(
            evs.iter().any(|e| matches!(e, StackEvent::Conn(c, Event::Closed { .. }) if *c == id)),
            "refused at once, not left hanging: {evs:?}"
        );
        assert_eq!(p.net.server.connection_count(), 1);
        let c = p.net.server.counters();
        assert_eq!((c.memory_pressures, c.memory_pressure_refused), (1, 1));
        p.net.server.set_rx_shedding(false);
        assert!(p.net.server.set_memory_pressure(false));
        let (id, evs) = p.connect();
        assert!(evs.contains(&StackEvent::Conn(id, Event::Connected)), "{evs:?}");
        assert_eq!(p.net.server.counters().memory_pressures, 1, "leaving is not counted");
    }

    /// Bytes one connection may queue with nothing acknowledged, and the writes refused,
    /// without pressure or under pressure with `budget` for all connections.
    fn queued_before_refusal(budget: Option<usize>) -> (usize, u64) {
        let mut p = Pair::new();
        let (id, evs) = p.connect();
        assert!(evs.contains(&StackEvent::Conn(id, Event::Connected)), "{evs:?}");
        if let Some(b) = budget {
            p.net.client.set_memory_pressure(true);
            // The share is the limit over the connections; others hold nothing.
            p.net.client.set_memory_account(MemoryAccount { limit: b, foreign: 0, connections: 1 });
        }
        let mut queued = 0;
        while let Ok(n) = p.net.client.write(id, HeapPayload::from(vec![7u8; 16 * 1024]), WriteFlags::default(), p.net.now) {
            queued += n;
        }
        let c = p.net.client.counters();
        (queued, c.sndbuf_full + c.memory_pressure_write_limited)
    }

    #[test]
    fn pressure_limits_what_a_connection_queues_to_its_share() {
        let (free, _) = queued_before_refusal(None);
        assert!(free >= 512 * 1024, "the whole send buffer without pressure: {free}");
        // One connection: its share is the whole budget. Each write may take half of what
        // is left of it, so a burst of large writes approaches the share without passing it.
        let (pressed, refused) = queued_before_refusal(Some(64 * 1024));
        assert!((48 * 1024..=64 * 1024).contains(&pressed), "about the share: {pressed}");
        assert_eq!(refused, 1, "the refusal is counted");
        // A tiny share still lets a connection queue the minimum every one keeps.
        let (minimum, _) = queued_before_refusal(Some(1));
        assert!(minimum > 0, "at least one write under the smallest share");
    }

    /// Bytes a client gets into a server that never reads, with or without pressure.
    fn unread_bytes_accepted(pressure: bool) -> usize {
        let mut p = Pair::new();
        let (id, evs) = p.connect();
        assert!(evs.contains(&StackEvent::Conn(id, Event::Connected)), "{evs:?}");
        p.net.server.set_memory_pressure(pressure);
        p.delivered = 0;
        for _ in 0..200 {
            let _ = p.net.client.write(id, HeapPayload::from(vec![7u8; 16 * 1024]), WriteFlags::default(), p.net.now);
            p.run(2);
        }
        p.delivered
    }

    #[test]
    fn pressure_stops_receive_windows_from_opening() {
        let normal = unread_bytes_accepted(false);
        let pressed = unread_bytes_accepted(true);
        // Without pressure the window opens to rcvbuf; with it, only what was already
        // advertised (a window never shrinks) plus at most two segments is taken.
        assert!(pressed < normal / 2, "pressure {pressed} vs normal {normal}");
        assert!(pressed <= 65_535 + 2 * 1460 + 1460, "{pressed} bytes taken under pressure");
    }

    #[test]
    fn the_engine_sums_what_its_connections_hold_and_gives_it_back() {
        let mut p = Pair::new();
        let (id, _) = p.connect();
        assert_eq!(p.net.client.buffer_bytes(), 0);
        let n = p.net.client.write(id, HeapPayload::from(vec![7u8; 40_000]), WriteFlags::default(), p.net.now).unwrap();
        assert_eq!(n, 40_000);
        assert!(p.net.client.buffer_bytes() >= 40_000, "queued for sending: {}", p.net.client.buffer_bytes());
        p.run(20);
        // Acknowledged on the client; held unread on the server.
        assert_eq!(p.net.client.buffer_bytes(), 0);
        let held = p.net.server.buffer_bytes();
        assert!(held >= 40_000, "unread on the server: {held}");
        let sid = p.net.server.connections().next().unwrap().id;
        let mut read = 0;
        while let Ok(Some(d)) = p.net.server.read(sid, usize::MAX, p.net.now) {
            read += d.len();
        }
        assert_eq!((read, p.net.server.buffer_bytes()), (40_000, 0));
        // Unread text of a connection that is reset goes with it.
        let _ = p.net.client.write(id, HeapPayload::from(vec![7u8; 8_000]), WriteFlags::default(), p.net.now);
        p.run(5);
        assert!(p.net.server.buffer_bytes() > 0);
        p.net.server.abort(sid, p.net.now).unwrap();
        assert_eq!(p.net.server.buffer_bytes(), 0);
    }

    /// An account whose other engines already hold the whole limit.
    const OVER: MemoryAccount = MemoryAccount { limit: 1 << 20, foreign: 1 << 20, connections: 2 };

    #[test]
    fn at_the_hard_limit_writes_stop_at_the_minimum() {
        let mut p = Pair::new();
        let (id, _) = p.connect();
        p.net.client.set_memory_account(OVER);
        let mut queued = 0;
        while let Ok(n) = p.net.client.write(id, HeapPayload::from(vec![7u8; 1_000]), WriteFlags::default(), p.net.now) {
            queued += n;
        }
        // `tcp_wmem[0]`: the minimum every connection keeps, and no more.
        assert!((1..=super::super::connection::SHED_MIN_WMEM + 1_000).contains(&queued), "{queued}");
        assert_eq!(p.net.client.send_space(id), Ok(0), "nothing more is offered either");
        assert_eq!(p.net.client.counters().memory_limited, 1);
        // Below the limit again, the connection queues its send buffer.
        p.net.client.set_memory_account(MemoryAccount { foreign: 0, ..OVER });
        assert!(p.net.client.write(id, HeapPayload::from(vec![7u8; 1_000]), WriteFlags::default(), p.net.now).is_ok());
    }

    #[test]
    fn at_the_hard_limit_unread_text_is_dropped_but_an_empty_queue_takes_one_segment() {
        let mut p = Pair::new();
        let (id, _) = p.connect();
        p.net.server.set_memory_account(OVER);
        p.delivered = 0;
        let _ = p.net.client.write(id, HeapPayload::from(vec![7u8; 20_000]), WriteFlags::default(), p.net.now);
        p.run(3);
        // The first segment lands in the empty queue (Linux `tcp_data_queue` forces
        // `sk_forced_mem_schedule` then, so a connection always progresses); what follows it
        // while unread is dropped, counted, and retransmitted later.
        let sid = p.net.server.connections().next().unwrap().id;
        let unread = p.net.server.info(sid).unwrap();
        assert!(p.delivered > 1_460, "the client sent its window: {}", p.delivered);
        assert!(p.net.server.buffer_bytes() > 0 && p.net.server.buffer_bytes() <= 4 * 1_460, "{unread:?}");
        let c = p.net.server.counters();
        // Behind the first drop the rest arrives out of order and goes too.
        assert!(c.rcvq_drop > 0 && c.memory_limited == c.rcvq_drop + c.ofo_drop, "{c:?}");
        // Once the others give their buffers back, everything arrives.
        p.net.server.set_memory_account(MemoryAccount { foreign: 0, ..OVER });
        let mut read = 0;
        for _ in 0..400 {
            while let Ok(Some(d)) = p.net.server.read(sid, usize::MAX, p.net.now) {
                read += d.len();
            }
            p.run(1);
            p.net.now += Duration::from_millis(50);
        }
        assert_eq!(read, 20_000);
    }
}

#[cfg(test)]
#[path = "engine_v6_tests.rs"]
mod v6_tests;
