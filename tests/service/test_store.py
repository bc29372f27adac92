"""The store and registry in-process, on real files and a real SQLite database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.registry import JobFinishedError, QueueFullError
from service.store import ModelStore, is_valid_version


def _version_folder(seed_store: Path) -> Path:
    return next(p for p in seed_store.iterdir() if p.is_dir() and is_valid_version(p.name))


def test_a_copied_in_folder_is_registered_and_activated(seed_store: Path, tmp_path: Path) -> None:
    shutil.copytree(_version_folder(seed_store), tmp_path / "lecture")
    store = ModelStore(tmp_path)
    try:
        assert store.sync() == ["lecture"]
        assert store.registry.active_version() == "lecture"
        assert store.load("lecture").features == ["sepal_length", "sepal_width"]
        assert store.sync() == []  # once only
    finally:
        store.close()


def test_a_broken_folder_is_skipped_not_served(seed_store: Path, tmp_path: Path) -> None:
    shutil.copytree(_version_folder(seed_store), tmp_path / "broken")
    (tmp_path / "broken" / "manifest.json").write_text("{")
    store = ModelStore(tmp_path)
    try:
        assert store.sync() == []
        assert store.registry.active_version() is None
    finally:
        store.close()


@pytest.mark.parametrize("name", ["..", "../x", "a/b", ".hidden", "", "x" * 200, "a\x00b"])
def test_version_ids_cannot_name_other_files(name: str) -> None:
    assert not is_valid_version(name)


def test_jobs_queue_claim_one_at_a_time_and_cancel(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    registry = store.registry
    try:
        registry.create_job("a", {"k": 1}, None, "t0", max_queued=2)
        registry.create_job("b", {"k": 2}, b"data", "t1", max_queued=2)
        with pytest.raises(QueueFullError):
            registry.create_job("c", {}, None, "t2", max_queued=2)
        first = registry.claim_job("host:1:0", "t3", lease_seconds=10)
        assert first is not None and first.job_id == "a" and first.status == "running"
        assert first.attempt == 1 and first.owner == "host:1:0"
        assert registry.claim_job("host:2:0", "t4", lease_seconds=10) is None  # one at a time
        assert registry.job_data("b") == b"data"
        assert registry.request_cancel("b", "t5").status == "cancelled"
        assert registry.job_data("b") is None  # inline data dropped once finished
        assert registry.request_cancel("a", "t6").cancel_requested
        assert registry.finish_job("a", "cancelled", "t7")
        assert not registry.finish_job("a", "failed", "t8")  # a finished job stays finished
        with pytest.raises(JobFinishedError):
            registry.request_cancel("a", "t9")
        assert [j.job_id for j in registry.jobs(10)] == ["b", "a"]
    finally:
        store.close()
