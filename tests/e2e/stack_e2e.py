#!/usr/bin/python3
"""End-to-end test of the deckhand stack (compose.yaml) on a real Docker engine.

What it does, in order:
  1. Finds a Docker engine; as root with none answering it starts Debian's
     dockerd itself (and stops it at the end).
  2. Makes debian:bookworm-slim with debootstrap | docker import when the
     engine does not have it (no public registry is reachable here).
  3. Builds the deckhand image from docker/Dockerfile and PostgreSQL/Redis
     stand-in images from Debian packages (tests/e2e/standins/), reusing the
     engine's layer cache.
  4. `compose up` with those images through the compose.yaml variables, waits
     until every service is healthy, and checks readiness, a job round trip,
     the api container's confinement, SIGTERM shutdown, a PostgreSQL outage
     and `compose down -v` leaving nothing behind.
  5. Removes the containers, networks and volumes it made, even on failure,
     and leaves the images cached for the next run.

Exit status: 0 passed, 1 failed, 77 skipped (no engine and not root, outside
CI). With CI=true it never skips.

Only the standard library; every command is an argument list, never a shell
string.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
SKIP = 77

BASE_IMAGE = "debian:bookworm-slim"
DECKHAND_IMAGE = "pilothouse-e2e/deckhand"
DECKHAND_TAG = "e2e"
POSTGRES_IMAGE = "pilothouse-e2e/postgres:15-debian"
REDIS_IMAGE = "pilothouse-e2e/redis:7-debian"
PROXY_IMAGE = "pilothouse-e2e/haproxy:2.6-debian"

# Files of a debootstrap minbase that the official slim image leaves out too.
SLIM_DROP = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
             "usr/share/lintian", "var/cache/apt", "var/lib/apt/lists", "var/log")
SLIM_DPKG_CFG = """\
# Like the official debian slim images: no docs, man pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
"""


class Failure(Exception):
    """A check that did not hold; the message says what was expected."""


class Skip(Exception):
    """The test cannot run here (and CI is not set)."""


def log(msg: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def run(args: list[str], *, timeout: float = 120, check: bool = True, env: dict | None = None,
        capture: bool = True, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(args, timeout=timeout, env=env, input=input_bytes,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None)
    except subprocess.TimeoutExpired as exc:
        raise Failure(f"{' '.join(args[:4])} ... timed out after {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        err = (proc.stderr or b"").decode(errors="replace").strip()[-3000:]
        raise Failure(f"{' '.join(args)} exited {proc.returncode}: {err}")
    return proc


def out(args: list[str], **kw) -> str:
    return run(args, **kw).stdout.decode(errors="replace").strip()


# --------------------------------------------------------------------------- engine

class Engine:
    """The Docker engine this run talks to, started by us if need be."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.docker = shutil.which("docker") or ""
        self.dockerd: subprocess.Popen | None = None
        self.dockerd_log: Path | None = None
        self.compose: list[str] = []
        self.build_env = dict(os.environ)

    def answers(self) -> bool:
        if not self.docker:
            return False
        try:
            proc = subprocess.run([self.docker, "version", "--format", "{{.Server.Version}}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=20)
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0 and bool(proc.stdout.strip())

    def ensure(self) -> None:
        if self.answers():
            log(f"engine answers ({out([self.docker, 'version', '--format', '{{.Server.Version}}'])})")
        else:
            if os.geteuid() != 0:
                raise Skip("no Docker engine answers and not root, so dockerd cannot be started")
            ensure_packages()
            self.docker = shutil.which("docker") or ""
            if self.answers():
                log("engine answers after installing packages")
            else:
                self.start_dockerd()
        self.pick_compose()
        self.pick_builder()

    def start_dockerd(self) -> None:
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not Path(dockerd).exists():
            raise Failure("dockerd not found although docker.io was installed")
        self.dockerd_log = self.workdir / "dockerd.log"
        log(f"starting {dockerd} (log {self.dockerd_log})")
        logf = open(self.dockerd_log, "wb")
        # Its own session, so a Ctrl-C on the test does not hit it before cleanup does.
        self.dockerd = subprocess.Popen([dockerd, "--host", "unix:///var/run/docker.sock"],
                                        stdout=logf, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.dockerd.poll() is not None:
                raise Failure(f"dockerd exited {self.dockerd.returncode}: "
                              f"{self.dockerd_log.read_text(errors='replace')[-2000:]}")
            if self.answers():
                log("dockerd is up")
                return
            time.sleep(0.5)
        raise Failure("dockerd did not answer within 90 s")

    def stop_dockerd(self) -> None:
        if self.dockerd is None or self.dockerd.poll() is not None:
            return
        log("stopping the dockerd this test started")
        self.dockerd.send_signal(signal.SIGTERM)
        try:
            self.dockerd.wait(timeout=45)
        except subprocess.TimeoutExpired:
            self.dockerd.kill()
            self.dockerd.wait(timeout=10)

    def pick_compose(self) -> None:
        probe = subprocess.run([self.docker, "compose", "version"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
        if probe.returncode == 0:
            self.compose = [self.docker, "compose"]
        elif shutil.which("docker-compose"):
            self.compose = [shutil.which("docker-compose") or "docker-compose"]
        else:
            if os.geteuid() == 0:
                ensure_packages(["docker-compose"])
            if not shutil.which("docker-compose"):
                raise Failure("neither `docker compose` (v2) nor docker-compose (v1) is available")
            self.compose = [shutil.which("docker-compose") or "docker-compose"]
        log(f"compose: {' '.join(self.compose)} "
            f"({out(self.compose + ['version', '--short'], check=False) or '?'})")

    def pick_builder(self) -> None:
        # BuildKit when the client has it (buildx plugin, or a 20.10 client that
        # has it built in); otherwise the classic builder, which the Dockerfile
        # supports just as well.
        buildx = subprocess.run([self.docker, "buildx", "version"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=30).returncode == 0
        client = out([self.docker, "version", "--format", "{{.Client.Version}}"], check=False)
        major = int(re.match(r"(\d+)", client).group(1)) if re.match(r"(\d+)", client) else 0
        if buildx:
            self.build_env.pop("DOCKER_BUILDKIT", None)
            kind = "BuildKit (buildx)"
        elif major and major < 23:
            self.build_env["DOCKER_BUILDKIT"] = "1"
            kind = "BuildKit (built into the client)"
        else:
            self.build_env["DOCKER_BUILDKIT"] = "0"
            kind = "classic builder"
        log(f"docker client {client}, building with {kind}")

    def image_exists(self, ref: str) -> bool:
        return run([self.docker, "image", "inspect", ref], check=False).returncode == 0


def ensure_packages(extra: list[str] | None = None) -> None:
    """Installs what is missing from Debian (root only), as `make test` does."""
    wanted = {"docker.io": "dockerd", "docker-compose": "docker-compose", "debootstrap": "debootstrap"}
    missing = [pkg for pkg, tool in wanted.items() if not shutil.which(tool)
               and not Path(f"/usr/sbin/{tool}").exists()]
    missing += [p for p in (extra or []) if p not in missing and not shutil.which(p)]
    if not missing or os.geteuid() != 0:
        return
    log(f"apt-get install {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update"], timeout=600, env=env)
    run(["apt-get", "install", "-y", "--no-install-recommends", *missing], timeout=900, env=env)


# --------------------------------------------------------------------------- images

def debian_mirror() -> str:
    """The mirror this machine's apt uses for the main archive."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for m in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
            if "security" not in m.group(1) and "debian" in m.group(1):
                return m.group(1)
        for m in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M):
            if "security" not in m.group(1):
                return m.group(1)
    return "http://deb.debian.org/debian"


def make_base_image(engine: Engine) -> None:
    if engine.image_exists(BASE_IMAGE):
        log(f"{BASE_IMAGE} present")
        return
    # Where a registry is reachable (GitHub's runners) the real image is better.
    pull = run([engine.docker, "pull", BASE_IMAGE], timeout=180, check=False)
    if pull.returncode == 0:
        log(f"{BASE_IMAGE} pulled")
        return
    if os.geteuid() != 0:
        raise Failure(f"{BASE_IMAGE} is missing and debootstrap needs root")
    ensure_packages()
    mirror = debian_mirror()
    started = time.monotonic()
    rootfs = Path(tempfile.mkdtemp(prefix="bookworm-rootfs-", dir="/var/tmp"))
    try:
        log(f"debootstrap --variant=minbase bookworm from {mirror} (once per machine)")
        run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror], timeout=1200)
        security = mirror.rstrip("/") + "-security" if mirror.rstrip("/").endswith("/debian") \
            else "http://deb.debian.org/debian-security"
        (rootfs / "etc/apt/sources.list").write_text(
            f"deb {mirror} bookworm main\n"
            f"deb {mirror} bookworm-updates main\n"
            f"deb {security} bookworm-security main\n")
        (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(SLIM_DPKG_CFG)
        (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(
            'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
            '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
            'Acquire::GzipIndexes "true";\n')
        for rel in SLIM_DROP:
            target = rootfs / rel
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        tar = subprocess.Popen(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c", "."],
                               stdout=subprocess.PIPE)
        imp = subprocess.run([engine.docker, "import", "--change", 'CMD ["bash"]',
                              "--message", f"debootstrap minbase bookworm from {mirror}",
                              "-", BASE_IMAGE], stdin=tar.stdout, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=600)
        tar.stdout.close()
        tar.wait(timeout=60)
        if imp.returncode != 0 or tar.returncode != 0:
            raise Failure(f"docker import failed: {imp.stderr.decode(errors='replace')}")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    log(f"{BASE_IMAGE} made in {time.monotonic() - started:.0f} s")


def build_standins(engine: Engine) -> None:
    """The Debian-made stand-ins of the official images compose.yaml names."""
    build(engine, POSTGRES_IMAGE, STANDINS / "postgres")
    build(engine, REDIS_IMAGE, STANDINS / "redis")
    build(engine, PROXY_IMAGE, STANDINS / "haproxy")


def build(engine: Engine, tag: str, context: Path, dockerfile: Path | None = None,
          build_args: dict | None = None, target: str | None = None, timeout: float = 1500) -> float:
    args = [engine.docker, "build", "--tag", tag]
    if engine.build_env.get("DOCKER_BUILDKIT") == "0":
        args.append("--force-rm")  # the classic builder keeps failed steps' containers otherwise
    if dockerfile:
        args += ["--file", str(dockerfile)]
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    if target:
        args += ["--target", target]
    args.append(str(context))
    started = time.monotonic()
    logfile = engine.workdir / f"build-{re.sub(r'[^A-Za-z0-9]+', '_', tag)}.log"
    with open(logfile, "wb") as fh:
        try:
            proc = subprocess.run(args, stdout=fh, stderr=subprocess.STDOUT, env=engine.build_env,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise Failure(f"building {tag} took over {timeout:.0f} s (log {logfile})") from exc
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        tail = logfile.read_text(errors="replace")[-4000:]
        raise Failure(f"building {tag} failed (exit {proc.returncode}):\n{tail}")
    log(f"built {tag} in {elapsed:.1f} s")
    return elapsed


def git(*args: str) -> str:
    proc = subprocess.run(["git", "-C", str(REPO), *args], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, timeout=30)
    return proc.stdout.decode().strip() if proc.returncode == 0 else ""


def build_metadata() -> dict:
    # BUILD_TIME is the commit time, not the wall clock: the same sources give
    # the same image, and a warm run hits the layer cache.
    sha = git("rev-parse", "HEAD") or "0" * 40
    return {
        "VERSION": git("describe", "--tags", "--always", "--dirty") or "0.0.0-e2e",
        "GIT_SHA": sha,
        "BUILD_TIME": git("log", "-1", "--format=%cI") or "1970-01-01T00:00:00Z",
        "IMAGE_TAG": DECKHAND_TAG,
    }


def image_id(engine: Engine, ref: str) -> str:
    proc = run([engine.docker, "image", "inspect", "--format", "{{.Id}}", ref], check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else ""


def build_replacing(engine: Engine, tag: str, context: Path, dockerfile: Path, build_args: dict,
                    target: str | None) -> float:
    """Builds tag; removes the image it replaced, if nothing else uses it."""
    before = image_id(engine, tag)
    elapsed = build(engine, tag, context, dockerfile, build_args, target=target, timeout=1800)
    if before and before != image_id(engine, tag):
        run([engine.docker, "image", "rm", before], check=False, timeout=120)
    return elapsed


def image_size(engine: Engine, ref: str) -> int:
    return int(out([engine.docker, "image", "inspect", "--format", "{{.Size}}", ref]))


# --------------------------------------------------------------------------- stack

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    def __init__(self, engine: Engine, project: str, port: int, grace: int):
        self.engine = engine
        self.project = project
        self.port = port
        self.grace = grace
        # Not the compose defaults, so the stand-in (or official) image must honour them.
        self.pg_user = "phe2e_user"
        self.pg_db = "phe2e_db"
        self.env = dict(os.environ)
        # The real environment wins over a developer's .env in both compose versions.
        self.env.update({
            "DECKHAND_IMAGE": DECKHAND_IMAGE,
            "DECKHAND_TAG": DECKHAND_TAG,
            "POSTGRES_IMAGE": POSTGRES_IMAGE,
            "REDIS_IMAGE": REDIS_IMAGE,
            "PROXY_IMAGE": PROXY_IMAGE,
            "POSTGRES_USER": self.pg_user,
            "POSTGRES_DB": self.pg_db,
            "POSTGRES_PASSWORD": secrets.token_hex(16),
            "REDIS_PASSWORD": secrets.token_hex(16),
            "API_BIND": "127.0.0.1",
            "API_PORT": str(port),
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
            "SHUTDOWN_GRACE_SECONDS": str(grace),
            "CHECK_INTERVAL_SECONDS": "2",
            "CHECK_TIMEOUT_SECONDS": "1",
            "COMPOSE_PROJECT_NAME": project,
        })
        self.env.pop("COMPOSE_FILE", None)
        self.env.pop("COMPOSE_PROFILES", None)
        self.started = False

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        cmd = self.engine.compose + ["--project-name", self.project,
                                     "--file", str(REPO / "compose.yaml"), *args]
        return out(cmd, timeout=timeout, env=self.env, check=check)

    def containers(self) -> dict[str, str]:
        """service name -> container id, from the engine's labels (same for v1 and v2)."""
        lines = out([self.engine.docker, "ps", "-a", "--no-trunc", "--filter",
                     f"label=com.docker.compose.project={self.project}",
                     "--format", "{{.ID}} {{.Label \"com.docker.compose.service\"}}"])
        result = {}
        for line in lines.splitlines():
            cid, _, service = line.partition(" ")
            result[service] = cid
        return result

    def inspect(self, cid: str) -> dict:
        return json.loads(out([self.engine.docker, "inspect", cid]))[0]

    def wait_healthy(self, services: tuple[str, ...], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            ids = self.containers()
            states = {}
            for service in services:
                if service not in ids:
                    states[service] = "missing"
                    continue
                state = self.inspect(ids[service])["State"]
                states[service] = (state.get("Health") or {}).get("Status") or state["Status"]
                if state["Status"] in ("exited", "dead"):
                    raise Failure(f"{service} exited ({state.get('ExitCode')}) while starting:\n"
                                  + self.logs(service))
            if all(s == "healthy" for s in states.values()):
                return
            time.sleep(0.5)
        raise Failure(f"not all healthy within {timeout:.0f} s: {states}")

    def logs(self, service: str, tail: int = 40) -> str:
        cid = self.containers().get(service)
        if not cid:
            return f"({service}: no container)"
        proc = run([self.engine.docker, "logs", "--tail", str(tail), cid], check=False)
        return (proc.stdout + proc.stderr).decode(errors="replace")

    def http(self, method: str, path: str, body: dict | None = None,
             timeout: float = 5) -> tuple[int, dict, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader("Content-Type", "")
        finally:
            conn.close()
        try:
            parsed = json.loads(data) if data else {}
        except json.JSONDecodeError:
            parsed = {"_raw": data.decode(errors="replace")}
        return resp.status, parsed, ctype

    def wait_http(self, path: str, want: int, timeout: float) -> tuple[int, dict]:
        deadline = time.monotonic() + timeout
        last: tuple = ("no answer",)
        while time.monotonic() < deadline:
            try:
                status, body, _ = self.http("GET", path, timeout=3)
                last = (status, body)
                if status == want:
                    return status, body
            except OSError as exc:
                last = (repr(exc),)
            time.sleep(0.3)
        raise Failure(f"GET {path} did not answer {want} within {timeout:.0f} s; last: {last}")

    def psql(self, sql: str) -> str:
        pg = self.containers()["postgres"]
        return out([self.engine.docker, "exec", pg, "psql", "-U", self.pg_user, "-d", self.pg_db,
                    "-tAc", sql], timeout=30)

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        d = self.engine.docker
        found = {
            "containers": out([d, "ps", "-aq", "--filter", label]).split(),
            "networks": out([d, "network", "ls", "-q", "--filter", label]).split(),
            "volumes": out([d, "volume", "ls", "-q", "--filter", label]).split(),
        }
        # Also by name, in case something was made without the label.
        prefix = f"{self.project}_"
        found["networks"] += [n for n in out([d, "network", "ls", "--format", "{{.Name}}"]).split()
                              if n.startswith(prefix) and n not in found["networks"]]
        found["volumes"] += [v for v in out([d, "volume", "ls", "--format", "{{.Name}}"]).split()
                             if v.startswith(prefix) and v not in found["volumes"]]
        return {k: v for k, v in found.items() if v}

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=180,
                      check=False)


# --------------------------------------------------------------------------- checks

def check(cond: bool, msg: str) -> None:
    if not cond:
        raise Failure(msg)
    log(f"ok: {msg}")


def proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def root_mount_options(pid: int) -> str:
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        parts = line.split()
        if parts[4] == "/":
            return parts[5]
    return ""


def check_ready(stack: Stack) -> None:
    status, body, ctype = stack.http("GET", "/readyz")
    check(status == 200 and body.get("status") == "pass",
          f"/readyz is 200 pass with PostgreSQL and Redis (got {status} {body.get('status')})")
    check(ctype.startswith("application/health+json"), f"/readyz is application/health+json ({ctype})")
    names = " ".join((body.get("checks") or {}).keys())
    check("postgres" in names and "redis" in names, f"/readyz checks postgres and redis ({names})")
    status, _, _ = stack.http("GET", "/livez")
    check(status == 200, "/livez is 200")


def check_version(stack: Stack, meta: dict) -> None:
    status, body, _ = stack.http("GET", "/version")
    check(status == 200, "/version is 200")
    check(body.get("git_sha") == meta["GIT_SHA"],
          f"/version reports the GIT_SHA build arg ({body.get('git_sha')})")
    check(body.get("version") == meta["VERSION"],
          f"/version reports the VERSION build arg ({body.get('version')})")
    log(f"/version: {json.dumps(body, sort_keys=True)}")


def check_job(stack: Stack) -> None:
    marker = secrets.token_hex(8)
    status, body, _ = stack.http("POST", "/v1/jobs", {"type": "echo", "payload": {"marker": marker}})
    check(status == 202 and body.get("id"), f"POST /v1/jobs is 202 with an id ({status} {body})")
    job_id = str(body["id"])
    deadline = time.monotonic() + 60
    job: dict = {}
    while time.monotonic() < deadline:
        _, job, _ = stack.http("GET", f"/v1/jobs/{job_id}")
        if job.get("status") in ("succeeded", "failed"):
            break
        time.sleep(0.3)
    check(job.get("status") == "succeeded", f"job {job_id} succeeded through the worker ({job})")
    check(marker in json.dumps(job.get("result")), "the echo job's result carries its payload")
    if not re.fullmatch(r"[0-9a-fA-F-]{36}", job_id):
        raise Failure(f"job id {job_id!r} is not a UUID")
    row = stack.psql(f"SELECT status || '|' || coalesce(worker_id, '') FROM jobs WHERE id = '{job_id}'")
    status_col, _, worker_id = row.partition("|")
    check(status_col == "succeeded" and worker_id,
          f"PostgreSQL holds the job as succeeded by worker {worker_id!r}")


def check_confinement(stack: Stack) -> None:
    cid = stack.containers()["api"]
    info = stack.inspect(cid)
    host = info["HostConfig"]
    check(info["Config"]["User"].split(":")[0] == "10001", f"api configured as uid 10001 ({info['Config']['User']})")
    check(host.get("ReadonlyRootfs") is True, "api has ReadonlyRootfs")
    check("ALL" in (host.get("CapDrop") or []), f"api drops ALL capabilities ({host.get('CapDrop')})")
    check(any("no-new-privileges" in o for o in host.get("SecurityOpt") or []),
          "api has no-new-privileges")
    pid = info["State"]["Pid"]
    if pid and Path(f"/proc/{pid}/status").exists():
        st = proc_status(pid)
        uids = set(st["Uid"].split())
        check(uids == {"10001"}, f"api process runs as uid 10001 (Uid: {st['Uid']})")
        for cap in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
            check(int(st[cap], 16) == 0, f"api process {cap} is empty ({st[cap]})")
        check(st.get("NoNewPrivs") == "1", "api process has NoNewPrivs")
        opts = root_mount_options(pid)
        check(opts.split(",")[0] == "ro", f"api root filesystem is mounted read-only ({opts})")
    else:
        raise Failure("cannot see the api process from here (engine not on this host?)")
    probe = run([stack.engine.docker, "exec", cid, "/usr/local/bin/deckhand", "healthcheck"], check=False)
    check(probe.returncode == 0, "`deckhand healthcheck` passes inside the api container")


def check_postgres_outage(stack: Stack, interval: float) -> None:
    pg = stack.containers()["postgres"]
    run([stack.engine.docker, "kill", pg])
    t0 = time.monotonic()
    status, body = stack.wait_http("/readyz", 503, timeout=6 * interval + 10)
    check(body.get("status") == "fail",
          f"/readyz turned 503 fail {time.monotonic() - t0:.1f} s after PostgreSQL was killed")
    t_live = time.monotonic()
    status, _, _ = stack.http("GET", "/livez", timeout=2)
    check(status == 200 and time.monotonic() - t_live < 1.0, "/livez stays 200 and fast meanwhile")
    run([stack.engine.docker, "start", pg])
    t1 = time.monotonic()
    stack.wait_http("/readyz", 200, timeout=60)
    check(True, f"/readyz passes again {time.monotonic() - t1:.1f} s after PostgreSQL came back")
    stack.wait_healthy(("postgres", "api", "worker"), timeout=90)


def check_children_end_with_owner(stack: Stack, gui: str, ctl: str, workdir: Path) -> None:
    """The window watching this project (its `docker events`) and
    pilothousectl following its logs (a long compose call) are SIGKILLed:
    nothing they started is left, grandchildren included (tests/e2e/lifetime.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import lifetime
    env = dict(stack.env)
    try:
        lifetime.compose_kills(gui, ctl, str(REPO / "compose.yaml"), stack.project, env,
                               workdir / "lifetime")
    except lifetime.Failure as exc:
        raise Failure(str(exc))


def check_sigterm(stack: Stack) -> float:
    cid = stack.containers()["api"]
    t0 = time.monotonic()
    run([stack.engine.docker, "stop", "--time", str(stack.grace * 3), cid], timeout=stack.grace * 3 + 30)
    took = time.monotonic() - t0
    state = stack.inspect(cid)["State"]
    check(state["ExitCode"] == 0, f"api exited 0 on SIGTERM (exit {state['ExitCode']})")
    check(took < stack.grace, f"docker stop api took {took:.2f} s, within the {stack.grace} s grace")
    return took


def check_down(stack: Stack) -> None:
    stack.down()
    left = stack.leftovers()
    check(not left, f"compose down -v leaves no containers, networks or volumes ({left or 'none'})")


class Sshd:
    """Debian's sshd on a free loopback port: its own host key, a generated
    client key in its authorized_keys, root login by key only, stream-local
    forwarding allowed, a debug log to show the forwards. The client side
    gets an ssh_config (PILOTHOUSE_SSH_CONFIG) with this host key trusted and
    this key, so the user's ~/.ssh is neither read nor written."""

    def __init__(self, workdir: Path, shared: bool = False):
        # shared: a folder other users can read (sshd reads authorized_keys
        # as the user who logs in), outside the private workdir.
        self.shared = shared
        if shared:
            self.dir = Path(tempfile.mkdtemp(prefix="phsshd-"))
            self.dir.chmod(0o755)
        else:
            self.dir = workdir / "sshd"
            self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "sshd.log"
        self.client_config = self.dir / "ssh_config"

    def start(self) -> None:
        if not Path("/usr/sbin/sshd").exists():
            raise Failure("/usr/sbin/sshd is missing (scripts/setup.sh test installs openssh-server)")
        for key in ("host_key", "user_key"):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / key)])
        shutil.copy(self.dir / "user_key.pub", self.dir / "authorized_keys")
        (self.dir / "authorized_keys").chmod(0o644)
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.dir / 'host_key'}\n"
            f"PidFile {self.dir / 'sshd.pid'}\nAuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "AllowStreamLocalForwarding yes\nMaxSessions 64\nLogLevel DEBUG1\n")
        host_pub = (self.dir / "host_key.pub").read_text().split()
        known = self.dir / "known_hosts"
        known.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.client_config.write_text(
            f"Host *\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n"
            f"  IdentityFile {self.dir / 'user_key'}\n  IdentitiesOnly yes\n"
            "  IdentityAgent none\n")
        Path("/run/sshd").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(config), "-E",
                                      str(self.log)], stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.log.exists() and "Server listening" in self.log.read_text(errors="replace"):
                log(f"sshd on 127.0.0.1:{self.port}")
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise Failure(f"sshd did not start: {self.log.read_text(errors='replace')[-1500:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.shared:
            shutil.rmtree(self.dir, ignore_errors=True)


def ssh_masters(port: int) -> list[str]:
    """The panel's ssh masters for an sshd port (their command line has
    ControlPersist=no and the port), from /proc."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        if b"ControlPersist=no" in argv and str(port).encode() in argv:
            found.append(pid)
    return found


SSH_USERS = {"phdeploy": ["docker"], "phnodocker": [], "phpanel": []}


def make_users() -> dict:
    """The e2e's local users: phdeploy logs in over ssh and is in the docker
    group (the remote side), phnodocker logs in and is not, phpanel runs
    pilothousectl and may not open the local engine's socket."""
    import pwd
    users = {}
    for name, groups in SSH_USERS.items():
        try:
            pwd.getpwnam(name)
        except KeyError:
            cmd = ["useradd", "--create-home", "--shell", "/bin/sh"]
            if groups:
                cmd += ["--groups", ",".join(groups)]
            run(cmd + [name])
        # "*": no password, but not locked ("!"), which sshd refuses even for keys.
        run(["usermod", "--password", "*", name])
        users[name] = pwd.getpwnam(name)
    return users


def remove_users() -> None:
    for name in SSH_USERS:
        run(["userdel", "--remove", name], check=False)


def container_states(engine: Engine, project: str) -> dict[str, str]:
    """container id -> its StartedAt, for "nothing changed"."""
    ids = out([engine.docker, "ps", "-aq", "--no-trunc", "--filter",
               f"label=com.docker.compose.project={project}"]).split()
    states = {}
    for cid in ids:
        states[cid] = out([engine.docker, "inspect", "--format", "{{.State.StartedAt}}", cid])
    return states


def check_ssh_stack(engine: Engine, ctl: str, workdir: Path, numbers: dict[str, str]) -> None:
    """A staging-style environment, docker.host ssh://phdeploy@127.0.0.1:PORT,
    through the panel's own SSH connection to a real sshd, with Debian's
    compose v1 and no paramiko, driven by pilothousectl running as phpanel, a
    user who may not open the local engine's socket (so a call that bypassed
    the connection would fail): check-connection, up until healthy, status
    (connected), health of an internal endpoint and the stack's unpublished
    database through forwards, logs, restart, deploy and rollback, a SIGKILLed
    follower leaving no ssh behind, down. No child is ever given an ssh://
    DOCKER_HOST (sampled from /proc), and sshd's log shows the forwards.
    Then each failure (wrong port, unknown or changed host key, refused key,
    a login without docker access) is a specific message within 5 s that
    changes nothing."""
    users = make_users()
    panel = users["phpanel"]
    sshd = Sshd(workdir, shared=True)
    sshd.start()
    # The panel user's own files: its key, known_hosts, ssh_config, the
    # environments, pilothousectl and compose.yaml (its home, not the checkout).
    home = Path(panel.pw_dir) / "e2e"
    shutil.rmtree(home, ignore_errors=True)
    for sub in ("", "run", "data", "config", "cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(sshd.dir / "user_key", home / "id_ed25519")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "other_key")])
    shutil.copy(sshd.dir / "known_hosts", home / "known_hosts")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "imposter_host_key")])
    imposter = (home / "imposter_host_key.pub").read_text().split()
    (home / "changed_known_hosts").write_text(
        f"[127.0.0.1]:{sshd.port} {imposter[0]} {imposter[1]}\n")
    (home / "empty_known_hosts").write_text("")

    def ssh_config(name: str, known: str, key: str) -> Path:
        path = home / name
        path.write_text(f"Host *\n  UserKnownHostsFile {home / known}\n"
                        f"  GlobalKnownHostsFile /dev/null\n  IdentityFile {home / key}\n"
                        "  IdentitiesOnly yes\n  IdentityAgent none\n")
        return path
    good_config = ssh_config("ssh_config", "known_hosts", "id_ed25519")
    shutil.copy(ctl, home / "pilothousectl")
    shutil.copy(REPO / "compose.yaml", home / "compose.yaml")
    # The proxy's configuration, bind-mounted from next to compose.yaml (the
    # engine is on this same host, so the path is the same for it).
    (home / "docker/haproxy").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "docker/haproxy/haproxy.cfg", home / "docker/haproxy/haproxy.cfg")
    ctl_copy = str(home / "pilothousectl")

    project = f"phssh{os.getpid()}{secrets.token_hex(3)}"
    stack = Stack(engine, project, free_port(), 10)
    config = home / "ssh-envs.json"

    def write_envs(host: str) -> None:
        config.write_text(json.dumps({"version": 1, "environments": [{
            "name": "sshstage", "kind": "compose",
            "docker": {"host": host},
            "compose": {"files": [str(home / "compose.yaml")], "project": project},
            # As the remote host sees it: through the connection, not the published port.
            "services": [{"name": "api", "health": [{
                "url": f"http://127.0.0.1:{stack.port}/readyz", "intervalSeconds": 1,
                "timeoutSeconds": 2, "internal": True}]},
                {"name": "worker"}, {"name": "postgres"}, {"name": "redis"}],
            # The stack's unpublished PostgreSQL, at its container's address on the remote host.
            "database": {"compose": {"service": "postgres"}},
            # Tags from the engine: deploy and roll back with no registry.
            "image": {"repository": DECKHAND_IMAGE, "services": ["api", "worker"],
                      "source": "engine"},
            # As the built-in staging ships: the gate asks each new container
            # directly, through a forward of the connection to its address.
            "deploy": {"healthWindowSeconds": 3, "timeoutSeconds": 120,
                       "strategy": "start-first", "containerPort": 8000},
        }]}))
    good_host = f"ssh://phdeploy@127.0.0.1:{sshd.port}"
    write_envs(good_host)
    run(["chown", "-R", f"{panel.pw_uid}:{panel.pw_gid}", str(home)])
    for key in ("id_ed25519", "other_key"):
        (home / key).chmod(0o600)

    mark = secrets.token_hex(8)
    env = dict(stack.env)
    for name in ("COMPOSE_PROJECT_NAME", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG"):
        env.pop(name, None)
    env.update({"HOME": panel.pw_dir, "USER": "phpanel", "LOGNAME": "phpanel",
                "PILOTHOUSE_SSH_CONFIG": str(good_config),
                "PILOTHOUSE_E2E_SSH_MARK": mark,
                "XDG_RUNTIME_DIR": str(home / "run"),
                "XDG_DATA_HOME": str(home / "data"),
                "XDG_CONFIG_HOME": str(home / "config"),
                "XDG_CACHE_HOME": str(home / "cache")})
    (home / "run").chmod(0o700)
    seen_hosts: set[str] = set()
    sampling = True

    def sample() -> None:
        needle = f"PILOTHOUSE_E2E_SSH_MARK={mark}".encode()
        while sampling:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/environ", "rb") as f:
                        items = f.read().split(b"\0")
                except OSError:
                    continue
                if needle in items:
                    for item in items:
                        if item.startswith(b"DOCKER_HOST="):
                            seen_hosts.add(item[12:].decode(errors="replace"))
            time.sleep(0.05)

    import threading
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def as_panel(args: list[str], timeout: float = 300, extra: dict | None = None,
                 **kw) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(args, env={**env, **(extra or {})}, timeout=timeout,
                                  capture_output=True, user=panel.pw_uid, group=panel.pw_gid,
                                  extra_groups=[], cwd=str(home), **kw)
        except subprocess.TimeoutExpired as exc:
            raise Failure(f"{' '.join(args[:4])} ... hung for {timeout:.0f} s") from exc

    def ctl_run(*args: str, timeout: float = 300, extra: dict | None = None
                ) -> subprocess.CompletedProcess:
        return as_panel([ctl_copy, "--config", str(config), "--env", "sshstage", *args],
                        timeout=timeout, extra=extra)

    def said(proc: subprocess.CompletedProcess) -> str:
        return (proc.stdout + proc.stderr).decode(errors="replace")

    try:
        # The panel's user cannot reach the local engine: only the connection can.
        proc = as_panel([engine.docker, "-H", "unix:///var/run/docker.sock", "version"],
                        timeout=60)
        check(proc.returncode != 0 and "permission denied" in said(proc).lower(),
              "phpanel may not open the local engine's socket (a bypass would fail)")

        t = time.monotonic()
        proc = ctl_run("check-connection", "--json", timeout=60)
        took = time.monotonic() - t
        report = json.loads(proc.stdout or b"{}")
        stages = {s["stage"]: s for s in report.get("steps", [])}
        check(proc.returncode == 0 and report.get("ok") is True and
              all(s["result"] == "ok" for s in stages.values()) and len(stages) == 5,
              f"check-connection: TCP, host key, login, Docker socket, compose all ok in "
              f"{took:.1f} s ({[(k, v['result']) for k, v in stages.items()]} {said(proc)[-600:]})")
        check("phdeploy" in stages["login"]["detail"] and
              "through the connection" in stages["Docker socket"]["detail"] and
              "docker-compose" in stages["compose"]["detail"],
              f"each stage says what it found ({stages['login']['detail']}; "
              f"{stages['Docker socket']['detail']}; {stages['compose']['detail']})")
        numbers["ssh: check-connection"] = f"{took:.1f} s"

        stack.started = True
        timings = {}
        t = time.monotonic()
        proc = ctl_run("up", "--wait", "240", timeout=400)
        timings["up"] = time.monotonic() - t
        check(proc.returncode == 0, f"up over ssh works, as phpanel ({said(proc)[-1500:]})")
        t = time.monotonic()
        status = json.loads(ctl_run("status", "--json").stdout or b"{}")
        timings["status"] = time.monotonic() - t
        conn = status.get("connection", {})
        check(status.get("health") == "healthy" and conn.get("state") == "connected" and
              conn.get("target") == f"phdeploy@127.0.0.1:{sshd.port}",
              f"status: healthy, through the SSH connection ({status.get('health')}, {conn})")
        health = json.loads(ctl_run("health", "--json").stdout or b"{}")
        urls = [e.get("url", "") for e in health.get("endpoints", [])]
        check(len(urls) == 1 and urls[0].startswith("http://127.0.0.1:") and
              f":{stack.port}/" not in urls[0] and
              health["endpoints"][0].get("status") in ("pass", "warn"),
              f"the internal endpoint answers through a forward of the connection ({health})")
        db = json.loads(ctl_run("db", "--json").stdout or b"{}")
        check(db.get("reachable") is True and db.get("version", "").startswith("15") and
              db.get("migration_version", -1) >= 1,
              f"the stack's unpublished database through the connection ({db.get('error') or db.get('version')})")
        check(stack.env["POSTGRES_PASSWORD"] not in json.dumps(db), "without showing its password")
        t = time.monotonic()
        proc = ctl_run("logs", "api", "--tail", "5")
        timings["logs --tail 5"] = time.monotonic() - t
        check(proc.returncode == 0 and len(proc.stdout.decode().splitlines()) >= 1,
              "logs --tail 5 over ssh")
        t = time.monotonic()
        proc = ctl_run("restart", "api", "--wait", "120")
        timings["restart api"] = time.monotonic() - t
        check(proc.returncode == 0, f"restart api over ssh ({said(proc)[-600:]})")

        # Deploy and roll back over the connection: a second tag of the image.
        second = f"sha-{secrets.token_hex(20)}"
        run([engine.docker, "tag", f"{DECKHAND_IMAGE}:{DECKHAND_TAG}", f"{DECKHAND_IMAGE}:{second}"])
        try:
            proc = ctl_run("tags", "--json", timeout=120)
            tags = json.loads(proc.stdout or b"{}").get("tags", [])
            check(second in tags, f"tags over ssh lists the engine's {second[:12]}... "
                  f"({tags[:4]} {said(proc)[-600:]})")
            proc = ctl_run("deploy", "--tag", second, timeout=600)
            check(proc.returncode == 0, f"deploy {second[:12]}... over ssh passes its gate "
                  f"({said(proc)[-600:]})")
            ids = stack.containers()
            image = stack.inspect(ids["api"])["Config"]["Image"]
            check(image == f"{DECKHAND_IMAGE}:{second}", f"api runs {image}")
            proc = ctl_run("rollback", "--to", DECKHAND_TAG, timeout=600)
            check(proc.returncode == 0, f"rollback over ssh ({said(proc)[-600:]})")
            image = stack.inspect(stack.containers()["api"])["Config"]["Image"]
            check(image == f"{DECKHAND_IMAGE}:{DECKHAND_TAG}", f"api runs {image} again")
            history = json.loads(ctl_run("history", "--json", timeout=120).stdout or b"{}")
            outcomes = [(d.get("outcome"), d.get("strategy"))
                        for d in history.get("deployments", [])][:2]
            check(outcomes == [("succeeded", "start-first")] * 2,
                  f"the history says so, start-first, each gated on the new container "
                  f"through a forward: {outcomes}")
        finally:
            run([engine.docker, "rmi", f"{DECKHAND_IMAGE}:{second}"], check=False)

        # Failures: each a specific message within 5 s, nothing hung, nothing changed.
        before = container_states(engine, project)
        cases = [
            ("a wrong port", f"ssh://phdeploy@127.0.0.1:{free_port()}", good_config,
             "refused the connection", "TCP"),
            ("an unknown host key", good_host,
             ssh_config("unknown_cfg", "empty_known_hosts", "id_ed25519"), "is not known",
             "host key"),
            ("a changed host key", good_host,
             ssh_config("changed_cfg", "changed_known_hosts", "id_ed25519"), "has CHANGED",
             "host key"),
            ("a refused key", good_host,
             ssh_config("refused_cfg", "known_hosts", "other_key"),
             'refused the login of user "phdeploy"', "login"),
            ("a login without docker access", f"ssh://phnodocker@127.0.0.1:{sshd.port}",
             good_config, 'user "phnodocker" may not use the Docker socket', "Docker socket"),
        ]
        run(["chown", "-R", f"{panel.pw_uid}:{panel.pw_gid}", str(home)])
        for label, host, cfg, expect, stage in cases:
            write_envs(host)
            for command in (("up",), ("check-connection", "--json")):
                t = time.monotonic()
                proc = ctl_run(*command, timeout=30, extra={"PILOTHOUSE_SSH_CONFIG": str(cfg)})
                took = time.monotonic() - t
                text = said(proc)
                check(proc.returncode != 0 and expect in text and took < 5.0,
                      f"{label}: {command[0]} says \"{expect}\" in {took:.1f} s "
                      f"({text.strip().splitlines()[-1][:200] if text.strip() else ''})")
            # The check names the stage that failed, and the one before it passed.
            steps = json.loads(proc.stdout or b"{}").get("steps", [])
            failed = [s["stage"] for s in steps if s["result"] == "failed"]
            check(failed == [stage], f"{label}: check-connection fails at {stage} ({failed})")
            check("systemctl start docker" not in text or "no Docker socket" in text,
                  f"{label}: not taken for a stopped engine")
        write_envs(good_host)
        check(container_states(engine, project) == before,
              "the failed attempts changed no container")
        check(not ssh_masters(sshd.port), "and left no ssh master behind")

        # SIGKILL of pilothousectl while it follows logs over the connection:
        # its ssh master ends with it (the children's reaper).
        follower = subprocess.Popen([ctl_copy, "--config", str(config), "--env", "sshstage",
                                     "logs", "api", "-f"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, user=panel.pw_uid,
                                    group=panel.pw_gid, extra_groups=[], cwd=str(home))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not ssh_masters(sshd.port):
            time.sleep(0.1)
        check(bool(ssh_masters(sshd.port)), "pilothousectl logs -f holds an ssh master")
        follower.kill()
        follower.wait(timeout=10)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and ssh_masters(sshd.port):
            time.sleep(0.1)
        check(not ssh_masters(sshd.port), "SIGKILLed, it leaves no ssh process behind")
        t = time.monotonic()
        proc = ctl_run("down")
        timings["down"] = time.monotonic() - t
        check(proc.returncode == 0, f"down over ssh ({said(proc)[-600:]})")
        left = stack.leftovers()
        check(not left.get("containers") and not left.get("networks"),
              f"no container or network of the project is left, its volumes are ({left})")
        sampling = False
        sampler.join(timeout=5)
        check(bool(seen_hosts) and all(h.startswith("unix://") for h in seen_hosts) and
              not any(h.startswith("ssh://") for h in seen_hosts),
              f"no child was given an ssh:// DOCKER_HOST ({sorted(seen_hosts)})")
        sshd_log = sshd.log.read_text(errors="replace")
        forwards = sshd_log.count("/var/run/docker.sock")
        check(forwards >= 5, f"sshd's log shows the forwards of the engine's socket ({forwards})")
        tcp = sshd_log.count(f"port {stack.port}")
        check(tcp >= 1 and "5432" in sshd_log,
              f"and those to the endpoint's port and the database ({tcp})")
        left = ssh_masters(sshd.port)
        check(not left, "no ssh master is left after pilothousectl exits")
        for name, secs in timings.items():
            numbers[f"ssh: {name}"] = f"{secs:.1f} s"
    finally:
        sampling = False
        if stack.started:
            stack.down()
        sshd.stop()
        shutil.rmtree(home, ignore_errors=True)
        remove_users()


# --------------------------------------------------------------------------- main

def run_core_test(engine: Engine, binary: str, numbers: dict[str, str]) -> None:
    """The panel's core (tests/e2e/tst_compose.cpp) on this engine: its own
    compose project, driven by the C++ drivers and watched through the engine."""
    project = f"phcore{os.getpid()}{secrets.token_hex(3)}"
    stack = Stack(engine, project, free_port(), 10)
    env = dict(stack.env)
    env.pop("COMPOSE_PROJECT_NAME", None)
    env.update({"PILOTHOUSE_E2E_PROJECT": project,
                "PILOTHOUSE_E2E_API_PORT": str(stack.port),
                "PILOTHOUSE_E2E_COMPOSE_FILE": str(REPO / "compose.yaml"),
                "QT_QPA_PLATFORM": "offscreen"})
    restarts = []

    def restart_engine(_signum, _frame):
        # The core test asks for a daemon restart (SIGUSR1) to see its watcher
        # lose the engine and reconnect. Only an engine this run started can be.
        log("restarting dockerd for the core test")
        t = time.monotonic()
        engine.stop_dockerd()
        engine.start_dockerd()
        restarts.append(time.monotonic() - t)
    if engine.dockerd is not None:
        env["PILOTHOUSE_E2E_HARNESS_PID"] = str(os.getpid())
        signal.signal(signal.SIGUSR1, restart_engine)
    log(f"core test {binary} on project {project}")
    t0 = time.monotonic()
    try:
        proc = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=1200)
        text = proc.stdout.decode(errors="replace")
        print(text, flush=True)
        m = re.search(r"compose up to all healthy through the core: ([0-9.]+) s", text)
        if m:
            numbers["compose up to healthy (core)"] = f"{m.group(1)} s"
        m = re.search(r"BENCH kill_to_model_ms min=(\d+) median=(\d+) max=(\d+)", text)
        if m:
            numbers["docker kill -> model"] = f"median {m.group(2)} ms (min {m.group(1)}, max {m.group(3)})"
        if restarts:
            numbers["dockerd restart (core test)"] = f"{restarts[0]:.1f} s"
        if proc.returncode != 0:
            raise Failure(f"core test failed (exit {proc.returncode})")
        numbers["core e2e"] = f"{time.monotonic() - t0:.1f} s"
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        stack.down()


def run_swarm_test(engine: Engine, binary: str, numbers: dict[str, str]) -> None:
    """Swarm environments (tests/e2e/tst_swarm.cpp): the test makes this engine a
    single-node swarm on loopback, deploys compose.stack.yaml through the
    panel's core and leaves the swarm afterwards (docker_gwbridge removed)."""
    stack_name = f"phsw{os.getpid()}{secrets.token_hex(3)}"
    port = free_port()
    env = dict(Stack(engine, stack_name, port, 10).env)
    env.pop("COMPOSE_PROJECT_NAME", None)
    env.update({"PILOTHOUSE_E2E_SWARM_STACK": stack_name,
                "PILOTHOUSE_E2E_API_PORT": str(port),
                "PILOTHOUSE_E2E_REPO": str(REPO),
                "QT_QPA_PLATFORM": "offscreen"})
    env.setdefault("PILOTHOUSE_SCREENSHOT_DIR", str(engine.workdir / "screenshots"))
    log(f"swarm test {binary} on stack {stack_name}, proxy on port {port}")
    t0 = time.monotonic()
    try:
        proc = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=1200)
    except subprocess.TimeoutExpired as exc:
        raise Failure("swarm test took over 20 minutes") from exc
    finally:
        # Whatever happened: the engine out of the swarm it was not in.
        state = out([engine.docker, "info", "--format", "{{.Swarm.LocalNodeState}}"],
                    check=False).strip()
        if state == "active" and os.environ.get("PILOTHOUSE_E2E_KEEP_SWARM") is None:
            run([engine.docker, "stack", "rm", stack_name], check=False, timeout=120)
    text = proc.stdout.decode(errors="replace")
    print(text, flush=True)
    m = re.search(r"BENCH swarm_up_healthy_ms (\d+)", text)
    if m:
        numbers["swarm deploy to healthy"] = f"{int(m.group(1)) / 1000:.1f} s"
    m = re.search(r"BENCH swarm_kill_to_model_ms min=(\d+) median=(\d+) max=(\d+)", text)
    if m:
        numbers["swarm kill -> model"] = f"median {m.group(2)} ms (min {m.group(1)}, max {m.group(3)})"
    if proc.returncode != 0:
        raise Failure(f"swarm test failed (exit {proc.returncode})")
    numbers["swarm e2e"] = f"{time.monotonic() - t0:.1f} s"


