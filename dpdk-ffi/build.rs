//! Build script for `dpdk-sys`: locates the system DPDK (>= 22.11) through pkg-config,
//! compiles the C shim for DPDK's static inline functions and generates bindings with
//! bindgen, restricted by allowlists to the API the Strait data plane uses.
//!
//! The C flags come verbatim from `pkg-config --cflags libdpdk`: they carry the
//! `-include rte_config.h` DPDK needs and the `-march` baseline the distribution built
//! DPDK for (Debian: `-march=corei7`). We never add `-march=native`: the binary must run
//! on any machine the packaged DPDK runs on.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_DPDK: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
    for var in [
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
        "LIBCLANG_PATH",
        "BINDGEN_EXTRA_CLANG_ARGS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let lib = pkg_config::Config::new()
        .atleast_version(MIN_DPDK)
        .cargo_metadata(false)
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!("DPDK >= {MIN_DPDK} not found through pkg-config (install libdpdk-dev): {e}")
        });

    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let cflags = pkg_config_output(&pkg_config, &["--cflags", "libdpdk"]);
    let cflags: Vec<String> = split_flags(&cflags);
    let pcfiledir = pkg_config_output(&pkg_config, &["--variable=pcfiledir", "libdpdk"]);
    let pcfiledir = pcfiledir.trim();
    if !pcfiledir.is_empty() {
        // A DPDK upgrade rewrites libdpdk.pc (its Version: line).
        println!("cargo:rerun-if-changed={pcfiledir}/libdpdk.pc");
    }

    // 1. The shim. Linked before the DPDK libraries so its references resolve against them.
    let mut build = cc::Build::new();
    build
        .file("shim/shim.c")
        .include("shim")
        .warnings(true)
        .extra_warnings(true);
    for flag in &cflags {
        build.flag(flag);
    }
    // DPDK headers trip -Wunused-parameter in a few inline helpers.
    build.flag_if_supported("-Wno-unused-parameter");
    build.compile("strait_dpdk_shim");

    // 2. Link what pkg-config says.
    for path in &lib.link_paths {
        println!("cargo:rustc-link-search=native={}", path.display());
    }
    for name in &lib.libs {
        println!("cargo:rustc-link-lib={name}");
    }

    // 3. Bindings.
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(&cflags)
        .clang_arg("-Ishim")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("strait_.*")
        .allowlist_function("rte_eal_.*")
        .allowlist_function("rte_eth_.*")
        .allowlist_function("rte_pktmbuf_.*")
        .allowlist_function("rte_mbuf_.*")
        .allowlist_function("rte_mempool_(free|lookup|avail_count|in_use_count)")
        .allowlist_function("rte_lcore_.*")
        .allowlist_function("rte_get_(next|main)_lcore")
        .allowlist_function("rte_socket_id")
        .allowlist_function("rte_ring_(create|free|lookup)")
        .allowlist_function("rte_strerror")
        .allowlist_type("rte_ether_(hdr|addr)")
        .allowlist_type("rte_(ipv4|tcp|udp)_hdr")
        .allowlist_type("rte_eth_.*")
        .allowlist_type("rte_mbuf")
        .allowlist_type("rte_mempool")
        .allowlist_type("rte_ring")
        .allowlist_var("STRAIT_.*")
        .allowlist_var("RTE_MBUF_F_.*")
        .allowlist_var("RTE_PTYPE_(L2|L3|L4)_.*")
        .allowlist_var("RTE_ETHER_.*")
        .allowlist_var("RTE_ETH_(LINK|NAME_MAX_LEN|XSTATS_NAME_SIZE).*")
        .allowlist_var("RTE_(MEMPOOL|RING)_NAMESIZE")
        .allowlist_var("RTE_MAX_ETHPORTS")
        .allowlist_var("RING_F_.*")
        .blocklist_type("max_align_t")
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .generate_comments(false)
        .generate()
        .expect("bindgen failed on the DPDK headers");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("cannot write bindings.rs");
}

fn pkg_config_output(pkg_config: &str, args: &[&str]) -> String {
    let output = Command::new(pkg_config)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {pkg_config}: {e}"));
    assert!(
        output.status.success(),
        "{pkg_config} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("pkg-config output is UTF-8")
}

/// Splits pkg-config output into flags. pkg-config escapes spaces with backslashes;
/// DPDK's flags contain none, so whitespace splitting with backslash-escape handling is
/// enough.
fn split_flags(s: &str) -> Vec<String> {
    let mut flags = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c.is_whitespace() {
            if !cur.is_empty() {
                flags.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        flags.push(cur);
    }
    flags
}
