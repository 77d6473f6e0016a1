#!/usr/bin/python3
"""Rollback benchmark: the panel against the same steps done by hand.

On a real Docker engine with Debian's docker-registry on loopback (started by
this script, as the e2e does), the deckhand stack runs build B; then, taking
turns, N times each:

  panel   `pilothousectl rollback --to A --json`: the deployer's own figure
          (from the call to "A passed its gate") and the wall time of the
          command, which includes starting pilothousectl and seeding its view;
  script  what a person would type: `compose pull api` + `compose up -d
          --no-deps api` with DECKHAND_TAG=A, then polling /readyz every 50 ms
          until it answers 200.

Between turns the panel deploys B again. The panel holds a healthy service for
its health window on purpose; the target (issue 5) is: panel minus that window
no slower than the script plus 1 s. Prints a Markdown table with medians.

Needs root (it may start dockerd), docker.io, docker-compose, debootstrap and
docker-registry, as `make test` installs them. Exit status 0 even when the
target is missed; 1 when something could not be measured.
"""

from __future__ import annotations

import argparse
import http.client
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
import stack_e2e as e2e  # noqa: E402  (the harness: engine, images, registry, stack)


def poll_ready(port: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return time.monotonic()
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    raise e2e.Failure(f"/readyz did not answer 200 within {timeout:.0f} s")


def prepare_builds(engine: e2e.Engine, registry: e2e.Registry) -> tuple[str, str, str]:
    """The stand-ins, deckhand A (this checkout) and a good build B on top of
    it, pushed to the loopback registry: (repository, tag A, tag B)."""
    e2e.make_base_image(engine)
    e2e.build_standins(engine)
    meta = e2e.build_metadata()
    base = f"{e2e.DECKHAND_IMAGE}:{e2e.DECKHAND_TAG}"
    for tag, target in ((f"{e2e.DECKHAND_IMAGE}-builder:{e2e.DECKHAND_TAG}", "builder"),
                        (f"{e2e.DECKHAND_IMAGE}-rootfs:{e2e.DECKHAND_TAG}", "rootfs"),
                        (base, None)):
        e2e.build_replacing(engine, tag, REPO, REPO / "docker/Dockerfile", meta, target)
    builds = REPO / "tests/e2e/builds"
    good = f"{e2e.DECKHAND_IMAGE}:good-{e2e.DECKHAND_TAG}"
    b_sha = e2e.fake_commit("good-after-" + meta["GIT_SHA"])
    e2e.build(engine, good, builds, builds / "Dockerfile.good",
              {"BASE": base, "GIT_SHA": b_sha})
    registry.start()
    repo = f"{registry.host}/pilothouse/deckhand"
    tag_a, tag_b = f"sha-{meta['GIT_SHA']}", f"sha-{b_sha}"
    for tag, src in ((tag_a, base), (tag_b, good)):
        e2e.run([engine.docker, "tag", src, f"{repo}:{tag}"])
        e2e.run([engine.docker, "push", f"{repo}:{tag}"], timeout=300)
    return repo, tag_a, tag_b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ctl", required=True, help="the pilothousectl binary")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=3.0, help="the panel's health window (s)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="pilothouse-bench-rollback-"))
    engine = e2e.Engine(workdir)
    registry = e2e.Registry(workdir)
    stack = None
    try:
        engine.ensure()
        repo, tag_a, tag_b = prepare_builds(engine, registry)

        project = f"phbench{os.getpid()}"
        stack = e2e.Stack(engine, project, e2e.free_port(), 10)
        files = [REPO / "compose.yaml", REPO / "tests/e2e/fast-health.yaml"]
        env = dict(stack.env)
        env.update({"DECKHAND_IMAGE": repo, "DECKHAND_TAG": tag_b,
                    "XDG_DATA_HOME": str(workdir / "data"),
                    "XDG_CONFIG_HOME": str(workdir / "config")})
        config = workdir / "envs.json"
        config.write_text(json.dumps({"version": 1, "environments": [{
            "name": "bench", "kind": "compose",
            "compose": {"files": [str(f) for f in files], "project": project},
            "services": [{"name": "api", "health": [{
                "url": f"http://127.0.0.1:{stack.port}/readyz",
                "intervalSeconds": 0.25, "timeoutSeconds": 1}]},
                {"name": "worker"}, {"name": "postgres"}, {"name": "redis"}],
            "image": {"repository": repo, "service": "api"},
            "deploy": {"healthWindowSeconds": args.window, "timeoutSeconds": 60}}]}))
        compose = engine.compose + ["--project-name", project] + \
            [a for f in files for a in ("--file", str(f))]
        stack.started = True
        e2e.run(compose + ["up", "--detach", "--no-build"], env=env, timeout=300)
        stack.wait_healthy(("postgres", "redis", "api", "worker"), timeout=180)
        ctl_env = {k: v for k, v in env.items() if k not in ("DECKHAND_IMAGE", "DECKHAND_TAG")}

        def ctl(*cmd: str) -> tuple[dict, float]:
            t = time.monotonic()
            proc = subprocess.run([args.ctl, "--config", str(config), "--env", "bench", *cmd,
                                   "--json"], env=ctl_env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=300)
            wall = time.monotonic() - t
            result = json.loads(proc.stdout or b"{}")
            if proc.returncode != 0 or result.get("outcome") != "succeeded":
                raise e2e.Failure(f"pilothousectl {' '.join(cmd)}: {proc.returncode} "
                                  f"{result.get('message') or proc.stderr.decode()}")
            return result, wall

        panel_call, panel_wall, script = [], [], []
        for _ in range(args.rounds):
            result, wall = ctl("rollback", "--to", tag_a)
            panel_call.append(result["elapsed_ms"] / 1000)
            panel_wall.append(wall)
            ctl("deploy", "--tag", tag_b)
            # By hand: the same rollback without the panel.
            t = time.monotonic()
            by_hand = dict(env, DECKHAND_TAG=tag_a)
            e2e.run(compose + ["pull", "api"], env=by_hand, timeout=300)
            e2e.run(compose + ["up", "--detach", "--no-deps", "--no-build", "api"], env=by_hand,
                    timeout=300)
            script.append(poll_ready(stack.port, 60) - t)
            ctl("deploy", "--tag", tag_b)

        med = statistics.median
        window = args.window
        target = med(panel_call) - window <= med(script) + 1.0
        print("\n## Rollback: panel vs the same steps by hand\n")
        print(f"Health window {window:g} s; {args.rounds} rounds, medians; "
              f"compose {' '.join(engine.compose[1:] or engine.compose)}.\n")
        print("| way | median | min | max |")
        print("|---|---:|---:|---:|")
        for name, xs in (("panel: rollback call to gate passed", panel_call),
                         ("panel: same, minus the health window",
                          [x - window for x in panel_call]),
                         ("panel: pilothousectl wall time", panel_wall),
                         ("script: pull + up --no-deps + poll /readyz", script)):
            print(f"| {name} | {med(xs):.2f} s | {min(xs):.2f} s | {max(xs):.2f} s |")
        print(f"\ntarget (panel - window <= script + 1 s): "
              f"{med(panel_call) - window:.2f} s vs {med(script) + 1:.2f} s: "
              f"{'MET' if target else 'MISSED'}")
        return 0
    except e2e.Failure as exc:
        print(f"bench_rollback: {exc}", file=sys.stderr)
        return 1
    finally:
        if stack is not None and stack.started:
            stack.down()
        registry.stop()
        engine.stop_dockerd()


if __name__ == "__main__":
    sys.exit(main())
