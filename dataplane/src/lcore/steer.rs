//! Flow steering between lcores: the software side of [`crate::rss`].
//!
//! Every lcore knows the owner of every TCP/IPv4 flow ([`FlowSteering::owner`]: symmetric
//! Toeplitz hash, then the RETA). Where the device steers by RSS with our key and RETA,
//! frames already arrive on the owner's queue; where it cannot (`net_tap` without
//! rte_flow spreads flows by the kernel's own hash, a one-queue device delivers
//! everything to queue 0), the lcore that received a frame hands it — the mbuf itself, no
//! copy — to the owner through the owner's inbox, a bounded lock-free channel
//! (`std::sync::mpsc::sync_channel`, an array queue: `try_send`/`try_recv` take no lock
//! unless a receiver blocks, which ours never do). A full inbox drops the frame (counted;
//! TCP retransmits).
//!
//! The TCP engine of each lcore opens connections only from source ports whose flow it
//! owns ([`crate::tcp::Engine::set_steering`]), so return traffic of active opens needs
//! no hand-off when the device does RSS.
//!
//! ARP and ICMP are handled by whichever lcore receives them. So that every lcore's
//! neighbour table learns what it needs, an ARP packet addressed to us (a request for our
//! address or a reply to one of our requests) is also copied to every other lcore as a
//! *reply* (so that it is learnt from, RFC 826 "merge", and never answered twice).

use std::net::Ipv4Addr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crate::dpdk::{Mbuf, Mempool};
use crate::rss::{frame_tcp_tuple, FlowSteering, LcoreSteering};
use crate::wire::{arp, ethernet, ipv6};

use super::wake::Waker;

/// Frames an inbox holds before hand-offs to it are dropped.
pub const INBOX_CAPACITY: usize = 4096;
/// Hand-offs taken from the inbox per loop iteration at most.
pub const INBOX_BURST: usize = 64;

/// A frame on its way to the lcore that owns its flow.
pub struct Handoff {
    /// Index of the port (in the order the ports were given) it arrived on.
    pub port: usize,
    /// The frame, as received (its offload flags included).
    pub frame: Mbuf,
    /// Whether the impairment layer corrupted it (the NIC's checksum verdict then no
    /// longer holds).
    pub corrupted: bool,
}

/// Whether the ports steer flows to the owner's queue in hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SteeringMode {
    /// RSS with the symmetric key and our RETA on every port: hand-offs are exceptions.
    Hardware,
    /// No usable RSS: the receiving lcore hands frames to their owner.
    Software,
}

impl SteeringMode {
    /// `hardware` / `software`.
    pub fn name(self) -> &'static str {
        match self {
            SteeringMode::Hardware => "hardware",
            SteeringMode::Software => "software",
        }
    }
}

/// One lcore's end of the steering mesh: its inbox, the other lcores' inboxes and the
/// shared map.
pub struct SteeringLinks {
    lcore: LcoreSteering,
    mode: SteeringMode,
    inbox: Receiver<Handoff>,
    peers: Vec<Option<SyncSender<Handoff>>>,
    wakers: Vec<Arc<Waker>>,
}

impl core::fmt::Debug for SteeringLinks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SteeringLinks")
            .field("index", &self.lcore.index())
            .field("lcores", &self.peers.len())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The links of every lcore (index `i` for the lcore owning queue `i`), each inbox
/// holding up to `capacity` frames.
pub fn mesh(steering: &FlowSteering, mode: SteeringMode, capacity: usize) -> Vec<SteeringLinks> {
    let n = usize::from(steering.lcores());
    let (senders, receivers): (Vec<SyncSender<Handoff>>, Vec<Receiver<Handoff>>) =
        (0..n).map(|_| sync_channel(capacity.max(1))).unzip();
    let wakers: Vec<Arc<Waker>> = (0..n).map(|_| Arc::new(Waker::new())).collect();
    receivers
        .into_iter()
        .enumerate()
        .map(|(i, inbox)| SteeringLinks {
            lcore: steering.for_lcore(u16::try_from(i).unwrap_or(u16::MAX)),
            mode,
            inbox,
            peers: senders
                .iter()
                .enumerate()
                .map(|(j, s)| (j != i).then(|| s.clone()))
                .collect(),
            wakers: wakers.clone(),
        })
        .collect()
}

/// What to do with a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Handle it here.
    Here,
    /// TCP of a flow another lcore owns: hand it over. `dst_port` is the frame's
    /// destination port.
    Owner {
        /// The owner's index.
        lcore: u16,
        /// Destination TCP port of the frame.
        dst_port: u16,
    },
    /// ARP addressed to us, or an IPv6 neighbour or router advertisement: handle it here
    /// and share a learn-only copy (every lcore keeps its own neighbour caches and router
    /// lists).
    Share,
}

