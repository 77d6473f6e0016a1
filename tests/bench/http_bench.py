#!/usr/bin/python3
"""HTTP benchmark: deckhand against nginx, Flask+gunicorn and FastAPI+uvicorn.

One run, side by side, same wrk settings for every peer, ratios printed
(the machine is shared and noisy, so only ratios from one run mean anything).
See tests/bench/README.md and issue 2, section "Benchmark".

Standard library only. Meant to run with Debian's /usr/bin/python3, which has
python3-flask, gunicorn, python3-fastapi and uvicorn; wrk, nginx-light,
redis-server and postgresql-15 come from Debian packages too.

Exit status: 0 when everything was measured (targets may still be MISSED:
this is a benchmark, not a test); 1 when the harness could not measure
(a peer or deckhand did not start, wrk failed, ...); 2 on usage errors.
"""

import argparse
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PEERS_DIR = HERE / "peers"
PY = "/usr/bin/python3"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DEFAULT_DECKHAND = "build/dev/services/deckhand/deckhand"
LOOPBACK = "127.0.0.1"
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}

# Targets from issue 2.
TARGET_LIVEZ_VS_NGINX = 0.8
TARGET_LIVEZ_VS_FLASK = 15.0
TARGET_P99_MS = 2.0
TARGET_READYZ_VS_NGINX = 0.5
TARGET_RSS_MB = 25.0
TARGET_READY_MS = 100.0

# Above this share of stolen CPU time, a run's tail latency says more about
# the host than about the server.
STEAL_NOTE_PCT = 1.0


class HarnessError(Exception):
    """The harness could not do its job (not: a target was missed)."""


class Interrupted(BaseException):
    """SIGTERM/SIGHUP turned into an exception so that finally blocks run."""


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def tail(path, lines=30):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


# --------------------------------------------------------------------------
# Minimal HTTP client (raw socket: fast enough to poll every 2 ms)
# --------------------------------------------------------------------------

class HttpResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def http_get(port, path, timeout=2.0):
    """GET http://127.0.0.1:port/path; raises OSError on connection failure."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
            "User-Agent: pilothouse-bench\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n".encode("ascii"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed before headers ({len(buf)} bytes)")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ConnectionError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            want = int(headers["content-length"])
            while len(body) < want:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            body = body[:want]
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            while not body.endswith(b"0\r\n\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            out, rest = b"", body
            while rest:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0] or b"0", 16)
                if size == 0:
                    break
                out += rest[:size]
                rest = rest[size + 2:]
            body = out
        else:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        return HttpResponse(status, headers, body)


def wait_http(port, path, proc=None, timeout=30.0, interval=0.05, name="server"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise HarnessError(f"{name} exited with code {proc.returncode} before answering {path}")
        try:
            r = http_get(port, path, timeout=2.0)
            if r.status == 200:
                return r
            last = f"HTTP {r.status}"
        except (OSError, ValueError) as e:
            last = repr(e)
        time.sleep(interval)
    raise HarnessError(f"{name} did not answer 200 on {path} within {timeout:.0f} s (last: {last})")


# --------------------------------------------------------------------------
# /proc memory
# --------------------------------------------------------------------------

def proc_status_kb(pid):
    """{'VmRSS': kB, 'VmHWM': kB, 'Threads': n} or {} when the process is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(val.split()[0])
    except (OSError, ValueError):
        return {}
    return out


def pid_alive(pid):
    """True when pid exists and is not a zombie (PID 1 here reaps orphans lazily)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X")


def group_pids(pgid):
    """Live (non-zombie) processes in process group pgid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            pids.append(int(entry))
    return pids


class RssSampler(threading.Thread):
    """Samples summed VmRSS of a fixed set of pids (a process group) during a run."""

    def __init__(self, pids, interval):
        super().__init__(daemon=True)
        self.pids = list(pids)
        self.interval = interval
        self.peak_kb = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self):
        # The measuring thread waits beside the client, not on the servers'
        # CPU: every wake-up there would stall the requests in flight.
        # (Linux: pid 0 here is this thread alone.)
        _client_affinity()
        while not self._stop_event.is_set():
            total = sum(proc_status_kb(p).get("VmRSS", 0) for p in self.pids)
            self.peak_kb = max(self.peak_kb, total)
            self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join(5)


class Flood(threading.Thread):
    """Clients that pipeline requests as fast as the server takes them and
    never read an answer (issue 16). Runs beside the load generator."""

    def __init__(self, port, route, clients):
        super().__init__(daemon=True)
        self.port = port
        self.payload = (f"GET {route} HTTP/1.1\r\nHost: x\r\n\r\n".encode()) * 4096
        self.clients = clients
        self.sent = [0] * clients
        self.reset = [False] * clients
        self._stop_event = threading.Event()

    def run(self):
        _client_affinity()
        socks = []
        try:
            for _ in range(self.clients):
                s = socket.create_connection((LOOPBACK, self.port), timeout=5)
                s.setblocking(False)
                socks.append(s)
            view = memoryview(self.payload)
            while not self._stop_event.is_set():
                moved = False
                for i, s in enumerate(socks):
                    if self.reset[i]:
                        continue
                    at = self.sent[i] % len(self.payload)
                    try:
                        n = s.send(view[at:])
                    except BlockingIOError:
                        continue
                    except OSError:
                        self.reset[i] = True
                        continue
                    self.sent[i] += n
                    moved = moved or n > 0
                if not moved:
                    self._stop_event.wait(0.005)
        finally:
            for s in socks:
                s.close()

    def stop(self):
        self._stop_event.set()
        self.join(5)


# --------------------------------------------------------------------------
# Managed processes
# --------------------------------------------------------------------------

_SIGS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


class Registry:
    """Everything started or created, so that clean-up finds it whatever happens.

    Things register *before* they exist (a signal between spawn and registration
    would otherwise leak them); temp dirs are created with signals blocked.
    """

    def __init__(self):
        self.cleanup = []   # (name, fn), run in reverse order
        self.tempdirs = []
        self.groups = []    # (name, pgid) of children started in their own session
        self.pg = None

    def add(self, name, fn):
        self.cleanup.append((name, fn))

    def mkdtemp(self, prefix):
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGS)
        try:
            d = Path(tempfile.mkdtemp(prefix=prefix))
            self.tempdirs.append(d)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return d

    def run_all(self, keep):
        for name, fn in reversed(self.cleanup):
            try:
                fn()
            except Exception as e:  # keep stopping the rest
                log(f"clean-up of {name} failed: {e!r}")
        for d in self.tempdirs:
            if keep:
                log(f"kept {d}")
            else:
                shutil.rmtree(d, ignore_errors=True)


