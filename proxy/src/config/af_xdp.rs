//! `net_af_xdp` ports: the device arguments of DPDK 22.11's AF_XDP PMD
//! (`drivers/net/af_xdp/rte_eth_af_xdp.c`, `doc/guides/nics/af_xdp.rst`), checked before
//! DPDK sees them, with an error that names the argument. docs/af_xdp.md says what each
//! one does and what the PMD needs from the host.

use super::Device;

/// Bytes of each mbuf's data room Strait creates (`run::MBUF_DATA_ROOM`, 2048 + 128).
const MBUF_DATA_ROOM: u32 = 2048 + 128;
/// `RTE_PKTMBUF_HEADROOM`: the PMD registers the UMEM with this headroom per frame...
const PKTMBUF_HEADROOM: u32 = 128;
/// ...and the kernel puts `XDP_PACKET_HEADROOM` more in front of every received frame.
const XDP_PACKET_HEADROOM: u32 = 256;
/// Ethernet header and one VLAN tag: what a frame adds to the IP MTU.
const L2_OVERHEAD: u32 = 14 + 4;

/// The largest IP MTU an AF_XDP port can receive into Strait's mbufs: the data room
/// less the mbuf headroom, the XDP headroom and the link header (1774).
pub const MAX_MTU: u16 = (MBUF_DATA_ROOM - PKTMBUF_HEADROOM - XDP_PACKET_HEADROOM - L2_OVERHEAD) as u16;

/// The device arguments of an AF_XDP port, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfXdpArgs {
    /// The kernel interface (`iface`), required.
    pub iface: String,
    /// First queue of the interface used (`start_queue`, default 0).
    pub start_queue: u32,
    /// Queues used from `start_queue` on (`queue_count`, default 1): one per lcore.
    pub queue_count: u32,
    /// A custom XDP program (`xdp_prog`): an object file with a map named `xsks_map`.
    pub xdp_prog: Option<String>,
}

/// Whether `device` is an AF_XDP vdev (`net_af_xdp<N>[,...]`).
pub fn is_af_xdp(device: &Device) -> bool {
    match device {
        Device::Vdev(s) => s.split(',').next().is_some_and(|n| n.starts_with("net_af_xdp")),
        Device::Pci(_) => false,
    }
}

/// Checks the arguments of the AF_XDP vdev `vdev` (already syntactically a vdev) for a
/// port of IP MTU `mtu`.
pub fn check(vdev: &str, mtu: u16) -> Result<AfXdpArgs, String> {
    let mut iface = None;
    let mut start_queue = 0;
    let mut queue_count = 1;
    let mut xdp_prog = None;
    for kv in vdev.split(',').skip(1) {
        let Some((key, value)) = kv.split_once('=') else {
            return Err(format!("{kv:?} is not key=value"));
        };
        let number = |max: u32| -> Result<u32, String> {
            value
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{key}={value:?}: expected a whole number from 0 to {max}"))
        };
        let flag = || -> Result<(), String> {
            match value {
                "0" | "1" => Ok(()),
                _ => Err(format!("{key}={value:?}: expected 0 or 1")),
            }
        };
        match key {
            "iface" => {
                // Linux IFNAMSIZ is 16 with the NUL; dev_valid_name refuses '/', ':' and spaces.
                if value.len() > 15 || value.bytes().any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace()) {
                    return Err(format!("iface={value:?} is not a Linux interface name (at most 15 characters, no '/', ':' or spaces)"));
                }
                iface = Some(value.to_string());
            }
            "start_queue" => start_queue = number(1023)?,
            "queue_count" => {
                queue_count = number(1024)?;
                if queue_count == 0 {
                    return Err("queue_count=0: at least one queue".to_string());
                }
            }
            // 0 turns preferred busy polling off (kernel >= 5.11 for anything else).
            "busy_budget" => {
                number(u32::from(u16::MAX))?;
            }
            "force_copy" | "shared_umem" => flag()?,
            "xdp_prog" => xdp_prog = Some(value.to_string()),
            _ => {
                return Err(format!(
                    "unknown argument {key:?}; net_af_xdp (DPDK 22.11) takes iface, start_queue, queue_count, busy_budget, force_copy, shared_umem, xdp_prog"
                ))
            }
        }
    }
    let Some(iface) = iface else {
        return Err("net_af_xdp needs iface=<kernel interface>".to_string());
    };
    if mtu > MAX_MTU {
        return Err(format!(
            "mtu {mtu} is above {MAX_MTU}, the most an AF_XDP port receives into Strait's 2048-byte mbufs (the kernel reserves {XDP_PACKET_HEADROOM} bytes of each for XDP)"
        ));
    }
    Ok(AfXdpArgs { iface, start_queue, queue_count, xdp_prog })
}

