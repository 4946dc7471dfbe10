#!/usr/bin/env bash
# deploy/bench/run.sh: Strait side by side with HAProxy and with no proxy at all (issue 9).
#
# One command, as root, on a machine prepared by deploy/install-deps.sh. It builds strait
# and the L2 reflector in release mode (a no-op when up to date), builds this topology of
# network namespaces, runs the same wrk workloads against the three targets interleaved
# (direct, haproxy, strait, direct, haproxy, strait, ...), measures the raw ceiling of the
# tap port with the L2 reflector, and prints a Markdown table of medians.
#
#   client ns (wrk) ── veth ────────────────────────────── backend ns (nginx :8080)   direct
#   client ns       ── veth ── haproxy ns (HAProxy) ── veth ── backend ns              haproxy
#   client ns       ── tap ─── strait ns  (Strait)  ── tap ─── backend ns              strait
#   reflector ns (pktgen) ── tap ── l2_reflector                                      ceiling
#
# Both proxies are two link hops from each peer. Strait's hops are DPDK net_tap ports: the
# PMD creates the taps in the strait namespace and the script then moves their kernel
# ends into the client and backend namespaces. The veths have checksum, TSO, GSO and GRO
# offloads switched off (BENCH_KERNEL_OFFLOADS=1 keeps the defaults), so that both proxies
# see the same wire: MTU-sized frames with real checksums. The tap PMD offers no TSO, so
# the kernel peers of Strait segment and checksum in software too.
#
# CPU (2 cores): the proxy under test runs alone on CPU 1 (HAProxy with taskset, Strait
# with its one lcore `lcores = [1]`); wrk (-t1) and nginx (one process) share CPU 0. The
# reflector runs on CPU 1, its generator on CPU 0.
#
# Knobs (environment, all optional):
#   BENCH_RUNS=3          rounds; each round runs every target once per workload
#   BENCH_SECONDS=10      length of each wrk run
#   BENCH_CONNS=50        wrk connections for the unpaced small-response workloads
#   BENCH_BIG_CONNS=4     wrk connections for the 1 MiB workload
#   BENCH_RATE=5000       offered load (requests/s) of the paced workload
#   BENCH_WORKLOADS="keepalive close big paced"   subset/order of workloads
#   BENCH_CEILING=1       0 skips the reflector ceiling
#   BENCH_KERNEL_OFFLOADS=0  1 leaves the veths' default offloads on (TSO/GSO/checksum)
#   BENCH_OUT=FILE        also write the result table to FILE
#   BENCH_NO_BUILD=1      use the release binaries already built (no cargo build)
#   BENCH_STRAIT_OFFLOADS="multi_seg = false"  [port.offloads] keys for both Strait ports
#                         (';' separates several), e.g. to compare offload settings
#   BENCH_PROFILE=1       also profile HAProxy's and Strait's thread with perf (keep-alive, 1 MiB)
#   CARGO_TARGET_DIR      where cargo builds (default: target/ in the repository)
#
# Everything it creates (namespaces, taps, processes, the work directory) is removed on
# exit, also on failure or Ctrl-C. Addresses: 198.18.100.0/24 .. 198.18.105.0/24 (RFC 2544).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/deploy/bench"
RUNS=${BENCH_RUNS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-50}
BIG_CONNS=${BENCH_BIG_CONNS:-4}
RATE=${BENCH_RATE:-5000}
WORKLOADS=${BENCH_WORKLOADS:-keepalive close big paced}
CEILING=${BENCH_CEILING:-1}
KERNEL_OFFLOADS=${BENCH_KERNEL_OFFLOADS:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# Paced workload: each connection waits PACE_MS after each response.
PACE_MS=2
PACE_CONNS=$(( (RATE * PACE_MS + 999) / 1000 ))

PROXY_CPU=1
PEER_CPU=0

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

[[ $(id -u) == 0 ]] || die "must run as root (namespaces, taps, DPDK)"
for tool in ip wrk nginx haproxy cc python3 taskset curl ethtool cargo; do
  command -v "$tool" >/dev/null || die "$tool not found: run deploy/install-deps.sh first"
done
(( $(nproc) >= 2 )) || die "needs 2 CPUs (proxy on CPU $PROXY_CPU, peers on CPU $PEER_CPU)"

# ---------------------------------------------------------------- clean-up (always)
TAG="b$$"
TAG=${TAG:0:7}
NS_C="${TAG}c" NS_N="${TAG}n" NS_H="${TAG}h" NS_S="${TAG}s" NS_R="${TAG}r"
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
  for ns in "$NS_C" "$NS_N" "$NS_H" "$NS_S" "$NS_R"; do
    if ip netns list | grep -qw "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
      ip netns del "$ns" 2>/dev/null
    fi
  done
  # DPDK's (empty) runtime directories of the two DPDK processes.
  [[ -n ${STRAIT_PID:-} ]] && rm -rf "/var/run/dpdk/strait-$STRAIT_PID"
  rm -rf "/var/run/dpdk/refl$$"
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
for ns in "$NS_C" "$NS_N" "$NS_H" "$NS_S" "$NS_R"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # Connection: close at tens of thousands per second: wide port range, reuse TIME-WAIT.
  ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1 \
    net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
done

# veth A B: A in ns1 with addr1, B in ns2 with addr2.
veth() {
  local a=$1 ns1=$2 addr1=$3 b=$4 ns2=$5 addr2=$6
  ip link add "$a" netns "$ns1" type veth peer name "$b" netns "$ns2"
  ip -n "$ns1" addr add "$addr1" dev "$a"
  ip -n "$ns2" addr add "$addr2" dev "$b"
  if [[ $KERNEL_OFFLOADS != 1 ]]; then
    ip netns exec "$ns1" ethtool -K "$a" tx off tso off gso off gro off >/dev/null 2>&1
    ip netns exec "$ns2" ethtool -K "$b" tx off tso off gso off gro off >/dev/null 2>&1
  fi
  ip -n "$ns1" link set "$a" up
  ip -n "$ns2" link set "$b" up
}
veth "${TAG}cd" "$NS_C" 198.18.100.1/24 "${TAG}nd" "$NS_N" 198.18.100.2/24   # direct
veth "${TAG}ch" "$NS_C" 198.18.101.1/24 "${TAG}hc" "$NS_H" 198.18.101.2/24   # client-haproxy
veth "${TAG}hn" "$NS_H" 198.18.102.1/24 "${TAG}nh" "$NS_N" 198.18.102.2/24   # haproxy-backend

# ---------------------------------------------------------------- backend: nginx
mkdir -p "$WORK/www"
python3 - "$WORK/www" <<'EOF'
import sys
d = sys.argv[1]
open(d + "/small.bin", "wb").write(bytes(b"a"[0] + i % 26 for i in range(128)))
open(d + "/big.bin", "wb").write(bytes(b"a"[0] + i % 26 for i in range(1 << 20)))
EOF
cat > "$WORK/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 16384; }
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
        root $WORK/www;
    }
}
EOF
ip netns exec "$NS_N" taskset -c "$PEER_CPU" nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" \
  >"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")

