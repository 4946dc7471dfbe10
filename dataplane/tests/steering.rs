//! Flow steering and the TCP engine: with [`Engine::set_steering`], every active open takes
//! a source port whose flow the opening lcore owns, so the peer's replies (hashed with the
//! same symmetric Toeplitz key and RETA) come back to it.

use std::net::{Ipv4Addr, SocketAddrV4};

use dataplane::rss::{symmetric_key, FlowSteering, KEY_LEN};
use dataplane::tcp::{Engine, HeapPayload, StackError, TcpConfig};
use dataplane::time::Instant;

const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 94, 2);
const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 18, 94, 1);

fn engine(cfg: TcpConfig) -> Engine<HeapPayload> {
    Engine::new(cfg, [7; 16], Instant::ZERO)
}

/// The source port of the SYN an engine emits for its only pending connection.
fn syn_port(e: &mut Engine<HeapPayload>) -> u16 {
    let mut port = None;
    e.poll_transmit(Instant::ZERO, &mut |_, _, seg| {
        port = Some(seg.repr.src_port)
    });
    port.expect("a SYN")
}

#[test]
fn active_opens_take_ports_whose_return_flow_the_lcore_owns() {
    let steering = FlowSteering::new(&symmetric_key(KEY_LEN), 128, 2).expect("steering");
    let backend = SocketAddrV4::new(BACKEND, 8080);
    for lcore in 0..2u16 {
        let mut e = engine(TcpConfig::default());
        e.set_steering(Some(steering.for_lcore(lcore)));
        for _ in 0..200 {
            e.connect(LOCAL, backend, Instant::ZERO).expect("a port");
            let port = syn_port(&mut e);
            // What the backend sends back: src = backend, dst = us.
            assert_eq!(
                steering.owner(BACKEND, LOCAL, 8080, port),
                lcore,
                "port {port} on lcore {lcore}"
            );
        }
        assert_eq!(e.connection_count(), 200);
    }
}

#[test]
fn without_steering_ports_land_on_both_lcores() {
    let steering = FlowSteering::new(&symmetric_key(KEY_LEN), 128, 2).expect("steering");
    let mut e = engine(TcpConfig::default());
    let mut owners = [0u32; 2];
    for _ in 0..200 {
        e.connect(LOCAL, SocketAddrV4::new(BACKEND, 80), Instant::ZERO)
            .expect("a port");
        let port = syn_port(&mut e);
        owners[usize::from(steering.owner(BACKEND, LOCAL, 80, port))] += 1;
    }
    assert!(
        owners[0] > 20 && owners[1] > 20,
        "unsteered ports hash anywhere: {owners:?}"
    );
}

#[test]
fn a_range_the_lcore_owns_no_port_of_is_exhausted_cleanly() {
    let steering = FlowSteering::new(&symmetric_key(KEY_LEN), 128, 4).expect("steering");
    let backend = SocketAddrV4::new(BACKEND, 443);
    // A tiny range: find a port lcore 0 does not own, allow only it.
    let foreign = (40000..41000u16)
        .find(|&p| steering.owner(BACKEND, LOCAL, 443, p) != 0)
        .expect("some foreign port");
    let cfg = TcpConfig {
        ephemeral_ports: (foreign, foreign),
        ..TcpConfig::default()
    };
    let mut e = engine(cfg.clone());
    e.set_steering(Some(steering.for_lcore(0)));
    assert_eq!(
        e.connect(LOCAL, backend, Instant::ZERO).err(),
        Some(StackError::NoPorts)
    );
    // The owner of that port may use it.
    let owner = steering.owner(BACKEND, LOCAL, 443, foreign);
    let mut e = engine(cfg);
    e.set_steering(Some(steering.for_lcore(owner)));
    e.connect(LOCAL, backend, Instant::ZERO)
        .expect("the owner gets the port");
    assert_eq!(syn_port(&mut e), foreign);
}
