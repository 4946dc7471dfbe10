#!/usr/bin/env bash
# deploy/bench/run.sh: Strait side by side with HAProxy and with no proxy at all (issue 9),
# on DPDK net_tap ports and on net_af_xdp ports over veths; plus lossy downloads (issue 13) and uploads.
#
# One command, as root, on a machine prepared by deploy/install-deps.sh. It builds strait
# and the L2 reflector in release mode (a no-op when up to date), builds this topology of
# network namespaces, runs the same wrk workloads against the targets interleaved
# (direct, haproxy, strait, strait-xdp, direct, haproxy, ...), measures the raw ceiling of
# the tap port and of the AF_XDP port with the L2 reflector, and prints a Markdown table of
# medians.
#
#   client ns (wrk) ── veth ────────────────────────────── backend ns (nginx :8080)   direct
#   client ns       ── veth ── haproxy ns (HAProxy) ── veth ── backend ns              haproxy
#   client ns       ── tap ─── strait ns  (Strait)  ── tap ─── backend ns              strait
#   client ns       ── veth ── strait-xdp ns (Strait, net_af_xdp) ── veth ── backend   strait-xdp
#   reflector ns (pktgen) ── tap ── l2_reflector                                      ceiling, tap
#   generator ns (pktgen) ── veth ── reflector ns (l2_reflector, net_af_xdp)          ceiling, AF_XDP
#
# Both proxies are two link hops from each peer. Strait's hops are DPDK net_tap ports: the
# PMD creates the taps in the strait namespace and the script then moves their kernel
# ends into the client and backend namespaces. The veths have checksum, TSO, GSO and GRO
# offloads switched off (BENCH_KERNEL_OFFLOADS=1 keeps the defaults), so that both proxies
# see the same wire: MTU-sized frames with real checksums. The tap PMD offers no TSO, so
# the kernel peers of Strait segment and checksum in software too.
#
# strait-xdp: the same Strait, its two ports `net_af_xdp0,iface=<veth>` and
# `net_af_xdp1,iface=<veth>` on veths whose other ends are in the client and backend
# namespaces, like HAProxy's. The PMD attaches an XDP program to the Strait-side veth and
# opens an AF_XDP socket on its queue 0. AF_XDP has no offloads (no TSO, no checksum
# offload, one segment per frame): Strait segments and checksums in software.
#
# Offloads, both proxies alike. Default: `tx off tso off gso off gro off` on both ends of
# every veth (HAProxy's, the direct one, and the AF_XDP ones). BENCH_KERNEL_OFFLOADS=1
# ("as deployed"): every veth keeps the kernel's default offloads, with ONE exception that
# the mode cannot lift: the kernel-side veths facing Strait's AF_XDP ports always get
# `tx off`. With tx checksum offload on, the kernel hands a veth frames in CHECKSUM_PARTIAL
# state (the TCP checksum field holds only the pseudo-header sum, to be finished by
# "hardware"); over a veth the receiving kernel trusts that state, but XDP/AF_XDP hands
# the raw bytes to user space, where Strait sees a wrong checksum and drops every segment
# of the kernel peer. A real NIC would have finished the checksum on the wire, so `tx off`
# on those two veths is what makes the veth behave like a wire, not a tuning choice.
# Attaching XDP to a veth also takes GSO from its peer and caps the peer's MTU (~3.5 KB),
# whatever the mode.
# With BENCH_KERNEL_OFFLOADS=1 the lossy workload's nftables rules see GRO/TSO super-packets
# on the kernel veths, so its loss rate is per super-packet there: compare lossy figures
# within one mode only.
#
# CPU (2 cores): the proxy under test runs alone on CPU 1 (HAProxy with taskset, each Strait
# with its one lcore `lcores = [1]`; an idle Strait naps or waits for RX interrupts); wrk
# (-t1), curl and nginx (one process) share CPU 0. The reflector runs on CPU 1, its
# generator on CPU 0.
#
# Lossy transfers (deploy/bench/lossy.sh): workload `lossy` (issue 13), a kernel curl client
# downloads a BENCH_LOSS_MB file of random bytes through each target, and workload `lossyup`,
# the same client uploads it (PUT to nginx), while nftables in the client namespace drops TCP
# at random in both directions (received segments in the input hook; sent ones on the link,
# after the client's TCP took them as sent: lossy.sh's set_loss), BENCH_LOSS rates,
# BENCH_LOSS_RUNS interleaved rounds. Every transfer's sha256 is checked. The sender's
# loss-recovery counters are read before and after each transfer: for downloads Strait's
# (its Prometheus endpoint) or the kernel's of nginx (direct) or HAProxy; for uploads the
# client kernel's.
#
# Knobs (environment, all optional):
#   BENCH_TARGETS="direct haproxy strait strait-xdp"   subset of targets (order kept)
#   BENCH_RUNS=3          rounds; each round runs every target once per workload
#   BENCH_SECONDS=10      length of each wrk run
#   BENCH_CONNS=50        wrk connections for the unpaced small-response workloads
#   BENCH_BIG_CONNS=4     wrk connections for the 1 MiB workload
#   BENCH_RATE=5000       offered load (requests/s) of the paced workload
#   BENCH_WORKLOADS="keepalive close big paced lossy lossyup"   subset/order of workloads; also
#                         concN (e.g. conc1000 conc5000 conc10000): the keep-alive workload
#                         with N connections (issue 19), each target's memory sampled
#                         mid-run (see "Concurrency" below)
#                         and keepalive6 / big6: the keep-alive / 1 MiB workload over IPv6
#                         (client, proxy and nginx on 2001:db8:N::/64 beside the IPv4
#                         subnets; targets direct, haproxy and strait-xdp)
#                         and lossyup: the lossy transfer as an upload
#   BENCH_LOSS="1 2 5"    loss rates of the lossy workloads, percent per direction (0.1 steps)
#   BENCH_LOSS_RUNS=5     rounds of the lossy workloads
#   BENCH_LOSS_MB=40      size of the lossy transfer, MiB
#   BENCH_LOSS_TIMEOUT=180  curl --max-time of one lossy transfer, seconds
#   BENCH_LOSS_PCAP=1     also capture the headers of each lossy download on the client's
#                         link (dumpcap, from tshark), copied beside BENCH_OUT
#   BENCH_CEILING=1       0 skips the reflector ceilings (tap: with strait; AF_XDP: with strait-xdp)
#   BENCH_KERNEL_CC=cubic congestion control of the kernel TCP senders and receivers in the
#                         script's namespaces (direct's nginx, HAProxy, the clients), as
#                         Strait's `[tcp] congestion` ("cubic" by default): like for like.
#                         A new namespace otherwise inherits the host's default, which may
#                         be BBR (then a lossy comparison measures BBR against CUBIC).
#                         "host" keeps the host's default. A namespace may only pick an
#                         algorithm the host allows (net.ipv4.tcp_allowed_congestion_control);
#                         the script adds it for the run and restores the list on exit.
#   BENCH_XDP_DEVARGS="busy_budget=0"  extra net_af_xdp device arguments for both ports of
#                         the AF_XDP Strait (comma-separated), e.g. to compare busy polling
#   BENCH_XDP_QUEUES=8    queues of each AF_XDP veth, all polled by Strait's one lcore
#                         (`queue_count`): the PMD keeps 2 048 buffers in each queue's fill
#                         ring, so more queues hold more frames while the lcore is busy or
#                         waits for its CPU. 8 (16 384 frames a port) holds issue 19's
#                         10 000 requests in flight; 4 dropped frames in some rounds there
#                         (docs/benchmarks/many-connections.md, session 14); 1 is one socket
#                         per port
#   BENCH_KERNEL_OFFLOADS=0  1 leaves the veths' default offloads on (TSO/GSO/checksum),
#                         except `tx off` on the kernel side of the AF_XDP veths (see above)
#   BENCH_OUT=FILE        also write the result table to FILE
#   BENCH_NO_BUILD=1      use the release binaries already built (no cargo build)
#   BENCH_STRAIT_OFFLOADS="multi_seg = false"  [port.offloads] keys for both ports of the
#                         tap Strait (';' separates several), e.g. to compare offload settings
#   BENCH_PROFILE=1       also profile HAProxy's and Strait's thread with perf (keep-alive, 1 MiB,
#                         and each concN workload that runs); with BENCH_OUT the perf data
#                         is copied beside it (perf annotate -i FILE.perf-WORKLOAD-TARGET.data)
#   BENCH_INSTR=1         0 skips counting the user-space instructions of Strait's lcore thread
#                         during each run (`perf stat -e instructions:u -t`, issue 17), reported
#                         per request; needs perf and a PMU (a VM without a virtual PMU says
#                         "<not supported>" and the report shows "–")
#   BENCH_CALLGRIND=1     run each Strait under valgrind's callgrind and count the user-space
#                         instructions of each wrk run exactly (collection switched on for the
#                         run only, `callgrind_control`), reported per request in the same
#                         row: the count where the machine has no PMU. Strait runs ~50x slower
#                         then, so its rates, latencies and CPU in that run mean nothing; use
#                         it on its own, e.g. BENCH_TARGETS=strait-xdp BENCH_WORKLOADS=keepalive
#   BENCH_CONC_PCAP=1     capture the headers on the client's link and on the proxy's link to
#                         nginx during each concN run of a proxy and print where its slowest
#                         requests waited (slow_requests.py: latency on each link, client
#                         retransmissions, when the proxy acknowledged). dumpcap shares the
#                         peers' CPU, so rates and latencies of those runs are not comparable
#   CARGO_TARGET_DIR      where cargo builds (default: target/ in the repository)
#
# Concurrency (workloads concN, issue 19): wrk opens N keep-alive connections at once (a
# burst of N SYNs) and keeps them busy. The file-descriptor limit here is 20 000 (hard):
# wrk and nginx get up to 19 500; HAProxy needs two descriptors per session, so its
# maxconn is 9 890 (maxpipes 50) and at N = 10 000 the rest wait in its listen queue (it says so in
# its log). Half-way through each run the proxy's memory is sampled: VmRSS of the
# process and, for Strait, mbufs in use and its connection gauge.
#
# Everything it creates (namespaces, taps, veths, nftables tables, processes, the work
# directory) is removed on exit, also on failure or Ctrl-C: the veths and the tables live in
# the script's namespaces and go with them. Addresses: 198.18.100.0/24 .. 198.18.107.0/24
# (RFC 2544).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/deploy/bench"
RUNS=${BENCH_RUNS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-50}
BIG_CONNS=${BENCH_BIG_CONNS:-4}
RATE=${BENCH_RATE:-5000}
WORKLOADS=${BENCH_WORKLOADS:-keepalive close big paced lossy lossyup}
TARGETS=${BENCH_TARGETS:-direct haproxy strait strait-xdp}
LOSS_RATES=${BENCH_LOSS:-1 2 5}
LOSS_RUNS=${BENCH_LOSS_RUNS:-5}
LOSS_MB=${BENCH_LOSS_MB:-40}
LOSS_TIMEOUT=${BENCH_LOSS_TIMEOUT:-180}
CEILING=${BENCH_CEILING:-1}
INSTR=${BENCH_INSTR:-1}
command -v perf >/dev/null || INSTR=0
CALLGRIND=${BENCH_CALLGRIND:-0}
CONC_PCAP=${BENCH_CONC_PCAP:-0}
if [[ $CALLGRIND == 1 ]]; then
  command -v valgrind >/dev/null && command -v callgrind_control >/dev/null \
    || die "BENCH_CALLGRIND=1 needs valgrind (deploy/install-deps.sh installs it)"
  INSTR=0
