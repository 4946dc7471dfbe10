#!/usr/bin/env bash
# The demo: Strait as a TCP proxy in front of a real nginx, all inside one network
# namespace, on two DPDK tap ports (no NIC binding, no hugepages; configs/demo.toml):
#
#   wrk ──> strait0 (198.18.0.1) ──tap──> Strait 198.18.0.2:80 (listener "web")
#   nginx 198.18.1.1:8080 <──tap── Strait 198.18.1.2 <── strait1
#
# Shows ARP/ping on the client side, runs wrk through the proxy (10 s, keep-alive), prints
# its result and an excerpt of Strait's Prometheus metrics, and stops Strait with SIGTERM.
# Cleans up its namespace, nginx and Strait on exit, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/strait}
CONFIG=${CONFIG:-configs/demo.toml}
DURATION=${DURATION:-10s}
NS="strait-demo-$$"
LOG=$(mktemp /tmp/strait-demo.XXXXXX.log)
WWW=$(mktemp -d /tmp/strait-demo-www.XXXXXX)
PID=""

cleanup() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
  fi
  # nginx and anything else still running in the namespace.
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WWW"
}
trap cleanup EXIT INT TERM

in_ns() { ip netns exec "$NS" "$@"; }

"$BIN" check-config "$CONFIG"
ip netns add "$NS"
ip -n "$NS" link set lo up
echo "== starting strait in namespace $NS (log: $LOG)"
# Not through in_ns: a backgrounded function is a subshell, and $! must be strait itself.
ip netns exec "$NS" "$BIN" run --config "$CONFIG" >"$LOG" 2>&1 &
PID=$!

for _ in $(seq 300); do
  grep -q "strait ready" "$LOG" && break
  kill -0 "$PID" 2>/dev/null || { echo "strait exited early:"; cat "$LOG"; exit 1; }
  sleep 0.1
done
grep -q "strait ready" "$LOG" || { echo "strait did not become ready:"; cat "$LOG"; exit 1; }
grep -E "port up|proxy listening|metrics endpoint|strait ready" "$LOG"

# The kernel's ends of the two tap ports: clients on strait0, the backend on strait1.
ip -n "$NS" addr add 198.18.0.1/24 dev strait0
ip -n "$NS" link set strait0 up
ip -n "$NS" addr add 198.18.1.1/24 dev strait1
ip -n "$NS" link set strait1 up

echo "== nginx backend on 198.18.1.1:8080"
head -c 4096 /dev/zero | tr '\0' 'x' >"$WWW/index.html"
# nginx's workers (www-data) read the files.
chmod 755 "$WWW"
chmod 644 "$WWW/index.html"
cat >"$WWW/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $WWW/nginx.pid;
error_log $WWW/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WWW/body;
    proxy_temp_path $WWW/proxy;
    fastcgi_temp_path $WWW/fastcgi;
    uwsgi_temp_path $WWW/uwsgi;
    scgi_temp_path $WWW/scgi;
    keepalive_requests 1000000;
    server { listen 198.18.1.1:8080; root $WWW; }
}
EOF
ip netns exec "$NS" nginx -p "$WWW" -e "$WWW/error.log" -c "$WWW/nginx.conf" </dev/null >/dev/null 2>&1 &
disown  # killed with the namespace by cleanup; no job notice
for _ in $(seq 100); do
  in_ns ss -ltn | grep -q "198.18.1.1:8080" && break
  sleep 0.1
done
in_ns ss -ltn | grep -q "198.18.1.1:8080" || { echo "nginx does not listen"; cat "$WWW/error.log"; exit 1; }

echo "== ping 198.18.0.2 (Strait's address on strait0) from the kernel"
ok=0
for _ in $(seq 20); do
  if in_ns ping -c 1 -W 1 198.18.0.2 >/dev/null 2>&1; then ok=1; break; fi
done
[[ $ok == 1 ]] || { echo "no reply"; cat "$LOG"; exit 1; }
in_ns ping -c 3 -i 0.2 198.18.0.2
echo "== ping 198.18.1.2 (Strait's address on strait1, the backend side)"
in_ns ping -c 1 -W 1 198.18.1.2 >/dev/null 2>&1 || true
in_ns ping -c 3 -i 0.2 198.18.1.2

echo "== one request through the proxy"
in_ns curl -sS -o /dev/null -w "HTTP %{http_code}, %{size_download} bytes in %{time_total} s\n" http://198.18.0.2/index.html

echo "== wrk through the proxy: 10 connections, keep-alive, $DURATION"
in_ns wrk -t1 -c10 -d"$DURATION" --latency http://198.18.0.2/index.html

echo "== Strait's metrics (excerpt of http://127.0.0.1:9100/metrics)"
in_ns curl -sS http://127.0.0.1:9100/metrics \
  | grep -E '^strait_(proxy_listener_(connections|connections_total|bytes_total|refused_connections_total)|proxy_server_(connections_total|connect_errors_total)|proxy_server_connect_duration_seconds_(sum|count)|proxy_listener_connection_duration_seconds_(sum|count)|tcp_connections|tcp_current_established|mempool_mbufs|lcore_busy_ratio)' \
  | grep -v ' 0$' || true

echo "== stopping strait (SIGTERM)"
kill -TERM "$PID"
wait "$PID"
PID=""
grep -E "final proxy counters|strait stopped" "$LOG"
echo "== demo OK"
