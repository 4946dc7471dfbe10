//! The Debian package (deploy/package.sh, issue 16): built from this build's binary, it
//! holds the binary, the units, the hugepage script, the example configuration as a
//! conffile, man pages generated from the CLI, shell completions and the documentation,
//! and depends on the packages of the DPDK libraries the binary links. The extracted man
//! page renders with `man`, the completions parse, the binary runs, and the units are
//! those `systemd_and_metrics` verifies with `systemd-analyze`.

mod common;

use std::path::Path;
use std::process::Command;

use common::unique;

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_debian_package_holds_everything_an_operator_needs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(unique("strait-pkg-"));
    let out = dir.join("out");
    let deb = run(
        repo.join("deploy/package.sh").to_str().expect("path"),
        &["--bin", env!("CARGO_BIN_EXE_strait"), "--out", out.to_str().expect("path")],
    );
    let deb = deb.trim();
    assert!(deb.ends_with(".deb") && Path::new(deb).exists(), "package.sh printed {deb:?}");

    let listing = run("dpkg-deb", &["-c", deb]);
    for path in [
        "./usr/bin/strait",
        "./lib/systemd/system/strait.service",
        "./lib/systemd/system/strait-hugepages.service",
        "./usr/lib/strait/setup-hugepages.sh",
        "./etc/strait/strait.toml",
        "./etc/default/strait",
        "./usr/share/man/man1/strait.1.gz",
        "./usr/share/man/man1/strait-run.1.gz",
        "./usr/share/man/man1/strait-ctl.1.gz",
        "./usr/share/man/man1/strait-check-config.1.gz",
        "./usr/share/bash-completion/completions/strait",
        "./usr/share/zsh/vendor-completions/_strait",
        "./usr/share/fish/vendor_completions.d/strait.fish",
        "./usr/share/strait/prometheus/strait-alerts.yml",
        "./usr/share/strait/grafana/strait-dashboard.json",
        "./usr/share/doc/strait/README.md",
        "./usr/share/doc/strait/copyright",
    ] {
        assert!(listing.lines().any(|l| l.ends_with(path)), "{path} missing from the package:\n{listing}");
    }
    assert!(listing.lines().any(|l| l.starts_with("-rwxr-xr-x root/root") && l.ends_with("./usr/bin/strait")), "{listing}");
    let depends = run("dpkg-deb", &["-f", deb, "Depends"]);
    assert!(depends.contains("librte-eal") && depends.contains("librte-ethdev") && depends.contains("libc6"), "Depends: {depends}");
    let conffiles = run("sh", &["-c", &format!("dpkg-deb --ctrl-tarfile {deb} | tar -xO ./conffiles")]);
    assert_eq!(conffiles, "/etc/strait/strait.toml\n/etc/default/strait\n");

    let root = dir.join("root");
    run("dpkg-deb", &["-x", deb, root.to_str().expect("path")]);
    let man = run("man", &["-l", "-P", "cat", root.join("usr/share/man/man1/strait.1.gz").to_str().expect("path")]);
    assert!(man.contains("strait-run") && man.contains("strait-check-config"), "man page:\n{man}");
    let man_run = run("man", &["-l", "-P", "cat", root.join("usr/share/man/man1/strait-run.1.gz").to_str().expect("path")]);
    assert!(man_run.contains("--config"), "strait-run(1):\n{man_run}");
    run("bash", &["-n", root.join("usr/share/bash-completion/completions/strait").to_str().expect("path")]);
    // Stripped of debug info (as dh_strip): this build's binary has it (`debug = 1`), and it
    // is most of the file.
    let shipped = std::fs::metadata(root.join("usr/bin/strait")).map(|m| m.len()).expect("shipped binary");
    let built = std::fs::metadata(env!("CARGO_BIN_EXE_strait")).map(|m| m.len()).expect("built binary");
    assert!(shipped * 2 < built, "the packaged binary ({shipped} bytes) keeps the debug info of the build ({built} bytes)");
    let version = run(root.join("usr/bin/strait").to_str().expect("path"), &["--version"]);
    assert!(version.starts_with("strait "), "{version}");
    for unit in ["strait.service", "strait-hugepages.service"] {
        let shipped = std::fs::read(root.join("lib/systemd/system").join(unit)).expect("unit");
        assert_eq!(shipped, std::fs::read(repo.join("deploy/systemd").join(unit)).expect("unit"), "{unit}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `deploy/install.sh` (the unit's comment and the README name it) builds the package and
/// hands it to apt, which would install it with what it depends on. apt-get is replaced
/// by a stub that runs the real `apt-get --simulate` (nothing changes on the test machine):
/// apt resolves every dependency and would unpack and configure `strait`.
#[test]
fn install_sh_installs_the_package_with_apt() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(unique("strait-install-"));
    let stub = dir.join("bin");
    std::fs::create_dir_all(&stub).expect("stub dir");
    let log = dir.join("apt-args");
    let script = format!(
        "#!/bin/sh\necho \"$@\" >{log}\nexec /usr/bin/apt-get --simulate \"$@\"\n",
        log = log.display()
    );
    std::fs::write(stub.join("apt-get"), script).expect("stub");
    run("chmod", &["0755", stub.join("apt-get").to_str().expect("path")]);
    let path = format!("{}:{}", stub.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(repo.join("deploy/install.sh"))
        .args(["--bin", env!("CARGO_BIN_EXE_strait"), "--out", dir.join("out").to_str().expect("path")])
        .env("PATH", path)
        .output()
        .expect("run install.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "install.sh: {text}");
    let args = std::fs::read_to_string(&log).expect("apt-get was called");
    assert!(args.starts_with("install -y ") && args.trim_end().ends_with(".deb"), "apt-get {args}");
    assert!(text.contains("Inst strait (") && text.contains("Conf strait ("), "apt would not install it:\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The packaged hugepage set-up (`strait-hugepages.service` runs it with
/// `/etc/default/strait`): it reserves `STRAIT_HUGEPAGES` 2 MiB pages and mounts hugetlbfs
/// at /dev/hugepages. Run in a private mount namespace where the kernel's
/// `nr_hugepages` file is a bind-mounted stand-in, so the test machine keeps its own
/// reservation and mounts (and a mount point the script had to create is removed again).
#[test]
fn the_hugepage_script_reserves_what_strait_hugepages_asks() {
    if !common::require_root("the_hugepage_script_reserves_what_strait_hugepages_asks") {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = repo.join("deploy/setup-hugepages.sh").canonicalize().expect("script");
    let dir = std::env::temp_dir().join(unique("strait-hp-"));
    std::fs::create_dir_all(&dir).expect("dir");
    let fake = dir.join("nr_hugepages");
    std::fs::write(&fake, "0\n").expect("fake");
    let inner = format!(
        "mount --bind {fake} /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages && \
         {script} && mountpoint -q /dev/hugepages && findmnt -n -o FSTYPE /dev/hugepages",
        fake = fake.display(),
        script = script.display()
    );
    // The script creates the mount point if missing (mkdir is not namespaced): put things
    // back as found.
    let had_dir = Path::new("/dev/hugepages").exists();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &inner])
        .env("STRAIT_HUGEPAGES", "64")
        .output()
        .expect("unshare");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let reserved = std::fs::read_to_string(&fake).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    if !had_dir {
        let _ = std::fs::remove_dir("/dev/hugepages");
    }
    assert!(out.status.success(), "setup-hugepages.sh: {text}");
    assert_eq!(reserved.trim(), "64", "STRAIT_HUGEPAGES=64 written to nr_hugepages");
    assert!(text.contains("hugepages: 64 x 2 MiB at /dev/hugepages") && text.contains("hugetlbfs"), "{text}");
}
