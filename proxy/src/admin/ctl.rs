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
    let line = absolute_capture_file(words).join(" ");
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

/// `capture start FILE ...` with FILE made absolute from this process's directory
/// (the server runs elsewhere); other requests unchanged.
pub fn absolute_capture_file(words: &[String]) -> Vec<String> {
    let mut words = words.to_vec();
    if let [verb, start, file, ..] = words.as_mut_slice() {
        if verb == "capture" && start == "start" && !Path::new(file.as_str()).is_absolute() {
            if let Ok(dir) = std::env::current_dir() {
                *file = dir.join(file.as_str()).display().to_string();
            }
        }
    }
    words
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

/// An admin answer as JSON (`strait ctl --json`): `key=value` pairs on a line before any
/// section become top-level fields; a line `name:` starts a section, a list whose entries
/// are the objects of the `key=value` lines under it; other lines are collected in
/// `"message"`. Integers become numbers, `yes`/`no` booleans, the rest strings.
pub fn to_json(answer: &str) -> serde_json::Value {
    use serde_json::{Map, Value};
    fn value(v: &str) -> Value {
        match v {
            "yes" => Value::Bool(true),
            "no" => Value::Bool(false),
            _ => v.parse::<i64>().map_or_else(|_| Value::String(v.to_string()), Value::from),
        }
    }
    fn pairs(line: &str) -> Option<Map<String, Value>> {
        let mut m = Map::new();
        for w in line.split_whitespace() {
            let (k, v) = w.split_once('=')?;
            m.insert(k.to_string(), value(v));
        }
        Some(m)
    }
    let mut root = Map::new();
    let mut section: Option<String> = None;
    let mut message = Vec::new();
    for line in answer.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(name) = t.strip_suffix(':').filter(|n| !n.contains(' ') && !n.contains('=')) {
            root.insert(name.to_string(), Value::Array(Vec::new()));
            section = Some(name.to_string());
            continue;
        }
        match (pairs(t), &section) {
            (Some(obj), Some(name)) => {
                if let Some(Value::Array(list)) = root.get_mut(name) {
                    list.push(Value::Object(obj));
                }
            }
            (Some(obj), None) => root.extend(obj),
            (None, _) => message.push(t.to_string()),
        }
    }
    if !message.is_empty() {
        root.insert("message".to_string(), Value::String(message.join("\n")));
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_capture_file_is_made_absolute() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let out = absolute_capture_file(&w(&["capture", "start", "x.pcapng", "frames", "5"]));
        assert!(Path::new(&out[2]).is_absolute() && out[2].ends_with("/x.pcapng"), "{out:?}");
        assert_eq!(out[3..], w(&["frames", "5"]));
        assert_eq!(absolute_capture_file(&w(&["capture", "start", "/tmp/y"])), w(&["capture", "start", "/tmp/y"]));
        assert_eq!(absolute_capture_file(&w(&["show"])), w(&["show"]));
    }

    #[test]
    fn answers_become_json_sections_of_objects() {
        let text = "lcores=2 sessions=3 draining=no\nlisteners:\n  listener=web listen=198.18.0.2:80 pool=web state=open active=3 total=10\n\
                    servers:\n  pool=web server=198.18.1.1:8080 weight=1 admin=enabled health=up configured=yes active=3 attempts=10 failed=0\n";
        let j = to_json(text);
        assert_eq!(j["lcores"], 2);
        assert_eq!(j["draining"], false);
        assert_eq!(j["listeners"][0]["listen"], "198.18.0.2:80");
        assert_eq!(j["listeners"][0]["total"], 10);
        assert_eq!(j["servers"][0]["health"], "up");
        assert_eq!(j["servers"][0]["configured"], true);
        let j = to_json("reloaded: 1 listener(s), 1 pool(s), 2 server(s)\n");
        assert_eq!(j["message"], "reloaded: 1 listener(s), 1 pool(s), 2 server(s)");
    }

    #[test]
    fn answers_split_into_output_and_verdict() {
        assert_eq!(parse_answer("a\nb\nok\n"), Ok("a\nb\n".to_string()));
        assert_eq!(parse_answer("ok\n"), Ok(String::new()));
        assert_eq!(parse_answer("error: no server\n"), Err("no server".to_string()));
        assert!(parse_answer("garbage").is_err_and(|e| e.starts_with("malformed")));
        assert!(parse_answer("nook\n").is_err());
    }
}
