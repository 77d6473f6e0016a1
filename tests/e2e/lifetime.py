#!/usr/bin/python3
"""Every process the panel or pilothousectl starts ends with it (issue 13).

Processes are told apart by a marker variable given to the owner: every
child and grandchild inherits it (docker, compose's plugin, deckhand, the
reaper), so /proc finds them all, whoever their parent is after the owner
dies.

Without an engine (a CTest test of its own):
  - the window (offscreen) running a native environment, SIGTERM: it says so,
    stops deckhand in order (gone before the window exits), exits 0;
  - the same, SIGTERM twice: the second leaves at once, children still end;
  - the window, then pilothousectl `up`, each SIGKILLed: nothing of theirs left.
With an engine (called by stack_e2e.py while its stack runs):
  - the window with a compose environment shown (its `docker events` runs),
    SIGKILLed; pilothousectl during `logs --follow` (a long compose call),
    SIGKILLed: nothing of theirs left, grandchildren included.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

MARK = "PILOTHOUSE_LIFETIME_MARK"


class Failure(Exception):
    pass


def log(msg: str) -> None:
    print(f"[lifetime] {msg}", flush=True)


def marked(mark: str) -> dict[int, str]:
    """pid -> command line of every live process carrying the marker."""
    found = {}
    needle = f"{MARK}={mark}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # a zombie: already dead, waiting for its parent
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
    return found


def wait_for(what: str, cond, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")


def nothing_left(mark: str, who: str, timeout: float = 8.0) -> float:
    """Waits until no process of the owner's is left; returns how long it took."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        left = marked(mark)
        if not left:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise Failure(f"{who}: still running {timeout:.0f} s after its owner died: {marked(mark)}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def owner_env(mark: str, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({MARK: mark, "QT_QPA_PLATFORM": "offscreen", "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
                "XDG_CACHE_HOME": str(home / "cache"), "LANG": "C.UTF-8"})
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def native_config(path: Path, deckhand: str, port: int, data: Path) -> None:
    path.write_text(json.dumps({"version": 1, "environments": [{
        "name": "life", "kind": "native",
        "processes": [{"name": "deckhand", "program": deckhand, "args": ["serve"],
                       "env": {"HOST": "127.0.0.1", "PORT": str(port),
                               "DATABASE_URL": f"sqlite://{data}/deckhand.db",
                               "CHECK_INTERVAL_SECONDS": "1"},
                       "stopGraceSeconds": 10}],
        "services": [{"name": "deckhand", "health": [
            {"url": f"http://127.0.0.1:{port}/readyz", "intervalSeconds": 0.5,
             "timeoutSeconds": 1}]}]}]}))


