//! Bringing a port's device up (`rte_eth_dev_configure` and queue setup): what the
//! device offers (`rte_eth_dev_info_get`), the offloads granted (wanted ∩ capability,
//! send-path §4), the MTU, RSS with a symmetric key, one RX/TX queue pair per lcore and RX
//! interrupts where the driver has them.

use std::ffi::CStr;

use dpdk_sys as sys;

use super::port::{symmetric_rss_key, Offloads, PortId, PortSettings};
use super::{DpdkError, Mempool};

/// What [`configure_device`] settled on.
pub(super) struct Configured {
    pub(super) granted: Offloads,
    /// The MTU in effect.
    pub(super) mtu: u16,
    pub(super) driver: String,
    /// Entries of the RSS redirection table (0: none).
    pub(super) reta_size: u16,
    /// RX queue interrupts configured.
    pub(super) rx_intr: bool,
    /// Readable-when-RX-has-frames descriptors, one per queue, or empty.
    pub(super) rx_fds: Vec<i32>,
}

/// The AF_XDP sockets this process has open (from `/proc/self/fd`).
fn xsk_fds() -> std::collections::BTreeSet<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Default::default() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        // SAFETY: getsockopt on a descriptor number only reads its socket domain; a
        // closed or non-socket descriptor makes it fail, which counts as "not AF_XDP".
        .filter(|&fd| unsafe { sys::strait_fd_is_xsk(fd) } == 1)
        .collect()
}

/// Device configuration proper.
/// Ethernet header, one VLAN tag and the FCS: what a frame adds to the IP MTU.
const ETHERNET_OVERHEAD: u32 = 14 + 4 + 4;

