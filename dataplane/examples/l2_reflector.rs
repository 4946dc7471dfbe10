//! L2 reflector: the raw packet ceiling of a DPDK port, with no TCP/IP at all.
//!
//! Every frame received on port 0 is sent back out of the same port with its Ethernet
//! source and destination addresses swapped. It uses only the safe adapter
//! (`dataplane::dpdk`), the same RX/TX burst calls as Strait's lcore loop, on one lcore
//! (the main one). `deploy/bench/run.sh` drives it from a kernel-side packet generator to
//! state Strait's frame rate as a fraction of what the port (e.g. `net_tap`) allows.
//!
//! ```text
//! cargo run --release -p dataplane --example l2_reflector -- \
//!     -l 1 --no-huge -m 256 --no-shconf --no-pci --vdev=net_tap0,iface=refl0 -- --seconds 10
//! ```
//!
//! Arguments before the second `--` go to the EAL unchanged; after it: `--seconds N` (run
//! time, default 10; 0 runs until killed). Prints `l2_reflector ready` once the port is
//! up, one line per second (`rx_pps`, `tx_pps`), and a `total` line at the end. Frames
//! shorter than an Ethernet header, or whose first segment is shared, are dropped and
//! counted (`bad`); frames the TX ring does not take are dropped and counted (`tx_drop`).

use std::time::{Duration, Instant};

use dataplane::dpdk::{Eal, Mbuf, Mempool, Offloads, Port, PortSettings};

/// Frames per RX burst (the lcore loop's burst size).
const BURST: usize = 32;
/// Ethernet header: destination (6), source (6), EtherType (2).
const ETH_HEADER: usize = 14;

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    rx: u64,
    tx: u64,
    tx_drop: u64,
    bad: u64,
}

/// Swaps the destination and source MAC addresses in place; `false` (frame untouched)
/// when the frame is shorter than an Ethernet header.
fn swap_macs(frame: &mut [u8]) -> bool {
    let Some(header) = frame.get_mut(..ETH_HEADER) else {
        return false;
    };
    let (dst, rest) = header.split_at_mut(6);
    dst.swap_with_slice(&mut rest[..6]);
    true
}

/// Splits the command line at the second `--`: EAL arguments (program name first) and
/// the reflector's own.
fn split_args(args: Vec<String>) -> (Vec<String>, Vec<String>) {
    match args.iter().position(|a| a == "--") {
        Some(i) => {
            let own = args[i + 1..].to_vec();
            (args[..i].to_vec(), own)
        }
        None => (args, Vec::new()),
    }
}

fn parse_seconds(own: &[String]) -> Result<u64, String> {
    let mut seconds = 10;
    let mut it = own.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let v = it.next().ok_or("--seconds needs a value")?;
                seconds = v.parse().map_err(|e| format!("--seconds {v:?}: {e}"))?;
            }
            other => return Err(format!("unknown argument {other:?} (expected --seconds N)")),
        }
    }
    Ok(seconds)
}

