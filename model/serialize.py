"""One model on disk: a directory with `weights.npz` and `manifest.json`.

The arrays (weights, biases, standardisation statistics) go to an uncompressed .npz
written byte-for-byte reproducibly (fixed zip timestamps, sorted names), so its SHA-256
identifies the parameters. The manifest holds everything else as JSON, plus that hash.
Nothing is pickled, and loading uses `allow_pickle=False`.

Writes are atomic: each file goes to a temporary file in the same directory, is
fsynced, then renamed over its final name; the weights first and the manifest last.
A crash in between leaves a manifest whose hash does not match, which `load_model`
refuses, so a half-written model never loads.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from model.classifier import Classifier
from model.layers import Dense
from model.manifest import FORMAT_VERSION, MANIFEST_FILE, WEIGHTS_FILE, check_manifest
from model.network import Network
from model.types import FloatArray

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "WEIGHTS_FILE",
    "ModelFormatError",
    "build_manifest",
    "load_model",
    "read_manifest",
    "save_model",
]

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ModelFormatError(ValueError):
    """A model directory that cannot be loaded; the message names the file and why."""


def weights_arrays(clf: Classifier) -> dict[str, FloatArray]:
    """Every array of a model by name: `hidden.W`, `output.b`, `preprocessing.mean`, ..."""
    arrays = {name: value.copy() for name, value in clf.network.parameters().items()}
    if clf.mean is not None and clf.std is not None:
        arrays["preprocessing.mean"] = clf.mean.copy()
        arrays["preprocessing.std"] = clf.std.copy()
    return arrays


def npz_bytes(arrays: dict[str, FloatArray]) -> bytes:
    """An uncompressed .npz of `arrays`, identical bytes for identical arrays."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            with archive.open(info, "w") as member:
                array = np.ascontiguousarray(arrays[name], dtype=np.float64)
                np.lib.format.write_array(member, array, allow_pickle=False)
    return buffer.getvalue()


