//! Parsers for the textual values in the configuration: IPv4 address/prefix, MAC
//! address, PCI address, DPDK vdev string, port name, and the host's online CPU list.
//! Each returns the reason on failure; the caller attaches the key path.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Parses `a.b.c.d/len` (len 1..=32) into a usable host address and its prefix length.
pub(crate) fn ipv4_with_prefix(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("{s:?} is not an IPv4 address with prefix (expected a.b.c.d/len)");
    let (addr, len) = s.split_once('/').ok_or_else(bad)?;
    let addr = Ipv4Addr::from_str(addr).map_err(|_| bad())?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    if !(1..=32).contains(&len) {
        return Err(format!(
            "{s:?}: prefix length {len} is out of range (must be 1..=32)"
        ));
    }
    host_address(addr, len).map_err(|why| format!("{s:?}: {why}"))?;
    Ok((addr, len))
}

/// Parses a plain dotted-quad IPv4 address.
pub(crate) fn ipv4(s: &str) -> Result<Ipv4Addr, String> {
    Ipv4Addr::from_str(s).map_err(|_| format!("{s:?} is not an IPv4 address (expected a.b.c.d)"))
}

/// The network mask for a prefix length (0..=32).
pub(crate) fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    }
}

/// Whether `other` is inside `addr/prefix_len`.
pub(crate) fn same_subnet(addr: Ipv4Addr, prefix_len: u8, other: Ipv4Addr) -> bool {
    let m = mask(prefix_len);
    u32::from(addr) & m == u32::from(other) & m
}

/// Checks that `addr` can be an interface's (or gateway's) unicast address in
/// `addr/prefix_len`: not unspecified, loopback, multicast or limited broadcast, and —
/// on subnets with room for them (prefix <= 30, RFC 3021 exempts /31) — not the
/// subnet's network or directed-broadcast address (RFC 1122 §3.2.1.3).
pub(crate) fn host_address(addr: Ipv4Addr, prefix_len: u8) -> Result<(), String> {
    if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || addr.is_broadcast() {
        return Err(format!("{addr} is not a unicast host address"));
    }
    if prefix_len <= 30 {
        let m = mask(prefix_len);
        let a = u32::from(addr);
        if a & !m == 0 {
            return Err(format!(
                "{addr} is the network address of its /{prefix_len} subnet"
            ));
        }
        if a & !m == !m {
            return Err(format!(
                "{addr} is the broadcast address of its /{prefix_len} subnet"
            ));
        }
    }
    Ok(())
}

/// Parses `xx:xx:xx:xx:xx:xx` into a unicast, non-zero MAC address.
pub(crate) fn mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("{s:?} is not a MAC address (expected xx:xx:xx:xx:xx:xx)");
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut out {
        let part = parts.next().ok_or_else(bad)?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    // IEEE 802: the I/G bit (LSB of the first octet) set means a group address.
    if out[0] & 1 != 0 {
        return Err(format!(
            "{s:?} is a multicast/broadcast MAC address (the port needs a unicast one)"
        ));
    }
    if out == [0; 6] {
        return Err(format!("{s:?} is the all-zero MAC address"));
    }
    Ok(out)
}

/// Whether `s` is a full PCI address `DDDD:BB:DD.F` (hex domain, bus, device <= 0x1f,
/// function 0..=7).
pub(crate) fn is_pci_address(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 12 || b[4] != b':' || b[7] != b':' || b[10] != b'.' {
        return false;
    }
    let hex = |r: std::ops::Range<usize>| {
        s.get(r)
            .filter(|p| p.bytes().all(|c| c.is_ascii_hexdigit()))
    };
    let (Some(_domain), Some(_bus), Some(dev), Some(func)) =
        (hex(0..4), hex(5..7), hex(8..10), s.get(11..12))
    else {
        return false;
    };
    let dev_ok = u8::from_str_radix(dev, 16).is_ok_and(|d| d <= 0x1f);
    let func_ok = func.parse::<u8>().is_ok_and(|f| f <= 7);
    dev_ok && func_ok
}

