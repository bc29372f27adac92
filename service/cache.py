"""Each worker's loaded models: the active one, plus a few others asked for by version.

Serving reads only memory. A background task asks the registry for the active
version every ``reload_interval`` seconds (one indexed SQLite read) and loads a
new one off the event loop before dropping the old one, so an activation made
through any worker reaches every worker within about that interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from model.classifier import Classifier
from model.serialize import ModelFormatError

from . import metrics
from .errors import ModelNotFound, ModelUnavailable, NoModelLoaded
from .store import ModelStore

log = logging.getLogger("backprop.cache")

MAX_EXTRA_VERSIONS = 8
_UNKNOWN = object()


@dataclass(frozen=True)
class LoadedModel:
    """A verified model in memory, with what the request paths need precomputed."""

    version: str
    classifier: Classifier
    metadata: dict[str, Any]
    features: tuple[str, ...] = field(init=False)
    classes: tuple[str, ...] = field(init=False)
    feature_set: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
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
        self._others: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = asyncio.Lock()

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
        record = self.store.record(version)
        if record is None:
            raise ModelNotFound(f"no version {version!r} in the model store")
        if record.status != "ok":
            raise ModelUnavailable(f"version {version} failed verification: {record.reason}")
        try:
            clf = await asyncio.to_thread(self.store.load, version)
        except ModelFormatError as exc:
            metrics.MODEL_LOAD_FAILURES.inc()
            raise ModelUnavailable(f"version {version} failed verification: {exc}") from exc
        return LoadedModel(version, clf, {"version": version, **record.summary})

    def install(self, loaded: LoadedModel) -> None:
        """Serve ``loaded`` as the active model at once (after an activation here)."""
        previous = self.active.version if self.active else None
        self.active = loaded
        self._active_pointer = loaded.version
        metrics.set_active_version(previous, loaded.version)

    async def refresh(self) -> None:
        """Follow the registry's active pointer; load a new version before swapping."""
        pointer = await asyncio.to_thread(self.store.registry.active_version)
        if pointer == self._active_pointer:
            return
        async with self._lock:
            if pointer is None:
                self.active, self._active_pointer = None, None
                self.not_ready_reason = f"the model store {self.store.root} has no active version"
                return
            try:
                loaded = await self.get(pointer)
            except (ModelNotFound, ModelUnavailable) as exc:
                self.active, self._active_pointer = None, pointer
                self.not_ready_reason = f"the active version cannot be served: {exc.detail}"
                log.error("%s", self.not_ready_reason)
                return
            self._others.pop(pointer, None)
            self.install(loaded)
            log.info("serving version %s", pointer)

    async def follow(self, interval: float) -> None:
        """Refresh forever, every ``interval`` seconds (a background task)."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("checking the active version failed; will retry")
            await asyncio.sleep(interval)
