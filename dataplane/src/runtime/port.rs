//! Bringing up one configured port ([`PortSpec`]): each of its DPDK devices configured
//! with one RX/TX queue pair per lcore (or one queue, for the per-queue devices of an
//! AF_XDP port), offloads negotiated and logged, the RETA programmed for hardware steering;
//! and the steering mesh over the ports brought up.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::dpdk::{Mempool, Offloads, Port, PortSettings};
use crate::impair::ImpairConfig;
use crate::lcore::{mesh, SteeringLinks, SteeringMode, INBOX_CAPACITY};
use crate::net::{Interface, InterfaceConfig, NeighborConfig};
use crate::rss::{symmetric_key, FlowSteering, DEFAULT_RETA_SIZE, KEY_LEN};
use crate::wire::ethernet::EthernetAddress;

use super::RuntimeError;

/// Descriptors per TX ring (the adapter clamps to what the device allows).
const RING_DESCRIPTORS: u16 = 1024;
/// Descriptors per RX ring at most. An RX ring absorbs the bursts that arrive while the
/// lcore is busy (or preempted); with thousands of connections a 1024-entry AF_XDP ring
/// overflowed: the veth dropped 17 % of the frames for the socket (`rx_queue_0_drops`,
/// 10 000 keep-alive clients, deploy/bench/run.sh conc10000), each a retransmission.
const RX_RING_DESCRIPTORS: u16 = 4096;

/// One network port as the data plane takes it: its DPDK devices, addresses, offloads,
/// impairment and neighbour-table limits (`strait::config` produces it from `[[port]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The port's name (logs, metrics).
    pub name: String,
    /// The DPDK device names it is made of (as `rte_eth_dev_get_port_by_name` knows
    /// them): one device with a queue per lcore, or for an AF_XDP port of several queues
    /// one device per lcore.
    pub devices: Vec<String>,
    /// Our IPv4 address on it.
    pub ipv4: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix_len: u8,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU.
    pub mtu: u16,
    /// A MAC address to use instead of the device's (the port is put in promiscuous mode
    /// to receive frames sent to it).
    pub mac: Option<EthernetAddress>,
    /// Offloads wanted (the device grants what it supports).
    pub offloads: Offloads,
    /// Seeded impairment of its frames (testing; off when passthrough).
    pub impair: ImpairConfig,
    /// New ARP resolutions of addresses that are neither the gateway nor a server, per
    /// second at most.
    pub arp_resolutions_per_second: u32,
    /// IPv6 beside IPv4 (an address with its prefix and a router, and the link-local
    /// address always), or `None` for an IPv4-only port.
    pub ipv6: Option<crate::net::Ipv6Config>,
}

impl PortSpec {
    /// Whether the port is opened by DPDK's AF_XDP PMD (its pool must be one UMEM span).
    pub fn is_af_xdp(&self) -> bool {
        self.devices.iter().any(|d| d.starts_with("net_af_xdp"))
    }
}

/// RX descriptors per ring: [`RX_RING_DESCRIPTORS`], fewer for a small pool so that the
/// RX rings (which PMDs like `net_tap` and `net_af_xdp` fill with mbufs up front) take at
/// most a quarter of it; a power of two, at least 64.
fn ring_descriptors(mbufs: u32, rx_rings: u16) -> u16 {
    let share = mbufs / 4 / u32::from(rx_rings.max(1));
    let pow2 = if share == 0 { 0 } else { 1u32 << (31 - share.leading_zeros()) };
    u16::try_from(pow2.clamp(64, u32::from(RX_RING_DESCRIPTORS))).unwrap_or(RX_RING_DESCRIPTORS)
}

fn describe(o: &Offloads) -> String {
    let on: Vec<&str> = o.names().collect();
    if on.is_empty() {
        "none".to_string()
    } else {
        on.join(",")
    }
}

/// A configured port, up: one DPDK device with a queue per lcore, or (an AF_XDP port of
/// several queues) one device per lcore.
pub(super) struct UpPort {
    pub(super) spec: PortSpec,
    devices: Vec<Arc<Port>>,
    mac: EthernetAddress,
}

