#!/usr/bin/env python3
"""report.py: the Markdown result table of deploy/bench/run.sh.

Input: the raw runs (one line of key=value fields per wrk run, written by run.sh), the
L2 reflector runs (tap and AF_XDP ports) and the lossy downloads and uploads. Every figure is
the median over the rounds of one (workload, target); the lossy transfers also show min-max.

Per run:
  * rate: wrk's requests (or bytes x 8) / wrk's own duration;
  * p50/p99: wrk's latency percentiles (--latency, from its report script);
  * proxy CPU: HAProxy: utime+stime from /proc/PID/stat over the run. Strait: the busy
    cycles of its lcore (strait_lcore_cycles_total{kind="busy"}) over the run divided by
    the TSC rate, which is itself measured as the kind="all" cycles over the wall time of
    the run (the "all" counter advances at the TSC rate). Spinning on an empty queue is not
    busy, so this is CPU time spent on work, comparable with HAProxy's utime+stime;
  * CPU per request: proxy CPU / requests; backend CPU per request the same for nginx;
  * Strait frames/s: its lcore's RX+TX frames (both ports) over the wall time;
  * Strait instructions per request: the user-space instructions of its lcore thread
    (`perf stat -e instructions:u -t`, over the run's seconds) / wrk's requests; "–"
    where the machine has no PMU to count them. With BENCH_CALLGRIND=1, the whole
    process's instructions as callgrind counts them over the run instead.
"""
import argparse
import datetime
import statistics
import sys

WORKLOADS = {
    "keepalive": "keep-alive, 128 B responses",
    "keepalive6": "keep-alive over IPv6, 128 B responses",
    "close": "`Connection: close`, 128 B responses",
    "big": "1 MiB responses, keep-alive",
    "big6": "1 MiB responses, keep-alive, over IPv6",
    "paced": "fixed offered load, 128 B responses",
}
TARGETS = ["direct", "haproxy", "strait", "strait-xdp"]
LABELS = {"direct": "direct", "haproxy": "HAProxy", "strait": "Strait (tap)", "strait-xdp": "Strait (AF_XDP)"}
STRAITS = ("strait", "strait-xdp")
CONNS_BASE = 50
# Which Strait target a reflector ceiling is compared with.
CEILING_TARGET = {"tap": "strait", "af_xdp": "strait-xdp"}


def parse(line):
    out = {}
    for field in line.split():
        if "=" in field:
            k, v = field.split("=", 1)
            out[k] = v.strip('"')
    return out


def num(d, k):
    return float(d[k])


def triple(d, k):
    """A thread_cpu field: on-CPU ns, runqueue-wait ns, utime ticks, stime ticks."""
    return [float(x) for x in d[k].split(",")]