def live(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def deckhand_of(mark: str) -> int | None:
    for pid, cmd in marked(mark).items():
        if "deckhand" in cmd.split(" ")[0] and " serve" in cmd:
            return pid
    return None


def start_window(gui: str, config: Path, env_name: str, mark: str, home: Path,
                 start: bool) -> subprocess.Popen:
    args = [gui, "--config", str(config), "--env", env_name]
    if start:
        args.append("--start")
    return subprocess.Popen(args, env=owner_env(mark, home), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def window_sigterm(gui: str, deckhand: str, work: Path) -> None:
    mark = secrets.token_hex(8)
    port = free_port()
    config = work / "native.json"
    native_config(config, deckhand, port, work / "data-term")
    win = start_window(gui, config, "life", mark, work / "home-term", start=True)
    try:
        wait_for("deckhand to answer", lambda: live(port), 30)
        child = wait_for("deckhand among the window's processes", lambda: deckhand_of(mark), 10)
        win.send_signal(signal.SIGTERM)
        try:
            _, err = win.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise Failure("the window did not leave within 30 s of SIGTERM")
        # Stopped by the window before it left: deckhand was its child, so
        # had it still run, it would be alive now under another parent.
        still = os.path.exists(f"/proc/{child}") and child in marked(mark)
        text = err.decode(errors="replace")
        if win.returncode != 0:
            raise Failure(f"the window exited {win.returncode} after SIGTERM:\n{text}")
        if "SIGTERM: stopping what this window runs" not in text:
            raise Failure(f"the window did not say what it does on SIGTERM:\n{text}")
        if still:
            raise Failure("deckhand outlived the window: it was not stopped in order")
        nothing_left(mark, "window after SIGTERM")
        log("window SIGTERM: deckhand stopped in order, window exit 0, nothing left")
    finally:
        if win.poll() is None:
            win.kill()
            win.wait()


def window_double_sigterm(gui: str, deckhand: str, work: Path) -> None:
    mark = secrets.token_hex(8)
    port = free_port()
    config = work / "native2.json"
    native_config(config, deckhand, port, work / "data-twice")
    win = start_window(gui, config, "life", mark, work / "home-twice", start=True)
    try:
        wait_for("deckhand to answer", lambda: live(port), 30)
        win.send_signal(signal.SIGTERM)
        # Signals of one kind do not queue: the second is sent once the first
        # has been heard (the window says so), as a person pressing twice.
        heard = b""
        deadline = time.monotonic() + 10
        while b"stopping what this window runs" not in heard:
            if time.monotonic() > deadline or win.poll() is not None:
                raise Failure(f"the window did not acknowledge the first SIGTERM: {heard!r}")
            if select.select([win.stderr], [], [], 0.1)[0]:
                heard += os.read(win.stderr.fileno(), 4096)
        win.send_signal(signal.SIGTERM)
        try:
            win.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            raise Failure("a second SIGTERM did not make the window leave at once")
        if win.returncode != 128 + signal.SIGTERM:
            raise Failure(f"the window exited {win.returncode} after a second SIGTERM, "
                          f"not {128 + signal.SIGTERM}")
        took = nothing_left(mark, "window after two SIGTERMs")
        log(f"window SIGTERM twice: left at once, its children ended {took:.2f} s later")
    finally:
        if win.poll() is None:
            win.kill()
            win.wait()


def kill_owner(args: list[str], mark: str, home: Path, ready, who: str) -> float:
    proc = subprocess.Popen(args, env=owner_env(mark, home), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(f"{who} to be running", ready, 60)
        children = {pid: cmd for pid, cmd in marked(mark).items() if pid != proc.pid}
        proc.kill()
        proc.wait()
        took = nothing_left(mark, who)
        log(f"{who}, SIGKILL: {len(children)} process(es) of its own ended within {took:.2f} s: "
            + "; ".join(sorted({c.split(' ')[0].rsplit('/', 1)[-1] for c in children.values()})))
        return took
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def native_kills(gui: str, ctl: str, deckhand: str, work: Path) -> None:
    for who, make in (("window (native)", lambda c: [gui, "--config", str(c), "--env", "life",
                                                      "--start"]),
                      ("pilothousectl up (native)", lambda c: [ctl, "--config", str(c), "up",
                                                                "--env", "life"])):
        mark = secrets.token_hex(8)
        port = free_port()
        config = work / f"kill-{port}.json"
        native_config(config, deckhand, port, work / f"data-{port}")
        kill_owner(make(config), mark, work / f"home-{port}", lambda: live(port), who)


def compose_kills(gui: str, ctl: str, compose_file: str, project: str, env: dict[str, str],
                  work: Path) -> None:
    """With an engine and a running compose project: the window (docker
    events) and pilothousectl (compose logs --follow), each SIGKILLed."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "compose-life.json"
    config.write_text(json.dumps({"version": 1, "environments": [{
        "name": "life-compose", "kind": "compose",
        "compose": {"files": [compose_file], "project": project}}]}))

    def is_docker(argv: list[str]) -> bool:
        # docker, its compose plugin, or Debian's docker-compose (a python3 script).
        return any(a.rsplit("/", 1)[-1].startswith("docker") for a in argv[:2])

    def has(mark: str, *words: str):
        # A docker or compose process (not the owner) with those arguments.
        return lambda: any(is_docker(cmd.split(" ")) and all(w in cmd.split(" ") for w in words)
                           for cmd in marked(mark).values())

    saved = dict(os.environ)
    os.environ.update(env)  # the stack's compose variables, as a user's shell has them
    try:
        mark = secrets.token_hex(8)
        kill_owner([gui, "--config", str(config), "--env", "life-compose"], mark,
                   work / "home-cw", has(mark, "events"), "window (compose, docker events)")
        mark = secrets.token_hex(8)
        kill_owner([ctl, "--config", str(config), "logs", "api", "--follow", "--env",
                    "life-compose"], mark, work / "home-cl", has(mark, "logs", "--follow"),
                   "pilothousectl logs --follow (compose)")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def window_without_display(gui: str) -> None:
    """With no display, --help and --version still answer (exit 0); a
    start says there is no display and what to run instead (exit 2)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([gui, "--help"], env=env, capture_output=True, timeout=30)
    text = proc.stdout.decode(errors="replace")
    if proc.returncode != 0 or "--env" not in text or "--start" not in text:
        raise Failure(f"pilothouse --help without a display: exit {proc.returncode}, "
                      f"{(text + proc.stderr.decode(errors='replace'))[-400:]}")
    proc = subprocess.run([gui, "--version"], env=env, capture_output=True, timeout=30)
    if proc.returncode != 0 or b"pilothouse" not in proc.stdout:
        raise Failure(f"pilothouse --version without a display: exit {proc.returncode}")
    proc = subprocess.run([gui], env=env, capture_output=True, timeout=30)
    if proc.returncode != 2 or b"no display" not in proc.stderr:
        raise Failure(f"pilothouse without a display: exit {proc.returncode}, "
                      f"{proc.stderr.decode(errors='replace')[-300:]}")
    log("ok: without a display, --help and --version answer; a start says what to run")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gui", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--deckhand", required=True)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pilothouse-lifetime-"))
    try:
        window_without_display(args.gui)
        window_sigterm(args.gui, args.deckhand, work)
        window_double_sigterm(args.gui, args.deckhand, work)
        native_kills(args.gui, args.ctl, args.deckhand, work)
    except Failure as exc:
        print(f"FAIL: {exc}", flush=True)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("lifetime: 5 passed, 0 failed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
