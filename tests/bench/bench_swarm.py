#!/usr/bin/python3
"""Swarm benchmark: the stack on a single-node swarm next to compose, in one run.

Runs tests/e2e/stack_e2e.py with the core test (compose.yaml through the
panel's compose driver and engine watcher) and the swarm test
(compose.stack.yaml through the swarm driver and watcher) on the same engine,
one after the other, and prints, for each:

  deploy to healthy   `compose up` / `docker stack deploy` called through the
                      panel's core until every service is healthy in its model
  kill -> model       `docker kill` of an api container (a task on swarm)
                      until the model shows it (median of three)

with the swarm/compose ratio. Targets (issue 18): the kill seen within a
second on both. Needs root, docker.io, docker-compose and debootstrap, as
`make test` installs them. Exit 0 even when a target is missed; 1 when
something could not be measured.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def seconds(text: str) -> float:
    return float(re.match(r"([0-9.]+) s", text).group(1))


def median_ms(text: str) -> float:
    return float(re.match(r"median (\d+) ms", text).group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=str(REPO / "build/dev"), help="the build folder")
    args = parser.parse_args()
    build = Path(args.build)
    proc = subprocess.run(
        ["/usr/bin/python3", str(REPO / "tests/e2e/stack_e2e.py"), "--only-core", "--only-swarm",
         "--core-test", str(build / "tests/tst_compose"),
         "--swarm-test", str(build / "tests/tst_swarm")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
    numbers = {}
    for line in proc.stdout.splitlines():
        # "   KEY (28 columns) VALUE", as stack_e2e.py prints its numbers.
        m = re.match(r"^   (.{28}) (.+)$", line)
        if m:
            numbers[m.group(1).strip()] = m.group(2).strip()
    wanted = ("compose up to healthy (core)", "docker kill -> model", "swarm deploy to healthy",
              "swarm kill -> model")
    if proc.returncode != 0 or any(k not in numbers for k in wanted):
        print(proc.stdout[-6000:])
        print("bench_swarm: could not measure everything", file=sys.stderr)
        return 1
    up_c, up_s = seconds(numbers[wanted[0]]), seconds(numbers[wanted[2]])
    kill_c, kill_s = median_ms(numbers[wanted[1]]), median_ms(numbers[wanted[3]])
    print("== swarm vs compose (same engine, same run)")
    print(f"   deploy to all healthy   compose {up_c:6.1f} s   swarm {up_s:6.1f} s   "
          f"swarm/compose {up_s / up_c:.2f}x")
    print(f"   docker kill -> model    compose {kill_c:6.0f} ms  swarm {kill_s:6.0f} ms  "
          f"swarm/compose {kill_s / kill_c:.2f}x   target < 1000 ms: "
          f"{'met' if max(kill_c, kill_s) < 1000 else 'MISSED'}")
    print(f"   (kills: compose {numbers[wanted[1]]}; swarm {numbers[wanted[3]]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
