"""The interface of an artefact store, and what every implementation shares."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_valid_version(version: str) -> bool:
    """Whether ``version`` can name a folder or a key of the store (no path tricks)."""
    return bool(VERSION_PATTERN.match(version)) and ".." not in version


class ArtifactUnavailable(Exception):
    """The artefacts could not be reached (a network or server error): worth a retry.

    A download whose bytes do not match the registry's SHA-256 is not this: it is
    a ``ModelFormatError``, since retrying would fetch the same bytes.
    """


class ArtifactStore(Protocol):
    """Immutable version folders, written whole and read back verified."""

    location: str
    """Where the versions live, for messages (a folder path or ``s3://bucket/prefix``)."""

    def staging(self, version: str) -> Path:
        """A fresh local folder to save a new version into before ``publish``."""
        ...

    def publish(self, version: str, staged: Path) -> None:
        """Make the staged folder the version ``version``, whole or not at all."""
        ...

    def fetch(self, version: str, sha256: str | None) -> Path:
        """A local folder holding the version; its weights match ``sha256`` when given.

        Raises ``ArtifactUnavailable`` when it cannot be reached and
        ``ModelFormatError`` when what was reached is not that version.
        """
        ...

    def versions(self) -> list[str]:
        """The ids of the versions stored (to register those the registry lacks)."""
        ...

    def manifest_of(self, version: str) -> dict[str, Any]:
        """One stored version's validated manifest, without its weights."""
        ...

    def close(self) -> None: ...


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(root: Path, older_than: float = 3600.0) -> None:
    """Remove what a crashed save or download left behind (one in progress is younger)."""
    cutoff = time.time() - older_than
    for entry in root.glob(".tmp-*"):
        try:
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
        except FileNotFoundError:
            continue
