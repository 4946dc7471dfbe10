#!/usr/bin/env python3
"""Tests of the benchmark's own tools (run by deploy/test.sh, or
`python3 -m unittest discover -s deploy/bench -p 'test_*.py'`).

* slow_requests.py: capture files written here frame by frame (classic pcap, Ethernet,
  headers only as dumpcap -s 96 keeps them), over IPv4 and IPv6: exchanges are paired,
  retransmissions, acknowledgements and latencies found, the packet mix counted, and the
  slow exchange printed with its timeline.
* report.py: the lossy transfers' tables from a lossy.tsv holding downloads and uploads:
  each direction gets its own table, medians and ratios to HAProxy, and the upload's
  sender counters are the client kernel's.
"""
import contextlib
import io
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402
import slow_requests  # noqa: E402

ACK, PSH, SYN = 0x10, 0x08, 0x02


def tcp_frame(src, dst, sport, dport, seq, ack, flags, payload_len):
    """The headers of one Ethernet frame carrying TCP over IPv4 (4-byte addresses) or IPv6
    (16-byte addresses); the IP length counts `payload_len` bytes not captured."""
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    if len(src) == 4:
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + 20 + payload_len, 0, 0, 64, 6, 0, src, dst)
        ethertype = b"\x08\x00"
    else:
        ip = struct.pack(">IHBB16s16s", 6 << 28, 20 + payload_len, 6, 64, src, dst)
        ethertype = b"\x86\xdd"
    return b"\x02" * 6 + b"\x04" * 6 + ethertype + ip + tcp


