"""Fixtures: real servers on loopback ports, each on its own store folder.

A session store is trained once (by the service itself: an empty store trains the
default model at start); tests that change a store work on a copy of it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .server import Server, start_server


@pytest.fixture(autouse=True)
def _no_fixed_grpc_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """An app built in the test process serves no gRPC: never the fixed default 8001."""
    monkeypatch.setenv("BACKPROP_GRPC_PORT", "0")


@pytest.fixture(scope="session")
def seed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the default model, trained by a server started on an empty store."""
    store = tmp_path_factory.mktemp("seed") / "models"
    server = start_server(store, tmp_path_factory.mktemp("logs"))
    try:
        server.wait_ready()
    finally:
        assert server.stop() == 0, server.output()
    return store


@pytest.fixture(scope="session")
def server(seed_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A shared server for read-only tests (its store is a copy of the seed)."""
    store = tmp_path_factory.mktemp("shared") / "models"
    shutil.copytree(seed_store, store)
    running = start_server(store, tmp_path_factory.mktemp("logs"))
    yield running
    running.stop()


@pytest.fixture
def fresh_store(seed_store: Path, tmp_path: Path) -> Path:
    """A private copy of the seed store, for a test that changes it."""
    store = tmp_path / "models"
    shutil.copytree(seed_store, store)
    return store


@pytest.fixture
def private_server(fresh_store: Path, tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, on a copy of the seed store."""
    running = start_server(fresh_store, tmp_path)
    yield running
    running.stop()
