//! Ethernet ports (`rte_ethdev`): the configured [`Port`], its RX/TX bursts, RSS table,
//! RX interrupts and statistics. Bringing the device up (offload negotiation, MTU, queues)
//! is in `port_setup.rs`.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use dpdk_sys as sys;

use super::eal::{acquire_object, ensure_running, release_object};
use super::port_setup::{configure_device, Configured};
use super::{DpdkError, Mbuf, Mempool};

/// DPDK port number.
pub type PortId = u16;

/// Offloads a port may provide. Used both for what the configuration wants and for what
/// the device granted (want ∩ capability), see send-path notes §4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offloads {
    /// TCP segmentation offload (`RTE_ETH_TX_OFFLOAD_TCP_TSO`).
    pub tso: bool,
    /// IPv4 header checksum on transmit.
    pub ipv4_cksum: bool,
    /// TCP checksum on transmit.
    pub tcp_cksum: bool,
    /// UDP checksum on transmit.
    pub udp_cksum: bool,
    /// Multi-segment (scatter-gather) transmit (`RTE_ETH_TX_OFFLOAD_MULTI_SEGS`); when
    /// granted, RX scatter is enabled too if the device has it and a frame of the MTU does
    /// not fit one mbuf.
    pub multi_seg: bool,
    /// Receive-side scaling over the RX queues, with a symmetric Toeplitz key.
    pub rss: bool,
    /// Receive checksum verification (IPv4 and TCP at least).
    pub rx_cksum: bool,
}

impl Offloads {
    /// Every offload.
    pub const ALL: Offloads = Offloads {
        tso: true,
        ipv4_cksum: true,
        tcp_cksum: true,
        udp_cksum: true,
        multi_seg: true,
        rss: true,
        rx_cksum: true,
    };
    /// No offload.
    pub const NONE: Offloads = Offloads {
        tso: false,
        ipv4_cksum: false,
        tcp_cksum: false,
        udp_cksum: false,
        multi_seg: false,
        rss: false,
        rx_cksum: false,
    };

    /// Every offload's name, as the configuration, the start-up log and the metrics
    /// spell them, in the order of the fields.
    pub const NAMES: [&'static str; 7] = ["tso", "ipv4-cksum", "tcp-cksum", "udp-cksum", "multi-seg", "rss", "rx-cksum"];

    /// The names of the offloads set, in [`Offloads::NAMES`] order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        let on = [self.tso, self.ipv4_cksum, self.tcp_cksum, self.udp_cksum, self.multi_seg, self.rss, self.rx_cksum];
        Self::NAMES.into_iter().zip(on).filter_map(|(name, on)| on.then_some(name))
    }
}

/// How to configure a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSettings {
    /// Number of RX queues (one per lcore, typically).
    pub rx_queues: u16,
    /// Number of TX queues.
    pub tx_queues: u16,
    /// RX ring size per queue (adjusted to the device's limits).
    pub rx_desc: u16,
    /// TX ring size per queue (adjusted to the device's limits).
    pub tx_desc: u16,
    /// Requested MTU; if the device refuses it, the port keeps its own (logged).
    pub mtu: u16,
    /// Offloads wanted; the device grants the subset it supports.
    pub want: Offloads,
    /// Ask for RX queue interrupts (`intr_conf.rxq`), so an idle lcore can block until a
    /// frame arrives instead of polling; a device without them is configured without.
    pub rx_interrupts: bool,
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// RX packets dropped by the hardware (no descriptor).
    pub imissed: u64,
    /// Erroneous RX packets.
    pub ierrors: u64,
    /// Failed TX packets.
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// Ports configured through [`Port::configure`] and not yet dropped.
static CLAIMED: Mutex<BTreeSet<PortId>> = Mutex::new(BTreeSet::new());

/// Symmetric Toeplitz key: the 16-bit pattern 0x6d5a repeated makes the hash of
/// (src, dst) equal that of (dst, src), so both directions of a connection land on the
/// same queue/lcore (Woo & Park, "Scalable TCP Session Monitoring with Symmetric
/// Receive-side Scaling", 2012).
pub(super) fn symmetric_rss_key(len: usize) -> Vec<u8> {
    crate::rss::symmetric_key(len)
}