# ---------------------------------------------------------------- HAProxy
cat > "$WORK/haproxy.cfg" <<EOF
# One thread, TCP mode, no logging; splice(2) lets large responses skip user space.
global
    nbthread 1
    maxconn 4096
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
EOF
ip netns exec "$NS_H" taskset -c "$PROXY_CPU" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")

# ---------------------------------------------------------------- Strait
TAP_C="${TAG}tc" TAP_N="${TAG}tn"
OFFLOADS=""
[[ -n ${BENCH_STRAIT_OFFLOADS:-} ]] && OFFLOADS=$(printf '[port.offloads]\n%s' "${BENCH_STRAIT_OFFLOADS//;/$'\n'}")
cat > "$WORK/strait.toml" <<EOF
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
device = "net_tap0,iface=$TAP_C"
ipv4 = "198.18.103.2/24"
mtu = 1500
$OFFLOADS

[[port]]
name = "back"
device = "net_tap1,iface=$TAP_N"
ipv4 = "198.18.104.1/24"
mtu = 1500
$OFFLOADS

[[listener]]
name = "web"
listen = "198.18.103.2:80"
pool = "web"
max_connections = 100000
connect_timeout_ms = 5000
idle_timeout_ms = 120000

[[pool]]
name = "web"
algorithm = "round_robin"
servers = [{ addr = "198.18.104.2:8080", weight = 1 }]

