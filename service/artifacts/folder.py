"""Versions as folders of one local directory: the single-machine store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from model.serialize import read_manifest

from .base import fsync_dir, is_valid_version, remove_stale_temporaries


class FolderArtifacts:
    """``root/<version>/`` for each version; a new one appears by an atomic rename."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.location = str(self.root)

    def staging(self, version: str) -> Path:
        return self.root / f".tmp-{version}"

    def publish(self, version: str, staged: Path) -> None:
        os.rename(staged, self.root / version)
        fsync_dir(self.root)

    def fetch(self, version: str, sha256: str | None) -> Path:
        # Nothing to download: loading the folder checks its weights' hash.
        return self.root / version

    def versions(self) -> list[str]:
        remove_stale_temporaries(self.root)
        return sorted(
            e.name for e in self.root.iterdir() if e.is_dir() and is_valid_version(e.name)
        )

    def manifest_of(self, version: str) -> dict[str, Any]:
        return read_manifest(self.root / version)

    def close(self) -> None:
        pass
