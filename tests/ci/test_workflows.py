#!/usr/bin/python3
"""Checks the GitHub workflows, compose.yaml and docker/Dockerfile against the
pipeline's rules, since GitHub itself cannot be reached from here.

Rules (issue 3):
  workflows  valid YAML; push + pull_request triggers; top-level permissions
             empty or read-only and every job declaring its own; write scopes
             only where used (packages: write to push, id-token: write to sign,
             security-events: write to upload SARIF); every `uses:` pinned to a
             40-hex commit sha with a version comment; metadata-action with an
             immutable sha-<full sha> tag, staging on develop, release-candidate
             on release/*, never latest (alone or at all); build-push-action for
             linux/amd64 + linux/arm64 with cache, pushing only outside pull
             requests, to GHCR with GITHUB_TOKEN; Trivy gating CRITICAL/HIGH with
             unfixed ignored + SARIF upload; an SPDX SBOM; keyless cosign signing
             by digest, in jobs that run only for pushes or manual runs of
             main, develop, release/* and v* tags (the `if:` is evaluated
             for each event and ref) behind a protected `environment:`, and
             a README `cosign verify` pinned to the exact workflow and ref
             (issue 13); Qt 6.4 (debian:bookworm container), Qt 6.5 and Qt 6.8
             (install-qt-action) jobs with QT_QPA_PLATFORM=offscreen; a
             clang-format lint job; the image jobs after the tests.
  compose    the four services with healthchecks, depends_on service_healthy,
             internal backend network, frontend for the API, named volumes,
             restart: unless-stopped, deckhand confinement (read_only, tmpfs,
             cap_drop ALL, no-new-privileges, user 10001), images by variable with
             the official defaults, loopback-bound port by default, no top-level
             `name:`/`version:` that would split v1 and v2.
  Dockerfile uid 10001, STOPSIGNAL SIGTERM, exec-form HEALTHCHECK with
             `deckhand healthcheck`, OCI labels, VERSION/GIT_SHA build args.

Every rule is also run against broken copies (--self-test, on by default) to
prove that it catches what it is meant to catch.

Exit status 0 when everything holds, 1 with one line per violation otherwise.
Needs only the standard library and PyYAML (python3-yaml).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
VERSION_COMMENT_RE = re.compile(r"#\s*v?\d+(\.\d+)*")
WRITE_SCOPES_NEEDED = {
    # scope -> predicate over a job's steps that justifies it
    "packages": lambda steps: any(_uses(s).startswith("docker/build-push-action") and
                                  str(_with(s).get("push", "false")).lower() != "false"
                                  for s in steps),
    "id-token": lambda steps: any("cosign sign" in str(s.get("run", "")) for s in steps),
    "security-events": lambda steps: any(_uses(s).startswith("github/codeql-action/upload-sarif")
                                         for s in steps),
}


def _uses(step: dict) -> str:
    return str(step.get("uses", ""))


def _with(step: dict) -> dict:
    return step.get("with") or {}


def _expand(value, job: dict) -> list[str]:
    """A step's value with `${{ matrix.X }}` replaced by each of the job's matrix values."""
    text = str(value)
    m = re.fullmatch(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", text.strip())
    if not m:
        return [text]
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    return [str(v) for v in matrix.get(m.group(1)) or []]


def _triggers(doc: dict):
    # PyYAML reads the bare key `on` as the boolean True.
    return doc.get("on", doc.get(True))


# --------------------------------------------------------------------------- workflows

def check_uses_lines(name: str, text: str) -> list[str]:
    """Every `uses:` in the raw text: local, digest-pinned docker, or owner/repo@40-hex # vX."""
    errors = []
    for lineno, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(?:-\s*)?uses:\s*['\"]?([^'\"\s#]+)['\"]?\s*(#.*)?$", line)
        if not m:
            continue
        ref, comment = m.group(1), m.group(2) or ""
        where = f"{name}:{lineno}"
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            if "@sha256:" not in ref:
                errors.append(f"{where}: docker action {ref} not pinned by digest")
            continue
        action, _, version = ref.partition("@")
        if not SHA_RE.match(version):
            errors.append(f"{where}: {action} pinned to '{version}', not a full 40-hex commit sha")
        elif not VERSION_COMMENT_RE.search(comment):
            errors.append(f"{where}: {action}@{version[:7]}… has no '# vX.Y' version comment")
    return errors


def check_permissions(name: str, doc: dict) -> list[str]:
    errors = []
    top = doc.get("permissions")
    if top not in ({}, None) and not (isinstance(top, dict) and
                                       all(v in ("read", "none") for v in top.values())):
        errors.append(f"{name}: top-level permissions must be {{}} or read-only, got {top!r}")
    if top is None:
        errors.append(f"{name}: no top-level permissions (the default token may be read-write)")
    for job_id, job in (doc.get("jobs") or {}).items():
        perms = job.get("permissions")
        if perms is None:
            errors.append(f"{name}: job {job_id} declares no permissions")
            continue
        if isinstance(perms, str):
            errors.append(f"{name}: job {job_id} uses permissions '{perms}' instead of a scope list")
            continue
        steps = job.get("steps") or []
        for scope, level in perms.items():
            if level != "write":
                continue
            justify = WRITE_SCOPES_NEEDED.get(scope)
            if justify is None:
                errors.append(f"{name}: job {job_id} asks for {scope}: write, which nothing here needs")
            elif not justify(steps):
                errors.append(f"{name}: job {job_id} asks for {scope}: write but does not use it")
        for scope, justify in WRITE_SCOPES_NEEDED.items():
            if justify(steps) and perms.get(scope) != "write":
                errors.append(f"{name}: job {job_id} needs {scope}: write for what it does")
    return errors


