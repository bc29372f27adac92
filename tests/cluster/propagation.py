"""How long a promotion takes to reach every replica (shared by the tests and bench/cluster.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from ..service.server import Server


def _version(client: httpx.Client) -> str | None:
    try:
        response = client.get("/health/ready")
    except httpx.TransportError:
        return None
    return response.json().get("model_version") if response.status_code == 200 else None


def propagation_delays(
    replicas: list[Server], promote: Callable[[], None], version: str, timeout: float = 30.0
) -> list[float]:
    """Seconds from ``promote()`` returning (the commit) until each replica serves ``version``.

    One thread per replica polls its readiness on a kept-alive connection; a
    replica that never switches within ``timeout`` raises AssertionError.
    """
    clients = [httpx.Client(base_url=r.url, timeout=5.0) for r in replicas]
    seen: list[float | None] = [None] * len(replicas)
    started = threading.Event()
    committed = [0.0]

    def watch(index: int) -> None:
        started.wait()
        while time.perf_counter() - committed[0] < timeout:
            if _version(clients[index]) == version:
                seen[index] = time.perf_counter() - committed[0]
                return
            time.sleep(0.002)

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(len(replicas))]
    for thread in threads:
        thread.start()
    try:
        promote()
        committed[0] = time.perf_counter()
        started.set()
        for thread in threads:
            thread.join()
    finally:
        started.set()
        for client in clients:
            client.close()
    missing = [replicas[i].url for i, t in enumerate(seen) if t is None]
    assert not missing, f"{missing} never served {version} within {timeout}s"
    return [t for t in seen if t is not None]
