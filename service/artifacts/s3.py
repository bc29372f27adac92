"""Versions as objects of an S3 bucket, with the replica's local folder as a cache.

``s3://bucket/prefix`` keeps version ``v`` as ``prefix/v/weights.npz`` and
``prefix/v/manifest.json``; both are written once and never replaced. boto3 is
configured the standard way (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, or any other source boto3
knows). Downloads go to a temporary folder of the cache, are checked against the
SHA-256 the registry recorded, and are renamed into place: the cache holds only
whole, verified versions.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from model.manifest import MANIFEST_FILE, WEIGHTS_FILE, check_manifest
from model.serialize import ModelFormatError

from .base import (
    ArtifactUnavailable,
    fsync_dir,
    is_valid_version,
    remove_stale_temporaries,
    sha256_of,
)

# A replica retries in the background, so one attempt fails fast rather than hangs.
_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=10, retries={"mode": "standard", "max_attempts": 3}
)
_FAILURES = (BotoCoreError, ClientError, OSError)


class S3Artifacts:
    """Version folders in ``s3://bucket/prefix``; ``cache`` holds verified local copies."""

    def __init__(self, bucket: str, prefix: str, cache: str | Path, client: Any = None) -> None:
        if not bucket:
            raise ValueError("an s3:// artefacts URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.cache = Path(cache).resolve()
        self.cache.mkdir(parents=True, exist_ok=True)
        self.location = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, cache: str | Path) -> S3Artifacts:
        parts = urlsplit(url)
        return cls(parts.netloc, parts.path, cache)

    @property
    def client(self) -> Any:
        """One boto3 client (thread-safe), made on first use."""
        with self._lock:
            if self._client is None:
                config = _CLIENT_CONFIG
                if os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3"):
                    # S3-compatible servers (SeaweedFS, MinIO, ...) want bucket-in-path URLs.
                    config = config.merge(Config(s3={"addressing_style": "path"}))
                self._client = boto3.session.Session().client("s3", config=config)
            return self._client

    def key(self, version: str, name: str) -> str:
        """The object key of one file of a version, derived from the version alone."""
        if not is_valid_version(version):
            raise KeyError(version)
        return f"{self.prefix}/{version}/{name}" if self.prefix else f"{version}/{name}"

    def url_of(self, version: str, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(version, name)}"

    # -- writing ---------------------------------------------------------------

    def staging(self, version: str) -> Path:
        return self.cache / f".tmp-{version}-{secrets.token_hex(4)}"

    def publish(self, version: str, staged: Path) -> None:
        """Upload weights then manifest, read both back, and keep the folder as cached."""
        weights = (staged / WEIGHTS_FILE).read_bytes()
        manifest = (staged / MANIFEST_FILE).read_bytes()
        expected = json.loads(manifest)["sha256"]
        if sha256_of(weights) != expected:
            raise ModelFormatError(f"{staged}: the weights do not match their manifest")
        if self._exists(self.key(version, MANIFEST_FILE)):
            raise FileExistsError(
                f"{self.url_of(version, MANIFEST_FILE)} exists: versions are immutable"
            )
        self._put(version, WEIGHTS_FILE, weights, "application/octet-stream", expected)
        self._put(version, MANIFEST_FILE, manifest, "application/json", expected)
        # Read back: the registry row may be written only once the bucket holds these bytes.
        got = self._get(version, WEIGHTS_FILE)
        if sha256_of(got) != expected:
            raise ArtifactUnavailable(
                f"{self.url_of(version, WEIGHTS_FILE)} read back with SHA-256 {sha256_of(got)}, "
                f"uploaded {expected}"
            )
        if self._get(version, MANIFEST_FILE) != manifest:
            raise ArtifactUnavailable(f"{self.url_of(version, MANIFEST_FILE)} read back different")
        self._install(staged, version)

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise ArtifactUnavailable(f"s3://{self.bucket}/{key}: {exc}") from exc
        except _FAILURES as exc:
            raise ArtifactUnavailable(f"s3://{self.bucket}/{key}: {exc}") from exc
        return True

    def _put(self, version: str, name: str, body: bytes, content_type: str, sha: str) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(version, name),
                Body=body,
                ContentType=content_type,
                Metadata={"weights-sha256": sha},
            )
        except _FAILURES as exc:
            raise ArtifactUnavailable(f"cannot upload {self.url_of(version, name)}: {exc}") from exc

    # -- reading ---------------------------------------------------------------

    def _get(self, version: str, name: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(version, name))
            data: bytes = answer["Body"].read()
        except _FAILURES as exc:
            raise ArtifactUnavailable(
                f"cannot download {self.url_of(version, name)}: {exc}"
            ) from exc
        return data

    def fetch(self, version: str, sha256: str | None) -> Path:
        folder = self.cache / version
        if (folder / MANIFEST_FILE).is_file():
            try:
                cached = sha256_of((folder / WEIGHTS_FILE).read_bytes())
            except OSError:
                cached = None
            if sha256 is None or cached == sha256:
                return folder
            shutil.rmtree(folder, ignore_errors=True)  # damaged here: download it again
        weights = self._get(version, WEIGHTS_FILE)
        digest = sha256_of(weights)
        if sha256 is not None and digest != sha256:
            raise ModelFormatError(
                f"{self.url_of(version, WEIGHTS_FILE)}: SHA-256 {digest} does not match the "
                f"registry's {sha256} (the object is truncated, corrupted or replaced)"
            )
        manifest = self._get(version, MANIFEST_FILE)
        tmp = self.staging(version)
        tmp.mkdir()
        try:
            (tmp / WEIGHTS_FILE).write_bytes(weights)
            (tmp / MANIFEST_FILE).write_bytes(manifest)
            self._install(tmp, version)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    def _install(self, tmp: Path, version: str) -> None:
        """Rename a whole folder into the cache (another thread may have been first)."""
        try:
            os.rename(tmp, self.cache / version)
        except OSError:
            if not (self.cache / version / MANIFEST_FILE).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return
        fsync_dir(self.cache)

    def versions(self) -> list[str]:
        remove_stale_temporaries(self.cache)
        start = f"{self.prefix}/" if self.prefix else ""
        found: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start, Delimiter="/"
            )
            for page in pages:
                for entry in page.get("CommonPrefixes", []):
                    name = entry["Prefix"][len(start) :].rstrip("/")
                    if is_valid_version(name):
                        found.append(name)
        except _FAILURES as exc:
            raise ArtifactUnavailable(f"cannot list {self.location}: {exc}") from exc
        return sorted(found)

    def manifest_of(self, version: str) -> dict[str, Any]:
        where = self.url_of(version, MANIFEST_FILE)
        try:
            manifest = json.loads(self._get(version, MANIFEST_FILE))
        except ValueError as exc:
            raise ModelFormatError(f"{where}: not valid JSON ({exc})") from None
        problem = check_manifest(manifest)
        if problem:
            raise ModelFormatError(f"{where}: {problem}")
        return manifest  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