def write_pcap(path, frames):
    """frames: (time in s, frame bytes); microsecond classic pcap, Ethernet."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 96, 1))
        for t, data in frames:
            sec, usec = int(t), round((t - int(t)) * 1e6)
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)))
            f.write(data)


C4, P4 = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
C6, P6 = bytes.fromhex("20010db8000000000000000000000001"), bytes.fromhex("20010db8000000000000000000000002")


def client_link():
    """Two connections to port 80. IPv4 port 40000: request 0 answered in 10 ms; request 1
    sent at 0.020, lost and sent again at 0.250, acknowledged at 0.251 and answered at 1.500.
    IPv6 port 40001: one request answered in 5 ms, one left unanswered."""
    f = []
    # IPv4 connection: client ISN 1000, server ISN 5000.
    f.append((0.000, tcp_frame(C4, P4, 40000, 80, 1001, 5001, ACK | PSH, 100)))
    f.append((0.001, tcp_frame(P4, C4, 80, 40000, 5001, 1101, ACK, 0)))
    f.append((0.010, tcp_frame(P4, C4, 80, 40000, 5001, 1101, ACK | PSH, 200)))
    f.append((0.020, tcp_frame(C4, P4, 40000, 80, 1101, 5201, ACK | PSH, 100)))
    f.append((0.250, tcp_frame(C4, P4, 40000, 80, 1101, 5201, ACK | PSH, 100)))
    f.append((0.251, tcp_frame(P4, C4, 80, 40000, 5201, 1201, ACK, 0)))
    f.append((1.500, tcp_frame(P4, C4, 80, 40000, 5201, 1201, ACK | PSH, 200)))
    # IPv6 connection: client ISN 7000, server ISN 9000.
    f.append((0.002, tcp_frame(C6, P6, 40001, 80, 7001, 9001, ACK | PSH, 100)))
    f.append((0.007, tcp_frame(P6, C6, 80, 40001, 9001, 7101, ACK | PSH, 200)))
    f.append((0.030, tcp_frame(C6, P6, 40001, 80, 7101, 9201, ACK | PSH, 100)))
    f.append((0.031, tcp_frame(C6, P6, 40001, 80, 7201, 9201, SYN, 0)))  # not an exchange
    return sorted(f, key=lambda x: x[0])


class SlowRequests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.client = os.path.join(self.dir.name, "client.pcap")
        self.backend = os.path.join(self.dir.name, "backend.pcap")
        write_pcap(self.client, client_link())
        write_pcap(self.backend, [])

    def tearDown(self):
        self.dir.cleanup()

    def test_frames_of_both_families_are_read_with_their_payload_lengths(self):
        got = list(slow_requests.frames(self.client))
        self.assertEqual(len(got), 11)
        v6 = [g for g in got if len(g[1]) == 16]
        self.assertEqual(len(v6), 4)
        t, src, sport, dst, dport, seq, ack, flags, plen = v6[0]
        self.assertEqual((src, sport, dst, dport, seq, ack, plen), (C6, 40001, P6, 80, 7001, 9001, 100))
        self.assertEqual([g[8] for g in got if len(g[1]) == 4], [100, 0, 200, 100, 100, 0, 200])

    def test_exchanges_are_paired_with_retransmissions_acks_and_answers(self):
        mix = {}
        ex = slow_requests.exchanges(self.client, 80, mix)
        by = {(e["conn"][1], e["i"]): e for e in ex}
        self.assertEqual(sorted(by), [(40000, 0), (40000, 1), (40001, 0), (40001, 1)])
        first, slow = by[(40000, 0)], by[(40000, 1)]
        self.assertAlmostEqual(first["resp"] - first["req"], 0.010, places=6)
        self.assertAlmostEqual(first["ack"], 0.001, places=6)
        self.assertEqual(slow["req_rtx"], [0.25])
        self.assertAlmostEqual(slow["ack"], 0.251, places=6)
        self.assertAlmostEqual(slow["resp"] - slow["req"], 1.48, places=6)
        self.assertAlmostEqual(by[(40001, 0)]["resp"] - by[(40001, 0)]["req"], 0.005, places=6)
        self.assertIsNone(by[(40001, 1)]["resp"])
        self.assertEqual(mix[("to server", "data")], 5)
        self.assertEqual(mix[("to client", "data")], 3)
        self.assertEqual(mix[("to client", "pure ack")], 2)
        self.assertEqual(mix[("to server", "syn/fin/rst")], 1)

    def test_the_slow_exchange_is_printed_with_its_timeline(self):
        out = io.StringIO()
        argv = sys.argv
        sys.argv = ["slow_requests.py", self.client, self.backend, "--slow", "1"]
        try:
            with contextlib.redirect_stdout(out):
                slow_requests.main()
        finally:
            sys.argv = argv
        text = out.getvalue()
        self.assertIn("client link (wrk <-> proxy): 3 exchanges (1 unanswered at the end)", text)
        self.assertIn(">=1 s: 1, >=2 s: 0; requests retransmitted: 1", text)
        self.assertIn("client exchanges of at least 1.0 s: 1", text)
        self.assertIn("port 40000 #1: request 0.020 retransmitted [0.250] acked 0.251 answered 1.500 (+1.480)", text)
        self.assertIn("backend link (proxy <-> nginx): no exchanges", text)


def lossy_line(target, d, loss, rnd, mbs, retrans0, retrans1, lost_again=0):
    """One line of lossy.tsv. The counters: rto, spurious, tlp, tlp_rec, retrans, loss_undo,
    stall, and for a kernel sender lost_retrans and dsack; one RTO and two probes each."""
    k0 = f"0,0,0,0,{retrans0},0,0"
    k1 = f"1,0,2,0,{retrans1},0,0"
    if d == "up":
        k0, k1 = k0 + ",0,0", k1 + f",{lost_again},0"
    return (f"target={target} dir={d} loss={loss} round={rnd} status=ok speed={mbs * 1e6:.0f} size=1 time=1 "
            f"code=200 drops=10,20 tcp0={k0} tcp1={k1}\n")


class LossyReport(unittest.TestCase):
    def test_downloads_and_uploads_get_a_table_each(self):
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
            f.write(lossy_line("haproxy", "down", 5, 1, 2.0, 0, 100))
            f.write(lossy_line("strait-xdp", "down", 5, 1, 30.0, 0, 90))
            f.write(lossy_line("haproxy", "up", 5, 1, 2.0, 100, 250, lost_again=7))
            f.write(lossy_line("strait-xdp", "up", 5, 1, 3.0, 250, 390, lost_again=5))
            f.write(lossy_line("haproxy", "up", 5, 2, 4.0, 390, 500, lost_again=9))
            f.write(lossy_line("strait-xdp", "up", 5, 2, 5.0, 500, 640, lost_again=3))
            path = f.name
        lines = []
        try:
            report.lossy_report(lines.append, path, report.TARGETS, [("strait-xdp", "haproxy")], 40)
        finally:
            os.unlink(path)
        text = "\n".join(lines)
        down, up = text.index("Lossy downloads"), text.index("Lossy uploads")
        self.assertLess(down, up)
        # Downloads: one round, Strait 30 MB/s against 2: 15x.
        self.assertIn("| 5 % | 2.00 (2.00–2.00) | 30.00 (30.00–30.00) | 15.00× |", text[down:up])
        self.assertIn("| 5 % | Strait (AF_XDP) | 1 | 0 | 0 | 2 | 0 | 0 | 90 | 10 / 20 |", text[down:up])
        # Uploads: medians of two rounds, 4 against 3: 1.33x; the client's counters.
        self.assertIn("| 5 % | 3.00 (2.00–4.00) | 4.00 (3.00–5.00) | 1.33× |", text[up:])
        self.assertIn("| 5 % | HAProxy | 1 | 0 | 0 | 2 | 0 | 130 | 8 | 0 | 10 / 20 |", text[up:])
        self.assertIn("| 5 % | Strait (AF_XDP) | 1 | 0 | 0 | 2 | 0 | 140 | 4 | 0 | 10 / 20 |", text[up:])
        self.assertNotIn("Strait, every upload", text)


if __name__ == "__main__":
    unittest.main()
