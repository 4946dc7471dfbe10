# deploy/bench/lossy.sh: the lossy transfers of deploy/bench/run.sh, sourced by it (it uses
# run.sh's namespaces, targets, url_of, tcp_counters, kernel_tcp_counters and diagnose).
#
# Workload `lossy` (issue 13): a kernel curl client in the client namespace downloads
# BENCH_LOSS_MB of random bytes (lossy.bin, served by nginx) through each target. The
# target's sender towards the client recovers the losses: Strait's TCP, HAProxy's kernel, or
# nginx's kernel for direct.
# Workload `lossyup`: the same client PUTs the same file through each target to nginx
# (`dav_methods PUT` under /up/). Now the client's kernel sends through the losses and the
# target receives: what it acknowledges, and the SACK blocks it reports, decide how well the
# client's kernel recovers (Strait: tcp/connection/selective_acks.rs).
#
# Both: nftables in the client namespace drops TCP at random in both directions (`numgen
# random mod 1000 < N`, N = 10 x the percentage; see set_loss for where and how). Every
# transfer's sha256 is checked (a corrupt one stops the script); curl --max-time bounds each
# (a timeout is recorded, with the diagnostics of `diagnose`). The sender's loss-recovery
# counters are read before and after each transfer.

client_link() { # the client namespace's interface towards TARGET
  case $1 in
    direct) echo "${TAG}cd" ;; haproxy) echo "${TAG}ch" ;; strait) echo "$TAP_C" ;; strait-xdp) echo "${TAG}cx" ;;
  esac
}
LOSSY="$WORK/lossy.tsv"
: >"$LOSSY"
# Where a lost segment leaves the client namespace: the first end of a veth pair whose other
# end stays down, so that what is sent there is dropped (veth `tx_dropped`) without the
# sender's TCP being told.
LOSS_HOLE="${TAG}bh"
ip -n "$NS_C" link add "$LOSS_HOLE" type veth peer name "${TAG}bp"
ip -n "$NS_C" link set "$LOSS_HOLE" up
# set_loss PERCENT TARGET: (re)creates the client namespace's loss tables, counters at zero.
# Received segments are dropped in the input hook: the sender never hears of them. Sent
# segments are lost on the client's link to TARGET, in the netdev egress hook, by forwarding
# them to LOSS_HOLE: the egress hook's `fwd` steals the packet and reports success to the
# stack. A `drop` in the output (or egress) hook would not be a loss at all: Linux's
# `__tcp_transmit_skb` gets NET_XMIT_DROP back, keeps the segment unsent and sends it again
# at its next chance, and `tcp_enter_cwr` shrinks its window as for an ECN mark (measured:
# 40 MiB uploads at "5 %" with no retransmission at all).
# Linux TCP hands its device GSO super-packets of up to 64 KiB even with `gso off` (the
# device segments them later), and the egress hook sees them whole, so the client's link
# gets gso_max_segs 1: one segment per packet, each lost on its own (unless
# BENCH_KERNEL_OFFLOADS=1, where loss is per super-packet; see run.sh's header).
set_loss() {
  local n link
  n=$(awk -v p="$1" 'BEGIN { printf "%d", p * 10 + 0.5 }')
  link=$(client_link "$2")
  [[ $KERNEL_OFFLOADS == 1 ]] || ip -n "$NS_C" link set "$link" gso_max_segs 1
  ip netns exec "$NS_C" nft flush ruleset
  ip netns exec "$NS_C" nft -f - <<EOF
table inet bench_loss {
  chain in { type filter hook input priority 0; policy accept; meta l4proto tcp numgen random mod 1000 < $n counter drop; }
}
table netdev bench_loss_out {
  chain out { type filter hook egress device "$link" priority 0; policy accept; meta l4proto tcp numgen random mod 1000 < $n counter fwd to "$LOSS_HOLE"; }
}
EOF
}
loss_drops() { # "dropped in,dropped out" packets since set_loss
  ip netns exec "$NS_C" nft list ruleset \
    | awk '/chain in/ { c = "in" } /chain out/ { c = "out" } /counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") d[c] = $(i + 1) }
           END { printf "%d,%d\n", d["in"], d["out"] }'
}
# sender_counters TARGET DIR: the loss-recovery counters of the side that sends the file:
# the target's sender (down) or the client's kernel (up).
sender_counters() {
  if [[ $2 == up ]]; then kernel_tcp_counters "$NS_C"; else tcp_counters "$1"; fi
}
# lossy_one TARGET PERCENT ROUND DIR: one download (DIR down) or upload (up); appends one
# line of key=value fields to LOSSY.
lossy_one() {
  local target=$1 pct=$2 round=$3 dir=$4 url out rc=0 k0 k1 drops status=ok sha speed size took code
  local what=download stored=$WORK/dl.bin
  if [[ $dir == up ]]; then
    what=upload
    stored=$WORK/www/up/$target-$pct-$round.bin
    url=$(url_of "$target" "up/$target-$pct-$round.bin")
  else
    url=$(url_of "$target" lossy.bin)
  fi
  rm -f "$stored"
  set_loss "$pct" "$target"
  if [[ ${BENCH_LOSS_PCAP:-0} == 1 ]]; then
    # Headers of every frame on the client's link to the target (before nftables' input
    # hook, after its output hook), for a look at the timing of losses and retransmissions.
    ip netns exec "$NS_C" dumpcap -q -i "$(client_link "$target")" -s 96 -w "$WORK/pcap-$target-$dir-$pct-$round.pcapng" \
      >/dev/null 2>&1 &
    PCAP_PID=$!
    PIDS+=("$PCAP_PID")
    sleep 1
  fi
  k0=$(sender_counters "$target" "$dir")
  if [[ $dir == up ]]; then
    # `Expect:` off: curl would otherwise wait for nginx's 100 Continue before sending.
    out=$(ip netns exec "$NS_C" taskset -c "$PEER_CPU" curl -s -o /dev/null -H 'Expect:' -T "$WORK/www/lossy.bin" \
          --max-time "$LOSS_TIMEOUT" -w '%{speed_upload} %{size_upload} %{time_total} %{http_code}' "$url") || rc=$?
  else
    out=$(ip netns exec "$NS_C" taskset -c "$PEER_CPU" curl -s -o "$stored" --max-time "$LOSS_TIMEOUT" \
          -w '%{speed_download} %{size_download} %{time_total} %{http_code}' "$url") || rc=$?
  fi
  sleep 0.3   # Strait publishes its TCP counters every 100 ms
  k1=$(sender_counters "$target" "$dir")
  if [[ ${BENCH_LOSS_PCAP:-0} == 1 ]]; then
    kill -INT "$PCAP_PID" 2>/dev/null || true
    wait "$PCAP_PID" 2>/dev/null || true
  fi
  drops=$(loss_drops)
  read -r speed size took code <<<"$out"
  size=${size:-0}
  # nginx answers a PUT with 201 Created.
  if (( rc == 0 )) && [[ $code == 200 || $code == 201 ]]; then
    sha=$(sha256sum "$stored" | cut -d' ' -f1)
    if [[ $sha != "$LOSS_SHA" ]]; then
      cmp "$stored" "$WORK/www/lossy.bin" >&2 || true
      diagnose "$target" "CORRUPT $what at $pct % loss, round $round: sha256 $sha, expected $LOSS_SHA, $size bytes"
      die "$target: the $what at $pct % loss (round $round) is corrupt (sha256 $sha != $LOSS_SHA)"
    fi
  else
    status="curl_rc_$rc"; (( rc == 28 )) && status=timeout
    # What did arrive must still be right (nginx keeps no partial PUT).
    if [[ $dir == down ]] && (( size > 0 )) && ! cmp -s -n "$size" "$stored" "$WORK/www/lossy.bin"; then
      diagnose "$target" "CORRUPT partial $what at $pct % loss, round $round ($status, $size bytes)"
      die "$target: the partial $what at $pct % loss (round $round) is corrupt"
    fi
    diagnose "$target" "$what at $pct % loss, round $round: $status after ${took:-?} s, $size of $((LOSS_MB << 20)) bytes, http ${code:-?}"
  fi
  echo "target=$target dir=$dir loss=$pct round=$round status=$status speed=${speed:-0} size=$size time=${took:-0} code=${code:-0} drops=$drops tcp0=$k0 tcp1=$k1" >>"$LOSSY"
  tail -n 1 "$LOSSY" >&2
  rm -f "$stored"
}
