"""The versioned model store: the artefacts of every version plus the registry.

By default both live in one folder: one sub-folder per version and the SQLite
registry beside them. ``BACKPROP_ARTIFACTS_URL=s3://bucket/prefix`` moves the
artefacts to a bucket; the folder is then this machine's cache of it.

A version is written into a local staging folder, published whole (a rename, or
an upload checked by its SHA-256), and only then registered: the registry never
names a version that is not all there. An existing version is never overwritten.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.classifier import Classifier
from model.serialize import ModelFormatError, load_model, save_model

from .artifacts import ArtifactStore, ArtifactUnavailable, FolderArtifacts, open_artifacts
from .artifacts.base import VERSION_PATTERN, is_valid_version
from .crashpoint import pause_mid_write
from .registry import REGISTRY_FILE, SQLiteRegistry, VersionRecord
from .settings import Settings

log = logging.getLogger("backprop.store")

__all__ = [
    "REGISTRY_FILE",
    "VERSION_PATTERN",
    "ArtifactUnavailable",
    "ModelStore",
    "is_valid_version",
    "new_id",
    "now_iso",
    "summary_of",
]


def now_iso() -> str:
    """The current time as ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    """An opaque id, unique and sortable by creation time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    return f"{prefix}{stamp}-{secrets.token_hex(3)}"


def summary_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the registry keeps of a manifest: everything but the loss history."""
    return {k: v for k, v in manifest.items() if k != "history"}


class ModelStore:
    """The artefacts of every version and the registry that indexes them.

    ``root`` is the store's folder: the versions themselves by default, or this
    machine's cache when ``artifacts_url`` names a bucket. ``registry`` defaults
    to the SQLite file in ``root``.
    """

    def __init__(
        self, root: str | Path, *, artifacts_url: str | None = None, registry: Any = None
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.artifacts: ArtifactStore = open_artifacts(artifacts_url, self.root)
        self.registry = (
            registry if registry is not None else SQLiteRegistry(self.root / REGISTRY_FILE)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelStore:
        """The store the settings name: registry by URL, artefacts by URL, cache folder."""
        from .registry import default_url, open_registry

        registry = open_registry(settings.registry_url or default_url(settings.model_dir))
        try:
            return cls(settings.model_dir, artifacts_url=settings.artifacts_url, registry=registry)
        except BaseException:
            registry.close()
            raise

    @property
    def location(self) -> str:
        """Where the versions live, for messages: the folder, or ``s3://bucket/prefix``."""
        return self.artifacts.location

    def close(self) -> None:
        self.registry.close()
        self.artifacts.close()

    def publish(self, clf: Classifier) -> tuple[str, dict[str, Any]]:
        """Store ``clf``'s artefacts as a new version, whole and verified, not registered yet.

        Answers the new id and the manifest; the registry's row comes after this
        returns (``save``, or the trainer, which registers it fenced by its job).
        """
        version = new_id("v")
        staged = self.artifacts.staging(version)
        try:
            manifest = save_model(clf, staged, midway=pause_mid_write)
            self.artifacts.publish(version, staged)
        finally:
            shutil.rmtree(staged, ignore_errors=True)  # already gone once published
        return version, manifest

    def save(self, clf: Classifier) -> str:
        """Store ``clf`` as a new version and register it; answer its id."""
        version, manifest = self.publish(clf)
        self.registry.add_version(version, manifest["created_at"], summary_of(manifest))
        return version

    def load(self, version: str) -> Classifier:
        """Load and verify one version; a verification failure is recorded so it is never served.

        With remote artefacts the version is downloaded into the cache first and its
        weights checked against the SHA-256 the registry recorded. A download that
        fails raises ``ArtifactUnavailable`` and records nothing: a later try may work.
        """
        if not is_valid_version(version):
            raise KeyError(version)
        record = self.registry.version(version)
        expected = record.summary.get("sha256") if record is not None else None
        try:
            return load_model(self.artifacts.fetch(version, expected))
        except ModelFormatError as exc:
            self.registry.mark_invalid(version, str(exc))
            log.error("version %s in %s failed verification: %s", version, self.location, exc)
            raise

    def sync(self) -> list[str]:
        """Register version folders the registry does not know (e.g. a restored backup).

        Only a local folder is searched: in a bucket, the trainer that uploads a
        version registers it, and a replica listing the bucket could race it.
        """
        known = {record.version for record in self.registry.versions()}
        added = []
        local = isinstance(self.artifacts, FolderArtifacts)
        for name in self.artifacts.versions() if local else []:
            if name in known:
                continue
            try:
                manifest = self.artifacts.manifest_of(name)
            except ModelFormatError as exc:
                log.warning("skipping %s: %s", name, exc)
                continue
            self.registry.add_version(name, manifest["created_at"], summary_of(manifest))
            added.append(name)
        if self.registry.active_version() is None:
            valid = [r for r in self.registry.versions() if r.status == "ok"]
            if valid:
                newest = valid[0].version
                self.registry.set_active(newest)
                log.info("no active version in %s: activated the newest, %s", self.location, newest)
        return added

    def record(self, version: str) -> VersionRecord | None:
        return self.registry.version(version) if is_valid_version(version) else None
