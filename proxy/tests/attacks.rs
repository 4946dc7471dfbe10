//! End to end: the attack suite (issue 14). Each test runs one attack against strait
//! while wrk, the legitimate load, fetches a page through the proxy to nginx, in the arena
//! of `common::attack` (a pool of `POOL` = 16 383 mbufs, an echo service beside the
//! proxy, the attacker at `{front}.3` on the client side). Every test asserts:
//!
//! * the legitimate requests are at least 99 % successful (`Wrk::assert_served`);
//! * the mbufs in use stay below a bound stated in the test and return to their start
//!   value afterwards (every attack but the zero-window one offers more than the pool
//!   holds);
//! * the attacker's connections are gone within a stated time (`Arena::wait_reclaimed`);
//! * a counter names the defence that acted.
//!
//! The attacks run one at a time (`serial`): each strait polls a core, and the machine
//! may have only two.
//!
//! | test | attack | defence (counter) |
//! |---|---|---|
//! | `zero_window_then_silence` | 400 clients send 300 KB and a FIN behind a 4 KiB window, then go silent (five times the pool) | the memory limit (`TCPMemoryLimited`), orphan limit and retries (`TCPAbortOnMemory`, `TCPAbortOnTimeout`), echo idle timeout |
//! | `tiny_segments_above_a_hole` | 30 connections x 800 one-byte segments above a hole | whole-buffer charging, OFO pruning (`TCPOFODrop`, `OfoPruned`) |
//! | `syn_flood_from_spoofed_sources` | 60 000 SYNs from unreachable sources | SYN cookies (`SyncookiesSent`) |
//! | `forged_cookie_acks` | 30 000 bare ACKs guessing a cookie while none was sent | no recent overflow (`TCPSynCookiesNotRecent`) |
//! | `closing_churn_fills_time_wait` | thousands of `Connection: close` requests | TIME-WAIT bound (`TCPTimeWaitOverflow`) |
//! | `out_of_window_and_paws_floods` | 20 000 out-of-window and 20 000 PAWS-old bare ACKs | duplicate-ACK rate limit (`TCPACKSkippedSeq`, `TCPACKSkippedPAWS`) |
//! | `spoofed_neighbours` | SYNs from 250 on-subnet addresses nobody has | neighbour pinning and resolution rate limit (`arp_resolution_rate_limited`) |
//! | `idle_connections_to_echo` | 2 000 idle connections to the echo service | service connection limit and idle timeout (`app_refused_max_connections`, `app_idle_timeouts`) |

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::attack::{sample, serial, Arena, Wrk, POOL};
use common::backend::Net;
use common::require_root;

/// The legitimate load's length and the wait before the attack starts.
const WRK_SECONDS: u32 = 12;
const WRK_LEAD: Duration = Duration::from_secs(1);
/// Fewest legitimate requests a run must make (a few thousand per second here).
const MIN_REQUESTS: u64 = 2_000;

fn net(i: u8) -> Net {
    // 198.18.200.0/24 .. 198.18.215.0/24: front 200 + 2i, back 201 + 2i.
    let front: &'static str = Box::leak(format!("198.18.{}", 200 + 2 * u16::from(i)).into_boxed_str());
    let back: &'static str = Box::leak(format!("198.18.{}", 201 + 2 * u16::from(i)).into_boxed_str());
    Net { front, back, backend_port: 8080 }
}

/// Runs `wrk` for [`WRK_SECONDS`] with `attack` started after [`WRK_LEAD`]; returns the
/// legitimate outcome, the peak of mbufs in use while wrk ran, and the attack's value.
fn under_load<T>(a: &Arena, attack: impl FnOnce(&Arena) -> T) -> (Wrk, String, f64, T) {
    let peak = a.sample_peak();
    let mut wrk = a.wrk(WRK_SECONDS);
    sleep(WRK_LEAD);
    let t = attack(a);
    a.wait_exit(&mut wrk, Duration::from_secs(u64::from(WRK_SECONDS) + 10));
    let (w, out) = Wrk::finish(wrk, Duration::from_secs(5));
    (w, out, peak.stop(), t)
}