fi
# The command line a Strait runs under: itself, or callgrind with instrumentation off until a
# run switches it on.
strait_cmd() {
  if [[ $CALLGRIND == 1 ]]; then
    echo valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.$1.%p" "$STRAIT"
  else
    echo "$STRAIT"
  fi
}
KERNEL_OFFLOADS=${BENCH_KERNEL_OFFLOADS:-0}
KERNEL_CC=${BENCH_KERNEL_CC:-cubic}
XDP_DEVARGS=${BENCH_XDP_DEVARGS:-}
XDP_QUEUES=${BENCH_XDP_QUEUES:-8}
ALLOWED_CC_BEFORE=""
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# Paced workload: each connection waits PACE_MS after each response.
PACE_MS=2
PACE_CONNS=$(( (RATE * PACE_MS + 999) / 1000 ))

PROXY_CPU=1
PEER_CPU=0

die() { echo "bench: $*" >&2; exit 1; }
[[ $XDP_QUEUES =~ ^[1-9][0-9]?$ ]] || die "BENCH_XDP_QUEUES=$XDP_QUEUES: a number of queues, 1 to 99"
log() { echo "bench: $*" >&2; }
has_target() { [[ " $TARGETS " == *" $1 "* ]]; }
has_workload() { [[ " $WORKLOADS " == *" $1 "* ]]; }
for t in $TARGETS; do
  case $t in direct | haproxy | strait | strait-xdp) ;; *) die "unknown target $t (BENCH_TARGETS)" ;; esac