impl UpPort {
    /// The first (or only) device.
    fn port(&self) -> &Port {
        &self.devices[0]
    }

    /// The device and queue lcore number `index` owns.
    pub(super) fn queue_for(&self, index: usize) -> (Arc<Port>, u16) {
        match self.devices.get(index) {
            Some(d) if self.devices.len() > 1 => (Arc::clone(d), 0),
            _ => (Arc::clone(&self.devices[0]), u16::try_from(index).unwrap_or(u16::MAX)),
        }
    }

    /// The further devices lcore number `index` of `lcores` polls for RX: an AF_XDP port
    /// with more queues than lcores (one device per queue) gives lcore `i` the devices
    /// `i + lcores`, `i + 2 * lcores`... (configuration checks that they divide evenly),
    /// each on its queue 0. None for a port with one device, or one per lcore.
    pub(super) fn more_rx_for(&self, index: usize, lcores: usize) -> Vec<(Arc<Port>, u16)> {
        if self.devices.len() <= lcores.max(1) {
            return Vec::new();
        }
        self.devices.iter().skip(index + lcores).step_by(lcores.max(1)).map(|d| (Arc::clone(d), 0)).collect()
    }

    /// Each device with the name its metrics carry: the port's name, and for the
    /// per-queue devices of an AF_XDP port `<name>.q<i>`.
    pub(super) fn named_devices(&self) -> Vec<(String, Arc<Port>)> {
        self.devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let name = if i == 0 { self.spec.name.clone() } else { format!("{}.q{i}", self.spec.name) };
                (name, Arc::clone(d))
            })
            .collect()
    }

    /// The port's network layer; the next hops of `servers` on its subnet are pinned in
    /// its neighbour table (the gateway is pinned by `Interface` itself).
    pub(super) fn interface(&self, servers: &[Ipv4Addr]) -> Interface {
        let neighbors = NeighborConfig {
            resolutions_per_second: self.spec.arp_resolutions_per_second,
            ..NeighborConfig::default()
        };
        let mut iface = Interface::with_neighbor_config(
            InterfaceConfig {
                mac: self.mac,
                ipv4: self.spec.ipv4,
                prefix_len: self.spec.prefix_len,
                gateway: self.spec.gateway,
                mtu: self.port().mtu(),
            },
            neighbors,
        );
        for &s in servers {
            iface.pin_neighbor(s);
        }
        if let Some(v6) = self.spec.ipv6 {
            iface.enable_ipv6(v6);
        }
        iface
    }
}

/// Brings up every device of `spec` with `queues` queue pairs (one for per-queue devices).
pub(super) fn bring_up(spec: &PortSpec, queues: u16, pool: &Mempool, rx_interrupts: bool) -> Result<UpPort, RuntimeError> {
    // Per-queue devices take one queue each.
    let queues = if spec.devices.len() > 1 { 1 } else { queues };
    let mut devices = Vec::with_capacity(spec.devices.len());
    let mut mac = None;
    for name in &spec.devices {
        let (port, m) = bring_up_device(spec, name, queues, pool, rx_interrupts)?;
        mac.get_or_insert(m);
        devices.push(Arc::new(port));
    }
    if devices.is_empty() {
        return Err(RuntimeError::NoDevice { port: spec.name.clone() });
    }
    if !spec.impair.is_passthrough() {
        let (rx, tx) = (spec.impair.rx, spec.impair.tx);
        tracing::warn!(
            port = %spec.name,
            seed = spec.impair.seed,
            rx_drop = rx.drop.as_f64(),
            tx_drop = tx.drop.as_f64(),
            reorder = rx.reorder.as_f64(),
            duplicate = rx.duplicate.as_f64(),
            corrupt = rx.corrupt.as_f64(),
            delay_ms = rx.delay.as_millis() as u64,
            "impairment enabled: frames are dropped, reordered, duplicated, corrupted and delayed on purpose"
        );
    }
    let mac = mac.unwrap_or(EthernetAddress([0; 6]));
    Ok(UpPort { spec: spec.clone(), devices, mac })
}

