#!/usr/bin/env python3
"""report.py: the Markdown result table of deploy/bench/run.sh.

Input: the raw runs (one line of key=value fields per wrk run, written by run.sh) and the
L2 reflector runs. Every figure is the median over the rounds of one (workload, target).

Per run:
  * rate: wrk's requests (or bytes x 8) / wrk's own duration;
  * p50/p99: wrk's latency percentiles (--latency, from its report script);
  * proxy CPU: HAProxy: utime+stime from /proc/PID/stat over the run. Strait: the busy
    cycles of its lcore (strait_lcore_cycles_total{kind="busy"}) over the run divided by
    the TSC rate, which is itself measured as the kind="all" cycles over the wall time of
    the run (the "all" counter advances at the TSC rate). Spinning on an empty queue is not
    busy, so this is CPU time spent on work, comparable with HAProxy's utime+stime;
  * CPU per request: proxy CPU / requests; backend CPU per request the same for nginx;
  * Strait frames/s: its lcore's RX+TX frames (both ports) over the wall time.
"""
import argparse
import datetime
import statistics
import sys

WORKLOADS = {
    "keepalive": "keep-alive, 128 B responses",
    "close": "`Connection: close`, 128 B responses",
    "big": "1 MiB responses, keep-alive",
    "paced": "fixed offered load, 128 B responses",
}
TARGETS = ["direct", "haproxy", "strait"]


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
        "nginx_us": (n1[2] + n1[3] - n0[2] - n0[3]) / clk_tck / reqs * 1e6,
    }
    t = r["target"]
    if t == "haproxy":
        h0, h1 = triple(r, "haproxy0"), triple(r, "haproxy1")
        ut, st = (h1[2] - h0[2]) / clk_tck, (h1[3] - h0[3]) / clk_tck
        cpu = ut + st
        f["proxy_us"] = cpu / reqs * 1e6
        f["proxy_load"] = cpu / wall
        f["kernel_share"] = st / cpu if cpu > 0 else None
    elif t == "strait":
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
            frames = rx1 - rx0 + tx1 - tx0
            f["frames_s"] = frames / wall
            f["frames_cpu_s"] = frames / cpu if cpu > 0 else None
            f["frames_req"] = frames / reqs
    return f


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
    a = ap.parse_args()

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
            ceil.setdefault(int(r["size"]), []).append({
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
    p(f"Command: `{a.command}`; medians of {rounds} rounds, targets interleaved.")
    p("")
    p("| workload | metric | direct | HAProxy | Strait | Strait / HAProxy |")
    p("|---|---|---:|---:|---:|---:|")
    cpu_rows = [("proxy CPU per request, µs", "proxy_us", 2),
                ("Strait: the same from wall-clock busy cycles ÷ TSC, µs", "proxy_us_tsc", 2),
                ("proxy CPU load (Strait: busy ratio)", "proxy_load", 2),
                ("kernel share of the proxy's CPU (stime)", "kernel_share", 2),
                ("Strait lcore: running ÷ runnable time (1 = never preempted)", "oncpu_share", 2)]
    rows = {
        "keepalive": [("req/s", "rate", 0), ("p50 latency, ms", "p50", 2), ("p99 latency, ms", "p99", 2)]
                     + cpu_rows + [("backend CPU per request, µs", "nginx_us", 2)],
        "close": [("connections/s", "rate", 0), ("p50 latency, ms", "p50", 2), ("p99 latency, ms", "p99", 2)]
                 + [(l.replace("request", "connection"), k, d) for l, k, d in cpu_rows],
        "big": [("Gbit/s", "gbps", 2), ("p50 latency, ms", "p50", 2)]
               + [(l.replace("request, µs", "MiB, µs"), k, 0 if k.startswith("proxy_us") else d) for l, k, d in cpu_rows],
        "paced": [("req/s achieved", "rate", 0), ("p50 latency, ms", "p50", 2), ("p99 latency, ms", "p99", 2)]
                 + [(("**" + l + "**") if k == "proxy_us" else l, k, d) for l, k, d in cpu_rows]
                 + [("backend CPU per request, µs", "nginx_us", 2)],
    }
    for w, metrics in rows.items():
        if not any((w, t) in runs for t in TARGETS):
            continue
        for label, key, digits in metrics:
            vals = [med(runs.get((w, t), []), key) for t in TARGETS]
            cells = [fmt(v, digits) for v in vals]
            p(f"| {WORKLOADS[w]} | {label} | {' | '.join(cells)} | {ratio(vals[2], vals[1])} |")
        errs = {t: sum(r["errors"] for r in runs.get((w, t), [])) for t in TARGETS}
        if any(errs.values()):
            p(f"| {WORKLOADS[w]} | wrk errors (all rounds) | {' | '.join(fmt(errs[t], 0) for t in TARGETS)} | |")
    p("")
    p("Proxy CPU: HAProxy utime+stime of its one thread; Strait: busy cycles of `strait_lcore_cycles_total` ÷ TSC "
      "rate × the share of its runnable time the lcore thread actually ran (schedstat), which takes out the time it "
      "sat preempted by other load; the raw busy cycles ÷ TSC rate are shown beside it. For rates higher is "
      "better, for latency and CPU lower is better.")
    ka = runs.get(("keepalive", "strait"), [])
    big = runs.get(("big", "strait"), [])
    tsc = med(ka, "tsc_ghz")
    if tsc:
        p(f"TSC rate measured from the lcore's cycle counter: {tsc:.3f} GHz.")
    p("")
    if ceil:
        p("| raw ceiling: L2 reflector, one lcore, net_tap | offered frames/s | reflected frames/s | "
          "port frames/s (RX+TX) | per CPU-second | reflector running ÷ runnable | Strait frames per CPU-second (workload) | Strait / ceiling |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|")
        for size, strait_runs, wl in ((60, ka, "keep-alive"), (1514, big, "1 MiB")):
            c = ceil.get(size)
            if not c:
                continue
            port = med(c, "frames_cpu_s")
            sf = med(strait_runs, "frames_cpu_s")
            frac = f"{sf / port:.2f}" if sf and port else "–"
            p(f"| {size}-byte frames | {fmt(med(c, 'offered'), 0)} | {fmt(med(c, 'reflected'), 0)} | "
              f"{fmt(med(c, 'frames_s'), 0)} | {fmt(port, 0)} | {fmt(med(c, 'oncpu_share'), 2)} | "
              f"{fmt(sf, 0)} ({wl}) | {frac} |")
        fr = med(ka, "frames_req")
        if fr:
            p("")
            p(f"Strait moves {fr:.1f} frames per keep-alive request (both ports, RX+TX, as the ports count them).")
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
