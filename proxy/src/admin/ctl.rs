//! `strait ctl`: the admin API's client. Sends one request line to the socket and prints
//! the answer; the exit status says whether the request succeeded.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// The default admin socket (`[admin] socket` in the shipped configuration and unit).
pub const DEFAULT_SOCKET: &str = "/run/strait/admin.sock";

/// Longest answer read (a `show connections` of many sessions stays well below).
const MAX_ANSWER: u64 = 64 << 20;

/// Sends `words` as one request to `socket`: `Ok(output)` when the server answered `ok`,
/// `Err(reason)` when it answered `error: ...` or could not be reached.
pub fn request(socket: &Path, words: &[String], timeout: Duration) -> Result<String, String> {
    let line = words.join(" ");
    if line.contains('\n') {
        return Err("a request is one line".to_string());
    }
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.write_all(format!("{line}\n").as_bytes()).map_err(|e| format!("sending: {e}"))?;
    let mut answer = String::new();
    s.take(MAX_ANSWER).read_to_string(&mut answer).map_err(|e| format!("reading the answer: {e}"))?;
    parse_answer(&answer)
}

/// Splits an answer into its output and verdict (the last line).
pub fn parse_answer(answer: &str) -> Result<String, String> {
    let body = answer.strip_suffix('\n').unwrap_or(answer);
    if let Some(out) = body.strip_suffix("ok") {
        if out.is_empty() || out.ends_with('\n') {
            return Ok(out.to_string());
        }
    }
    match body.find("error: ") {
        Some(i) if body[..i].is_empty() || body[..i].ends_with('\n') => Err(body[i + "error: ".len()..].to_string()),
        _ => Err(format!("malformed answer: {answer:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split_into_output_and_verdict() {
        assert_eq!(parse_answer("a\nb\nok\n"), Ok("a\nb\n".to_string()));
        assert_eq!(parse_answer("ok\n"), Ok(String::new()));
        assert_eq!(parse_answer("error: no server\n"), Err("no server".to_string()));
        assert!(parse_answer("garbage").is_err_and(|e| e.starts_with("malformed")));
        assert!(parse_answer("nook\n").is_err());
    }
}
