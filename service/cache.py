"""Each worker's loaded models: the active one, plus a few others asked for by version.

Serving reads only memory. A background task follows the registry's active
version and loads a new one off the event loop (downloading it into the local
cache first when the artefacts are remote), then swaps one reference: requests
already holding the old model finish on it. A version that cannot be loaded (a
failed download, a SHA-256 mismatch) never replaces the model being served: the
failure is counted (``backprop_model_load_failures_total``), kept as
``load_error`` for ``GET /model`` and ``GET /health/ready``, and a failed
download is tried again with a backoff, so the replica recovers by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from model.batchforward import BatchForward
from model.classifier import Classifier
from model.rowforward import RowForward
from model.serialize import ModelFormatError

from . import metrics
from .artifacts import ArtifactUnavailable
from .errors import ModelNotFound, ModelUnavailable, NoModelLoaded
from .store import ModelStore, now_iso

log = logging.getLogger("backprop.cache")

MAX_EXTRA_VERSIONS = 8
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0
_UNKNOWN = object()


@dataclass(frozen=True)
class LoadError:
    """Why this worker does not serve the registry's active version."""

    version: str
    error: str
    at: str
    retrying: bool  # a download failed: it is tried again; a bad artefact is not

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "error": self.error, "at": self.at}


class _DownloadFailed(ModelUnavailable):
    """A version's artefacts could not be fetched: a later try may succeed."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified model in memory, with what the request paths need precomputed."""

    version: str
    classifier: Classifier
    metadata: dict[str, Any]
    features: tuple[str, ...] = field(init=False)
    classes: tuple[str, ...] = field(init=False)
    feature_set: frozenset[str] = field(init=False)
    row: RowForward | None = field(init=False)  # single rows' forward pass, small networks
    batch: BatchForward = field(init=False)  # many rows' forward pass

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", RowForward.of(self.classifier))
        object.__setattr__(self, "batch", BatchForward(self.classifier))
        object.__setattr__(self, "features", tuple(self.classifier.features))
        object.__setattr__(self, "classes", tuple(self.classifier.classes))
        object.__setattr__(self, "feature_set", frozenset(self.classifier.features))


class ModelCache:
    """The worker's view of the store: the active model and recently used versions."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.active: LoadedModel | None = None
        self.not_ready_reason: str = "no model has been loaded yet"
        self._active_pointer: object = _UNKNOWN  # the first refresh always looks
        self.load_error: LoadError | None = None
        self._others: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self._retry_delay = RETRY_FIRST_SECONDS

    def current(self) -> LoadedModel:
        """The active model, or NoModelLoaded (503) with the reason."""
        if self.active is None:
            raise NoModelLoaded(self.not_ready_reason)
        return self.active

    async def get(self, version: str | None) -> LoadedModel:
        """The model for a request: the active one, or a stored version by id."""
        active = self.active
        if version is None:
            if active is None:
                raise NoModelLoaded(self.not_ready_reason)
            return active
        if active is not None and active.version == version:
            return active
        loaded = self._others.get(version)
        if loaded is not None:
            self._others.move_to_end(version)
            return loaded
        loaded = await self._load(version)
        self._others[version] = loaded
        while len(self._others) > MAX_EXTRA_VERSIONS:
            self._others.popitem(last=False)
        return loaded

    async def _load(self, version: str) -> LoadedModel:
        record = await asyncio.to_thread(self.store.record, version)
        if record is None:
            raise ModelNotFound(f"no version {version!r} in the model store")
        if record.status != "ok":
            raise ModelUnavailable(f"version {version} failed verification: {record.reason}")
        try:
            clf = await asyncio.to_thread(self.store.load, version)
        except ModelFormatError as exc:
            metrics.MODEL_LOAD_FAILURES.inc()
            raise ModelUnavailable(f"version {version} failed verification: {exc}") from exc
        except ArtifactUnavailable as exc:
            metrics.MODEL_LOAD_FAILURES.inc()
            raise _DownloadFailed(f"version {version} cannot be downloaded: {exc}") from exc
        return LoadedModel(version, clf, {"version": version, **record.summary})

    def install(self, loaded: LoadedModel) -> None:
        """Serve ``loaded`` as the active model at once (after an activation here)."""
        previous = self.active.version if self.active else None
        self.active = loaded
        self._active_pointer = loaded.version
        if self.load_error is not None and self.load_error.version == loaded.version:
            self.load_error = None
        metrics.set_active_version(previous, loaded.version)

    async def refresh(self, force: bool = False) -> None:
        """Follow the registry's active pointer; load a new version before swapping.

        ``force`` looks again at a pointer whose load failed (the retry does).
        """
        pointer = await asyncio.to_thread(self.store.registry.active_version)
        if pointer == self._active_pointer and not force:
            return
        async with self._lock:
            if pointer is None:
                self.active, self._active_pointer, self.load_error = None, None, None
                self.not_ready_reason = (
                    f"the model store {self.store.location} has no active version"
                )
                return
            if self.active is not None and self.active.version == pointer:
                self._active_pointer, self.load_error = pointer, None
                return
            self._active_pointer = pointer  # looked at once; a failure is retried by _retry
            try:
                loaded = await self.get(pointer)
            except (ModelNotFound, ModelUnavailable) as exc:
                self._failed(pointer, exc)
                return
            self._others.pop(pointer, None)
            self.install(loaded)
            self.load_error = None
            log.info("serving version %s", pointer)

    def _failed(self, pointer: str, exc: ModelNotFound | ModelUnavailable) -> None:
        """Keep serving what is loaded; record, count and (for a download) retry."""
        retrying = isinstance(exc, _DownloadFailed)
        if not retrying and (self.load_error is None or self.load_error.version != pointer):
            # A version another worker already found bad (or that is not registered
            # here): counted once per worker, so every replica that refuses it says so.
            if not isinstance(exc.__cause__, ModelFormatError):
                metrics.MODEL_LOAD_FAILURES.inc()
        self.load_error = LoadError(pointer, str(exc.detail), now_iso(), retrying)
        if self.active is None:
            self.not_ready_reason = f"the active version cannot be served: {exc.detail}"
            log.error("%s", self.not_ready_reason)
        else:
            log.error(
                "keeping version %s: the active version %s cannot be served: %s",
                self.active.version,
                pointer,
                exc.detail,
            )
        if retrying:
            self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._retry is not None and not self._retry.done():
            return
        delay = self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_SECONDS)
        self._retry = asyncio.get_running_loop().create_task(self._retry_after(delay))

    async def _retry_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._retry = None  # a failure below schedules the next one
        try:
            await self.refresh(force=True)
        except Exception:
            log.exception("retrying the active version failed; will retry")
            self._schedule_retry()
            return
        if self.load_error is None or not self.load_error.retrying:
            self._retry_delay = RETRY_FIRST_SECONDS

    def close(self) -> None:
        """Stop a pending retry (at shutdown)."""
        if self._retry is not None:
            self._retry.cancel()

    async def follow(self, interval: float) -> None:
        """Refresh forever, every ``interval`` seconds (a background task)."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("checking the active version failed; will retry")
            await asyncio.sleep(interval)