[metrics]
listen = "127.0.0.1:9100"
EOF
"$STRAIT" check-config "$WORK/strait.toml" >/dev/null || die "strait config rejected"
ip netns exec "$NS_S" "$STRAIT" run --config "$WORK/strait.toml" >"$WORK/strait.log" 2>&1 &
STRAIT_PID=$!
PIDS+=("$STRAIT_PID")

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq $(( t * 10 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "timed out waiting for $what"
}
wait_for 30 "strait ready" grep -q "strait ready" "$WORK/strait.log"
# The taps' kernel ends go to the peers' namespaces (the PMD keeps its file descriptors).
ip -n "$NS_S" link set "$TAP_C" netns "$NS_C"
ip -n "$NS_S" link set "$TAP_N" netns "$NS_N"
ip -n "$NS_C" addr add 198.18.103.1/24 dev "$TAP_C"
ip -n "$NS_C" link set "$TAP_C" up
ip -n "$NS_N" addr add 198.18.104.2/24 dev "$TAP_N"
ip -n "$NS_N" link set "$TAP_N" up

wait_for 10 "nginx" ip netns exec "$NS_N" curl -sf -o /dev/null http://198.18.100.2:8080/small.bin
wait_for 10 "haproxy" ip netns exec "$NS_C" curl -sf -o /dev/null http://198.18.101.2/small.bin
wait_for 30 "strait" ip netns exec "$NS_C" curl -sf -o /dev/null --max-time 2 http://198.18.103.2/small.bin
for url in http://198.18.100.2:8080 http://198.18.101.2 http://198.18.103.2; do
  got=$(ip netns exec "$NS_C" curl -sf "$url/big.bin" | cmp - "$WORK/www/big.bin" && echo same)
  [[ $got == same ]] || die "$url/big.bin: the body differs from the file"
done
log "topology up: direct, haproxy (pid $HAPROXY_PID), strait (pid $STRAIT_PID), nginx (pid $NGINX_PID)"

# ---------------------------------------------------------------- measurement helpers
CLK_TCK=$(getconf CLK_TCK)
# Strait's counters, comma-separated: lcore busy cycles, all cycles (summed over lcores),
# port RX packets, port TX packets (summed over ports), and thread_cpu of the lcore thread
# (the main thread: there is one lcore).
strait_counters() {
  local m
  m=$(ip netns exec "$NS_S" curl -sf --max-time 2 http://127.0.0.1:9100/metrics) || die "strait metrics unavailable"
  local lcore
  lcore=$(thread_cpu "$STRAIT_PID")
  awk -v lcore="$lcore" '
    /^strait_lcore_cycles_total\{.*kind="busy"/ { busy += $NF }
    /^strait_lcore_cycles_total\{.*kind="all"/  { all += $NF }
    /^strait_port_rx_packets_total/ { rx += $NF }
    /^strait_port_tx_packets_total/ { tx += $NF }
    END { printf "%.0f,%.0f,%.0f,%.0f,%s\n", busy, all, rx, tx, lcore }' <<<"$m"
}
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

url_of() {
  local target=$1 path=$2
  case $target in
    direct) echo "http://198.18.100.2:8080/$path" ;;
    haproxy) echo "http://198.18.101.2/$path" ;;
    strait) echo "http://198.18.103.2/$path" ;;
  esac
}

RAW="$WORK/raw.tsv"
: >"$RAW"

# run_one WORKLOAD TARGET ROUND: one wrk run; appends one line of key=value fields to RAW.
run_one() {
  local w=$1 target=$2 round=$3 conns=$CONNS path=small.bin delay=0 extra=()
  case $w in
    keepalive) ;;
    close) extra=(-H "Connection: close") ;;
    big) conns=$BIG_CONNS path=big.bin ;;
    paced) conns=$PACE_CONNS delay=$PACE_MS ;;
    *) die "unknown workload $w" ;;
  esac
  local url
  url=$(url_of "$target" "$path")
  local t0 n0 p0="0,0,0,0" s0="0,0,0,0,0,0,0,0"
  n0=$(thread_cpu "$NGINX_PID")
  [[ $target == haproxy ]] && p0=$(thread_cpu "$HAPROXY_PID")
  [[ $target == strait ]] && s0=$(strait_counters)
  t0=$(now)
  local out
  out=$(WRK_DELAY_MS=$delay ip netns exec "$NS_C" taskset -c "$PEER_CPU" \
        wrk -t1 -c"$conns" -d"${SECONDS_PER_RUN}s" --latency -s "$HERE/report.lua" "${extra[@]}" "$url" 2>&1) \
    || die "wrk failed on $target: $out"
  local t1 n1 p1="0,0,0,0" s1="0,0,0,0,0,0,0,0"
  t1=$(now)
  n1=$(thread_cpu "$NGINX_PID")
  [[ $target == haproxy ]] && p1=$(thread_cpu "$HAPROXY_PID")
  [[ $target == strait ]] && s1=$(strait_counters)
  local result
  result=$(grep '^RESULT' <<<"$out") || die "no RESULT from wrk on $target: $out"
  echo "workload=$w target=$target round=$round conns=$conns ${result#RESULT } t0=$t0 t1=$t1 nginx0=$n0 nginx1=$n1 haproxy0=$p0 haproxy1=$p1 strait0=$s0 strait1=$s1" >>"$RAW"
  tail -n 1 "$RAW" >&2
}