class Clone:
    """A fresh clone of this repository in the work dir, and the built-in
    local-compose pointed at it (a --config file): its own project name, a
    free API port, a short deploy gate. Only what a user would set is set in
    the environment: the base images (no public registry here) and the port."""

    def __init__(self, engine: Engine, workdir: Path, name: str):
        self.dir = workdir / name
        run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(self.dir)], timeout=120)
        self.project = f"ph{name}{os.getpid()}{secrets.token_hex(3)}"
        self.port = free_port()
        builtin = json.loads((REPO / "resources/environments/environments.json").read_text())
        env_def = next(e for e in builtin["environments"] if e["name"] == "local-compose")
        env_def["compose"]["files"] = [str(self.dir / f) for f in env_def["compose"]["files"]]
        env_def["compose"]["project"] = self.project
        # A short gate, so a broken build is reverted in seconds, not minutes;
        # the rest (start-first) as it ships.
        env_def.setdefault("deploy", {}).update({"healthWindowSeconds": 5, "timeoutSeconds": 90})
        for svc in env_def.get("services", []):
            for h in svc.get("health", []):
                h["url"] = h["url"].replace(":8000/", f":{self.port}/")
        self.config = workdir / f"{name}-envs.json"
        self.config.write_text(json.dumps({"version": 1, "environments": [env_def]}))
        self.env = dict(os.environ)
        for key in ("DECKHAND_IMAGE", "DECKHAND_TAG", "POSTGRES_PASSWORD", "REDIS_PASSWORD",
                    "COMPOSE_PROJECT_NAME", "COMPOSE_FILE"):
            self.env.pop(key, None)
        home = workdir / f"{name}-home"
        self.env.update({"POSTGRES_IMAGE": POSTGRES_IMAGE, "REDIS_IMAGE": REDIS_IMAGE,
                         "PROXY_IMAGE": PROXY_IMAGE,
                         "API_PORT": str(self.port), "XDG_DATA_HOME": str(home / "data"),
                         "XDG_CONFIG_HOME": str(home / "config"),
                         "XDG_CACHE_HOME": str(home / "cache")})
        self.compose = engine.compose + ["--project-name", self.project]
        for f in env_def["compose"]["files"]:
            self.compose += ["--file", f]
        self.engine = engine

    def down(self) -> None:
        run(self.compose + ["down", "--volumes", "--remove-orphans", "--timeout", "20"],
            env=self.env, timeout=180, check=False)


