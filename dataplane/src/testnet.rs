//! TCP engines joined in memory, for tests and benchmarks: what one engine transmits is
//! handed, as the parsed segment (no wire encoding, no loss, no reordering), to the engine
//! the caller names, and a virtual clock fires the engines' due timers. The one harness
//! behind the services' and the proxy's unit tests (`app/tests.rs`, `app/proxy/tests.rs`,
//! `app/proxy/tests/admin.rs`): [`Pair`] for a client and a server engine back to back,
//! [`transmit`], [`deliver`] and [`fire_timers`] for nets of more engines routed by address.
//! An impaired link (loss, delay, reordering) is the simulator's (`tcp::simulator`).

use std::net::IpAddr;

use crate::tcp::{Engine, Payload, Segment, StackEvent, TcpConfig};
use crate::time::{Duration, Instant};

/// A segment on its way: source address, destination address, segment.
pub type InFlight<P> = (IpAddr, IpAddr, Segment<P>);

/// Key of the server engine's ISN generator and SYN cookies in a [`Pair`].
pub const SERVER_KEY: [u8; 16] = [1; 16];
/// Key of the client engine's in a [`Pair`].
pub const CLIENT_KEY: [u8; 16] = [2; 16];

/// Everything `engines` transmit at `now`, engine by engine, in order.
pub fn transmit<P: Payload>(engines: &mut [&mut Engine<P>], now: Instant) -> Vec<InFlight<P>> {
    let mut out = Vec::new();
    for e in engines.iter_mut() {
        e.poll_transmit(now, &mut |src, dst, seg| out.push((src, dst, seg)));
    }
    out
}

/// Hands one segment to `to` at `now`; returns its payload length.
pub fn deliver<P: Payload>(to: &mut Engine<P>, (src, dst, seg): InFlight<P>, now: Instant) -> usize {
    let len = seg.payload.len();
    to.handle_segment(src, dst, &seg.repr, seg.payload, now);
    len
}

/// Hands everything `from` transmits at `now` to `to`; returns the payload bytes carried.
pub fn carry<P: Payload>(from: &mut Engine<P>, to: &mut Engine<P>, now: Instant) -> usize {
    transmit(&mut [from], now).into_iter().map(|f| deliver(to, f, now)).sum()
}

/// Runs the timers of each engine whose deadline has come at `now`.
pub fn fire_timers<P: Payload>(engines: &mut [&mut Engine<P>], now: Instant) {
    for e in engines.iter_mut() {
        if e.next_deadline().is_some_and(|t| t <= now) {
            e.handle_timeouts(now);
        }
    }
}

/// Every event `engine` has queued.
pub fn events<P: Payload>(engine: &mut Engine<P>) -> Vec<StackEvent> {
    std::iter::from_fn(|| engine.poll_event()).collect()
}

/// A client and a server engine back to back, with the clock they share.
pub struct Pair<P: Payload> {
    /// The engine that connects.
    pub client: Engine<P>,
    /// The engine that listens.
    pub server: Engine<P>,
    /// Now, for both.
    pub now: Instant,
}

impl<P: Payload> Pair<P> {
    /// Two engines started at `now`, keyed [`CLIENT_KEY`] and [`SERVER_KEY`].
    pub fn new(client: TcpConfig, server: TcpConfig, now: Instant) -> Self {
        Pair { client: Engine::new(client, CLIENT_KEY, now), server: Engine::new(server, SERVER_KEY, now), now }
    }

    /// Carries what the client transmits now to the server; returns the payload bytes.
    pub fn client_to_server(&mut self) -> usize {
        carry(&mut self.client, &mut self.server, self.now)
    }

    /// Carries what the server transmits now to the client; returns the payload bytes.
    pub fn server_to_client(&mut self) -> usize {
        carry(&mut self.server, &mut self.client, self.now)
    }

    /// Moves the clock `by` and fires the timers due (the server's first).
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        fire_timers(&mut [&mut self.server, &mut self.client], self.now);
    }

    /// Every event the client has queued.
    pub fn client_events(&mut self) -> Vec<StackEvent> {
        events(&mut self.client)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use super::*;
    use crate::tcp::{Event, HeapPayload, WriteFlags};

    #[test]
    fn a_pair_connects_and_carries_bytes_both_ways() {
        let server_ip = Ipv4Addr::new(10, 0, 0, 2);
        let mut p: Pair<HeapPayload> = Pair::new(TcpConfig::default(), TcpConfig::default(), Instant::from_millis(1));
        let lid = p.server.listen(SocketAddrV4::new(server_ip, 7)).unwrap_or_else(|e| panic!("{e}"));
        let id = p.client.connect(Ipv4Addr::new(10, 0, 0, 1), SocketAddrV4::new(server_ip, 7), p.now).unwrap_or_else(|e| panic!("{e}"));
        let mut sid = None;
        let mut carried = 0;
        let mut connected = false;
        for _ in 0..20 {
            carried += p.client_to_server();
            for ev in events(&mut p.server) {
                if ev == StackEvent::Acceptable(lid) {
                    sid = sid.or(p.server.accept(lid));
                }
            }
            p.server_to_client();
            p.advance(Duration::from_millis(1));
            connected |= p.client_events().contains(&StackEvent::Conn(id, Event::Connected));
            if connected && carried == 0 {
                assert_eq!(p.client.write(id, HeapPayload::from_slice(b"hello"), WriteFlags::NONE, p.now), Ok(5));
            }
        }
        assert!(connected && sid.is_some());
        assert_eq!(carried, 5, "the client's five bytes reached the server");
    }
}
