//! IPv6 on ports (`ipv6`, `ipv6_gateway`) and services listening on IPv6 (issue 18): every
//! mistake is reported under its key.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::*;

const V6_PORT: &str = r#"
[[port]]
name = "tap0"
device = "net_tap0,iface=strait0"
ipv4 = "198.18.0.2/24"
ipv6 = "2001:db8::2/64"
"#;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn a_port_takes_ipv6_beside_ipv4() {
    let cfg = ok(&format!("{V6_PORT}ipv6_gateway = \"fe80::1\"\n"));
    let v6 = cfg.ports[0].ipv6.unwrap_or_else(|| panic!("ipv6 set"));
    assert_eq!((v6.addr, v6.prefix_len, v6.gateway), (Some(a("2001:db8::2")), 64, Some(a("fe80::1"))));
    assert_eq!(cfg.ports[0].port_spec().ipv6, Some(v6), "the port's runtime spec carries it");
    // A gateway on the prefix is fine too; without `ipv6` the port is IPv4-only.
    let cfg = ok(&format!("{V6_PORT}ipv6_gateway = \"2001:db8::1\"\n"));
    assert_eq!(cfg.ports[0].ipv6.and_then(|v| v.gateway), Some(a("2001:db8::1")));
    assert_eq!(ok(PORT).ports[0].ipv6, None);
}

#[test]
fn ipv6_mistakes_name_the_key() {
    let port = |extra: &str| format!("[[port]]\nname = \"tap0\"\ndevice = \"net_tap0,iface=strait0\"\nipv4 = \"198.18.0.2/24\"\n{extra}\n");
    one_error(&port("ipv6 = \"2001:db8::2/129\""), "port[0].ipv6", "out of range (must be 1..=128)");
    one_error(&port("ipv6 = \"2001:db8::2/0\""), "port[0].ipv6", "out of range");
    one_error(&port("ipv6 = \"2001:db8::2\""), "port[0].ipv6", "not an IPv6 address with prefix");
    one_error(&port("ipv6 = \"ff02::1/64\""), "port[0].ipv6", "not a unicast host address");
    one_error(&port("ipv6 = \"fe80::2/64\""), "port[0].ipv6", "link-local address is derived");
    one_error(&port("ipv6 = \"2001:db8::2/64\"\nipv6_gateway = \"2001:db9::1\""), "port[0].ipv6_gateway", "not inside the port's prefix");
    one_error(&port("ipv6 = \"2001:db8::2/64\"\nipv6_gateway = \"2001:db8::2\""), "port[0].ipv6_gateway", "the port's own address");
    one_error(&port("ipv6 = \"2001:db8::2/64\"\nipv6_gateway = \"ff02::2\""), "port[0].ipv6_gateway", "not a unicast host address");
    one_error(&port("ipv6 = \"2001:db8::2/64\"\nipv6_gateway = \"fe80::1%2\""), "port[0].ipv6_gateway", "not an IPv6 address");
    one_error(&port("ipv6_gateway = \"fe80::1\""), "port[0].ipv6_gateway", "needs `ipv6`");
    // RFC 8200 §5: 1280 at least, when the port carries IPv6 (576 is fine for IPv4 only).
    one_error(&port("ipv6 = \"2001:db8::2/64\"\nmtu = 1000"), "port[0].mtu", "below IPv6's minimum MTU of 1280");
    assert_eq!(ok(&port("mtu = 1000")).ports[0].mtu, 1000);
    assert_eq!(ok(&port("ipv6 = \"2001:db8::2/64\"\nmtu = 1280")).ports[0].mtu, 1280);
    one_error(&port("ipv6 = \"2001:db8::2/64\"\nipv6_gatway = \"fe80::1\""), "port[0].ipv6_gatway", "did you mean `ipv6_gateway`");
}

#[test]
fn router_advertisements_and_duplicate_detection_are_configurable() {
    let v6 = |toml: &str| ok(toml).ports[0].ipv6.unwrap_or_else(|| panic!("ipv6 set"));
    let d = v6(V6_PORT);
    assert_eq!((d.accept_ra, d.dad_transmits), (true, 1), "Linux's host defaults: accept_ra 1, dad_transmits 1");
    let d = v6(&format!("{V6_PORT}ipv6_accept_ra = false\nipv6_dad_transmits = 0\n"));
    assert_eq!((d.accept_ra, d.dad_transmits), (false, 0));
    assert_eq!(v6(&format!("{V6_PORT}ipv6_dad_transmits = 10\n")).dad_transmits, 10);
    one_error(&format!("{V6_PORT}ipv6_dad_transmits = 11\n"), "port[0].ipv6_dad_transmits", "out of range (must be 0..=10)");
    one_error(&format!("{V6_PORT}ipv6_accept_ra = \"yes\"\n"), "port[0].ipv6_accept_ra", "expected true or false");
    let port = "[[port]]\nname = \"tap0\"\ndevice = \"net_tap0,iface=strait0\"\nipv4 = \"198.18.0.2/24\"\n";
    one_error(&format!("{port}ipv6_accept_ra = true\n"), "port[0].ipv6_accept_ra", "needs `ipv6`");
    one_error(&format!("{port}ipv6_dad_transmits = 1\n"), "port[0].ipv6_dad_transmits", "needs `ipv6`");
}

