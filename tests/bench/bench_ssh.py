#!/usr/bin/python3
"""SSH benchmark: the same stack on the local engine and over the panel's SSH
connection (Debian's sshd on loopback, forwarding the same engine's socket),
in the same run, with pilothousectl and Debian's compose v1:

  up --wait, status --json, logs api --tail 5, restart api --wait, down

each timed as a user waits for it (the command's wall time), --rounds times
per side, taking turns. Target (issue 15): each within 1.5x of local, and
status under 1 s. Prints a Markdown table of medians; exit status 0 even
when a target is missed, 1 when something could not be measured. Needs root
(sshd, and dockerd when none answers) and the deckhand image the e2e builds.
"""

from __future__ import annotations

import argparse
import json
import os
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
import stack_e2e as e2e  # noqa: E402  (the harness: engine, sshd, stack)

STEPS = (("up", ("up", "--wait", "240")), ("status", ("status", "--json")),
         ("logs --tail 5", ("logs", "api", "--tail", "5")),
         ("restart api", ("restart", "api", "--wait", "120")), ("down", ("down",)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ctl", required=True, help="the pilothousectl binary")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pilothouse-bench-ssh-"))
    engine = e2e.Engine(workdir)
    sshd = e2e.Sshd(workdir)
    stacks: list[e2e.Stack] = []
    try:
        engine.ensure()
        if not engine.image_exists(f"{e2e.DECKHAND_IMAGE}:{e2e.DECKHAND_TAG}"):
            raise e2e.Failure("no deckhand image: run the e2e once (make test) to build it")
        sshd.start()
        envs = []
        for name, host in (("local", None), ("ssh", f"ssh://root@127.0.0.1:{sshd.port}")):
            project = f"phbench{name}{os.getpid()}{secrets.token_hex(2)}"
            stack = e2e.Stack(engine, project, e2e.free_port(), 10)
            stacks.append(stack)
            env_def = {
                "name": name, "kind": "compose",
                "compose": {"files": [str(REPO / "compose.yaml")], "project": project},
                "services": [{"name": "api", "health": [{
                    "url": f"http://127.0.0.1:{stack.port}/readyz", "intervalSeconds": 1,
                    "timeoutSeconds": 2}]}, {"name": "worker"}, {"name": "postgres"},
                    {"name": "redis"}]}
            if host:
                env_def["docker"] = {"host": host}
            envs.append(env_def)
        config = workdir / "envs.json"
        config.write_text(json.dumps({"version": 1, "environments": envs}))

        def run_env(stack: e2e.Stack) -> dict:
            env = dict(stack.env)
            env.pop("COMPOSE_PROJECT_NAME", None)
            env.update({"PILOTHOUSE_SSH_CONFIG": str(sshd.client_config),
                        "XDG_DATA_HOME": str(workdir / "home/data"),
                        "XDG_CONFIG_HOME": str(workdir / "home/config"),
                        "XDG_CACHE_HOME": str(workdir / "home/cache")})
            return env

        times: dict[str, dict[str, list[float]]] = {"local": {}, "ssh": {}}
        for _ in range(args.rounds):
            for side, stack in zip(("local", "ssh"), stacks):
                env = run_env(stack)
                stack.started = True
                for label, cmd in STEPS:
                    t = time.monotonic()
                    proc = subprocess.run([args.ctl, "--config", str(config), "--env", side,
                                           *cmd], env=env, capture_output=True, timeout=600)
                    took = time.monotonic() - t
                    if proc.returncode != 0:
                        raise e2e.Failure(f"{side}: pilothousectl {' '.join(cmd)} exited "
                                          f"{proc.returncode}: {proc.stderr.decode()[-1500:]}")
                    times[side].setdefault(label, []).append(took)
                stack.down()
                stack.started = False
        print(f"\n| {args.rounds} rounds, medians | local engine | over SSH | ratio | target |")
        print("|---|---:|---:|---:|---|")
        for label, _ in STEPS:
            local = statistics.median(times["local"][label])
            over = statistics.median(times["ssh"][label])
            ratio = over / local
            target = "<= 1.5x" + (", < 1 s" if label == "status" else "")
            met = ratio <= 1.5 and (label != "status" or over < 1.0)
            print(f"| {label} | {local:.2f} s | {over:.2f} s | {ratio:.2f}x | {target}, "
                  f"{'met' if met else 'MISSED'} |")
        return 0
    except (e2e.Failure, subprocess.TimeoutExpired) as exc:
        print(f"bench_ssh: {exc}", file=sys.stderr)
        return 1
    finally:
        for stack in stacks:
            if stack.started:
                stack.down()
        sshd.stop()
        engine.stop_dockerd()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
