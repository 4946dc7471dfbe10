//! The admin API's unix socket: one request line per connection, answered by a handler
//! (see [`super`] for the protocol). One thread serves clients one at a time, off the data
//! path; the socket file is created with mode 0600 (root's, as the service) and removed
//! on shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Answers one request line.
pub type Handler = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// Requests answered `ok`.
static ANSWERED_OK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Requests answered `error: ...` (unknown or malformed requests, failed commands).
static ANSWERED_ERROR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Admin requests since start: (answered ok, answered with an error)
/// (`strait_admin_requests_total{result}`).
pub fn request_counts() -> (u64, u64) {
    (ANSWERED_OK.load(Ordering::Relaxed), ANSWERED_ERROR.load(Ordering::Relaxed))
}

/// Longest request line taken.
const MAX_REQUEST: u64 = 4096;
/// How long a client may take to send its request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The running admin server.
pub struct AdminServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Listens on `path` (a stale socket file left by a previous run is replaced; its
    /// directory must exist) and answers with `handler`.
    pub fn start(path: &Path, handler: Handler) -> std::io::Result<AdminServer> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            // Only a socket file is ever replaced, never a file the operator put there.
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{}: exists and is not a socket; strait does not replace it (admin.socket)", path.display()),
                ));
            }
            // Only a socket nobody answers on is replaced: never another running strait's.
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{}: another process answers on this admin socket", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread =
            std::thread::Builder::new().name("strait-admin".into()).spawn(move || serve(&listener, &handler, &s))?;
        Ok(AdminServer { path: path.to_path_buf(), stop, thread: Some(thread) })
    }

    /// Stops serving and removes the socket file.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: &UnixListener, handler: &Handler, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, handler) {
                    tracing::warn!(error = %e, "admin client");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                tracing::warn!(error = %e, "admin socket accept failed");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn answer(stream: UnixStream, handler: &Handler) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let request = line.trim();
    tracing::info!(request, "admin request");
    let answer = handler(request);
    let counter = if answer.is_ok() { &ANSWERED_OK } else { &ANSWERED_ERROR };
    counter.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = &answer {
        tracing::warn!(request, error = %e, "admin request refused");
    }
    let mut out = match answer {
        Ok(text) => {
            let mut t = text;
            if !t.is_empty() && !t.ends_with('\n') {
                t.push('\n');
            }
            t.push_str("ok\n");
            t
        }
        Err(e) => format!("error: {}\n", e.replace('\n', "\n  ")),
    };
    if out.is_empty() {
        out.push_str("ok\n");
    }
    (&stream).write_all(out.as_bytes())
}
