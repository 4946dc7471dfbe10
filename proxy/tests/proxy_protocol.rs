//! End to end: PROXY protocol towards backends. Strait (set-up from `common::backend`) has
//! two listeners, `web` on :80 with a pool sending v1 headers and `web2` on :81 with a pool
//! sending v2 headers, both to one nginx that requires the PROXY protocol
//! (`listen ... proxy_protocol`) and logs `$proxy_protocol_addr $remote_addr`. A curl
//! through each listener must succeed and nginx must log the kernel client's own address
//! (not strait's backend address) as `$proxy_protocol_addr`.

mod common;

use std::time::{Duration, Instant};

use common::backend::{config, counter, Net, Nginx, Options, Setup, INDEX_BYTES};
use common::require_root;

const FRONT: &str = "198.18.123";
const BACK: &str = "198.18.124";

/// Strait with the two PROXY protocol listeners, nginx expecting the header.
fn setup_pp() -> Setup {
    let net = Net { front: FRONT, back: BACK, backend_port: 8080 };
    // `config` ends inside the `web` pool's table: its key first, then the v2 listener/pool.
    let toml = |tap: &str, veth: &str| {
        format!(
            "{}proxy_protocol = \"v1\"\n\n[[listener]]\nname = \"web2\"\nlisten = \"{FRONT}.2:81\"\npool = \"web2\"\n\n\
             [[pool]]\nname = \"web2\"\nservers = [{{ addr = \"{BACK}.1:8080\" }}]\nproxy_protocol = \"v2\"\n",
            config(&net, tap, veth, &Options::default())
        )
    };
    Setup::with(net, &[format!("{BACK}.1:8080")], Nginx::start_proxy_protocol, toml, &[])
}

/// `curl` from the client namespace; asserts a 200 with the whole index page.
fn curl_ok(s: &Setup, port: u16) {
    let url = format!("http://{FRONT}.2:{port}/index.html");
    let out = s
        .client
        .exec("curl", &["-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", &url]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text == format!("200 {}", INDEX_BYTES),
        "curl {url}: `{text}` {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.diagnostics()
    );
}

/// Waits until nginx's access log has `n` lines (it writes after the response).
fn access_lines(s: &Setup, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let lines: Vec<String> = s.nginx[0].access_log().lines().map(str::to_string).collect();
        if lines.len() >= n || start.elapsed() > Duration::from_secs(5) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn backends_see_the_client_address_through_proxy_protocol_v1_and_v2() {
    if !require_root("backends_see_the_client_address_through_proxy_protocol_v1_and_v2") {
        return;
    }
    let mut s = setup_pp();
    // The true client and what nginx sees as the TCP peer (strait's backend address).
    let expected = format!("{FRONT}.1 {BACK}.2");
    curl_ok(&s, 80);
    let v1 = access_lines(&s, 1);
    assert_eq!(v1, vec![expected.clone()], "v1: nginx's log\n{}", s.diagnostics());
    curl_ok(&s, 81);
    let both = access_lines(&s, 2);
    assert_eq!(both, vec![expected.clone(), expected], "v2: nginx's log\n{}", s.diagnostics());
    let line = s.stop();
    assert_eq!(counter(&line, "proxy_listener_refused_proxy_header"), None, "{line}");
    assert_eq!(counter(&line, "proxy_listener_resets"), None, "{line}");
    let web2 =
        line.split("proxy_listener_total{web2}=").nth(1).and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next());
    assert_eq!(web2, Some("1"), "one session through the v2 listener: {line}");
}