def local_tags(engine: Engine) -> set[str]:
    return set(out([engine.docker, "image", "ls", "--format", "{{.Tag}}",
                    "ghcr.io/pilothouse/deckhand"], check=False).split())


def check_gui_clone(engine: Engine, binary: str, workdir: Path, numbers: dict[str, str]) -> None:
    """The same from the window (tests/e2e/tst_gui_clone.cpp), on a clone of
    its own: Start, the Database page, Build, deploy, one-click rollback."""
    clone = Clone(engine, workdir, "guiclone")
    tags_before = local_tags(engine)
    env = dict(clone.env)
    env.update({"PILOTHOUSE_E2E_CLONE": str(clone.dir),
                "PILOTHOUSE_E2E_CLONE_CONFIG": str(clone.config),
                "QT_QPA_PLATFORM": "offscreen"})
    log(f"window test {binary} on a fresh clone, project {clone.project}")
    t0 = time.monotonic()
    try:
        proc = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=1800)
        text = proc.stdout.decode(errors="replace")
        print(text, flush=True)
        if proc.returncode != 0:
            raise Failure(f"the window's fresh-clone test failed (exit {proc.returncode})")
        numbers["window fresh-clone e2e"] = f"{time.monotonic() - t0:.1f} s"
    finally:
        clone.down()
        for t in local_tags(engine) - tags_before:
            run([engine.docker, "image", "rm", f"ghcr.io/pilothouse/deckhand:{t}"], check=False)