#[test]
fn zero_window_then_silence() {
    if !require_root("zero_window_then_silence") {
        return;
    }
    let _one = serial();
    const CLIENTS: u64 = 400;
    const REQUEST: u64 = 300_000;
    const IDLE_S: u64 = 5;
    // Orphans probed for seconds before the silence back off (Linux `tcp_probe_timer`
    // doubles the interval of answered probes too): three unanswered probes then take
    // up to a minute. Linux reclaimed 40 such orphans within 120 s (issue 14).
    const RECLAIM_S: u64 = 75;
    let a = Arena::start(
        net(0),
        "orphan_retries = 3\nmax_orphans = 64",
        &format!("idle_timeout_ms = {}", IDLE_S * 1000),
    );
    let before = a.in_use();
    let peak = a.sample_peak();
    let mut wrk = a.wrk(25);
    sleep(WRK_LEAD);
    // 400 clients send 300 KB each and a FIN behind a 4 KiB receive window: the echo
    // closes each with its answer queued behind the closed window, an orphan. Each would
    // pin its send and receive buffers, some 200 mbufs: together five times the pool.
    let mut attacker =
        a.attack(&["stubborn", &a.strait_ip, "7", &a.attacker_ip, &CLIENTS.to_string(), &REQUEST.to_string()]);
    let connected = attacker.wait_for("connected", Duration::from_secs(15));
    let sent = attacker.wait_for("sent", Duration::from_secs(15));
    // Then the clients go silent: nothing strait sends reaches them any more.
    a.silence_attacker(7);
    let silent = Instant::now();
    let mut orphans_peak = 0.0f64;
    loop {
        orphans_peak = orphans_peak.max(a.metric("strait_tcp_orphans"));
        let left = a.metric("strait_tcp_connections");
        // wrk's 16 sessions are two connections each.
        if left <= 32.0 {
            break;
        }
        assert!(
            silent.elapsed() < Duration::from_secs(RECLAIM_S),
            "{left} connections still held {:?} after the peers went silent (bound {RECLAIM_S} s):\n{}",
            silent.elapsed(),
            a.counters()
        );
        sleep(Duration::from_millis(200));
    }
    let gone = silent.elapsed();
    a.wait_exit(&mut wrk, Duration::from_secs(40));
    let peak = peak.stop();
    let (w, out) = Wrk::finish(wrk, Duration::from_secs(5));
    let page = a.scrape();
    let value = |name: &str| sample(&page, name).max(0.0);
    let (pressures, limited, idled, memory, timeout, probes) = (
        value("strait_tcp_memory_pressures_total"),
        value("strait_tcp_memory_limited_total"),
        value("strait_app_idle_timeouts_total"),
        value("strait_tcp_abort_on_memory_total"),
        value("strait_tcp_abort_on_timeout_total"),
        value("strait_tcp_win_probe_total"),
    );
    eprintln!(
        "zero window: {connected} connected, {sent} bytes sent; memory pressure entered {pressures} times, refused at the memory limit {limited}; reset: {idled} idle, {memory} orphans on memory, {timeout} on timeout (orphans peaked at {orphans_peak}); {probes} window probes; attackers gone {gone:?} after the silence; legitimate {w:?}; mbufs {before} at the start, peak {peak}"
    );
    w.assert_served(MIN_REQUESTS, &out);
    assert_eq!(connected, CLIENTS, "the attacker's connections opened");
    assert!(sent >= CLIENTS * REQUEST * 9 / 10, "the requests went out: {sent} bytes");
    // The connections together hold at most their limit (12/16 of the pool, Linux
    // `tcp_mem[2]`), each its fair share under pressure, and the echo reads only what it
    // can pass on: in use stay the limit plus what was in use at the start (the RX
    // rings), clear of the reserve.
    let bound = f64::from(POOL) * 12.0 / 16.0 + before;
    assert!(peak < bound, "peak {peak} mbufs in use, bound {bound}");
    // Which memory defence holds them depends on timing: memory pressure (Linux
    // `tcp_mem[1]`) holding each connection to its share, and the hard limit refusing
    // what arrives past it (`tcp_mem[2]`, TCPMemoryLimited) if pressure did not suffice.
    // A run on a slower machine stayed under the hard limit by pressure alone.
    assert!(pressures + limited > 0.0, "a memory defence acted: pressure entered {pressures} times, {limited} refused");
    assert!(probes > 0.0, "the closed windows were probed");
    // Which defence ends a connection depends on timing: the echo's idle timeout if it
    // never got to read the FIN (blocked behind the closed window for 5 s), else as an
    // orphan, by the orphan limit or the unanswered probes.
    assert!(
        idled + memory + timeout >= CLIENTS as f64,
        "each attacking connection was reset: {idled} idle, {memory} orphans on memory, {timeout} on timeout"
    );
    let took = a.wait_reclaimed(before, Duration::from_secs(10));
    eprintln!("zero window: reclaimed {took:?} after the load");
    drop(attacker);
    a.stop();
}

