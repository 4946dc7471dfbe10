//! The small, strict HTTP/1.x subset the metrics endpoint speaks (sans-IO): parse one
//! request head from a buffer, and build the response bytes.
//!
//! Only a request head is accepted: a request announcing a body (`Content-Length` other
//! than 0, or any `Transfer-Encoding`) is answered 400 and the connection closed, which
//! also rules out request smuggling. Every error closes the connection.

/// Largest request head accepted (request line + headers + blank line); a longer one is
/// answered 431 (RFC 6585 §5).
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// The path served.
pub const METRICS_PATH: &str = "/metrics";

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method token.
    pub method: String,
    /// The path, query string removed (origin form; absolute form reduced to its path).
    pub path: String,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// HTTP/1.0 (the response says `Connection: keep-alive` when it keeps the connection).
    pub http10: bool,
}

/// Why a request head is refused; each maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Malformed request line or header, missing/duplicate `Host`, or a body (400).
    BadRequest,
    /// The head is longer than [`MAX_REQUEST_HEAD`] (431).
    TooLarge,
    /// An HTTP version other than 1.0 and 1.1 (505).
    Version,
}

/// Outcome of parsing the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// Not a full head yet (and not too long yet).
    Partial,
    /// A request, and the number of bytes its head took.
    Complete(Request, usize),
    /// A refused request: answer and close.
    Error(RequestError),
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// `value` without leading and trailing optional whitespace (RFC 9110 §5.5: SP / HTAB).
fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// Parses the request head at the start of `buf`.
///
/// Lines end in CRLF or a bare LF (RFC 9112 §2.2 allows recognising LF); empty lines
/// before the request line are skipped (same section).
pub fn parse_request(buf: &[u8]) -> Parse {
    // Skip leading empty lines.
    let mut start = 0;
    while start < buf.len() {
        if buf[start..].starts_with(b"\r\n") {
            start += 2;
        } else if buf[start] == b'\n' {
            start += 1;
        } else {
            break;
        }
    }
    // Collect lines until the empty one that ends the head.
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut pos = start;
    let end = loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            return if buf.len() >= MAX_REQUEST_HEAD {
                Parse::Error(RequestError::TooLarge)
            } else {
                Parse::Partial
            };
        };
        let line_end = pos + nl;
        if line_end + 1 > MAX_REQUEST_HEAD {
            return Parse::Error(RequestError::TooLarge);
        }
        let line = &buf[pos..line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos = line_end + 1;
        if line.is_empty() {
            break pos;
        }
        lines.push(line);
    };
    match parse_head(&lines) {
        Ok(req) => Parse::Complete(req, end),
        Err(e) => Parse::Error(e),
    }
}

fn parse_head(lines: &[&[u8]]) -> Result<Request, RequestError> {
    let (request_line, headers) = lines.split_first().ok_or(RequestError::BadRequest)?;
    // RFC 9112 §3: method SP request-target SP HTTP-version, single spaces.
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::BadRequest);
    };
    if !is_token(method) {
        return Err(RequestError::BadRequest);
    }
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        v if v.len() == 8
            && v.starts_with(b"HTTP/")
            && v[5].is_ascii_digit()
            && v[6] == b'.'
            && v[7].is_ascii_digit() =>
        {
            return Err(RequestError::Version)
        }
        _ => return Err(RequestError::BadRequest),
    };
    let path = request_path(target)?;

    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive_token = false;
    for line in headers {
        // RFC 9112 §5.2: obsolete line folding is rejected.
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            return Err(RequestError::BadRequest);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(RequestError::BadRequest)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        // RFC 9112 §5.1: no whitespace between the field name and the colon.
        if !is_token(name) {
            return Err(RequestError::BadRequest);
        }
        let value = trim_ows(value);
        if value.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
            return Err(RequestError::BadRequest);
        }
        let value = std::str::from_utf8(value).map_err(|_| RequestError::BadRequest)?;
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for opt in value.split(',').map(str::trim) {
                close |= opt.eq_ignore_ascii_case("close");
                keep_alive_token |= opt.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if value != "0" {
                return Err(RequestError::BadRequest);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(RequestError::BadRequest);
        }
    }
    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without exactly one
    // Host field; HTTP/1.0 may omit it.
    if hosts > 1 || (!http10 && hosts == 0) {
        return Err(RequestError::BadRequest);
    }
    // RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
    let keep_alive = !close && (!http10 || keep_alive_token);
    let method = String::from_utf8_lossy(method).into_owned();
    Ok(Request {
        method,
        path,
        keep_alive,
        http10,
    })
}

