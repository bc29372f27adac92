"""The versioned model store: one folder per version plus the registry beside them.

A version is written into a temporary folder and renamed into place, so it exists
whole or not at all; an existing version is never overwritten.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.classifier import Classifier
from model.serialize import ModelFormatError, load_model, read_manifest, save_model

from .crashpoint import pause_mid_write
from .registry import SQLiteRegistry, VersionRecord

log = logging.getLogger("backprop.store")

REGISTRY_FILE = "registry.sqlite3"
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def now_iso() -> str:
    """The current time as ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    """An opaque id, unique and sortable by creation time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    return f"{prefix}{stamp}-{secrets.token_hex(3)}"


def is_valid_version(version: str) -> bool:
    """Whether ``version`` can name a folder of the store (no path tricks)."""
    return bool(VERSION_PATTERN.match(version)) and ".." not in version


def summary_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the registry keeps of a manifest: everything but the loss history."""
    return {k: v for k, v in manifest.items() if k != "history"}


class ModelStore:
    """Version folders under ``root`` and the registry that indexes them."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.registry = SQLiteRegistry(self.root / REGISTRY_FILE)

    def close(self) -> None:
        self.registry.close()

    def path(self, version: str) -> Path:
        if not is_valid_version(version):
            raise KeyError(version)
        return self.root / version

    def save(self, clf: Classifier) -> str:
        """Store ``clf`` as a new version and register it; answer its id."""
        version = new_id("v")
        tmp = self.root / f".tmp-{version}"
        try:
            manifest = save_model(clf, tmp, midway=pause_mid_write)
            os.rename(tmp, self.root / version)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(self.root)
        self.registry.add_version(version, manifest["created_at"], summary_of(manifest))
        return version

    def load(self, version: str) -> Classifier:
        """Load and verify one version; a failure is recorded so it is never served."""
        try:
            return load_model(self.path(version))
        except ModelFormatError as exc:
            self.registry.mark_invalid(version, str(exc))
            log.error("version %s in %s failed verification: %s", version, self.root, exc)
            raise

    def sync(self) -> list[str]:
        """Register version folders the registry does not know (e.g. a restored backup)."""
        known = {record.version for record in self.registry.versions()}
        added = []
        _remove_stale_temporaries(self.root)
        for entry in sorted(self.root.iterdir()):
            name = entry.name
            if name in known or not entry.is_dir() or not is_valid_version(name):
                continue
            try:
                manifest = read_manifest(entry)
            except ModelFormatError as exc:
                log.warning("skipping %s: %s", entry, exc)
                continue
            self.registry.add_version(name, manifest["created_at"], summary_of(manifest))
            added.append(name)
        if self.registry.active_version() is None:
            valid = [r for r in self.registry.versions() if r.status == "ok"]
            if valid:
                self.registry.set_active(valid[0].version)
                newest = valid[0].version
                log.info("no active version in %s: activated the newest, %s", self.root, newest)
        return added

    def record(self, version: str) -> VersionRecord | None:
        return self.registry.version(version) if is_valid_version(version) else None


def _remove_stale_temporaries(root: Path, older_than: float = 3600.0) -> None:
    """Remove what a crashed save left behind (a save in progress is younger)."""
    cutoff = time.time() - older_than
    for entry in root.glob(".tmp-*"):
        if entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
