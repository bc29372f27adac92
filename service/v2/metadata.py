"""Which model a V2 path names, and how the server and that model describe themselves."""

from __future__ import annotations

from typing import Any

from ..cache import LoadedModel, ModelCache
from ..errors import ModelNotFound
from ..store import ModelStore, is_valid_version
from .tensors import INPUT_NAME

SERVER_NAME = "backprop-serve"
EXTENSIONS = ("binary_tensor_data",)
PLATFORM = "numpy"  # the network is NumPy arrays and a hand-written forward pass


async def served_model(
    cache: ModelCache, served_name: str, name: str, version: str | None
) -> LoadedModel:
    """The model a path names: 404 for another name or an unknown version, 503 if not ready."""
    if name != served_name:
        raise ModelNotFound(f"unknown model {name!r}: this server serves {served_name!r}")
    if version is not None and not is_valid_version(version):
        raise ModelNotFound(f"unknown version {version!r} of model {name!r}")
    try:
        return await cache.get(version)
    except ModelNotFound:
        raise ModelNotFound(f"unknown version {version!r} of model {name!r}") from None


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": version, "extensions": list(EXTENSIONS)}


def servable_versions(store: ModelStore) -> list[str]:
    """Stored versions a versioned path can serve, newest first (blocking: SQLite)."""
    return [r.version for r in store.registry.versions() if r.status == "ok"]


def model_metadata(name: str, model: LoadedModel, versions: list[str]) -> dict[str, Any]:
    """The protocol's model metadata; -1 marks the variable batch dimension."""
    return {
        "name": name,
        "versions": versions,
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, len(model.features)]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(model.classes)]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
    }
