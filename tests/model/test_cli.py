"""`python -m model`: train, info and trace as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model.serialize import load_model


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("cli") / "model"
    result = _run("train", "--max-epochs", "600", "--seed", "3", "--out", str(out))
    return out, result


def test_train_prints_progress_and_metrics_and_saves(
    trained: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, result = trained
    assert result.returncode == 0, result.stderr
    assert "epoch 600/600  loss" in result.stdout
    assert "%|" not in result.stdout + result.stderr, "no progress bar when not a terminal"
    assert '"test_accuracy"' in result.stdout
    clf = load_model(out)
    assert clf.training["seed"] == 3 and clf.training["max_epochs"] == 600


def test_info_prints_the_manifest(trained: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = trained
    result = _run("info", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["classes"] == ["not-setosa", "setosa"]
    assert manifest["sha256"] == load_model(out).manifest()["sha256"]


def test_trace_of_the_lecture_weights_prints_the_reference_json() -> None:
    result = _run("trace", "--weights", "lecture", "--x", "5", "3", "--label", "1")
    assert result.returncode == 0, result.stderr
    trace = json.loads(result.stdout)
    assert trace["loss"] == pytest.approx(0.5269922664, rel=1e-9)
    assert trace["gradient_check"]["passed"] is True


def test_trace_of_a_saved_model_and_of_a_json_weights_file(
    trained: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    out, _ = trained
    result = _run("trace", "--model", str(out), "--x", "5", "3", "--label", "setosa")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["label"] == "setosa"
    spec = {"layers": [{"weights": [[0.5], [-0.25]], "bias": [0.1], "activation": "sigmoid"}]}
    (tmp_path / "w.json").write_text(json.dumps(spec))
    result = _run(
        "trace",
        "--weights",
        str(tmp_path / "w.json"),
        "--x",
        "1",
        "2",
        "--label",
        "0",
        "--learning-rate",
        "0.5",
    )
    assert result.returncode == 0, result.stderr
    assert "weights_after_step" in json.loads(result.stdout)["layers"][0]


def test_train_on_a_csv_table(tmp_path: Path) -> None:
    lines = ["width,height,kind"] + [
        f"{i % 7},{(i * 3) % 5},{'a' if i % 2 else 'b'}" for i in range(40)
    ]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    result = _run(
        "train",
        "--data-csv",
        str(tmp_path / "t.csv"),
        "--max-epochs",
        "20",
        "--quiet",
        "--out",
        str(tmp_path / "m"),
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 20/20" not in result.stdout
    clf = load_model(tmp_path / "m")
    assert clf.features == ["width", "height"] and clf.classes == ["a", "b"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "--hidden-units", "65", "--out", "x"), "hidden_units must be between 0 and 64"),
        (("info", "/nonexistent/model"), "cannot read the manifest"),
        (("trace", "--weights", "lecture", "--x", "5", "--label", "1"), "x must have 2 values"),
        (("trace", "--weights", "lecture", "--x", "5", "3", "--label", "7"), "label must be 0/1"),
    ],
)
def test_errors_exit_non_zero_with_one_line(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_usage_errors_exit_non_zero() -> None:
    assert _run("trace", "--x", "5", "3", "--label", "1").returncode == 2
    assert _run().returncode == 2


def test_train_with_lbfgs_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = _run("train", "--optimizer", "lbfgs", "--quiet", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert load_model(out).training["optimizer"] == "lbfgs"
    assert json.loads(result.stdout.rsplit("sha256", 1)[0])["metrics"]["converged"] is True
