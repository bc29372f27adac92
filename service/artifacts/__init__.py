"""Where the version folders live: a local folder (the default) or an S3 bucket.

Every version is one immutable pair, ``weights.npz`` and ``manifest.json``,
under a key derived from its id. The store writes a new version into a local
staging folder first, then ``publish`` makes it visible whole (a rename, or an
upload whose SHA-256 is checked), and only then is it registered. ``fetch``
hands back a local folder holding a verified copy: the folder itself, or the
replica's cache filled from the bucket.
"""

from __future__ import annotations

from pathlib import Path

from .base import ArtifactStore, ArtifactUnavailable
from .folder import FolderArtifacts

__all__ = ["ArtifactStore", "ArtifactUnavailable", "FolderArtifacts", "open_artifacts"]


def open_artifacts(url: str | None, model_dir: Path) -> ArtifactStore:
    """The artefact store ``url`` names; None (or a path) is the folder ``model_dir``.

    ``s3://bucket/prefix`` keeps the versions in that bucket (boto3, configured by
    the standard AWS variables) and ``model_dir`` becomes the local cache only.
    """
    if not url:
        return FolderArtifacts(model_dir)
    if url.startswith("s3://"):
        from .s3 import S3Artifacts  # boto3 is imported only when S3 is used

        return S3Artifacts.from_url(url, model_dir)
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"BACKPROP_ARTIFACTS_URL {url!r}: use a folder path or s3://bucket/prefix")
    return FolderArtifacts(Path(url.removeprefix("file://")))
