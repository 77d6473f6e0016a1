#!/usr/bin/python3
"""An installed Pilothouse works with its source and build trees gone.

`cmake --install` into a temporary prefix, as a package would; then, in a
mount namespace of its own, an empty tmpfs is mounted over the source tree
(the build tree is inside it, or gets its own), so nothing the binaries were
built from can be read, and the commands run from the prefix with a fresh
home:
  - `pilothousectl envs` lists `local`, and `local-compose` as not usable
    because it needs its stack folder (with what to do), `--json` too;
  - `--env local-compose status` refuses with that reason, exit 3;
  - `up --env local` runs the installed deckhand (the built-in environment,
    port 8000) until healthy, `status` says healthy, `down` stops it and the
    `up` exits; nothing is left listening;
  - `stack-folder` refuses a folder without compose.yaml; once a checkout is
    chosen (a copy of the stack files outside the hidden tree), local-compose
    is listed as usable.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SKIP = 77


class Failure(Exception):
    pass


def log(msg: str) -> None:
    print(f"[installed] {msg}", flush=True)


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise Failure(msg)
    log(f"ok: {msg}")


def port_free(port: int) -> bool:
    """Nothing listens on it (a connection is refused)."""
    with socket.socket() as s:
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
            return False
        except OSError:
            return True


def inside(args: argparse.Namespace) -> int:
    """Runs in the private mount namespace, with the trees hidden."""
    prefix = Path(args.prefix)
    ctl = str(prefix / "bin/pilothousectl")
    home = Path(args.home)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CACHE_HOME": str(home / "cache"), "XDG_RUNTIME_DIR": str(home / "run")}
    (home / "run").mkdir(parents=True, mode=0o700, exist_ok=True)

    def ctl_run(*a: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([ctl, *a], env=env, cwd=home, capture_output=True, timeout=timeout)

    # Only this namespace sees these mounts; they go with it.
    for tree in args.hidden:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "none", tree],
                       check=True, timeout=30)
        check(not any(Path(tree).iterdir()), f"{tree} is out of reach (empty here)")
    check(not Path(args.built_deckhand).exists(), "the deckhand of the build tree is gone")

    proc = ctl_run("envs")
    text = proc.stdout.decode()
    check(proc.returncode == 0, f"pilothousectl envs works installed ({proc.stderr.decode()})")
    lines = {line.split()[0]: line for line in text.splitlines()[1:] if line.startswith("  ")}
    check("local" in lines and "native" in lines["local"], "it lists local")
    check("local-compose" in lines and "not usable" in lines["local-compose"] and
          "stack folder" in lines["local-compose"],
          f"and local-compose as needing its stack folder: {lines.get('local-compose', '').strip()}")
    check("stack folder: none found" in text, "saying no stack folder was found")
    listed = json.loads(ctl_run("envs", "--json").stdout)
    by_name = {e["name"]: e for e in listed["environments"]}
    check(by_name["local"]["valid"] is True and by_name["local-compose"]["valid"] is False and
          by_name["local-compose"]["needs_stack_folder"] is True and listed["stack_folder"] is None,
          "envs --json says the same")

    proc = ctl_run("--env", "local-compose", "status")
    check(proc.returncode == 3 and b"not usable" in proc.stderr and b"stack-folder" in proc.stderr,
          f"a command on local-compose refuses with the reason, exit 3 ({proc.stderr.decode()[:200]})")

    check(port_free(8000), "port 8000 (the built-in local's) is free")
    up = subprocess.Popen([ctl, "up", "--env", "local"], env=env, cwd=home,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while time.monotonic() < deadline and not healthy:
            try:
                with urllib.request.urlopen("http://127.0.0.1:8000/readyz", timeout=2) as r:
                    healthy = r.status == 200
            except OSError:
                time.sleep(0.2)
            if up.poll() is not None:
                raise Failure(f"up exited {up.returncode}: {up.stdout.read().decode()[-2000:]}")
        check(healthy, "up --env local brings deckhand to ready")
        deckhand = Path(f"/proc/{find_listener_pid(8000)}/exe").resolve()
        check(deckhand == (prefix / "bin/deckhand").resolve(),
              f"it runs the installed deckhand ({deckhand})")
        status = json.loads(ctl_run("status", "--env", "local", "--json").stdout or b"{}")
        check(status.get("health") == "healthy", f"status says healthy ({status.get('health')})")
        # The start settles for a moment after the first ready answer; a
        # down meanwhile is refused with "wait for it", so ask again then.
        deadline = time.monotonic() + 20
        while True:
            proc = ctl_run("down", "--env", "local", timeout=60)
            if proc.returncode == 0 or b"still running" not in proc.stderr or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.5)
        check(proc.returncode == 0, f"down works ({proc.stderr.decode()[-400:]})")
        up.wait(timeout=30)
        check(up.returncode == 0, f"and the up exits 0 ({up.returncode})")
        check(port_free(8000), "nothing is left listening on 8000")
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()

    folder = home / "not-a-stack"
    folder.mkdir()
    proc = ctl_run("stack-folder", str(folder))
    check(proc.returncode == 3 and b"compose.yaml" in proc.stderr,
          f"stack-folder refuses a folder without the stack ({proc.stderr.decode().strip()})")
    proc = ctl_run("stack-folder", args.stack_copy)
    check(proc.returncode == 0 and args.stack_copy in proc.stdout.decode(),
          f"and remembers a checkout ({proc.stdout.decode().strip()})")
    listed = json.loads(ctl_run("envs", "--json").stdout)
    by_name = {e["name"]: e for e in listed["environments"]}
    check(by_name.get("local-compose", {}).get("valid") is True and
          by_name["local-compose"]["compose_files"][0] == f"{args.stack_copy}/compose.yaml",
          "then local-compose is usable, from that folder")
    proc = ctl_run("stack-folder", "--forget")
    check(proc.returncode == 0 and b"no stack folder" in proc.stdout, "--forget forgets it")
    return 0


def find_listener_pid(port: int) -> int:
    hex_port = f"{port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[1].endswith(":" + hex_port):
                    inodes.add(fields[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    raise Failure(f"no process listens on {port}")


def outside(args: argparse.Namespace) -> int:
    ci = os.environ.get("CI") == "true"
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or not unshare:
        msg = "needs root and unshare(1) to hide the source tree in a mount namespace"
        if ci:
            log(f"FAIL: {msg}")
            return 1
        log(f"SKIP: {msg}")
        return SKIP
    source = Path(args.source).resolve()
    build = Path(args.build).resolve()
    work = Path(tempfile.mkdtemp(prefix="pilothouse-installed-"))
    try:
        prefix = work / "prefix"
        t0 = time.monotonic()
        proc = subprocess.run(["cmake", "--install", str(build), "--prefix", str(prefix)],
                              capture_output=True, timeout=300)
        if proc.returncode != 0:
            raise Failure(f"cmake --install failed: {proc.stderr.decode()[-2000:]}")
        for name in ("pilothouse", "pilothousectl", "deckhand"):
            check((prefix / "bin" / name).is_file(), f"{name} is installed in {prefix}/bin")
        log(f"installed in {time.monotonic() - t0:.1f} s")
        # A checkout's stack files, copied out, for the stack-folder step.
        stack = work / "stack"
        stack.mkdir()
        for name in ("compose.yaml", "compose.build.yaml", ".env.example"):
            shutil.copy2(source / name, stack / name)
        hidden = [str(source)]
        if source not in build.parents:
            hidden.append(str(build))
        script = Path(__file__).resolve()
        # The script itself lives in the hidden tree: run a copy.
        copy = work / "installed.py"
        shutil.copy2(script, copy)
        inner = [sys.executable, str(copy), "--inside", "--prefix", str(prefix),
                 "--home", str(work / "home"), "--stack-copy", str(stack),
                 "--built-deckhand", args.built_deckhand] + \
            sum((["--hidden", h] for h in hidden), [])
        proc = subprocess.run([unshare, "--mount", "--propagation", "private", "--", *inner],
                              timeout=240)
        return proc.returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source")
    parser.add_argument("--build")
    parser.add_argument("--built-deckhand", required=True)
    parser.add_argument("--inside", action="store_true")
    parser.add_argument("--prefix")
    parser.add_argument("--home")
    parser.add_argument("--stack-copy")
    parser.add_argument("--hidden", action="append", default=[])
    args = parser.parse_args()
    try:
        return inside(args) if args.inside else outside(args)
    except (Failure, subprocess.TimeoutExpired) as e:
        log(f"FAIL: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
