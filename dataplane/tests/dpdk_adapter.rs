//! Integration test of the safe DPDK adapter against the real DPDK (no mocks).
//!
//! DPDK allows one EAL per process, so a single `#[test]` runs every step in order:
//! mempool accounting, mbuf editing and reference counting, lcore launch, a `net_ring`
//! loopback port (no offloads), a `net_null` port, and — in a child process re-executed
//! inside a throwaway network namespace — a `net_tap` port exchanging frames with the
//! kernel (TX with checksum offload, multi-segment and TSO; RX with checksum verdicts).
//!
//! Needs root (EAL, TAP, netns): without it the test prints a skip line, unless
//! `REQUIRE_ROOT_TESTS=1`, in which case it fails.
#![cfg(feature = "dpdk")]

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use dataplane::dpdk::{
    intr, lcore_id, ptype, tsc, tsc_hz, CksumStatus, DpdkError, Eal, Mbuf, Mempool, Offloads, Port,
    PortSettings, TxOffload,
};

const TEST_NAME: &str = "dpdk_adapter";
const CHILD_ENV: &str = "STRAIT_DPDK_TAP_CHILD";

fn is_root() -> bool {
    // Effective uid: second field of the Uid: line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn eal_args(tag: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "strait-test",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        // `--in-memory` is implied: DPDK 22.11 rejects it together with --no-huge
        // ("not compatible with --legacy-mem"), and --no-huge + --no-shconf create no
        // files anyway.
        "--log-level",
        "lib.eal:error",
        "--file-prefix",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(format!("strait-test-{}-{tag}", std::process::id()));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn dpdk_adapter() {
    if !is_root() {
        if std::env::var("REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
            panic!("dpdk_adapter needs root and REQUIRE_ROOT_TESTS=1 is set");
        }
        println!("SKIP dpdk_adapter: needs root (EAL, net_tap, network namespaces)");
        return;
    }
    if std::env::var_os(CHILD_ENV).is_some() {
        tap_child();
        return;
    }

    let eal = Eal::init(&eal_args(
        "main",
        &[
            "--lcores",
            "0@0,1@0",
            "--vdev",
            "net_ring0",
            "--vdev",
            "net_null0",
        ],
    ))
    .expect("EAL init");
    assert!(Eal::is_running());
    assert_eq!(
        Eal::init(&eal_args("again", &[])).err(),
        Some(DpdkError::AlreadyInitialized)
    );
    assert!(tsc_hz() > 0, "TSC frequency measured");
    let t0 = tsc();
    assert!(tsc() >= t0);

    let pool = Mempool::new("strait-test-pool", 1023, 32, Mempool::DEFAULT_DATA_ROOM, -1)
        .expect("mempool");
    assert!(matches!(
        Mempool::new("strait-test-pool", 63, 0, 2048, -1),
        Err(DpdkError::Rte { errno: 17, .. }) // EEXIST: names are unique
    ));
    mempool_accounting(&pool);
    mbuf_editing(&pool);
    mbuf_sharing(&pool);
    lcores(&eal, &pool);
    ring_port(&pool);
    null_port(&pool);
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
    drop(pool);

    tap_in_netns();
    drop(eal);
    assert!(
        !Eal::is_running(),
        "no live objects: the EAL was cleaned up"
    );
}

fn mempool_accounting(pool: &Mempool) {
    let start = pool.in_use();
    assert_eq!(start, 0);
    assert_eq!(pool.available(), 1023);
    let a = Mbuf::alloc(pool).expect("alloc");
    let b = pool.alloc().expect("alloc");
    assert_eq!(pool.in_use(), start + 2);
    drop(a);
    drop(b);
    assert_eq!(pool.in_use(), start);

    // Exhaust the pool: all-or-nothing bulk, then a clean error.
    let mut all = Vec::new();
    pool.alloc_bulk(&mut all, 1000).expect("bulk");
    assert_eq!(all.len(), 1000);
    assert_eq!(
        pool.alloc_bulk(&mut all, 100).err(),
        Some(DpdkError::PoolExhausted)
    );
    assert_eq!(all.len(), 1000, "failed bulk adds nothing");
    pool.alloc_bulk(&mut all, 23).expect("last 23");
    assert_eq!(Mbuf::alloc(pool).err(), Some(DpdkError::PoolExhausted));
    assert_eq!(pool.in_use(), 1023);
    all.clear();
    assert_eq!(pool.in_use(), start);
    assert_eq!(pool.available(), 1023);
}

fn mbuf_editing(pool: &Mempool) {
    let mut m = Mbuf::alloc(pool).expect("alloc");
    assert!(m.is_empty());
    assert_eq!(m.nb_segs(), 1);
    assert_eq!(m.refcnt(), 1);
    let headroom = m.headroom();
    assert!(headroom >= 64);
    let tail = m.tailroom();

    let body = m.append(100).expect("append");
    for (i, b) in body.iter_mut().enumerate() {
        *b = i as u8;
    }
    assert_eq!((m.len(), m.data_len()), (100, 100));
    assert_eq!(m.tailroom(), tail - 100);

    let hdr = m.prepend(14).expect("prepend");
    hdr.fill(0xee);
    assert_eq!(m.len(), 114);
    assert_eq!(m.headroom(), headroom - 14);
    assert_eq!(
        &m.data()[..15],
        &[0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0]
    );

    assert!(m.adj(14));
    assert_eq!(m.len(), 100);
    assert_eq!(m.data()[0], 0);
    assert!(m.trim(10));
    assert_eq!(m.len(), 90);
    assert_eq!(m.data()[89], 89);

    // Out-of-range edits fail and change nothing.
    assert!(!m.adj(91));
    assert!(!m.trim(91));
    assert!(m.prepend(headroom + 1).is_none());
    assert!(m.append(m.tailroom() + 1).is_none());
    assert!(m.append(70_000).is_none());
    assert_eq!(m.len(), 90);

    m.data_mut().expect("exclusive")[0] = 0xab;
    assert_eq!(m.data()[0], 0xab);

    // Chaining.
    let mut a = Mbuf::from_slice(pool, b"0123456789").expect("a");
    let b = Mbuf::from_slice(pool, &[7u8; 20]).expect("b");
    a.chain(b).expect("chain");
    assert_eq!(a.nb_segs(), 2);
    assert_eq!(a.len(), 30);
    assert_eq!(a.data_len(), 10);
    let segs: Vec<usize> = a.segments().map(<[u8]>::len).collect();
    assert_eq!(segs, vec![10, 20]);
    let flat = a.to_vec();
    assert_eq!(&flat[..10], b"0123456789");
    assert!(flat[10..].iter().all(|&x| x == 7));
    // append/trim work on the last segment.
    a.append(5).expect("append to last seg").fill(9);
    assert_eq!(a.len(), 35);
    assert_eq!(a.segments().nth(1).map(<[u8]>::len), Some(25));
    assert!(a.trim(5));
    assert!(!a.trim(21), "trim is limited to the last segment");
    assert_eq!(a.len(), 30);

    // TX offload metadata round-trips.
    let o = TxOffload {
        l2_len: 14,
        l3_len: 20,
        l4_len: 20,
        tso_segsz: 1460,
        ipv4: true,
        ipv6: false,
        ip_cksum: true,
        tcp_cksum: true,
        udp_cksum: false,
        tso: true,
    };
    a.set_tx_offload(o).expect("set offload");
    assert_eq!(a.tx_offload(), o);
    let plain = TxOffload {
        l2_len: 14,
        l3_len: 20,
        ipv4: true,
        ..Default::default()
    };
    a.set_tx_offload(plain).expect("replace offload");
    assert_eq!(a.tx_offload(), plain, "previous TX flags are cleared");
    assert!(matches!(
        a.set_tx_offload(TxOffload {
            tcp_cksum: true,
            udp_cksum: true,
            ..plain
        }),
        Err(DpdkError::InvalidArgument(_))
    ));
    assert_eq!(a.ip_cksum(), CksumStatus::Unknown);
    assert_eq!(a.rss_hash(), None);
}

fn mbuf_sharing(pool: &Mempool) {
    let start = pool.in_use();
    let mut p = Mbuf::from_slice(pool, &[0x5a; 100]).expect("payload");
    let extra = Mbuf::from_slice(pool, &[0x33; 10]).expect("extra");
    p.chain(extra).expect("chain");
    assert_eq!(pool.in_use(), start + 2);

    let mut c = p.clone_ref();
    assert_eq!(pool.in_use(), start + 2, "clone_ref copies nothing");
    assert_eq!(p.refcnt(), 2);
    assert!(
        p.segments()
            .zip(c.segments())
            .all(|(x, y)| std::ptr::eq(x, y)),
        "same buffers"
    );
    assert!(p.is_shared() && c.is_shared());
    // Shared: every mutation is refused and nothing changes.
    assert!(p.data_mut().is_none());
    assert!(c.append(1).is_none());
    assert!(c.prepend(1).is_none());
    assert!(!c.adj(1));
    assert!(!c.trim(1));
    assert_eq!(
        c.set_tx_offload(TxOffload::default()),
        Err(DpdkError::SharedMbuf)
    );
    let x = Mbuf::from_slice(pool, b"x").expect("x");
    let x = c
        .chain(x)
        .expect_err("chaining onto a shared chain is refused");
    assert_eq!(x.to_vec(), b"x");
    drop(x);
    assert_eq!(p.len(), 110);
    drop(c);
    assert_eq!(p.refcnt(), 1);
    assert!(!p.is_shared());
    assert!(p.data_mut().is_some(), "exclusive again");

    // The TX pattern: an exclusive header mbuf in front of a shared payload.
    let mut h = Mbuf::alloc(pool).expect("hdr");
    h.append(42).expect("headers").fill(0x11);
    h.chain(p.clone_ref()).expect("header + shared payload");
    assert_eq!(h.len(), 152);
    assert_eq!(h.nb_segs(), 3);
    assert_eq!(p.len(), 110, "the queued original keeps its own length");
    assert_eq!(p.nb_segs(), 2);
    assert_eq!(p.refcnt(), 2);
    assert!(h
        .set_tx_offload(TxOffload {
            l2_len: 14,
            l3_len: 20,
            ipv4: true,
            ..Default::default()
        })
        .is_ok());
    assert!(h.prepend(2).is_some(), "header segment is ours");
    assert!(!h.trim(1), "last segment is shared");
    assert!(h.append(1).is_none(), "last segment is shared");
    assert_eq!(pool.in_use(), start + 3);
    drop(h);
    assert_eq!(p.refcnt(), 1);
    assert_eq!(pool.in_use(), start + 2, "only the header went back");
    assert_eq!(p.to_vec()[..100], [0x5a; 100]);
    drop(p);
    assert_eq!(pool.in_use(), start);
}

fn lcores(eal: &Eal, pool: &Mempool) {
    assert_eq!(eal.worker_lcores(), vec![1]);
    assert_eq!(eal.main_lcore(), 0);
    assert_eq!(lcore_id(), 0);
    let p = pool.clone();
    eal.launch(
        1,
        Box::new(move || {
            // Pool shared across lcores; the worker's own lcore id.
            let mut v = Vec::new();
            if p.alloc_bulk(&mut v, 8).is_err() {
                return -2;
            }
            if lcore_id() != 1 {
                return -3;
            }
            42
        }),
    )
    .expect("launch");
    assert_eq!(eal.wait(1), Ok(42));
    // A panicking lcore function is caught on the lcore and reported as -1 (the
    // default hook is silenced meanwhile so the expected panic does not look like a
    // failure in the test output).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    eal.launch(1, Box::new(|| panic!("lcore panic is contained")))
        .expect("launch");
    let rc = eal.wait(1);
    std::panic::set_hook(hook);
    assert_eq!(rc, Ok(-1));
    assert!(matches!(
        eal.launch(0, Box::new(|| 0)),
        Err(DpdkError::InvalidArgument(_))
    ));
    assert!(matches!(eal.wait(7), Err(DpdkError::InvalidArgument(_))));
    eal.wait_all();
    assert_eq!(pool.in_use(), 0, "worker's mbufs were freed");
}

fn settings(want: Offloads) -> PortSettings {
    PortSettings {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 256,
        tx_desc: 256,
        mtu: 1500,
        want,
        rx_interrupts: false,
    }
}

fn ring_port(pool: &Mempool) {
    assert_eq!(Port::count(), 2);
    let id = Port::by_name("net_ring0").expect("net_ring0");
    assert!(matches!(
        Port::by_name("net_nope9"),
        Err(DpdkError::Rte { .. })
    ));
    let mut port = Port::configure(id, &settings(Offloads::ALL), pool).expect("configure ring");
    // net_ring passes mbuf pointers through a ring: scatter-gather is all it has.
    assert_eq!(
        port.granted(),
        Offloads {
            multi_seg: true,
            ..Offloads::NONE
        },
        "net_ring offers no checksum/TSO/RSS offload"
    );
    assert!(matches!(
        Port::configure(id, &settings(Offloads::NONE), pool),
        Err(DpdkError::InvalidArgument(_))
    ));
    let mut out = Vec::new();
    assert_eq!(port.rx_burst(0, &mut out, 32), 0, "not started");
    port.start().expect("start");
    assert!(port.is_started());
    assert!(port.link_up());

    // net_ring with no arguments loops TX back to RX.
    let mut frames: Vec<Mbuf> = (0..4u8)
        .map(|i| Mbuf::from_slice(pool, &[i; 60]).expect("frame"))
        .collect();
    let queued = frames[0].clone_ref(); // kept for "retransmission"
    assert_eq!(port.tx_prepare_and_burst(0, &mut frames), 4);
    assert!(frames.is_empty(), "sent frames leave the vector");
    assert_eq!(
        port.tx_prepare_and_burst(5, &mut vec![Mbuf::alloc(pool).expect("m")]),
        0,
        "bad queue"
    );
    assert_eq!(port.rx_burst(0, &mut out, 2), 2, "max is honoured");
    assert_eq!(port.rx_burst(0, &mut out, 32), 2);
    assert_eq!(out.len(), 4, "rx_burst appends");
    for (i, m) in out.iter().enumerate() {
        assert_eq!(m.to_vec(), vec![i as u8; 60]);
    }
    assert_eq!(
        queued.refcnt(),
        2,
        "the looped-back frame is the queued original"
    );
    out.clear();
    assert_eq!(queued.refcnt(), 1);
    drop(queued);

    let stats = port.stats().expect("stats");
    assert_eq!((stats.opackets, stats.ipackets), (4, 4));
    let xs = port.xstats().expect("xstats");
    assert!(
        xs.iter().any(|(n, v)| n == "tx_good_packets" && *v == 4),
        "{xs:?}"
    );
    port.set_promiscuous(true).ok(); // net_ring may not support it; must not crash
    port.stop().expect("stop");
    assert_eq!(
        port.tx_prepare_and_burst(0, &mut vec![Mbuf::alloc(pool).expect("m")]),
        0,
        "stopped"
    );
}

fn null_port(pool: &Mempool) {
    let id = Port::by_name("net_null0").expect("net_null0");
    let want = Offloads {
        tso: true,
        tcp_cksum: true,
        multi_seg: true,
        rss: true,
        ..Offloads::NONE
    };
    // Two RX queues with RSS: exercises the symmetric-key RSS configuration path.
    let mut port = Port::configure(
        id,
        &PortSettings {
            rx_queues: 2,
            ..settings(want)
        },
        pool,
    )
    .expect("configure null");
    let g = port.granted();
    assert!(
        !g.tso && !g.tcp_cksum && !g.ipv4_cksum,
        "net_null has no checksum/TSO offload: {g:?}"
    );
    assert!(g.rss, "net_null reports RSS flow types: {g:?}");
    assert!(!g.rx_cksum && !g.udp_cksum, "never more than wanted: {g:?}");
    assert_eq!(port.rx_queues(), 2);
    assert_eq!(port.driver(), "net_null");
    port.start().expect("start");
    let mut frames: Vec<Mbuf> = (0..8)
        .map(|_| Mbuf::from_slice(pool, &[1; 64]).expect("frame"))
        .collect();
    assert_eq!(port.tx_prepare_and_burst(0, &mut frames), 8);
    let mut rx = Vec::new();
    let n = port.rx_burst(0, &mut rx, 16);
    assert_eq!(n, rx.len());
    rx.clear();
    drop(port);
    assert_eq!(pool.in_use(), 0, "net_null freed what it sent");
}

/// Deletes the namespace even when the test fails.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn tap_in_netns() {
    let ns = Netns(format!("strait-t{}", std::process::id()));
    let st = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .expect("run ip");
    assert!(st.success(), "ip netns add");
    let exe = std::fs::read_link("/proc/self/exe").expect("own executable");
    let status = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .status()
        .expect("re-exec in netns");
    assert!(
        status.success(),
        "net_tap part failed in the namespace: {status}"
    );
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("run command");
    assert!(st.success(), "{args:?}");
}

