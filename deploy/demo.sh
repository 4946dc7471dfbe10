#!/usr/bin/env bash
# The demo: Strait on a DPDK tap port (no NIC binding, no hugepages) inside a network
# namespace of its own, answering ARP and ping from the kernel in that namespace.
# Cleans up its namespace and process on exit, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/strait}
CONFIG=${CONFIG:-configs/demo.toml}
NS="strait-demo-$$"
TAP=strait0
LOG=$(mktemp /tmp/strait-demo.XXXXXX.log)
PID=""

cleanup() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
  fi
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$BIN" check-config "$CONFIG"
ip netns add "$NS"
ip -n "$NS" link set lo up
echo "== starting strait in namespace $NS (log: $LOG)"
ip netns exec "$NS" "$BIN" run --config "$CONFIG" >"$LOG" 2>&1 &
PID=$!

for _ in $(seq 300); do
  grep -q "strait ready" "$LOG" && break
  kill -0 "$PID" 2>/dev/null || { echo "strait exited early:"; cat "$LOG"; exit 1; }
  sleep 0.1
done
grep -q "strait ready" "$LOG" || { echo "strait did not become ready:"; cat "$LOG"; exit 1; }
grep -E "port up|strait ready" "$LOG"

ip -n "$NS" addr add 198.18.0.1/24 dev "$TAP"
ip -n "$NS" link set "$TAP" up
echo "== ping 198.18.0.2 (Strait's address on $TAP) from the kernel in $NS"
ok=0
for _ in $(seq 20); do
  if ip netns exec "$NS" ping -c 1 -W 1 198.18.0.2 >/dev/null 2>&1; then ok=1; break; fi
done
[[ $ok == 1 ]] || { echo "no reply"; cat "$LOG"; exit 1; }
ip netns exec "$NS" ping -c 5 -i 0.2 198.18.0.2
echo "== kernel neighbour entry for Strait"
ip -n "$NS" neigh show 198.18.0.2
echo "== stopping strait (SIGTERM)"
kill -TERM "$PID"
wait "$PID"
PID=""
grep -E "final counters|port statistics|strait stopped" "$LOG"
echo "== demo OK"
