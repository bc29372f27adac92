"""Rehearse a container of the image: the runtime stage, replayed, serving for real.

On top of the replay's substitutions (see replay.py), standing in for `docker run`:
- the server listens on 127.0.0.1 and a free port instead of 0.0.0.0:8000: the
  rehearsal sets BACKPROP_HOST and BACKPROP_PORT, and writes that port wherever
  the EXPOSEd one appears in ENTRYPOINT, CMD and HEALTHCHECK;
- the VOLUME folders start empty, as a new named volume on /data does;
- the server and the HEALTHCHECK run with the uid:gid of USER, HOME of that user,
  the image's ENV (paths moved) and OpenBLAS settings of this machine, in a fresh
  process group that is killed at the end as a container's processes are.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dockerfile import Stage, container_argv, exposed_ports, healthcheck, stages
from .replay import Build, ReplayError, StageReplayer, StageResult, host_env

READY_WITHIN = 30.0
STOP_WITHIN = 10.0
PREDICT_BODY = {"instances": [[5.1, 3.5]]}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Report:
    """The outcome of one rehearsal: every check, and the server's output."""

    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    log: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    def add(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, passed, detail))
        return passed

    def summary(self) -> str:
        lines = [f"{'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        lines += [f"note: {n}" for n in self.notes]
        lines += ["--- server output (last 4000 characters) ---", self.log[-4000:]]
        return "\n".join(lines)


@dataclass(frozen=True)
class Container:
    """How to run the rehearsed container's processes."""

    argv: list[str]
    healthcheck: list[str] | None
    healthcheck_timeout: float
    env: dict[str, str]
    cwd: Path
    uid: int
    gid: int
    stop_signal: signal.Signals
    store: Path
    port: int
    grpc_port: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rehearse(dockerfile: Path, context: Path, build: Build) -> Report:
    """Replay the last stage of `dockerfile` on `build` and put it through its paces."""
    report = Report()
    all_stages = stages(dockerfile.read_text())
    if [s.instructions for s in all_stages[:-1]] != build.build_stages:
        raise ReplayError(f"the build stages of {dockerfile} differ from the ones built")
    runtime = all_stages[-1]
    if build.paths.root.exists():
        shutil.rmtree(build.paths.root)
    state = StageReplayer(build.paths, context, build.stage_roots, build.log).replay(runtime)
    report.notes += state.notes
    container = _container(runtime, state, build, report)
    logfile = build.workdir / "server.log"
    try:
        _exercise(container, report, logfile)
    finally:
        report.log = logfile.read_text(errors="replace") if logfile.exists() else ""
    return report


def _container(runtime: Stage, state: StageResult, build: Build, report: Report) -> Container:
    uid, gid, home = _user(state)
    if not build.shared_python and os.geteuid() == 0:
        report.notes.append("no Python here that another user may run: the server runs as root")
        uid, gid = 0, 0
    report.add("USER is not root", uid != 0, f"USER {state.user} -> uid {uid}, gid {gid}")
    ports = exposed_ports(runtime)
    inside = state.env.get("BACKPROP_PORT", "8000")
    grpc_inside = state.env.get("BACKPROP_GRPC_PORT", "8001")
    served = {int(inside)} | ({int(grpc_inside)} if grpc_inside not in ("", "0") else set())
    report.add(
        "EXPOSE matches BACKPROP_PORT and BACKPROP_GRPC_PORT",
        ports == served,
        f"{ports} vs {inside}, {grpc_inside}",
    )
    port = free_port()
    grpc_port = free_port() if grpc_inside not in ("", "0") else 0
    while grpc_port == port:
        grpc_port = free_port()
    env = host_env(state.env, build.paths)
    env |= {"HOME": home, "BACKPROP_HOST": "127.0.0.1", "BACKPROP_PORT": str(port)}
    env["BACKPROP_GRPC_PORT"] = str(grpc_port)
    store = build.paths.text(state.env.get("BACKPROP_MODEL_DIR", "./models"))
    cwd = build.paths.path(state.workdir)
    check = healthcheck(runtime)
    stop = runtime.last("STOPSIGNAL")
    return Container(
        argv=_resolve(_with_port(container_argv(runtime), inside, port), build, env),
        healthcheck=None if check is None else _with_port(check.argv, inside, port),
        healthcheck_timeout=30.0 if check is None else check.timeout,
        env=env,
        cwd=cwd,
        uid=uid,
        gid=gid,
        stop_signal=signal.Signals[stop.args.strip()] if stop else signal.SIGTERM,
        store=cwd / store if not store.startswith("/") else Path(store),
        port=port,
        grpc_port=grpc_port,
    )


def _user(state: StageResult) -> tuple[int, int, str]:
    """The numeric ids and home of USER, from the accounts the stage would make."""
    name, _, group = state.user.partition(":")
    account = state.users.get(name)
    if name.isdigit():
        uid = int(name)
        account = next((a for a in state.users.values() if a.uid == uid), None)
    elif account is not None and account.uid is not None:
        uid = account.uid
    else:
        raise ReplayError(f"USER {state.user}: no uid known for {name!r}")
    if group.isdigit():
        gid = int(group)
    elif group:
        known = state.groups.get(group)
        if known is None or known.gid is None:
            raise ReplayError(f"USER {state.user}: no gid known for {group!r}")
        gid = known.gid
    else:
        gid = account.gid if account is not None and account.gid is not None else 0
    home = (account.home if account else None) or ("/root" if uid == 0 else "/")
    return uid, gid, home


def _with_port(argv: list[str], inside: str, port: int) -> list[str]:
    return [str(port) if a == inside else a.replace(f":{inside}", f":{port}") for a in argv]


def _resolve(argv: list[str], build: Build, env: dict[str, str]) -> list[str]:
    """Map paths in argv, and find its program on the container's PATH as Docker does."""
    mapped = [build.paths.text(a) for a in argv]
    if "/" not in mapped[0]:
        found = shutil.which(mapped[0], path=env.get("PATH", ""))
        if found is not None:
            mapped[0] = found
    return mapped


def _exercise(container: Container, report: Report, logfile: Path) -> None:
    health = container.healthcheck
    if not report.add("HEALTHCHECK present", health is not None):
        return
    assert health is not None
    code = _run_healthcheck(container)
    report.add("HEALTHCHECK fails while no server listens", code != 0, f"exit status {code}")
    with logfile.open("ab") as log:
        version = _first_run(container, report, log)
        if version is None:
            return
        _second_run(container, report, log, version)
    _check_store(container, version, report)


def _first_run(container: Container, report: Report, log: Any) -> str | None:
    process = _start(container, report, log)
    if process is None:
        return None
    try:
        version = _wait_ready(container, process, report)
        if version is None:
            return None
        code = _run_healthcheck(container)
        report.add("HEALTHCHECK exits 0 when ready", code == 0, f"exit status {code}")
        _check_predict(container, version, report)
        _check_grpc_health(container, report)
        _check_stop(container, process, report)
        return version
    finally:
        _kill_group(process)


def _check_grpc_health(container: Container, report: Report) -> None:
    """The gRPC port answers the standard health service: SERVING once ready."""
    if not container.grpc_port:
        return
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{container.grpc_port}") as channel:
        try:
            status = (
                health_pb2_grpc.HealthStub(channel)
                .Check(health_pb2.HealthCheckRequest(), timeout=10)
                .status
            )
        except grpc.RpcError as error:
            report.add("gRPC health SERVING", False, f"{error.code()}: {error.details()}")
            return
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    report.add("gRPC health SERVING", status == health_pb2.HealthCheckResponse.SERVING, name)


def _second_run(container: Container, report: Report, log: Any, version: str) -> None:
    """A restarted container on the same volume serves the same version."""
    process = _start(container, report, log)
    if process is None:
        return
    try:
        again = _wait_ready(container, process, report, "after a restart")
        report.add("restart keeps the model", again == version, f"{again} after {version}")
        if again is not None:
            _check_stop(container, process, report, "after a restart")
    finally:
        _kill_group(process)


def _start(container: Container, report: Report, log: Any) -> subprocess.Popen[bytes] | None:
    try:
        process = subprocess.Popen(
            container.argv,
            cwd=container.cwd,
            env=container.env,
            user=container.uid,
            group=container.gid,
            extra_groups=[],
            process_group=0,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    except OSError as error:
        report.add("server starts", False, f"{container.argv}: {error}")
        return None
    return process


def _wait_ready(
    container: Container, process: subprocess.Popen[bytes], report: Report, when: str = ""
) -> str | None:
    name = f"ready within {READY_WITHIN:.0f} s {when}".strip()
    start = time.monotonic()
    while time.monotonic() - start < READY_WITHIN:
        if process.poll() is not None:
            report.add(name, False, f"the server exited with status {process.returncode}")
            return None
        status, body = _http(container.port, "GET", "/health/ready")
        if status == 200 and isinstance(body, dict) and body.get("status") == "ready":
            took = time.monotonic() - start
            report.add(name, True, f"{took:.1f} s, model_version {body.get('model_version')}")
            return str(body.get("model_version"))
        time.sleep(0.2)
    report.add(name, False, f"/health/ready still not 200 after {READY_WITHIN:.0f} s")
    return None


def _check_predict(container: Container, version: str, report: Report) -> None:
    status, body = _http(container.port, "POST", "/predict", PREDICT_BODY)
    ok = (
        status == 200
        and isinstance(body, dict)
        and body.get("model_version") == version
        and len(body.get("predictions", [])) == 1
        and "label" in body["predictions"][0]
    )
    report.add("POST /predict answers", ok, f"{status} {json.dumps(body)[:300]}")


def _check_stop(
    container: Container, process: subprocess.Popen[bytes], report: Report, when: str = ""
) -> None:
    name = f"{container.stop_signal.name} stops it with status 0 within {STOP_WITHIN:.0f} s"
    start = time.monotonic()
    process.send_signal(container.stop_signal)
    try:
        code = process.wait(timeout=STOP_WITHIN)
    except subprocess.TimeoutExpired:
        report.add(f"{name} {when}".strip(), False, "still running")
        return
    took = time.monotonic() - start
    report.add(f"{name} {when}".strip(), code == 0, f"status {code} after {took:.1f} s")


def _check_store(container: Container, version: str, report: Report) -> None:
    store = container.store
    folder = store / version
    files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    report.add("store keeps the version folder", bool(files), f"{folder}: {files}")
    owner = folder.stat().st_uid if folder.is_dir() else None
    report.add("the server wrote it as USER", owner == container.uid, f"owner uid {owner}")
    databases = [p for p in store.iterdir() if p.is_file() and _is_sqlite(p)]
    if not report.add("store keeps a SQLite registry", bool(databases), f"in {store}"):
        return
    for database in databases:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
            listed = _mentions(db, version)
        report.add(
            f"{database.name} is intact and lists the version",
            integrity == "ok" and listed,
            f"integrity_check {integrity}, lists {version}: {listed}",
        )


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def _mentions(db: sqlite3.Connection, value: str) -> bool:
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for row in db.execute(f'SELECT * FROM "{table}"'):
            if value in row:
                return True
    return False


def _run_healthcheck(container: Container) -> int:
    assert container.healthcheck is not None
    argv = container.healthcheck
    if "/" not in argv[0]:
        argv = [shutil.which(argv[0], path=container.env.get("PATH", "")) or argv[0], *argv[1:]]
    try:
        done = subprocess.run(
            argv,
            cwd=container.cwd,
            env=container.env,
            user=container.uid,
            group=container.gid,
            extra_groups=[],
            capture_output=True,
            timeout=container.healthcheck_timeout,
        )
    except subprocess.TimeoutExpired:
        return -1
    except OSError:
        return 127
    return done.returncode


def _http(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json(error.read())
    except (OSError, urllib.error.URLError) as error:
        return 0, str(error)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """What removing a container does to whatever its processes left running."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