def check_fresh_clone(engine: Engine, ctl: str, workdir: Path, numbers: dict[str, str],
                      gui_test: str | None = None) -> None:
    """A fresh clone of this repository, as a new user has it: no .env, no
    deckhand image for the tag compose.yaml names. `pilothousectl up` of the
    built-in local-compose (its file pointed at the clone, as --config allows)
    makes .env from .env.example with random passwords, builds the image from
    the clone and brings the stack to healthy. Then the window does the same
    on a clone of its own (reusing the first build of this commit)."""
    c = Clone(engine, workdir, "clone")
    clone, project, port, config, env, compose = c.dir, c.project, c.port, c.config, c.env, c.compose
    check(not (clone / ".env").exists(), "a fresh clone has no .env")
    # The image compose.yaml names by default, as a new user's engine lacks it.
    default_image = "ghcr.io/pilothouse/deckhand:staging"
    run([engine.docker, "image", "rm", default_image], check=False)

    def local_tags_() -> set[str]:
        return local_tags(engine)

    # No build of this commit either (a run before this one made it).
    head = out(["git", "-C", str(clone), "rev-parse", "HEAD"])
    for t in local_tags_():
        if t.startswith(f"sha-{head}"):
            run([engine.docker, "image", "rm", f"ghcr.io/pilothouse/deckhand:{t}"], check=False)
    tags_before = local_tags_()
    # Test connection on the fresh clone: the engine and compose are fine, and
    # the missing .env is Start's to make, not a failure; nothing is written.
    proc = run([ctl, "--config", str(config), "--env", "local-compose", "check-connection",
                "--json"], env=env, timeout=120, check=False)
    report = json.loads(proc.stdout or b"{}")
    compose_step = next((s for s in report.get("steps", []) if s["stage"] == "compose"), {})
    check(proc.returncode == 0 and report.get("ok") is True and
          "the first Start makes it from .env.example" in compose_step.get("detail", "") and
          not (clone / ".env").exists(),
          f"check-connection on the fresh clone passes and leaves .env to Start ({compose_step})")
    t0 = time.monotonic()
    try:
        proc = run([ctl, "--config", str(config), "--env", "local-compose", "up", "--wait", "240"],
                   env=env, timeout=900, check=False)
        text = (proc.stdout + proc.stderr).decode(errors="replace")
        if proc.returncode != 0:
            raise Failure(f"pilothousectl up on a fresh clone exited {proc.returncode}:\n{text[-4000:]}")
        secret_env = clone / ".env"
        check(secret_env.exists(), "Start made .env in the clone")
        check(oct(secret_env.stat().st_mode & 0o777) == "0o600", "its mode is 0600")
        values = dict(line.split("=", 1) for line in secret_env.read_text().splitlines()
                      if "=" in line and not line.startswith("#"))
        check(all(len(values.get(k, "")) >= 32 and "change-me" not in values.get(k, "")
                  for k in ("POSTGRES_PASSWORD", "REDIS_PASSWORD")), "with strong random passwords")
        check("Created" in text and ".env from .env.example" in text and
              values["POSTGRES_PASSWORD"] not in text, "said so in one line, without the values")
        check(run(["git", "-C", str(clone), "status", "--porcelain"]).stdout.strip() == b"",
              "and git ignores it")
        numbers["fresh clone to healthy"] = f"{time.monotonic() - t0:.1f} s"
        status = json.loads(out([ctl, "--config", str(config), "--env", "local-compose", "status",
                                 "--json"], env=env, timeout=120, check=False))
        check(status.get("health") == "healthy", f"the clone's stack is healthy ({status.get('health')})")
        # Its PostgreSQL is not published: the panel finds it through the engine
        # and logs in with the stack's own (generated) password.
        db = json.loads(out([ctl, "--config", str(config), "--env", "local-compose", "db",
                             "--json"], env=env, timeout=120, check=False) or "{}")
        check(db.get("reachable") is True and db.get("version", "").startswith("15"),
              f"its database is reachable through the engine ({db.get('error') or db.get('version')})")
        check(db.get("migration_version", -1) >= 1,
              f"and shows the migration version ({db.get('migration_version')})")
        check(values["POSTGRES_PASSWORD"] not in json.dumps(db), "without showing the password")
        check_local_builds(engine, ctl, config, env, clone, port, numbers)
        c.down()
        if gui_test:
            # The window's clone starts on the build of this commit, with no
            # other build of the clones on the engine.
            for t in local_tags_() - tags_before - {f"sha-{head}"}:
                run([engine.docker, "image", "rm", f"ghcr.io/pilothouse/deckhand:{t}"], check=False)
            check_gui_clone(engine, gui_test, workdir, numbers)
    finally:
        c.down()
        run([engine.docker, "image", "rm", default_image], check=False)
        for t in local_tags_() - tags_before:
            run([engine.docker, "image", "rm", f"ghcr.io/pilothouse/deckhand:{t}"], check=False)