/// Checks a DPDK virtual device string: `net_<driver><instance>[,key=value...]`.
pub(crate) fn vdev(s: &str) -> Result<(), String> {
    let (name, args) = match s.split_once(',') {
        Some((n, a)) => (n, Some(a)),
        None => (s, None),
    };
    let driver = name.strip_prefix("net_").unwrap_or("");
    if driver.is_empty()
        || !driver
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "{s:?}: vdev name {name:?} must be `net_` followed by a driver and instance (e.g. net_tap0)"
        ));
    }
    if let Some(args) = args {
        for kv in args.split(',') {
            let ok = kv.split_once('=').is_some_and(|(k, v)| {
                !k.is_empty()
                    && !v.is_empty()
                    && !kv
                        .bytes()
                        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            });
            if !ok {
                return Err(format!("{s:?}: vdev argument {kv:?} is not key=value"));
            }
        }
    }
    Ok(())
}

/// Checks a port name: 1..=32 characters of `[a-z0-9_-]`.
pub(crate) fn port_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 32 {
        return Err(format!("{s:?} must be 1 to 32 characters long"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!("{s:?} may only contain a-z, 0-9, `_` and `-`"));
    }
    Ok(())
}

/// A set of CPU ids, as in `/sys/devices/system/cpu/online` (`0-3,6,8-9`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSet(Vec<u32>);

impl CpuSet {
    /// The CPUs online on this machine: `/sys/devices/system/cpu/online`, falling back to
    /// `0..available_parallelism` when that cannot be read.
    pub fn online() -> CpuSet {
        std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let n = std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1);
                CpuSet((0..u32::try_from(n).unwrap_or(1)).collect())
            })
    }

    /// Builds a set from ids (sorted, deduplicated).
    pub fn from_ids(ids: impl IntoIterator<Item = u32>) -> CpuSet {
        let mut v: Vec<u32> = ids.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        CpuSet(v)
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: u32) -> bool {
        self.0.binary_search(&cpu).is_ok()
    }
}

impl FromStr for CpuSet {
    type Err = String;

    fn from_str(s: &str) -> Result<CpuSet, String> {
        let mut ids = Vec::new();
        for part in s.trim().split(',').filter(|p| !p.is_empty()) {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let lo: u32 = lo
                .trim()
                .parse()
                .map_err(|_| format!("bad CPU list {s:?}"))?;
            let hi: u32 = hi
                .trim()
                .parse()
                .map_err(|_| format!("bad CPU list {s:?}"))?;
            if lo > hi || hi - lo > 65_536 {
                return Err(format!("bad CPU range {part:?}"));
            }
            ids.extend(lo..=hi);
        }
        if ids.is_empty() {
            return Err(format!("empty CPU list {s:?}"));
        }
        Ok(CpuSet::from_ids(ids))
    }
}