#[test]
fn tiny_segments_above_a_hole() {
    if !require_root("tiny_segments_above_a_hole") {
        return;
    }
    let _one = serial();
    let a = Arena::start(net(1), "", "idle_timeout_ms = 4000");
    let before = a.in_use();
    const CONNS: u64 = 30;
    const SEGMENTS: u64 = 800;
    let (w, out, peak, mut attacker) = under_load(&a, |a| {
        a.attack(&["tiny", &a.strait_ip, &a.attacker_ip, &CONNS.to_string(), &SEGMENTS.to_string()])
    });
    let established = attacker.wait_for("established", Duration::from_secs(5));
    let sent = attacker.wait_for("sent", Duration::from_secs(10));
    let page = a.scrape();
    let (queued, dropped, pruned) = (
        sample(&page, "strait_tcp_ofo_queue_total"),
        sample(&page, "strait_tcp_ofo_drop_total"),
        sample(&page, "strait_tcp_ofo_pruned_total"),
    );
    eprintln!(
        "tiny segments: {established} connections, {sent} segments; legitimate {w:?}; mbufs {before} at the start, peak {peak}; TCPOFOQueue {queued} TCPOFODrop {dropped} OfoPruned {pruned}"
    );
    w.assert_served(MIN_REQUESTS, &out);
    assert_eq!(established, CONNS, "the attacker's connections opened");
    assert!(sent as f64 > f64::from(POOL), "the attack offers more segments than the pool has mbufs");
    // Each attacking connection holds at most its receive budget (128 KiB of buffers, 60
    // mbufs): far below memory pressure.
    let bound = before + (CONNS * 60) as f64 + 1024.0;
    assert!(peak < bound, "peak {peak} mbufs in use, bound {bound}");
    assert!(dropped > 0.0, "the defence is counted: TCPOFODrop {dropped}, OfoPruned {pruned}");
    drop(attacker);
    // The attacker's connections idle out (4 s) and give their mbufs back.
    let took = a.wait_reclaimed(before, Duration::from_secs(10));
    eprintln!("tiny segments: reclaimed {took:?} after the load");
    a.stop();
}