fn read_counter(ifname: &str, name: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/{name}"))
        .expect("sysfs counter")
        .trim()
        .parse()
        .expect("number")
}

fn parse_mac(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (i, part) in s.trim().split(':').enumerate().take(6) {
        mac[i] = u8::from_str_radix(part, 16).expect("hex");
    }
    mac
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

const DPDK_IP: [u8; 4] = [10, 77, 0, 2];
const KERNEL_IP: [u8; 4] = [10, 77, 0, 1];

/// Ethernet + IPv4 header (checksum left 0 for offload), protocol `proto`.
fn eth_ipv4(dst: [u8; 6], src: [u8; 6], proto: u8, l4_len: usize, id: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(34);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + l4_len) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        (id >> 8) as u8,
        id as u8,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ]);
    f.extend_from_slice(&DPDK_IP);
    f.extend_from_slice(&KERNEL_IP);
    f
}

fn tap_child() {
    let ifname = format!("stt{}", std::process::id());
    let vdev = format!("net_tap0,iface={ifname}");
    let _eal = Eal::init(&eal_args("tap", &["--vdev", &vdev])).expect("EAL init (tap)");
    let pool =
        Mempool::new("strait-tap-pool", 2047, 32, Mempool::DEFAULT_DATA_ROOM, -1).expect("pool");
    let id = Port::by_name("net_tap0").expect("net_tap0");
    let want = Offloads {
        rss: false,
        ..Offloads::ALL
    };
    let mut port = Port::configure(id, &PortSettings { rx_interrupts: true, ..settings(want) }, &pool).expect("configure tap");
    assert!(port.rx_intr_configured(), "net_tap has RX queue interrupts");
    let g = port.granted();
    println!("net_tap granted {g:?}");
    assert!(
        g.tso && g.ipv4_cksum && g.tcp_cksum && g.udp_cksum && g.multi_seg && g.rx_cksum,
        "{g:?}"
    );
    port.start().expect("start tap");
    sh(&["ip", "link", "set", "dev", &ifname, "up"]);
    sh(&["ip", "addr", "add", "10.77.0.1/24", "dev", &ifname]);
    let dpdk_mac = port.mac();
    sh(&[
        "ip",
        "neigh",
        "replace",
        "10.77.0.2",
        "lladdr",
        &fmt_mac(dpdk_mac),
        "dev",
        &ifname,
        "nud",
        "permanent",
    ]);
    let kmac = parse_mac(
        &std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).expect("mac"),
    );

    // TX with IPv4+UDP checksum offload, the payload in a shared second segment; the
    // kernel socket only delivers datagrams whose checksums are right.
    let sock = UdpSocket::bind("10.77.0.1:7777").expect("bind kernel socket");
    sock.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let payload = Mbuf::from_slice(&pool, b"hello-from-dpdk").expect("payload");
    let mut h = Mbuf::alloc(&pool).expect("hdr");
    {
        let mut hdr = eth_ipv4(kmac, dpdk_mac, 17, 8 + payload.len(), 1);
        let ulen = (8 + payload.len()) as u16;
        hdr.extend_from_slice(&[0x1e, 0x61, 0x1e, 0x61, (ulen >> 8) as u8, ulen as u8, 0, 0]); // 7777 -> 7777
        h.append(hdr.len()).expect("room").copy_from_slice(&hdr);
    }
    h.chain(payload.clone_ref()).expect("chain");
    h.set_tx_offload(TxOffload {
        l2_len: 14,
        l3_len: 20,
        ipv4: true,
        ip_cksum: true,
        udp_cksum: true,
        ..Default::default()
    })
    .expect("offload");
    let rx_before = read_counter(&ifname, "rx_packets");
    let mut batch = vec![h];
    assert_eq!(port.tx_prepare_and_burst(0, &mut batch), 1);
    let mut buf = [0u8; 64];
    let (n, from) = sock
        .recv_from(&mut buf)
        .expect("kernel received the datagram");
    assert_eq!(&buf[..n], b"hello-from-dpdk");
    assert_eq!(from.to_string(), "10.77.0.2:7777");
    assert_eq!(read_counter(&ifname, "rx_packets") - rx_before, 1);
    assert_eq!(payload.refcnt(), 1, "the PMD released its reference");
    drop(payload);

    // TSO: one 1500-byte TCP super-segment, MSS 500 -> three frames on the wire. The
    // kernel answers each valid segment to a closed port with a RST, which we receive.
    let mut tso = Mbuf::alloc(&pool).expect("tso");
    {
        let mut f = eth_ipv4(kmac, dpdk_mac, 6, 20 + 1500, 2);
        f.extend_from_slice(&[0x9c, 0x40, 0x00, 0x09]); // 40000 -> 9 (closed)
        f.extend_from_slice(&1000u32.to_be_bytes());
        f.extend_from_slice(&1u32.to_be_bytes());
        f.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]); // ACK|PSH
        f.extend(std::iter::repeat_n(b'z', 1500));
        tso.append(f.len()).expect("room").copy_from_slice(&f);
    }
    tso.set_tx_offload(TxOffload {
        l2_len: 14,
        l3_len: 20,
        l4_len: 20,
        tso_segsz: 500,
        ipv4: true,
        ipv6: false,
        ip_cksum: true,
        tcp_cksum: true,
        udp_cksum: false,
        tso: true,
    })
    .expect("tso offload");
    let rx_before = read_counter(&ifname, "rx_packets");
    assert_eq!(port.tx_prepare_and_burst(0, &mut vec![tso]), 1);
    assert_eq!(
        read_counter(&ifname, "rx_packets") - rx_before,
        3,
        "TSO produced three frames"
    );

    // RX: a datagram the kernel sends, and the RSTs.
    let out = UdpSocket::bind("10.77.0.1:0").expect("bind");
    out.send_to(b"from-kernel", "10.77.0.2:9999").expect("send");
    let deadline = Instant::now() + Duration::from_secs(3);
    let (mut got_udp, mut rsts) = (false, 0);
    let mut rx = Vec::new();
    while Instant::now() < deadline && !(got_udp && rsts == 3) {
        rx.clear();
        if port.rx_burst(0, &mut rx, 32) == 0 {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        for m in &rx {
            let f = m.to_vec();
            if f.len() < 34 || f[12..14] != [0x08, 0x00] || f[30..34] != DPDK_IP {
                continue;
            }
            let l4 = 14 + usize::from(f[14] & 0x0f) * 4;
            match f[23] {
                17 if f.len() >= l4 + 8 && f[l4 + 2..l4 + 4] == 9999u16.to_be_bytes() => {
                    assert_eq!(&f[l4 + 8..], b"from-kernel");
                    assert_eq!(m.ip_cksum(), CksumStatus::Good, "tap verifies RX checksums");
                    assert_eq!(m.l4_cksum(), CksumStatus::Good);
                    let pt = m.packet_type();
                    assert_ne!(pt & ptype::L3_MASK, 0, "IPv4 recognised: {pt:#x}");
                    assert_eq!(pt & ptype::L4_MASK, ptype::L4_UDP);
                    got_udp = true;
                }
                6 if f.len() >= l4 + 14 && f[l4 + 13] & 0x04 != 0 => rsts += 1,
                _ => {}
            }
        }
    }
    rx.clear();
    assert!(got_udp, "received the kernel's datagram");
    assert_eq!(
        rsts, 3,
        "the kernel accepted all three TSO segments (valid checksums)"
    );

    // RX interrupts: with the queue drained and armed, a blocking wait ends when the
    // kernel sends a frame, and the frame is then there to poll.
    port.rx_intr_register(0).expect("register the RX queue's interrupt");
    while port.rx_burst(0, &mut rx, 32) > 0 {
        rx.clear();
    }
    port.rx_intr_arm(0, true).expect("arm");
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        out.send_to(b"wake-up", "10.77.0.2:9998").expect("send");
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut events, mut woke_by_it) = (0, false);
    while Instant::now() < deadline && !woke_by_it {
        let n = intr::wait(1000).expect("rte_epoll_wait");
        events += n;
        rx.clear();
        port.rx_burst(0, &mut rx, 32);
        woke_by_it = n > 0 && rx.iter().any(|m| {
            let f = m.to_vec();
            f.len() >= 49 && f[12..14] == [0x08, 0x00] && f[23] == 17 && f.ends_with(b"wake-up")
        });
    }
    rx.clear();
    sender.join().expect("sender");
    port.rx_intr_arm(0, false).expect("disarm");
    assert!(events > 0, "the wait never returned an event");
    assert!(woke_by_it, "a wait ended with the kernel's datagram ready to poll");
    let st = port.stats().expect("stats");
    assert!(st.opackets >= 2 && st.ipackets >= 4, "{st:?}");
    drop(port);
    assert_eq!(pool.in_use(), 0);
    println!("net_tap part passed");
}
