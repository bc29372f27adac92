"""Saving and loading models: round trips, atomic writes, and every corruption refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from model.classifier import Classifier
from model.manifest import REQUIRED_FIELDS
from model.serialize import (
    MANIFEST_FILE,
    WEIGHTS_FILE,
    ModelFormatError,
    load_model,
    read_manifest,
    save_model,
)

SAMPLES = np.array([[5.1, 3.5], [6.7, 3.1], [4.9, 2.4], [5.8, 2.7], [-1e6, 1e6]])


@pytest.fixture()
def saved(tmp_path: Path, default_model: Classifier) -> Path:
    directory = tmp_path / "store" / "v1"
    save_model(default_model, directory)
    return directory


def _rewrite_weights(directory: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    """Change the arrays, write them with np.savez and fix the manifest's hash to match,
    so that only the check under test can catch the problem."""
    with np.load(directory / WEIGHTS_FILE) as npz:
        arrays = {name: npz[name] for name in npz.files}
    change(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    (directory / WEIGHTS_FILE).write_bytes(data)
    _edit_manifest(directory, lambda m: m.update(sha256=hashlib.sha256(data).hexdigest()))


def _edit_manifest(directory: Path, change: Callable[[dict], object]) -> None:
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    change(manifest)
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_round_trip_gives_identical_predictions(saved: Path, default_model: Classifier) -> None:
    loaded = load_model(saved)
    np.testing.assert_array_equal(
        loaded.predict_proba(SAMPLES), default_model.predict_proba(SAMPLES)
    )
    assert loaded.predict(SAMPLES) == default_model.predict(SAMPLES)
    np.testing.assert_array_equal(loaded.network.theta, default_model.network.theta)
    assert loaded.features == default_model.features
    assert loaded.classes == default_model.classes
    assert loaded.target == default_model.target
    assert loaded.metrics == default_model.metrics
    assert loaded.history == default_model.history
    assert loaded.training == default_model.training
    assert loaded.created_at == default_model.created_at
    assert loaded.manifest() == default_model.manifest()


def test_round_trip_of_a_softmax_model_without_standardisation(tmp_path: Path) -> None:
    from model.train import TrainConfig, train

    clf = train(TrainConfig(features=None, target="species", standardize=False, max_epochs=20))
    save_model(clf, tmp_path)
    loaded = load_model(tmp_path)
    X = np.array([[5.1, 3.5, 1.4, 0.2], [6.3, 2.5, 5.0, 1.9]])
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.mean is None and loaded.std is None


def test_manifest_has_every_field_and_the_weights_hash(
    saved: Path, default_model: Classifier
) -> None:
    manifest = read_manifest(saved)
    assert set(REQUIRED_FIELDS) <= set(manifest)
    assert manifest["format_version"] == 1
    assert manifest["sha256"] == hashlib.sha256((saved / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert manifest["architecture"]["layers"] == [
        {"name": "hidden", "in": 2, "out": 3, "activation": "sigmoid", "bias": True},
        {"name": "output", "in": 3, "out": 1, "activation": "sigmoid", "bias": True},
    ]
    assert manifest["preprocessing"]["standardize"] is True
    assert manifest["preprocessing"]["mean"] == default_model.mean.tolist()
    assert manifest["training"]["optimizer"] == "gd"
    assert manifest["created_at"].endswith("Z")
    assert manifest == default_model.manifest()


def test_save_returns_the_written_manifest_and_leaves_no_temporary_files(
    tmp_path: Path, default_model: Classifier
) -> None:
    manifest = save_model(default_model, tmp_path / "m")
    assert manifest == json.loads((tmp_path / "m" / MANIFEST_FILE).read_text())
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [MANIFEST_FILE, WEIGHTS_FILE]


def test_weights_file_is_byte_for_byte_reproducible(
    tmp_path: Path, default_model: Classifier
) -> None:
    save_model(default_model, tmp_path / "a")
    save_model(default_model, tmp_path / "b")
    assert (tmp_path / "a" / WEIGHTS_FILE).read_bytes() == (
        tmp_path / "b" / WEIGHTS_FILE
    ).read_bytes()


def test_crash_before_the_manifest_is_renamed_leaves_nothing_loadable(
    tmp_path: Path,
    default_model: Classifier,
    species_model: Classifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_model(species_model, tmp_path)
    real_replace = os.replace

    def crash_on_manifest(src: str, dst: str) -> None:
        if str(dst).endswith(MANIFEST_FILE):
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr("model.serialize.os.replace", crash_on_manifest)
    with pytest.raises(OSError, match="simulated crash"):
        save_model(default_model, tmp_path)
    monkeypatch.undo()
    # New weights, old manifest: the hash disagrees, so the half-written model is refused.
    with pytest.raises(ModelFormatError, match="SHA-256"):
        load_model(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_FILE, WEIGHTS_FILE]


def test_truncated_weights_file_is_refused(saved: Path) -> None:
    data = (saved / WEIGHTS_FILE).read_bytes()
    (saved / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match=rf"{WEIGHTS_FILE}: SHA-256 .* does not match"):
        load_model(saved)


def test_flipped_byte_is_refused(saved: Path) -> None:
    data = bytearray((saved / WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (saved / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="truncated, corrupted"):
        load_model(saved)


def test_wrong_shapes_are_refused(saved: Path) -> None:
    def widen(arrays: dict[str, np.ndarray]) -> None:
        arrays["hidden.W"] = np.zeros((3, 3))

    _rewrite_weights(saved, widen)
    with pytest.raises(ModelFormatError, match=r"hidden\.W has shape \(3, 3\), expected \(2, 3\)"):
        load_model(saved)


def test_nan_weights_are_refused(saved: Path) -> None:
    def poison(arrays: dict[str, np.ndarray]) -> None:
        arrays["output.W"][1, 0] = np.nan

    _rewrite_weights(saved, poison)
    with pytest.raises(ModelFormatError, match=r"output\.W holds NaN or infinite values"):
        load_model(saved)


def test_wrong_dtype_is_refused(saved: Path) -> None:
    def shrink(arrays: dict[str, np.ndarray]) -> None:
        arrays["output.b"] = arrays["output.b"].astype(np.float32)

    _rewrite_weights(saved, shrink)
    with pytest.raises(ModelFormatError, match="output.b has dtype float32, expected float64"):
        load_model(saved)


def test_pickled_object_in_the_npz_is_refused(saved: Path) -> None:
    def smuggle(arrays: dict[str, np.ndarray]) -> None:
        arrays["output.W"] = np.array([[{"not": "a number"}]] * 3, dtype=object)

    _rewrite_weights(saved, smuggle)
    with pytest.raises(ModelFormatError, match=rf"{WEIGHTS_FILE}: unreadable .npz .*pickle"):
        load_model(saved)


def test_extra_or_missing_arrays_are_refused(saved: Path) -> None:
    _rewrite_weights(saved, lambda arrays: arrays.update(extra=np.zeros(1)))
    with pytest.raises(ModelFormatError, match="holds arrays .*extra.* the manifest describes"):
        load_model(saved)


@pytest.mark.parametrize("field", list(REQUIRED_FIELDS))
def test_manifest_missing_a_field_is_refused(saved: Path, field: str) -> None:
    _edit_manifest(saved, lambda m: m.pop(field))
    with pytest.raises(
        ModelFormatError, match=rf"{MANIFEST_FILE}: missing required field.*{field}"
    ):
        load_model(saved)
    with pytest.raises(ModelFormatError):
        read_manifest(saved)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_unknown_format_version_is_refused(saved: Path, version: object) -> None:
    _edit_manifest(saved, lambda m: m.update(format_version=version))
    with pytest.raises(ModelFormatError, match="unknown format_version .* reads version 1"):
        load_model(saved)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["architecture"]["layers"][0].update(activation="swish"), "unknown activation"),
        (lambda m: m["architecture"]["layers"][0].update(out=4), "hidden.W has shape"),
        (lambda m: m["architecture"]["layers"][0].update(bias=False), "holds arrays"),
        (lambda m: m.update(classes=["setosa"]), "at least 2 distinct names"),
        (lambda m: m.update(classes=["a", "b", "c"]), "inconsistent model"),
        (lambda m: m.update(features=["sepal_length"]), "must be a list of 1 numbers"),
        (lambda m: m["preprocessing"]["mean"].__setitem__(0, 0.0), "preprocessing mean/std differ"),
        (lambda m: m.update(sha256="abc"), "64 lowercase hexadecimal"),
        (lambda m: m.update(metrics=[]), "field 'metrics' has the wrong type"),
    ],
)
def test_inconsistent_manifest_is_refused(
    saved: Path, change: Callable[[dict], object], message: str
) -> None:
    _edit_manifest(saved, change)
    with pytest.raises(ModelFormatError, match=message):
        load_model(saved)


def test_manifest_that_is_not_json_is_refused(saved: Path) -> None:
    (saved / MANIFEST_FILE).write_text('{"format_version": 1,')
    with pytest.raises(ModelFormatError, match=rf"{MANIFEST_FILE}: not valid JSON"):
        read_manifest(saved)
    (saved / MANIFEST_FILE).write_text('{"format_version": NaN}')
    with pytest.raises(ModelFormatError, match="not valid JSON .*NaN"):
        read_manifest(saved)


def test_missing_files_are_refused_naming_them(saved: Path, tmp_path: Path) -> None:
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelFormatError, match=rf"{WEIGHTS_FILE}: cannot read the weights"):
        load_model(saved)
    with pytest.raises(ModelFormatError, match=rf"{MANIFEST_FILE}: cannot read the manifest"):
        load_model(tmp_path / "nowhere")


def test_model_format_error_is_a_value_error() -> None:
    assert issubclass(ModelFormatError, ValueError)


def test_serving_imports_do_not_load_scikit_learn() -> None:
    code = (
        "import sys\n"
        "import model.network, model.classifier, model.serialize, model.trace, model.spec\n"
        "assert not any(m.split('.')[0] in ('sklearn', 'scipy') for m in sys.modules), 'sklearn'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