def derive(r, clk_tck):
    """Figures of one wrk run."""
    secs = num(r, "duration_us") / 1e6
    wall = num(r, "t1") - num(r, "t0")
    reqs = max(num(r, "requests"), 1)
    n0, n1 = triple(r, "nginx0"), triple(r, "nginx1")
    f = {
        "rate": num(r, "requests") / secs,
        "gbps": num(r, "bytes") * 8 / secs / 1e9,
        "p50": num(r, "p50_us") / 1000,
        "p99": num(r, "p99_us") / 1000,
        "errors": num(r, "errors"),
        "timeouts": num(r, "timeouts") if "timeouts" in r else 0.0,
        "nginx_us": (n1[2] + n1[3] - n0[2] - n0[3]) / clk_tck / reqs * 1e6,
        "handshake": handshake(r),
    }
    if "stalls1" in r and r["target"] in STRAITS:
        # Strait's lcore passes over 25 ms and 100 ms, and frames its RX rings dropped.
        (a0, b0, m0), (a1, b1, m1) = ([float(x) for x in r[k].split(",")] for k in ("stalls0", "stalls1"))
        f["passes_25ms"], f["passes_100ms"], f["rx_missed"] = a1 - a0, b1 - b0, m1 - m0
    if "mem_mid" in r:
        # Memory half-way through a concurrency run, against the start of the run:
        # VmRSS growth per connection, and (Strait) mbufs in use and TCP connections.
        (rss0, mb0, c0), (rss1, mb1, c1) = ([float(x) for x in r[k].split(",")] for k in ("mem0", "mem_mid"))
        conns = max(num(r, "conns"), 1)
        f["rss_mb"] = rss1 / 1024
        f["rss_kb_conn"] = (rss1 - rss0) / conns
        if r["target"] in STRAITS:
            f["mbufs_conn"] = (mb1 - mb0) / conns
            f["tcp_conns"] = c1
    t = r["target"]
    if t == "haproxy":
        h0, h1 = triple(r, "haproxy0"), triple(r, "haproxy1")
        ut, st = (h1[2] - h0[2]) / clk_tck, (h1[3] - h0[3]) / clk_tck
        cpu = ut + st
        f["proxy_us"] = cpu / reqs * 1e6
        f["proxy_load"] = cpu / wall
        f["kernel_share"] = st / cpu if cpu > 0 else None
        f["user_us"] = ut / reqs * 1e6
    elif t in STRAITS:
        b0, a0, rx0, tx0, ns0, wait0, ut0, st0 = (float(x) for x in r["strait0"].split(","))
        b1, a1, rx1, tx1, ns1, wait1, ut1, st1 = (float(x) for x in r["strait1"].split(","))
        if a1 > a0:
            hz = (a1 - a0) / wall
            busy_ratio = (b1 - b0) / (a1 - a0)
            oncpu = (ns1 - ns0) / 1e9
            waited = (wait1 - wait0) / 1e9
            # Busy cycles count wall time, including time the lcore thread sat preempted
            # on the runqueue while other processes ran; the share of its runnable time
            # it actually ran (schedstat) removes that, taking preemption as spread
            # evenly over its runnable time (its naps are neither).
            running = oncpu / (oncpu + waited) if oncpu + waited > 0 else 1.0
            cpu = (b1 - b0) / hz * running
            f["proxy_us"] = cpu / reqs * 1e6
            f["proxy_us_tsc"] = (b1 - b0) / hz / reqs * 1e6
            f["proxy_load"] = busy_ratio
            f["oncpu_share"] = running
            f["tsc_ghz"] = hz / 1e9
            ticks = (ut1 - ut0) + (st1 - st0)
            f["kernel_share"] = (st1 - st0) / ticks if ticks > 0 else None
            if f["kernel_share"] is not None:
                f["user_us"] = f["proxy_us"] * (1 - f["kernel_share"])
            frames = rx1 - rx0 + tx1 - tx0
            f["frames_s"] = frames / wall
            f["frames_cpu_s"] = frames / cpu if cpu > 0 else None
            f["frames_req"] = frames / reqs
    if "packets1" in r and t in ("haproxy",) + STRAITS:
        # Packets the proxy received and sent, and delayed-ACK timeouts, per request: what
        # the request cost on the wire. CPU per packet divides the request's CPU by them.
        (pk0, da0), (pk1, da1) = ([float(x) for x in r[k].split(",")] for k in ("packets0", "packets1"))
        f["pkts_req"] = (pk1 - pk0) / reqs
        f["delacks_req"] = (da1 - da0) / reqs
        if f.get("proxy_us") is not None and pk1 > pk0:
            f["proxy_us_pkt"] = f["proxy_us"] / f["pkts_req"]
    if t in STRAITS:
        if r.get("strait_instr", "NA").isdigit():
            f["instr_req"] = float(r["strait_instr"]) / reqs
    return f


def handshake(r):
    """The run's handshake_counters deltas (nginx ListenOverflows, ListenDrops, proxy SYN
    retransmissions, client TCPSynRetrans, client RetransSegs), or None before they existed."""
    if "handshake0" not in r:
        return None
    return [b - a for a, b in zip(*([float(x) for x in r[k].split(",")] for k in ("handshake0", "handshake1")))]


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=1):
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}".replace(",", " ")
    return f"{v:.{digits}f}"