/// A configured ethdev port. Dropping it stops and closes the device.
///
/// `Send + Sync`: bursts take `&self` so several lcores can drive *different* queues of
/// one port at once (DPDK allows that); each queue has a busy flag so that two threads
/// on the *same* queue (which DPDK forbids) get nothing instead of a data race.
/// Control operations that DPDK does not allow concurrently with bursts (`start`,
/// `stop`, promiscuous mode) take `&mut self`.
#[derive(Debug)]
pub struct Port {
    id: PortId,
    driver: String,
    granted: Offloads,
    mac: [u8; 6],
    mtu: u16,
    rx_busy: Box<[AtomicBool]>,
    tx_busy: Box<[AtomicBool]>,
    started: bool,
    tx_prepare_rejected: AtomicU64,
    pool: Mempool,
    /// RETA entries of the device (0: none).
    reta_size: u16,
    /// Whether [`Port::program_rss`] succeeded.
    rss_programmed: bool,
    /// Whether the device was configured with RX queue interrupts.
    rx_intr: bool,
    /// Per RX queue, a file descriptor that is readable when the queue has frames, where
    /// the PMD has no RX interrupts but its queue is a socket: `net_af_xdp` (the AF_XDP
    /// socket's RX ring; DPDK 22.11 offers no `rx_intr` for it).
    rx_fds: Vec<i32>,
}

