//! From the validated configuration to what the data plane takes: the whole data plane
//! ([`RuntimeSpec`]: EAL arguments, pool, ports, lcores, TCP, services), the proxy's
//! listeners and pools ([`ProxySpec`]), its health checks and access log ([`OpsSpec`]),
//! and which changes a reload cannot apply (they need a restart).

use dataplane::app::proxy::{CheckSpec, ListenerSpec, OpsSpec, PoolHealth, PoolSpec, ProxySpec, ServerSpec};
use dataplane::lcore::StackSpec;
use dataplane::runtime::{PortSpec, RuntimeSpec};
use dataplane::wire::ethernet::EthernetAddress;

use super::{af_xdp, Config, Device, PortConfig};

impl Config {
    /// The data plane to bring up (`dataplane::runtime::Runtime::start`): EAL arguments
    /// with `file_prefix`, the pool, the ports, the lcores, and on each the TCP engine
    /// keyed with `secret` (ISN generator and SYN cookies), the services and the proxy.
    pub fn runtime_spec(&self, file_prefix: &str, secret: [u8; 16]) -> RuntimeSpec {
        RuntimeSpec {
            eal_args: self.dpdk.eal_args(&self.ports, file_prefix),
            lcores: self.dpdk.lcores.clone(),
            mbufs: self.dpdk.mbufs,
            mbuf_cache: self.dpdk.mbuf_cache,
            rx_interrupts: self.dpdk.rx_interrupts,
            ports: self.ports.iter().map(PortConfig::port_spec).collect(),
            tcp: StackSpec { config: self.tcp.engine_config(), secret, apps: self.apps.clone() },
            proxy: self.proxy_spec(),
            proxy_ops: self.ops_spec(),
        }
    }

    /// The proxy's listeners and pools as the data plane takes them (pools by index).
    pub fn proxy_spec(&self) -> ProxySpec {
        let pools: Vec<PoolSpec> = self
            .pools
            .iter()
            .map(|p| PoolSpec {
                name: p.name.clone(),
                algorithm: p.algorithm,
                servers: p
                    .servers
                    .iter()
                    .map(|s| ServerSpec {
                        addr: s.addr,
                        local_ip: s.local_ip,
                        weight: s.weight,
                        max_connections: s.max_connections,
                    })
                    .collect(),
                proxy_protocol: p.proxy_protocol,
                nodelay: p.nodelay,
                keepalive: p.keepalive,
                max_queue: p.max_queue,
                queue_timeout: p.queue_timeout,
            })
            .collect();
        let listeners = self
            .listeners
            .iter()
            .map(|l| ListenerSpec {
                name: l.name.clone(),
                listen: l.listen,
                // Validation guarantees the pool exists; a miss is refused by the proxy.
                pool: self.pools.iter().position(|p| p.name == l.pool).unwrap_or(usize::MAX),
                max_connections: l.max_connections,
                connect_timeout: l.connect_timeout,
                idle_timeout: l.idle_timeout,
                nodelay: l.nodelay,
                keepalive: l.keepalive,
            })
            .collect();
        ProxySpec { listeners, pools }
    }

    /// Health checks per pool (in [`Config::proxy_spec`]'s pool order) and the access log.
    pub fn ops_spec(&self) -> OpsSpec {
        OpsSpec {
            pools: self
                .pools
                .iter()
                .map(|p| PoolHealth {
                    check: p.health_check.as_ref().map(|h| CheckSpec {
                        interval: h.interval,
                        timeout: h.timeout,
                        rise: h.rise,
                        fall: h.fall,
                        send: h.send.clone(),
                        expect: h.expect.clone(),
                    }),
                    passive_failures: p.passive.failures,
                    passive_recovery: p.passive.recovery,
                })
                .collect(),
            access_log: self.log.access,
        }
    }

    /// The sections of `new` that differ from `self` in ways a reload cannot apply, each
    /// as `key: why`; empty when `new` can be reloaded. Listeners, pools, servers,
    /// weights, limits, health checks, the access log and the drain deadline reload.
    pub fn restart_needed(&self, new: &Config) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |key: &str, same: bool| {
            if !same {
                out.push(format!("{key}: changed; this needs a restart (systemctl restart strait)"));
            }
        };
        check("dpdk", self.dpdk == new.dpdk);
        check("tcp", self.tcp == new.tcp);
        check("port", self.ports == new.ports);
        check("app", self.apps == new.apps);
        check("metrics", self.metrics == new.metrics);
        check("admin", self.admin == new.admin);
        check("log.format", self.log.format == new.log.format);
        check("log.level", self.log.level == new.log.level);
        check("log.queue_lines", self.log.queue_lines == new.log.queue_lines);
        out
    }
}

