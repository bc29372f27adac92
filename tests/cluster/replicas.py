"""Several API replicas on one PostgreSQL registry and one S3 bucket, as on many machines.

Each replica is a real ``python -m service --role serve`` process on a free
loopback port with its own empty cache folder: nothing is shared but the two
servers. Versions are made in-process through the same ``ModelStore.save`` the
trainer uses (publish to S3, verified, then one registry row).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from model.config import TrainConfig
from model.train import train
from service.registry import open_registry
from service.store import ModelStore

from ..service.server import ROOT, Server, start_server
from .s3 import BUCKET, S3Server

ROWS = [[5.1, 3.5], [6.7, 3.1], [5.9, 3.0], [4.6, 3.4]]


@dataclass
class Cluster:
    """The replicas, the registry URL, the artefacts URL and an in-process store on them."""

    registry_url: str
    artifacts_url: str
    s3: S3Server
    folder: Path
    replicas: list[Server] = field(default_factory=list)
    store: ModelStore | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.s3.env,
            "BACKPROP_REGISTRY_URL": self.registry_url,
            "BACKPROP_ARTIFACTS_URL": self.artifacts_url,
            "BACKPROP_ROLE": "serve",
            "BACKPROP_TRAIN_ON_EMPTY": "false",
        }

    def open_store(self) -> ModelStore:
        """The test's own handle on the registry and the bucket (a cache of its own)."""
        if self.store is None:
            os.environ.update(self.s3.env)
            self.store = ModelStore(
                self.folder / "test-cache",
                artifacts_url=self.artifacts_url,
                registry=open_registry(self.registry_url),
            )
        return self.store

    def new_version(self, seed: int) -> str:
        """A trained version in the bucket and the registry (not active)."""
        clf = train(TrainConfig.from_dict({"max_epochs": 20, "seed": seed}))
        return self.open_store().save(clf)

    def promote(self, version: str) -> None:
        """Move the registry's active pointer, as an activation anywhere does."""
        self.open_store().registry.set_active(version)

    def start_replica(self, ready: bool = True) -> Server:
        name = f"replica-{secrets.token_hex(4)}"  # started in parallel: no counter
        cache = self.folder / name / "cache"
        logs = self.folder / name
        logs.mkdir(parents=True, exist_ok=True)
        server = start_server(cache, logs, env=self.env, ready=ready)
        self.replicas.append(server)
        return server

    def each(self, call: Callable[[Server], Any]) -> list[Any]:
        with ThreadPoolExecutor(len(self.replicas)) as pool:
            return list(pool.map(call, self.replicas))

    def wait_all(self, check: Callable[[Server], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not all(self.each(check)):
            if time.monotonic() > deadline:
                states = self.each(lambda s: s.get("/health/ready").text)
                raise AssertionError(f"not every replica {what} after {timeout}s: {states}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.replicas:
            with ThreadPoolExecutor(len(self.replicas)) as pool:
                list(pool.map(lambda server: server.stop(), self.replicas))
        if self.store is not None:
            self.store.close()


def db_upgrade(registry_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "db", "upgrade"],
        cwd=ROOT,
        env=os.environ | {"BACKPROP_REGISTRY_URL": registry_url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def make_cluster(registry_url: str, s3: S3Server, folder: Path) -> Cluster:
    """A migrated registry and a bucket prefix of the cluster's own; no replica yet."""
    db_upgrade(registry_url)
    url = f"s3://{BUCKET}/c-{secrets.token_hex(4)}"
    return Cluster(registry_url, url, s3, folder)


def serving(server: Server) -> str | None:
    """The version a replica reports as serving (None when not ready)."""
    try:
        response = server.get("/health/ready")
    except httpx.TransportError:
        return None
    body = response.json()
    return body.get("model_version") if response.status_code == 200 else None


def predict(client: httpx.Client) -> tuple[int, dict[str, Any] | None]:
    response = client.post("/predict", json={"instances": ROWS})
    return response.status_code, response.json() if response.status_code == 200 else None


def probabilities(body: dict[str, Any]) -> list[dict[str, float]]:
    return [p["probabilities"] for p in body["predictions"]]


def metric(server: Server, name: str) -> float:
    """One unlabelled sample of a replica's /metrics."""
    for line in server.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{}"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