def run_group(argv, timeout, **kw):
    """subprocess.run in a new session; on any exception (signal, timeout) the whole
    group is stopped, not only the direct child (runuser -> initdb/pg_ctl)."""
    p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True, **kw)
    try:
        out, _ = p.communicate(timeout=timeout)
    except BaseException:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                p.wait(wait)
                break
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        raise
    return p.returncode, out.decode(errors="replace")

class Proc:
    """A child in its own session (Ctrl-C reaches only the harness, which stops it)."""

    def __init__(self, registry, name, argv, logdir, env=None, cwd=None, separate_stderr=False):
        self.name = name
        self.popen = None
        self.stopped = None
        registry.add(name, self.stop)
        self.argv = [str(a) for a in argv]
        self.log_path = Path(logdir) / f"{name}.log"
        self.err_path = Path(logdir) / f"{name}.stderr.log" if separate_stderr else self.log_path
        self._out = open(self.log_path, "wb")
        self._err = open(self.err_path, "wb") if separate_stderr else None
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._out,
            stderr=self._err if separate_stderr else subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True)
        self.pid = self.popen.pid
        registry.groups.append((name, self.pid))

    def poll(self):
        return self.popen.poll()

    @property
    def returncode(self):
        return self.popen.returncode

    def stop(self, sig=signal.SIGTERM, grace=10.0):
        """Stop the whole process group; returns (exit code, seconds, forced)."""
        if self.popen is None:
            self.close_logs()
            return None, 0.0, False
        if self.stopped is not None:
            return self.stopped
        t0 = time.monotonic()
        forced = False
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                forced = True
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(10)
        elapsed = time.monotonic() - t0
        # Leftover group members (workers) after the leader exited.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.close_logs()
        self.stopped = (self.popen.returncode, elapsed, forced)
        return self.stopped

    def close_logs(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None and not f.closed:
                f.close()


def as_postgres(argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + [str(a) for a in argv]
    return [str(a) for a in argv]


class Postgres:
    def __init__(self, registry):
        registry.pg = self
        registry.add("postgresql", self.stop)
        self.dir = registry.mkdtemp("pilothouse-bench-pg-")
        self.data = self.dir / "data"
        self.logfile = self.dir / "postgres.log"
        self.port = None
        self.started = False
        self.postmaster_pid = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)

    def _run(self, argv, timeout=120):
        return run_group(as_postgres(argv), timeout, cwd=self.dir, env=BASE_ENV)

    def start(self):
        rc, out = self._run([PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                             "-E", "UTF8", "--no-sync", "--no-instructions"])
        if rc != 0:
            raise HarnessError(f"initdb failed ({rc}):\n{out}")
        self.port = free_port()
        # -o is pg_ctl's own option string for the server; every value here is ours
        # (temp dir from mkdtemp: no spaces, no quotes).
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses={LOOPBACK} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self.started = True  # from here on, stop() must try
        rc, out = self._run([PG_BIN / "pg_ctl", "-D", self.data, "-l", self.logfile, "-w", "-t", "60",
                             "-o", opts, "start"])
        if rc != 0:
            raise HarnessError(f"pg_ctl start failed ({rc}):\n{out}\n{tail(self.logfile)}")
        self.postmaster_pid = self._pidfile()
        rc, out = self._run([PG_BIN / "pg_isready", "-h", LOOPBACK, "-p", str(self.port), "-t", "10"])
        if rc != 0:
            raise HarnessError(f"PostgreSQL not ready on port {self.port}: {out}")
        rc, out = self._run(["psql", "-h", LOOPBACK, "-p", str(self.port), "-U", "postgres",
                             "-d", "postgres", "-Atc", "show server_version"])
        self.version = out.strip() if rc == 0 else "?"

    def _pidfile(self):
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        if self.started and self.data.exists():
            # An interrupted "pg_ctl start" may leave a postmaster that is still starting.
            deadline = time.monotonic() + 2
            while self.postmaster_pid is None and time.monotonic() < deadline:
                self.postmaster_pid = self._pidfile()
                if self.postmaster_pid is None:
                    time.sleep(0.05)
            try:
                rc, out = self._run([PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30",
                                     "stop"], timeout=60)
            except subprocess.TimeoutExpired:
                rc, out = -1, "timeout"
            if rc != 0 and "not running" not in out and "No such file" not in out:
                log(f"pg_ctl stop failed ({rc}): {out.strip()}")
            deadline = time.monotonic() + 5
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.alive():
                log(f"PostgreSQL postmaster {self.postmaster_pid} still alive; SIGKILL")
                try:
                    os.kill(self.postmaster_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.started = False

    def alive(self):
        if self.postmaster_pid is None:
            self.postmaster_pid = self._pidfile()
        return bool(self.postmaster_pid) and pid_alive(self.postmaster_pid)


def redis_ping(port):
    with socket.create_connection((LOOPBACK, port), timeout=2) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64)


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------

_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def parse_wrk(text):
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not m:
        raise HarnessError(f"could not parse wrk output:\n{text}")
    res = {"rps": float(m.group(1))}
    for pct, num, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M):
        res[f"p{pct}_ms"] = float(num) * _UNIT_MS[unit]
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
    if m:
        res["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    res["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                    map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    res["non_2xx"] = int(m.group(1)) if m else 0
    return res


# CPUs the load generator runs on; None: wherever the scheduler puts it.
CLIENT_CPUS = None


def split_cpus(mode):
    """(server CPUs, client CPUs) for --pin, or None when nothing is pinned.

    A load generator sharing cores with the server measures the scheduler:
    on 2 cores, wrk's threads and the server's take turns and p99 becomes a
    time slice (nginx's own p99 was 6.4 ms so). Giving the client its own
    CPUs, as a separate client machine would, measures the server."""
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "off" or len(cpus) < 2:
        return None
    half = len(cpus) // 2
    return cpus[:len(cpus) - half], cpus[len(cpus) - half:]


def _client_affinity():
    if CLIENT_CPUS is not None:
        os.sched_setaffinity(0, CLIENT_CPUS)


def cpu_ticks():
    """(steal, total) jiffies over all CPUs, from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(v) for v in fields[:8]]  # user .. steal; guest time is already in user
    return ticks[7], sum(ticks)


def run_wrk(url, threads, conns, duration):
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", url]
    before = cpu_ticks()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=duration + 60, env=BASE_ENV, preexec_fn=_client_affinity)
    after = cpu_ticks()
    text = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise HarnessError(f"wrk {url} exited {r.returncode}:\n{text}")
    res = parse_wrk(text)
    # Time the hypervisor ran something else on this machine's vCPUs: every
    # such pause lands in the tail of whatever was in flight.
    res["steal_pct"] = 100.0 * (after[0] - before[0]) / max(1, after[1] - before[1])
    res["argv"] = argv
    res["raw"] = text
    return res


# --------------------------------------------------------------------------
# deckhand
# --------------------------------------------------------------------------

class Deckhand:
    def __init__(self, registry, path, env_extra, logdir):
        self.registry = registry
        registry.add("deckhand", self.stop)
        self.path = path
        self.env_extra = env_extra
        self.logdir = Path(logdir)
        self.proc = None
        self.port = None
        self.count = 0
        self.log_paths = []

    def env(self, pg_port, redis_port, port):
        env = dict(BASE_ENV)
        env["HOME"] = str(self.logdir)
        env.update({
            "DATABASE_URL": f"postgresql://postgres@{LOOPBACK}:{pg_port}/postgres",
            "REDIS_URL": f"redis://{LOOPBACK}:{redis_port}/0",
            "HOST": LOOPBACK,
            "PORT": str(port),
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "json",
        })
        env.update(self.env_extra)
        return env

    def start_and_time(self, pg_port, redis_port, timeout, interval=0.002):
        """Spawn, poll GET /readyz every `interval` s; returns a dict with the timings."""
        self.count += 1
        self.port = free_port()
        env = self.env(pg_port, redis_port, self.port)
        t0 = time.perf_counter()
        self.proc = Proc(self.registry, f"deckhand-{self.count}", [self.path],
                         self.logdir, env=env, cwd=self.logdir, separate_stderr=True)
        self.log_paths.append((self.proc.log_path, self.proc.err_path))
        first_accept = None
        statuses = {}
        errors = {}
        while True:
            now = time.perf_counter()
            if now - t0 > timeout:
                return {"ready": False, "reason": f"no 200 from /readyz within {timeout:.0f} s",
                        "first_accept_ms": first_accept, "statuses_before_ready": statuses,
                        "errors_before_ready": errors}
            if self.proc.poll() is not None:
                return {"ready": False, "reason": f"exited with code {self.proc.returncode} before ready",
                        "first_accept_ms": first_accept, "statuses_before_ready": statuses,
                        "errors_before_ready": errors}
            try:
                r = http_get(self.port, "/readyz", timeout=2.0)
            except (OSError, ValueError) as e:
                kind = type(e).__name__
                errors[kind] = errors.get(kind, 0) + 1
                time.sleep(interval)
                continue
            if first_accept is None:
                first_accept = (time.perf_counter() - t0) * 1000.0
            if r.status == 200:
                return {"ready": True, "ms": (time.perf_counter() - t0) * 1000.0,
                        "first_accept_ms": first_accept, "statuses_before_ready": statuses,
                        "errors_before_ready": errors}
            statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
            time.sleep(interval)

    def stop(self, grace=15.0):
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        t0 = time.monotonic()
        forced = False
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # deckhand itself, as a container runtime would
            try:
                proc.popen.wait(grace)
            except subprocess.TimeoutExpired:
                forced = True
        elapsed = time.monotonic() - t0
        rc, _, _ = proc.stop(signal.SIGKILL, grace=5)
        return {"exit_code": rc, "stop_s": elapsed, "sigkill_needed": forced}


def scan_json_log(path):
    """Counts lines of a LOG_FORMAT=json stdout log; returns stats and a few bad lines."""
    stats = {"lines": 0, "non_json": 0, "levels": {}, "bad_examples": [], "missing_keys": 0}
    try:
        data = Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return stats
    for line in data.splitlines():
        if not line.strip():
            continue
        stats["lines"] += 1
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
        except ValueError:
            stats["non_json"] += 1
            if len(stats["bad_examples"]) < 3:
                stats["bad_examples"].append(line[:200])
            continue
        lvl = str(obj.get("level", "?"))
        stats["levels"][lvl] = stats["levels"].get(lvl, 0) + 1
        if not all(k in obj for k in ("timestamp", "level", "event")):
            stats["missing_keys"] += 1
    return stats


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------

def fmt_ms(v):
    if v is None:
        return "–"
    if v < 1:
        return f"{v * 1000:.0f} µs"
    return f"{v:.2f} ms"


def fmt_rps(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_ratio(v):
    return "–" if v is None else f"{v:.2f}x"


def fmt_mb(kb):
    return "–" if not kb else f"{kb / 1024:.1f} MB"


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def on_signal(signum, _frame):
    raise Interrupted(signum)


def preflight(args):
    missing = []
    for tool in ("wrk", "nginx", "redis-server", "psql"):
        if not shutil.which(tool, path=BASE_ENV["PATH"]):
            missing.append(tool)
    for tool in ("initdb", "pg_ctl", "pg_isready"):
        if not (PG_BIN / tool).exists():
            missing.append(str(PG_BIN / tool))
    if os.geteuid() == 0 and not shutil.which("runuser", path=BASE_ENV["PATH"]):
        missing.append("runuser")
    if not Path(PY).exists():
        missing.append(PY)
    if missing:
        raise HarnessError("missing: " + ", ".join(missing))
    r = subprocess.run([PY, "-c", "import flask, gunicorn, fastapi, uvicorn, h11; "
                        "print(flask.__version__, gunicorn.__version__, fastapi.__version__, "
                        "uvicorn.__version__, h11.__version__)"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=BASE_ENV, timeout=60)
    if r.returncode != 0:
        raise HarnessError(f"{PY} lacks the Python peers (apt-get install python3-flask gunicorn "
                           f"python3-fastapi uvicorn):\n{r.stdout.decode(errors='replace')}")
    flask_v, gunicorn_v, fastapi_v, uvicorn_v, h11_v = r.stdout.decode().split()
    loops = []
    for mod in ("uvloop", "httptools"):
        rr = subprocess.run([PY, "-c", f"import {mod}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=BASE_ENV, timeout=30)
        loops.append(f"{mod}:{'yes' if rr.returncode == 0 else 'no'}")
    versions = {
        "flask": flask_v, "gunicorn": gunicorn_v, "fastapi": fastapi_v,
        "uvicorn": f"{uvicorn_v} (h11 {h11_v}, {', '.join(loops)})",
    }
    for name, argv in (("nginx", ["nginx", "-v"]), ("wrk", ["wrk", "-v"]),
                       ("redis", ["redis-server", "--version"])):
        rr = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=BASE_ENV,
                            timeout=30)
        versions[name] = rr.stdout.decode(errors="replace").splitlines()[0].strip() if rr.stdout else "?"
    return versions


def nginx_conf(tmp, port, workers):
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""# generated by tests/bench/http_bench.py
{user}worker_processes {workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {LOOPBACK}:{port};
        default_type text/plain;
        location / {{
            return 200 "ok";
        }}
    }}
}}
"""


def main(argv=None):
    global CLIENT_CPUS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deckhand", default=DEFAULT_DECKHAND,
                    help=f"deckhand binary (relative paths: to the repo root); default {DEFAULT_DECKHAND}")
    ap.add_argument("--deckhand-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for deckhand (repeatable)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run at -c64 (default 10)")
    ap.add_argument("--single-duration", type=int, default=5,
                    help="seconds per 1-connection latency run (0: skip; default 5)")
    ap.add_argument("--threads", type=int, default=None,
                    help="wrk threads (default: one per client CPU when pinned, else 2)")
    ap.add_argument("--pin", choices=("auto", "off"), default="auto",
                    help="auto (default): the servers run on the first half of the CPUs and wrk on the "
                         "rest, as with a separate client machine; off: all share every CPU")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    ap.add_argument("--warmup", type=int, default=1, help="unreported warm-up seconds per target (default 1)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every target this many times, interleaved; report the median")
    ap.add_argument("--starts", type=int, default=5, help="deckhand starts for start-to-ready (default 5)")
    ap.add_argument("--ready-timeout", type=float, default=15.0, help="seconds to wait for /readyz 200")
    ap.add_argument("--hostile-duration", type=int, default=5,
                    help="seconds of the never-reading clients' run per peer (0: skip; default 5)")
    ap.add_argument("--hostile-clients", type=int, default=2,
                    help="clients that pipeline and never read (default 2)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--keep-temp", action="store_true", help="keep the temp dirs (logs) for debugging")
    ap.add_argument("--self-check", action="store_true",
                    help="verify the harness: all peers except deckhand, 2 s each, then check clean-up")
    args = ap.parse_args(argv)

    if args.self_check:
        args.duration = 2
        args.single_duration = min(args.single_duration, 2)
        args.warmup = min(args.warmup, 1)
    pinned = split_cpus(args.pin)
    if args.threads is None:
        args.threads = len(pinned[1]) if pinned else 2
    for name in ("duration", "threads", "connections", "rounds"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.threads > args.connections:
        ap.error("--threads must not exceed --connections")
    if not 1 <= args.starts <= 50:
        ap.error("--starts must be 1..50")
    if args.duration > 300 or args.single_duration > 300 or args.warmup > 60:
        ap.error("durations are bounded: --duration/--single-duration <= 300, --warmup <= 60")
    deckhand_env = {}
    for item in args.deckhand_env:
        k, sep, v = item.partition("=")
        if not sep or not k:
            ap.error(f"--deckhand-env expects KEY=VALUE, got {item!r}")
        deckhand_env[k] = v
    deckhand_path = None
    if not args.self_check:
        p = Path(args.deckhand)
        deckhand_path = p if p.is_absolute() else REPO / p
        if not (deckhand_path.is_file() and os.access(deckhand_path, os.X_OK)):
            print(f"error: deckhand binary not found or not executable: {deckhand_path}\n"
                  "build it first (make build), pass --deckhand PATH, or use --self-check",
                  file=sys.stderr)
            return 2

    for sig in _SIGS:  # SIGINT too: it may be ignored when started in the background
        signal.signal(sig, on_signal)

    if pinned:
        # Every server (and PostgreSQL, Redis) inherits the harness's CPUs.
        os.sched_setaffinity(0, pinned[0])
        CLIENT_CPUS = pinned[1]
    args.pinned = pinned
    state = Registry()
    try:
        results = run(args, deckhand_path, deckhand_env, state)
        rc = 0
    except HarnessError as e:
        print(f"\nHARNESS FAILURE: {e}", file=sys.stderr)
        results, rc = None, 1
    except KeyboardInterrupt:
        print("\ninterrupted (SIGINT); stopping everything", file=sys.stderr)
        results, rc = None, 130
    except Interrupted as e:
        print(f"\ninterrupted (signal {e.args[0]}); stopping everything", file=sys.stderr)
        results, rc = None, 128 + int(e.args[0])
    finally:
        # No signal may cut the clean-up short; every step is time-bounded.
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGS)
        try:
            state.run_all(keep=args.keep_temp)
        finally:
            for sig in _SIGS:
                signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGS)

    if args.self_check and rc == 0:
        problems = verify_clean(state)
        if problems:
            print("\nSELF-CHECK FAILED: " + "; ".join(problems), file=sys.stderr)
            return 1
        print("\nself-check: OK (all peers started, measured, stopped; temp dirs removed)")
    if results is not None and args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    return rc


