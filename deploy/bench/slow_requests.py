#!/usr/bin/env python3
"""slow_requests.py: where the slowest keep-alive requests of a concN run spent their time.

Input: two classic pcap files written by deploy/bench/run.sh with BENCH_CONC_PCAP=1, the
headers of every frame on the client's link to the proxy and on the proxy's link to nginx,
captured on the kernel side of both links (the client's and nginx's namespaces).

On each link every TCP connection is cut into request/response exchanges: the k-th request
(the client's data, by first sequence number) is paired with the k-th response (the
server's data). For each exchange it takes the time the request first crossed the link, its
retransmissions, when the other side first acknowledged it, and when the response first
crossed the link. The latency of an exchange on the client's link is what wrk sees minus
wrk's own delays; on the backend link it is nginx's share.

It prints the latency distribution on both links and, for the exchanges of the client's
link that took at least --slow seconds, their timeline: a request retransmitted by the
client was lost or not acknowledged in time; one acknowledged at once but answered late
waited in the proxy or behind nginx (the backend link's distribution says which).

Usage: slow_requests.py CLIENT.pcap BACKEND.pcap [--slow SECONDS] [--show N]
"""
import argparse
import struct
import sys
from collections import defaultdict


def frames(path):
    """(time, src, sport, dst, dport, seq, ack, flags, payload length) of each TCP frame over
    IPv4 or IPv6 (without extension headers: TCP right after the fixed header)."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic == 0xA1B2C3D4:
            endian, scale = "<", 1e-6
        elif magic == 0xA1B23C4D:
            endian, scale = "<", 1e-9
        elif magic == 0xD4C3B2A1:
            endian, scale = ">", 1e-6
        elif magic == 0x4D3CB2A1:
            endian, scale = ">", 1e-9
        else:
            sys.exit(f"{path}: not a classic pcap file (magic {magic:#x})")
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        if linktype != 1:
            sys.exit(f"{path}: link type {linktype}, expected Ethernet (1)")
        rec = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, caplen, _ = rec.unpack(h)
            data = f.read(caplen)
            ethertype = data[12:14]
            if ethertype == b"\x08\x00" and len(data) >= 34:
                if data[23] != 6:
                    continue
                ihl = (data[14] & 0x0F) * 4
                ip_payload = struct.unpack(">H", data[16:18])[0] - ihl
                src, dst, t = data[26:30], data[30:34], 14 + ihl
            elif ethertype == b"\x86\xdd" and len(data) >= 54:
                if data[20] != 6:
                    continue
                ip_payload = struct.unpack(">H", data[18:20])[0]
                src, dst, t = data[22:38], data[38:54], 54
            else:
                continue
            if len(data) < t + 14:
                continue
            sport, dport, seq, ack = struct.unpack(">HHII", data[t:t + 12])
            doff = (data[t + 12] >> 4) * 4
            flags = data[t + 13]
            yield sec + frac * scale, src, sport, dst, dport, seq, ack, flags, ip_payload - doff


def seq_le(a, b):
    return (b - a) & 0xFFFFFFFF < 0x80000000


# Kinds of frame in the packet mix: handshake and teardown, data, and pure ACKs.
def kind(flags, plen):
    if flags & 0x07:  # FIN, SYN, RST
        return "syn/fin/rst"
    return "data" if plen > 0 else "pure ack"


def exchanges(path, server_port, mix=None):
    """Request/response exchanges per connection on one link: a list of dicts. With `mix`
    (a dict), also counts the frames by direction and kind into it."""
    conns = defaultdict(lambda: {"req": {}, "resp": {}, "acks": []})
    for t, src, sport, dst, dport, seq, ack, flags, plen in frames(path):
        if dport == server_port:
            c = conns[(src, sport)]
            side = "req"
        elif sport == server_port:
            c = conns[(dst, dport)]
            side = "resp"
            if flags & 0x10:
                c["acks"].append((t, ack))
        else:
            continue
        if mix is not None:
            k = ("to server" if side == "req" else "to client", kind(flags, plen))
            mix[k] = mix.get(k, 0) + 1
        if plen > 0:
            sent = c[side].setdefault(seq, [t, seq + plen & 0xFFFFFFFF, []])
            if sent[0] != t:
                sent[2].append(t)
    out = []
    for key, c in conns.items():
        reqs = sorted(c["req"].items(), key=lambda kv: kv[1][0])
        resps = sorted(c["resp"].items(), key=lambda kv: kv[1][0])
        # A request's bytes may cross in more than one segment: keep the first of each
        # request (the one after the previous response started).
        merged, last_resp = [], -1.0
        ri = 0
        for seq, (t, end, rtx) in reqs:
            while ri < len(resps) and resps[ri][1][0] < t:
                last_resp = resps[ri][1][0]
                ri += 1
            if merged and merged[-1]["after"] == last_resp:
                merged[-1]["end"] = end
                merged[-1]["rtx"] += rtx
                continue
            merged.append({"t": t, "end": end, "rtx": list(rtx), "after": last_resp})
        resp_starts = []
        last = None
        for seq, (t, end, rtx) in resps:
            # One response may span several segments: a new response starts after a request.
            if last is None or any(last < m["t"] <= t for m in merged):
                resp_starts.append((t, rtx))
            last = t
        acks = c["acks"]
        ai = 0
        for i, m in enumerate(merged):
            ex = {"conn": key, "i": i, "req": m["t"], "req_rtx": m["rtx"], "ack": None, "resp": None, "resp_rtx": []}
            while ai < len(acks) and acks[ai][0] < m["t"]:
                ai += 1
            for t, a in acks[ai:]:
                if seq_le(m["end"], a):
                    ex["ack"] = t
                    break
            later = [r for r in resp_starts if r[0] >= m["t"]]
            if later:
                ex["resp"], ex["resp_rtx"] = later[0]
            out.append(ex)
    return out


def packet_mix(name, mix, exs):
    """Frames per answered exchange on one link, by direction and kind."""
    n = sum(1 for e in exs if e["resp"] is not None) or 1
    parts = ", ".join(f"{d} {k} {v / n:.2f}" for (d, k), v in sorted(mix.items()))
    print(f"{name}: frames per exchange: {sum(mix.values()) / n:.2f} ({parts})")


def dist(name, exs):
    lat = sorted(e["resp"] - e["req"] for e in exs if e["resp"] is not None)
    open_ = sum(1 for e in exs if e["resp"] is None)
    if not lat:
        print(f"{name}: no exchanges")
        return
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3
    over = lambda s: sum(1 for x in lat if x >= s)
    rtx = sum(1 for e in exs if e["req_rtx"])
    print(f"{name}: {len(lat)} exchanges ({open_} unanswered at the end); latency ms p50 {q(0.5):.1f} "
          f"p99 {q(0.99):.1f} p99.9 {q(0.999):.1f} max {lat[-1] * 1e3:.1f}; >=1 s: {over(1.0)}, >=2 s: {over(2.0)}; "
          f"requests retransmitted: {rtx}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("client_pcap")
    ap.add_argument("backend_pcap")
    ap.add_argument("--proxy-port", type=int, default=80)
    ap.add_argument("--backend-port", type=int, default=8080)
    ap.add_argument("--slow", type=float, default=1.0)
    ap.add_argument("--show", type=int, default=20)
    a = ap.parse_args()
    cmix, bmix = {}, {}
    client = exchanges(a.client_pcap, a.proxy_port, cmix)
    backend = exchanges(a.backend_pcap, a.backend_port, bmix)
    t0 = min((e["req"] for e in client), default=0.0)
    dist("client link (wrk <-> proxy)", client)
    dist("backend link (proxy <-> nginx)", backend)
    packet_mix("client link", cmix, client)
    packet_mix("backend link", bmix, backend)
    slow = sorted((e for e in client if e["resp"] is not None and e["resp"] - e["req"] >= a.slow),
                  key=lambda e: e["req"] - e["resp"])
    print(f"client exchanges of at least {a.slow} s: {len(slow)}; the slowest {min(a.show, len(slow))} "
          "(times in s from the first request; port = the client's):")
    for e in slow[:a.show]:
        rel = lambda t: "-" if t is None else f"{t - t0:.3f}"
        first = " (first on its connection)" if e["i"] == 0 else ""
        print(f"  port {e['conn'][1]} #{e['i']}{first}: request {rel(e['req'])}"
              f" retransmitted [{', '.join(rel(t) for t in e['req_rtx'])}] acked {rel(e['ack'])}"
              f" answered {rel(e['resp'])} (+{e['resp'] - e['req']:.3f})"
              f" response retransmitted [{', '.join(rel(t) for t in e['resp_rtx'])}]")
    if slow:
        # What the backend was doing while those waited: its exchanges that started in the
        # window of each slow one, and the slowest of those.
        for e in slow[:min(5, a.show)]:
            inside = [b for b in backend if b["resp"] is not None and e["req"] <= b["req"] <= e["resp"]]
            worst = max((b["resp"] - b["req"] for b in inside), default=0.0)
            print(f"  while port {e['conn'][1]} #{e['i']} waited: {len(inside)} backend exchanges began, "
                  f"the slowest took {worst * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