def ratio(s, h, higher_is_better=True):
    if s is None or h is None or h == 0:
        return "–"
    return f"{s / h:.2f}×"


TCP_KEYS = ("rto", "spurious", "tlp", "tlp_rec", "retrans", "loss_undo", "stall", "lost_retrans", "dsack")


# The sender's counters shown per (loss, target): (header, key of TCP_KEYS).
COMMON_COLUMNS = [("RTOs", "rto"), ("spurious RTOs", "spurious"), ("RTO undos", "loss_undo"),
                  ("tail loss probes", "tlp"), ("TLP recoveries", "tlp_rec")]
DOWN_COLUMNS = COMMON_COLUMNS + [("stall probes", "stall"), ("retransmitted segments", "retrans")]
UP_COLUMNS = COMMON_COLUMNS + [("retransmitted segments", "retrans"), ("lost again", "lost_retrans"),
                               ("D-SACKs", "dsack")]


def counter_table(p, rows, losses, ts, who, columns):
    """The medians of `columns` per (loss, target), and the segments nftables dropped."""
    p("")
    p(f"| loss each way | {who} | " + " | ".join(h for h, _ in columns) + " | dropped in / out |")
    p("|---|---|" + "---:|" * (len(columns) + 1))
    for loss in losses:
        for t in ts:
            rs = [r for r in rows if r["target"] == t and r["loss"] == loss]
            m = {k: statistics.median(r[k] for r in rs) for k in TCP_KEYS + ("drop_in", "drop_out")}
            p(f"| {loss} % | {LABELS[t]} | " + " | ".join(f"{m[k]:.0f}" for _, k in columns)
              + f" | {m['drop_in']:.0f} / {m['drop_out']:.0f} |")


def lossy_report(p, path, targets, pairs, size_mb):
    """The lossy transfers: goodput per (direction, loss, target), the senders' loss-recovery counters."""
    rows = []
    with open(path) as f:
        lines = f.readlines()
    for line in lines:
        if line.strip():
            r = parse(line)
            k0 = [float(x) for x in r["tcp0"].split(",")]
            k1 = [float(x) for x in r["tcp1"].split(",")]
            d_in, d_out = (int(x) for x in r["drops"].split(","))
            row = {"target": r["target"], "dir": r.get("dir", "down"), "loss": r["loss"], "round": int(r["round"]),
                   "status": r["status"], "mbs": float(r["speed"]) / 1e6, "secs": float(r["time"]),
                   "drop_in": d_in, "drop_out": d_out}
            row.update({k: 0.0 for k in TCP_KEYS})  # older reports and Strait have fewer fields
            row.update({k: b - a for k, a, b in zip(TCP_KEYS, k0, k1)})
            rows.append(row)
    for d in ("down", "up"):
        lossy_direction(p, [r for r in rows if r["dir"] == d], d, targets, pairs, size_mb)


