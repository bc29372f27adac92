"""The manifest's schema: required fields and their types, checked without NumPy."""

from __future__ import annotations

import re
from typing import Any

from model.activations import ACTIVATIONS

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.npz"
MANIFEST_FILE = "manifest.json"

REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "architecture": dict,
    "features": list,
    "classes": list,
    "target": str,
    "preprocessing": dict,
    "training": dict,
    "metrics": dict,
    "history": list,
    "created_at": str,
    "sha256": str,
}
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value: list[Any]) -> bool:
    return all(isinstance(v, str) and v for v in value) and len(set(value)) == len(value)


def _check_layers(layers: object) -> str | None:
    if not isinstance(layers, list) or not layers:
        return "architecture.layers must be a non-empty list"
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            return f"architecture.layers[{i}] must be an object"
        for key, kind in (("name", str), ("activation", str), ("bias", bool)):
            if not isinstance(layer.get(key), kind):
                return f"architecture.layers[{i}].{key} is missing or not a {kind.__name__}"
        for key in ("in", "out"):
            if not _is_int(layer.get(key)) or layer[key] < 1:
                return f"architecture.layers[{i}].{key} is missing or not a positive integer"
        if layer["activation"] not in ACTIVATIONS:
            return f"architecture.layers[{i}] has unknown activation {layer['activation']!r}"
    return None


def _check_preprocessing(pre: dict[str, Any], n_features: int) -> str | None:
    if not isinstance(pre.get("standardize"), bool):
        return "preprocessing.standardize is missing or not a boolean"
    for key in ("mean", "std"):
        value = pre.get(key, "missing")
        if not pre["standardize"]:
            if value is not None:
                return f"preprocessing.{key} must be null when standardize is false"
            continue
        if not isinstance(value, list) or len(value) != n_features:
            return f"preprocessing.{key} must be a list of {n_features} numbers"
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return f"preprocessing.{key} must hold only numbers"
    return None


def check_manifest(manifest: object) -> str | None:
    """None when `manifest` is a well-formed manifest, else a sentence naming the problem."""
    if not isinstance(manifest, dict):
        return "the manifest must be a JSON object"
    missing = [name for name in REQUIRED_FIELDS if name not in manifest]
    if missing:
        return f"missing required field(s): {', '.join(missing)}"
    version = manifest["format_version"]
    if not _is_int(version) or version != FORMAT_VERSION:
        return f"unknown format_version {version!r}; this build reads version {FORMAT_VERSION}"
    for name, kind in REQUIRED_FIELDS.items():
        if not isinstance(manifest[name], kind) or isinstance(manifest[name], bool):
            return f"field {name!r} has the wrong type ({type(manifest[name]).__name__})"
    if not _SHA256.fullmatch(manifest["sha256"]):
        return "sha256 must be 64 lowercase hexadecimal digits"
    if not manifest["features"] or not _names(manifest["features"]):
        return "features must be a non-empty list of distinct names"
    if len(manifest["classes"]) < 2 or not _names(manifest["classes"]):
        return "classes must be a list of at least 2 distinct names"
    problem = _check_layers(manifest["architecture"].get("layers"))
    if problem:
        return problem
    return _check_preprocessing(manifest["preprocessing"], len(manifest["features"]))