/// The target protocol address of an Ethernet/IPv4 ARP frame.
fn arp_target(frame: &[u8]) -> Option<Ipv4Addr> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() != ethernet::EtherType::Arp {
        return None;
    }
    arp::Packet::new_checked(eth.payload()).ok().map(|p| p.target_protocol_addr())
}

/// Whether `frame` is an IPv6 neighbour advertisement (RFC 4861 §4.4), the answer an lcore
/// resolving a next hop waits for, a router advertisement (§4.2), which every lcore's
/// router list needs, or another node's duplicate address detection probe (a solicitation
/// from `::`, RFC 4862 §5.4.3), which every lcore's detection of that address must see;
/// any may arrive on another lcore's queue. A copy of an advertisement is learnt as is (an
/// advertisement is never answered); a probe of an address we already use is answered by
/// the lcore that speaks for the link (`Interface::set_link_speaker`), once.
fn is_shared_advert(frame: &[u8]) -> bool {
    const ROUTER_ADVERT: u8 = 134;
    const NEIGHBOR_SOLICIT: u8 = 135;
    const NEIGHBOR_ADVERT: u8 = 136;
    let Ok(eth) = ethernet::Frame::new_checked(frame) else { return false };
    if eth.ethertype() != ethernet::EtherType::Ipv6 {
        return false;
    }
    let Ok(ip) = ipv6::Packet::new_checked(eth.payload()) else { return false };
    match ip.upper_layer() {
        Ok(up) if up.protocol == ipv6::next_header::ICMPV6 => match eth.payload().get(up.offset) {
            Some(&(ROUTER_ADVERT | NEIGHBOR_ADVERT)) => true,
            Some(&NEIGHBOR_SOLICIT) => ip.src_addr().is_unspecified(),
            _ => false,
        },
        _ => false,
    }
}

/// Turns the ARP frame `frame` into a reply in place (RFC 826: a reply is merged/learnt
/// like a request but never answered). Other frames are left as they are.
fn make_arp_reply(frame: &mut [u8]) {
    let Ok(mut eth) = ethernet::Frame::new_checked(frame) else { return };
    if eth.ethertype() != ethernet::EtherType::Arp {
        return;
    }
    if let Ok(mut p) = arp::Packet::new_checked(eth.payload_mut()) {
        p.set_operation(arp::Operation::Reply);
    }
}

impl SteeringLinks {
    /// This lcore's index (= its queue on every port).
    pub fn index(&self) -> u16 {
        self.lcore.index()
    }

    /// Number of lcores in the mesh.
    pub fn lcores(&self) -> usize {
        self.peers.len()
    }

    /// Hardware or software steering.
    pub fn mode(&self) -> SteeringMode {
        self.mode
    }

    /// The map as the TCP engine of this lcore uses it.
    pub fn lcore_steering(&self) -> LcoreSteering {
        self.lcore.clone()
    }

    /// This lcore's waker (for a loop that sleeps: hand-offs to it ring it).
    pub fn waker(&self) -> Arc<Waker> {
        let i = usize::from(self.lcore.index());
        self.wakers
            .get(i)
            .cloned()
            .unwrap_or_else(|| Arc::new(Waker::new()))
    }

    /// Where `frame`, received on a port whose address is `our_ip`, belongs.
    pub fn route(&self, frame: &[u8], our_ip: Ipv4Addr) -> Route {
        if self.peers.len() < 2 {
            return Route::Here;
        }
        if let Some((src, dst, sport, dport)) = frame_tcp_tuple(frame) {
            let owner = self.lcore.steering().owner(src, dst, sport, dport);
            return if owner == self.lcore.index() {
                Route::Here
            } else {
                Route::Owner {
                    lcore: owner,
                    dst_port: dport,
                }
            };
        }
        if arp_target(frame) == Some(our_ip) || is_shared_advert(frame) {
            return Route::Share;
        }
        Route::Here
    }

    /// Hands `h` to lcore `to`; gives it back if that inbox is full or gone.
    pub fn send(&self, to: u16, h: Handoff) -> Result<(), Handoff> {
        let Some(Some(tx)) = self.peers.get(usize::from(to)) else {
            return Err(h);
        };
        match tx.try_send(h) {
            Ok(()) => {
                if let Some(w) = self.wakers.get(usize::from(to)) {
                    w.wake();
                }
                Ok(())
            }
            Err(TrySendError::Full(h) | TrySendError::Disconnected(h)) => Err(h),
        }
    }