def build_manifest(clf: Classifier, sha256: str | None = None) -> dict[str, Any]:
    """The manifest of `clf`; `sha256` defaults to the hash of its weights file's bytes."""
    if sha256 is None:
        sha256 = hashlib.sha256(npz_bytes(weights_arrays(clf))).hexdigest()
    return {
        "format_version": FORMAT_VERSION,
        "architecture": {
            "layers": [
                {
                    "name": layer.name,
                    "in": layer.n_in,
                    "out": layer.n_out,
                    "activation": layer.activation,
                    "bias": layer.b is not None,
                }
                for layer in clf.network.layers
            ]
        },
        "features": list(clf.features),
        "classes": list(clf.classes),
        "target": clf.target,
        "preprocessing": {
            "standardize": clf.mean is not None,
            "mean": None if clf.mean is None else clf.mean.tolist(),
            "std": None if clf.std is None else clf.std.tolist(),
        },
        "training": dict(clf.training),
        "metrics": dict(clf.metrics),
        "history": list(clf.history),
        "created_at": clf.created_at,
        "sha256": sha256,
    }


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make the renames durable (POSIX; a no-op where directories cannot be opened)."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_model(
    clf: Classifier, directory: str | Path, midway: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Write `clf` into `directory` (created if needed) atomically; return the manifest.

    ``midway`` runs between the weights file and the manifest (a test's crash window)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = npz_bytes(weights_arrays(clf))
    manifest = build_manifest(clf, hashlib.sha256(weights).hexdigest())
    text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    _atomic_write(directory / WEIGHTS_FILE, weights)
    _fsync_directory(directory)
    if midway is not None:
        midway()
    _atomic_write(directory / MANIFEST_FILE, text.encode("utf-8"))
    _fsync_directory(directory)
    return manifest


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The validated manifest of the model in `directory`, without reading the weights."""
    path = Path(directory) / MANIFEST_FILE
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read the manifest ({e.strerror})") from None
    try:
        manifest = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelFormatError(f"{path}: not valid JSON ({e})") from None
    problem = check_manifest(manifest)
    if problem:
        raise ModelFormatError(f"{path}: {problem}")
    return manifest  # type: ignore[no-any-return]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a finite number")


def _read_arrays(path: Path, data: bytes) -> dict[str, FloatArray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (AttributeError, TypeError):
        raise ModelFormatError(f"{path}: not an .npz archive") from None
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ModelFormatError(f"{path}: unreadable .npz ({e})") from None


def _checked(
    path: Path, arrays: dict[str, FloatArray], name: str, shape: tuple[int, ...]
) -> FloatArray:
    array = arrays[name]
    if array.dtype != np.float64:
        raise ModelFormatError(f"{path}: {name} has dtype {array.dtype}, expected float64")
    if array.shape != shape:
        raise ModelFormatError(f"{path}: {name} has shape {array.shape}, expected {shape}")
    if not np.all(np.isfinite(array)):
        raise ModelFormatError(f"{path}: {name} holds NaN or infinite values")
    return array


def _verified_arrays(directory: Path, manifest: dict[str, Any]) -> dict[str, FloatArray]:
    """The weights file's arrays, after checking its hash and its array names."""
    path = directory / WEIGHTS_FILE
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read the weights ({e.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest["sha256"]:
        raise ModelFormatError(
            f"{path}: SHA-256 {digest} does not match the manifest's {manifest['sha256']} "
            "(the file is truncated, corrupted or from another model)"
        )
    arrays = _read_arrays(path, data)
    specs = manifest["architecture"]["layers"]
    expected = {f"{s['name']}.W" for s in specs} | {f"{s['name']}.b" for s in specs if s["bias"]}
    if manifest["preprocessing"]["standardize"]:
        expected |= {"preprocessing.mean", "preprocessing.std"}
    if set(arrays) != expected:
        raise ModelFormatError(
            f"{path}: holds arrays {sorted(arrays)}, the manifest describes {sorted(expected)}"
        )
    return arrays


def _standardisation(
    directory: Path, manifest: dict[str, Any], arrays: dict[str, FloatArray]
) -> tuple[FloatArray | None, FloatArray | None]:
    preprocessing = manifest["preprocessing"]
    if not preprocessing["standardize"]:
        return None, None
    path, shape = directory / WEIGHTS_FILE, (len(manifest["features"]),)
    mean = _checked(path, arrays, "preprocessing.mean", shape)
    std = _checked(path, arrays, "preprocessing.std", shape)
    if mean.tolist() != preprocessing["mean"] or std.tolist() != preprocessing["std"]:
        raise ModelFormatError(
            f"{directory / MANIFEST_FILE}: preprocessing mean/std differ from {path}"
        )
    return mean, std


def load_model(directory: str | Path) -> Classifier:
    """The model saved in `directory`, after checking hash, names, shapes, dtypes, finiteness."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    arrays = _verified_arrays(directory, manifest)
    path = directory / WEIGHTS_FILE
    layers = []
    for s in manifest["architecture"]["layers"]:
        W = _checked(path, arrays, f"{s['name']}.W", (s["in"], s["out"]))
        b = _checked(path, arrays, f"{s['name']}.b", (s["out"],)) if s["bias"] else None
        layers.append(Dense(s["name"], W, b, s["activation"]))
    mean, std = _standardisation(directory, manifest, arrays)
    try:
        return Classifier(
            network=Network(layers),
            features=list(manifest["features"]),
            classes=list(manifest["classes"]),
            target=manifest["target"],
            mean=mean,
            std=std,
            training=manifest["training"],
            metrics=manifest["metrics"],
            history=manifest["history"],
            created_at=manifest["created_at"],
        )
    except ValueError as e:
        raise ModelFormatError(f"{directory / MANIFEST_FILE}: inconsistent model ({e})") from None