impl fmt::Display for CpuSet {
    /// Compact range form: `0-3,6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_prefix_accepts_hosts_and_rejects_junk() {
        assert_eq!(
            ipv4_with_prefix("198.18.0.2/24"),
            Ok((Ipv4Addr::new(198, 18, 0, 2), 24))
        );
        assert_eq!(
            ipv4_with_prefix("10.0.0.1/32"),
            Ok((Ipv4Addr::new(10, 0, 0, 1), 32))
        );
        for bad in [
            "198.18.0.300/24",
            "198.18.0.2",
            "198.18.0.2/",
            "198.18.0.2/+4",
            "x/24",
            "1.2.3/24",
        ] {
            let e = ipv4_with_prefix(bad).unwrap_err();
            assert!(e.contains("expected a.b.c.d/len"), "{bad}: {e}");
        }
        assert!(ipv4_with_prefix("198.18.0.2/33")
            .unwrap_err()
            .contains("out of range"));
        assert!(ipv4_with_prefix("198.18.0.2/0")
            .unwrap_err()
            .contains("out of range"));
    }

    #[test]
    fn ipv4_prefix_rejects_non_host_addresses() {
        assert!(ipv4_with_prefix("198.18.0.0/24")
            .unwrap_err()
            .contains("network address"));
        assert!(ipv4_with_prefix("198.18.0.255/24")
            .unwrap_err()
            .contains("broadcast address"));
        assert!(ipv4_with_prefix("224.0.0.1/24")
            .unwrap_err()
            .contains("not a unicast"));
        assert!(ipv4_with_prefix("127.0.0.1/8")
            .unwrap_err()
            .contains("not a unicast"));
        assert!(ipv4_with_prefix("0.0.0.0/8")
            .unwrap_err()
            .contains("not a unicast"));
        // RFC 3021: both addresses of a /31 are hosts.
        assert!(ipv4_with_prefix("10.0.0.0/31").is_ok());
    }

    #[test]
    fn subnet_membership() {
        let a = Ipv4Addr::new(198, 18, 0, 2);
        assert!(same_subnet(a, 24, Ipv4Addr::new(198, 18, 0, 1)));
        assert!(!same_subnet(a, 24, Ipv4Addr::new(198, 18, 1, 1)));
        assert!(same_subnet(a, 16, Ipv4Addr::new(198, 18, 1, 1)));
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(mac("02:00:00:00:00:01"), Ok([2, 0, 0, 0, 0, 1]));
        assert_eq!(mac("02:AB:cd:00:00:ff"), Ok([2, 0xab, 0xcd, 0, 0, 0xff]));
        for bad in [
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "2:00:00:00:00:01",
            "02-00-00-00-00-01",
            "zz:00:00:00:00:01",
        ] {
            assert!(mac(bad).unwrap_err().contains("not a MAC address"), "{bad}");
        }
        assert!(mac("01:00:5e:00:00:01").unwrap_err().contains("multicast"));
        assert!(mac("ff:ff:ff:ff:ff:ff").unwrap_err().contains("multicast"));
        assert!(mac("00:00:00:00:00:00").unwrap_err().contains("all-zero"));
    }

    #[test]
    fn pci_addresses() {
        assert!(is_pci_address("0000:01:00.0"));
        assert!(is_pci_address("0000:af:1f.7"));
        assert!(!is_pci_address("01:00.0"));
        assert!(!is_pci_address("0000:01:20.0"), "device > 0x1f");
        assert!(!is_pci_address("0000:01:00.8"), "function > 7");
        assert!(!is_pci_address("0000:0g:00.0"));
        assert!(!is_pci_address("0000-01:00.0"));
    }

    #[test]
    fn vdev_strings() {
        assert!(vdev("net_tap0,iface=strait0").is_ok());
        assert!(vdev("net_af_packet0,iface=eth0,qpairs=2").is_ok());
        assert!(vdev("net_null0").is_ok());
        assert!(vdev("net_").is_err());
        assert!(vdev("net_Tap0").is_err());
        assert!(vdev("net_tap0,iface").unwrap_err().contains("key=value"));
        assert!(vdev("net_tap0,iface=a b").is_err());
        assert!(vdev("net_tap0,").is_err());
    }

    #[test]
    fn port_names() {
        assert!(port_name("tap0").is_ok());
        assert!(port_name("wan-1_a").is_ok());
        assert!(port_name("").is_err());
        assert!(port_name("Tap0").is_err());
        assert!(port_name("a b").is_err());
        assert!(port_name(&"a".repeat(33)).is_err());
        assert!(port_name(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn cpu_lists_round_trip() {
        let s: CpuSet = "0-3,6,8-9\n".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(s.contains(0) && s.contains(3) && s.contains(6) && s.contains(9));
        assert!(!s.contains(4) && !s.contains(7) && !s.contains(10));
        assert_eq!(s.to_string(), "0-3,6,8-9");
        assert_eq!(CpuSet::from_ids([1]).to_string(), "1");
        assert!("".parse::<CpuSet>().is_err());
        assert!("3-1".parse::<CpuSet>().is_err());
        assert!("a".parse::<CpuSet>().is_err());
    }

    #[test]
    fn this_machine_has_cpu_zero() {
        assert!(CpuSet::online().contains(0));
    }
}