impl PortConfig {
    /// The port as the data plane brings it up.
    pub fn port_spec(&self) -> PortSpec {
        PortSpec {
            name: self.name.clone(),
            devices: self.device_names(),
            ipv4: self.ipv4,
            prefix_len: self.prefix_len,
            gateway: self.gateway,
            mtu: self.mtu,
            mac: self.mac.map(EthernetAddress),
            offloads: self.offloads,
            impair: self.impair,
            arp_resolutions_per_second: self.arp_resolutions_per_second,
            ipv6: self.ipv6,
        }
    }

    /// The DPDK device names the port is made of: the vdev's driver instance name (the
    /// part before the first comma) or the PCI address; for an AF_XDP port of several
    /// queues, one per queue ([`af_xdp::queue_vdevs`]).
    fn device_names(&self) -> Vec<String> {
        let instance = |vdev: &str| vdev.split(',').next().unwrap_or(vdev).to_string();
        match &self.device {
            Device::Vdev(s) if af_xdp::is_af_xdp(&self.device) => af_xdp::queue_vdevs(s).iter().map(|v| instance(v)).collect(),
            Device::Vdev(s) => vec![instance(s)],
            Device::Pci(s) => vec![s.clone()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::CpuSet;
    use super::*;

    const BASE: &str = r#"
[[port]]
name = "tap0"
device = "net_tap0,iface=strait0"
ipv4 = "198.18.80.2/24"
[[listener]]
name = "web"
listen = "198.18.80.2:80"
pool = "b"
[[pool]]
name = "a"
servers = [{ addr = "198.18.80.10:80" }]
[[pool]]
name = "b"
passive_failures = 4
servers = [{ addr = "198.18.80.11:80", weight = 3 }, { addr = "198.18.80.12:80" }]
[pool.health_check]
interval_ms = 300
"#;

    fn cfg(extra: &str) -> Config {
        Config::from_toml_str_for(&format!("{BASE}{extra}"), &CpuSet::from_ids(0..4)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn specs_follow_the_configuration() {
        let c = cfg("");
        let p = c.proxy_spec();
        assert_eq!(p.listeners[0].pool, 1, "pools by index");
        assert_eq!(p.pools[1].servers.len(), 2);
        assert_eq!(p.pools[1].servers[0].weight, 3);
        assert_eq!(p.pools[1].servers[0].local_ip, std::net::Ipv4Addr::new(198, 18, 80, 2));
        let o = c.ops_spec();
        assert!(o.pools[0].check.is_none());
        assert_eq!(o.pools[1].check.as_ref().map(|c| c.interval.as_millis()), Some(300));
        assert_eq!(o.pools[1].passive_failures, 4);
        assert!(!o.access_log);
    }

    #[test]
    fn only_proxy_keys_reload() {
        let old = cfg("");
        assert!(old.restart_needed(&cfg("[log]\naccess = true\n[shutdown]\ndrain_timeout_ms = 5\n")).is_empty());
        let mut more = old.clone();
        more.pools[0].servers.clear();
        assert!(old.restart_needed(&more).is_empty(), "servers reload");
        let why = old.restart_needed(&cfg("[dpdk]\nmbufs = 4095\n[log]\nlevel = \"debug\"\n"));
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].starts_with("dpdk: changed; this needs a restart"), "{why:?}");
        assert!(why[1].starts_with("log.level"), "{why:?}");
        let why = old.restart_needed(&cfg("[tcp]\ncongestion = \"newreno\"\n"));
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].starts_with("tcp: changed; this needs a restart"), "{why:?}");
    }

    #[test]
    fn ports_become_the_dataplanes_port_specs() {
        let c = cfg("");
        let p = &c.ports[0];
        let spec = p.port_spec();
        assert_eq!(spec.devices, vec!["net_tap0".to_string()]);
        assert_eq!((spec.name.as_str(), spec.ipv4, spec.prefix_len), ("tap0", p.ipv4, 24));
        assert_eq!(spec.offloads, dataplane::dpdk::Offloads::ALL);
        let mut xdp = p.clone();
        xdp.device = Device::Vdev("net_af_xdp0,iface=veth0,start_queue=0,queue_count=2".into());
        assert_eq!(xdp.port_spec().devices, vec!["net_af_xdp0".to_string(), "net_af_xdp0_q1".to_string()]);
        assert!(xdp.port_spec().is_af_xdp());
        let mut pci = p.clone();
        pci.device = Device::Pci("0000:00:08.0".into());
        assert_eq!(pci.port_spec().devices, vec!["0000:00:08.0".to_string()]);
        let rt = c.runtime_spec("strait-test", [7; 16]);
        assert_eq!(rt.lcores, c.dpdk.lcores);
        assert_eq!(rt.ports.len(), 1);
        assert_eq!(rt.tcp.secret, [7; 16]);
        assert_eq!(rt.proxy, c.proxy_spec());
        assert!(rt.eal_args.iter().any(|a| a == "strait-test"));
    }
}
