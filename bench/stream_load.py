#!/usr/bin/env python3
"""Load generator for bench/stream.sh: N HTTP listeners of one live stream, each reading and counting bytes.

Usage: stream_load.py URL N SECONDS -> prints one JSON line: listeners connected, bytes, the slowest and fastest
listener's bytes, and connections that ended early. Runs on one core (pin it with taskset); asyncio, no threads.
"""
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def listen(host, port, path, until, counts, i, ended):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        ended[0] += 1
        return
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: stream-load\r\n\r\n".encode())
    await writer.drain()
    try:
        while True:
            left = until - time.monotonic()
            if left <= 0:
                break
            data = await asyncio.wait_for(reader.read(65536), timeout=left)
            if not data:
                ended[0] += 1
                break
            counts[i] += len(data)
    except asyncio.TimeoutError:
        pass
    except OSError:
        ended[0] += 1
    writer.close()


async def main():
    url, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    parts = urlsplit(url)
    counts = [0] * n
    ended = [0]
    until = time.monotonic() + seconds
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(listen(parts.hostname, parts.port, parts.path, until, counts, i, ended)))
        if i % 50 == 49:
            await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    print(json.dumps({"listeners": n, "bytes": sum(counts), "min": min(counts), "max": max(counts),
                      "ended_early": ended[0]}))


asyncio.run(main())
