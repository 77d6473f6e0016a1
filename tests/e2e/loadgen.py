#!/usr/bin/env python3
"""A bounded HTTP load generator for the zero-downtime tests, loopback only.

Keeps CONNECTIONS keep-alive connections sending GET PATH to a 127.x address,
each at most RATE requests a second, and counts every request that failed:
a connection error, a timeout, or a status outside 2xx. A failed connection
is opened again (a client would), and its request counts as failed.

It reads commands on stdin, one a line:
    phase NAME    later requests count under NAME (the first phase is "start")
    report        print the counts of every phase so far as one JSON line
and stops at end of input (or after --max-seconds), printing the last report.
A report: {"phases": {NAME: {"requests", "failed", "p50_ms", "p99_ms",
"failures": [first reasons]}}}.
"""
import argparse
import http.client
import ipaddress
import json
import sys
import threading
import time
from urllib.parse import urlsplit


class Phases:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current = "start"
        self.data: dict[str, dict] = {}

    def record(self, ok: bool, ms: float, why: str = "") -> None:
        with self.lock:
            p = self.data.setdefault(self.current, {"lat": [], "failed": 0, "why": []})
            p["lat"].append(ms)
            if not ok:
                p["failed"] += 1
                if len(p["why"]) < 10:
                    p["why"].append(why)

    def switch(self, name: str) -> None:
        with self.lock:
            self.current = name
            self.data.setdefault(name, {"lat": [], "failed": 0, "why": []})

    def report(self) -> dict:
        out = {}
        with self.lock:
            for name, p in self.data.items():
                lat = sorted(p["lat"])

                def pct(q: float) -> float:
                    return round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else 0.0
                out[name] = {"requests": len(lat), "failed": p["failed"], "p50_ms": pct(0.50),
                             "p99_ms": pct(0.99), "failures": list(p["why"])}
        return {"phases": out}


def worker(host: str, port: int, path: str, interval: float, timeout: float,
           phases: Phases, stop: threading.Event) -> None:
    conn = None
    while not stop.is_set():
        started = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            ms = (time.monotonic() - started) * 1000
            ok = 200 <= resp.status < 300
            phases.record(ok, ms, "" if ok else f"HTTP {resp.status}")
            if resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            phases.record(False, (time.monotonic() - started) * 1000, type(exc).__name__ + f": {exc}")
            if conn is not None:
                conn.close()
            conn = None
        rest = interval - (time.monotonic() - started)
        if rest > 0:
            stop.wait(rest)
    if conn is not None:
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="http://127.0.0.1:PORT/PATH")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--rate", type=float, default=50, help="requests a second per connection")
    ap.add_argument("--timeout", type=float, default=5)
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    u = urlsplit(args.url)
    if u.scheme != "http" or not u.hostname or not ipaddress.ip_address(u.hostname).is_loopback:
        print("loadgen: only http:// on a loopback address", file=sys.stderr)
        return 2
    if not 1 <= args.connections <= 256 or not 0 < args.rate <= 1000:
        print("loadgen: 1-256 connections at 0-1000 requests a second each", file=sys.stderr)
        return 2
    phases = Phases()
    phases.switch("start")
    stop = threading.Event()
    threads = [threading.Thread(target=worker, daemon=True,
                                args=(u.hostname, u.port or 80, u.path or "/", 1 / args.rate,
                                      args.timeout, phases, stop))
               for _ in range(args.connections)]
    for t in threads:
        t.start()
    timer = threading.Timer(args.max_seconds, stop.set)
    timer.daemon = True
    timer.start()
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["phase"] and len(words) == 2:
            phases.switch(words[1])
        elif words[:1] == ["report"]:
            print(json.dumps(phases.report()), flush=True)
        if stop.is_set():
            break
    stop.set()
    for t in threads:
        t.join(timeout=args.timeout + 1)
    print(json.dumps(phases.report()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