#[test]
fn syn_flood_from_spoofed_sources() {
    if !require_root("syn_flood_from_spoofed_sources") {
        return;
    }
    let _one = serial();
    let a = Arena::start(net(2), "synack_retries = 2", "");
    let before = a.in_use();
    let cookies_before = a.metric("strait_tcp_syncookies_sent_total");
    let (w, out, peak, flood) =
        under_load(&a, |a| a.attack_to_end(&["syn-flood", &a.strait_ip, "60000", "8"], Duration::from_secs(20)));
    let page = a.scrape();
    let cookies = sample(&page, "strait_tcp_syncookies_sent_total") - cookies_before;
    let sent = common::attack::said(&flood, "sent");
    eprintln!("syn flood: {sent} SYNs; legitimate {w:?}; mbufs {before} at the start, peak {peak}; cookies sent {cookies}");
    w.assert_served(MIN_REQUESTS, &out);
    assert!(sent > u64::from(POOL), "the flood offers more SYNs than the pool has mbufs ({sent})");
    assert!(cookies > 1000.0, "SYN cookies answered the overflow: {cookies}");
    // Half-open connections are bounded by the SYN backlog (4096), each a SYN-ACK's mbuf
    // at most until its first retransmission.
    let bound = before + 4096.0 + 1024.0;
    assert!(peak < bound, "peak {peak} mbufs in use, bound {bound}");
    // Half-open connections are dropped after their SYN-ACK retransmissions
    // (`synack_retries = 2`: 1 + 2 + 4 s).
    let took = a.wait_reclaimed(before, Duration::from_secs(20));
    eprintln!("syn flood: reclaimed {took:?} after the load");
    a.stop();
}

#[test]
fn forged_cookie_acks() {
    if !require_root("forged_cookie_acks") {
        return;
    }
    let _one = serial();
    let a = Arena::start(net(3), "", "");
    let before = a.in_use();
    const ACKS: u64 = 30_000;
    let (w, out, peak, said) = under_load(&a, |a| {
        a.attack_to_end(&["forged-acks", &a.strait_ip, &a.attacker_ip, &ACKS.to_string()], Duration::from_secs(30))
    });
    let page = a.scrape();
    let (not_recent, recv) =
        (sample(&page, "strait_tcp_syn_cookies_not_recent_total"), sample(&page, "strait_tcp_syncookies_recv_total"));
    let rsts = common::attack::said(&said, "rsts");
    eprintln!("forged ACKs: {ACKS} sent, {rsts} RSTs back; legitimate {w:?}; mbufs {before} at the start, peak {peak}; TCPSynCookiesNotRecent {not_recent}, SyncookiesRecv {recv}");
    w.assert_served(MIN_REQUESTS, &out);
    // Most arrive (a loaded machine's tap backlog drops some of a 30 000-packet burst, as
    // the 24 000-odd RSTs back show the other way); every one that did was refused unchecked.
    assert!(not_recent >= ACKS as f64 * 0.5, "the forged ACKs were refused unchecked: {not_recent}");
    assert!(recv <= 0.0, "no forged ACK was taken for a cookie: {recv}");
    assert!(rsts > 0, "the attacker is answered with resets, as a listener answers a stray ACK");
    let bound = before + 1024.0;
    assert!(peak < bound, "peak {peak} mbufs in use, bound {bound}");
    let took = a.wait_reclaimed(before, Duration::from_secs(5));
    eprintln!("forged ACKs: reclaimed {took:?} after the load");
    a.stop();
}