def verify_clean(state):
    problems = []
    for name, pid in state.groups:
        if group_pids(pid):
            problems.append(f"{name} (pgid {pid}) still running")
    if state.pg is not None and state.pg.alive():
        problems.append("PostgreSQL still running")
    for d in state.tempdirs:
        if Path(d).exists():
            problems.append(f"{d} not removed")
    return problems


def run(args, deckhand_path, deckhand_env, state):
    versions = preflight(args)
    tmp = state.mkdtemp("pilothouse-bench-")
    observations = []

    def managed(name, argv, **kw):
        return Proc(state, name, argv, tmp, **kw)

    loadavg_before = Path("/proc/loadavg").read_text().split()[:3]
    if float(loadavg_before[0]) > 0.5 * (os.cpu_count() or 1):
        observations.append(f"machine busy before the run (load average {loadavg_before[0]} on "
                            f"{os.cpu_count()} CPUs): absolute numbers and tail latencies are noisy; "
                            "compare ratios, or rerun on a quiet machine")

    # --- dependencies -----------------------------------------------------
    log("starting PostgreSQL 15")
    pg = Postgres(state)
    pg.start()
    versions["postgresql"] = pg.version
    log(f"PostgreSQL {pg.version} on {LOOPBACK}:{pg.port}")

    log("starting redis-server")
    redis_port = free_port()
    redis_dir = tmp / "redis"
    redis_dir.mkdir()
    redis = managed("redis", ["redis-server", "--bind", LOOPBACK, "--port", redis_port,
                                   "--save", "", "--appendonly", "no", "--dir", redis_dir,
                                   "--daemonize", "no", "--protected-mode", "yes",
                                   "--logfile", ""], env=BASE_ENV, cwd=redis_dir)
    deadline = time.monotonic() + 15
    while True:
        if redis.poll() is not None:
            raise HarnessError(f"redis-server exited {redis.returncode}:\n{tail(redis.log_path)}")
        try:
            if redis_ping(redis_port).startswith(b"+PONG"):
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise HarnessError(f"redis-server not answering PING:\n{tail(redis.log_path)}")
        time.sleep(0.02)
    log(f"redis on {LOOPBACK}:{redis_port}")

    # --- peers ----------------------------------------------------------------
    peers = []  # (label, port, proc, routes, expected body check)

    log("starting nginx")
    nginx_dir = tmp / "nginx"
    nginx_dir.mkdir()
    nginx_port = free_port()
    # One worker per server CPU: nginx 1.22's "auto" counts every online CPU,
    # not the ones it may run on.
    (nginx_dir / "nginx.conf").write_text(nginx_conf(nginx_dir, nginx_port, len(os.sched_getaffinity(0))))
    nginx = managed("nginx", ["nginx", "-p", nginx_dir, "-c", nginx_dir / "nginx.conf",
                                   "-e", nginx_dir / "nginx-error.log"], env=BASE_ENV, cwd=nginx_dir)
    r = wait_http(nginx_port, "/", nginx, name="nginx")
    if r.body != b"ok":
        raise HarnessError(f"nginx answered {r.body!r}")
    peers.append(("nginx", nginx_port, nginx, ["/"]))

    py_env = dict(BASE_ENV, HOME=str(tmp))
    log("starting Flask + gunicorn (2 sync workers)")
    gport = free_port()
    gunicorn = managed("gunicorn", [PY, "-m", "gunicorn", "--workers", "2", "--worker-class", "sync",
                                         "--bind", f"{LOOPBACK}:{gport}", "--chdir", PEERS_DIR,
                                         "--worker-tmp-dir", tmp, "--log-level", "warning",
                                         "flask_app:app"], env=py_env, cwd=tmp)
    log("starting FastAPI + uvicorn (1 worker)")
    uport = free_port()
    uvicorn = managed("uvicorn", [PY, "-m", "uvicorn", "--host", LOOPBACK, "--port", uport,
                                       "--workers", "1", "--log-level", "warning", "--no-access-log",
                                       "--app-dir", PEERS_DIR, "fastapi_app:app"],
                           env=py_env, cwd=tmp)
    for label, port, proc in (("flask+gunicorn", gport, gunicorn), ("fastapi+uvicorn", uport, uvicorn)):
        r = wait_http(port, "/livez", proc, name=label)
        if r.json() != {"status": "pass"}:
            raise HarnessError(f"{label} /livez answered {r.body!r}")
        peers.append((label, port, proc, ["/livez"]))
    time.sleep(0.5)  # let gunicorn's second worker finish booting
    if len(group_pids(gunicorn.pid)) < 3:
        observations.append("harness: gunicorn has fewer than 2 workers running")

    # --- deckhand: start-to-ready ------------------------------------------
    start_samples = []
    deckhand = None
    dh_info = {}
    if deckhand_path is not None:
        deckhand = Deckhand(state, str(deckhand_path), deckhand_env, tmp)
        try:
            r = subprocess.run([str(deckhand_path), "--version"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10, env=BASE_ENV, cwd=tmp)
            versions["deckhand"] = r.stdout.decode(errors="replace").strip().splitlines()[0] \
                if r.stdout.strip() else f"(--version printed nothing, exit {r.returncode})"
        except subprocess.TimeoutExpired:
            versions["deckhand"] = "(--version timed out)"
            observations.append("deckhand --version did not exit within 10 s")
        stops = []
        for i in range(args.starts):
            log(f"deckhand start {i + 1}/{args.starts}")
            s = deckhand.start_and_time(pg.port, redis_port, args.ready_timeout)
            s["n"] = i + 1
            start_samples.append(s)
            if not s["ready"]:
                proc = deckhand.proc
                stop = deckhand.stop()
                raise HarnessError(
                    f"deckhand start {i + 1}: {s['reason']}; first accept "
                    f"{s['first_accept_ms']} ms; statuses before: {s['statuses_before_ready']}; "
                    f"stop: {stop}\n--- stdout ---\n{tail(proc.log_path)}\n--- stderr ---\n"
                    f"{tail(proc.err_path)}")
            if s["statuses_before_ready"]:
                observations.append(
                    f"deckhand start {i + 1}: /readyz answered {s['statuses_before_ready']} "
                    f"before its first 200 (first accept {s['first_accept_ms']:.1f} ms)")
            if i < args.starts - 1:
                st = deckhand.stop()
                st["n"] = i + 1
                stops.append(st)
        ready_ms = [s["ms"] for s in start_samples]
        dh_info["start_to_ready_ms"] = {
            "samples": ready_ms, "median": statistics.median(ready_ms),
            "first_accept_ms": [s["first_accept_ms"] for s in start_samples]}
        dh_info["sigterm_idle"] = stops
        log("deckhand start-to-ready ms: " + ", ".join(f"{v:.1f}" for v in ready_ms))

        # --- validate deckhand responses ----------------------------------
        port = deckhand.port
        dh_info["pid"] = deckhand.proc.pid
        time.sleep(1.0)
        st = proc_status_kb(deckhand.proc.pid)
        dh_info["idle"] = st
        responses = {}
        for path in ("/livez", "/readyz"):
            try:
                r = http_get(port, path)
                body = r.body.decode("utf-8", errors="replace")
                responses[path] = {"status": r.status, "content_type": r.headers.get("content-type"),
                                   "body": body[:2000]}
            except (OSError, ValueError) as e:
                raise HarnessError(f"deckhand {path}: {e!r}")
        dh_info["responses_before_load"] = responses
        check_responses(responses, observations)
        peers.append(("deckhand", port, deckhand.proc, ["/livez", "/readyz"]))

    # --- load -------------------------------------------------------------
    targets = [(label, port, proc, route) for label, port, proc, routes in peers for route in routes]
    measurements = {(t[0], t[3]): {"c64": [], "c1": [], "rss_peak_kb": []} for t in targets}
    if args.warmup:
        for label, port, _proc, route in targets:
            log(f"warm-up {label} {route} ({args.warmup} s)")
            run_wrk(f"http://{LOOPBACK}:{port}{route}", args.threads, args.connections, args.warmup)
    for rnd in range(args.rounds):
        for label, port, proc, route in targets:
            url = f"http://{LOOPBACK}:{port}{route}"
            if proc.poll() is not None:
                raise HarnessError(f"{label} exited with code {proc.returncode} before its run:\n"
                                   f"{tail(proc.log_path)}")
            pids = group_pids(proc.pid) or [proc.pid]
            # The same sampling load on the machine for every peer; deckhand's
            # peak is also read from VmHWM after the run.
            sampler = RssSampler(pids, 0.1)
            log(f"round {rnd + 1}/{args.rounds}: {label} {route} -t{args.threads} "
                f"-c{args.connections} -d{args.duration}s")
            sampler.start()
            try:
                res = run_wrk(url, args.threads, args.connections, args.duration)
            finally:
                sampler.stop()
            res["rss_peak_kb"] = sampler.peak_kb
            res["rss_samples"] = sampler.samples
            m = measurements[(label, route)]
            m["c64"].append(res)
            if args.single_duration:
                log(f"round {rnd + 1}/{args.rounds}: {label} {route} -t1 -c1 -d{args.single_duration}s")
                m["c1"].append(run_wrk(url, 1, 1, args.single_duration))
            if proc.poll() is not None:
                observations.append(f"{label} exited with code {proc.returncode} during the {route} run")

    # --- clients that never read -----------------------------------------
    hostile = []
    if args.hostile_duration:
        for label, port, proc, routes in peers:
            if label not in ("nginx", "deckhand"):
                continue
            route = routes[0]
            pids = group_pids(proc.pid) or [proc.pid]
            flood = Flood(port, route, args.hostile_clients)
            sampler = RssSampler(pids, 0.1)
            log(f"{label} {route}: {args.hostile_clients} clients pipeline and never read, "
                f"-t1 -c8 -d{args.hostile_duration}s beside them")
            flood.start()
            sampler.start()
            time.sleep(1.0)  # the flood fills whatever the server lets it
            try:
                res = run_wrk(f"http://{LOOPBACK}:{port}{route}", 1, 8, args.hostile_duration)
            finally:
                flood.stop()
                sampler.stop()
            hostile.append({"peer": label, "route": route, "rps": res["rps"],
                            "p50_ms": res.get("p50_ms"), "p99_ms": res.get("p99_ms"),
                            "errors": res["non_2xx"] + sum(res["socket_errors"].values()),
                            "flood_sent_mb": [round(b / 1048576, 1) for b in flood.sent],
                            "flood_reset": flood.reset, "rss_peak_kb": sampler.peak_kb,
                            "steal_pct": res["steal_pct"]})
            time.sleep(0.5)
    if deckhand is not None:
        dh_info["hostile"] = hostile

    # --- deckhand after load ------------------------------------------------
    if deckhand is not None:
        dpid = deckhand.proc.pid
        dh_info["after_load_immediate"] = proc_status_kb(dpid)
        time.sleep(2.0)
        dh_info["after_load_2s"] = proc_status_kb(dpid)
        try:
            r = http_get(deckhand.port, "/readyz")
            dh_info["readyz_after_load"] = {"status": r.status, "body": r.body.decode(errors="replace")[:500]}
            if r.status != 200:
                observations.append(f"deckhand /readyz answered {r.status} after the load runs: "
                                    f"{r.body[:300]!r}")
        except (OSError, ValueError) as e:
            observations.append(f"deckhand /readyz failed after the load runs: {e!r}")
        log("stopping deckhand with SIGTERM")
        st = deckhand.stop()
        dh_info["sigterm_after_load"] = st
        all_stops = dh_info["sigterm_idle"] + [st]
        bad = [s for s in all_stops if s["exit_code"] != 0 or s["sigkill_needed"]]
        if bad:
            observations.append(f"deckhand SIGTERM: {len(bad)} of {len(all_stops)} stops did not exit 0 "
                                f"promptly: {bad}")
        slow = [round(s["stop_s"], 2) for s in all_stops if s["stop_s"] > 2.0]
        if slow:
            observations.append(f"deckhand took > 2 s to exit after SIGTERM (idle): {slow} s")
        logs = []
        for out_path, err_path in deckhand.log_paths:
            stats = scan_json_log(out_path)
            stats["stderr_bytes"] = Path(err_path).stat().st_size if Path(err_path).exists() else 0
            stats["stderr_tail"] = tail(err_path, 5) if stats["stderr_bytes"] else ""
            logs.append(stats)
        dh_info["logs"] = logs
        non_json = sum(s["non_json"] for s in logs)
        if non_json:
            ex = next(e for s in logs for e in s["bad_examples"])
            observations.append(f"deckhand stdout (LOG_FORMAT=json) had {non_json} non-JSON lines, "
                                f"e.g. {ex!r}")
        missing = sum(s["missing_keys"] for s in logs)
        if missing:
            observations.append(f"deckhand: {missing} JSON log lines lack timestamp/level/event")
        levels = {}
        for s in logs:
            for k, v in s["levels"].items():
                levels[k] = levels.get(k, 0) + v
        below = {k: v for k, v in levels.items() if k.lower() in ("debug", "info", "trace")}
        if below:
            observations.append(f"deckhand logged below LOG_LEVEL=warning: {below}")
        if levels:
            dh_info["log_levels"] = levels
        err_bytes = sum(s["stderr_bytes"] for s in logs)
        if err_bytes:
            observations.append(f"deckhand wrote {err_bytes} bytes to stderr (logs belong on stdout); "
                                f"last: {next(s['stderr_tail'] for s in logs if s['stderr_tail'])!r}")

    loadavg_after = Path("/proc/loadavg").read_text().split()[:3]
    results = summarize(args, versions, measurements, dh_info, observations,
                        {"loadavg_before": loadavg_before, "loadavg_after": loadavg_after})
    print_report(results)
    return results


def check_responses(responses, observations):
    lz = responses["/livez"]
    if lz["status"] != 200:
        observations.append(f"deckhand /livez answered {lz['status']}: {lz['body'][:200]!r}")
    rz = responses["/readyz"]
    ct = (rz["content_type"] or "").split(";")[0].strip()
    if ct != "application/health+json":
        observations.append(f"deckhand /readyz Content-Type is {rz['content_type']!r}, "
                            "issue 2 asks for application/health+json")
    try:
        body = json.loads(rz["body"])
    except ValueError:
        observations.append(f"deckhand /readyz body is not JSON: {rz['body'][:200]!r}")
        return
    if body.get("status") != "pass":
        observations.append(f"deckhand /readyz status is {body.get('status')!r} with PostgreSQL and Redis "
                            f"up (expected 'pass'): {rz['body'][:400]}")
    checks = body.get("checks") or {}
    for key in ("postgres:responseTime", "redis:responseTime"):
        if key not in checks:
            observations.append(f"deckhand /readyz has no {key!r} check (checks: {sorted(checks)})")
    for key in ("version", "releaseId"):
        if key not in body:
            observations.append(f"deckhand /readyz lacks {key!r}")


def median_of(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(args, versions, measurements, dh_info, observations, load):
    rows = []
    for (label, route), m in measurements.items():
        c64 = m["c64"]
        row = {
            "peer": label, "route": route,
            "rps": median_of(c64, "rps"), "p50_ms": median_of(c64, "p50_ms"),
            "p99_ms": median_of(c64, "p99_ms"), "steal_pct": median_of(c64, "steal_pct"),
            "rss_peak_kb": max((r["rss_peak_kb"] for r in c64), default=0),
            "non_2xx": sum(r["non_2xx"] for r in c64),
            "socket_errors": sum(sum(r["socket_errors"].values()) for r in c64),
            "socket_errors_detail": [r["socket_errors"] for r in c64],
            "runs_rps": [r["rps"] for r in c64],
            "wrk_raw": [r["raw"] for r in c64],
        }
        if m["c1"]:
            row["c1"] = {"rps": median_of(m["c1"], "rps"), "p50_ms": median_of(m["c1"], "p50_ms"),
                         "p99_ms": median_of(m["c1"], "p99_ms"),
                         "non_2xx": sum(r["non_2xx"] for r in m["c1"]),
                         "socket_errors": sum(sum(r["socket_errors"].values()) for r in m["c1"])}
        rows.append(row)
    by = {(r["peer"], r["route"]): r for r in rows}
    nginx_rps = by.get(("nginx", "/"), {}).get("rps")
    flask_rps = by.get(("flask+gunicorn", "/livez"), {}).get("rps")
    for r in rows:
        r["vs_nginx"] = r["rps"] / nginx_rps if nginx_rps and r["rps"] is not None else None
        r["vs_flask"] = r["rps"] / flask_rps if flask_rps and r["rps"] is not None else None
        if r["peer"] == "deckhand" and (r["non_2xx"] or r["socket_errors"]):
            observations.append(
                f"deckhand {r['route']} under -c{args.connections}: {r['non_2xx']} non-2xx responses, "
                f"socket errors {r['socket_errors_detail']}")
        if r.get("c1") and r["peer"] == "deckhand" and (r["c1"]["non_2xx"] or r["c1"]["socket_errors"]):
            observations.append(f"deckhand {r['route']} at -c1: {r['c1']['non_2xx']} non-2xx, "
                                f"{r['c1']['socket_errors']} socket errors")
    stolen = [r for r in rows if (r["steal_pct"] or 0) > STEAL_NOTE_PCT]
    if stolen:
        observations.append(
            "the hypervisor took CPU time during " + ", ".join(
                f"{r['peer']} {r['route']} ({r['steal_pct']:.1f}%)" for r in stolen)
            + ": tail latencies of those runs include the guest's pauses; rerun when the host is quiet")

    checks = []
    lz = by.get(("deckhand", "/livez"))
    rz = by.get(("deckhand", "/readyz"))

    def clean(row):
        return row is not None and not row["non_2xx"]

    def add(name, ok, value, target):
        checks.append({"target": name, "met": bool(ok), "value": value, "goal": target})

    if lz:
        note = "" if clean(lz) else f" ({lz['non_2xx']} non-2xx)"
        add("/livez req/s vs nginx", clean(lz) and lz["vs_nginx"] is not None and
            lz["vs_nginx"] >= TARGET_LIVEZ_VS_NGINX,
            f"{fmt_ratio(lz['vs_nginx'])} ({fmt_rps(lz['rps'])} vs {fmt_rps(nginx_rps)}){note}",
            f">= {TARGET_LIVEZ_VS_NGINX}x")
        add("/livez req/s vs flask+gunicorn", clean(lz) and lz["vs_flask"] is not None and
            lz["vs_flask"] >= TARGET_LIVEZ_VS_FLASK,
            f"{fmt_ratio(lz['vs_flask'])} ({fmt_rps(lz['rps'])} vs {fmt_rps(flask_rps)}){note}",
            f">= {TARGET_LIVEZ_VS_FLASK:.0f}x")
    for row in (lz, rz):
        if row:
            add(f"{row['route']} p99 at {args.connections} connections",
                row["p99_ms"] is not None and row["p99_ms"] < TARGET_P99_MS,
                f"{fmt_ms(row['p99_ms'])} (steal {row['steal_pct']:.1f}%)", f"< {TARGET_P99_MS:.0f} ms")
    if rz:
        note = "" if clean(rz) else f" ({rz['non_2xx']} non-2xx)"
        add("/readyz req/s vs nginx", clean(rz) and rz["vs_nginx"] is not None and
            rz["vs_nginx"] >= TARGET_READYZ_VS_NGINX,
            f"{fmt_ratio(rz['vs_nginx'])} ({fmt_rps(rz['rps'])} vs {fmt_rps(nginx_rps)}){note}",
            f">= {TARGET_READYZ_VS_NGINX}x")
    if dh_info:
        sampled = max(lz["rss_peak_kb"] if lz else 0, rz["rss_peak_kb"] if rz else 0)
        hwm = dh_info.get("after_load_immediate", {}).get("VmHWM", 0)
        worst = max(sampled, hwm)
        dh_info["rss_under_load_kb"] = {"sampled_peak_VmRSS": sampled, "VmHWM": hwm}
        add("RSS under load", worst and worst / 1024 < TARGET_RSS_MB,
            f"peak VmRSS {fmt_mb(sampled)}, VmHWM {fmt_mb(hwm)}", f"< {TARGET_RSS_MB:.0f} MB")
        by_peer = {h["peer"]: h for h in dh_info.get("hostile", [])}
        dh_h, ng_h = by_peer.get("deckhand"), by_peer.get("nginx")
        if dh_h:
            beside = f" (nginx {fmt_ms(ng_h['p99_ms'])})" if ng_h else ""
            add("/livez p99 beside clients that never read",
                dh_h["p99_ms"] is not None and dh_h["p99_ms"] < TARGET_P99_MS and not dh_h["errors"],
                f"{fmt_ms(dh_h['p99_ms'])}{beside}", f"< {TARGET_P99_MS:.0f} ms")
            add("RSS beside clients that never read", dh_h["rss_peak_kb"] / 1024 < TARGET_RSS_MB,
                f"peak VmRSS {fmt_mb(dh_h['rss_peak_kb'])}", f"< {TARGET_RSS_MB:.0f} MB")
        s2r = dh_info["start_to_ready_ms"]
        add("start to ready (median)", s2r["median"] < TARGET_READY_MS,
            f"{s2r['median']:.1f} ms (samples: {', '.join(f'{v:.1f}' for v in s2r['samples'])})",
            f"< {TARGET_READY_MS:.0f} ms")

    for r in rows:
        r.pop("wrk_raw")  # keep the JSON small
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"kernel": platform.release(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), **load},
        "settings": {"wrk_c64": f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency",
                     "wrk_c1": f"wrk -t1 -c1 -d{args.single_duration}s --latency"
                     if args.single_duration else None,
                     "server_cpus": args.pinned[0] if args.pinned else None,
                     "client_cpus": args.pinned[1] if args.pinned else None,
                     "warmup_s": args.warmup, "rounds": args.rounds, "starts": args.starts,
                     "self_check": args.self_check},
        "versions": versions, "rows": rows, "deckhand": dh_info, "checks": checks,
        "observations": observations,
    }