/// The DPDK devices that make up an AF_XDP port of `vdev`: one per queue, each with
/// `queue_count=1` on its own `start_queue` (the first keeps the configured instance name,
/// the others add `_q<i>`). DPDK 22.11's PMD accepts `queue_count` > 1 only where the
/// interface reports combined channels (`xdp_get_channels_info`), which a veth and some
/// NIC drivers do not (they report RX and TX channels); one device per queue works on
/// all of them, and gives each lcore a port of its own. Arguments other than the queue
/// ones are kept.
pub fn queue_vdevs(vdev: &str) -> Vec<String> {
    let mut parts = vdev.split(',');
    let name = parts.next().unwrap_or_default();
    let mut start = 0u32;
    let mut count = 1u32;
    let mut rest = Vec::new();
    for kv in parts {
        match kv.split_once('=') {
            Some(("start_queue", v)) => start = v.parse().unwrap_or(0),
            Some(("queue_count", v)) => count = v.parse().unwrap_or(1),
            _ => rest.push(kv),
        }
    }
    if count <= 1 {
        return vec![vdev.to_string()];
    }
    (0..count)
        .map(|i| {
            let instance = if i == 0 { name.to_string() } else { format!("{name}_q{i}") };
            let mut args = vec![instance];
            args.extend(rest.iter().map(|s| s.to_string()));
            args.push(format!("start_queue={}", start + i));
            args.push("queue_count=1".to_string());
            args.join(",")
        })
        .collect()
}