#[test]
fn closing_churn_fills_time_wait() {
    if !require_root("closing_churn_fills_time_wait") {
        return;
    }
    let _one = serial();
    const BUCKETS: f64 = 256.0;
    let a = Arena::start(net(4), &format!("max_tw_buckets = {BUCKETS}"), "");
    let before = a.in_use();
    // The attack: wrk from the attacker address closing every connection after one
    // request; nginx closes first, strait passes the FIN on and so closes first towards
    // the client: every such connection would leave a TIME-WAIT entry.
    let (w, out, peak, (churn, tw_peak)) = under_load(&a, |a| {
        let mut churn = a.s.client.spawn(
            "wrk",
            &["-t1", "-c32", "-d8s", "-H", "Connection: close", &format!("http://{}:80/index.html", a.strait_ip)],
        );
        let mut tw_peak = 0.0f64;
        while !matches!(churn.try_wait(), Ok(Some(_))) {
            tw_peak = tw_peak.max(a.metric("strait_tcp_time_wait"));
            sleep(Duration::from_millis(100));
        }
        (Wrk::finish(churn, Duration::from_secs(1)).0, tw_peak)
    });
    let page = a.scrape();
    let overflow = sample(&page, "strait_tcp_time_wait_overflow_total");
    eprintln!(
        "closing churn: {churn:?}; legitimate {w:?}; mbufs {before} at the start, peak {peak}; TIME-WAIT peak {tw_peak}, TCPTimeWaitOverflow {overflow}"
    );
    w.assert_served(MIN_REQUESTS, &out);
    assert!(churn.requests as f64 > BUCKETS * 4.0, "the churn closed many connections: {churn:?}");
    assert!(tw_peak <= BUCKETS, "TIME-WAIT entries stay within max_tw_buckets: {tw_peak}");
    assert!(overflow > 0.0, "the bound is counted: TCPTimeWaitOverflow {overflow}");
    let bound = before + 1024.0;
    assert!(peak < bound, "peak {peak} mbufs in use, bound {bound}");
    let took = a.wait_reclaimed(before, Duration::from_secs(5));
    eprintln!("closing churn: reclaimed {took:?} after the load");
    a.stop();
}

#[test]
fn out_of_window_and_paws_floods() {
    if !require_root("out_of_window_and_paws_floods") {
        return;
    }
    let _one = serial();
    let a = Arena::start(net(5), "", "idle_timeout_ms = 3000");
    let before = a.in_use();
    const ACKS: u64 = 20_000;
    let (w, out, peak, (oow, paws)) = under_load(&a, |a| {
        let mut oow = a.attack(&["out-of-window", &a.strait_ip, &a.attacker_ip, &ACKS.to_string()]);
        oow.wait_for("acks", Duration::from_secs(15));
        let mut paws = a.attack(&["paws", &a.strait_ip, &a.attacker_ip, &ACKS.to_string()]);
        paws.wait_for("acks", Duration::from_secs(15));
        (oow, paws)
    });
    let page = a.scrape();
    let (seq, pawsd) = (sample(&page, "strait_tcp_ack_skipped_seq_total"), sample(&page, "strait_tcp_ack_skipped_paws_total"));
    let answered = |at: &common::attack::Attacker| {
        let s = &at.said;
        (common::attack::said(s, "acks"), s.lines().find_map(|l| l.strip_prefix("seconds ")).unwrap_or("?").to_string())
    };
    let ((oow_acks, oow_s), (paws_acks, paws_s)) = (answered(&oow), answered(&paws));
    eprintln!(
        "floods: out-of-window {ACKS} in {oow_s} s, {oow_acks} ACKs back; PAWS {ACKS} in {paws_s} s, {paws_acks} ACKs back; TCPACKSkippedSeq {seq}, TCPACKSkippedPAWS {pawsd}; legitimate {w:?}; mbufs {before} at the start, peak {peak}"
    );
    w.assert_served(MIN_REQUESTS, &out);
    assert!(!paws.said.contains("no-timestamps"), "strait negotiated timestamps:\n{}", paws.said);
    // Linux `tcp_invalid_ratelimit`: one duplicate ACK per 500 ms and connection.
    let ceiling = |secs: &str| secs.parse::<f64>().map_or(40, |s| (s * 2.0) as u64 + 3);
    assert!(oow_acks >= 1, "the first out-of-window segment is answered (RFC 9293 §3.10.7.4)");
    assert!(oow_acks <= ceiling(&oow_s), "out-of-window: {oow_acks} ACKs in {oow_s} s");
    assert!(paws_acks <= ceiling(&paws_s), "PAWS: {paws_acks} ACKs in {paws_s} s");
    // Most of each burst arrives (a loaded machine's tap backlog may drop some).
    assert!(seq >= ACKS as f64 * 0.5, "TCPACKSkippedSeq {seq}");
    assert!(pawsd >= ACKS as f64 * 0.5, "TCPACKSkippedPAWS {pawsd}");
    let bound = before + 1024.0;
    assert!(peak < bound, "peak {peak} mbufs in use, bound {bound}");
    drop((oow, paws));
    // The two connections idle out (3 s).
    let took = a.wait_reclaimed(before, Duration::from_secs(10));
    eprintln!("floods: reclaimed {took:?} after the load");
    a.stop();
}

