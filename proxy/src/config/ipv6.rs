//! IPv6 on a port: `ipv6 = "2001:db8::2/64"` and `ipv6_gateway = "fe80::1"` beside `ipv4`,
//! `ipv6_accept_ra` (default true, as Linux's `accept_ra` on a host: default routers and
//! on-link prefixes from router advertisements) and `ipv6_dad_transmits` (default 1, 0 to
//! use the addresses without duplicate address detection), parsed and checked here with
//! errors naming the key (issue 18). The link-local address
//! is always derived from the MAC (RFC 4291 App. A), so it is never configured; a
//! link-local gateway needs no scope (the port is its link).

use std::net::Ipv6Addr;
use std::str::FromStr;

use dataplane::net::Ipv6Config;

use super::raw::{Errors, Table};

/// IPv6's minimum link MTU (RFC 8200 §5).
pub(crate) const MIN_MTU: u16 = 1280;

/// Parses `addr/len` (len 1..=128) into an address a port can have: global or unique
/// local unicast, not unspecified, loopback, multicast, link-local (derived from the MAC,
/// never configured), IPv4-mapped or the subnet-router anycast address of its prefix
/// (RFC 4291 §2.6.1, all host bits zero, on prefixes shorter than /127).
pub(crate) fn ipv6_with_prefix(s: &str) -> Result<(Ipv6Addr, u8), String> {
    let bad = || format!("{s:?} is not an IPv6 address with prefix (expected e.g. \"2001:db8::2/64\")");
    let (addr, len) = s.split_once('/').ok_or_else(bad)?;
    let addr = Ipv6Addr::from_str(addr).map_err(|_| bad())?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    if !(1..=128).contains(&len) {
        return Err(format!("{s:?}: prefix length {len} is out of range (must be 1..=128)"));
    }
    unicast(addr).map_err(|why| format!("{s:?}: {why}"))?;
    if dataplane::wire::ipv6::addr::is_link_local(addr) {
        return Err(format!(
            "{s:?}: a link-local address is derived from the port's MAC; configure a global or unique-local one"
        ));
    }
    if len < 127 && host_bits(addr, len) == 0 {
        return Err(format!("{s:?}: {addr} is the subnet-router anycast address of its /{len} prefix"));
    }
    Ok((addr, len))
}

/// Whether `a` can be a unicast host's address or a router's.
fn unicast(a: Ipv6Addr) -> Result<(), String> {
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.to_ipv4_mapped().is_some() {
        return Err(format!("{a} is not a unicast host address"));
    }
    Ok(())
}

fn host_bits(a: Ipv6Addr, len: u8) -> u128 {
    let bits = u128::from(a);
    if len >= 128 {
        0
    } else {
        bits & (u128::MAX >> len)
    }
}

/// The IPv6 settings of the port table `t` (`None` when it has none), with `mtu` its MTU
/// when that parsed; every mistake is recorded under its key.
pub(crate) fn port(t: &Table<'_>, mtu: Option<u16>, errs: &mut Errors) -> Option<Ipv6Config> {
    let addr = t.string("ipv6", errs).and_then(|s| match ipv6_with_prefix(&s) {
        Ok(a) => Some(a),
        Err(why) => t.fail(errs, "ipv6", why),
    });
    let gateway = t.string("ipv6_gateway", errs).and_then(|s| match Ipv6Addr::from_str(s.trim()) {
        Ok(gw) => Some(gw),
        Err(_) => t.fail(errs, "ipv6_gateway", format!("{s:?} is not an IPv6 address (e.g. \"fe80::1\")")),
    });
    let accept_ra = t.bool_or("ipv6_accept_ra", true, errs);
    // Linux caps nothing; ten probes is ten seconds before the port serves IPv6.
    let dad_transmits = t.uint_or("ipv6_dad_transmits", u32::from(dataplane::net::dad::DEFAULT_TRANSMITS), 0, 10, errs);
    if t.get("ipv6").is_none() {
        for key in ["ipv6_gateway", "ipv6_accept_ra", "ipv6_dad_transmits"] {
            if t.get(key).is_some() {
                t.fail::<()>(errs, key, "needs `ipv6` (the port's IPv6 address and prefix)");
            }
        }
        return None;
    }
    let (ip, len) = addr?;
    if let Some(gw) = gateway {
        let link_local = dataplane::wire::ipv6::addr::is_link_local(gw);
        if let Err(why) = unicast(gw) {
            t.fail::<()>(errs, "ipv6_gateway", why);
        } else if gw == ip {
            t.fail::<()>(errs, "ipv6_gateway", format!("{gw} is the port's own address"));
        } else if !link_local && !dataplane::wire::ipv6::addr::same_prefix(ip, gw, len) {
            // RFC 4861 §8: routers are on-link; a global one must be on the port's prefix
            // (a link-local one always is, the port being its scope).
            t.fail::<()>(errs, "ipv6_gateway", format!("{gw} is not inside the port's prefix {ip}/{len} (nor link-local)"));
        }
    }
    // RFC 8200 §5: every link carrying IPv6 has an MTU of at least 1280.
    if let Some(m) = mtu {
        if m < MIN_MTU {
            t.fail::<()>(errs, "mtu", format!("{m} is below IPv6's minimum MTU of {MIN_MTU} (the port has `ipv6`)"));
        }
    }
    Some(Ipv6Config {
        addr: Some(ip),
        prefix_len: len,
        gateway,
        dad_transmits: u8::try_from(dad_transmits?).unwrap_or(u8::MAX),
        accept_ra: accept_ra?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn addresses_with_prefix() {
        assert_eq!(ipv6_with_prefix("2001:db8::2/64"), Ok((a("2001:db8::2"), 64)));
        assert_eq!(ipv6_with_prefix("fd00::1/128"), Ok((a("fd00::1"), 128)));
        assert_eq!(ipv6_with_prefix("2001:db8::/127"), Ok((a("2001:db8::"), 127)), "RFC 6164 point-to-point");
        for (bad, why) in [
            ("2001:db8::2", "not an IPv6 address with prefix"),
            ("2001:db8::2/", "not an IPv6 address with prefix"),
            ("2001:db8::2/x", "not an IPv6 address with prefix"),
            ("198.18.0.2/24", "not an IPv6 address with prefix"),
            ("2001:db8::2/0", "out of range (must be 1..=128)"),
            ("2001:db8::2/129", "out of range (must be 1..=128)"),
            ("::/64", "not a unicast host address"),
            ("::1/128", "not a unicast host address"),
            ("ff02::1/64", "not a unicast host address"),
            ("::ffff:198.18.0.2/96", "not a unicast host address"),
            ("fe80::2/64", "link-local address is derived"),
            ("2001:db8::/64", "subnet-router anycast"),
        ] {
            let e = ipv6_with_prefix(bad).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
