"""A real ``python -m service`` process on a free loopback port, for the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One running server: its URL, token, store and process."""

    url: str
    token: str
    store: Path
    proc: subprocess.Popen[bytes]
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=30.0, **kwargs)
        self.clients.append(client)
        return client

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """One request on a fresh connection."""
        return httpx.get(self.url + path, timeout=30.0, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=60.0, **kwargs)

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                response = self.get("/health/ready")
                if response.status_code == 200:
                    return dict(response.json())
                last = response.text
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"not ready after {timeout}s ({last}):\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def wait_for_log(self, needle: str, timeout: float = 5.0) -> str:
        """The log once it holds ``needle`` (a line is written after its answer is sent)."""
        deadline = time.monotonic() + timeout
        while needle not in (text := self.log.read_text(errors="replace")):
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never logged:\n{text[-3000:]}")
            time.sleep(0.05)
        return text

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        for client in self.clients:
            client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return int(self.proc.returncode)


def start_server(
    store: Path,
    log_dir: Path,
    *,
    workers: int = 1,
    token: str = "test-token",
    env: dict[str, str] | None = None,
    ready: bool = True,
) -> Server:
    """Start ``python -m service`` on ``store`` and (by default) wait until it is ready."""
    port = free_port()
    log = log_dir / f"server-{port}.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ.update(
        BACKPROP_MODEL_DIR=str(store),
        BACKPROP_API_TOKEN=token,
        BACKPROP_LOG_LEVEL="info",
        BACKPROP_RELOAD_INTERVAL="0.2",
        BACKPROP_GRPC_PORT="0",  # off unless a test asks: never the fixed default 8001
        PYTHONPATH=str(ROOT),
    )
    environ.update(env or {})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", token, store, proc, log)
    if ready:
        server.wait_ready()
    else:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if server.get("/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
    return server
