//! The test command installs what it runs (issue 16: `make test` on a machine with only
//! Debian 12 and rustup). Every program the tests start (`Command::new("X")`, a
//! namespace's `exec`/`spawn`, the helpers `sh`/`must`/`run`/`tool`) is found on this
//! machine and traced to its Debian package with `dpkg -S`; that package must be one
//! deploy/install-deps.sh installs, a direct (pre-)dependency of one, or part of every Debian
//! system (`Essential: yes` or `Priority: required`). The fuzz step's cargo-fuzz and
//! clippy are installed by the script too. A new test that runs a new tool fails here
//! until the script installs it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Program names the test sources start.
fn programs_in(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for call in ["Command::new(\"", ".exec(\"", ".spawn(\"", " sh(\"", " must(\"", " run(\"", "tool(\""] {
        let mut rest = src;
        while let Some(i) = rest.find(call) {
            rest = &rest[i + call.len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
            if rest[name.len()..].starts_with('"') && !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// `program`'s path in the system's directories (a fresh machine's `PATH`; not
/// /usr/local or a user's shims, which no package manages).
fn which(program: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].iter().map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

/// The package that ships `path` (usrmerge: dpkg may know it under /bin or /sbin).
fn package_of(path: &Path) -> Option<String> {
    let mut candidates = vec![path.to_path_buf()];
    if let Ok(real) = path.canonicalize() {
        candidates.push(real);
    }
    for p in candidates.clone() {
        if let Ok(rest) = p.strip_prefix("/usr") {
            candidates.push(Path::new("/").join(rest));
        }
    }
    for p in candidates {
        let out = Command::new("dpkg").arg("-S").arg(&p).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "pkg[:arch][, pkg2]: /path"
        let owner = text.lines().find(|l| !l.starts_with("diversion by") && l.ends_with(&format!(": {}", p.display())));
        if let Some(line) = owner {
            let pkgs = line.rsplit_once(": ").map(|(p, _)| p).unwrap_or_default();
            let first = pkgs.split(", ").next().unwrap_or_default();
            return Some(first.split(':').next().unwrap_or_default().to_string());
        }
    }
    None
}

fn dpkg_field(package: &str, field: &str) -> String {
    let out = Command::new("dpkg-query").args(["-W", &format!("-f=${{{field}}}"), package]).output().expect("dpkg-query");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The packages in install-deps.sh's `PACKAGES=( ... )` list.
fn listed_packages(script: &str) -> BTreeSet<String> {
    let start = script.find("PACKAGES=(").expect("PACKAGES=( in install-deps.sh") + "PACKAGES=(".len();
    let end = start + script[start..].find("\n)").expect("end of PACKAGES");
    script[start..end]
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect()
}

#[test]
fn install_deps_installs_every_program_the_tests_run() {
    let script = std::fs::read_to_string(repo().join("deploy/install-deps.sh")).expect("install-deps.sh");
    let listed = listed_packages(&script);
    assert!(listed.contains("tshark") && listed.contains("wrk"), "{listed:?}");
    // What the listed packages pull in directly.
    let mut provided = listed.clone();
    for p in &listed {
        for dep in format!("{},{}", dpkg_field(p, "Pre-Depends"), dpkg_field(p, "Depends")).split(',') {
            let name = dep.split('|').next().unwrap_or_default().split_whitespace().next().unwrap_or_default();
            provided.insert(name.split(':').next().unwrap_or_default().to_string());
        }
    }
    let mut sources = String::new();
    for dir in ["proxy/tests", "proxy/tests/common"] {
        for e in std::fs::read_dir(repo().join(dir)).expect("tests dir").flatten() {
            // Not this file: its own test has sample calls.
            if e.path().extension().is_some_and(|x| x == "rs") && !e.path().ends_with("test_deps.rs") {
                sources.push_str(&std::fs::read_to_string(e.path()).expect("read test"));
            }
        }
    }
    let mut programs = programs_in(&sources);
    // Started through another program (`ip netns exec ... nginx`, `timeout 10 hping3`):
    // named here, and still named by the tests.
    for p in ["nginx", "hping3"] {
        assert!(sources.contains(&format!("\"{p}\"")), "no test runs {p} any more: drop it here");
        programs.insert(p.to_string());
    }
    for expected in ["ip", "wrk", "tshark", "man", "promtool", "prometheus", "systemd-analyze", "python3"] {
        assert!(programs.contains(expected), "the scan finds {expected}: {programs:?}");
    }
    let mut missing = Vec::new();
    for prog in &programs {
        let Some(path) = which(prog) else {
            missing.push(format!("{prog}: not on this machine"));
            continue;
        };
        let Some(pkg) = package_of(&path) else {
            missing.push(format!("{prog} ({}): no Debian package ships it", path.display()));
            continue;
        };
        let base = dpkg_field(&pkg, "Essential") == "yes" || dpkg_field(&pkg, "Priority") == "required";
        if !(base || provided.contains(&pkg)) {
            missing.push(format!("{prog}: package {pkg} is not installed by deploy/install-deps.sh"));
        }
    }
    assert!(missing.is_empty(), "the test command would not find:\n{}", missing.join("\n"));
    // The fuzz step and the lints.
    assert!(script.contains("cargo install --locked cargo-fuzz"), "install-deps.sh installs cargo-fuzz");
    assert!(script.contains("rustup component add clippy"), "install-deps.sh adds clippy");
    let test_sh = std::fs::read_to_string(repo().join("deploy/test.sh")).expect("test.sh");
    assert!(test_sh.contains("fuzz/run-short.sh") && test_sh.contains("cargo clippy"), "{test_sh}");
    let makefile = std::fs::read_to_string(repo().join("Makefile")).expect("Makefile");
    assert!(makefile.contains("test: deps") && makefile.contains("deploy/install-deps.sh"), "make test runs the installer first");
}

#[test]
fn the_scan_finds_the_forms_the_tests_use() {
    let src = r#"Command::new("dumpcap") ns.exec("ip", &[]) s.client.spawn("wrk", &[]) let x = sh("nft", &[]); must("ss", &[]) run("man", &[]) tool("promtool") Command::new(env!("X"))"#;
    let got: Vec<String> = programs_in(src).into_iter().collect();
    assert_eq!(got, ["dumpcap", "ip", "man", "nft", "promtool", "ss", "wrk"]);
}