/// What to check on this host before DPDK opens the port: the interface exists in this
/// network namespace and has the queues asked for, and a custom XDP program can be read.
pub fn check_host(args: &AfXdpArgs) -> Result<(), String> {
    let dir = std::path::Path::new("/sys/class/net").join(&args.iface);
    if !dir.exists() {
        return Err(format!("interface {:?} does not exist in this network namespace", args.iface));
    }
    // The PMD opens one AF_XDP socket per queue, on RX queues start_queue.. of the interface.
    if let Ok(entries) = std::fs::read_dir(dir.join("queues")) {
        let rx = entries.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with("rx-")).count();
        let want = (args.start_queue + args.queue_count) as usize;
        if rx > 0 && want > rx {
            return Err(format!(
                "interface {:?} has {rx} RX queue(s); start_queue={} queue_count={} needs {want} (ethtool -L {} combined {want}, or for a veth: ip link add ... numrxqueues {want} numtxqueues {want})",
                args.iface, args.start_queue, args.queue_count, args.iface
            ));
        }
    }
    if let Some(prog) = &args.xdp_prog {
        std::fs::File::open(prog).map_err(|e| format!("xdp_prog {prog:?} cannot be read: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_every_argument() {
        let a = check("net_af_xdp0,iface=veth0", 1500).unwrap();
        assert_eq!(a, AfXdpArgs { iface: "veth0".into(), start_queue: 0, queue_count: 1, xdp_prog: None });
        let a = check("net_af_xdp1,iface=ens5,start_queue=2,queue_count=4,busy_budget=0,force_copy=1,shared_umem=0,xdp_prog=/x.o", 1500)
            .unwrap();
        assert_eq!((a.start_queue, a.queue_count, a.xdp_prog.as_deref()), (2, 4, Some("/x.o")));
    }

    #[test]
    fn errors_name_the_argument() {
        let err = |s: &str| check(s, 1500).unwrap_err();
        assert!(err("net_af_xdp0").contains("iface="));
        assert!(err("net_af_xdp0,iface=v,queue_count=0").contains("queue_count"));
        assert!(err("net_af_xdp0,iface=v,queue_count=x").contains("queue_count=\"x\""));
        assert!(err("net_af_xdp0,iface=v,force_copy=2").contains("force_copy"));
        assert!(err("net_af_xdp0,iface=v,busy_budget=-1").contains("busy_budget"));
        assert!(err("net_af_xdp0,iface=v,use_cni=1").contains("unknown argument \"use_cni\""));
        assert!(err("net_af_xdp0,iface=a/b").contains("interface name"));
        assert!(err("net_af_xdp0,iface=abcdefghijklmnopq").contains("interface name"));
    }

    #[test]
    fn mtu_is_bounded_by_the_mbuf_and_xdp_headroom() {
        assert_eq!(MAX_MTU, 1774);
        assert!(check("net_af_xdp0,iface=v", MAX_MTU).is_ok());
        assert!(check("net_af_xdp0,iface=v", MAX_MTU + 1).unwrap_err().contains("mtu 1775"));
    }

    #[test]
    fn several_queues_become_one_device_each() {
        assert_eq!(queue_vdevs("net_af_xdp0,iface=v"), vec!["net_af_xdp0,iface=v"]);
        assert_eq!(queue_vdevs("net_af_xdp0,iface=v,queue_count=1"), vec!["net_af_xdp0,iface=v,queue_count=1"]);
        assert_eq!(
            queue_vdevs("net_af_xdp1,iface=v,start_queue=2,queue_count=3,busy_budget=0"),
            vec![
                "net_af_xdp1,iface=v,busy_budget=0,start_queue=2,queue_count=1",
                "net_af_xdp1_q1,iface=v,busy_budget=0,start_queue=3,queue_count=1",
                "net_af_xdp1_q2,iface=v,busy_budget=0,start_queue=4,queue_count=1",
            ]
        );
        for v in queue_vdevs("net_af_xdp0,iface=v,queue_count=2") {
            assert!(crate::config::parse::vdev(&v).is_ok(), "{v} is a valid vdev");
        }
    }

    #[test]
    fn af_xdp_devices_are_recognised() {
        assert!(is_af_xdp(&Device::Vdev("net_af_xdp0,iface=v".into())));
        assert!(!is_af_xdp(&Device::Vdev("net_tap0".into())));
        assert!(!is_af_xdp(&Device::Vdev("net_af_packet0,iface=v".into())));
        assert!(!is_af_xdp(&Device::Pci("0000:00:04.0".into())));
    }

    #[test]
    fn host_check_finds_missing_interfaces() {
        let a = check("net_af_xdp0,iface=nosuchif0", 1500).unwrap();
        assert!(check_host(&a).unwrap_err().contains("does not exist"));
        let lo = check("net_af_xdp0,iface=lo,queue_count=64", 1500).unwrap();
        // lo has one RX queue where sysfs lists it.
        if std::path::Path::new("/sys/class/net/lo/queues/rx-0").exists() {
            assert!(check_host(&lo).unwrap_err().contains("RX queue"));
        }
        let prog = check("net_af_xdp0,iface=lo,xdp_prog=/nonexistent/prog.o", 1500).unwrap();
        if std::path::Path::new("/sys/class/net/lo").exists() {
            assert!(check_host(&prog).unwrap_err().contains("xdp_prog"));
        }
    }
}
