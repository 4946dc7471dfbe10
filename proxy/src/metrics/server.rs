//! [`Server`]: the Prometheus endpoint, an HTTP/1.1 server on `mio` in its own thread, off
//! the data path.
//!
//! Each `GET /metrics` calls the snapshot source on the server thread, renders it
//! ([`super::render`]) and answers `200` with `Content-Type: text/plain; version=0.0.4`;
//! `HEAD` gets the same headers without the body; another path gets 404, another method
//! 405. Connections are persistent (HTTP/1.1 default, HTTP/1.0 with `keep-alive`) and
//! answer their requests one at a time in order (pipelining works).
//!
//! Bounds, so that a hostile or broken client costs little and never panics anything:
//! a request head over [`MAX_REQUEST_HEAD`] is answered 431, a malformed one 400, a request
//! with a body 400 (all closing the connection after a lingering close, so the client
//! reads the answer rather than a reset); at most [`ServerLimits::max_connections`] are
//! open (more are answered 503 and closed); a request must arrive and its response be
//! taken within [`ServerLimits::request_timeout`]. Each refusal is counted and exported as
//! `strait_metrics_http_rejected_total{reason}`.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::http::{
    parse_request, response, Parse, Request, RequestError, MAX_REQUEST_HEAD, METRICS_PATH,
};
use super::render::render;
use super::snapshot::{HttpStats, Snapshot};

/// What the server calls, on its own thread, for each scrape.
pub type SnapshotSource = Arc<dyn Fn() -> Snapshot + Send + Sync>;

/// Limits of the metrics server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once; further ones are answered 503 and closed.
    pub max_connections: usize,
    /// Time a connection has for each request to arrive (from accept or the previous
    /// response) and for each response to be taken by the client.
    pub request_timeout: Duration,
}