def check_local_builds(engine: Engine, ctl: str, config: Path, env: dict, clone: Path, port: int,
                       numbers: dict[str, str]) -> None:
    """Every local build is a rollback point, with no registry anywhere: the
    start built sha-<commit> of the clone; a second commit built with
    `pilothousectl build` is listed first by `tags`; deploy it, roll back to
    the first build in one call, and a broken build (uncommitted change:
    its entry point fails) is reverted by itself."""
    def ctl_run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return run([ctl, "--config", str(config), "--env", "local-compose", *args], env=env,
                   timeout=timeout, check=False)

    def version() -> dict:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/version")
            return json.loads(conn.getresponse().read() or b"{}")
        except (OSError, ValueError):
            return {}

    def tags() -> list[str]:
        proc = ctl_run("tags", "--json", timeout=120)
        return json.loads(proc.stdout or b"{}").get("tags", [])

    def git_clone(*args: str) -> str:
        return out(["git", "-C", str(clone), "-c", "user.name=Pilothouse E2E", "-c",
                    "user.email=e2e@example.com", *args])

    first = git_clone("rev-parse", "HEAD")
    tag_a = f"sha-{first}"
    check(tag_a in tags(), f"the start's build {tag_a[:16]}... is a tag of local-compose")
    check(version().get("git_sha") == first, "and runs, reporting its commit on /version")

    # A second commit, built by hand.
    readme = clone / "README.md"
    readme.write_text(readme.read_text() + "\nA line from the e2e's second commit.\n")
    git_clone("commit", "--quiet", "--all", "--message", "e2e: a second commit")
    second = git_clone("rev-parse", "HEAD")
    t0 = time.monotonic()
    proc = ctl_run("build", "--json", timeout=1800)
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    if proc.returncode != 0:
        raise Failure(f"pilothousectl build exited {proc.returncode}:\n{text[-3000:]}")
    numbers["local build of a new commit"] = f"{time.monotonic() - t0:.1f} s"
    made = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    tag_b = f"sha-{second}"
    check(made.get("tag") == tag_b and made.get("dirty") is False and
          made.get("image_id", "").startswith("sha256:"),
          f"pilothousectl build tags the commit: {made.get('tag', '')[:16]}..., its image id")
    check("Step " in text or "#" in text, "and shows the build's steps as it goes")
    listed = tags()
    check(listed[:2] == [tag_b, tag_a], f"tags lists the new build first, then the first ({listed[:3]})")

    proc = ctl_run("deploy", "--tag", tag_b, timeout=600)
    check(proc.returncode == 0, f"deploy {tag_b[:16]}... passes its health gate "
          f"({(proc.stdout + proc.stderr).decode(errors='replace')[-600:]})")
    check(version().get("git_sha") == second, "and /version now reports the second commit")
    proc = ctl_run("rollback", timeout=600)
    check(proc.returncode == 0, "rollback in one call "
          f"({(proc.stdout + proc.stderr).decode(errors='replace')[-600:]})")
    check(version().get("git_sha") == first, "brings the first build back")

    # A broken build: an uncommitted change makes deckhand's entry point fail.
    dockerfile = clone / "docker/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() +
                          '\nENTRYPOINT ["/usr/local/bin/deckhand", "no-such-command"]\n')
    proc = ctl_run("build", "--json", timeout=1800)
    check(proc.returncode == 0, "a build of uncommitted changes works "
          f"({(proc.stdout + proc.stderr).decode(errors='replace')[-600:]})")
    broken = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    check(broken.get("tag", "").startswith(f"sha-{second}-dirty-") and broken.get("dirty") is True,
          f"and is tagged sha-<commit>-dirty-<changes> ({broken.get('tag')})")
    check(tag_b in tags(), "without overwriting the clean build of that commit")
    proc = ctl_run("deploy", "--tag", broken["tag"], timeout=600)
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    check(proc.returncode != 0 and "revert" in text.lower(),
          f"deploying the broken build fails its gate and is reverted ({text[-400:]})")
    check(version().get("git_sha") == first, "the first build runs again")
    status = json.loads(ctl_run("status", "--json", timeout=120).stdout or b"{}")
    check(status.get("health") == "healthy", f"and the stack is healthy ({status.get('health')})")
    history = json.loads(ctl_run("history", "--json", timeout=120).stdout or b"{}")
    outcomes = [d.get("outcome") for d in history.get("deployments", [])][:3]
    check(outcomes == ["reverted", "succeeded", "succeeded"],
          f"the history says so: {outcomes}")
    strategies = {d.get("strategy") for d in history.get("deployments", [])[:3]}
    check(strategies == {"start-first"},
          f"each with the strategy local-compose ships with: {strategies}")
    git_clone("checkout", "--", "docker/Dockerfile")