# ---------------------------------------------------------------- workloads
log "warm-up"
for target in direct haproxy strait; do
  ip netns exec "$NS_C" taskset -c "$PEER_CPU" wrk -t1 -c10 -d2s "$(url_of $target small.bin)" >/dev/null
done
log "workloads: $WORKLOADS; $RUNS rounds x ${SECONDS_PER_RUN}s per target; paced: $PACE_CONNS conns x ${PACE_MS} ms think time"
for w in $WORKLOADS; do
  for round in $(seq "$RUNS"); do
    for target in direct haproxy strait; do
      run_one "$w" "$target" "$round"
      sleep 1   # let TIME-WAIT and queues settle between runs
    done
  done
done

# Optional profiles (BENCH_PROFILE=1, needs `perf`): each proxy's thread under the
# keep-alive and the 1 MiB workload, as flat profiles by DSO and symbol.
if [[ ${BENCH_PROFILE:-0} == 1 ]] && command -v perf >/dev/null; then
  for w in keepalive big; do
    for target in haproxy strait; do
      pid=$HAPROXY_PID; [[ $target == strait ]] && pid=$STRAIT_PID
      path=small.bin conns=$CONNS; [[ $w == big ]] && path=big.bin conns=$BIG_CONNS
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

# Strait's own view of the runs: counters at the end (drops, retransmissions, resets).
ip netns exec "$NS_S" curl -sf --max-time 2 http://127.0.0.1:9100/metrics \
  | grep -E '^strait_(net_dropped_frames_total|lcore_tx_dropped_frames_total|tcp_(retrans_segs|out_rsts|attempt_fails|estab_resets)_total|port_rx_(missed|nombuf)_total)' \
  | awk '$NF != 0' >"$WORK/strait-final-counters.txt" || true

