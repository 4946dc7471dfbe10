#!/usr/bin/env bash
# Installs what building, running and testing Strait needs on Debian 12, as root.
# Idempotent: packages already present are not fetched again; `apt-get update` runs once,
# only when something is missing.
set -euo pipefail

PACKAGES=(
  # DPDK 22.11 (headers, pkg-config file, PMDs incl. net_tap and net_af_packet)
  libdpdk-dev dpdk
  # bindgen needs libclang; the C shim needs a compiler
  clang libclang-dev pkg-config build-essential
  # test peers and tools: namespaces, ping, captures, load generator, real backend
  iproute2 iputils-ping ethtool python3 tshark wrk nginx-light procps kmod curl
  # side-by-side benchmark (deploy/bench/run.sh): the proxy Strait is compared with;
  # valgrind for the instruction counts (callgrind: the engine bench, BENCH_CALLGRIND=1)
  haproxy valgrind
  # metrics: a real Prometheus server for the scrape test, and promtool
  prometheus
  # SYN-flood test (proxy/tests/ops_synflood.rs); systemd-analyze for the unit test;
  # man for the package test's man page (proxy/tests/package.rs)
  hping3 systemd man-db
  # packet filtering in test namespaces (silent peers, the lossy benchmark)
  nftables
  # an IPv6 router advertising a default route and a prefix (proxy/tests/ipv6_link.rs)
  radvd
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer for it.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: no Rust toolchain (cargo) on PATH. Install Rust >= 1.75 with rustup, then rerun." >&2
  exit 1
fi
if ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add clippy
fi
# The test command ends with a short fuzz run (fuzz/run-short.sh), which needs cargo-fuzz
# (from crates.io; it runs on the stable toolchain with RUSTC_BOOTSTRAP=1).
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
pkg-config --atleast-version=22.11 libdpdk || { echo "error: libdpdk >= 22.11 not found" >&2; exit 1; }
echo "dependencies OK: DPDK $(pkg-config --modversion libdpdk), $(cargo --version)"