class Registry:
    """Debian's docker-registry (distribution v2) on a loopback port, storage in
    the work dir. The engine pushes to and pulls from 127.0.0.0/8 over plain
    HTTP without any daemon configuration."""

    def __init__(self, workdir: Path):
        self.workdir = workdir / "registry"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        if not Path(binary).exists():
            raise Failure("docker-registry is not installed (scripts/setup.sh test installs it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "config.yml"
        cfg.write_text("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                       f"    rootdirectory: {self.workdir / 'data'}\n"
                       "  delete:\n    enabled: true\n"
                       f"http:\n  addr: {self.host}\n")
        logf = open(self.workdir / "registry.log", "wb")
        self.proc = subprocess.Popen([binary, "serve", str(cfg)], stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/v2/")
                if conn.getresponse().status == 200:
                    log(f"registry on {self.host}")
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise Failure(f"docker-registry exited {self.proc.returncode}")
            time.sleep(0.2)
        raise Failure("docker-registry did not answer within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def fake_commit(seed: str) -> str:
    """A commit-like id for builds that share this checkout's commit."""
    import hashlib
    return hashlib.sha1(seed.encode()).hexdigest()


def run_deploy_test(engine: Engine, binary: str, gui_binary: str | None, base_ref: str,
                    meta: dict, numbers: dict[str, str], rollout_binary: str | None = None) -> None:
    """Deployments end to end (tests/e2e/tst_deploy.cpp): a loopback registry with
    three deckhand builds of this repository, A and B good and C broken (its
    readiness never passes); the core deploys, rolls back and reverts them
    (tst_deploy), then the window does the same through its buttons (tst_gui_deploy)."""
    builds = REPO / "tests/e2e/builds"
    a_sha = meta["GIT_SHA"]
    b_sha = fake_commit("good-after-" + a_sha)
    c_sha = fake_commit("broken-after-" + a_sha)
    sources = {
        f"sha-{a_sha}": base_ref,
        f"sha-{b_sha}": f"{DECKHAND_IMAGE}:good-{DECKHAND_TAG}",
        f"sha-{c_sha}": f"{DECKHAND_IMAGE}:broken-{DECKHAND_TAG}",
    }
    build(engine, sources[f"sha-{b_sha}"], builds, builds / "Dockerfile.good",
          {"BASE": base_ref, "GIT_SHA": b_sha})
    build(engine, sources[f"sha-{c_sha}"], builds, builds / "Dockerfile.broken",
          {"BASE": base_ref, "GIT_SHA": c_sha})
    registry = Registry(engine.workdir)
    try:
        registry.start()
        repo = f"{registry.host}/pilothouse/deckhand"
        t0 = time.monotonic()
        for tag, src in sources.items():
            run([engine.docker, "tag", src, f"{repo}:{tag}"])
            run([engine.docker, "push", f"{repo}:{tag}"], timeout=300)
            # Untagged again: the stack and the deployer pull from the registry.
            run([engine.docker, "image", "rm", f"{repo}:{tag}"], check=False)
        log(f"pushed {len(sources)} deckhand builds to {repo} in {time.monotonic() - t0:.1f} s")
        tags = {"A": f"sha-{a_sha}", "B": f"sha-{b_sha}", "C": f"sha-{c_sha}",
                "source A": sources[f"sha-{a_sha}"], "source B": sources[f"sha-{b_sha}"]}
        for name, test in (("rollout", rollout_binary), ("deploy", binary),
                           ("window", gui_binary)):
            if test:
                run_deploy_binary(engine, name, test, repo, tags, numbers)
    finally:
        registry.stop()


def run_deploy_binary(engine: Engine, name: str, binary: str, repo: str, tags: dict[str, str],
                      numbers: dict[str, str]) -> None:
    """One deployment test binary on a compose project of its own."""
    project = f"ph{name}{os.getpid()}{secrets.token_hex(3)}"
    stack = Stack(engine, project, free_port(), 10)
    try:
        env = dict(stack.env)
        for key in ("COMPOSE_PROJECT_NAME", "DECKHAND_IMAGE", "DECKHAND_TAG"):
            env.pop(key, None)  # the panel passes the image and the tag itself
        home = engine.workdir / f"{name}-home"
        env.update({
            "PILOTHOUSE_E2E_PROJECT": project,
            "PILOTHOUSE_E2E_API_PORT": str(stack.port),
            "PILOTHOUSE_E2E_COMPOSE_FILES": os.pathsep.join(
                [str(REPO / "compose.yaml"), str(REPO / "tests/e2e/fast-health.yaml")]),
            "PILOTHOUSE_E2E_REPOSITORY": repo,
            "PILOTHOUSE_E2E_TAG_A": tags["A"],
            "PILOTHOUSE_E2E_TAG_B": tags["B"],
            "PILOTHOUSE_E2E_TAG_C": tags["C"],
            # Local images of A and B, for a test that moves a tag in the registry.
            "PILOTHOUSE_E2E_SOURCE_A": tags["source A"],
            "PILOTHOUSE_E2E_SOURCE_B": tags["source B"],
            # The history, the deploy lock and the settings of this run only.
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "QT_QPA_PLATFORM": "offscreen",
        })
        env.setdefault("PILOTHOUSE_SCREENSHOT_DIR", str(engine.workdir / "screenshots"))
        log(f"{name} test {binary} on project {project}")
        t1 = time.monotonic()
        stack.started = True
        proc = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=1500)
        text = proc.stdout.decode(errors="replace")
        print(text, flush=True)
        for m in re.finditer(r"BENCH (\S+) ([0-9.]+) ms", text):
            numbers[m.group(1)] = f"{float(m.group(2)) / 1000:.1f} s"
        for m in re.finditer(r"BENCH_FAILED recreate (\d+) start-first (\d+)", text):
            numbers["failed requests, recreate"] = m.group(1)
            numbers["failed requests, start-first"] = m.group(2)
        if proc.returncode != 0:
            raise Failure(f"{name} test failed (exit {proc.returncode})")
        numbers[f"{name} e2e"] = f"{time.monotonic() - t1:.1f} s"
    finally:
        stack.down()
        stack.started = False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs in the temp dir")
    parser.add_argument("--core-test", default=None,
                        help="the tst_compose binary to run against the engine afterwards")
    parser.add_argument("--swarm-test", default=None,
                        help="tst_swarm binary (swarm environments on a single-node swarm)")
    parser.add_argument("--only-swarm", action="store_true",
                        help="build the images and run only the swarm test")
    parser.add_argument("--deploy-test", default=None,
                        help="the tst_deploy binary to run against the engine and a registry")
    parser.add_argument("--rollout-test", default=None,
                        help="the tst_rollout binary (start-first rollouts through the proxy)")
    parser.add_argument("--gui-deploy-test", default=None,
                        help="the tst_gui_deploy binary (the window's rollback flow)")
    parser.add_argument("--gui-clone-test", default=None,
                        help="the tst_gui_clone binary (the fresh clone, in the window)")
    parser.add_argument("--gui", default=None,
                        help="the pilothouse binary (its children end with it, issue 13)")
    parser.add_argument("--ctl", default=None,
                        help="the pilothousectl binary (its children end with it, issue 13)")
    parser.add_argument("--only-clone", action="store_true",
                        help="only the fresh clone and its local builds (needs --ctl)")
    parser.add_argument("--only-ssh", action="store_true",
                        help="only the staging-style environment over ssh (needs --ctl and "
                             "the deckhand image of an earlier run)")
    parser.add_argument("--only-core", action="store_true",
                        help="only the core's compose test (needs --core-test)")
    parser.add_argument("--only-deploy", action="store_true",
                        help="skip the stack checks and the core test (to iterate on deployments)")
    parser.add_argument("--target", default=None,
                        help="Dockerfile target to test (default: the final stage)")
    args = parser.parse_args()

    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="pilothouse-e2e-"))
    engine = Engine(workdir)
    stack: Stack | None = None
    numbers: dict[str, str] = {}
    outcome = "FAILED"

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    try:
        if not (REPO / "compose.yaml").exists() or not (REPO / "docker/Dockerfile").exists():
            raise Failure("compose.yaml or docker/Dockerfile missing")
        engine.ensure()
        make_base_image(engine)
        build_standins(engine)
        if args.only_ssh and args.ctl:
            check_ssh_stack(engine, args.ctl, workdir, numbers)
            outcome = "PASSED"
            return 0
        if args.only_clone and args.ctl:
            check_fresh_clone(engine, args.ctl, workdir, numbers, args.gui_clone_test)
            outcome = "PASSED"
            return 0
        meta = build_metadata()
        ref = f"{DECKHAND_IMAGE}:{DECKHAND_TAG}"
        # The intermediate stages get tags of their own: they stay the layer cache
        # for the next run, and the copies a changed source replaces are removed
        # instead of piling up as untagged images.
        build_s = 0.0
        for tag, target in ((f"{DECKHAND_IMAGE}-builder:{DECKHAND_TAG}", "builder"),
                            (f"{DECKHAND_IMAGE}-rootfs:{DECKHAND_TAG}", "rootfs"),
                            (ref, args.target)):
            build_s += build_replacing(engine, tag, REPO, REPO / "docker/Dockerfile", meta, target)
        size = image_size(engine, ref)
        numbers["deckhand image size"] = f"{size / 1e6:.1f} MB ({size} bytes)"
        numbers["deckhand image build"] = f"{build_s:.1f} s"

        if args.only_deploy:
            run_deploy_test(engine, args.deploy_test, args.gui_deploy_test, ref, meta, numbers,
                            args.rollout_test)
            outcome = "PASSED"
            return 0
        if args.only_swarm and args.swarm_test:
            # With --only-core too: both, compose first (tests/bench/bench_swarm.py).
            if args.only_core and args.core_test:
                run_core_test(engine, args.core_test, numbers)
            run_swarm_test(engine, args.swarm_test, numbers)
            outcome = "PASSED"
            return 0
        if args.only_core and args.core_test:
            run_core_test(engine, args.core_test, numbers)
            outcome = "PASSED"
            return 0
        project = f"phe2e{os.getpid()}{secrets.token_hex(3)}"
        grace = 10
        stack = Stack(engine, project, free_port(), grace)
        log(f"compose project {project}, api on 127.0.0.1:{stack.port}")
        t_up = time.monotonic()
        stack.started = True
        stack.compose("up", "--detach", "--no-build", timeout=300)
        stack.wait_healthy(("postgres", "redis", "api", "worker"), timeout=180)
        up_s = time.monotonic() - t_up
        numbers["compose up to all healthy"] = f"{up_s:.1f} s"
        log(f"all four services healthy {up_s:.1f} s after `up`")

        check_ready(stack)
        check_version(stack, meta)
        check_job(stack)
        check_confinement(stack)
        check_postgres_outage(stack, interval=2)
        if args.gui and args.ctl:
            check_children_end_with_owner(stack, args.gui, args.ctl, workdir)
        stop_s = check_sigterm(stack)
        numbers["docker stop api"] = f"{stop_s:.2f} s"
        check_down(stack)
        stack.started = False
        if args.ctl:
            check_ssh_stack(engine, args.ctl, workdir, numbers)
        if args.core_test:
            run_core_test(engine, args.core_test, numbers)
        if args.swarm_test:
            run_swarm_test(engine, args.swarm_test, numbers)
        if args.ctl:
            check_fresh_clone(engine, args.ctl, workdir, numbers, args.gui_clone_test)
        if args.deploy_test:
            run_deploy_test(engine, args.deploy_test, args.gui_deploy_test, ref, meta, numbers,
                            args.rollout_test)
        outcome = "PASSED"
        return 0
    except Skip as exc:
        if in_ci():
            log(f"FAIL: CI=true and the test cannot run: {exc}")
            return 1
        print(f"SKIP: {exc}", flush=True)
        outcome = "SKIPPED"
        return SKIP
    except (Failure, KeyboardInterrupt) as exc:
        log(f"FAIL: {exc}")
        if stack is not None and stack.started:
            for service in ("api", "worker", "postgres", "redis"):
                print(f"----- last log lines of {service} -----\n{stack.logs(service)}", flush=True)
        return 1
    finally:
        if stack is not None and stack.started:
            log("cleaning up the compose project")
            try:
                stack.down()
                left = stack.leftovers()
                if left:
                    log(f"warning: left behind after cleanup: {left}")
            except Exception as exc:  # cleanup must go on to stop dockerd
                log(f"cleanup error: {exc}")
        engine.stop_dockerd()
        numbers["e2e total"] = f"{time.monotonic() - t_start:.1f} s"
        if outcome != "SKIPPED":
            print(f"\n== deckhand stack e2e: {outcome}", flush=True)
            for key, value in numbers.items():
                print(f"   {key:28s} {value}", flush=True)
        if args.keep_workdir or outcome == "FAILED":
            print(f"   logs in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