impl Port {
    /// Port number of the device called `name` (e.g. `"net_tap0"` or a PCI address).
    pub fn by_name(name: &str) -> Result<PortId, DpdkError> {
        ensure_running()?;
        let c = CString::new(name).map_err(|_| {
            DpdkError::InvalidArgument(format!("port name {name:?} contains a NUL byte"))
        })?;
        let mut id: u16 = 0;
        // SAFETY: c is a valid C string, id a valid out-pointer; EAL is running.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eth_dev_get_port_by_name", rc));
        }
        Ok(id)
    }

    /// Number of available ports (0 when no EAL runs).
    pub fn count() -> u16 {
        if ensure_running().is_err() {
            return 0;
        }
        // SAFETY: EAL is running; the call reads the port table.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// Configures port `id`: negotiates offloads (granted = wanted ∩ device
    /// capability), sets up `rx_queues` RX queues filled from `pool` and `tx_queues` TX
    /// queues, and tries the MTU. The port is left stopped: call [`Port::start`].
    pub fn configure(
        id: PortId,
        settings: &PortSettings,
        pool: &Mempool,
    ) -> Result<Port, DpdkError> {
        ensure_running()?;
        // SAFETY: EAL is running; validity check on any port number.
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::InvalidArgument(format!("no port {id}")));
        }
        if settings.rx_queues == 0 || settings.tx_queues == 0 {
            return Err(DpdkError::InvalidArgument(
                "a port needs at least one RX and one TX queue".into(),
            ));
        }
        {
            let mut claimed = CLAIMED.lock().unwrap_or_else(|p| p.into_inner());
            if !claimed.insert(id) {
                return Err(DpdkError::InvalidArgument(format!(
                    "port {id} is already configured"
                )));
            }
        }
        let unclaim = |e: DpdkError| {
            CLAIMED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            e
        };
        acquire_object().map_err(unclaim)?;
        match configure_device(id, settings, pool) {
            Ok(Configured { granted, mtu, driver, reta_size, rx_intr, rx_fds }) => {
                let mut mac = sys::rte_ether_addr::default();
                // SAFETY: valid port, valid out-pointer.
                let rc = unsafe { sys::rte_eth_macaddr_get(id, &mut mac) };
                if rc < 0 {
                    tracing::warn!(port = id, error = %DpdkError::from_errno("rte_eth_macaddr_get", rc), "no MAC address");
                }
                tracing::info!(port = id, %driver, ?granted, want = ?settings.want, mtu, rx_intr, "port configured");
                Ok(Port {
                    id,
                    driver,
                    granted,
                    mac: mac.addr_bytes,
                    mtu,
                    rx_busy: (0..settings.rx_queues)
                        .map(|_| AtomicBool::new(false))
                        .collect(),
                    tx_busy: (0..settings.tx_queues)
                        .map(|_| AtomicBool::new(false))
                        .collect(),
                    started: false,
                    tx_prepare_rejected: AtomicU64::new(0),
                    pool: pool.clone(),
                    reta_size,
                    rss_programmed: false,
                    rx_intr,
                    rx_fds,
                })
            }
            Err(e) => {
                release_object();
                Err(unclaim(e))
            }
        }
    }

    /// The port number.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The PMD's name (e.g. `net_tap`).
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// Offloads granted at configuration.
    pub fn granted(&self) -> Offloads {
        self.granted
    }

    /// The port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The MTU in effect.
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// The pool RX buffers come from.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// Number of RX queues.
    pub fn rx_queues(&self) -> u16 {
        self.rx_busy.len() as u16
    }

    /// Number of TX queues.
    pub fn tx_queues(&self) -> u16 {
        self.tx_busy.len() as u16
    }

    /// Whether the port is started.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Entries of the device's RSS redirection table (0 when it has none).
    pub fn reta_size(&self) -> u16 {
        self.reta_size
    }

    /// Whether RSS steers flows by our symmetric key and the RETA given to
    /// [`Port::program_rss`].
    pub fn rss_programmed(&self) -> bool {
        self.rss_programmed
    }

    /// Programs the RSS redirection table (`reta[i]` = RX queue for hashes with
    /// `hash % reta.len() == i`) and checks that the device hashes with the symmetric
    /// key it was configured with. Fails, leaving the port as it was, where RSS was not
    /// granted, the device has no RETA of `reta.len()` entries (a PMD without RETA
    /// support, like `net_tap` without rte_flow), a queue is out of range, or the key
    /// the device reports differs.
    pub fn program_rss(&mut self, reta: &[u16]) -> Result<(), DpdkError> {
        if !self.granted.rss {
            return Err(DpdkError::InvalidArgument(format!("port {}: RSS not granted", self.id)));
        }
        if self.reta_size == 0 {
            return Err(DpdkError::InvalidArgument(format!("port {}: the device has no RSS redirection table", self.id)));
        }
        if reta.is_empty() || reta.len() != usize::from(self.reta_size) || !reta.len().is_multiple_of(64) {
            return Err(DpdkError::InvalidArgument(format!(
                "port {}: device RETA has {} entries, steering has {}",
                self.id,
                self.reta_size,
                reta.len()
            )));
        }
        if let Some(q) = reta.iter().find(|&&q| q >= self.rx_queues()) {
            return Err(DpdkError::InvalidArgument(format!("port {}: RETA names queue {q} of {}", self.id, self.rx_queues())));
        }
        let mut conf: Vec<sys::rte_eth_rss_reta_entry64> = reta
            .chunks(64)
            .map(|chunk| {
                let mut e = sys::rte_eth_rss_reta_entry64 { mask: u64::MAX, ..Default::default() };
                for (slot, &q) in e.reta.iter_mut().zip(chunk) {
                    *slot = q;
                }
                e
            })
            .collect();
        // SAFETY: valid, configured port; `conf` holds reta.len() / 64 entries, each
        // covering 64 RETA slots, matching the size passed.
        let rc = unsafe { sys::rte_eth_dev_rss_reta_update(self.id, conf.as_mut_ptr(), self.reta_size) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eth_dev_rss_reta_update", rc));
        }
        let mut key = vec![0u8; 255];
        let mut rss = sys::rte_eth_rss_conf { rss_key: key.as_mut_ptr(), rss_key_len: 255, ..Default::default() };
        // SAFETY: valid port; `rss.rss_key` points to 255 writable bytes, as rss_key_len says.
        let rc = unsafe { sys::rte_eth_dev_rss_hash_conf_get(self.id, &mut rss) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eth_dev_rss_hash_conf_get", rc));
        }
        let len = usize::from(rss.rss_key_len).min(key.len());
        let got = key.get(..len).unwrap_or_default();
        if got.len() < 16 || got != symmetric_rss_key(len).as_slice() {
            return Err(DpdkError::InvalidArgument(format!("port {}: the device does not hash with the symmetric key", self.id)));
        }
        self.rss_programmed = true;
        Ok(())
    }

    /// Whether the device was configured with RX queue interrupts
    /// ([`PortSettings::rx_interrupts`] and the device accepted them), or its queues are
    /// sockets that signal frames (AF_XDP).
    pub fn rx_intr_configured(&self) -> bool {
        self.rx_intr || !self.rx_fds.is_empty()
    }

    /// Adds RX queue `queue`'s interrupt to the *calling thread's* epoll instance
    /// ([`super::intr::wait`] then returns when it has a frame). Call it from the thread
    /// that polls the queue, after [`Port::start`]. Fails where the device was configured
    /// without RX interrupts or the PMD has none for this queue.
    pub fn rx_intr_register(&self, queue: u16) -> Result<(), DpdkError> {
        if let Some(&fd) = self.rx_fds.get(usize::from(queue)) {
            // SAFETY: the descriptor is the queue's AF_XDP socket, open as long as the
            // port (the PMD closes it when the device closes); the shim keeps the epoll
            // record in thread-local storage that outlives the registration.
            let rc = unsafe { sys::strait_epoll_add_fd(fd) };
            if rc < 0 {
                return Err(DpdkError::from_errno("rte_epoll_ctl", rc));
            }
            return Ok(());
        }
        if !self.rx_intr || !self.started || queue >= self.rx_queues() {
            return Err(DpdkError::InvalidArgument(format!("port {}: no RX interrupt for queue {queue}", self.id)));
        }
        // SAFETY: the port is configured and started with `intr_conf.rxq`; the queue
        // exists. DPDK keeps its own record of the registration.
        let rc = unsafe { sys::strait_rx_intr_register(self.id, queue) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eth_dev_rx_intr_ctl_q", rc));
        }
        Ok(())
    }

    /// Arms (`on`) or disarms RX queue `queue`'s interrupt. A PMD whose queue signals
    /// whenever a frame arrives without arming (`net_tap`: the queue's file descriptor)
    /// has no such operation; that counts as success.
    pub fn rx_intr_arm(&self, queue: u16, on: bool) -> Result<(), DpdkError> {
        if !self.rx_fds.is_empty() {
            // A socket is readable while its RX ring holds frames: nothing to arm.
            return Ok(());
        }
        // SAFETY: the port is configured; enable/disable validate the queue number and
        // only touch the device's interrupt registers or report ENOTSUP.
        let rc = unsafe {
            if on {
                sys::rte_eth_dev_rx_intr_enable(self.id, queue)
            } else {
                sys::rte_eth_dev_rx_intr_disable(self.id, queue)
            }
        };
        if rc < 0 && rc != -sys::STRAIT_ENOTSUP {
            return Err(DpdkError::from_errno("rte_eth_dev_rx_intr_enable/disable", rc));
        }
        Ok(())
    }

    /// Frames dropped because the PMD's `tx_prepare` rejected them.
    pub fn tx_prepare_rejected(&self) -> u64 {
        self.tx_prepare_rejected.load(Ordering::Relaxed)
    }

    /// Starts the device (`rte_eth_dev_start`).
    pub fn start(&mut self) -> Result<(), DpdkError> {
        if self.started {
            return Ok(());
        }
        // SAFETY: the port is configured and owned by self; &mut self excludes bursts.
        let rc = unsafe { sys::rte_eth_dev_start(self.id) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eth_dev_start", rc));
        }
        self.started = true;
        Ok(())
    }

    /// Stops the device (`rte_eth_dev_stop`); RX/TX bursts then return 0.
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        if !self.started {
            return Ok(());
        }
        // SAFETY: the port is configured and owned by self; &mut self excludes bursts.
        let rc = unsafe { sys::rte_eth_dev_stop(self.id) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eth_dev_stop", rc));
        }
        self.started = false;
        Ok(())
    }

    /// Enables or disables promiscuous mode.
    pub fn set_promiscuous(&mut self, on: bool) -> Result<(), DpdkError> {
        // SAFETY: the port is configured and owned by self.
        let rc = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id)
            } else {
                sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        if rc < 0 {
            return Err(DpdkError::from_errno(
                "rte_eth_promiscuous_enable/disable",
                rc,
            ));
        }
        Ok(())
    }

    /// Whether the link is up (non-blocking query; `false` on error).
    pub fn link_up(&self) -> bool {
        // SAFETY: the port is configured; link_get_nowait is a read-only query.
        unsafe { sys::strait_eth_link_status(self.id) == 1 }
    }

    /// Receives up to `max` frames from `queue`, appending them to `out`; returns how
    /// many. Returns 0 for a stopped port, a queue out of range, or a queue another
    /// thread is using at this moment.
    pub fn rx_burst(&self, queue: u16, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let max = max.min(usize::from(u16::MAX));
        if !self.started || max == 0 {
            return 0;
        }
        let Some(_guard) = QueueGuard::try_lock(&self.rx_busy, queue) else {
            return 0;
        };
        out.reserve(max);
        let len = out.len();
        // SAFETY: the port is started and this thread alone uses `queue` (guard). The
        // spare capacity holds at least `max` slots; Mbuf is a repr(transparent)
        // NonNull<rte_mbuf>, so it is a valid `struct rte_mbuf *[max]` for the PMD.
        let n = unsafe {
            sys::strait_eth_rx_burst(
                self.id,
                queue,
                out.as_mut_ptr().add(len).cast::<*mut sys::rte_mbuf>(),
                max as u16,
            )
        };
        let n = usize::from(n).min(max);
        // SAFETY: the PMD initialised the first n slots with non-null mbufs whose single
        // reference it hands to us.
        unsafe { out.set_len(len + n) };
        n
    }

    /// Transmits frames from the front of `frames` on `queue` (`rte_eth_tx_prepare`,
    /// then `rte_eth_tx_burst`); returns how many were sent. Sent frames are removed
    /// from the front of `frames` (the device owns them now); unsent ones stay for the
    /// caller to retry or drop. A frame `tx_prepare` rejects (malformed offload request)
    /// is dropped once every frame before it was sent, and counted in
    /// [`Port::tx_prepare_rejected`], so that it cannot block the queue.
    pub fn tx_prepare_and_burst(&self, queue: u16, frames: &mut Vec<Mbuf>) -> usize {
        if !self.started || frames.is_empty() {
            return 0;
        }
        let Some(_guard) = QueueGuard::try_lock(&self.tx_busy, queue) else {
            return 0;
        };
        let n = frames.len().min(usize::from(u16::MAX)) as u16;
        let ptr = frames.as_mut_ptr().cast::<*mut sys::rte_mbuf>();
        // SAFETY: the port is started and this thread alone uses `queue`; `ptr` points
        // at n valid mbufs we own (repr(transparent) Mbuf). tx_prepare may only edit
        // packet headers/metadata of frames that are ours to send.
        let prepared = unsafe { sys::strait_eth_tx_prepare(self.id, queue, ptr, n) };
        let rejected = prepared < n;
        let rejected_errno = if rejected {
            // SAFETY: reads this thread's rte_errno, set by tx_prepare.
            unsafe { sys::strait_rte_errno() }
        } else {
            0
        };
        // SAFETY: as above, for the first `prepared` frames. The PMD takes ownership of
        // the first `sent` of them.
        let sent = usize::from(unsafe { sys::strait_eth_tx_burst(self.id, queue, ptr, prepared) });
        for m in frames.drain(..sent) {
            // The device owns these now; do not free them.
            let _ = m.into_raw();
        }
        if rejected && sent == usize::from(prepared) && !frames.is_empty() {
            let bad = frames.remove(0);
            self.tx_prepare_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                port = self.id,
                queue,
                error = %DpdkError::from_errno("rte_eth_tx_prepare", rejected_errno),
                len = bad.len(),
                "frame rejected by tx_prepare; dropped"
            );
        }
        sent
    }

    /// Lets the PMD take back the mbufs of frames the device has finished sending on
    /// `queue` (an empty `rte_eth_tx_burst`: `net_af_xdp` reaps its completion ring there,
    /// other PMDs on their next burst). Used at shutdown, so that the pool is counted with
    /// nothing in flight.
    pub fn reap_tx(&self, queue: u16) {
        if !self.started {
            return;
        }
        let Some(_guard) = QueueGuard::try_lock(&self.tx_busy, queue) else {
            return;
        };
        let mut none: [*mut sys::rte_mbuf; 1] = [std::ptr::null_mut()];
        // SAFETY: the port is started and this thread alone uses `queue` (guard); with a
        // count of zero the PMD reads no mbuf pointer from the array.
        let _ = unsafe { sys::strait_eth_tx_burst(self.id, queue, none.as_mut_ptr(), 0) };
    }

    /// Basic counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port, valid out-pointer.
        let rc = unsafe { sys::rte_eth_stats_get(self.id, &mut s) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eth_stats_get", rc));
        }
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Extended (driver-specific) counters, by name.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        // SAFETY: a NULL array with size 0 asks for the number of counters.
        let count = unsafe { sys::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0) };
        if count < 0 {
            return Err(DpdkError::from_errno("rte_eth_xstats_get_names", count));
        }
        let n = count as usize;
        let mut names = vec![sys::rte_eth_xstat_name::default(); n];
        // SAFETY: `names` has room for n entries.
        let got = unsafe { sys::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), n as u32) };
        if got < 0 {
            return Err(DpdkError::from_errno("rte_eth_xstats_get_names", got));
        }
        let mut values = vec![sys::rte_eth_xstat::default(); n];
        // SAFETY: `values` has room for n entries.
        let got_v = unsafe { sys::rte_eth_xstats_get(self.id, values.as_mut_ptr(), n as u32) };
        if got_v < 0 {
            return Err(DpdkError::from_errno("rte_eth_xstats_get", got_v));
        }
        let got = (got as usize).min(n);
        let got_v = (got_v as usize).min(n);
        Ok(values[..got_v]
            .iter()
            .filter_map(|x| {
                let name = names[..got].get(usize::try_from(x.id).ok()?)?;
                Some((c_chars_to_string(&name.name), x.value))
            })
            .collect())
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if self.started {
            // SAFETY: we own the port; &mut self excludes concurrent bursts.
            let rc = unsafe { sys::rte_eth_dev_stop(self.id) };
            if rc < 0 {
                tracing::warn!(port = self.id, error = %DpdkError::from_errno("rte_eth_dev_stop", rc), "stop failed");
            }
        }
        // SAFETY: the port is stopped and owned by self; closing releases its queues and
        // returns their mbufs to the pool, which self.pool still keeps alive.
        let rc = unsafe { sys::rte_eth_dev_close(self.id) };
        if rc < 0 {
            tracing::warn!(port = self.id, error = %DpdkError::from_errno("rte_eth_dev_close", rc), "close failed");
        }
        CLAIMED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        release_object();
    }
}

