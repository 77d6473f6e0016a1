#!/usr/bin/python3
"""Screenshots of every view of the window, as PNG files, under Xvfb.

Starts an Xvfb display of its own and runs tests/gui/shoot (the window on the
`local` environment, started for real) three times: light at 1x, dark at 1x,
light at 2x (QT_SCALE_FACTOR=2). The deployments view is shot by the e2e
(tst_gui_deploy on a real engine and registry), into the same folder when
PILOTHOUSE_SCREENSHOT_DIR points there.

    /usr/bin/python3 tests/gui/screenshots.py --shoot build/dev/tests/gui_shoot --out docs/screenshots
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise SystemExit("screenshots: no free X display number")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shoot", required=True, help="the gui_shoot binary")
    parser.add_argument("--out", required=True, help="folder for the PNG files")
    args = parser.parse_args()
    xvfb = shutil.which("Xvfb")
    if not xvfb:
        print("screenshots: Xvfb is not installed (apt-get install xvfb)", file=sys.stderr)
        return 1
    display = free_display()
    server = subprocess.Popen([xvfb, f":{display}", "-screen", "0", "2600x1600x24", "-nolisten",
                               "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{display}").exists():
            if time.monotonic() > deadline or server.poll() is not None:
                print("screenshots: Xvfb did not start", file=sys.stderr)
                return 1
            time.sleep(0.05)
        env = dict(os.environ, DISPLAY=f":{display}", QT_QPA_PLATFORM="xcb")
        env.pop("WAYLAND_DISPLAY", None)
        runs = [([], {}), (["--dark", "--suffix", "-dark"], {}),
                (["--suffix", "-2x"], {"QT_SCALE_FACTOR": "2"})]
        for extra, more in runs:
            proc = subprocess.run([args.shoot, "--out", args.out, *extra], env=dict(env, **more),
                                  timeout=180)
            if proc.returncode != 0:
                print(f"screenshots: {args.shoot} {' '.join(extra)} exited {proc.returncode}",
                      file=sys.stderr)
                return 1
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
