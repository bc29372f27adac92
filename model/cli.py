"""`python -m model train | info | trace`: train, inspect and trace models from a shell."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.config import HIDDEN_ACTIVATION_CHOICES, TrainConfig
from model.data import IRIS_FEATURES, IRIS_TARGETS, Table
from model.optimizers import OPTIMIZERS

if TYPE_CHECKING:
    from model.train import Progress

# Options of `train` that map one to one onto TrainConfig fields.
CONFIG_OPTIONS = (
    "target",
    "hidden_units",
    "hidden_activation",
    "optimizer",
    "learning_rate",
    "batch_size",
    "max_epochs",
    "tolerance",
    "standardize",
    "test_fraction",
    "seed",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model", description="Train, inspect and trace backprop-serve models."
    )
    verbs = parser.add_subparsers(dest="verb", required=True)

    train = verbs.add_parser("train", help="train a model and save it to --out")
    train.add_argument(
        "--features",
        nargs="+",
        metavar="NAME",
        help=f"input columns, or 'all' (default: sepal_length sepal_width for Iris, every "
        f"column of --data-csv); Iris has {', '.join(IRIS_FEATURES)}",
    )
    train.add_argument("--target", choices=IRIS_TARGETS, help="Iris task (default setosa)")
    train.add_argument("--hidden-units", type=int, help="0-64; 0 = logistic regression")
    train.add_argument("--hidden-activation", choices=HIDDEN_ACTIVATION_CHOICES)
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--batch-size", type=int, help="mini-batch size for sgd and adam")
    train.add_argument("--max-epochs", type=int)
    train.add_argument("--tolerance", type=float, help="stop when norm(theta - theta_prev) < it")
    train.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None)
    train.add_argument("--test-fraction", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--data-csv", type=Path, help="train on a CSV table (header row) instead of Iris"
    )
    train.add_argument(
        "--label-column", help="the CSV column holding the labels (default: label, else the last)"
    )
    train.add_argument("--out", type=Path, required=True, help="directory to save the model in")
    train.add_argument("--quiet", action="store_true", help="print only the final metrics")

    info = verbs.add_parser("info", help="verify a saved model and print its manifest")
    info.add_argument("directory", type=Path)

    trace = verbs.add_parser("trace", help="print one sample's forward and backward pass as JSON")
    source = trace.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--weights", help="'lecture' (the lecture's worked example) or a JSON file of layers"
    )
    source.add_argument("--model", type=Path, help="a saved model directory")
    trace.add_argument("--x", nargs="+", type=float, required=True, help="the sample, raw units")
    trace.add_argument("--label", required=True, help="0/1 or a class index or name")
    trace.add_argument("--learning-rate", type=float, help="also show one descent step")
    trace.add_argument("--epsilon", type=float, default=1e-6, help="finite-difference step")
    return parser


def read_csv_table(path: Path, label_column: str | None = None) -> Table:
    """A Table from a CSV file with a header row; one column holds the labels."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise ValueError(f"{path}: needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    if label_column is None:
        label_column = "label" if "label" in header else header[-1]
    if label_column not in header:
        raise ValueError(f"{path}: no column {label_column!r} in the header {header}")
    j = header.index(label_column)
    names = header[:j] + header[j + 1 :]
    values, labels = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(
                f"{path}, line {line}: {len(row)} fields, the header has {len(header)}"
            )
        try:
            values.append([float(v) for k, v in enumerate(row) if k != j])
        except ValueError:
            raise ValueError(f"{path}, line {line}: a feature value is not a number") from None
        labels.append(row[j].strip())
    return Table(names, values, labels)


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _plain_line(p: Progress) -> None:
    _write(
        f"epoch {p.epoch}/{p.max_epochs}  loss {p.loss:.6f}  train_accuracy {p.train_accuracy:.4f}"
    )


@contextmanager
def _progress(quiet: bool, max_epochs: int) -> Iterator[Callable[[Progress], None]]:
    """The training progress callback: a live bar on a terminal (stderr), else the plain
    `epoch i/n  loss ...` lines on stdout that logs and scripts read."""
    if quiet:
        yield lambda p: None
        return
    if not sys.stderr.isatty():
        yield _plain_line
        return
    from tqdm import tqdm

    bars: list[tqdm[None]] = []  # made at the first epoch: loading the data is no epoch

    def update(p: Progress) -> None:
        if not bars:
            bars.append(tqdm(total=max_epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True))
        bar = bars[0]
        bar.set_postfix(
            loss=f"{p.loss:.6f}", train_accuracy=f"{p.train_accuracy:.4f}", refresh=False
        )
        bar.update(p.epoch - bar.n)

    try:
        yield update
        if bars and bars[0].n < max_epochs:  # converged before max_epochs
            bars[0].total = bars[0].n
            bars[0].set_description("converged", refresh=False)
    finally:
        for bar in bars:
            bar.close()


def _train(args: argparse.Namespace) -> None:
    from model.serialize import save_model
    from model.train import train

    values: dict[str, Any] = {
        name: getattr(args, name) for name in CONFIG_OPTIONS if getattr(args, name) is not None
    }
    if args.features == ["all"] or (args.features is None and args.data_csv is not None):
        values["features"] = None
    elif args.features is not None:
        values["features"] = args.features
    config = TrainConfig.from_dict(values)
    table = read_csv_table(args.data_csv, args.label_column) if args.data_csv else None

    with _progress(args.quiet, config.max_epochs) as report:
        clf = train(config, table, report)
    manifest = save_model(clf, args.out)
    _write(json.dumps({"metrics": clf.metrics, "saved": str(args.out)}, indent=2))
    _write(f"sha256 {manifest['sha256']}")


def _info(args: argparse.Namespace) -> None:
    from model.serialize import load_model

    _write(json.dumps(load_model(args.directory).manifest(), indent=2))


def _trace(args: argparse.Namespace) -> None:
    from model.classifier import Classifier
    from model.network import Network, lecture_network
    from model.serialize import load_model
    from model.trace import trace_backprop

    target: Classifier | Network
    if args.model is not None:
        target = load_model(args.model)
    elif args.weights == "lecture":
        target = lecture_network()
    else:
        spec = json.loads(Path(args.weights).read_text(encoding="utf-8"))
        layers = spec.get("layers") if isinstance(spec, dict) else spec
        if not isinstance(layers, list):
            raise ValueError(f'{args.weights}: expected {{"layers": [...]}} or a list of layers')
        target = Network.from_spec(layers)
    trace = trace_backprop(target, args.x, args.label, args.learning_rate, args.epsilon)
    _write(json.dumps(trace.to_dict(), indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; errors print one line to stderr and return 1."""
    args = _parser().parse_args(argv)
    from model.train import TrainingCancelled

    try:
        {"train": _train, "info": _info, "trace": _trace}[args.verb](args)
    except (ValueError, OSError, TrainingCancelled) as e:
        message = " ".join(str(e).split())
        sys.stderr.write(f"error: {message}\n")
        return 1
    return 0
