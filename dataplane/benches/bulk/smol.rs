//! The smoltcp side of the `bulk` benchmark: two smoltcp 0.12 interfaces over an in-memory
//! queue device that carries IPv4 datagrams as `bulk.rs`'s wire does, and the measured
//! loops that drive them (bulk transfer and request/response), checked byte for byte.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use smoltcp::iface::{Config as SmolConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp as smol_tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use super::*;

// ===================================================================================
// smoltcp over the same kind of in-memory wire
// ===================================================================================

/// A queue device (like smoltcp's `Loopback`, but one end of a pair, with pooled buffers).
/// Medium IP: packets are IPv4 datagrams, as on our wire.
struct QueueDevice {
    mtu: usize,
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    free: Vec<Vec<u8>>,
    spent: Vec<Vec<u8>>,
}

struct QueueRx<'a> {
    buf: Vec<u8>,
    spent: &'a mut Vec<Vec<u8>>,
}

struct QueueTx<'a> {
    tx: &'a mut VecDeque<Vec<u8>>,
    free: &'a mut Vec<Vec<u8>>,
}

impl RxToken for QueueRx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let QueueRx { buf, spent } = self;
        let r = f(&buf);
        spent.push(buf);
        r
    }
}

impl TxToken for QueueTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = self.free.pop().unwrap_or_default();
        // smoltcp writes every byte of the packet: no need to zero a reused buffer.
        if buf.len() < len {
            buf.resize(len, 0);
        } else {
            buf.truncate(len);
        }
        let r = f(&mut buf);
        self.tx.push_back(buf);
        r
    }
}

impl Device for QueueDevice {
    type RxToken<'a> = QueueRx<'a>;
    type TxToken<'a> = QueueTx<'a>;

    fn receive(&mut self, _timestamp: SmolInstant) -> Option<(QueueRx<'_>, QueueTx<'_>)> {
        let buf = self.rx.pop_front()?;
        Some((QueueRx { buf, spent: &mut self.spent }, QueueTx { tx: &mut self.tx, free: &mut self.free }))
    }

    fn transmit(&mut self, _timestamp: SmolInstant) -> Option<QueueTx<'_>> {
        Some(QueueTx { tx: &mut self.tx, free: &mut self.free })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        // Default checksum capabilities: compute and verify IPv4 and TCP checksums in software.
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

pub(super) struct SmolPair {
    dev_a: QueueDevice,
    dev_b: QueueDevice,
    if_a: Interface,
    if_b: Interface,
    set_a: SocketSet<'static>,
    set_b: SocketSet<'static>,
    ha: SocketHandle,
    hb: SocketHandle,
    now_ns: u64,
    pub(super) segs_ab: u64,
    pub(super) segs_ba: u64,
}

fn smol_socket(nodelay: bool) -> smol_tcp::Socket<'static> {
    let mut s = smol_tcp::Socket::new(smol_tcp::SocketBuffer::new(vec![0; BUF]), smol_tcp::SocketBuffer::new(vec![0; BUF]));
    s.set_nagle_enabled(!nodelay);
    // Reno, like our NewReno. No timestamps: smoltcp 0.12 does not take the 12 option bytes
    // off the MSS, so full-sized segments with timestamps exceed the MTU and are dropped
    // (without `proto-ipv4-fragmentation`). Ours keeps them on (its default): 12 more header
    // bytes and 1448-byte instead of 1460-byte payloads per segment.
    s.set_tsval_generator(None);
    s.set_congestion_control(smol_tcp::CongestionControl::Reno);
    s
}

fn smol_iface(dev: &mut QueueDevice, ip: Ipv4Addr) -> Result<Interface, String> {
    let mut cfg = SmolConfig::new(HardwareAddress::Ip);
    cfg.random_seed = 0x5eed;
    let mut iface = Interface::new(cfg, dev, SmolInstant::ZERO);
    let mut ok = true;
    iface.update_ip_addrs(|a| ok = a.push(IpCidr::new(IpAddress::Ipv4(ip), 24)).is_ok());
    if ok {
        Ok(iface)
    } else {
        Err("smoltcp: no room for an address".into())
    }
}

