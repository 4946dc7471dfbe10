//! Fuzz target: a TCP engine fed an arbitrary sequence of segments, timer ticks and
//! application calls. The engine has a listener and an active open; segments are built
//! from the input around the sequence numbers the engine itself last sent, so the fuzzer
//! reaches deep states (established, closing, TIME-WAIT) instead of only RSTs to closed
//! ports. Nothing may panic.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use dataplane::tcp::seq::SeqNum;
use dataplane::tcp::{Engine, HeapPayload, Payload, TcpConfig, WriteFlags};
use dataplane::time::{Duration, Instant};
use dataplane::wire::tcp::{Flags, TcpOptions, TcpRepr};
use libfuzzer_sys::fuzz_target;

const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([self.byte()?, self.byte()?, self.byte()?, self.byte()?]))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let mut now = Instant::from_millis(1_000);
    let mut engine: Engine<HeapPayload> = Engine::new(TcpConfig::default(), [7; 16], now);
    let Ok(_listener) = engine.listen(SocketAddrV4::new(LOCAL, 80)) else { return };
    let Ok(active) = engine.connect(LOCAL, SocketAddrV4::new(PEER, 8080), now) else { return };
    let mut conns = vec![active];
    // What the engine last sent per peer port: (our port, its seq, its ack).
    let mut last_sent: Vec<(u16, u16, SeqNum, SeqNum)> = Vec::new();

    while let Some(op) = input.byte() {
        match op % 8 {
            // A segment to the listener or the active connection, seq/ack near what we sent.
            0..=3 => {
                let Some(sel) = input.byte() else { break };
                let Some(flags) = input.byte() else { break };
                let Some(dseq) = input.u16() else { break };
                let Some(dack) = input.u16() else { break };
                let Some(window) = input.u16() else { break };
                let Some(optbits) = input.byte() else { break };
                let Some(len) = input.byte() else { break };
                let (src_port, dst_port, base_seq, base_ack) = match last_sent.get(usize::from(sel) % (last_sent.len() + 1)) {
                    Some(&(our, their, seq, ack)) => (their, our, ack, seq),
                    None => (40_000 + u16::from(sel % 4), 80, SeqNum(0x1000_0000), SeqNum(0)),
                };
                let mut options = TcpOptions::default();
                if optbits & 1 != 0 {
                    options.mss = Some(536 + u16::from(optbits));
                }
                if optbits & 2 != 0 {
                    options.window_scale = Some(optbits >> 4);
                }
                if optbits & 4 != 0 {
                    options.sack_permitted = true;
                }
                if optbits & 8 != 0 {
                    options.timestamps = Some((u32::from(dseq) << 8, u32::from(dack)));
                }
                let repr = TcpRepr {
                    src_port,
                    dst_port,
                    seq: base_seq + u32::from(dseq).wrapping_sub(0x100),
                    ack: base_ack + u32::from(dack).wrapping_sub(0x100),
                    flags: Flags(flags),
                    window,
                    urgent: 0,
                    options,
                };
                let payload = HeapPayload::from_vec(vec![0x5a; usize::from(len) * 8]);
                engine.handle_segment(PEER, LOCAL, &repr, payload, now);
            }
            // Time passes: run timers.
            4 => {
                let Some(ms) = input.u16() else { break };
                now += Duration::from_millis(u64::from(ms) * 4);
                engine.handle_timeouts(now);
            }
            // Application: accept, write, read.
            5 => {
                let Some(n) = input.u16() else { break };
                if let Some(&id) = conns.get(usize::from(n) % conns.len().max(1)) {
                    let _ = engine.write(id, HeapPayload::from_vec(vec![1; usize::from(n) % 20_000]), WriteFlags::default(), now);
                    let _ = engine.read(id, usize::from(n), now);
                }
            }
            // Application: shutdown, close or abort one connection.
            6 => {
                let Some(n) = input.byte() else { break };
                if let Some(&id) = conns.get(usize::from(n) % conns.len().max(1)) {
                    let _ = match n % 3 {
                        0 => engine.shutdown_write(id, now),
                        1 => engine.close(id, now),
                        _ => engine.abort(id, now),
                    };
                }
            }
            // Raw bytes through the datagram path (parser + checksum + dispatch).
            _ => {
                let Some(n) = input.byte() else { break };
                let take = usize::from(n).min(input.data.len());
                let (raw, rest) = input.data.split_at(take);
                input.data = rest;
                let _ = engine.handle_datagram(PEER, LOCAL, HeapPayload::from_slice(raw), op & 8 != 0, now);
            }
        }
        while let Some(event) = engine.poll_event() {
            if let dataplane::tcp::StackEvent::Acceptable(lid) = event {
                while let Some(id) = engine.accept(lid) {
                    conns.push(id);
                }
            }
        }
        engine.poll_transmit(now, &mut |_src, _dst, seg| {
            let entry = (seg.repr.src_port, seg.repr.dst_port, seg.repr.seq + seg.repr.seg_len(seg.payload.len()), seg.repr.ack);
            if let Some(e) = last_sent.iter_mut().find(|e| e.0 == entry.0 && e.1 == entry.1) {
                *e = entry;
            } else if last_sent.len() < 16 {
                last_sent.push(entry);
            }
        });
    }
});
