//! Tests of [`super::Server`] with a raw `std::net::TcpStream` client.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::AtomicU64;

use super::*;
use crate::metrics::snapshot::LcoreSnapshot;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A server whose snapshot has one lcore whose `iterations` counts the scrapes.
fn start(limits: ServerLimits) -> Server {
    let calls = Arc::new(AtomicU64::new(0));
    let source: SnapshotSource = Arc::new(move || {
        let n = calls.fetch_add(1, Ordering::Relaxed) + 1;
        Snapshot {
            lcores: vec![LcoreSnapshot {
                lcore: 3,
                iterations: n,
                ..LcoreSnapshot::default()
            }],
            ..Snapshot::default()
        }
    });
    Server::start_with_limits(loopback(), source, limits).expect("server starts")
}

fn connect(s: &Server) -> TcpStream {
    let c = TcpStream::connect(s.local_addr()).expect("connect");
    c.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    c
}

/// A parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (head, then `Content-Length` bytes of body unless `head_only`);
/// `buf` keeps bytes read past it.
fn read_response(c: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Resp {
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = c.read(&mut tmp).expect("read head");
        assert!(
            n > 0,
            "connection closed before a response head; got {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(": ").expect("header");
            (k.to_string(), v.to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "Content-Length")
        .map(|(_, v)| v.parse().expect("length"))
        .expect("Content-Length");
    buf.drain(..head_end);
    let body_len = if head_only { 0 } else { len };
    while buf.len() < body_len {
        let n = c.read(&mut tmp).expect("read body");
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = String::from_utf8(buf.drain(..body_len).collect()).expect("utf-8 body");
    Resp {
        status,
        headers,
        body,
    }
}

fn request(c: &mut TcpStream, raw: &[u8]) -> Resp {
    c.write_all(raw).expect("write");
    read_response(c, &mut Vec::new(), false)
}

/// Asserts that the server closes `c` (EOF, or a reset) without sending anything more.
fn assert_closed(c: &mut TcpStream) {
    let mut rest = Vec::new();
    match c.read_to_end(&mut rest) {
        Ok(_) => assert!(
            rest.is_empty(),
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&rest)
        ),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
}

const GET: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";

#[test]
fn get_metrics_returns_the_exposition() {
    let s = start(ServerLimits::default());
    let mut c = connect(&s);
    let r = request(&mut c, GET);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain; version=0.0.4"));
    assert_eq!(
        r.header("Connection"),
        None,
        "HTTP/1.1 keeps the connection by default"
    );
    assert!(r.body.contains("\nstrait_up 1\n"), "{}", r.body);
    assert!(
        r.body
            .contains("strait_lcore_iterations_total{lcore=\"3\"} 1\n"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("strait_metrics_scrapes_total 1\n"),
        "{}",
        r.body
    );
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let s = start(ServerLimits::default());
    let mut c = connect(&s);
    let first = request(&mut c, GET);
    assert!(first
        .body
        .contains("strait_lcore_iterations_total{lcore=\"3\"} 1\n"));
    // Two more requests in one write, then a 404, on the same connection.
    let mut pipelined = GET.to_vec();
    pipelined.extend_from_slice(GET);
    pipelined.extend_from_slice(b"GET /nope HTTP/1.1\r\nHost: test\r\n\r\n");
    c.write_all(&pipelined).expect("write");
    let mut buf = Vec::new();
    let second = read_response(&mut c, &mut buf, false);
    let third = read_response(&mut c, &mut buf, false);
    let fourth = read_response(&mut c, &mut buf, false);
    assert!(second
        .body
        .contains("strait_lcore_iterations_total{lcore=\"3\"} 2\n"));
    assert!(third
        .body
        .contains("strait_lcore_iterations_total{lcore=\"3\"} 3\n"));
    assert!(
        third
            .body
            .contains("strait_metrics_http_connections_total 1\n"),
        "one connection for all"
    );
    assert_eq!(fourth.status, 404);
    assert!(buf.is_empty());
}

#[test]
fn connection_close_and_http10_close_after_the_response() {
    let s = start(ServerLimits::default());
    let mut c = connect(&s);
    let r = request(
        &mut c,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_closed(&mut c);

    let mut c = connect(&s);
    let r = request(&mut c, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_closed(&mut c);

    let mut c = connect(&s);
    let r = request(
        &mut c,
        b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    assert_eq!(
        request(&mut c, b"GET /metrics HTTP/1.0\r\n\r\n").status,
        200
    );
}

#[test]
fn other_paths_are_404_other_methods_405_head_has_no_body() {
    let s = start(ServerLimits::default());
    let mut c = connect(&s);
    for path in ["/", "/metricsx", "/metrics/", "/favicon.ico"] {
        let r = request(
            &mut c,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 404, "{path}");
    }
    let r = request(
        &mut c,
        b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));

    c.write_all(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    let mut buf = Vec::new();
    let head = read_response(&mut c, &mut buf, true);
    assert_eq!(head.status, 200);
    assert!(head.header("Content-Length").is_some_and(|l| l != "0"));
    assert!(buf.is_empty(), "HEAD answered with a body");
    // The connection is still usable, and the counters saw every refusal.
    let r = request(&mut c, GET);
    assert!(
        r.body
            .contains("strait_metrics_http_rejected_total{reason=\"not_found\"} 4\n"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("strait_metrics_http_rejected_total{reason=\"method\"} 1\n"),
        "{}",
        r.body
    );
}

#[test]
fn oversized_request_gets_431_and_a_close() {
    let s = start(ServerLimits::default());
    let mut c = connect(&s);
    let mut big = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Pad: ".to_vec();
    big.resize(MAX_REQUEST_HEAD + 4096, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    c.write_all(&big).expect("write");
    let r = read_response(&mut c, &mut Vec::new(), false);
    assert_eq!(r.status, 431);
    assert_eq!(r.header("Connection"), Some("close"));
    c.shutdown(Shutdown::Write).expect("shutdown");
    assert_closed(&mut c);

    let mut c = connect(&s);
    let r = request(&mut c, GET);
    assert!(
        r.body
            .contains("strait_metrics_http_rejected_total{reason=\"too_large\"} 1\n"),
        "{}",
        r.body
    );
}

#[test]
fn garbage_gets_400_and_a_close() {
    let s = start(ServerLimits::default());
    let garbage: [&[u8]; 4] = [
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
        b"\x00\x00\x00\x00\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n\r\n",
    ];
    for g in garbage {
        let mut c = connect(&s);
        let r = request(&mut c, g);
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(g));
        assert_eq!(r.header("Connection"), Some("close"));
        assert_closed(&mut c);
    }
    let mut c = connect(&s);
    let r = request(&mut c, b"GET /metrics HTTP/2.0\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 505);
    let mut c = connect(&s);
    let r = request(&mut c, GET);
    assert!(
        r.body
            .contains("strait_metrics_http_rejected_total{reason=\"bad_request\"} 4\n"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("strait_metrics_http_rejected_total{reason=\"version\"} 1\n"),
        "{}",
        r.body
    );
}

#[test]
fn a_request_that_never_completes_times_out() {
    let limits = ServerLimits {
        request_timeout: Duration::from_millis(200),
        ..ServerLimits::default()
    };
    let s = start(limits);
    let mut c = connect(&s);
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost")
        .expect("write");
    let t0 = Instant::now();
    assert_closed(&mut c);
    assert!(
        t0.elapsed() < IO_TIMEOUT,
        "closed by the server, not by our read timeout"
    );
    let mut c = connect(&s);
    let r = request(&mut c, GET);
    assert!(
        r.body
            .contains("strait_metrics_http_rejected_total{reason=\"timeout\"} 1\n"),
        "{}",
        r.body
    );
}

#[test]
fn connections_beyond_the_limit_get_503() {
    let s = start(ServerLimits {
        max_connections: 2,
        ..ServerLimits::default()
    });
    // Two connections that the server has surely accepted: each got an answer.
    let mut a = connect(&s);
    let mut b = connect(&s);
    assert_eq!(request(&mut a, GET).status, 200);
    assert_eq!(request(&mut b, GET).status, 200);
    let mut third = connect(&s);
    let r = read_response(&mut third, &mut Vec::new(), false);
    assert_eq!(r.status, 503);
    assert_closed(&mut third);
    // Once one closes, a new connection is served.
    drop(b);
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let mut c = connect(&s);
        c.write_all(GET).expect("write");
        let r = read_response(&mut c, &mut Vec::new(), false);
        if r.status == 200 {
            assert!(r
                .body
                .contains("strait_metrics_http_rejected_total{reason=\"connection_limit\"}"));
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(request(&mut a, GET).status, 200);
}

#[test]
fn a_panicking_source_gets_500_and_the_server_survives() {
    let calls = Arc::new(AtomicU64::new(0));
    let source: SnapshotSource = Arc::new(move || {
        if calls.fetch_add(1, Ordering::Relaxed) == 0 {
            panic!("source failure (expected by the test)");
        }
        Snapshot::default()
    });
    let s = Server::start(loopback(), source).expect("start");
    let mut c = connect(&s);
    let r = request(&mut c, GET);
    assert_eq!(r.status, 500);
    assert_closed(&mut c);
    let mut c = connect(&s);
    assert_eq!(request(&mut c, GET).status, 200);
}

#[test]
fn shutdown_joins_and_stops_listening() {
    let s = start(ServerLimits::default());
    let addr = s.local_addr();
    let mut idle = connect(&s);
    s.shutdown();
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after shutdown"
    );
    assert_closed(&mut idle);

    let s = start(ServerLimits::default());
    let addr = s.local_addr();
    drop(s);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after drop"
    );
}

#[test]
fn binding_a_used_address_is_an_error() {
    let s = start(ServerLimits::default());
    let source: SnapshotSource = Arc::new(Snapshot::default);
    let err = Server::start(s.local_addr(), source).expect_err("address in use");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
}