impl SmolPair {
    pub(super) fn new(mtu: usize, nodelay: bool) -> Result<Self, String> {
        let dev = |mtu| QueueDevice { mtu, rx: VecDeque::new(), tx: VecDeque::new(), free: Vec::new(), spent: Vec::new() };
        let (mut dev_a, mut dev_b) = (dev(mtu), dev(mtu));
        let mut if_a = smol_iface(&mut dev_a, IP_A)?;
        let if_b = smol_iface(&mut dev_b, IP_B)?;
        let mut set_a = SocketSet::new(vec![]);
        let mut set_b = SocketSet::new(vec![]);
        let mut server = smol_socket(nodelay);
        server.listen(PORT).map_err(|e| format!("smoltcp listen: {e}"))?;
        let hb = set_b.add(server);
        let mut client = smol_socket(nodelay);
        client
            .connect(if_a.context(), (IpAddress::Ipv4(IP_B), PORT), 49152)
            .map_err(|e| format!("smoltcp connect: {e}"))?;
        let ha = set_a.add(client);
        let mut p = SmolPair { dev_a, dev_b, if_a, if_b, set_a, set_b, ha, hb, now_ns: 0, segs_ab: 0, segs_ba: 0 };
        for _ in 0..100 {
            p.pump_ab();
            p.poll_b();
            p.pump_ba();
            p.poll_a();
            p.tick();
            if p.set_a.get::<smol_tcp::Socket>(p.ha).may_send() && p.set_b.get::<smol_tcp::Socket>(p.hb).may_recv() {
                return Ok(p);
            }
        }
        Err("smoltcp handshake did not complete".into())
    }

    fn now(&self) -> SmolInstant {
        SmolInstant::from_micros(i64::try_from(self.now_ns / 1000).unwrap_or(i64::MAX))
    }

    /// Polls until the interface sends nothing more (smoltcp emits one segment per socket
    /// and poll).
    fn poll_a(&mut self) {
        let now = self.now();
        loop {
            let before = self.dev_a.tx.len();
            self.if_a.poll(now, &mut self.dev_a, &mut self.set_a);
            if self.dev_a.tx.len() == before {
                break;
            }
        }
    }

    fn poll_b(&mut self) {
        let now = self.now();
        loop {
            let before = self.dev_b.tx.len();
            self.if_b.poll(now, &mut self.dev_b, &mut self.set_b);
            if self.dev_b.tx.len() == before {
                break;
            }
        }
    }

    /// Client polls (ACKs in, data out); its packets move to the server's receive queue.
    fn pump_ab(&mut self) {
        self.poll_a();
        self.segs_ab += self.dev_a.tx.len() as u64;
        self.dev_b.rx.append(&mut self.dev_a.tx);
        self.dev_a.free.append(&mut self.dev_b.spent);
    }

    fn pump_ba(&mut self) {
        self.poll_b();
        self.segs_ba += self.dev_b.tx.len() as u64;
        self.dev_a.rx.append(&mut self.dev_b.tx);
        self.dev_b.free.append(&mut self.dev_a.spent);
    }

    fn tick(&mut self) {
        self.now_ns += STEP_NS;
    }

    fn read_all(set: &mut SocketSet<'static>, h: SocketHandle, check_at: Option<u64>) -> Result<u64, String> {
        let s = set.get_mut::<smol_tcp::Socket>(h);
        let mut n = 0u64;
        loop {
            let r = s.recv(|buf| {
                let v = match check_at {
                    Some(at) => verify(at + n, buf),
                    None => Ok(()),
                };
                (buf.len(), v.map(|()| buf.len()))
            });
            match r {
                Ok(Ok(0)) => return Ok(n),
                Ok(Ok(k)) => n += k as u64,
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(format!("smoltcp recv: {e}")),
            }
        }
    }

