"""Mixed load from N concurrent clients, each on its own keep-alive connection:
predict (one row and a batch), backprop traces, metadata, training without wait,
activation and cancellation. Every answer is recorded, so a test (or bench/mixed.py)
can check it against the server's own counters and the registry.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

ROWS = [[5.1, 3.5], [6.7, 3.1], [4.9, 3.0], [5.8, 2.7], [6.3, 3.3]]
BATCH = 64
# (operation, weight): reads dominate, as in a served model's life.
MIX = (
    ("predict", 30),
    ("predict_batch", 14),
    ("backprop", 14),
    ("metadata", 20),
    ("train", 5),
    ("activate", 9),
    ("cancel", 8),
)


@dataclass
class Tally:
    """What the clients saw."""

    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # route, method
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rows_by_version: Counter[str] = field(default_factory=Counter)
    answered_versions: set[str] = field(default_factory=set)
    jobs_created: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # transport failures: dropped connections
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def server_errors(self) -> list[tuple[str, str, int]]:
        return [key for key in self.statuses if key[2] >= 500]

    def p99(self, route: str) -> float:
        ordered = sorted(self.latencies[route])
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


class Client:
    """One simulated user with its own connection and random stream of calls."""

    def __init__(self, url: str, token: str, tally: Tally, seed: int, max_epochs: int) -> None:
        self.http = httpx.Client(base_url=url, timeout=60.0)
        self.auth = {"Authorization": f"Bearer {token}"}
        self.tally = tally
        self.random = random.Random(seed)
        self.max_epochs = max_epochs
        self.versions: list[str] = []
        self.jobs: list[str] = []

    def call(self, route: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            answer = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            with self.tally.lock:
                self.tally.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - started
        with self.tally.lock:
            self.tally.statuses[(route, method, answer.status_code)] += 1
            self.tally.latencies[f"{method} {route}"].append(elapsed)
        return answer

    def step(self) -> None:
        names = [name for name, _ in MIX]
        weights = [weight for _, weight in MIX]
        getattr(self, "do_" + self.random.choices(names, weights)[0])()

    def _predicted(self, answer: httpx.Response | None, rows: int) -> None:
        if answer is not None and answer.status_code == 200:
            version = answer.json()["model_version"]
            with self.tally.lock:
                self.tally.rows_by_version[version] += rows
                self.tally.answered_versions.add(version)

    def do_predict(self) -> None:
        body = {"instances": [self.random.choice(ROWS)]}
        self._predicted(self.call("/predict", "POST", "/predict", json=body), 1)

    def do_predict_batch(self) -> None:
        body = {"instances": [self.random.choice(ROWS) for _ in range(BATCH)]}
        self._predicted(self.call("/predict", "POST", "/predict", json=body), BATCH)

    def do_backprop(self) -> None:
        x, label = self.random.choice(ROWS), self.random.choice([0, 1])
        params = {"x": x, "label": label}
        answer = self.call("/backprop", "GET", "/backprop", params=params)
        if answer is not None and answer.status_code == 200:
            with self.tally.lock:
                self.tally.answered_versions.add(answer.json()["model_version"])

    def do_metadata(self) -> None:
        pick = self.random.random()
        if pick < 0.3:
            answer = self.call("/model", "GET", "/model")
            if answer is not None and answer.status_code == 200:
                with self.tally.lock:
                    self.tally.answered_versions.add(answer.json()["version"])
        elif pick < 0.6 or not self.versions:
            answer = self.call("/models", "GET", "/models")
            if answer is not None and answer.status_code == 200:
                self.versions = [v["version"] for v in answer.json() if v["status"] == "ok"]
        elif pick < 0.8 or not self.jobs:
            version = self.random.choice(self.versions)
            self.call("/models/{version}", "GET", f"/models/{version}")
        else:
            self.call("/train/{job_id}", "GET", f"/train/{self.random.choice(self.jobs)}")

    def do_train(self) -> None:
        body = {
            "max_epochs": self.random.randint(5, self.max_epochs),
            "hidden_units": self.random.randint(1, 4),
            "seed": self.random.randint(0, 1000),
            "activate": self.random.random() < 0.5,
        }
        answer = self.call("/train", "POST", "/train", json=body, headers=self.auth)
        if answer is not None and answer.status_code == 202:
            job_id = answer.json()["job_id"]
            self.jobs.append(job_id)
            with self.tally.lock:
                self.tally.jobs_created.append(job_id)

    def do_activate(self) -> None:
        if not self.versions:
            self.do_metadata()
            return
        version = self.random.choice(self.versions[:6])
        path = f"/models/{version}/activate"
        self.call("/models/{version}/activate", "POST", path, headers=self.auth)

    def do_cancel(self) -> None:
        if not self.jobs:
            self.do_train()
            return
        job_id = self.random.choice(self.jobs[-4:])
        self.call("/train/{job_id}", "DELETE", f"/train/{job_id}", headers=self.auth)


def run(
    url: str, token: str, seconds: float, clients: int = 8, seed: int = 0, max_epochs: int = 150
) -> Tally:
    """``clients`` threads calling for ``seconds``; what they saw."""
    tally = Tally()
    stop = time.monotonic() + seconds
    users = [Client(url, token, tally, seed * 1000 + i, max_epochs) for i in range(clients)]

    def loop(user: Client) -> None:
        try:
            while time.monotonic() < stop:
                user.step()
        finally:
            user.http.close()

    threads = [threading.Thread(target=loop, args=(user,), daemon=True) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return tally