def lossy_direction(p, rows, d, targets, pairs, size_mb):
    if not rows:
        return
    losses = []
    for r in rows:
        if r["loss"] not in losses:
            losses.append(r["loss"])
    ts = [t for t in targets if any(r["target"] == t for r in rows)]
    prs = [(s, h) for s, h in pairs if s in ts and h in ts]
    rounds = max(r["round"] for r in rows)
    what = "uploads" if d == "up" else "downloads"
    p("")
    size = f"{size_mb:g} MiB" if size_mb else "the"
    if d == "up":
        how = (f"Lossy uploads: curl in the client namespace PUTs one {size} file (random bytes) through the target "
               "to nginx; the client's kernel sends through the losses and the target receives; goodput in MB/s "
               "(10^6 bytes/s, curl's `speed_upload`)")
    else:
        how = (f"Lossy downloads: one {size} file (random bytes) with curl in the client namespace; goodput in MB/s "
               "(10^6 bytes/s, curl's `speed_download`)")
    p(f"{how}, nftables dropping TCP at random in both directions of the client namespace, "
      f"median (min–max) of {rounds} rounds, targets interleaved; every transfer's sha256 checked.")
    p("")
    p("| loss each way | " + " | ".join(LABELS[t] for t in ts) + "".join(f" | {LABELS[s]} / HAProxy" for s, _ in prs) + " |")
    p("|---|" + "---:|" * (len(ts) + len(prs)))
    for loss in losses:
        meds = {}
        cells = []
        for t in ts:
            rs = [r for r in rows if r["target"] == t and r["loss"] == loss]
            ok = [r["mbs"] for r in rs if r["status"] == "ok"]
            bad = len(rs) - len(ok)
            meds[t] = statistics.median(ok) if ok else None
            c = f"{meds[t]:.2f} ({min(ok):.2f}–{max(ok):.2f})" if ok else "–"
            if bad:
                c += f", **{bad}/{len(rs)} failed** ({', '.join(sorted(set(r['status'] for r in rs if r['status'] != 'ok')))})"
            cells.append(c)
        cells += [ratio(meds[s], meds[h]) for s, h in prs]
        p(f"| {loss} % | " + " | ".join(cells) + " |")
    p("")
    if d == "up":
        p("Loss recovery of the client's kernel (the sender), median per upload, through each target as the "
          "receiver: Linux's `TcpExt` counters of the client namespace. \"lost again\" is `TCPLostRetransmit` "
          "(a retransmission found lost again), \"D-SACKs\" is `TCPDSACKRecv` (the receiver reported a copy it "
          "already had); and the segments nftables dropped:")
        counter_table(p, rows, losses, ts, "through", UP_COLUMNS)
        return
    p("Loss recovery of the sender towards the client, median per download (Strait: its counters; direct and "
      "HAProxy: the kernel's `TcpExt` counters of nginx's and HAProxy's namespace), and the segments nftables dropped. "
      "\"spurious RTOs\" is `TCPSpuriousRTOs`: Linux counts F-RTO undos only, Strait timestamp (Eifel) and F-RTO "
      "undos; \"RTO undos\" is `TCPLossUndo` (Linux: every undo of an RTO, timestamps included), the like-for-like "
      "figure. Stall probes: Strait's ACK-stall probes (none in Linux):")
    counter_table(p, rows, losses, ts, "sender", DOWN_COLUMNS)
    strait_rows = [r for r in rows if r["target"] in STRAITS]
    if strait_rows:
        p("")
        p(f"Strait, every {what[:-1]}:")
        p("")
        p("| target | loss each way | round | MB/s | result | RTOs | spurious RTOs | tail loss probes | TLP recoveries | stall probes | retransmitted segments | dropped in / out |")
        p("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in sorted(strait_rows, key=lambda r: (STRAITS.index(r["target"]), losses.index(r["loss"]), r["round"])):
            p(f"| {LABELS[r['target']]} | {r['loss']} % | {r['round']} | {r['mbs']:.2f} | {r['status']} | {r['rto']:.0f} | "
              f"{r['spurious']:.0f} | {r['tlp']:.0f} | {r['tlp_rec']:.0f} | {r['stall']:.0f} | {r['retrans']:.0f} | {r['drop_in']} / {r['drop_out']} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("ceiling")
    ap.add_argument("--machine", default="?")
    ap.add_argument("--versions", default="?")
    ap.add_argument("--command", default="deploy/bench/run.sh")
    ap.add_argument("--load", default="?")
    ap.add_argument("--strait-counters", default=None)
    ap.add_argument("--clk-tck", type=float, default=100.0)
    ap.add_argument("--targets", default=" ".join(TARGETS))
    ap.add_argument("--lossy", default=None)
    ap.add_argument("--lossy-mb", type=float, default=None)
    ap.add_argument("--conns", type=int, default=50)
    a = ap.parse_args()
    global CONNS_BASE
    CONNS_BASE = a.conns
    targets = [t for t in a.targets.split() if t in TARGETS]
    # Ratio columns: each Strait against HAProxy.
    pairs = [(t, "haproxy") for t in STRAITS if t in targets and "haproxy" in targets]

    runs = {}
    for line in open(a.raw):
        if line.strip():
            r = parse(line)
            runs.setdefault((r["workload"], r["target"]), []).append(derive(r, a.clk_tck))
    ceil = {}
    for line in open(a.ceiling):
        if line.strip():
            r = parse(line)
            wall = num(r, "t1") - num(r, "t0")
            c0, c1 = triple(r, "cpu0"), triple(r, "cpu1")
            oncpu = (c1[0] - c0[0]) / 1e9
            waited = (c1[1] - c0[1]) / 1e9
            frames = 2 * num(r, "reflected")
            ceil.setdefault((r.get("port", "tap"), int(r["size"])), []).append({
                "offered": num(r, "offered") / wall,
                "reflected": num(r, "reflected") / wall,
                "dropped": num(r, "tap_dropped") / wall,
                "frames_s": frames / wall,
                "frames_cpu_s": frames / oncpu if oncpu > 0 else None,
                "oncpu_share": oncpu / (oncpu + waited) if oncpu + waited > 0 else None,
            })

    rounds = max((len(v) for v in runs.values()), default=0)
    out = []
    p = out.append
    p(f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.  ")
    p(f"Machine: {a.machine}; load average at the end {a.load}.  ")
    p(f"Versions: {a.versions}.  ")
    p(f"Command: `{a.command}`" + (f"; medians of {rounds} rounds, targets interleaved." if runs else "."))
    p("")
    heads = [LABELS[t] for t in targets] + [f"{LABELS[s]} / HAProxy" for s, _ in pairs]
    if runs:
        p("| workload | metric | " + " | ".join(heads) + " |")
        p("|---|---|" + "---:|" * len(heads))
    wire_rows = [("packets through the proxy per request (received + sent)", "pkts_req", 2),
                 ("delayed-ACK timeouts per request (pure ACKs the proxy's TCP sent late)", "delacks_req", 2),
                 ("proxy CPU per packet, µs", "proxy_us_pkt", 2)]
    cpu_rows = [("proxy CPU per request, µs", "proxy_us", 2),
                ("Strait: the same from wall-clock busy cycles ÷ TSC, µs", "proxy_us_tsc", 2),
                ("proxy CPU load (Strait: busy ratio)", "proxy_load", 2),
                ("kernel share of the proxy's CPU (stime)", "kernel_share", 2),
                ("proxy user-space CPU per request (the share not in the kernel), µs", "user_us", 2),
                ("Strait lcore: running ÷ runnable time (1 = never preempted)", "oncpu_share", 2)]
    rows = {
        "keepalive": [("req/s", "rate", 0), ("p50 latency, ms", "p50", 2), ("p99 latency, ms", "p99", 2)]
                     + cpu_rows + [("backend CPU per request, µs", "nginx_us", 2),
                                   ("Strait lcore: user-space instructions per request (perf instructions:u, or callgrind with BENCH_CALLGRIND=1)", "instr_req", 0)]
                     + wire_rows,
        "keepalive6": [("req/s", "rate", 0), ("p50 latency, ms", "p50", 2), ("p99 latency, ms", "p99", 2)]
                      + cpu_rows + [("backend CPU per request, µs", "nginx_us", 2)] + wire_rows,
        "close": [("connections/s", "rate", 0), ("p50 latency, ms", "p50", 2), ("p99 latency, ms", "p99", 2)]
                 + [(l.replace("request", "connection"), k, d) for l, k, d in cpu_rows],
        "big": [("Gbit/s", "gbps", 2), ("p50 latency, ms", "p50", 2)]
               + [(l.replace("request, µs", "MiB, µs"), k, 0 if k.startswith("proxy_us") else d) for l, k, d in cpu_rows],
        "big6": [("Gbit/s", "gbps", 2), ("p50 latency, ms", "p50", 2)]
                + [(l.replace("request, µs", "MiB, µs"), k, 0 if k.startswith("proxy_us") else d) for l, k, d in cpu_rows],
        "paced": [("req/s achieved", "rate", 0), ("p50 latency, ms", "p50", 2), ("p99 latency, ms", "p99", 2)]
                 + [(("**" + l + "**") if k == "proxy_us" else l, k, d) for l, k, d in cpu_rows]
                 + [("backend CPU per request, µs", "nginx_us", 2)],
    }
    conc_rows = [("req/s", "rate", 0), ("p50 latency, ms", "p50", 2), ("p99 latency, ms", "p99", 2)] + cpu_rows[:1] + [
        cpu_rows[3], cpu_rows[4]] + wire_rows + [
        ("proxy RSS half-way, MB", "rss_mb", 0),
        ("proxy RSS growth per connection, kB", "rss_kb_conn", 1),
        ("Strait: mbufs in use per connection (half-way)", "mbufs_conn", 2),
        ("Strait: TCP connections half-way (both sides)", "tcp_conns", 0),
        ("Strait: lcore passes over 25 ms (`strait_lcore_busy_pass_seconds`)", "passes_25ms", 0),
        ("Strait: lcore passes over 100 ms", "passes_100ms", 0),
        ("Strait: frames its RX rings dropped (`strait_port_rx_missed_total`)", "rx_missed", 0)]
    for w, _ in sorted({k for k in runs if k[0].startswith("conc")}, key=lambda k: int(k[0][4:])):
        if w not in rows:
            rows[w] = conc_rows
            WORKLOADS[w] = f"{int(w[4:]):,} keep-alive connections".replace(",", " ")
    for w, metrics in rows.items():
        if not any((w, t) in runs for t in targets):
            continue
        for label, key, digits in metrics:
            vals = {t: med(runs.get((w, t), []), key) for t in targets}
            cells = [fmt(vals[t], digits) for t in targets] + [ratio(vals[s], vals[h]) for s, h in pairs]
            p(f"| {WORKLOADS[w]} | {label} | {' | '.join(cells)} |")
        errs = {t: sum(r["errors"] for r in runs.get((w, t), [])) for t in targets}
        if any(errs.values()) or w.startswith("conc"):
            cells = [fmt(errs[t], 0) for t in targets] + [""] * len(pairs)
            p(f"| {WORKLOADS[w]} | wrk errors (all rounds) | {' | '.join(cells)} |")
        if w.startswith("conc"):
            # Handshakes that waited (run.sh handshake_counters): a backend SYN dropped on
            # nginx's full accept queue costs a request a second or more inside wrk's clock.
            for label, i in (("nginx accept-queue overflows (ListenOverflows, all rounds)", 0),
                             ("SYNs the proxy sent again to the backend (all rounds)", 2),
                             ("client SYN retransmissions (all rounds)", 3)):
                sums = {t: sum(r["handshake"][i] for r in runs.get((w, t), []) if r["handshake"]) for t in targets}
                cells = [fmt(sums[t], 0) for t in targets] + [""] * len(pairs)
                p(f"| {WORKLOADS[w]} | {label} | {' | '.join(cells)} |")
    if runs:
        p("")
        p("Proxy CPU: HAProxy utime+stime of its one thread; Strait: busy cycles of `strait_lcore_cycles_total` ÷ TSC "
          "rate × the share of its runnable time the lcore thread actually ran (schedstat), which takes out the time it "
          "sat preempted by other load; the raw busy cycles ÷ TSC rate are shown beside it. For rates higher is "
          "better, for latency and CPU lower is better.")
    # Concurrency: each Strait's CPU per request at N connections against its own at 50
    # (the keep-alive workload), the flatness the issue-19 acceptance asks for.
    concs = sorted({k[0] for k in runs if k[0].startswith("conc")}, key=lambda w: int(w[4:]))
    for t in STRAITS:
        base = med(runs.get(("keepalive", t), []), "proxy_us")
        if concs and base:
            cells = ", ".join(f"{int(w[4:])}: {med(runs.get((w, t), []), 'proxy_us') / base:.2f}×"
                              for w in concs if med(runs.get((w, t), []), "proxy_us"))
            p(f"{LABELS[t]}: CPU per request at N connections ÷ at {CONNS_BASE} (keep-alive workload): {cells}.")
            p("")
    # The same for user-space CPU only: over veths and AF_XDP in copy mode the receiving
    # kernel stack of the peer runs in the sender's context, so the kernel share of the
    # proxy's thread grows with the peers' work (socket lookups over N connections), not
    # the proxy's own.
    for t in ["haproxy"] + list(STRAITS):
        base = med(runs.get(("keepalive", t), []), "user_us")
        if concs and base:
            cells = ", ".join(f"{int(w[4:])}: {med(runs.get((w, t), []), 'user_us') / base:.2f}×"
                              for w in concs if med(runs.get((w, t), []), "user_us"))
            p(f"{LABELS[t]}: user-space CPU per request at N connections ÷ at {CONNS_BASE}: {cells}.")
            p("")
    # And per packet: past the delayed-ACK timeout (40 ms) a request costs a pure ACK each
    # way besides its segments, in either proxy; CPU per packet is the proxy's own scaling
    # with the number of connections, whatever the packet mix.
    for t in ["haproxy"] + list(STRAITS):
        base = med(runs.get(("keepalive", t), []), "proxy_us_pkt")
        if concs and base:
            cells = ", ".join(f"{int(w[4:])}: {med(runs.get((w, t), []), 'proxy_us_pkt') / base:.2f}×"
                              for w in concs if med(runs.get((w, t), []), "proxy_us_pkt"))
            p(f"{LABELS[t]}: CPU per packet at N connections ÷ at {CONNS_BASE}: {cells}.")
            p("")
    tsc = None
    for t in STRAITS:
        tsc = tsc or med(runs.get(("keepalive", t), []), "tsc_ghz")
    if tsc:
        p(f"TSC rate measured from the lcore's cycle counter: {tsc:.3f} GHz.")
    p("")
    if ceil:
        p("| raw ceiling: L2 reflector, one lcore | offered frames/s | reflected frames/s | "
          "port frames/s (RX+TX) | per CPU-second | reflector running ÷ runnable | Strait frames per CPU-second (workload) | Strait / ceiling |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|")
        for port_kind in ("tap", "af_xdp"):
            t = CEILING_TARGET[port_kind]
            for size, w, wl in ((60, "keepalive", "keep-alive"), (1514, "big", "1 MiB")):
                c = ceil.get((port_kind, size))
                if not c:
                    continue
                port = med(c, "frames_cpu_s")
                sf = med(runs.get((w, t), []), "frames_cpu_s")
                frac = f"{sf / port:.2f}" if sf and port else "–"
                name = "net_tap" if port_kind == "tap" else "net_af_xdp (veth)"
                p(f"| {name}, {size}-byte frames | {fmt(med(c, 'offered'), 0)} | {fmt(med(c, 'reflected'), 0)} | "
                  f"{fmt(med(c, 'frames_s'), 0)} | {fmt(port, 0)} | {fmt(med(c, 'oncpu_share'), 2)} | "
                  f"{fmt(sf, 0)} ({LABELS[t]}, {wl}) | {frac} |")
    for t in STRAITS:
        fr = med(runs.get(("keepalive", t), []), "frames_req")
        if fr:
            p("")
            p(f"{LABELS[t]} moves {fr:.1f} frames per keep-alive request (both ports, RX+TX, as the ports count them).")
    if a.lossy:
        lossy_report(p, a.lossy, targets, pairs, a.lossy_mb)
    if a.strait_counters:
        try:
            lines = [l.strip() for l in open(a.strait_counters) if l.strip()]
        except OSError:
            lines = []
        p("")
        p("Strait's non-zero drop/retransmission/reset counters after all runs: "
          + (", ".join(f"`{l}`" for l in lines) if lines else "none") + ".")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