    /// Copies the ARP frame `frame` (received on port `port`) to every other lcore as a
    /// reply, to be learnt from; returns (copies handed over, copies dropped: no mbuf or
    /// a full inbox).
    pub fn share_arp(&self, port: usize, frame: &[u8], pool: &Mempool) -> (u64, u64) {
        let (mut shared, mut dropped) = (0u64, 0u64);
        for to in 0..self.peers.len() {
            let Ok(to) = u16::try_from(to) else { break };
            if to == self.lcore.index() {
                continue;
            }
            let Ok(mut copy) = Mbuf::from_slice(pool, frame) else {
                dropped += 1;
                continue;
            };
            if let Some(d) = copy.data_mut() {
                make_arp_reply(d);
            }
            match self.send(
                to,
                Handoff {
                    port,
                    frame: copy,
                    corrupted: false,
                },
            ) {
                Ok(()) => shared += 1,
                Err(_) => dropped += 1,
            }
        }
        (shared, dropped)
    }

    /// The next frame handed to this lcore, if any.
    pub fn recv(&self) -> Option<Handoff> {
        self.inbox.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rss::{symmetric_key, KEY_LEN};

    fn tcp_frame(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[17] = 40; // total length
        f[23] = 6;
        f[46] = 5 << 4; // TCP data offset
        f[26..30].copy_from_slice(&src.octets());
        f[30..34].copy_from_slice(&dst.octets());
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    fn arp_frame(op: u16, tpa: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; 42];
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        let mut p = arp::Packet::new_unchecked(&mut f[14..]);
        p.set_ethernet_ipv4();
        p.set_operation(if op == 1 { arp::Operation::Request } else { arp::Operation::Reply });
        p.set_target_protocol_addr(tpa);
        f
    }

    #[test]
    fn frames_route_to_their_owner_and_arp_for_us_is_shared() {
        let s = FlowSteering::new(&symmetric_key(KEY_LEN), 128, 2).expect("steering");
        let links = mesh(&s, SteeringMode::Software, 16);
        assert_eq!(links.len(), 2);
        let us = Ipv4Addr::new(198, 18, 95, 2);
        let peer = Ipv4Addr::new(198, 18, 95, 1);
        let mut seen = [false; 2];
        for port in 40000..40100u16 {
            let f = tcp_frame(peer, us, port, 7);
            let owner = s.owner(peer, us, port, 7);
            seen[usize::from(owner)] = true;
            for l in &links {
                let want = if owner == l.index() {
                    Route::Here
                } else {
                    Route::Owner {
                        lcore: owner,
                        dst_port: 7,
                    }
                };
                assert_eq!(l.route(&f, us), want);
            }
        }
        assert_eq!(seen, [true, true]);
        assert_eq!(
            links[0].route(&arp_frame(1, us), us),
            Route::Share,
            "request for us"
        );
        assert_eq!(
            links[1].route(&arp_frame(2, us), us),
            Route::Share,
            "reply to us"
        );
        assert_eq!(
            links[0].route(&arp_frame(1, peer), us),
            Route::Here,
            "not for us: merge-only, local"
        );
        assert_eq!(
            links[0].route(&[0u8; 10], us),
            Route::Here,
            "runt: the interface counts it"
        );
        // IPv6: neighbour advertisements are shared as they are (each lcore resolves on
        // its own); solicitations stay; TCP over IPv6 goes to its owner like IPv4's.
        use crate::wire::v6_testdata::{hex, NA, NS};
        let na = hex(NA);
        assert_eq!(links[0].route(&na, us), Route::Share, "advertisement");
        let mut copy = na.clone();
        make_arp_reply(&mut copy);
        assert_eq!(copy, na, "an advertisement is shared unchanged");
        assert_eq!(links[0].route(&hex(NS), us), Route::Here, "solicitation");
        // Router advertisements and duplicate address detection probes (from ::) are for
        // every lcore (routing is not checksummed: the type and source are enough here).
        let mut ra = hex(NS);
        ra[14 + 40] = 134;
        assert_eq!(links[0].route(&ra, us), Route::Share, "router advertisement");
        let mut probe = hex(NS);
        probe[14 + 8..14 + 24].fill(0);
        assert_eq!(links[0].route(&probe, us), Route::Share, "DAD probe");
    }

    #[test]
    fn one_lcore_keeps_everything() {
        let s = FlowSteering::new(&symmetric_key(KEY_LEN), 128, 1).expect("steering");
        let links = mesh(&s, SteeringMode::Software, 16);
        let us = Ipv4Addr::new(198, 18, 95, 2);
        assert_eq!(
            links[0].route(&tcp_frame(Ipv4Addr::new(198, 18, 95, 1), us, 1, 7), us),
            Route::Here
        );
        assert_eq!(
            links[0].route(&arp_frame(1, us), us),
            Route::Here,
            "nobody to share with"
        );
    }
}