    fn write(set: &mut SocketSet<'static>, h: SocketHandle, data: &[u8]) -> Result<usize, String> {
        let s = set.get_mut::<smol_tcp::Socket>(h);
        let mut n = 0;
        while n < data.len() {
            match s.send_slice(data.get(n..).unwrap_or(&[])) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(format!("smoltcp send: {e}")),
            }
        }
        Ok(n)
    }
}

/// The smoltcp counterpart of [`measured_bulk_strait`]. smoltcp's API copies written data
/// into its send ring (`send_slice`); reads are zero-copy views of its receive ring.
#[inline(never)]
pub(super) fn measured_bulk_smoltcp(p: &mut SmolPair, src: &[u8], total: u64, check: bool) -> Result<(), String> {
    let (mut sent, mut recvd, mut rounds) = (0u64, 0u64, 0u64);
    while recvd < total {
        while sent < total {
            let off = (sent % SRC_LEN as u64) as usize;
            let n = WRITE_CHUNK.min(SRC_LEN - off).min(usize::try_from(total - sent).unwrap_or(usize::MAX));
            let w = SmolPair::write(&mut p.set_a, p.ha, src.get(off..off + n).unwrap_or(&[]))?;
            sent += w as u64;
            if w < n {
                break;
            }
        }
        p.pump_ab();
        p.poll_b();
        recvd += SmolPair::read_all(&mut p.set_b, p.hb, check.then_some(recvd))?;
        p.pump_ba();
        p.tick();
        rounds += 1;
        if rounds > MAX_ROUNDS {
            let (a, b) = (p.set_a.get::<smol_tcp::Socket>(p.ha), p.set_b.get::<smol_tcp::Socket>(p.hb));
            return Err(format!(
                "smoltcp bulk transfer stuck at {recvd} of {total} bytes: client {} (send queue {}), server {} (recv queue {}), segments {}/{}",
                a.state(),
                a.send_queue(),
                b.state(),
                b.recv_queue(),
                p.segs_ab,
                p.segs_ba
            ));
        }
    }
    Ok(())
}

#[inline(never)]
pub(super) fn measured_rr_smoltcp(p: &mut SmolPair, req: &[u8], resp: &[u8], n: u64, check: bool) -> Result<(), String> {
    for _ in 0..n {
        if SmolPair::write(&mut p.set_a, p.ha, req)? != req.len() {
            return Err("smoltcp request not accepted whole".into());
        }
        let mut got = 0u64;
        for round in 0.. {
            p.pump_ab();
            p.poll_b();
            got += SmolPair::read_all(&mut p.set_b, p.hb, check.then_some(got))?;
            if got >= RR_SIZE as u64 {
                break;
            }
            p.pump_ba();
            p.tick();
            if round > 1000 {
                return Err("smoltcp request stuck".into());
            }
        }
        if SmolPair::write(&mut p.set_b, p.hb, resp)? != resp.len() {
            return Err("smoltcp response not accepted whole".into());
        }
        got = 0;
        for round in 0.. {
            p.pump_ba();
            p.poll_a();
            got += SmolPair::read_all(&mut p.set_a, p.ha, check.then_some(got))?;
            if got >= RR_SIZE as u64 {
                break;
            }
            p.pump_ab();
            p.tick();
            if round > 1000 {
                return Err("smoltcp response stuck".into());
            }
        }
        p.tick();
    }
    Ok(())
}

pub(super) fn run_bulk_smoltcp(mtu: usize, src: &[u8], total: u64, check: bool) -> Result<Sample, String> {
    let mut p = SmolPair::new(mtu, false)?;
    let t = Stopwatch::start();
    measured_bulk_smoltcp(&mut p, src, total, check)?;
    Ok(Sample { elapsed: t.elapsed(), units: total, segs_ab: p.segs_ab, segs_ba: p.segs_ba })
}