pub(super) fn configure_device(
    id: PortId,
    s: &PortSettings,
    pool: &Mempool,
) -> Result<Configured, DpdkError> {
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: valid port, valid out-pointer.
    let rc = unsafe { sys::rte_eth_dev_info_get(id, &mut info) };
    if rc < 0 {
        return Err(DpdkError::from_errno("rte_eth_dev_info_get", rc));
    }
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: non-null driver_name is a static NUL-terminated string of the PMD.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    if s.rx_queues > info.max_rx_queues || s.tx_queues > info.max_tx_queues {
        return Err(DpdkError::InvalidArgument(format!(
            "port {id} ({driver}) supports at most {} RX / {} TX queues, {} / {} requested",
            info.max_rx_queues, info.max_tx_queues, s.rx_queues, s.tx_queues
        )));
    }

    // Negotiation: granted = want ∩ capability.
    let tx_capa = info.tx_offload_capa;
    let rx_capa = info.rx_offload_capa;
    let has_tx = |bit: u64| tx_capa & bit == bit;
    let w = s.want;
    let rss_types = (sys::STRAIT_ETH_RSS_IP | sys::STRAIT_ETH_RSS_TCP | sys::STRAIT_ETH_RSS_UDP)
        & info.flow_type_rss_offloads;
    let rx_cksum_bits =
        sys::STRAIT_ETH_RX_OFFLOAD_IPV4_CKSUM | sys::STRAIT_ETH_RX_OFFLOAD_TCP_CKSUM;
    let granted = Offloads {
        tso: w.tso && has_tx(sys::STRAIT_ETH_TX_OFFLOAD_TCP_TSO),
        ipv4_cksum: w.ipv4_cksum && has_tx(sys::STRAIT_ETH_TX_OFFLOAD_IPV4_CKSUM),
        tcp_cksum: w.tcp_cksum && has_tx(sys::STRAIT_ETH_TX_OFFLOAD_TCP_CKSUM),
        udp_cksum: w.udp_cksum && has_tx(sys::STRAIT_ETH_TX_OFFLOAD_UDP_CKSUM),
        multi_seg: w.multi_seg && has_tx(sys::STRAIT_ETH_TX_OFFLOAD_MULTI_SEGS),
        rss: w.rss && rss_types != 0,
        rx_cksum: w.rx_cksum && rx_capa & rx_cksum_bits == rx_cksum_bits,
    };

    let mut tx_offloads = 0u64;
    for (on, bit) in [
        (granted.tso, sys::STRAIT_ETH_TX_OFFLOAD_TCP_TSO),
        (granted.ipv4_cksum, sys::STRAIT_ETH_TX_OFFLOAD_IPV4_CKSUM),
        (granted.tcp_cksum, sys::STRAIT_ETH_TX_OFFLOAD_TCP_CKSUM),
        (granted.udp_cksum, sys::STRAIT_ETH_TX_OFFLOAD_UDP_CKSUM),
        (granted.multi_seg, sys::STRAIT_ETH_TX_OFFLOAD_MULTI_SEGS),
    ] {
        if on {
            tx_offloads |= bit;
        }
    }
    let mut rx_offloads = 0u64;
    if granted.rx_cksum {
        rx_offloads |= rx_capa
            & (sys::STRAIT_ETH_RX_OFFLOAD_IPV4_CKSUM
                | sys::STRAIT_ETH_RX_OFFLOAD_TCP_CKSUM
                | sys::STRAIT_ETH_RX_OFFLOAD_UDP_CKSUM);
    }
    // RX scatter only where a frame of the MTU does not fit one mbuf: a scattering PMD
    // prepares a chain of buffers for every receive (`net_tap` reads each frame with a
    // `readv` over them), which measurably costs CPU per frame (docs/benchmarks/side-by-side.md).
    let frame_max = u32::from(s.mtu) + ETHERNET_OVERHEAD;
    let buffer = u32::from(pool.data_room()).saturating_sub(u32::from(sys::STRAIT_PKTMBUF_HEADROOM));
    if granted.multi_seg && frame_max > buffer {
        rx_offloads |= rx_capa & sys::STRAIT_ETH_RX_OFFLOAD_SCATTER;
    }
    if granted.rss {
        rx_offloads |= rx_capa & sys::STRAIT_ETH_RX_OFFLOAD_RSS_HASH;
    }

    let mut conf = sys::rte_eth_conf::default();
    conf.rxmode.offloads = rx_offloads;
    conf.txmode.offloads = tx_offloads;
    let key_len = if info.hash_key_size == 0 {
        40
    } else {
        usize::from(info.hash_key_size)
    };
    let mut key = symmetric_rss_key(key_len);
    if granted.rss {
        conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
        conf.rx_adv_conf.rss_conf.rss_key_len = key_len as u8;
        conf.rx_adv_conf.rss_conf.rss_hf = rss_types;
    }
    let mut rx_intr = s.rx_interrupts;
    conf.intr_conf.set_rxq(u32::from(rx_intr));
    // SAFETY: valid port; conf (and the key it points to, alive until return) is fully
    // initialised; DPDK copies what it keeps.
    let mut rc = unsafe { sys::rte_eth_dev_configure(id, s.rx_queues, s.tx_queues, &conf) };
    if rc < 0 && rx_intr {
        // A device that refuses RX interrupts still works polled (idle lcores nap).
        tracing::info!(port = id, %driver, error = %DpdkError::from_errno("rte_eth_dev_configure", rc), "no RX interrupts; idle lcores will nap");
        rx_intr = false;
        conf.intr_conf.set_rxq(0);
        // SAFETY: as above.
        rc = unsafe { sys::rte_eth_dev_configure(id, s.rx_queues, s.tx_queues, &conf) };
    }
    if rc < 0 {
        return Err(DpdkError::from_errno("rte_eth_dev_configure", rc));
    }

    // MTU: best effort (a virtual device may not support changing it).
    // SAFETY: valid, configured port.
    let rc = unsafe { sys::rte_eth_dev_set_mtu(id, s.mtu) };
    if rc < 0 {
        tracing::warn!(port = id, %driver, mtu = s.mtu, error = %DpdkError::from_errno("rte_eth_dev_set_mtu", rc), "MTU refused; keeping the device's");
    }
    let mut mtu = 0u16;
    // SAFETY: valid port, valid out-pointer.
    if unsafe { sys::rte_eth_dev_get_mtu(id, &mut mtu) } < 0 {
        mtu = s.mtu;
    }

    let mut nb_rxd = s.rx_desc;
    let mut nb_txd = s.tx_desc;
    // SAFETY: valid port, valid in/out pointers.
    let rc = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rxd, &mut nb_txd) };
    if rc < 0 {
        return Err(DpdkError::from_errno(
            "rte_eth_dev_adjust_nb_rx_tx_desc",
            rc,
        ));
    }
    // SAFETY: valid port.
    let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
    let socket = if socket < 0 {
        sys::STRAIT_SOCKET_ID_ANY
    } else {
        socket
    } as u32;

    let mut rxconf = info.default_rxconf;
    rxconf.offloads = rx_offloads;
    // net_af_xdp opens each queue's AF_XDP socket in rx_queue_setup: the new one is that
    // queue's wait descriptor (where RX interrupts are wanted: the PMD accepts
    // `intr_conf.rxq` but has no interrupt to register).
    let watch_sockets = s.rx_interrupts && driver == "net_af_xdp";
    let mut rx_fds = Vec::new();
    for q in 0..s.rx_queues {
        let before = if watch_sockets { xsk_fds() } else { Default::default() };
        // SAFETY: configured port, q < configured RX queues, rxconf initialised, pool
        // alive (and kept alive by the Port that will own this queue).
        let rc =
            unsafe { sys::rte_eth_rx_queue_setup(id, q, nb_rxd, socket, &rxconf, pool.as_ptr()) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eth_rx_queue_setup", rc));
        }
        if watch_sockets {
            let new: Vec<i32> = xsk_fds().difference(&before).copied().collect();
            if let [fd] = new[..] {
                rx_fds.push(fd);
            }
        }
    }
    if rx_fds.len() == usize::from(s.rx_queues) && !rx_fds.is_empty() {
        rx_intr = false;
    } else {
        rx_fds.clear();
    }
    let mut txconf = info.default_txconf;
    txconf.offloads = tx_offloads;
    for q in 0..s.tx_queues {
        // SAFETY: configured port, q < configured TX queues, txconf initialised.
        let rc = unsafe { sys::rte_eth_tx_queue_setup(id, q, nb_txd, socket, &txconf) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eth_tx_queue_setup", rc));
        }
    }
    Ok(Configured { granted, mtu, driver, reta_size: info.reta_size, rx_intr, rx_fds })
}