#[test]
fn spoofed_neighbours() {
    if !require_root("spoofed_neighbours") {
        return;
    }
    let _one = serial();
    let a = Arena::start(net(6), "synack_retries = 2", "");
    let before = a.in_use();
    let front = a.s.net.front;
    let (w, out, peak, ()) = under_load(&a, |a| {
        // 250 SYNs, then again: the second round meets the rate limit's empty bucket.
        for _ in 0..2 {
            a.attack_to_end(&["spoof-syn", front, &a.strait_ip], Duration::from_secs(10));
            sleep(Duration::from_millis(500));
        }
    });
    let limited = a.metric("strait_net_dropped_frames_total{port=\"front\",reason=\"arp_resolution_rate_limited\"}");
    eprintln!("spoofed neighbours: legitimate {w:?}; mbufs {before} at the start, peak {peak}; resolutions refused {limited}");
    w.assert_served(MIN_REQUESTS, &out);
    // 500 sources, a burst of 100 and 100/s: at least 200 refused.
    assert!(limited >= 200.0, "resolutions refused: {limited}");
    // SYN-ACKs waiting for ARP: at most 64 per port queue.
    let bound = before + 1024.0;
    assert!(peak < bound, "peak {peak} mbufs in use, bound {bound}");
    // Half-open connections to addresses nobody has end after their SYN-ACK retries
    // (`synack_retries = 2`: 1 + 2 + 4 s).
    let took = a.wait_reclaimed(before, Duration::from_secs(20));
    eprintln!("spoofed neighbours: reclaimed {took:?} after the load");
    a.stop();
}

#[test]
fn idle_connections_to_echo() {
    if !require_root("idle_connections_to_echo") {
        return;
    }
    let _one = serial();
    const LIMIT: u64 = 500;
    const IDLE_MS: u64 = 3000;
    let a = Arena::start(net(7), "", &format!("max_connections = {LIMIT}\nidle_timeout_ms = {IDLE_MS}"));
    let before = a.in_use();
    const CONNS: u64 = 2000;
    let started = Instant::now();
    let (w, out, peak, said) = under_load(&a, |a| {
        a.attack_to_end(&["idle", &a.strait_ip, "7", &a.attacker_ip, &CONNS.to_string(), "6"], Duration::from_secs(30))
    });
    let page = a.scrape();
    let (refused, idled) =
        (sample(&page, "strait_app_refused_max_connections_total"), sample(&page, "strait_app_idle_timeouts_total"));
    let ended = common::attack::said(&said, "ended");
    eprintln!(
        "idle connections: {CONNS} opened, {ended} ended by strait; refused at the limit {refused}, idle timeouts {idled}; legitimate {w:?}; mbufs {before} at the start, peak {peak}; {:?}",
        started.elapsed()
    );
    w.assert_served(MIN_REQUESTS, &out);
    assert!(refused >= (CONNS - LIMIT) as f64, "app_refused_max_connections {refused}");
    assert!(idled >= LIMIT as f64 * 0.9, "app_idle_timeouts {idled}");
    // Every attacking connection was ended by one defence or the other. The client may not
    // see every RST: 1 500 refusals leave within milliseconds, beyond the tap's input
    // backlog in the kernel (`netdev_max_backlog`, 1 000).
    assert!(refused + idled >= CONNS as f64, "strait ended the attacker's connections: {refused} + {idled} of {CONNS}");
    let bound = before + 1024.0;
    assert!(peak < bound, "peak {peak} mbufs in use, bound {bound}");
    let took = a.wait_reclaimed(before, Duration::from_secs(5));
    eprintln!("idle connections: reclaimed {took:?} after the load");
    a.stop();
}
