#!/usr/bin/env python3
"""Load generator for bench/directory.sh: CLM_REQ_SERVER_LIST from one UDP socket, up to WINDOW
requests outstanding; an answer counts when its last full-list datagram arrived (the next answer's
first datagram, or silence). Echoes the directory's cookie ping first. Prints "answers/s MB/s"."""
import socket, struct, sys, time

WINDOW = 8
host, port = sys.argv[1].rsplit(":", 1)
seconds = float(sys.argv[2])
target = (host, int(port))


# CLM_REQ_SERVER_LIST as captured ([dir #3] of jamulus-directory.pcap).
REQ = bytes.fromhex("0000ef0300000018cb")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
s.settimeout(0.5)
s.sendto(REQ, target)
# Warm-up: prove (echo a cookie ping if one comes) and drain the first answer.
try:
    while True:
        d, _ = s.recvfrom(65535)
        if len(d) >= 9 and struct.unpack_from("<H", d, 2)[0] == 1001:
            s.sendto(d, target)
except socket.timeout:
    pass
s.settimeout(0.2)
answers, outstanding, out_bytes = 0, 0, 0
start = time.monotonic()
end = start + seconds
while time.monotonic() < end:
    while outstanding < WINDOW:
        s.sendto(REQ, target)
        outstanding += 1
    try:
        d, _ = s.recvfrom(65535)
    except socket.timeout:
        outstanding = 0  # lost requests: refill the window
        continue
    out_bytes += len(d)
    # A full list (1006) whose first entry is 0.0.0.0:0 starts one answer.
    if len(d) >= 13 and d[2:4] == b"\xee\x03" and d[7:13] == b"\0" * 6:
        answers += 1
        outstanding -= 1
elapsed = time.monotonic() - start
print(f"{answers / elapsed:.0f} {out_bytes / elapsed / 1e6:.1f}")