def _all_steps(doc: dict):
    for job_id, job in (doc.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_id, job, step


def check_pipeline(workflows: dict[str, dict]) -> list[str]:
    """Rules that hold across the workflow set (a step may live in any file)."""
    errors = []
    steps = [(n, j_id, j, s) for n, d in workflows.items() for j_id, j, s in _all_steps(d)]

    def find(prefix: str):
        return [(n, j_id, j, s) for n, j_id, j, s in steps if _uses(s).startswith(prefix)]

    if not any(isinstance(_triggers(d), dict) and {"push", "pull_request"} <= set(_triggers(d))
               for d in workflows.values()):
        errors.append("no workflow runs on both push and pull_request")

    # Tags
    metas = find("docker/metadata-action")
    if not metas:
        errors.append("no docker/metadata-action step")
    for n, j_id, _, s in metas:
        w = _with(s)
        tags = str(w.get("tags", ""))
        flavor = str(w.get("flavor", ""))
        if not re.search(r"type=sha\b[^\n]*format=long", tags) or "prefix=sha-" not in tags:
            errors.append(f"{n}: {j_id}: metadata tags lack the immutable type=sha,prefix=sha-,format=long")
        if not re.search(r"value=staging,enable=\$\{\{\s*github\.ref == 'refs/heads/develop'\s*\}\}", tags):
            errors.append(f"{n}: {j_id}: no `staging` tag limited to develop")
        if not re.search(r"value=release-candidate,enable=\$\{\{\s*startsWith\(github\.ref, "
                         r"'refs/heads/release/'\)\s*\}\}", tags):
            errors.append(f"{n}: {j_id}: no `release-candidate` tag limited to release/*")
        if "latest=false" not in flavor.replace(" ", ""):
            errors.append(f"{n}: {j_id}: flavor must set latest=false (never latest as the only tag)")
        if re.search(r"value=latest\b|type=raw,latest|:latest\b", tags):
            errors.append(f"{n}: {j_id}: tags name `latest`")

    # Build and push
    builds = find("docker/build-push-action")
    pushing = [b for b in builds if str(_with(b[3]).get("push", "false")).lower() != "false"]
    if not pushing:
        errors.append("no docker/build-push-action step pushes the image")
    for n, j_id, job, s in pushing:
        w = _with(s)
        platforms = {p.strip() for p in str(w.get("platforms", "")).split(",")}
        if not {"linux/amd64", "linux/arm64"} <= platforms:
            errors.append(f"{n}: {j_id}: push builds {sorted(platforms)}, not linux/amd64 + linux/arm64")
        if not w.get("cache-from") or not w.get("cache-to"):
            errors.append(f"{n}: {j_id}: build-push-action without cache-from/cache-to")
        push = str(w.get("push"))
        try:
            if any(eval_condition(job.get("if"), "pull_request", ref) and push.strip().lower() == "true"
                   for ref in ("refs/pull/7/merge", "refs/heads/main")):
                errors.append(f"{n}: {j_id}: pushes on pull requests too")
        except ValueError as exc:
            errors.append(f"{n}: {j_id}: push condition not understood: {exc}")
        if "steps.meta.outputs.tags" not in str(w.get("tags", "")):
            errors.append(f"{n}: {j_id}: pushed tags do not come from metadata-action")
        if "GIT_SHA=${{ github.sha }}" not in str(w.get("build-args", "")):
            errors.append(f"{n}: {j_id}: GIT_SHA build arg is not the commit sha")
    logins = find("docker/login-action")
    if not any(str(_with(s).get("registry")) == "ghcr.io" and
               "secrets.GITHUB_TOKEN" in str(_with(s).get("password", "")) for *_, s in logins):
        errors.append("no docker/login-action to ghcr.io with secrets.GITHUB_TOKEN")

    # Scanning, SBOM, signing
    trivy = find("aquasecurity/trivy-action")
    gate = [t for t in trivy if str(_with(t[3]).get("exit-code")) == "1"]
    if not any({"CRITICAL", "HIGH"} <= {x.strip() for x in str(_with(t[3]).get("severity", "")).split(",")}
               and str(_with(t[3]).get("ignore-unfixed")).lower() == "true" for t in gate):
        errors.append("no Trivy step failing (exit-code 1) on CRITICAL,HIGH with ignore-unfixed")
    if not any(str(_with(t[3]).get("format")) == "sarif" for t in trivy):
        errors.append("no Trivy SARIF report")
    if not find("github/codeql-action/upload-sarif"):
        errors.append("no SARIF upload (github/codeql-action/upload-sarif)")
    sboms = find("anchore/sbom-action")
    if not any(str(_with(s).get("format")).startswith("spdx") for *_, s in sboms):
        errors.append("no SPDX SBOM (anchore/sbom-action with format spdx-json)")
    if not find("sigstore/cosign-installer"):
        errors.append("cosign is not installed anywhere")
    sign_steps = [(n, j_id, s) for n, j_id, _, s in steps if "cosign sign" in str(s.get("run", ""))]
    if not sign_steps:
        errors.append("no `cosign sign` step")
    for n, j_id, s in sign_steps:
        run, env = str(s.get("run", "")), str(s.get("env", ""))
        if "--key" in run:
            errors.append(f"{n}: {j_id}: cosign signs with a key, not keyless")
        if not ("@${DIGEST}" in run and "outputs.digest" in env) and "outputs.digest }}" not in run:
            errors.append(f"{n}: {j_id}: cosign does not sign by digest")
        if "--yes" not in run:
            errors.append(f"{n}: {j_id}: cosign sign without --yes would wait for a prompt")

    # Build matrix and lint
    jobs = {(n, j_id): j for n, d in workflows.items() for j_id, j in (d.get("jobs") or {}).items()}

    def container_image(job: dict) -> str:
        c = job.get("container")
        return str(c.get("image") if isinstance(c, dict) else c or "")

    if not any(container_image(j).startswith("debian:bookworm") and
               any("ctest" in str(s.get("run", "")) for s in j.get("steps") or [])
               for j in jobs.values()):
        errors.append("no job builds and tests in a debian:bookworm container (Qt 6.4)")
    qt_versions = {v for _, _, j, s in steps if _uses(s).startswith("jurplel/install-qt-action")
                   for v in _expand(_with(s).get("version", ""), j)}
    for minor, why in (("6.5", "the responder API of 6.5-6.7"), ("6.8", "QHttpHeaders")):
        if not any(v.startswith(minor) for v in qt_versions):
            errors.append(f"no Qt {minor} job via install-qt-action ({why})")
    if not any(str((d.get("env") or {}).get("QT_QPA_PLATFORM")) == "offscreen"
               for d in workflows.values()) and \
            not all(str((j.get("env") or {}).get("QT_QPA_PLATFORM")) == "offscreen"
                    for j in jobs.values()):
        errors.append("QT_QPA_PLATFORM=offscreen is not set for the test jobs")
    if not any("clang-format" in str(s.get("run", "")) and "--Werror" in str(s.get("run", ""))
               for *_, s in steps):
        errors.append("no clang-format check (--dry-run --Werror)")

    # The image jobs come after the tests.
    test_jobs = {j_id for (_, j_id), j in jobs.items()
                 if any("ctest" in str(s.get("run", "")) for s in j.get("steps") or [])}
    for (n, j_id), j in jobs.items():
        if any(_uses(s).startswith("docker/build-push-action") for s in j.get("steps") or []):
            needs = _needs_closure(j_id, {k[1]: v for k, v in jobs.items() if k[0] == n})
            missing = test_jobs - needs - {j_id}
            if missing:
                errors.append(f"{n}: {j_id} builds the image without waiting for {sorted(missing)}")
    return errors


# Which (event, ref) pairs may publish, and which must never (issue 13).
PUBLISH_ALLOWED = [("push", "refs/heads/main"), ("push", "refs/heads/develop"),
                   ("push", "refs/heads/release/1.4"), ("push", "refs/tags/v1.2.0"),
                   ("workflow_dispatch", "refs/heads/main")]
PUBLISH_REFUSED = [("pull_request", "refs/pull/7/merge"), ("pull_request", "refs/heads/main"),
                   ("workflow_dispatch", "refs/heads/feature/x"), ("push", "refs/heads/feature/x"),
                   ("push", "refs/heads/mainline"), ("push", "refs/tags/x1"),
                   ("schedule", "refs/heads/main"), ("workflow_dispatch", "refs/heads/developer")]


def eval_condition(expr, event: str, ref: str) -> bool:
    """Evaluates a GitHub Actions `if:` made of github.event_name, github.ref,
    ==, !=, &&, ||, !, parentheses, startsWith/endsWith/contains and string
    literals, for one event and ref. Anything else raises ValueError."""
    if expr is None or str(expr).strip() == "":
        return True  # no condition: the job always runs
    text = str(expr).strip()
    m = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
    if m:
        text = m.group(1)
    tokens = re.findall(r"\s*(\|\||&&|==|!=|!|\(|\)|,|'(?:[^']|'')*'|[A-Za-z_][\w.]*)", text)
    if "".join(tokens).replace(" ", "") != re.sub(r"\s+", "", text):
        raise ValueError(f"unsupported expression: {text}")
    tokens = [t.strip() for t in tokens]
    pos = 0
    values = {"github.event_name": event, "github.ref": ref}
    funcs = {"startswith": lambda a, b: a.lower().startswith(b.lower()),
             "endswith": lambda a, b: a.lower().endswith(b.lower()),
             "contains": lambda a, b: b.lower() in a.lower()}

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take(want=None):
        nonlocal pos
        t = peek()
        if t is None or (want is not None and t != want):
            raise ValueError(f"expected {want} at {t} in {text}")
        pos += 1
        return t

    def primary():
        t = take()
        if t == "(":
            v = disjunction()
            take(")")
            return v
        if t == "!":
            return not truthy(primary())
        if t.startswith("'"):
            return t[1:-1].replace("''", "'")
        if t.lower() in funcs and peek() == "(":
            take("(")
            a = disjunction()
            take(",")
            b = disjunction()
            take(")")
            return funcs[t.lower()](str(a), str(b))
        if t in values:
            return values[t]
        if t in ("true", "false"):
            return t == "true"
        raise ValueError(f"unknown name {t} in {text}")

    def truthy(v):
        return bool(v)

    def comparison():
        left = primary()
        while peek() in ("==", "!="):
            op = take()
            right = primary()
            left = (str(left).lower() == str(right).lower()) == (op == "==")
        return left

    def conjunction():
        v = comparison()
        while peek() == "&&":
            take()
            r = comparison()
            v = truthy(v) and truthy(r)
        return v

    def disjunction():
        v = conjunction()
        while peek() == "||":
            take()
            r = conjunction()
            v = truthy(v) or truthy(r)
        return v

    result = disjunction()
    if pos != len(tokens):
        raise ValueError(f"trailing tokens in {text}")
    return truthy(result)


def check_publishing(workflows: dict[str, dict]) -> list[str]:
    """Jobs that push an image or sign one run only for reviewed refs, behind
    a protected environment; no other event or ref can reach them."""
    errors = []
    found = False
    for n, d in workflows.items():
        for j_id, job in (d.get("jobs") or {}).items():
            steps = job.get("steps") or []
            pushes = any(_uses(s).startswith("docker/build-push-action") and
                         str(_with(s).get("push", "false")).lower() != "false" for s in steps)
            signs = any("cosign sign" in str(s.get("run", "")) or "cosign attest" in str(s.get("run", ""))
                        for s in steps)
            if not (pushes or signs):
                continue
            found = True
            env = job.get("environment")
            env_name = env.get("name") if isinstance(env, dict) else env
            if not env_name:
                errors.append(f"{n}: {j_id} publishes without a protected `environment:`")
            try:
                for event, ref in PUBLISH_ALLOWED:
                    if not eval_condition(job.get("if"), event, ref):
                        errors.append(f"{n}: {j_id} does not publish for {event} on {ref}")
                for event, ref in PUBLISH_REFUSED:
                    if eval_condition(job.get("if"), event, ref):
                        errors.append(f"{n}: {j_id} would publish for {event} on {ref}")
            except ValueError as exc:
                errors.append(f"{n}: {j_id}: publish condition not understood: {exc}")
    if not found:
        errors.append("no job publishes the image")
    return errors


def check_verify_docs(readme: str) -> list[str]:
    """The documented cosign verification pins the exact workflow and ref."""
    errors = []
    cmds = re.findall(r"cosign verify(?:\\\n|[^\n])*", readme)
    if not cmds:
        return ["README.md shows no `cosign verify` command"]
    for c in cmds:
        if "--certificate-identity-regexp" in c:
            errors.append("README.md: cosign verify uses --certificate-identity-regexp (any ref would match)")
        if not re.search(r"--certificate-identity\s+https://github\.com/\S+/\.github/workflows/ci\.yml@refs/(heads|tags)/\S+", c):
            errors.append("README.md: cosign verify does not name the exact workflow and ref")
        if "--certificate-oidc-issuer https://token.actions.githubusercontent.com" not in c:
            errors.append("README.md: cosign verify does not pin GitHub's OIDC issuer")
    return errors


def _needs_closure(job_id: str, jobs: dict) -> set[str]:
    seen: set[str] = set()
    todo = [job_id]
    while todo:
        needs = jobs.get(todo.pop(), {}).get("needs") or []
        for dep in [needs] if isinstance(needs, str) else needs:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


# --------------------------------------------------------------------------- compose

def check_compose(doc: dict) -> list[str]:
    errors = []
    name = "compose.yaml"
    for key in ("name", "version"):
        if key in doc:
            errors.append(f"{name}: top-level `{key}:` (not accepted alike by docker-compose 1.29 and v2)")
    services = doc.get("services") or {}
    for svc in ("postgres", "redis", "proxy", "api", "worker"):
        if svc not in services:
            errors.append(f"{name}: no `{svc}` service")
    expected_images = {
        "postgres": r"^\$\{POSTGRES_IMAGE:-postgres:15-alpine\}$",
        "redis": r"^\$\{REDIS_IMAGE:-redis:7-alpine\}$",
        "proxy": r"^\$\{PROXY_IMAGE:-haproxy:2\.6\}$",
        "api": r"^\$\{DECKHAND_IMAGE:-ghcr\.io/[^}]+/deckhand\}:\$\{DECKHAND_TAG:-(?!latest\})[^}]+\}$",
        "worker": r"^\$\{DECKHAND_IMAGE:-ghcr\.io/[^}]+/deckhand\}:\$\{DECKHAND_TAG:-(?!latest\})[^}]+\}$",
    }
    health_cmd = {"postgres": "pg_isready", "redis": "redis-cli", "api": "healthcheck",
                  "worker": "healthcheck"}
    for svc, conf in services.items():
        where = f"{name}: {svc}"
        if svc in expected_images and not re.match(expected_images[svc], str(conf.get("image", ""))):
            errors.append(f"{where}: image {conf.get('image')!r} is not set by variable with the expected default")
        hc = conf.get("healthcheck") or {}
        test = hc.get("test")
        # The proxy's image has no HTTP client to check itself with; the
        # panel's health URL goes through it, so it is watched from outside.
        if svc == "proxy":
            pass
        elif not test or hc.get("disable"):
            errors.append(f"{where}: no healthcheck")
        elif svc in health_cmd and health_cmd[svc] not in " ".join(map(str, test)):
            errors.append(f"{where}: healthcheck does not use {health_cmd[svc]}")
        if conf.get("restart") != "unless-stopped":
            errors.append(f"{where}: restart is {conf.get('restart')!r}, not unless-stopped")
        if "container_name" in conf:
            errors.append(f"{where}: container_name prevents several projects side by side")
        for vol in conf.get("volumes") or []:
            text = str(vol.get("source") if isinstance(vol, dict) else vol)
            source = text.split(":")[0]
            # The proxy's configuration file, read-only from the checkout.
            if svc == "proxy" and source.startswith("./docker/") and text.endswith(":ro"):
                continue
            if source.startswith((".", "/")):
                errors.append(f"{where}: bind mount {source} instead of a named volume")
            elif source not in (doc.get("volumes") or {}):
                errors.append(f"{where}: volume {source} is not declared under volumes:")
    proxy = services.get("proxy") or {}
    for key, want in (("read_only", True),):
        if proxy.get(key) is not want:
            errors.append(f"{name}: proxy: {key} is not {want}")
    if "ALL" not in (proxy.get("cap_drop") or []):
        errors.append(f"{name}: proxy: cap_drop lacks ALL")
    if "no-new-privileges:true" not in (proxy.get("security_opt") or []):
        errors.append(f"{name}: proxy: security_opt lacks no-new-privileges:true")
    for svc in ("api", "worker"):
        conf = services.get(svc) or {}
        where = f"{name}: {svc}"
        if conf.get("read_only") is not True:
            errors.append(f"{where}: read_only is not true")
        tmpfs = conf.get("tmpfs") or []
        tmpfs = [tmpfs] if isinstance(tmpfs, str) else tmpfs
        if not any(str(t).split(":")[0] == "/tmp" for t in tmpfs):
            errors.append(f"{where}: no tmpfs on /tmp")
        if "ALL" not in (conf.get("cap_drop") or []):
            errors.append(f"{where}: cap_drop lacks ALL")
        if conf.get("cap_add"):
            errors.append(f"{where}: cap_add {conf.get('cap_add')} gives capabilities back")
        if "no-new-privileges:true" not in (conf.get("security_opt") or []):
            errors.append(f"{where}: security_opt lacks no-new-privileges:true")
        if str(conf.get("user", "")).split(":")[0] != "10001":
            errors.append(f"{where}: user is {conf.get('user')!r}, not 10001")
        if conf.get("privileged"):
            errors.append(f"{where}: privileged")
        deps = conf.get("depends_on") or {}
        for dep in ("postgres", "redis"):
            cond = (deps.get(dep) or {}).get("condition") if isinstance(deps, dict) else None
            if cond != "service_healthy":
                errors.append(f"{where}: depends_on {dep} without condition: service_healthy")
    networks = doc.get("networks") or {}
    if not (networks.get("backend") or {}).get("internal"):
        errors.append(f"{name}: backend network is not internal")
    if "frontend" not in networks or (networks.get("frontend") or {}).get("internal"):
        errors.append(f"{name}: no non-internal frontend network")

    def nets(svc: str) -> set[str]:
        n = (services.get(svc) or {}).get("networks") or []
        return set(n if isinstance(n, list) else n.keys())
    for svc in ("postgres", "redis", "worker"):
        if nets(svc) != {"backend"}:
            errors.append(f"{name}: {svc} should be on the backend network only, is on {sorted(nets(svc))}")
        if (services.get(svc) or {}).get("ports"):
            errors.append(f"{name}: {svc} publishes ports")
    if nets("api") != {"frontend", "backend"}:
        errors.append(f"{name}: api should be on frontend and backend, is on {sorted(nets('api'))}")
    if nets("proxy") != {"frontend"}:
        errors.append(f"{name}: proxy should be on the frontend network only, is on {sorted(nets('proxy'))}")
    # Two api containers run side by side during a start-first rollout: the
    # proxy owns the published port, the api publishes none.
    if (services.get("api") or {}).get("ports"):
        errors.append(f"{name}: api publishes ports (the proxy owns the published port)")
    ports = (services.get("proxy") or {}).get("ports") or []
    if not ports:
        errors.append(f"{name}: proxy publishes no port")
    for port in ports:
        text = str(port.get("host_ip", "") if isinstance(port, dict) else port)
        if not re.match(r"^(\$\{[A-Z_]+:-127\.0\.0\.1\}|127\.0\.0\.1):", text) and \
                text not in ("127.0.0.1",):
            errors.append(f"{name}: proxy port {port!r} is not bound to loopback by default")
    return errors


# --------------------------------------------------------------------------- Dockerfile

def check_dockerfile(text: str) -> list[str]:
    errors = []
    name = "docker/Dockerfile"
    stages = re.split(r"(?m)^FROM\s+", text)
    final = stages[-1] if len(stages) > 1 else ""
    if not re.search(r"(?m)^USER\s+10001(:10001)?\s*$", final):
        errors.append(f"{name}: final stage does not run as USER 10001")
    if not re.search(r"(?m)^STOPSIGNAL\s+SIGTERM\s*$", final):
        errors.append(f"{name}: final stage lacks STOPSIGNAL SIGTERM")
    hc = re.search(r"(?ms)^HEALTHCHECK\b(.*?)(?<!\\)$", final)
    if not hc or not re.search(r'CMD\s+\[\s*"[^"]*deckhand",\s*"healthcheck"', hc.group(1)):
        errors.append(f"{name}: no exec-form HEALTHCHECK running `deckhand healthcheck`")
    for label in ("source", "revision", "version", "created"):
        if f"org.opencontainers.image.{label}=" not in final:
            errors.append(f"{name}: final stage lacks the OCI label org.opencontainers.image.{label}")
    for arg in ("VERSION", "GIT_SHA", "BUILD_TIME", "IMAGE_TAG"):
        if not re.search(rf"(?m)^ARG\s+{arg}\b", text):
            errors.append(f"{name}: no build arg {arg}")
    if re.search(r"(?m)^RUN\b.*\bcurl\b", final):
        errors.append(f"{name}: final stage installs curl")
    return errors


# --------------------------------------------------------------------------- driver

def load_all() -> tuple[dict[str, str], dict[str, dict], dict, str, list[str]]:
    errors = []
    texts, docs = {}, {}
    wf_dir = REPO / ".github/workflows"
    files = sorted(list(wf_dir.glob("*.yml")) + list(wf_dir.glob("*.yaml")))
    if not files:
        errors.append(".github/workflows has no workflow")
    for path in files:
        rel = str(path.relative_to(REPO))
        texts[rel] = path.read_text()
        try:
            docs[rel] = yaml.safe_load(texts[rel])
        except yaml.YAMLError as exc:
            errors.append(f"{rel}: not valid YAML: {exc}")
            continue
        if not isinstance(docs[rel], dict) or not docs[rel].get("jobs") or _triggers(docs[rel]) is None:
            errors.append(f"{rel}: not a workflow (needs `on:` and `jobs:`)")
    try:
        compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    except (OSError, yaml.YAMLError) as exc:
        errors.append(f"compose.yaml: {exc}")
        compose = {}
    try:
        dockerfile = (REPO / "docker/Dockerfile").read_text()
    except OSError as exc:
        errors.append(f"docker/Dockerfile: {exc}")
        dockerfile = ""
    return texts, docs, compose, dockerfile, errors


def check_everything(texts, docs, compose, dockerfile) -> list[str]:
    errors = []
    for rel, text in texts.items():
        errors += check_uses_lines(rel, text)
    for rel, doc in docs.items():
        if isinstance(doc, dict):
            errors += check_permissions(rel, doc)
    errors += check_pipeline({k: v for k, v in docs.items() if isinstance(v, dict)})
    errors += check_publishing({k: v for k, v in docs.items() if isinstance(v, dict)})
    errors += check_verify_docs((REPO / "README.md").read_text())
    errors += check_compose(compose or {})
    errors += check_dockerfile(dockerfile)
    if (REPO / ".env").exists() and _tracked(".env"):
        errors.append(".env is committed; only .env.example may be")
    if not (REPO / ".env.example").exists():
        errors.append(".env.example is missing")
    return errors


def _tracked(rel: str) -> bool:
    import subprocess
    proc = subprocess.run(["git", "-C", str(REPO), "ls-files", "--error-unmatch", rel],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc.returncode == 0


def self_test(texts, docs, compose, dockerfile) -> list[str]:
    """Breaks one rule at a time in memory; each must be reported."""
    failures = []
    wf = next(iter(docs), None)

    def expect(label: str, errs: list[str], pattern: str) -> None:
        if not any(re.search(pattern, e) for e in errs):
            failures.append(f"self-test '{label}' not detected (wanted /{pattern}/ in {errs[:3]})")

    if wf:
        text = texts[wf]
        expect("tag-pinned action", check_uses_lines(wf, re.sub(r"@[0-9a-f]{40}", "@v4", text, count=1)),
               "not a full 40-hex")
        expect("sha without comment", check_uses_lines(wf, re.sub(r"(@[0-9a-f]{40})\s*#[^\n]*", r"\1", text,
                                                                 count=1)), "version comment")
        broken = copy.deepcopy(docs)
        broken[wf]["permissions"] = "write-all"
        expect("write-all", check_permissions(wf, broken[wf]), "top-level permissions")
        broken = copy.deepcopy(docs)
        job = next(iter(broken[wf]["jobs"].values()))
        job.pop("permissions", None)
        expect("job without permissions", check_permissions(wf, broken[wf]), "declares no permissions")
        broken = copy.deepcopy(docs)
        next(iter(broken[wf]["jobs"].values()))["permissions"] = {"contents": "read", "packages": "write"}
        expect("needless packages: write", check_permissions(wf, broken[wf]), "does not use it")

        def mutate_steps(prefix: str, fn) -> dict:
            b = copy.deepcopy(docs)
            for d in b.values():
                for _, _, s in _all_steps(d):
                    if _uses(s).startswith(prefix):
                        fn(s)
            return b
        expect("latest tag", check_pipeline(mutate_steps("docker/metadata-action",
               lambda s: s["with"].update(flavor="latest=true"))), "latest=false")
        expect("no sha tag", check_pipeline(mutate_steps("docker/metadata-action",
               lambda s: s["with"].update(tags="type=ref,event=branch"))), "immutable")
        expect("single arch", check_pipeline(mutate_steps("docker/build-push-action",
               lambda s: s["with"].update(platforms="linux/amd64"))), "linux/arm64")
        b = copy.deepcopy(docs)
        for d in b.values():
            for _, job, s in _all_steps(d):
                if _uses(s).startswith("docker/build-push-action") and \
                        str(_with(s).get("push", "false")).lower() != "false":
                    s["with"]["push"] = "true"
                    job.pop("if", None)
        expect("push on PRs", check_pipeline(b), "pull requests")
        expect("no trivy gate", check_pipeline(mutate_steps("aquasecurity/trivy-action",
               lambda s: s["with"].update({"exit-code": "0"}))), "Trivy")
        b = copy.deepcopy(docs)
        for d in b.values():
            for job in (d.get("jobs") or {}).values():
                matrix = (job.get("strategy") or {}).get("matrix") or {}
                if "qt" in matrix:
                    matrix["qt"] = [v for v in matrix["qt"] if not str(v).startswith("6.5")]
        expect("no Qt 6.5", check_pipeline(b), "Qt 6.5")
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["cap_drop"] = []
    expect("api keeps capabilities", check_compose(broken), "cap_drop")
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["read_only"] = False
    expect("writable worker", check_compose(broken), "read_only")
    broken = copy.deepcopy(compose)
    broken["networks"]["backend"]["internal"] = False
    expect("open backend", check_compose(broken), "internal")
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["depends_on"] = ["postgres", "redis"]
    expect("plain depends_on", check_compose(broken), "service_healthy")
    broken = copy.deepcopy(compose)
    broken["services"]["proxy"]["ports"] = ["8000:8080"]
    expect("port on all interfaces", check_compose(broken), "loopback")
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["ports"] = ["127.0.0.1:8000:8000"]
    expect("api publishing next to the proxy", check_compose(broken), "proxy owns")
    broken = copy.deepcopy(compose)
    broken["services"]["proxy"]["read_only"] = False
    expect("writable proxy", check_compose(broken), "proxy: read_only")
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["image"] = "ghcr.io/pilothouse/deckhand:latest"
    expect("fixed image", check_compose(broken), "by variable")
    wfs = {k: v for k, v in docs.items() if isinstance(v, dict)}

    def with_publish(fn) -> dict:
        b = copy.deepcopy(wfs)
        for d in b.values():
            for job in (d.get("jobs") or {}).values():
                if any("cosign sign" in str(s.get("run", "")) for s in job.get("steps") or []):
                    fn(job)
        return b
    expect("publish on any push", check_publishing(with_publish(
        lambda j: j.update({"if": "github.event_name != 'pull_request'"}))), "feature/x")
    expect("publish on dispatch anywhere", check_publishing(with_publish(
        lambda j: j.update({"if": "github.event_name == 'workflow_dispatch' || github.ref == 'refs/heads/main'"}))),
        "would publish")
    expect("publish with prefix refs", check_publishing(with_publish(
        lambda j: j.update({"if": "github.event_name == 'push' && (startsWith(github.ref, 'refs/heads/main') "
                                  "|| startsWith(github.ref, 'refs/heads/develop') || "
                                  "startsWith(github.ref, 'refs/heads/release/') || "
                                  "startsWith(github.ref, 'refs/tags/'))"}))), "mainline|x1|developer")
    expect("publish without environment", check_publishing(with_publish(lambda j: j.pop("environment", None))),
           "protected")
    expect("publish unconditionally", check_publishing(with_publish(lambda j: j.pop("if", None))),
           "pull_request")
    readme = (REPO / "README.md").read_text()
    expect("verify by regexp", check_verify_docs(readme.replace("--certificate-identity ",
                                                                "--certificate-identity-regexp ")), "regexp")
    expect("verify any ref", check_verify_docs(readme.replace("ci.yml@refs/heads/main", "ci.yml")),
           "exact workflow and ref")
    expect("root user", check_dockerfile(dockerfile.replace("USER 10001:10001", "USER root")), "USER 10001")
    expect("shell healthcheck", check_dockerfile(re.sub(r"CMD \[[^\]]*\"healthcheck\"\]",
                                                        "CMD deckhand healthcheck", dockerfile)), "HEALTHCHECK")
    return failures


def check_stack(doc: dict) -> list[str]:
    """compose.stack.yaml: what docker stack deploy needs, and the stack as
    hardened as compose.yaml where Swarm allows it."""
    name = "compose.stack.yaml"
    errors = []
    if not str(doc.get("version", "")).startswith("3"):
        errors.append(f"{name}: version must be 3.x (the 20.10 stack deployer needs one)")
    services = doc.get("services") or {}
    for want in ("postgres", "redis", "proxy", "api", "worker"):
        if want not in services:
            errors.append(f"{name}: service {want} is missing")
    declared = doc.get("secrets") or {}
    for key, secret in declared.items():
        if not (secret or {}).get("external"):
            errors.append(f"{name}: secret {key} must be external (made by the panel from .env)")
    for svc_name, svc in services.items():
        svc = svc or {}
        where = f"{name}: {svc_name}"
        if "build" in svc or not svc.get("image"):
            errors.append(f"{where}: needs an image and no build")
        if "depends_on" in svc:
            errors.append(f"{where}: depends_on (the stack deployer refuses conditions)")
        deploy = svc.get("deploy") or {}
        if "restart_policy" not in deploy or "resources" not in deploy:
            errors.append(f"{where}: deploy needs restart_policy and resources")
        if svc_name != "proxy" and deploy.get("endpoint_mode") != "dnsrr":
            errors.append(f"{where}: endpoint_mode must be dnsrr (a virtual IP needs IPVS)")
        for port in svc.get("ports") or []:
            if not isinstance(port, dict) or port.get("mode") != "host" or "host_ip" in port:
                errors.append(f"{where}: ports must be long form, mode host, no host_ip")
        if svc_name in ("api", "worker", "proxy"):
            if svc.get("read_only") is not True:
                errors.append(f"{where}: read_only must be true")
            if "ALL" not in (svc.get("cap_drop") or []):
                errors.append(f"{where}: cap_drop must include ALL")
        env = svc.get("environment") or {}
        for key, value in env.items():
            if key.endswith(("PASSWORD", "_URL")) and not key.endswith("_FILE") and value:
                errors.append(f"{where}: {key} holds a secret in the environment; use {key}_FILE")
        for ref in svc.get("secrets") or []:
            source = ref if isinstance(ref, str) else ref.get("source")
            if source not in declared:
                errors.append(f"{where}: secret {source} is not declared")
            if isinstance(ref, str) or ref.get("mode") != 0o400 or not ref.get("uid"):
                errors.append(f"{where}: secret {source} needs mode 0400 and its reader's uid")
    api = services.get("api") or {}
    if str((api.get("deploy") or {}).get("replicas", "")).find("2") < 0:
        errors.append(f"{name}: api must run 2 replicas by default")
    if "ports" in api:
        errors.append(f"{name}: api publishes a port; the proxy owns it")
    networks = doc.get("networks") or {}
    if not (networks.get("backend") or {}).get("internal"):
        errors.append(f"{name}: the backend network must be internal")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description="Check workflows, compose.yaml and the Dockerfile.")
    parser.add_argument("--no-self-test", action="store_true", help="skip the broken-copy checks")
    args = parser.parse_args()
    texts, docs, compose, dockerfile, errors = load_all()
    if not errors:
        errors += check_everything(texts, docs, compose, dockerfile)
    try:
        stack = yaml.safe_load((REPO / "compose.stack.yaml").read_text())
        errors += check_stack(stack)
    except (OSError, yaml.YAMLError) as exc:
        errors.append(f"compose.stack.yaml: {exc}")
        stack = None
    if not errors and not args.no_self_test:
        errors += self_test(texts, docs, compose, dockerfile)
        # A broken copy of the stack file must fail.
        broken = copy.deepcopy(stack)
        del broken["services"]["postgres"]["deploy"]["endpoint_mode"]
        broken["services"]["api"]["secrets"][0]["mode"] = 0o444
        broken["services"]["worker"]["depends_on"] = ["postgres"]
        found = check_stack(broken)
        for want in ("postgres: endpoint_mode", "api: secret deckhand_database_url needs mode",
                     "worker: depends_on"):
            if not any(want in e for e in found):
                errors.append(f"self-test: a stack file with '{want}' broken passed the checks")
    for e in errors:
        print(f"FAIL {e}")
    if errors:
        print(f"{len(errors)} violation(s)")
        return 1
    print(f"ok: {len(texts)} workflow(s), compose.yaml and docker/Dockerfile follow the pipeline rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