impl Default for ServerLimits {
    /// 64 connections, 30 s per request.
    fn default() -> Self {
        ServerLimits {
            max_connections: 64,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Bytes read and discarded while closing after an error, so the peer gets our answer
/// instead of a reset (lingering close, RFC 9112 §9.6).
const LINGER_MAX_BYTES: usize = 64 * 1024;
/// How long a lingering close waits for the peer to finish sending.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// Longest sleep of the event loop (it also wakes for the nearest connection deadline).
const TICK: Duration = Duration::from_secs(1);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// The running metrics endpoint. Dropping it stops the server and joins its thread.
pub struct Server {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `addr` (port 0 picks a free port, see [`Server::local_addr`]) and serves
    /// `GET /metrics` from a new thread, with [`ServerLimits::default`].
    pub fn start(addr: SocketAddr, source: SnapshotSource) -> io::Result<Server> {
        Self::start_with_limits(addr, source, ServerLimits::default())
    }

    /// [`Server::start`] with explicit limits.
    pub fn start_with_limits(
        addr: SocketAddr,
        source: SnapshotSource,
        limits: ServerLimits,
    ) -> io::Result<Server> {
        let mut listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let mut lp = EventLoop {
            poll,
            listener,
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            retry_accept: false,
            limits,
            handler: Handler {
                source,
                stats: HttpStats::default(),
            },
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name("strait-metrics".into())
            .spawn(move || lp.run())?;
        tracing::info!(addr = %local_addr, "metrics: serving /metrics");
        Ok(Server {
            local_addr,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving: closes the listener and every connection, and joins the thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::Release);
        if let Err(e) = self.waker.wake() {
            tracing::warn!(error = %e, "metrics: waking the server thread failed");
        }
        if thread.join().is_err() {
            tracing::error!("metrics: the server thread panicked");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Turns requests into responses and keeps the counters.
struct Handler {
    source: SnapshotSource,
    stats: HttpStats,
}

impl Handler {
    /// The response to `req` and whether the connection closes after it.
    fn respond(&mut self, req: &Request) -> (Vec<u8>, bool) {
        let close = !req.keep_alive;
        let head = req.method == "HEAD";
        let text = [("Content-Type", "text/plain; charset=utf-8")];
        if req.path != METRICS_PATH {
            self.stats.rejected_not_found += 1;
            return (
                response(
                    404,
                    &text,
                    b"not found: metrics are at /metrics\n",
                    !head,
                    close,
                    req.http10,
                ),
                close,
            );
        }
        if req.method != "GET" && !head {
            self.stats.rejected_method += 1;
            let headers = [text[0], ("Allow", "GET, HEAD")];
            return (
                response(
                    405,
                    &headers,
                    b"method not allowed\n",
                    true,
                    close,
                    req.http10,
                ),
                close,
            );
        }
        let source = &self.source;
        match catch_unwind(AssertUnwindSafe(|| source())) {
            Ok(mut snap) => {
                self.stats.scrapes += 1;
                snap.http = self.stats;
                let body = render(&snap);
                let headers = [("Content-Type", prometheus::TEXT_FORMAT)];
                (
                    response(200, &headers, body.as_bytes(), !head, close, req.http10),
                    close,
                )
            }
            Err(_) => {
                tracing::error!("metrics: the snapshot source panicked");
                (
                    response(500, &text, b"snapshot failed\n", !head, true, req.http10),
                    true,
                )
            }
        }
    }

    /// The response to a refused request (the connection then closes).
    fn refuse(&mut self, e: RequestError) -> Vec<u8> {
        let text = [("Content-Type", "text/plain; charset=utf-8")];
        let (status, body): (u16, &[u8]) = match e {
            RequestError::BadRequest => {
                self.stats.rejected_bad_request += 1;
                (400, b"bad request\n")
            }
            RequestError::TooLarge => {
                self.stats.rejected_too_large += 1;
                (431, b"request head too large\n")
            }
            RequestError::Version => {
                self.stats.rejected_version += 1;
                (505, b"HTTP/1.0 and HTTP/1.1 only\n")
            }
        };
        response(status, &text, body, true, true, false)
    }
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    /// Received bytes not yet parsed (a partial head, or pipelined requests).
    rbuf: Vec<u8>,
    /// The response being written, and how much of it went out.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Close once `wbuf` is written.
    close_after_write: bool,
    /// In the lingering close: write side shut, reading and discarding.
    lingering: bool,
    drained: usize,
    /// When the connection is closed if it has not progressed.
    deadline: Instant,
}

impl Conn {
    /// Makes all the progress possible without blocking; false when the connection is
    /// finished (closed by the peer, an error, or after its last response).
    fn drive(&mut self, handler: &mut Handler, limits: &ServerLimits) -> bool {
        let mut tmp = [0u8; 4096];
        loop {
            // 1. Write what is pending.
            while self.wpos < self.wbuf.len() {
                match self.stream.write(&self.wbuf[self.wpos..]) {
                    Ok(0) => return false,
                    Ok(n) => self.wpos += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            if !self.wbuf.is_empty() {
                self.wbuf.clear();
                self.wpos = 0;
                self.deadline = Instant::now() + limits.request_timeout;
            }
            // 2. After the last response: shut our side, discard what the peer still sends.
            if self.close_after_write {
                if !self.lingering {
                    self.lingering = true;
                    self.deadline = Instant::now() + LINGER_TIME;
                    if self.stream.shutdown(Shutdown::Write).is_err() {
                        return false;
                    }
                }
                loop {
                    match self.stream.read(&mut tmp) {
                        Ok(0) => return false,
                        Ok(n) => {
                            self.drained += n;
                            if self.drained > LINGER_MAX_BYTES {
                                return false;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => return false,
                    }
                }
            }
            // 3. Answer the next buffered request, if complete.
            match parse_request(&self.rbuf) {
                Parse::Complete(req, used) => {
                    self.rbuf.drain(..used);
                    let (resp, close) = handler.respond(&req);
                    self.wbuf = resp;
                    self.close_after_write = close;
                    self.deadline = Instant::now() + limits.request_timeout;
                    continue;
                }
                Parse::Error(e) => {
                    self.rbuf.clear();
                    self.wbuf = handler.refuse(e);
                    self.close_after_write = true;
                    continue;
                }
                Parse::Partial => {}
            }
            // 4. Read more; `Partial` means the buffer is below the limit.
            let room = MAX_REQUEST_HEAD
                .saturating_sub(self.rbuf.len())
                .clamp(1, tmp.len());
            match self.stream.read(&mut tmp[..room]) {
                Ok(0) => return false,
                Ok(n) => self.rbuf.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Whether closing it now abandons a request (rather than an idle keep-alive
    /// connection or a finished lingering close).
    fn mid_request(&self) -> bool {
        !self.lingering && (!self.rbuf.is_empty() || self.wpos < self.wbuf.len())
    }
}

struct EventLoop {
    poll: Poll,
    listener: TcpListener,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    /// The last accept failed with something other than `WouldBlock` (e.g. EMFILE):
    /// try again on the next tick, as no new readiness event may come.
    retry_accept: bool,
    limits: ServerLimits,
    handler: Handler,
    stop: Arc<AtomicBool>,
}

impl EventLoop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(128);
        while !self.stop.load(Ordering::Acquire) {
            let timeout = self.next_timeout();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    tracing::error!(error = %e, "metrics: poll failed; server stopped");
                    return;
                }
            }
            let mut accept = std::mem::take(&mut self.retry_accept);
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => accept = true,
                    WAKER => {}
                    token => self.drive(token),
                }
            }
            if accept {
                self.accept();
            }
            self.expire();
        }
        // Dropping the connections and the listener closes them.
        self.conns.clear();
    }

    fn next_timeout(&self) -> Duration {
        let now = Instant::now();
        let nearest = self.conns.values().map(|c| c.deadline).min();
        let until = nearest.map_or(TICK, |d| d.saturating_duration_since(now));
        let t = if self.retry_accept {
            until.min(Duration::from_millis(100))
        } else {
            until
        };
        t.min(TICK)
    }

    fn accept(&mut self) {
        loop {
            let (mut stream, _peer) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    self.retry_accept = true;
                    return;
                }
            };
            self.handler.stats.connections += 1;
            if self.conns.len() >= self.limits.max_connections {
                self.handler.stats.rejected_connection_limit += 1;
                let text = [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Retry-After", "1"),
                ];
                let busy = response(503, &text, b"too many connections\n", true, true, false);
                // Best effort on a fresh socket whose send buffer is empty; then close.
                let _ = stream.write(&busy);
                continue;
            }
            let token = Token(self.next_token);
            self.next_token = self.next_token.wrapping_add(1).max(FIRST_CONN);
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!(error = %e, "metrics: registering a connection failed");
                continue;
            }
            let conn = Conn {
                stream,
                rbuf: Vec::new(),
                wbuf: Vec::new(),
                wpos: 0,
                close_after_write: false,
                lingering: false,
                drained: 0,
                deadline: Instant::now() + self.limits.request_timeout,
            };
            self.conns.insert(token, conn);
            // Data may already be waiting; edge-triggered readiness will not repeat it.
            self.drive(token);
        }
    }

    fn drive(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if !conn.drive(&mut self.handler, &self.limits) {
            self.close(token);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            // Deregistering cannot fail for a registered socket in a way we could act on;
            // dropping the stream closes it either way.
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for token in expired {
            if self.conns.get(&token).is_some_and(Conn::mid_request) {
                self.handler.stats.rejected_timeout += 1;
            }
            self.close(token);
        }
    }
}

#[cfg(test)]
mod tests;
