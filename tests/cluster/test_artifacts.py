"""The S3 artefact store against a real S3 server (``weed mini``), in-process.

A version goes up whole and verified, comes down into an empty cache on another
"machine" (another folder, the same registry), and anything that is not exactly
the bytes the registry recorded is refused, never served.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from model.config import TrainConfig
from model.serialize import ModelFormatError
from model.train import train
from service.artifacts import ArtifactUnavailable
from service.artifacts.s3 import S3Artifacts
from service.registry import SQLiteRegistry
from service.store import ModelStore

from .s3 import BUCKET, S3Server

X = np.array([[5.1, 3.5], [6.7, 3.1], [5.9, 3.0]])


@pytest.fixture
def aws(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The standard AWS variables pointing boto3 at the test's S3 server."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def url() -> str:
    """A key prefix of the test's own in the shared bucket."""
    return f"s3://{BUCKET}/t-{secrets.token_hex(4)}/models"


@pytest.fixture
def trainer_store(aws: S3Server, url: str, tmp_path: Path) -> Iterator[ModelStore]:
    store = ModelStore(tmp_path / "trainer", artifacts_url=url)
    yield store
    store.close()


def _replica(trainer: ModelStore, url: str, folder: Path) -> ModelStore:
    """Another machine: its own empty cache, the trainer's registry."""
    registry = SQLiteRegistry(trainer.root / "registry.sqlite3")
    return ModelStore(folder, artifacts_url=url, registry=registry)


def _clf(seed: int = 0):  # type: ignore[no-untyped-def]
    return train(TrainConfig.from_dict({"max_epochs": 30, "seed": seed}))


def test_round_trip_through_the_bucket(trainer_store: ModelStore, url: str, tmp_path: Path) -> None:
    clf = _clf()
    version = trainer_store.save(clf)
    record = trainer_store.record(version)
    assert record is not None and record.status == "ok"
    assert trainer_store.location == url

    bucket = trainer_store.artifacts
    assert isinstance(bucket, S3Artifacts)
    prefix = url.removeprefix(f"s3://{BUCKET}/")
    client = S3Server.client_for_env()
    weights = client.get_object(Bucket=BUCKET, Key=f"{prefix}/{version}/weights.npz")
    assert hashlib.sha256(weights["Body"].read()).hexdigest() == record.summary["sha256"]
    manifest = client.get_object(Bucket=BUCKET, Key=f"{prefix}/{version}/manifest.json")
    assert b'"sha256"' in manifest["Body"].read()

    replica = _replica(trainer_store, url, tmp_path / "replica")
    try:
        assert not (replica.root / version).exists()
        loaded = replica.load(version)
        assert (replica.root / version / "weights.npz").is_file()  # cached, verified
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        # From the cache the second time: the same answer with S3 out of the picture.
        np.testing.assert_array_equal(replica.load(version).predict_proba(X), clf.predict_proba(X))
        assert replica.sync() == []  # a bucket is never listed to register versions
    finally:
        replica.close()


def test_versions_are_immutable(trainer_store: ModelStore) -> None:
    version = trainer_store.save(_clf())
    bucket = trainer_store.artifacts
    staged = bucket.staging(version)
    from model.serialize import save_model

    save_model(_clf(seed=1), staged)
    with pytest.raises(FileExistsError, match="immutable"):
        bucket.publish(version, staged)


@pytest.mark.parametrize("damage", ["truncate", "flip", "replace"])
def test_an_altered_object_is_refused_and_marked(
    trainer_store: ModelStore, url: str, tmp_path: Path, damage: str
) -> None:
    version = trainer_store.save(_clf())
    prefix = url.removeprefix(f"s3://{BUCKET}/")
    client = S3Server.client_for_env()
    key = f"{prefix}/{version}/weights.npz"
    data = bytearray(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:  # another model's weights, with a manifest that matches them: still not this version
        other = _replica(trainer_store, url, tmp_path / "other")
        other_version = other.save(_clf(seed=7))
        data = bytearray((other.root / other_version / "weights.npz").read_bytes())
        other.close()
    client.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))

    replica = _replica(trainer_store, url, tmp_path / "replica")
    try:
        with pytest.raises(ModelFormatError, match="does not match the registry"):
            replica.load(version)
        assert not (replica.root / version).exists()  # nothing half-verified is kept
        record = replica.record(version)
        assert record is not None and record.status == "invalid"
        assert "SHA-256" in (record.reason or "")
    finally:
        replica.close()


def test_a_damaged_cache_is_downloaded_again(
    trainer_store: ModelStore, url: str, tmp_path: Path
) -> None:
    clf = _clf()
    version = trainer_store.save(clf)
    replica = _replica(trainer_store, url, tmp_path / "replica")
    try:
        replica.load(version)
        cached = replica.root / version / "weights.npz"
        cached.write_bytes(cached.read_bytes()[:-20])
        np.testing.assert_array_equal(replica.load(version).predict_proba(X), clf.predict_proba(X))
        record = replica.record(version)
        assert record is not None and record.status == "ok"
    finally:
        replica.close()


def test_an_unreachable_bucket_is_retryable_not_invalid(
    trainer_store: ModelStore, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = trainer_store.save(_clf())
    replica = _replica(trainer_store, url, tmp_path / "replica")
    try:
        # A port nobody listens on: the download fails as in an outage.
        from tests.service.server import free_port

        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
        replica.artifacts.close()  # the next call makes a client with the new endpoint
        with pytest.raises(ArtifactUnavailable, match="cannot download"):
            replica.load(version)
        record = replica.record(version)
        assert record is not None and record.status == "ok"
    finally:
        replica.close()


def test_bad_artifacts_urls_are_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from service.settings import Settings

    for bad in ("gs://bucket/models", "s3:///no-bucket"):
        with pytest.raises(ValidationError, match="artifacts_url"):
            Settings(artifacts_url=bad)
    assert Settings(artifacts_url="").artifacts_url is None


def test_a_failed_upload_registers_nothing(
    trainer_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.service.server import free_port

    before = [r.version for r in trainer_store.registry.versions()]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    trainer_store.artifacts.close()  # the next call makes a client with the dead endpoint
    with pytest.raises(ArtifactUnavailable):
        trainer_store.save(_clf())
    assert [r.version for r in trainer_store.registry.versions()] == before
    assert not [p for p in trainer_store.root.iterdir() if p.name.startswith(("v", ".tmp-"))]