/// Holds a queue's busy flag for the duration of a burst.
struct QueueGuard<'a>(&'a AtomicBool);

impl<'a> QueueGuard<'a> {
    fn try_lock(flags: &'a [AtomicBool], queue: u16) -> Option<Self> {
        let flag = flags.get(usize::from(queue))?;
        flag.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(QueueGuard(flag))
    }
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn c_chars_to_string(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offload_names_follow_the_fields() {
        assert_eq!(Offloads::ALL.names().collect::<Vec<_>>(), Offloads::NAMES);
        assert_eq!(Offloads::NONE.names().count(), 0);
        let some = Offloads { tso: true, rx_cksum: true, ..Offloads::NONE };
        assert_eq!(some.names().collect::<Vec<_>>(), ["tso", "rx-cksum"]);
    }

    #[test]
    fn rss_key_is_symmetric_pattern() {
        let k = symmetric_rss_key(40);
        assert_eq!(k.len(), 40);
        assert!(k.chunks(2).all(|c| c == [0x6d, 0x5a]));
        assert_eq!(symmetric_rss_key(52).len(), 52);
    }

    #[test]
    fn queue_guard_excludes_a_second_user() {
        let flags: Box<[AtomicBool]> = (0..2).map(|_| AtomicBool::new(false)).collect();
        let g = QueueGuard::try_lock(&flags, 0);
        assert!(g.is_some());
        assert!(QueueGuard::try_lock(&flags, 0).is_none());
        assert!(QueueGuard::try_lock(&flags, 1).is_some());
        assert!(
            QueueGuard::try_lock(&flags, 2).is_none(),
            "out of range queue"
        );
        drop(g);
        assert!(QueueGuard::try_lock(&flags, 0).is_some());
    }

    #[test]
    fn port_calls_without_eal_fail_cleanly() {
        assert_eq!(Port::count(), 0);
        assert_eq!(Port::by_name("net_null0"), Err(DpdkError::EalNotRunning));
    }

    #[test]
    fn xstat_names_stop_at_nul() {
        let mut raw = [0 as std::ffi::c_char; 8];
        for (i, b) in b"rx_q0".iter().enumerate() {
            raw[i] = *b as std::ffi::c_char;
        }
        assert_eq!(c_chars_to_string(&raw), "rx_q0");
    }
}