fn run() -> Result<(), String> {
    let (eal_args, own) = split_args(std::env::args().collect());
    let seconds = parse_seconds(&own)?;
    let eal = Eal::init(&eal_args).map_err(|e| format!("EAL: {e}"))?;
    if Port::count() == 0 {
        return Err("no DPDK port (pass --vdev=net_tap0,iface=NAME)".into());
    }
    let pool = Mempool::new("refl_pool", 8191, 256, Mempool::DEFAULT_DATA_ROOM, -1)
        .map_err(|e| format!("mempool: {e}"))?;
    let settings = PortSettings {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 1024,
        tx_desc: 1024,
        mtu: 1500,
        want: Offloads::NONE,
        // The ceiling is measured busy polling.
        rx_interrupts: false,
    };
    let mut port = Port::configure(0, &settings, &pool).map_err(|e| format!("port 0: {e}"))?;
    port.start().map_err(|e| format!("port 0 start: {e}"))?;
    println!(
        "l2_reflector ready: port 0 driver {} lcore {} seconds {seconds}",
        port.driver(),
        eal.main_lcore()
    );

    let mut rx: Vec<Mbuf> = Vec::with_capacity(BURST);
    let mut tx: Vec<Mbuf> = Vec::with_capacity(BURST);
    let mut c = Counts::default();
    let mut last = c;
    let start = Instant::now();
    let mut next_report = start + Duration::from_secs(1);
    let end = (seconds > 0).then(|| start + Duration::from_secs(seconds));
    let mut polls: u32 = 0;
    loop {
        let n = port.rx_burst(0, &mut rx, BURST);
        c.rx += n as u64;
        for mut m in rx.drain(..) {
            if m.data_mut().is_some_and(swap_macs) {
                tx.push(m);
            } else {
                c.bad += 1;
            }
        }
        // A full ring gets a few retries, then the rest is dropped (as the lcore does).
        let mut tries = 0;
        while !tx.is_empty() && tries < 4 {
            c.tx += port.tx_prepare_and_burst(0, &mut tx) as u64;
            tries += 1;
        }
        c.tx_drop += tx.len() as u64;
        tx.clear();

        // Read the clock only every 1024 polls: it is not free.
        polls = polls.wrapping_add(1);
        if polls & 0x3ff == 0 {
            let now = Instant::now();
            if now >= next_report {
                let secs = (now - (next_report - Duration::from_secs(1))).as_secs_f64();
                println!(
                    "rx_pps {:.0} tx_pps {:.0} tx_drop {} bad {}",
                    (c.rx - last.rx) as f64 / secs,
                    (c.tx - last.tx) as f64 / secs,
                    c.tx_drop - last.tx_drop,
                    c.bad - last.bad
                );
                last = c;
                next_report = now + Duration::from_secs(1);
            }
            if end.is_some_and(|e| now >= e) {
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "total seconds {secs:.2} rx {} tx {} tx_drop {} bad {} rx_pps {:.0} tx_pps {:.0}",
        c.rx,
        c.tx,
        c.tx_drop,
        c.bad,
        c.rx as f64 / secs,
        c.tx as f64 / secs
    );
    match port.stats() {
        Ok(s) => println!(
            "port ipackets {} opackets {} imissed {} ierrors {} oerrors {} rx_nombuf {}",
            s.ipackets, s.opackets, s.imissed, s.ierrors, s.oerrors, s.rx_nombuf
        ),
        Err(e) => println!("port stats unavailable: {e}"),
    }
    // Port before pool before EAL (see dataplane::dpdk on teardown).
    drop(port);
    drop(pool);
    drop(eal);
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("l2_reflector: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_macs_exchanges_destination_and_source() {
        let mut f: Vec<u8> = (0u8..20).collect();
        assert!(swap_macs(&mut f));
        assert_eq!(&f[..6], &[6, 7, 8, 9, 10, 11]);
        assert_eq!(&f[6..12], &[0, 1, 2, 3, 4, 5]);
        assert_eq!(&f[12..], &[12, 13, 14, 15, 16, 17, 18, 19]);
    }

    #[test]
    fn swap_macs_refuses_a_runt_frame() {
        let mut f = vec![1u8; 13];
        assert!(!swap_macs(&mut f));
        assert_eq!(f, vec![1u8; 13]);
    }

    #[test]
    fn arguments_split_at_the_double_dash() {
        let args = ["prog", "-l", "1", "--", "--seconds", "3"]
            .map(String::from)
            .to_vec();
        let (eal, own) = split_args(args);
        assert_eq!(eal, ["prog", "-l", "1"]);
        assert_eq!(parse_seconds(&own), Ok(3));
        assert_eq!(parse_seconds(&[]), Ok(10));
        assert!(parse_seconds(&["--seconds".to_string()]).is_err());
        assert!(parse_seconds(&["--bogus".to_string()]).is_err());
    }
}