done
for w in $WORKLOADS; do
  case $w in keepalive | keepalive6 | close | big | big6 | paced | lossy | lossyup) ;; conc[0-9]*) (( ${w#conc} <= 19000 )) || die "$w: at most 19000 connections (fd limit)" ;;
    *) die "unknown workload $w (BENCH_WORKLOADS)" ;; esac
done
for p in $LOSS_RATES; do
  [[ $p =~ ^[0-9]+(\.[0-9])?$ ]] && (( $(awk -v p="$p" 'BEGIN { print (p * 10 <= 1000) }') )) \
    || die "BENCH_LOSS: $p is not a percentage with at most one decimal"
done

[[ $(id -u) == 0 ]] || die "must run as root (namespaces, taps, DPDK)"
for tool in ip wrk nginx haproxy cc python3 taskset curl ethtool cargo sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found: run deploy/install-deps.sh first"
done
if has_workload lossy || has_workload lossyup; then
  command -v nft >/dev/null || die "nft not found (the lossy workload needs it): apt-get install nftables"
  if [[ ${BENCH_LOSS_PCAP:-0} == 1 ]]; then
    command -v dumpcap >/dev/null || die "dumpcap not found (BENCH_LOSS_PCAP=1 needs it): apt-get install tshark"
  fi
fi
if [[ $CONC_PCAP == 1 ]]; then
  command -v dumpcap >/dev/null || die "dumpcap not found (BENCH_CONC_PCAP=1 needs it): apt-get install tshark"
fi
(( $(nproc) >= 2 )) || die "needs 2 CPUs (proxy on CPU $PROXY_CPU, peers on CPU $PEER_CPU)"

# ---------------------------------------------------------------- clean-up (always)
TAG="b$$"
TAG=${TAG:0:7}
NS_C="${TAG}c" NS_N="${TAG}n" NS_H="${TAG}h" NS_S="${TAG}s" NS_R="${TAG}r"
NS_X="${TAG}x" NS_G="${TAG}g"   # strait-xdp; the AF_XDP ceiling's generator
ALL_NS=("$NS_C" "$NS_N" "$NS_H" "$NS_S" "$NS_R" "$NS_X" "$NS_G")
WORK=$(mktemp -d /tmp/strait-bench.XXXXXX)
PIDS=()

cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  for ns in "${ALL_NS[@]}"; do
    if ip netns list | grep -qw "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
      ip netns del "$ns" 2>/dev/null
    fi
  done
  # DPDK's (empty) runtime directories of the two DPDK processes.
  [[ -n ${STRAIT_PID:-} ]] && rm -rf "/var/run/dpdk/strait-$STRAIT_PID"
  [[ -n ${XDP_PID:-} ]] && rm -rf "/var/run/dpdk/strait-$XDP_PID"
  rm -rf "/var/run/dpdk/refl$$" "/var/run/dpdk/reflx$$"
  [[ -n $ALLOWED_CC_BEFORE ]] && sysctl -q -w net.ipv4.tcp_allowed_congestion_control="$ALLOWED_CC_BEFORE"
  if (( rc != 0 )); then
    log "failed (exit $rc); logs:"
    for f in "$WORK"/*.log; do [[ -f $f ]] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }; done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build
STRAIT="$TARGET_DIR/release/strait"
REFLECTOR="$TARGET_DIR/release/examples/l2_reflector"
if [[ ${BENCH_NO_BUILD:-0} == 1 && -x $STRAIT && -x $REFLECTOR ]]; then
  log "using the binaries already in $TARGET_DIR/release (BENCH_NO_BUILD=1)"
else
  log "building strait and the l2 reflector (release) in $TARGET_DIR"
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p strait \
    && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p dataplane --example l2_reflector)
fi
cc -O2 -o "$WORK/pktgen" "$HERE/pktgen.c"

# ---------------------------------------------------------------- topology
if [[ $KERNEL_CC != host ]]; then
  grep -qw "$KERNEL_CC" /proc/sys/net/ipv4/tcp_available_congestion_control \
    || modprobe "tcp_$KERNEL_CC" 2>/dev/null || die "congestion control $KERNEL_CC not available"
  allowed=$(sysctl -n net.ipv4.tcp_allowed_congestion_control)
  if ! grep -qw "$KERNEL_CC" <<<"$allowed"; then
    ALLOWED_CC_BEFORE=$allowed
    sysctl -q -w net.ipv4.tcp_allowed_congestion_control="$allowed $KERNEL_CC"
  fi
fi
log "kernel congestion control in the benchmark namespaces: $KERNEL_CC (host default $(sysctl -n net.ipv4.tcp_congestion_control))"
for ns in "${ALL_NS[@]}"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # Connection: close at tens of thousands per second: wide port range, reuse TIME-WAIT.
  ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1 \
    net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
  if [[ $KERNEL_CC != host ]]; then
    ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_congestion_control="$KERNEL_CC"
  fi
done

# veth A B: A in ns1 with addr1, B in ns2 with addr2; with V6ADDR1/V6ADDR2, IPv6 beside
# (nodad: the address is usable at once, these links have no one to collide with).
veth() {
  local a=$1 ns1=$2 addr1=$3 b=$4 ns2=$5 addr2=$6 v6a=${7:-} v6b=${8:-}
  ip link add "$a" netns "$ns1" type veth peer name "$b" netns "$ns2"
  ip -n "$ns1" addr add "$addr1" dev "$a"
  ip -n "$ns2" addr add "$addr2" dev "$b"
  [[ -n $v6a ]] && ip -n "$ns1" addr add "$v6a" dev "$a" nodad
  [[ -n $v6b ]] && ip -n "$ns2" addr add "$v6b" dev "$b" nodad
  if [[ $KERNEL_OFFLOADS != 1 ]]; then
    ip netns exec "$ns1" ethtool -K "$a" tx off tso off gso off gro off >/dev/null 2>&1
    ip netns exec "$ns2" ethtool -K "$b" tx off tso off gso off gro off >/dev/null 2>&1
  fi
  ip -n "$ns1" link set "$a" up
  ip -n "$ns2" link set "$b" up
}
# xdp_veth D DNS K KNS KADDR: a veth for a DPDK net_af_xdp port. D (no kernel address: the
# DPDK process owns it) in DNS, K with KADDR in KNS. K always gets `tx off` (see the header:
# checksums left to "hardware" reach AF_XDP unfinished); by default both ends get the
# same `tx off tso off gso off gro off` as every other veth.
xdp_veth() {
  local d=$1 dns=$2 k=$3 kns=$4 kaddr=$5 kv6=${6:-}
  ip link add "$d" netns "$dns" numtxqueues "$XDP_QUEUES" numrxqueues "$XDP_QUEUES" type veth \
    peer name "$k" netns "$kns" numtxqueues "$XDP_QUEUES" numrxqueues "$XDP_QUEUES"
  [[ -n $kaddr ]] && ip -n "$kns" addr add "$kaddr" dev "$k"
  [[ -n $kv6 ]] && ip -n "$kns" addr add "$kv6" dev "$k" nodad
  if [[ $KERNEL_OFFLOADS != 1 ]]; then
    ip netns exec "$dns" ethtool -K "$d" tx off tso off gso off gro off >/dev/null 2>&1
    ip netns exec "$kns" ethtool -K "$k" tx off tso off gso off gro off >/dev/null 2>&1
  fi
  ip netns exec "$kns" ethtool -K "$k" tx off >/dev/null
  [[ $(ip netns exec "$kns" ethtool -k "$k" | awk '/^tx-checksumming:/ {print $2}') == off ]] \
    || die "$k: tx checksum offload is still on"
  ip -n "$dns" link set "$d" up
  ip -n "$kns" link set "$k" up
}
# IPv6 (keepalive6, big6) runs over the same links, 2001:db8:N::/64 beside 198.18.N.0/24
# (RFC 3849 documentation prefix).
veth "${TAG}cd" "$NS_C" 198.18.100.1/24 "${TAG}nd" "$NS_N" 198.18.100.2/24 2001:db8:100::1/64 2001:db8:100::2/64   # direct
veth "${TAG}ch" "$NS_C" 198.18.101.1/24 "${TAG}hc" "$NS_H" 198.18.101.2/24 2001:db8:101::1/64 2001:db8:101::2/64   # client-haproxy
veth "${TAG}hn" "$NS_H" 198.18.102.1/24 "${TAG}nh" "$NS_N" 198.18.102.2/24 2001:db8:102::1/64 2001:db8:102::2/64   # haproxy-backend
XDP_C="${TAG}xc" XDP_N="${TAG}xn"   # Strait's ends of its AF_XDP veths (in NS_X)
if has_target strait-xdp; then
  xdp_veth "$XDP_C" "$NS_X" "${TAG}cx" "$NS_C" 198.18.105.1/24 2001:db8:105::1/64   # client-strait-xdp
  xdp_veth "$XDP_N" "$NS_X" "${TAG}nx" "$NS_N" 198.18.106.2/24 2001:db8:106::2/64   # strait-xdp-backend
fi

# ---------------------------------------------------------------- backend: nginx
mkdir -p "$WORK/www"
python3 - "$WORK/www" <<'EOF'
import sys
d = sys.argv[1]
open(d + "/small.bin", "wb").write(bytes(b"a"[0] + i % 26 for i in range(128)))
open(d + "/big.bin", "wb").write(bytes(b"a"[0] + i % 26 for i in range(1 << 20)))
EOF
if has_workload lossy || has_workload lossyup; then
  # Random bytes: a corrupted or misplaced segment cannot go unnoticed by the sha256.
  head -c $(( LOSS_MB << 20 )) /dev/urandom >"$WORK/www/lossy.bin"
  LOSS_SHA=$(sha256sum "$WORK/www/lossy.bin" | cut -d' ' -f1)
fi
# multi_accept: without it nginx accepts one connection per pass of its event loop
# (`ngx_event_accept` sets `ev->available = ecf->multi_accept`), and a pass under load serves
# hundreds of ready connections first. A proxy opening its backend connections while nginx is
# already busy (the concN workloads) then sees some of them sit established in nginx's
# accept queue for seconds: slow_requests.py (BENCH_CONC_PCAP=1) showed HAProxy's first
# requests on 18 connections cross to nginx at 0.17 s and come back 1.5 to 7.6 s later, one
# every ~0.3 s, with nothing lost on either link. Those were wrk's "timeouts" at 5 000
# connections; the direct target opened its connections before nginx was busy.
cat > "$WORK/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
worker_rlimit_nofile 19500;
events { worker_connections 19000; multi_accept on; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path $WORK/body;
    proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi;
    uwsgi_temp_path $WORK/uwsgi;
    scgi_temp_path $WORK/scgi;
    server {
        listen 8080 reuseport backlog=4096;
        listen [::]:8080 reuseport backlog=4096;
        root $WORK/www;
        # The lossyup workload PUTs its file here (deploy/bench/lossy.sh).
        location /up/ {
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
        }
    }
}
EOF
ip netns exec "$NS_N" taskset -c "$PEER_CPU" nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" \
  >"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")

# ---------------------------------------------------------------- HAProxy
HAPROXY_PID=""
if has_target haproxy; then
cat > "$WORK/haproxy.cfg" <<EOF
# One thread, TCP mode, no logging; splice(2) lets large responses skip user space.
global
    nbthread 1
    # fd limit 20 000 (hard): HAProxy needs 2 x maxconn + 2 x maxpipes + 14 descriptors.
    maxconn 9890
    maxpipes 50
    tune.bufsize 16384
    tune.maxaccept 64
defaults
    mode tcp
    option splice-auto
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend fe
    bind 198.18.101.2:80 backlog 4096
    default_backend be
backend be
    server nginx 198.18.102.2:8080
frontend fe6
    bind [2001:db8:101::2]:80 backlog 4096
    default_backend be6
backend be6
    server nginx6 [2001:db8:102::2]:8080
EOF
ip netns exec "$NS_H" taskset -c "$PROXY_CPU" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")
fi

# ---------------------------------------------------------------- Strait (tap) and Strait (AF_XDP)
# strait_config FRONT_DEVICE FRONT_IP BACK_DEVICE BACK_IP BACKEND_ADDR PORT_EXTRA: the proxy
# configuration of the end-to-end tests, one lcore on CPU 1, metrics on 127.0.0.1:9100 of
# its own namespace.
strait_config() {
  local fdev=$1 fip=$2 bdev=$3 bip=$4 backend=$5 extra=$6 fip6=${7:-} bip6=${8:-} backend6=${9:-}
  cat <<EOF
[log]
format = "human"
level = "info"

[dpdk]
lcores = [$PROXY_CPU]
memory_mode = "no-huge"
memory_mb = 1024
mbufs = 65535
mbuf_cache = 512

[[port]]
name = "front"
device = "$fdev"
ipv4 = "$fip/24"
${fip6:+ipv6 = \"$fip6/64\"}
mtu = 1500
$extra

[[port]]
name = "back"
device = "$bdev"
ipv4 = "$bip/24"
${bip6:+ipv6 = \"$bip6/64\"}
mtu = 1500
$extra

[[listener]]
name = "web"
listen = "$fip:80"
pool = "web"
max_connections = 100000
connect_timeout_ms = 5000
idle_timeout_ms = 120000

[[pool]]
name = "web"
algorithm = "round_robin"
servers = [{ addr = "$backend", weight = 1 }]
${fip6:+
[[listener]]
name = \"web6\"
listen = \"[$fip6]:80\"
pool = \"web6\"
max_connections = 100000
connect_timeout_ms = 5000
idle_timeout_ms = 120000

[[pool]]
name = \"web6\"
algorithm = \"round_robin\"
servers = [{ addr = \"[$backend6]:8080\", weight = 1 \}]
}

[metrics]
listen = "127.0.0.1:9100"
EOF
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq $(( t * 10 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "timed out waiting for $what"
}

TAP_C="${TAG}tc" TAP_N="${TAG}tn"
STRAIT_PID="" XDP_PID=""
if has_target strait; then
  OFFLOADS=""
  [[ -n ${BENCH_STRAIT_OFFLOADS:-} ]] && OFFLOADS=$(printf '[port.offloads]\n%s' "${BENCH_STRAIT_OFFLOADS//;/$'\n'}")
  strait_config "net_tap0,iface=$TAP_C" 198.18.103.2 "net_tap1,iface=$TAP_N" 198.18.104.1 198.18.104.2:8080 \
    "$OFFLOADS" >"$WORK/strait.toml"
  "$STRAIT" check-config "$WORK/strait.toml" >/dev/null || die "strait config rejected"
  # shellcheck disable=SC2046 # the command's words
  ip netns exec "$NS_S" $(strait_cmd strait) run --config "$WORK/strait.toml" >"$WORK/strait.log" 2>&1 &
  STRAIT_PID=$!
  PIDS+=("$STRAIT_PID")
fi
if has_target strait-xdp; then
  strait_config "net_af_xdp0,iface=$XDP_C,queue_count=$XDP_QUEUES${XDP_DEVARGS:+,$XDP_DEVARGS}" 198.18.105.2 "net_af_xdp1,iface=$XDP_N,queue_count=$XDP_QUEUES${XDP_DEVARGS:+,$XDP_DEVARGS}" 198.18.106.1 198.18.106.2:8080 \
    "" $( (has_workload keepalive6 || has_workload big6) && echo 2001:db8:105::2 2001:db8:106::1 2001:db8:106::2) >"$WORK/strait-xdp.toml"
  "$STRAIT" check-config "$WORK/strait-xdp.toml" >/dev/null || die "strait-xdp config rejected"
  # shellcheck disable=SC2046 # the command's words
  ip netns exec "$NS_X" $(strait_cmd strait-xdp) run --config "$WORK/strait-xdp.toml" >"$WORK/strait-xdp.log" 2>&1 &
  XDP_PID=$!
  PIDS+=("$XDP_PID")
fi
if has_target strait; then
  wait_for $(( CALLGRIND == 1 ? 300 : 30 )) "strait ready" grep -q "strait ready" "$WORK/strait.log"
  # The taps' kernel ends go to the peers' namespaces (the PMD keeps its file descriptors).
  ip -n "$NS_S" link set "$TAP_C" netns "$NS_C"
  ip -n "$NS_S" link set "$TAP_N" netns "$NS_N"
  ip -n "$NS_C" addr add 198.18.103.1/24 dev "$TAP_C"
  ip -n "$NS_C" link set "$TAP_C" up
  ip -n "$NS_N" addr add 198.18.104.2/24 dev "$TAP_N"
  ip -n "$NS_N" link set "$TAP_N" up
fi
if has_target strait-xdp; then
  wait_for $(( CALLGRIND == 1 ? 300 : 30 )) "strait-xdp ready" grep -q "strait ready" "$WORK/strait-xdp.log"
fi

url_of() {
  local target=$1 path=$2
  if [[ ${URL_FAMILY:-4} == 6 ]]; then
    case $target in
      direct) echo "http://[2001:db8:100::2]:8080/$path" ;;
      haproxy) echo "http://[2001:db8:101::2]/$path" ;;
      strait-xdp) echo "http://[2001:db8:105::2]/$path" ;;
      *) die "$target has no IPv6 address in the benchmark (keepalive6, big6: direct, haproxy, strait-xdp)" ;;
    esac
    return
  fi
  case $target in
    direct) echo "http://198.18.100.2:8080/$path" ;;
    haproxy) echo "http://198.18.101.2/$path" ;;
    strait) echo "http://198.18.103.2/$path" ;;
    strait-xdp) echo "http://198.18.105.2/$path" ;;
  esac
}
# The namespace and process of a Strait target.
strait_ns() { case $1 in strait) echo "$NS_S" ;; strait-xdp) echo "$NS_X" ;; esac; }
strait_pid() { case $1 in strait) echo "$STRAIT_PID" ;; strait-xdp) echo "$XDP_PID" ;; esac; }
is_strait() { [[ $1 == strait || $1 == strait-xdp ]]; }

wait_for 10 "nginx" ip netns exec "$NS_N" curl -sf -o /dev/null http://198.18.100.2:8080/small.bin
for target in $TARGETS; do
  wait_for 30 "$target" ip netns exec "$NS_C" curl -sf -o /dev/null --max-time 2 "$(url_of "$target" small.bin)"
  got=$(ip netns exec "$NS_C" curl -sf --max-time 30 "$(url_of "$target" big.bin)" | cmp - "$WORK/www/big.bin" && echo same)
  [[ $got == same ]] || die "$(url_of "$target" big.bin): the body differs from the file"
done
log "topology up: $TARGETS; haproxy pid ${HAPROXY_PID:--}, strait pid ${STRAIT_PID:--}, strait-xdp pid ${XDP_PID:--}, nginx pid $NGINX_PID"

# ---------------------------------------------------------------- measurement helpers
CLK_TCK=$(getconf CLK_TCK)
# A thread's (PID = the main thread) CPU accounting: "on-CPU ns,runqueue-wait ns,utime
# ticks,stime ticks" (schedstat's first two fields: time running, and time runnable but
# waiting for the CPU, i.e. preempted by other load).
thread_cpu() {
  local ns ut
  ns=$(awk '{print $1 "," $2}' "/proc/$1/task/$1/schedstat")
  ut=$(awk '{print $14 "," $15}' "/proc/$1/task/$1/stat")
  echo "$ns,$ut"
}
now() { date +%s.%N; }
# proxy_memory TARGET: "VmRSS kB,mbufs in use,TCP connections" of the proxy process (nginx's
# for direct; the mbuf and connection fields are 0 but for Strait).
proxy_memory() {
  local pid=$NGINX_PID rss m
  [[ $1 == haproxy ]] && pid=$HAPROXY_PID
  is_strait "$1" && pid=$(strait_pid "$1")
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
  if is_strait "$1" && m=$(strait_metrics "$1"); then
    awk -v rss="$rss" '
      $1 == "strait_mempool_mbufs{state=\"in_use\"}" { mb = $NF }
      /^strait_tcp_connections/ { c += $NF }
      END { printf "%s,%.0f,%.0f\n", rss, mb, c }' <<<"$m"
  else
    echo "$rss,0,0"
  fi
}
# proxy_packets TARGET: "packets,delayed ACKs" of the proxy: the frames it received and
# sent (Strait: its ports' counters; HAProxy: every link of its namespace, /proc/net/dev)
# and the pure ACKs its TCP sent because the delayed-ACK timer ran out (Strait's
# DelayedACKs counter; the kernel's TcpExt DelayedACKs in HAProxy's namespace). When the
# response takes longer than the delayed-ACK timeout (40 ms), each request costs a pure ACK
# each way on top of its two segments, whichever stack proxies it.
proxy_packets() {
  if is_strait "$1"; then
    strait_metrics "$1" | awk '
      /^strait_port_rx_packets_total/ || /^strait_port_tx_packets_total/ { p += $NF }
      $1 == "strait_tcp_delayed_acks_total" { d = $NF }
      END { printf "%.0f,%.0f\n", p, d }'
  elif [[ $1 == haproxy ]]; then
    ip netns exec "$NS_H" awk '
      FNR == 1 { f++ }
      f == 1 && FNR > 2 { l = $0; sub(/:/, " ", l); split(l, a, " "); if (a[1] != "lo") p += a[3] + a[11] }
      f == 2 && $1 == "TcpExt:" { if (!h) { for (i = 2; i <= NF; i++) k[i] = $i; h = 1 } else for (i = 2; i <= NF; i++) if (k[i] == "DelayedACKs") d = $i }
      END { printf "%.0f,%.0f\n", p, d }' /proc/net/dev /proc/net/netstat
  else
    echo "0,0"
  fi
}
strait_metrics() { # strait_metrics TARGET: its Prometheus page
  ip netns exec "$(strait_ns "$1")" curl -sf --max-time 2 http://127.0.0.1:9100/metrics
}
# strait_counters TARGET: comma-separated: lcore busy cycles, all cycles (summed over
# lcores), port RX packets, port TX packets (summed over ports), and thread_cpu of the lcore
# thread (the main thread: there is one lcore).
strait_counters() {
  local m lcore
  m=$(strait_metrics "$1") || die "$1 metrics unavailable"
  lcore=$(thread_cpu "$(strait_pid "$1")")
  awk -v lcore="$lcore" '
    /^strait_lcore_cycles_total\{.*kind="busy"/ { busy += $NF }
    /^strait_lcore_cycles_total\{.*kind="all"/  { all += $NF }
    /^strait_port_rx_packets_total/ { rx += $NF }
    /^strait_port_tx_packets_total/ { tx += $NF }
    END { printf "%.0f,%.0f,%.0f,%.0f,%s\n", busy, all, rx, tx, lcore }' <<<"$m"
}
# Loss-recovery counters of a sender, comma-separated: RTOs, spurious RTOs, tail loss
# probes, losses repaired by a probe, retransmitted segments, RTO reductions undone, ACK-stall
# probes. tcp_counters TARGET: Strait's from its metrics; the kernel's (Linux names:
# TCPTimeouts, TCPSpuriousRTOs, TCPLossProbes, TCPLossProbeRecovery, RetransSegs,
# TCPLossUndo; no stall probes) from the namespace of the target's sender towards the client
# (nginx's for direct, HAProxy's). Definitions differ: Linux's TCPSpuriousRTOs counts F-RTO
# undos only (`tcp_try_undo_loss` with `frto_undo`), its TCPLossUndo every undo of an RTO
# (F-RTO, timestamps, D-SACKs); Strait counts Eifel (timestamp) and F-RTO undos in both.
tcp_counters() {
  local target=$1 ns
  if is_strait "$target"; then
    strait_metrics "$target" | awk '
      $1 == "strait_tcp_timeouts_total" { a = $NF }
      $1 == "strait_tcp_spurious_rtos_total" { b = $NF }
      $1 == "strait_tcp_loss_probes_total" { c = $NF }
      $1 == "strait_tcp_loss_probe_recovery_total" { d = $NF }
      $1 == "strait_tcp_retrans_segs_total" { e = $NF }
      $1 == "strait_tcp_loss_undo_total" { f = $NF }
      $1 == "strait_tcp_stall_probes_total" { g = $NF }
      END { printf "%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f\n", a, b, c, d, e, f, g }' || die "$target metrics unavailable"
    return
  fi
  ns=$NS_N; [[ $target == haproxy ]] && ns=$NS_H
  kernel_tcp_counters "$ns"
}
# kernel_tcp_counters NS: tcp_counters' fields for the kernel TCP of namespace NS, then two
# more: TCPLostRetransmit (a retransmission found lost again, RACK `tcp_rack_detect_loss`)
# and TCPDSACKRecv (D-SACKs received: the receiver already had what was sent again).
kernel_tcp_counters() {
  ip netns exec "$1" cat /proc/net/netstat /proc/net/snmp | awk '
    /^(TcpExt|Tcp):/ { if (!($1 in hdr)) { hdr[$1] = 1; for (i = 2; i <= NF; i++) k[$1, i] = $i }
                       else for (i = 2; i <= NF; i++) v[k[$1, i]] = $i }
    END { printf "%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,0,%.0f,%.0f\n", v["TCPTimeouts"], v["TCPSpuriousRTOs"], v["TCPLossProbes"],
          v["TCPLossProbeRecovery"], v["RetransSegs"], v["TCPLossUndo"], v["TCPLostRetransmit"], v["TCPDSACKRecv"] }'
}
# strait_stalls TARGET: comma-separated: the lcore's busy passes (strait_lcore_busy_pass_seconds)
# that took more than 25 ms and more than 100 ms, and the frames its ports' RX rings dropped
# (strait_port_rx_missed_total, every queue). A pass that long leaves the rings unpolled
# long enough to overflow (2 048 frames per AF_XDP queue).
strait_stalls() {
  strait_metrics "$1" | awk '
    /^strait_lcore_busy_pass_seconds_count/ { all += $NF }
    /^strait_lcore_busy_pass_seconds_bucket\{.*le="0.025"/ { le25 += $NF }
    /^strait_lcore_busy_pass_seconds_bucket\{.*le="0.1"/ { le100 += $NF }
    /^strait_port_rx_missed_total/ { missed += $NF }
    END { printf "%.0f,%.0f,%.0f\n", all - le25, all - le100, missed }' || die "$1 metrics unavailable"
}
# Handshake counters around a target, comma-separated: the backend namespace's
# ListenOverflows and ListenDrops (nginx's accept queue was full: Linux `tcp_conn_request`
# drops the SYN, and the connecting side waits for its SYN timeout, 1 s then 3 s); SYNs the
# proxy sent again towards the backend (HAProxy's namespace TCPSynRetrans, Strait's
# strait_tcp_syn_retrans_total; 0 for direct); the client namespace's TCPSynRetrans and
# RetransSegs. A request that waits for a backend SYN retransmission waits a second or more
# inside wrk's latency; a client SYN retransmission happens before wrk starts its clock.
handshake_counters() {
  local target=$1 proxy=0
  kern() { # kern NS NAME...: the named counters of /proc/net/{netstat,snmp} in NS
    local ns=$1; shift
    ip netns exec "$ns" cat /proc/net/netstat /proc/net/snmp | awk -v names="$*" '
      /^(TcpExt|Tcp):/ { if (!($1 in hdr)) { hdr[$1] = 1; for (i = 2; i <= NF; i++) k[$1, i] = $i }
                         else for (i = 2; i <= NF; i++) v[k[$1, i]] = $i }
      END { n = split(names, a, " "); for (i = 1; i <= n; i++) printf "%s%.0f", (i > 1 ? "," : ""), v[a[i]] }'
  }
  if is_strait "$target"; then
    proxy=$(strait_metrics "$target" | awk '$1 == "strait_tcp_syn_retrans_total" { a = $NF } END { printf "%.0f", a }')
  elif [[ $target == haproxy ]]; then
    proxy=$(kern "$NS_H" TCPSynRetrans)
  fi
  echo "$(kern "$NS_N" ListenOverflows ListenDrops),$proxy,$(kern "$NS_C" TCPSynRetrans RetransSegs)"
}
# diagnose TARGET WHAT: what a stalled or failed run leaves to look at, saved beside the
# report (BENCH_OUT) and printed: the Strait log tail, its non-zero counters, the link
# counters of every namespace on the target's path, and the client's sockets.
DIAG_N=0
diagnose() {
  local target=$1 what=$2 f
  DIAG_N=$((DIAG_N + 1))
  f="$WORK/diag-$DIAG_N-$target.txt"
  (
    set +e
    echo "== $target: $what ($(date -u +%H:%M:%S) UTC)"
    if is_strait "$target"; then
      echo "-- strait log (last 40 lines)"
      tail -n 40 "$WORK/$target.log"
      echo "-- strait metrics (non-zero port, net, lcore and tcp counters)"
      strait_metrics "$target" | grep -E '^strait_(port|net|lcore|tcp)_' | awk '$NF != 0' || echo "(metrics unavailable)"
    fi
    for ns in "$NS_C" "$(is_strait "$target" && strait_ns "$target")" "$NS_N"; do
      [[ -n $ns ]] || continue
      echo "-- ip -s link, namespace $ns"
      ip -n "$ns" -s link
    done
    if [[ $target == strait-xdp ]]; then
      echo "-- ethtool -S of Strait's AF_XDP veths (XDP counters)"
      ip netns exec "$NS_X" ethtool -S "$XDP_C" 2>&1 | grep -vE ': 0$' || true
      ip netns exec "$NS_X" ethtool -S "$XDP_N" 2>&1 | grep -vE ': 0$' || true
    fi
    echo "-- client sockets (ss -tin)"
    ip netns exec "$NS_C" ss -tin 2>&1 | head -40
  ) >"$f" 2>&1 || true
  log "$target: $what; diagnostics in $f:"
  cat "$f" >&2
}

RAW="$WORK/raw.tsv"
: >"$RAW"

# run_one WORKLOAD TARGET ROUND: one wrk run; appends one line of key=value fields to RAW.
run_one() {
  local w=$1 target=$2 round=$3 conns=$CONNS path=small.bin delay=0 extra=()
  case $w in
    keepalive | keepalive6) ;;
    close) extra=(-H "Connection: close") ;;
    big | big6) conns=$BIG_CONNS path=big.bin ;;
    paced) conns=$PACE_CONNS delay=$PACE_MS ;;
    conc*) conns=${w#conc} ;;
    *) die "unknown workload $w" ;;
  esac
  local url fam=4
  [[ $w == keepalive6 || $w == big6 ]] && fam=6
  url=$(URL_FAMILY=$fam url_of "$target" "$path")
  local t0 n0 p0="0,0,0,0" s0="0,0,0,0,0,0,0,0"
  n0=$(thread_cpu "$NGINX_PID")
  [[ $target == haproxy ]] && p0=$(thread_cpu "$HAPROXY_PID")
  is_strait "$target" && s0=$(strait_counters "$target")
  local mem0 mem_mid="" sampler=""
  mem0=$(proxy_memory "$target")
  local pk0 pk1 hs0 hs1 st0="0,0,0" st1="0,0,0"
  pk0=$(proxy_packets "$target")
  hs0=$(handshake_counters "$target")
  is_strait "$target" && st0=$(strait_stalls "$target")
  if [[ $w == conc* ]]; then
    # Half-way through, the connections are open and busy: sample the proxy's memory.
    ( sleep "$(awk -v s="$SECONDS_PER_RUN" 'BEGIN { print s / 2 }')"; proxy_memory "$target" >"$WORK/mem-mid" ) &
    sampler=$!
  fi
  # User-space instructions of Strait's lcore thread (the main thread: one lcore) over the
  # run: counted by the PMU, so only the lcore's own work, whatever else shares the CPU.
  local instr_file="$WORK/instr-$w-$target-$round.csv" instr_pid="" instr=NA
  if is_strait "$target" && [[ $INSTR == 1 ]]; then
    perf stat -x, -e instructions:u -t "$(strait_pid "$target")" -o "$instr_file" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1 &
    instr_pid=$!
  fi
  if is_strait "$target" && [[ $CALLGRIND == 1 ]]; then
    callgrind_control -z "$(strait_pid "$target")" >/dev/null && callgrind_control -i on "$(strait_pid "$target")" >/dev/null \
      || die "callgrind_control could not reach $target"
  fi
  local pcaps=()
  if [[ $w == conc* && $CONC_PCAP == 1 && $target != direct ]]; then
    # Headers of every frame on the client's link and on the proxy's link to nginx, for
    # slow_requests.py (classic pcap, -P); dumpcap runs with the peers on their CPU.
    local blink="${TAG}nh"
    [[ $target == strait-xdp ]] && blink="${TAG}nx"
    [[ $target == strait ]] && blink=$TAP_N
    ip netns exec "$NS_C" taskset -c "$PEER_CPU" dumpcap -q -P -B 256 -s 96 -i "$(client_link "$target")" \
      -w "$WORK/conc-$w-$target-$round-client.pcap" >/dev/null 2>&1 &
    pcaps+=($!)
    ip netns exec "$NS_N" taskset -c "$PEER_CPU" dumpcap -q -P -B 256 -s 96 -i "$blink" \
      -w "$WORK/conc-$w-$target-$round-backend.pcap" >/dev/null 2>&1 &
    pcaps+=($!)
    PIDS+=("${pcaps[@]}")
    sleep 1
  fi
  t0=$(now)
  local out
  out=$(WRK_DELAY_MS=$delay ip netns exec "$NS_C" taskset -c "$PEER_CPU" \
        wrk -t1 -c"$conns" -d"${SECONDS_PER_RUN}s" --latency -s "$HERE/report.lua" "${extra[@]}" "$url" 2>&1) \
    || die "wrk failed on $target: $out"
  if [[ -n $sampler ]]; then
    wait "$sampler" || true
    mem_mid=$(cat "$WORK/mem-mid" 2>/dev/null || true)
  fi
  if [[ -n $instr_pid ]]; then
    wait "$instr_pid" || true
    # perf -x, lines: count,unit,event,...; "<not supported>" or "<not counted>" without a PMU.
    instr=$(awk -F, '$3 ~ /^instructions/ && $1 ~ /^[0-9]+$/ { print $1 }' "$instr_file" 2>/dev/null || true)
    instr=${instr:-NA}
  fi
  if is_strait "$target" && [[ $CALLGRIND == 1 ]]; then
    # Instructions (Ir) since the switch-on: the newest dump's totals.
    callgrind_control -i off "$(strait_pid "$target")" >/dev/null
    callgrind_control -d "$w-$round" "$(strait_pid "$target")" >/dev/null
    instr=$(awk '/^totals:/ { print $2; exit }' "$(ls -t "$WORK"/callgrind."$target".* | head -1)")
    instr=${instr:-NA}
  fi
  local t1 n1 p1="0,0,0,0" s1="0,0,0,0,0,0,0,0"
  t1=$(now)
  n1=$(thread_cpu "$NGINX_PID")
  [[ $target == haproxy ]] && p1=$(thread_cpu "$HAPROXY_PID")
  is_strait "$target" && s1=$(strait_counters "$target")
  pk1=$(proxy_packets "$target")
  hs1=$(handshake_counters "$target")
  is_strait "$target" && st1=$(strait_stalls "$target")
  if (( ${#pcaps[@]} )); then
    kill -INT "${pcaps[@]}" 2>/dev/null || true
    wait "${pcaps[@]}" 2>/dev/null || true
    python3 "$HERE/slow_requests.py" "$WORK/conc-$w-$target-$round-client.pcap" "$WORK/conc-$w-$target-$round-backend.pcap" \
      >"$WORK/slow-$w-$target-$round.txt" 2>&1 || true
    log "$target $w round $round: where the slowest requests waited (slow_requests.py):"
    cat "$WORK/slow-$w-$target-$round.txt" >&2
    rm -f "$WORK/conc-$w-$target-$round-client.pcap" "$WORK/conc-$w-$target-$round-backend.pcap"
  fi
  local result
  result=$(grep '^RESULT' <<<"$out") || die "no RESULT from wrk on $target: $out"
  echo "workload=$w target=$target round=$round conns=$conns ${result#RESULT } t0=$t0 t1=$t1 nginx0=$n0 nginx1=$n1 haproxy0=$p0 haproxy1=$p1 strait0=$s0 strait1=$s1 mem0=$mem0 mem_mid=${mem_mid:-$mem0} packets0=$pk0 packets1=$pk1 handshake0=$hs0 handshake1=$hs1 stalls0=$st0 stalls1=$st1 strait_instr=$instr" >>"$RAW"
  tail -n 1 "$RAW" >&2
  # A run that served nothing, or with socket errors, on Strait: keep what there is to see.
  if is_strait "$target" && [[ $result =~ requests=0\  || ! $result =~ \ errors=0\  ]]; then
    diagnose "$target" "wrk $w round $round: ${result#RESULT }"
  fi
  return 0
}

# ---------------------------------------------------------------- lossy transfers
# The lossy and lossyup workloads: deploy/bench/lossy.sh (set_loss, lossy_one, ...).
# shellcheck source=deploy/bench/lossy.sh
source "$HERE/lossy.sh"

# ---------------------------------------------------------------- workloads
log "warm-up"
for target in $TARGETS; do
  ip netns exec "$NS_C" taskset -c "$PEER_CPU" wrk -t1 -c10 -d2s "$(url_of "$target" small.bin)" >/dev/null
done
log "workloads: $WORKLOADS; targets: $TARGETS; $RUNS rounds x ${SECONDS_PER_RUN}s per target; paced: $PACE_CONNS conns x ${PACE_MS} ms think time"
for w in $WORKLOADS; do
  [[ $w == lossy || $w == lossyup ]] && continue
  for round in $(seq "$RUNS"); do
    for target in $TARGETS; do
      run_one "$w" "$target" "$round"
      sleep 1   # let TIME-WAIT and queues settle between runs
    done
  done
done
for dir in down up; do
  w=lossy; [[ $dir == up ]] && w=lossyup
  has_workload "$w" || continue
  log "$w: ${LOSS_MB} MiB $( [[ $dir == up ]] && echo upload || echo download), loss ${LOSS_RATES// /, } % each way, $LOSS_RUNS rounds, ${LOSS_TIMEOUT}s timeout"
  for round in $(seq "$LOSS_RUNS"); do
    for pct in $LOSS_RATES; do
      for target in $TARGETS; do
        lossy_one "$target" "$pct" "$round" "$dir"
        sleep 1
      done
    done
  done
  ip netns exec "$NS_C" nft flush ruleset
done

# Optional profiles (BENCH_PROFILE=1, needs `perf`): each proxy's thread under the
# keep-alive and the 1 MiB workload, as flat profiles by DSO and symbol.
if [[ ${BENCH_PROFILE:-0} == 1 ]] && command -v perf >/dev/null; then
  for w in keepalive big $(for x in $WORKLOADS; do [[ $x == conc* ]] && echo "$x"; done); do
    for target in $TARGETS; do
      [[ $target == direct ]] && continue
      pid=$HAPROXY_PID; is_strait "$target" && pid=$(strait_pid "$target")
      path=small.bin conns=$CONNS; [[ $w == big ]] && path=big.bin conns=$BIG_CONNS
      [[ $w == conc* ]] && conns=${w#conc}
      ip netns exec "$NS_C" taskset -c "$PEER_CPU" wrk -t1 -c"$conns" -d"$((SECONDS_PER_RUN + 2))s" \
        "$(url_of "$target" "$path")" >/dev/null &
      wrk_pid=$!
      sleep 1
      perf record -q -e cpu-clock -t "$pid" -o "$WORK/perf-$w-$target.data" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1
      wait "$wrk_pid"
      {
        echo "### $target, $w: where its thread's CPU time goes (perf, cpu-clock)"
        echo '```'
        perf report -i "$WORK/perf-$w-$target.data" --no-children --sort dso --stdio 2>/dev/null | grep '%' | head -6 || true
        echo
        perf report -i "$WORK/perf-$w-$target.data" --no-children --sort sym --stdio 2>/dev/null | grep '%' | head -25 || true
        echo '```'
      } >>"$WORK/profiles.md"
    done
  done
fi

# Strait's own view of the runs: counters at the end (drops, retransmissions, resets),
# one line each, prefixed with the target.
: >"$WORK/strait-final-counters.txt"
for target in $TARGETS; do
  is_strait "$target" || continue
  strait_metrics "$target" \
    | grep -E '^strait_(net_dropped_frames_total|lcore_tx_dropped_frames_total|tcp_[a-z_]+_total|proxy_(listener|server)_[a-z_]+_total|port_rx_(missed|nombuf)_total)' \
    | awk -v t="$target" '$NF != 0 { print t ": " $0 }' >>"$WORK/strait-final-counters.txt" || true
done

# ---------------------------------------------------------------- ceilings: L2 reflector
CEIL="$WORK/ceiling.tsv"
: >"$CEIL"
# ceiling PORT NS IFNAME GEN_NS: the reflector already runs on the DPDK end of IFNAME; pktgen
# sends from the kernel end (IFNAME itself for a tap, in NS; the veth peer in GEN_NS).
ceiling() {
  local port=$1 gns=$2 gif=$3 size round rx0 tx0 d0 c0 t0 rx1 tx1 d1 c1 t1 gen
  stat_of() { ip netns exec "$gns" cat "/sys/class/net/$gif/statistics/$1"; }
  for size in 60 1514; do
    for round in $(seq "$RUNS"); do
      rx0=$(stat_of rx_packets) tx0=$(stat_of tx_packets) d0=$(stat_of tx_dropped) c0=$(thread_cpu "$REFL_PID") t0=$(now)
      gen=$(ip netns exec "$gns" taskset -c "$PEER_CPU" "$WORK/pktgen" "$gif" 5 "$size")
      t1=$(now)
      rx1=$(stat_of rx_packets) tx1=$(stat_of tx_packets) d1=$(stat_of tx_dropped) c1=$(thread_cpu "$REFL_PID")
      echo "port=$port size=$size round=$round t0=$t0 t1=$t1 reflected=$((rx1 - rx0)) offered=$((tx1 - tx0)) tap_dropped=$((d1 - d0)) cpu0=$c0 cpu1=$c1 gen=\"${gen// /_}\"" >>"$CEIL"
      tail -n 1 "$CEIL" >&2
    done
  done
}
stop_pid() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
if [[ $CEILING == 1 ]] && { has_target strait || has_target strait-xdp; }; then
  # Strait is stopped first: the reflector gets CPU 1 to itself.
  [[ -n $STRAIT_PID ]] && stop_pid "$STRAIT_PID"
  [[ -n $XDP_PID ]] && stop_pid "$XDP_PID"
  if has_target strait; then
    TAP_R="${TAG}tr"
    ip netns exec "$NS_R" "$REFLECTOR" -l "$PROXY_CPU" --no-huge -m 256 --no-shconf --no-telemetry \
      --file-prefix "refl$$" --no-pci "--vdev=net_tap0,iface=$TAP_R" -- --seconds 0 >"$WORK/reflector.log" 2>&1 &
    REFL_PID=$!
    PIDS+=("$REFL_PID")
    wait_for 30 "l2_reflector ready (tap)" grep -q "l2_reflector ready" "$WORK/reflector.log"
    ip -n "$NS_R" link set "$TAP_R" up
    ceiling tap "$NS_R" "$TAP_R"
    stop_pid "$REFL_PID"
  fi
  if has_target strait-xdp; then
    # The reflector's veth end in NS_R, pktgen on its peer in NS_G (offloads as for Strait's).
    VX_R="${TAG}xr" VX_G="${TAG}xg"
    xdp_veth "$VX_R" "$NS_R" "$VX_G" "$NS_G" ""
    ip netns exec "$NS_R" "$REFLECTOR" -l "$PROXY_CPU" --no-huge -m 256 --no-shconf --no-telemetry \
      --file-prefix "reflx$$" --no-pci "--vdev=net_af_xdp0,iface=$VX_R" -- --seconds 0 >"$WORK/reflector-xdp.log" 2>&1 &
    REFL_PID=$!
    PIDS+=("$REFL_PID")
    wait_for 30 "l2_reflector ready (af_xdp)" grep -q "l2_reflector ready" "$WORK/reflector-xdp.log"
    ceiling af_xdp "$NS_G" "$VX_G"
    if ! kill -0 "$REFL_PID" 2>/dev/null; then
      log "the AF_XDP reflector exited during the ceiling runs:"; cat "$WORK/reflector-xdp.log" >&2
    fi
    stop_pid "$REFL_PID"
    # What the reflector said at the end (its totals and port counters), for the record.
    grep -E '^(total|port)' "$WORK/reflector-xdp.log" >"$WORK/reflector-xdp-totals.txt" || true
  fi
fi

# ---------------------------------------------------------------- report
MACHINE="$(nproc) vCPU $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r)"
VERSIONS="strait $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'), $(haproxy -v | head -1 | awk '{print "HAProxy", $3}'), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), curl $(curl -V | head -1 | awk '{print $2}'), DPDK $(pkg-config --modversion libdpdk 2>/dev/null || echo '?')"
COMMAND="BENCH_TARGETS=\"$TARGETS\" BENCH_WORKLOADS=\"$WORKLOADS\" ${BENCH_STRAIT_OFFLOADS:+BENCH_STRAIT_OFFLOADS=\"$BENCH_STRAIT_OFFLOADS\" }BENCH_RUNS=$RUNS BENCH_SECONDS=$SECONDS_PER_RUN BENCH_CONNS=$CONNS BENCH_BIG_CONNS=$BIG_CONNS BENCH_RATE=$RATE"
{ has_workload lossy || has_workload lossyup; } && COMMAND+=" BENCH_LOSS=\"$LOSS_RATES\" BENCH_LOSS_RUNS=$LOSS_RUNS BENCH_LOSS_MB=$LOSS_MB BENCH_LOSS_TIMEOUT=$LOSS_TIMEOUT"
COMMAND+="${XDP_DEVARGS:+ BENCH_XDP_DEVARGS=\"$XDP_DEVARGS\"} BENCH_XDP_QUEUES=$XDP_QUEUES BENCH_KERNEL_OFFLOADS=$KERNEL_OFFLOADS BENCH_KERNEL_CC=$KERNEL_CC deploy/bench/run.sh"
python3 "$HERE/report.py" "$RAW" "$CEIL" --clk-tck "$CLK_TCK" --conns "$CONNS" \
  --machine "$MACHINE" --versions "$VERSIONS" --targets "$TARGETS" \
  --command "$COMMAND" \
  --load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --lossy "$LOSSY" --lossy-mb "$LOSS_MB" \
  --strait-counters "$WORK/strait-final-counters.txt" | tee "$WORK/table.md"
if [[ -s $WORK/reflector-xdp-totals.txt ]]; then
  { echo; echo "AF_XDP reflector at exit: $(paste -sd ';' "$WORK/reflector-xdp-totals.txt")."; } | tee -a "$WORK/table.md"
fi
[[ -f $WORK/profiles.md ]] && cat "$WORK/profiles.md" | tee -a "$WORK/table.md"
if [[ -n ${BENCH_OUT:-} ]]; then
  cp "$WORK/table.md" "$BENCH_OUT"
  cp "$RAW" "$BENCH_OUT.raw.tsv"
  cp "$CEIL" "$BENCH_OUT.ceiling.tsv"
  cp "$LOSSY" "$BENCH_OUT.lossy.tsv"
  for f in "$WORK"/diag-*.txt "$WORK"/pcap-*.pcapng "$WORK"/perf-*.data; do [[ -f $f ]] && cp "$f" "$BENCH_OUT.${f##*/}"; done
  log "table written to $BENCH_OUT (raw runs and any diagnostics beside it)"
fi
if (( DIAG_N > 0 )); then
  log "$DIAG_N run(s) left diagnostics (printed above${BENCH_OUT:+, copied beside $BENCH_OUT})"
fi
