#!/usr/bin/python3
"""Rollout benchmark: start-first against recreate, in the same run.

On a real Docker engine with Debian's docker-registry on loopback (as the e2e
starts them), the deckhand stack of compose.yaml runs build A behind its
HAProxy edge. tests/e2e/loadgen.py sends GET /livez through the proxy's
published port the whole time (4 connections, 50 requests a second each).
Then, taking turns, N rounds of each strategy, with `pilothousectl deploy
--tag B` and `pilothousectl rollback --to A` on two environments of the same
project that differ only in deploy.strategy:

  failed requests   during each deploy and rollback (target: 0 for
                    start-first; recreate's count printed next to it)
  time              the deployer's own figure, call to done (target:
                    start-first at most 2 s slower than recreate)

Last, the proxy's cost: wrk with 64 connections for a few seconds, through
the proxy and straight to the api container's address, p99 of each.

Needs root (it may start dockerd), docker.io, docker-compose, debootstrap,
docker-registry and wrk, as `make test` installs them. Exit status 0 even
when a target is missed; 1 when something could not be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/e2e"))
sys.path.insert(0, str(REPO / "tests/bench"))
import stack_e2e as e2e  # noqa: E402  (the harness: engine, images, registry, stack)
import http_bench  # noqa: E402  (wrk and its parser)
from bench_rollback import prepare_builds  # noqa: E402  (the same builds A and B)


class Load:
    """tests/e2e/loadgen.py through its stdin."""

    def __init__(self, port: int):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(REPO / "tests/e2e/loadgen.py"),
             f"http://127.0.0.1:{port}/livez", "--connections", "4", "--rate", "50"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def phase(self, name: str) -> None:
        self.proc.stdin.write(f"phase {name}\n")
        self.proc.stdin.flush()

    def report(self) -> dict:
        self.proc.stdin.write("report\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["phases"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ctl", required=True, help="the pilothousectl binary")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--window", type=float, default=3.0, help="the health window (s)")
    parser.add_argument("--wrk-seconds", type=int, default=5)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="pilothouse-bench-rollout-"))
    engine = e2e.Engine(workdir)
    registry = e2e.Registry(workdir)
    stack = None
    load = None
    try:
        engine.ensure()
        repo, tag_a, tag_b = prepare_builds(engine, registry)

        project = f"phrollout{os.getpid()}"
        stack = e2e.Stack(engine, project, e2e.free_port(), 10)
        files = [REPO / "compose.yaml", REPO / "tests/e2e/fast-health.yaml"]
        env = dict(stack.env)
        env.update({"DECKHAND_IMAGE": repo, "DECKHAND_TAG": tag_a,
                    "XDG_DATA_HOME": str(workdir / "data"),
                    "XDG_CONFIG_HOME": str(workdir / "config")})

        def environment(name: str, strategy: str) -> dict:
            return {
                "name": name, "kind": "compose",
                "compose": {"files": [str(f) for f in files], "project": project},
                "services": [{"name": "api", "health": [{
                    "url": f"http://127.0.0.1:{stack.port}/readyz",
                    "intervalSeconds": 0.25, "timeoutSeconds": 1}]},
                    {"name": "worker"}, {"name": "postgres"}, {"name": "redis"}],
                "image": {"repository": repo, "services": ["api", "worker"]},
                "deploy": {"healthWindowSeconds": args.window, "timeoutSeconds": 60,
                           "strategy": strategy, "containerPort": 8000}}
        config = workdir / "envs.json"
        config.write_text(json.dumps({"version": 1, "environments": [
            environment("recreate", "recreate"), environment("start-first", "start-first")]}))
        compose = engine.compose + ["--project-name", project] + \
            [a for f in files for a in ("--file", str(f))]
        stack.started = True
        e2e.run(compose + ["up", "--detach", "--no-build"], env=env, timeout=300)
        stack.wait_healthy(("postgres", "redis", "api", "worker"), timeout=180)
        ctl_env = {k: v for k, v in env.items() if k not in ("DECKHAND_IMAGE", "DECKHAND_TAG")}

        def ctl(strategy: str, *cmd: str) -> float:
            proc = subprocess.run([args.ctl, "--config", str(config), "--env", strategy, *cmd,
                                   "--json"], env=ctl_env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=300)
            result = json.loads(proc.stdout or b"{}")
            if proc.returncode != 0 or result.get("outcome") != "succeeded":
                raise e2e.Failure(f"pilothousectl {' '.join(cmd)} ({strategy}): "
                                  f"{proc.returncode} {result.get('message') or proc.stderr.decode()}")
            return result["elapsed_ms"] / 1000

        load = Load(stack.port)
        load.phase("steady")
        time.sleep(3)
        times: dict[str, list[float]] = {"recreate": [], "start-first": []}
        phases: dict[str, list[str]] = {"recreate": [], "start-first": []}
        for n in range(args.rounds):
            for strategy in ("recreate", "start-first"):
                for verb, cmd in (("deploy", ("deploy", "--tag", tag_b)),
                                  ("rollback", ("rollback", "--to", tag_a))):
                    name = f"{strategy}-{verb}-{n}"
                    load.phase(name)
                    times[strategy].append(ctl(strategy, *cmd))
                    phases[strategy].append(name)
                    load.phase("between")
                    time.sleep(1)
        report = load.report()

        # The proxy's cost at 64 connections, and the api on its own.
        api_ip = e2e.out([engine.docker, "inspect", "--format",
                          "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                          stack.containers()["api"]]).split()[0]
        load.stop()
        through = http_bench.run_wrk(f"http://127.0.0.1:{stack.port}/livez", 2, 64,
                                     args.wrk_seconds)
        direct = http_bench.run_wrk(f"http://{api_ip}:8000/livez", 2, 64, args.wrk_seconds)

        med = statistics.median
        print("\n## Rollouts: start-first against recreate\n")
        print(f"{args.rounds} rounds of deploy B + rollback A each, health window "
              f"{args.window:g} s, compose {' '.join(engine.compose[1:] or engine.compose)}; "
              f"load: 4 connections x 50 requests/s through the proxy.\n")
        print("| strategy | failed requests (all rollouts) | requests | p99 during rollouts "
              "| median rollout time |")
        print("|---|---:|---:|---:|---:|")
        failed = {}
        for strategy in ("recreate", "start-first"):
            rows = [report.get(p, {}) for p in phases[strategy]]
            failed[strategy] = sum(r.get("failed", 0) for r in rows)
            requests = sum(r.get("requests", 0) for r in rows)
            p99 = max((r.get("p99_ms", 0.0) for r in rows), default=0.0)
            print(f"| {strategy} | {failed[strategy]} | {requests} | {p99:.2f} ms "
                  f"| {med(times[strategy]):.2f} s |")
        steady = report.get("steady", {})
        print(f"\nsteady state: p50 {steady.get('p50_ms', 0):.2f} ms, "
              f"p99 {steady.get('p99_ms', 0):.2f} ms")
        added = med(times["start-first"]) - med(times["recreate"])
        print(f"start-first failed requests: {failed['start-first']} (target 0: "
              f"{'MET' if failed['start-first'] == 0 else 'MISSED'}); recreate: "
              f"{failed['recreate']}")
        print(f"added time: {added:+.2f} s (target <= +2 s: {'MET' if added <= 2 else 'MISSED'})")
        print("\n| GET /livez, wrk 64 connections | requests/s | p50 | p99 |")
        print("|---|---:|---:|---:|")
        for name, r in (("through the proxy", through), ("api directly", direct)):
            print(f"| {name} | {r['rps']:.0f} | {r.get('p50_ms', 0):.2f} ms "
                  f"| {r.get('p99_ms', 0):.2f} ms |")
        print(f"\nthe proxy's cost at p99: {through.get('p99_ms', 0) / max(direct.get('p99_ms', 1e-9), 1e-9):.2f}x "
              f"({through.get('p99_ms', 0) - direct.get('p99_ms', 0):+.2f} ms)")
        return 0
    except e2e.Failure as exc:
        print(f"bench_rollout: {exc}", file=sys.stderr)
        return 1
    finally:
        if load is not None:
            load.stop()
        if stack is not None and stack.started:
            stack.down()
        registry.stop()
        engine.stop_dockerd()


if __name__ == "__main__":
    sys.exit(main())
