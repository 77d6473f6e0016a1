#!/usr/bin/python3
"""Window benchmark: the panel against a bare Qt window, measured in one run.

Under an Xvfb display of its own (offscreen when Xvfb is missing), N times each,
taking turns:
  start-up   spawn to the first painted frame (both programs report that frame
             through PILOTHOUSE_FIRST_PAINT_FILE), then the peak memory (VmHWM)
             two seconds later, once the panel has gone live;
  idle CPU   the panel watching the `local` environment (deckhand on SQLite,
             run by `pilothousectl up`) for 30 s, and the bare window idle;
and once: bench_window, the panel with 1,000 endpoints at 1 Hz on its Health
page (the largest event-loop stall).

Targets (issue 6): start-up under 1.5x the bare window, peak memory under
1.6x, idle CPU under 0.5% of one core, no stall over 50 ms. Prints Markdown.

    /usr/bin/python3 tests/bench/bench_window.py --build build/dev
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Display:
    def __init__(self) -> None:
        self.proc = None
        self.env: dict[str, str] = {}

    def __enter__(self) -> "Display":
        xvfb = shutil.which("Xvfb")
        if not xvfb:
            self.env = {"QT_QPA_PLATFORM": "offscreen"}
            return self
        for n in range(120, 200):
            if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
                break
        self.proc = subprocess.Popen([xvfb, f":{n}", "-screen", "0", "1600x1000x24", "-nolisten",
                                      "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.env = {"DISPLAY": f":{n}", "QT_QPA_PLATFORM": "xcb"}
        return self

    def __exit__(self, *exc) -> None:
        if self.proc:
            stop(self.proc)


def first_paint(cmd: list[str], env: dict[str, str], work: Path, tag: str) -> tuple[float, int]:
    report = work / f"paint-{tag}"
    report.unlink(missing_ok=True)
    env = dict(env, PILOTHOUSE_FIRST_PAINT_FILE=str(report))
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (report.exists() and report.stat().st_size > 0):
            if proc.poll() is not None:
                raise SystemExit(f"bench_window: {cmd[0]} exited {proc.returncode} before painting")
            if time.monotonic() - t0 > 30:
                raise SystemExit(f"bench_window: {cmd[0]} did not paint within 30 s")
            time.sleep(0.0005)
        elapsed = time.monotonic() - t0
        time.sleep(2.0)  # the panel goes live after its first frame
        return elapsed, hwm_kb(proc.pid)
    finally:
        stop(proc)


def idle_cpu(cmd: list[str], env: dict[str, str], warmup: float, seconds: float) -> float:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(warmup)
        c0, t0 = cpu_ticks(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_ticks(proc.pid), time.monotonic()
        return 100.0 * (c1 - c0) / CLK_TCK / (t1 - t0)
    finally:
        stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", required=True, help="the build folder (build/dev)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=30)
    args = parser.parse_args()
    build = Path(args.build)
    panel = build / "gui/pilothouse"
    bare = build / "tests/bench/bare_window"
    ctl = build / "cli/pilothousectl"
    stall = build / "tests/bench/bench_window"
    deckhand = build / "services/deckhand/deckhand"
    for b in (panel, bare, ctl, stall, deckhand):
        if not b.exists():
            print(f"bench_window: {b} is not built", file=sys.stderr)
            return 1

    work = Path(tempfile.mkdtemp(prefix="pilothouse-bench-window-"))
    port = free_port()
    config = work / "envs.json"
    db = f"sqlite://{work}/local.db"
    config.write_text(json.dumps({"version": 1, "environments": [{
        "name": "local", "kind": "native",
        "processes": [{"name": "deckhand", "program": str(deckhand), "args": ["serve"],
                       "env": {"HOST": "127.0.0.1", "PORT": str(port), "DATABASE_URL": db,
                               "CHECK_INTERVAL_SECONDS": "2"}}],
        "services": [{"name": "deckhand", "health": [{
            "url": f"http://127.0.0.1:{port}/readyz", "intervalSeconds": 1, "timeoutSeconds": 2}]}],
        "database": {"dsn": db}}]}))
    base_env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}

    def fresh_env(run: str) -> dict[str, str]:
        home = work / f"home-{run}"
        return dict(base_env, XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
                    XDG_CACHE_HOME=str(home / "cache"), XDG_RUNTIME_DIR=str(work))

    with Display() as display:
        results = {"panel": [], "bare": []}
        for i in range(args.runs):
            for name, cmd in (("bare", [str(bare)]),
                              ("panel", [str(panel), "--config", str(config), "--env", "local"])):
                env = dict(fresh_env(f"{name}{i}"), **display.env)
                results[name].append(first_paint(cmd, env, work, f"{name}{i}"))

        # Idle: the stack runs under pilothousectl; the panel only watches it.
        owner_env = fresh_env("owner")
        owner = subprocess.Popen([str(ctl), "--config", str(config), "--env", "local", "up"],
                                 env=owner_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1).status == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            idle_panel = idle_cpu([str(panel), "--config", str(config), "--env", "local"],
                                  dict(owner_env, **display.env), 5, args.idle_seconds)
            idle_bare = idle_cpu([str(bare)], dict(fresh_env("bare-idle"), **display.env), 5,
                                 args.idle_seconds)
        finally:
            stop(owner)

        proc = subprocess.run([str(stall), "--deckhand", str(deckhand), "--seconds", "20"],
                              env=dict(fresh_env("stall"), **display.env), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=300)
        stall_text = proc.stdout.decode(errors="replace")
    shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    p_t = med(t for t, _ in results["panel"])
    b_t = med(t for t, _ in results["bare"])
    p_m = med(m for _, m in results["panel"])
    b_m = med(m for _, m in results["bare"])
    stall_ms = None
    for line in stall_text.splitlines():
        if line.startswith("BENCH window_stall_ms"):
            stall_ms = int(line.split()[-1])
    print(f"\n## Window: the panel vs a bare Qt window ({args.runs} runs each, medians; "
          f"{'Xvfb' if 'DISPLAY' in display.env else 'offscreen'})\n")
    print("| measure | panel | bare window | ratio | target | |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| spawn to first painted frame | {p_t * 1000:.0f} ms | {b_t * 1000:.0f} ms | "
          f"{p_t / b_t:.2f}x | < 1.5x | {'MET' if p_t / b_t < 1.5 else 'MISSED'} |")
    print(f"| peak memory (VmHWM) 2 s after it | {p_m / 1024:.1f} MB | {b_m / 1024:.1f} MB | "
          f"{p_m / b_m:.2f}x | < 1.6x | {'MET' if p_m / b_m < 1.6 else 'MISSED'} |")
    print(f"| CPU idle, watching local ({args.idle_seconds:.0f} s) | {idle_panel:.2f}% | "
          f"{idle_bare:.2f}% | | < 0.5% | {'MET' if idle_panel < 0.5 else 'MISSED'} |")
    if stall_ms is not None:
        print(f"| largest stall, 1,000 endpoints on the Health page | {stall_ms} ms | | | < 50 ms | "
              f"{'MET' if stall_ms < 50 else 'MISSED'} |")
    print()
    print("\n".join("    " + l for l in stall_text.splitlines() if not l.startswith("BENCH")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