/// The path of a request target in origin form (`/metrics?x`) or absolute form
/// (`http://host:9100/metrics`, RFC 9112 §3.2.2); other forms are refused.
fn request_path(target: &[u8]) -> Result<String, RequestError> {
    let target = std::str::from_utf8(target).map_err(|_| RequestError::BadRequest)?;
    if target.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(RequestError::BadRequest);
    }
    let origin = if target.starts_with('/') {
        target
    } else {
        let rest = target
            .strip_prefix("http://")
            .or_else(|| target.strip_prefix("https://"))
            .ok_or(RequestError::BadRequest)?;
        rest.find('/').map_or("/", |i| &rest[i..])
    };
    let path = origin.split(['?', '#']).next().unwrap_or(origin);
    Ok(path.to_string())
}

/// The bytes of a response: status line, `Content-Length`, `extra_headers`, `Connection`
/// when needed, and `body` unless `send_body` is false (HEAD: the headers still announce
/// the length the body would have, RFC 9110 §9.3.2).
pub fn response(
    status: u16,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    send_body: bool,
    close: bool,
    http10: bool,
) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in extra_headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    } else if http10 {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if send_body {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Request, usize) {
        match parse_request(buf) {
            Parse::Complete(r, n) => (r, n),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn get_metrics_http11_keeps_alive() {
        let buf = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nGET";
        let (r, n) = complete(buf);
        assert_eq!(
            r,
            Request {
                method: "GET".into(),
                path: "/metrics".into(),
                keep_alive: true,
                http10: false
            }
        );
        assert_eq!(&buf[n..], b"GET", "only the head is consumed");
    }

    #[test]
    fn connection_header_and_http10_rules() {
        let (r, _) =
            complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, CLOSE\r\n\r\n");
        assert!(!r.keep_alive);
        let (r, _) = complete(b"GET /metrics HTTP/1.0\r\n\r\n");
        assert!(!r.keep_alive && r.http10);
        let (r, _) = complete(b"GET /metrics HTTP/1.0\r\nconnection: keep-alive\r\n\r\n");
        assert!(r.keep_alive && r.http10);
    }

    #[test]
    fn bare_lf_leading_blank_lines_query_and_absolute_form() {
        let buf = b"\r\n\nGET /metrics?debug=1 HTTP/1.1\nHost: x\n\nnext";
        let (r, n) = complete(buf);
        assert_eq!(r.path, "/metrics");
        assert_eq!(&buf[n..], b"next");
        let (r, _) =
            complete(b"GET http://10.0.0.1:9100/metrics HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n");
        assert_eq!(r.path, "/metrics");
        let (r, _) = complete(b"GET http://10.0.0.1 HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n");
        assert_eq!(r.path, "/");
    }

    #[test]
    fn partial_until_the_blank_line() {
        for buf in [
            &b""[..],
            b"GET /metr",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(
                parse_request(buf),
                Parse::Partial,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    #[test]
    fn too_large_heads() {
        let mut buf = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
        buf.resize(MAX_REQUEST_HEAD, b'a');
        assert_eq!(parse_request(&buf), Parse::Error(RequestError::TooLarge));
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request(&buf), Parse::Error(RequestError::TooLarge));
        // A head just within the limit is fine.
        let mut ok = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        ok.resize(MAX_REQUEST_HEAD - 4, b'a');
        ok.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(parse_request(&ok), Parse::Complete(_, n) if n == MAX_REQUEST_HEAD));
    }

    #[test]
    fn malformed_heads_are_bad_requests() {
        let bad: &[&[u8]] = &[
            b"GET\r\n\r\n",
            b"GET /metrics\r\nHost: x\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            b"G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET ftp://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /metrics HTTPS/1.1\r\nHost: x\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n",
            b"GET /m\xc3\xa9trics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
        ];
        for buf in bad {
            assert_eq!(
                parse_request(buf),
                Parse::Error(RequestError::BadRequest),
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    #[test]
    fn other_versions_are_505() {
        for v in ["HTTP/2.0", "HTTP/0.9", "HTTP/1.2"] {
            let buf = format!("GET /metrics {v}\r\nHost: x\r\n\r\n");
            assert_eq!(
                parse_request(buf.as_bytes()),
                Parse::Error(RequestError::Version),
                "{v}"
            );
        }
    }

    #[test]
    fn content_length_zero_is_accepted() {
        let (r, _) = complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.path, "/metrics");
    }

    #[test]
    fn response_bytes() {
        let r = response(
            200,
            &[("Content-Type", "text/plain")],
            b"hi",
            true,
            false,
            false,
        );
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nhi"
        );
        let head = response(200, &[], b"hi", false, true, false);
        assert_eq!(
            head,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
        let ka10 = response(404, &[], b"", true, false, true);
        assert_eq!(
            ka10,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
    }
}
