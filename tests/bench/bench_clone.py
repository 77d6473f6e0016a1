#!/usr/bin/python3
"""Fresh-clone benchmark: the panel against docker-compose done by hand.

On a real Docker engine (started by this script as the e2e does), with the
base images present (the stand-ins the e2e makes) and no deckhand image, each
side in turn, --rounds times:

  fresh clone   panel: git clone, then `pilothousectl up --wait` on the
                built-in local-compose pointed at the clone (it writes .env,
                builds sha-<commit>, starts, waits for every service healthy);
                by hand: git clone, .env from .env.example with two random
                passwords, `docker-compose up --detach --build`, then poll
                /readyz until 200 and compose ps until all four are healthy.
  rebuild       after a one-line change to a deckhand source file, the stack
                running. Panel: `pilothousectl build` (tags sha-<commit>-dirty-…)
                and `deploy --tag` it (health gated: its health window, 5 s
                here, is taken off); by hand: `docker-compose up --detach
                --build`, then the same polls.

Before each fresh-clone turn every deckhand image and the builder's cache are
removed, so both sides compile deckhand from scratch. Target (issue 14): the
panel within 1.2x of by hand (the rebuild without the health window). Prints
a Markdown table of medians; exit status 0 even when the target is missed,
1 when something could not be measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/e2e"))
import stack_e2e as e2e  # noqa: E402  (the harness: engine, stand-in images, clones)

SOURCE_TO_TOUCH = "services/deckhand/main.cpp"
WINDOW = 5  # the health window e2e.Clone gives local-compose (deploy.healthWindowSeconds)


def poll_ready(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    raise e2e.Failure(f"/readyz did not answer 200 within {timeout:.0f} s")


def all_healthy(clone: e2e.Clone, env: dict, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = e2e.out(clone.compose + ["ps", "--quiet"], env=env, check=False).split()
        if len(ids) == 4:
            states = e2e.out([clone.engine.docker, "inspect", "--format",
                              "{{.State.Health.Status}}", *ids], check=False).split()
            if states == ["healthy"] * 4:
                return
        time.sleep(0.2)
    raise e2e.Failure(f"the stack was not healthy within {timeout:.0f} s")


def clean_slate(engine: e2e.Engine) -> None:
    """No deckhand image and no build cache: both sides compile from scratch."""
    for ref in e2e.out([engine.docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                        "ghcr.io/pilothouse/deckhand"], check=False).split():
        e2e.run([engine.docker, "image", "rm", "--force", ref], check=False)
    e2e.run([engine.docker, "image", "prune", "--force"], check=False, timeout=300)
    e2e.run([engine.docker, "builder", "prune", "--all", "--force"], check=False, timeout=300)


def touch_source(clone: e2e.Clone, n: int) -> None:
    path = clone.dir / SOURCE_TO_TOUCH
    path.write_text(path.read_text() + f"\n// bench change {n}\n")


def panel_round(engine: e2e.Engine, ctl: str, workdir: Path, n: int) -> tuple[float, float]:
    clean_slate(engine)
    t = time.monotonic()
    clone = e2e.Clone(engine, workdir, f"panel{n}")
    try:
        def ctl_run(*a: str) -> subprocess.CompletedProcess:
            proc = subprocess.run([ctl, "--config", str(clone.config), "--env", "local-compose",
                                   *a], env=clone.env, capture_output=True, timeout=1800)
            if proc.returncode != 0:
                raise e2e.Failure(f"pilothousectl {' '.join(a)}: {proc.returncode} "
                                  f"{proc.stderr.decode()[-1500:]}")
            return proc

        ctl_run("up", "--wait", "600")
        fresh = time.monotonic() - t
        touch_source(clone, n)
        t = time.monotonic()
        made = json.loads(ctl_run("build", "--json").stdout.decode().strip().splitlines()[-1])
        ctl_run("deploy", "--tag", made["tag"])
        rebuild = time.monotonic() - t - WINDOW
        return fresh, rebuild
    finally:
        clone.down()


def hand_round(engine: e2e.Engine, workdir: Path, n: int) -> tuple[float, float]:
    clean_slate(engine)
    t = time.monotonic()
    clone = e2e.Clone(engine, workdir, f"hand{n}")
    try:
        text = (clone.dir / ".env.example").read_text()
        for key in ("POSTGRES_PASSWORD", "REDIS_PASSWORD"):
            lines = [f"{key}={secrets.token_hex(24)}" if line.startswith(f"{key}=") else line
                     for line in text.splitlines()]
            text = "\n".join(lines) + "\n"
        env_file = clone.dir / ".env"
        env_file.write_text(text)
        env_file.chmod(0o600)
        e2e.run(clone.compose + ["up", "--detach", "--build"], env=clone.env, timeout=1800)
        poll_ready(clone.port, 300)
        all_healthy(clone, clone.env, 300)
        fresh = time.monotonic() - t
        touch_source(clone, n)
        t = time.monotonic()
        e2e.run(clone.compose + ["up", "--detach", "--build"], env=clone.env, timeout=1800)
        poll_ready(clone.port, 300)
        all_healthy(clone, clone.env, 300)
        rebuild = time.monotonic() - t
        return fresh, rebuild
    finally:
        clone.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ctl", required=True, help="the pilothousectl binary")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pilothouse-bench-clone-"))
    engine = e2e.Engine(workdir)
    try:
        engine.ensure()
        e2e.make_base_image(engine)
        e2e.build_standins(engine)
        panel_fresh, panel_rebuild, hand_fresh, hand_rebuild = [], [], [], []
        for n in range(args.rounds):
            f, r = hand_round(engine, workdir, n)
            hand_fresh.append(f)
            hand_rebuild.append(r)
            f, r = panel_round(engine, args.ctl, workdir, n)
            panel_fresh.append(f)
            panel_rebuild.append(r)
        rows = (("fresh clone to healthy", panel_fresh, hand_fresh),
                (f"rebuild after a one-line change (panel without its {WINDOW} s window)",
                 panel_rebuild, hand_rebuild))
        print(f"\n| {args.rounds} round(s), medians | panel | docker-compose by hand | ratio | "
              "target |")
        print("|---|---|---|---|---|")
        for name, panel, hand in rows:
            p, h = statistics.median(panel), statistics.median(hand)
            ratio = p / h
            print(f"| {name} | {p:.1f} s | {h:.1f} s | {ratio:.2f}x | "
                  f"{'met' if ratio <= 1.2 else 'MISSED'} (<= 1.2x) |")
        return 0
    except (e2e.Failure, subprocess.TimeoutExpired) as exc:
        print(f"bench_clone: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.stop_dockerd()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