# ---------------------------------------------------------------- ceiling: L2 reflector
CEIL="$WORK/ceiling.tsv"
: >"$CEIL"
if [[ $CEILING == 1 ]]; then
  # Strait is stopped first: the reflector gets CPU 1 to itself.
  kill -TERM "$STRAIT_PID"; wait "$STRAIT_PID" 2>/dev/null || true
  TAP_R="${TAG}tr"
  ip netns exec "$NS_R" "$REFLECTOR" -l "$PROXY_CPU" --no-huge -m 256 --no-shconf --no-telemetry \
    --file-prefix "refl$$" --no-pci "--vdev=net_tap0,iface=$TAP_R" -- --seconds 0 >"$WORK/reflector.log" 2>&1 &
  REFL_PID=$!
  PIDS+=("$REFL_PID")
  wait_for 30 "l2_reflector ready" grep -q "l2_reflector ready" "$WORK/reflector.log"
  ip -n "$NS_R" link set "$TAP_R" up
  stat_of() { ip netns exec "$NS_R" cat "/sys/class/net/$TAP_R/statistics/$1"; }
  for size in 60 1514; do
    for round in $(seq "$RUNS"); do
      rx0=$(stat_of rx_packets) tx0=$(stat_of tx_packets) d0=$(stat_of tx_dropped) c0=$(thread_cpu "$REFL_PID") t0=$(now)
      gen=$(ip netns exec "$NS_R" taskset -c "$PEER_CPU" "$WORK/pktgen" "$TAP_R" 5 "$size")
      t1=$(now)
      rx1=$(stat_of rx_packets) tx1=$(stat_of tx_packets) d1=$(stat_of tx_dropped) c1=$(thread_cpu "$REFL_PID")
      echo "size=$size round=$round t0=$t0 t1=$t1 reflected=$((rx1 - rx0)) offered=$((tx1 - tx0)) tap_dropped=$((d1 - d0)) cpu0=$c0 cpu1=$c1 gen=\"${gen// /_}\"" >>"$CEIL"
      tail -n 1 "$CEIL" >&2
    done
  done
fi

# ---------------------------------------------------------------- report
MACHINE="$(nproc) vCPU $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r)"
VERSIONS="strait $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'), $(haproxy -v | head -1 | awk '{print "HAProxy", $3}'), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), DPDK $(pkg-config --modversion libdpdk 2>/dev/null || echo '?')"
python3 "$HERE/report.py" "$RAW" "$CEIL" --clk-tck "$CLK_TCK" \
  --machine "$MACHINE" --versions "$VERSIONS" \
  --command "${BENCH_STRAIT_OFFLOADS:+BENCH_STRAIT_OFFLOADS=\"$BENCH_STRAIT_OFFLOADS\" }BENCH_RUNS=$RUNS BENCH_SECONDS=$SECONDS_PER_RUN BENCH_CONNS=$CONNS BENCH_BIG_CONNS=$BIG_CONNS BENCH_RATE=$RATE BENCH_KERNEL_OFFLOADS=$KERNEL_OFFLOADS deploy/bench/run.sh" \
  --load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --strait-counters "$WORK/strait-final-counters.txt" | tee "$WORK/table.md"
[[ -f $WORK/profiles.md ]] && cat "$WORK/profiles.md" | tee -a "$WORK/table.md"
if [[ -n ${BENCH_OUT:-} ]]; then
  cp "$WORK/table.md" "$BENCH_OUT"
  cp "$RAW" "$BENCH_OUT.raw.tsv"
  cp "$CEIL" "$BENCH_OUT.ceiling.tsv"
  log "table written to $BENCH_OUT (raw runs beside it)"
fi
