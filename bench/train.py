"""Training benchmark for the model package (run by `make bench`).

Writes one Markdown section (`--out PATH`, see bench/README.md), all figures measured
in this run, medians of interleaved repeats:

1. Time to scikit-learn's test accuracy. For (a) the default model on Iris (2-3-1
   sigmoid, sepal length + width, setosa against the rest) and (b) a seeded synthetic
   table of 100,000 rows, 8 features and 3 classes with 16 hidden units:
   scikit-learn's MLPClassifier(activation="logistic") fitted with lbfgs and with
   adam, and ours, `train()` with optimizer lbfgs, on the same stratified split and
   standardisation. The reference is scikit-learn's best fit: of its two solvers,
   the one that is done first (each ends at its own test accuracy). Target: ours, a
   plain `train()` call stopping by its own rule, reaches at least that accuracy in
   no more time. Ours is timed as a whole `train()` call (split, standardisation,
   history and metrics included); scikit-learn as `fit` on the prepared arrays.
2. Per-epoch cost against the floor, the same maths written inline as bare NumPy,
   timed in alternating blocks so that machine noise hits both alike (target: within
   1.5x): one gd epoch on the 150 Iris rows, and one lbfgs epoch (one iteration: its
   loss-and-gradient evaluations and the two-loop recursion) on the synthetic table.

`--smoke` runs the same section on a 1,000-row table, scikit-learn capped at 20
iterations, one repeat (figures
meaningless, and the section says so).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import write_out  # noqa: E402

from model.classifier import Classifier  # noqa: E402
from model.config import TrainConfig  # noqa: E402
from model.data import Table, make_dataset, stratified_split  # noqa: E402
from model.lbfgs import LBFGS  # noqa: E402
from model.losses import one_hot  # noqa: E402
from model.network import Network  # noqa: E402
from model.train import train  # noqa: E402


@dataclass(frozen=True)
class Plan:
    rows: int
    iris_repeats: int
    table_repeats: int
    epoch_blocks: int
    sklearn_max_iter: tuple[int, int]  # on Iris, on the table


FULL = Plan(100_000, iris_repeats=7, table_repeats=3, epoch_blocks=15, sklearn_max_iter=(2000, 200))
SMOKE = Plan(1_000, iris_repeats=1, table_repeats=1, epoch_blocks=1, sklearn_max_iter=(20, 20))
IRIS_EPOCHS_PER_BLOCK = 300
TABLE_EPOCHS_PER_BLOCK = 5
TABLE_HIDDEN = 16
# Ours on the big table: lbfgs, stopping on a loss plateau of 1e-4 over 10 iterations.
TABLE_TOLERANCE = 1e-4


def synthetic_table(rows: int, seed: int = 0) -> Table:
    """8 standard normal features; 3 classes drawn from a random 8-16-3 tanh teacher.

    The label is sampled from softmax(teacher logits) (argmax with Gumbel noise), so
    no model can be perfect: the teacher's own argmax scores about 0.89.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 8))
    A = rng.normal(size=(8, 16)) / np.sqrt(8)
    B = rng.normal(size=(16, 3)) * 10.0 / np.sqrt(16)
    logits = np.tanh(X @ A) @ B
    y = np.argmax(logits + rng.gumbel(size=(rows, 3)), axis=1)
    return Table([f"x{i}" for i in range(8)], X, [f"class{i}" for i in y])


@dataclass
class Case:
    name: str
    config: TrainConfig
    table: Table | None
    hidden: int
    sklearn_max_iter: int