def cpu_list(cpus):
    return ",".join(str(c) for c in cpus)


def print_report(res):
    s = res["settings"]
    m = res["machine"]
    out = []
    out.append(f"\n## HTTP benchmark ({res['when']})\n")
    out.append(f"Machine: {m['cpus']} CPUs, Linux {m['kernel']}, load average before "
               f"{' '.join(m['loadavg_before'])}, after {' '.join(m['loadavg_after'])}. "
               f"Client: `{s['wrk_c64']}` for every peer"
               + (f", on CPU {cpu_list(s['client_cpus'])} while the servers (and PostgreSQL, Redis) run on "
                  f"CPU {cpu_list(s['server_cpus'])}" if s.get("client_cpus") else ", sharing every CPU with the servers")
               + (f", median of {s['rounds']} interleaved rounds" if s["rounds"] > 1 else "")
               + f", {s['warmup_s']} s unreported warm-up each.\n")
    out.append("| peer | route | req/s | p50 | p99 | vs nginx | vs flask+gunicorn | errors | peak RSS | steal |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in res["rows"]:
        errs = r["non_2xx"] + r["socket_errors"]
        out.append(f"| {r['peer']} | `{r['route']}` | {fmt_rps(r['rps'])} | {fmt_ms(r['p50_ms'])} | "
                   f"{fmt_ms(r['p99_ms'])} | {fmt_ratio(r['vs_nginx'])} | {fmt_ratio(r['vs_flask'])} | "
                   f"{errs} | {fmt_mb(r['rss_peak_kb'])} | {r['steal_pct']:.1f}% |")
    if s["wrk_c1"]:
        out.append(f"\nOne connection (`{s['wrk_c1']}`):\n")
        out.append("| peer | route | req/s | p50 | p99 |")
        out.append("|---|---|---:|---:|---:|")
        for r in res["rows"]:
            c1 = r.get("c1")
            if c1:
                out.append(f"| {r['peer']} | `{r['route']}` | {fmt_rps(c1['rps'])} | {fmt_ms(c1['p50_ms'])} | "
                           f"{fmt_ms(c1['p99_ms'])} |")
    out.append("\n`errors`: non-2xx responses plus socket errors reported by wrk. `peak RSS`: summed VmRSS "
               "of the peer's process group (all workers), sampled during the 64-connection run. `steal`: share of "
               "CPU time the hypervisor gave to other guests during the run (median of the rounds); each "
               "such pause adds to the tail of every request in flight.")
    dh = res["deckhand"]
    if dh:
        out.append("\n### deckhand\n")
        s2r = dh["start_to_ready_ms"]
        out.append(f"- start to ready (spawn until first `GET /readyz` 200, polled every 2 ms): median "
                   f"{s2r['median']:.1f} ms; samples {', '.join(f'{v:.1f}' for v in s2r['samples'])} ms "
                   f"(the first start meets a fresh, empty database)")
        out.append(f"- RSS: idle after start {fmt_mb(dh['idle'].get('VmRSS'))}; peak under load "
                   f"{fmt_mb(dh['rss_under_load_kb']['sampled_peak_VmRSS'])}; VmHWM "
                   f"{fmt_mb(dh['after_load_immediate'].get('VmHWM'))}; 2 s after load "
                   f"{fmt_mb(dh['after_load_2s'].get('VmRSS'))}; threads "
                   f"{dh['after_load_2s'].get('Threads', '–')}")
        if dh.get("hostile"):
            out.append(f"- beside {len(dh['hostile'][0]['flood_sent_mb'])} clients that pipeline "
                       "`GET` and never read an answer (`wrk -t1 -c8`, same route):")
            out.append("\n  | peer | route | req/s | p50 | p99 | errors | flood sent (MB each) | flood reset | peak RSS |")
            out.append("  |---|---|---:|---:|---:|---:|---|---|---:|")
            for h in dh["hostile"]:
                out.append(f"  | {h['peer']} | `{h['route']}` | {fmt_rps(h['rps'])} | {fmt_ms(h['p50_ms'])} | "
                           f"{fmt_ms(h['p99_ms'])} | {h['errors']} | {h['flood_sent_mb']} | "
                           f"{sum(h['flood_reset'])} | {fmt_mb(h['rss_peak_kb'])} |")
            out.append("")
        st = dh.get("sigterm_after_load") or {}
        out.append(f"- SIGTERM after load: exit {st.get('exit_code')} in {st.get('stop_s', 0):.2f} s")
    if res["checks"]:
        out.append("\n### Targets (issue 2)\n")
        out.append("| target | goal | measured | result |")
        out.append("|---|---|---|---|")
        for c in res["checks"]:
            out.append(f"| {c['target']} | {c['goal']} | {c['value']} | {'MET' if c['met'] else 'MISSED'} |")
    if res["observations"]:
        out.append("\n### Observations\n")
        for o in res["observations"]:
            out.append(f"- {o}")
    v = res["versions"]
    out.append("\nVersions: " + "; ".join(f"{k} {val}" for k, val in v.items()))
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