#[test]
fn two_ports_cannot_share_an_ipv6_address() {
    let toml = format!(
        "{V6_PORT}\n[[port]]\nname = \"tap1\"\ndevice = \"net_tap1,iface=strait1\"\nipv4 = \"198.18.1.2/24\"\nipv6 = \"2001:db8::2/64\"\n"
    );
    one_error(&toml, "port[1].ipv6", "already used by port[0]");
}

/// `listen = "[2001:db8::2]:7"` (brackets as in a URL), `[::]` on a port with IPv6.
#[test]
fn services_listen_on_ipv6_in_brackets() {
    let app = |listen: &str| format!("{V6_PORT}\n[[app]]\nkind = \"echo\"\nlisten = \"{listen}\"\n");
    let cfg = ok(&app("[2001:db8::2]:7"));
    assert_eq!(cfg.apps[0].listen, SocketAddr::new(IpAddr::V6(a("2001:db8::2")), 7));
    assert_eq!(ok(&app("[::]:7")).apps[0].listen, SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 7));
    one_error(&app("[2001:db8::3]:7"), "app[0].listen", "2001:db8::3 is not the address of any port");
    one_error(&app("2001:db8::2:7"), "app[0].listen", "is not an address and port");
    one_error(&app("[2001:db8::2]:0"), "app[0].listen", "1..=65535");
    one_error(&app("[fe80::1%2]:7"), "app[0].listen", "no scope");
    // `[::]` needs a port with IPv6.
    one_error(
        &format!("{PORT}\n[[app]]\nkind = \"echo\"\nlisten = \"[::]:7\"\n"),
        "app[0].listen",
        "or use [::] on a port with `ipv6`",
    );
}

/// Proxy listeners and servers in either family: a v6 listener, a v6 server reached
/// from the port on its prefix (or through the IPv6 gateway), a v4 client to a v6 server.
#[test]
fn listeners_and_servers_in_either_family() {
    let two = format!(
        "{V6_PORT}\n[[port]]\nname = \"tap1\"\ndevice = \"net_tap1,iface=strait1\"\nipv4 = \"198.18.1.2/24\"\nipv6 = \"2001:db8:1::2/64\"\n"
    );
    let proxy = |listen: &str, server: &str| {
        format!("{two}\n[[pool]]\nname = \"web\"\nservers = [{{ addr = \"{server}\" }}]\n\n[[listener]]\nname = \"http\"\nlisten = \"{listen}\"\npool = \"web\"\n")
    };
    let cfg = ok(&proxy("[2001:db8::2]:80", "[2001:db8:1::1]:8080"));
    assert_eq!(cfg.listeners[0].listen, "[2001:db8::2]:80".parse().unwrap_or_else(|e| panic!("{e}")));
    let s = &cfg.pools[0].servers[0];
    assert_eq!(s.addr, "[2001:db8:1::1]:8080".parse().unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(s.local_ip, IpAddr::V6(a("2001:db8:1::2")), "the port on the server's prefix");
    // A v4 client to a v6 server, a v6 client to a v4 server.
    assert_eq!(ok(&proxy("198.18.0.2:80", "[2001:db8:1::1]:8080")).pools[0].servers[0].local_ip, IpAddr::V6(a("2001:db8:1::2")));
    assert!(ok(&proxy("[::]:80", "198.18.1.1:8080")).pools[0].servers[0].local_ip.is_ipv4());
    one_error(&proxy("[2001:db8::9]:80", "198.18.1.1:8080"), "listener[0].listen", "not the address of any port");
    // Off every prefix: through a router learnt from advertisements (the first port that
    // accepts them), unless no port does and none has a gateway.
    assert_eq!(ok(&proxy("[2001:db8::2]:80", "[2001:db9::1]:8080")).pools[0].servers[0].local_ip, IpAddr::V6(a("2001:db8::2")));
    let no_ra = proxy("[2001:db8::2]:80", "[2001:db9::1]:8080").replace("/64\"\n", "/64\"\nipv6_accept_ra = false\n");
    one_error(&no_ra, "pool[0].servers[0].addr", "no port has an ipv6_gateway or ipv6_accept_ra");
    one_error(&proxy("[2001:db8::2]:80", "[2001:db8:1::2]:8080"), "pool[0].servers[0].addr", "strait's own port address");
    one_error(&proxy("[2001:db8::2]:80", "[ff02::1]:8080"), "pool[0].servers[0].addr", "not a unicast host address");
    // Off-prefix through the IPv6 gateway.
    let gw = proxy("[2001:db8::2]:80", "[2001:db9::1]:8080").replacen("ipv6 = \"2001:db8::2/64\"", "ipv6 = \"2001:db8::2/64\"\nipv6_gateway = \"fe80::1\"", 1);
    assert_eq!(ok(&gw).pools[0].servers[0].local_ip, IpAddr::V6(a("2001:db8::2")));
}