fn bring_up_device(spec: &PortSpec, name: &str, queues: u16, pool: &Mempool, rx_interrupts: bool) -> Result<(Port, EthernetAddress), RuntimeError> {
    let id = Port::by_name(name).map_err(|source| RuntimeError::NoSuchDevice {
        port: spec.name.clone(),
        device: name.to_string(),
        source,
    })?;
    let want = spec.offloads;
    let settings = PortSettings {
        rx_queues: queues,
        tx_queues: queues,
        rx_desc: ring_descriptors(pool.in_use().saturating_add(pool.available()), queues),
        tx_desc: RING_DESCRIPTORS,
        mtu: spec.mtu,
        want,
        rx_interrupts,
    };
    let port_err = |source| RuntimeError::Port { port: spec.name.clone(), source };
    let mut port = Port::configure(id, &settings, pool).map_err(port_err)?;
    let mac = match spec.mac {
        Some(m) => {
            // A configured MAC other than the device's: receive frames sent to it.
            port.set_promiscuous(true).map_err(port_err)?;
            m
        }
        None => EthernetAddress(port.mac()),
    };
    port.start().map_err(port_err)?;
    if queues > 1 && port.granted().rss {
        // Hardware steering: the RETA round robin over the lcores' queues, as
        // `crate::rss::FlowSteering` computes it; else the lcores redirect in software.
        let reta: Vec<u16> = (0..port.reta_size()).map(|i| i % queues).collect();
        if let Err(e) = port.program_rss(&reta) {
            tracing::info!(port = %spec.name, error = %e, "no usable RSS: lcores steer flows in software");
        }
    }
    tracing::info!(
        port = %spec.name,
        device = name,
        driver = port.driver(),
        port_id = id,
        mac = %mac,
        ipv4 = %format!("{}/{}", spec.ipv4, spec.prefix_len),
        mtu = port.mtu(),
        queues,
        wanted = %describe(&want),
        granted = %describe(&port.granted()),
        "port up"
    );
    Ok((port, mac))
}

/// The steering mesh of `lcores` lcores: hardware where every port programmed the same
/// RETA size, else software with the default table (every lcore checks ownership either
/// way, see `crate::lcore::steer`).
pub(super) fn flow_steering(ports: &[UpPort], lcores: u16) -> Vec<SteeringLinks> {
    let sizes: Vec<u16> = ports.iter().map(|up| if up.port().rss_programmed() { up.port().reta_size() } else { 0 }).collect();
    let hardware = lcores > 1 && !sizes.is_empty() && sizes.iter().all(|&s| s != 0 && s == sizes[0]);
    let (mode, size) = match sizes.first() {
        Some(&s) if hardware => (SteeringMode::Hardware, usize::from(s)),
        _ => (SteeringMode::Software, DEFAULT_RETA_SIZE),
    };
    match FlowSteering::new(&symmetric_key(KEY_LEN), size, lcores.max(1)) {
        Ok(s) => {
            tracing::info!(lcores, mode = mode.name(), reta_size = size, "flow steering");
            mesh(&s, mode, INBOX_CAPACITY)
        }
        Err(e) => {
            // Only an RETA size that is not a power of two gets here: steer in software.
            tracing::warn!(error = %e, "device RETA unusable: lcores steer flows in software");
            FlowSteering::new(&symmetric_key(KEY_LEN), DEFAULT_RETA_SIZE, lcores.max(1))
                .map(|s| mesh(&s, SteeringMode::Software, INBOX_CAPACITY))
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_rings_take_at_most_a_quarter_of_a_small_pool() {
        assert_eq!(ring_descriptors(32767, 1), RX_RING_DESCRIPTORS);
        assert_eq!(ring_descriptors(65535, 2), RX_RING_DESCRIPTORS);
        assert_eq!(ring_descriptors(1023, 1), 128);
        assert_eq!(ring_descriptors(1023, 2), 64);
        assert_eq!(ring_descriptors(100, 4), 64, "never below 64");
        assert_eq!(ring_descriptors(8191, 1), 1024);
    }
}