def _prepared(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The split and standardisation train(case.config) uses."""
    config = case.config
    data = make_dataset(config.features, config.target, case.table)
    rng = np.random.default_rng(config.seed)
    train_idx, test_idx = stratified_split(data.y, config.test_fraction, rng)
    mean, std = data.X[train_idx].mean(axis=0), data.X[train_idx].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (
        (data.X[train_idx] - mean) / std,
        data.y[train_idx],
        (data.X[test_idx] - mean) / std,
        data.y[test_idx],
    )


def _sklearn_fit(case: Case, solver: str, arrays: tuple) -> tuple[float, int, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X_train, y_train, X_test, y_test = arrays
    mlp = MLPClassifier(
        hidden_layer_sizes=(case.hidden,),
        activation="logistic",
        solver=solver,
        max_iter=case.sklearn_max_iter,
        random_state=0,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    return seconds, int(mlp.n_iter_), float(mlp.score(X_test, y_test))


def _ours(case: Case) -> tuple[float, Classifier]:
    start = time.perf_counter()
    clf = train(case.config, case.table)
    return time.perf_counter() - start, clf


def time_to_accuracy(case: Case, repeats: int) -> list[str]:
    """Interleaved rounds of sklearn lbfgs, sklearn adam and ours; table rows and verdict."""
    arrays = _prepared(case)
    times: dict[str, list[float]] = {"lbfgs": [], "adam": [], "ours": []}
    work: dict[str, str] = {}
    accuracy: dict[str, float] = {}
    _ours(case)  # warm-up (first use of the table and of NumPy's code paths)
    for _ in range(repeats):
        for solver in ("lbfgs", "adam"):
            seconds, n_iter, acc = _sklearn_fit(case, solver, arrays)
            times[solver].append(seconds)
            work[solver], accuracy[solver] = f"{n_iter} iterations", acc
        seconds, clf = _ours(case)
        times["ours"].append(seconds)
        m = clf.metrics
        work["ours"] = f"{m['epochs']} epochs, converged={m['converged']}"
        accuracy["ours"] = m["test_accuracy"]
    median = {k: statistics.median(v) for k, v in times.items()}
    best = min(("lbfgs", "adam"), key=lambda s: median[s])
    fast = median["ours"] <= median[best]
    accurate = accuracy["ours"] >= accuracy[best]
    verdict = "**met**" if fast and accurate else "**not met**"
    spread = {k: f"{min(v) * 1e3:.0f}-{max(v) * 1e3:.0f}" for k, v in times.items()}
    rows = [
        f"| {case.name} | scikit-learn lbfgs{' (best)' if best == 'lbfgs' else ''} "
        f"| {median['lbfgs'] * 1e3:.1f} ms ({spread['lbfgs']}) | {work['lbfgs']} "
        f"| {accuracy['lbfgs']:.4f} | |",
        f"| {case.name} | scikit-learn adam{' (best)' if best == 'adam' else ''} "
        f"| {median['adam'] * 1e3:.1f} ms ({spread['adam']}) | {work['adam']} "
        f"| {accuracy['adam']:.4f} | |",
        f"| {case.name} | ours: train(optimizer=lbfgs{_extra(case.config)}) "
        f"| {median['ours'] * 1e3:.1f} ms ({spread['ours']}) | {work['ours']} "
        f"| {accuracy['ours']:.4f} | {median['ours'] / median[best]:.2f}x the time, "
        f"accuracy {'>=' if accurate else '<'} best: {verdict} |",
    ]
    return rows


def _extra(config: TrainConfig) -> str:
    default = TrainConfig()
    parts = []
    if config.hidden_units != default.hidden_units:
        parts.append(f"hidden_units={config.hidden_units}")
    if config.tolerance != default.tolerance:
        parts.append(f"tolerance={config.tolerance:g}")
    return "".join(f", {p}" for p in parts)


def _alternate(ours: Callable[[], None], floor: Callable[[], None], n: int, blocks: int) -> tuple:
    def block(fn: Callable[[], None]) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n

    block(ours), block(floor)  # warm-up
    ours_t, floor_t = [], []
    for _ in range(blocks):
        ours_t.append(block(ours))
        floor_t.append(block(floor))
    return statistics.median(ours_t), statistics.median(floor_t)


def iris_epoch_costs(blocks: int) -> tuple[float, float]:
    """Median seconds per full-batch gd epoch (forward + backward + step): ours, floor."""
    data = make_dataset(("sepal_length", "sepal_width"), "setosa")
    X = (data.X - data.X.mean(axis=0)) / data.X.std(axis=0)
    T = one_hot(data.y, 1)
    n = X.shape[0]
    net = Network.initialize(
        2, [3], 1, hidden_activation="sigmoid", output_activation="sigmoid",
        rng=np.random.default_rng(0),
    )  # fmt: skip
    loss = net.loss
    W1, b1 = net.layers[0].W.copy(), net.layers[0].b.copy()  # type: ignore[union-attr]
    W2, b2 = net.layers[1].W.copy(), net.layers[1].b.copy()  # type: ignore[union-attr]

    def ours() -> None:
        a = net.forward(X)
        net.parameter_gradients(loss.delta(a, T))

    def floor() -> None:
        z1 = X @ W1 + b1
        h = np.exp(-np.logaddexp(0.0, -z1))  # the package's form for small arrays
        z2 = h @ W2 + b2
        y = np.exp(-np.logaddexp(0.0, -z2))
        d2 = (y - T) / n
        dW2, db2 = h.T @ d2, d2.sum(axis=0)
        d1 = (d2 @ W2.T) * (h * (1.0 - h))
        dW1, db1 = X.T @ d1, d1.sum(axis=0)
        del dW1, db1, dW2, db2

    return _alternate(ours, floor, IRIS_EPOCHS_PER_BLOCK, blocks)


def table_epoch_costs(table: Table, blocks: int) -> tuple[float, float, float]:
    """Median seconds per lbfgs epoch (ours) and per inline loss-and-gradient (the floor),
    and ours' evaluations per epoch, on the training rows of the synthetic table."""
    X_train, y_train, _, _ = _prepared(Case("", TrainConfig(features=None), table, 16, 0))
    T = one_hot(y_train, 3)
    n = X_train.shape[0]
    net = Network.initialize(
        8, [TABLE_HIDDEN], 3, hidden_activation="sigmoid", output_activation="softmax",
        rng=np.random.default_rng(0),
    )  # fmt: skip
    loss, output = net.loss, net.layers[-1]
    evaluations = [0]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        evaluations[0] += 1
        a = net.forward(X_train)
        assert output.z is not None
        value = loss.value(output.z, T)
        net.parameter_gradients(loss.delta(a, T))
        return value, net.grad

    start_theta = net.theta.copy()
    W1, b1 = net.layers[0].W.copy(), net.layers[0].b.copy()  # type: ignore[union-attr]
    W2, b2 = net.layers[1].W.copy(), net.layers[1].b.copy()  # type: ignore[union-attr]
    ones = np.ones((3, 1))
    solver = [LBFGS(objective, net.theta)]
    steps = [0]

    def ours() -> None:
        if steps[0] >= 150:  # keep measuring iterations of an early, typical stretch
            net.theta[...] = start_theta
            solver[0] = LBFGS(objective, net.theta)
            steps[0] = 0
        solver[0].step()
        steps[0] += 1

    def floor() -> None:
        z1 = X_train @ W1
        z1 += b1
        h = np.negative(z1)
        np.exp(h, out=h)
        h += 1.0
        np.reciprocal(h, out=h)
        z2 = h @ W2
        z2 += b2
        m = np.maximum(np.maximum(z2[:, :1], z2[:, 1:2]), z2[:, 2:3])
        e = np.exp(z2 - m)
        s = e @ ones
        value = float(((m + np.log(s)) * T).sum() - (z2 * T).sum()) / n
        y = e / s
        d2 = y - T
        d2 /= n
        dW2, db2 = h.T @ d2, d2.sum(axis=0)
        d1 = d2 @ W2.T
        d = 1.0 - h
        d *= h
        d *= d1
        dW1, db1 = X_train.T @ d, d.sum(axis=0)
        del value, dW1, db1, dW2, db2

    with np.errstate(over="ignore", invalid="ignore"):
        evaluations[0] = 0
        ours_t, floor_t = _alternate(ours, floor, TABLE_EPOCHS_PER_BLOCK, blocks)
    epochs = (blocks + 1) * TABLE_EPOCHS_PER_BLOCK  # the warm-up block too
    return ours_t, floor_t, evaluations[0] / epochs


def main() -> None:
    import sklearn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few seconds, small table")
    parser.add_argument("--out", type=Path, help="write the Markdown section here")
    args = parser.parse_args()
    plan = SMOKE if args.smoke else FULL
    table = synthetic_table(plan.rows)
    iris_iter, table_iter = plan.sklearn_max_iter
    iris = Case("(a) Iris, default model", TrainConfig(optimizer="lbfgs"), None, 3, iris_iter)
    big = Case(
        f"(b) synthetic {plan.rows:,} x 8, 3 classes",
        TrainConfig(
            features=None, hidden_units=TABLE_HIDDEN, optimizer="lbfgs", tolerance=TABLE_TOLERANCE
        ),
        table,
        TABLE_HIDDEN,
        table_iter,
    )
    rows = time_to_accuracy(iris, plan.iris_repeats) + time_to_accuracy(big, plan.table_repeats)
    gd_seconds, gd_clf = _ours(Case("", TrainConfig(), None, 3, 0))
    iris_ours, iris_floor = iris_epoch_costs(plan.epoch_blocks)
    lb_ours, lb_floor, evals = table_epoch_costs(table, plan.epoch_blocks)

    def ratio(ours: float, floor: float) -> str:
        return f"**{ours / floor:.2f}x** ({'met' if ours <= 1.5 * floor else 'not met'})"

    m = gd_clf.metrics
    lines = [
        "## Model training",
        "",
        *(
            [
                "**Smoke run**: a 1,000-row table, 20 scikit-learn iterations, one repeat; "
                "the figures mean nothing.",
                "",
            ]
            if args.smoke
            else []
        ),
        "| case | fit | median time (min-max) | work | test accuracy | target: ours no slower, "
        "as accurate |",
        "|---|---|---:|---|---:|---|",
        *rows,
        "",
        f"The lecture's default, `train(TrainConfig())` (gd): {gd_seconds * 1e3:.1f} ms, "
        f"{m['epochs']} epochs, test accuracy {m['test_accuracy']:.3f} (one run).",
        "",
        "| per-epoch cost | ours | inline NumPy floor | ratio (target <= 1.5x) |",
        "|---|---:|---:|---:|",
        f"| gd, Iris 150 rows, 2-3-1 sigmoid: forward + backward | {iris_ours * 1e6:.1f} us "
        f"| {iris_floor * 1e6:.1f} us | {ratio(iris_ours, iris_floor)} |",
        f"| lbfgs, synthetic {int(plan.rows * 0.8):,} training rows, 8-16-3: one iteration "
        f"({evals:.2f} loss-and-gradient evaluations) vs one evaluation | {lb_ours * 1e3:.2f} ms "
        f"| {lb_floor * 1e3:.2f} ms | {ratio(lb_ours, lb_floor)} |",
        "",
        f"Conditions: scikit-learn {sklearn.__version__}, MLPClassifier(hidden_layer_sizes="
        "(3,) or (16,), activation='logistic', random_state=0, max_iter=2000 on Iris, 200 "
        "(its default) on the table), its other settings default (so an L2 penalty of 1e-4, "
        "which ours does not have). Rounds interleave scikit-learn lbfgs, adam and ours: "
        f"{plan.iris_repeats} on Iris, {plan.table_repeats} on the table; accuracies are "
        "deterministic (seeded). The synthetic table: bench/train.py `synthetic_table` (seed "
        "0; labels sampled from a random 8-16-3 tanh teacher). Per-epoch costs: medians of "
        f"{plan.epoch_blocks} alternating blocks ({IRIS_EPOCHS_PER_BLOCK} gd epochs, or "
        f"{TABLE_EPOCHS_PER_BLOCK} lbfgs iterations against as many floor evaluations). "
        "Both use one process on a 2-core machine shared with other work.",
        "",
        "Command: `.venv/bin/python bench/train.py --out bench/out/train.md`.",
    ]
    write_out(args.out, "\n".join(lines))


if __name__ == "__main__":
    main()
