"""Training benchmark for the model package (run by `make bench`).

Prints one Markdown table, all figures measured in this run (medians of repeats):

1. the time `train(TrainConfig())` takes to fit the lecture's default model, with the
   accuracy it reaches;
2. the per-epoch cost of one full-batch forward + backward on the 150 Iris rows,
   against the floor: the same maths written inline as bare NumPy (same shapes, same
   stable sigmoid, same output delta), timed in alternating blocks so that machine
   noise hits both alike (target: within 1.5x of the floor);
3. scikit-learn's MLPClassifier(hidden_layer_sizes=(3,), activation="logistic") on the
   same standardised train/test split, with solver sgd and lbfgs, plus the time an sgd
   fit takes for as many epochs as it needs to reach our test accuracy.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import write_section  # noqa: E402

from model.config import TrainConfig  # noqa: E402
from model.data import make_dataset, stratified_split  # noqa: E402
from model.losses import one_hot  # noqa: E402
from model.network import Network  # noqa: E402
from model.train import train  # noqa: E402

TRAIN_REPEATS = 9
EPOCH_BLOCKS = 31
EPOCHS_PER_BLOCK = 300
SKLEARN_REPEATS = 5
# scikit-learn's sgd needs thousands of epochs to reach our accuracy: fewer repeats.
SGD_UNTIL_REPEATS = 3


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def default_training() -> tuple[float, dict]:
    config = TrainConfig()
    clf = train(config)  # warm-up: loads Iris (and imports scikit-learn) once
    seconds = median_time(lambda: train(config), TRAIN_REPEATS)
    return seconds, clf.metrics


def epoch_costs() -> tuple[float, float]:
    """Median seconds per full-batch forward + backward: ours, and the inline floor."""
    data = make_dataset(("sepal_length", "sepal_width"), "setosa")
    X = (data.X - data.X.mean(axis=0)) / data.X.std(axis=0)
    T = one_hot(data.y, 1)
    n = X.shape[0]
    net = Network.initialize(
        2,
        [3],
        1,
        hidden_activation="sigmoid",
        output_activation="sigmoid",
        rng=np.random.default_rng(0),
    )
    loss = net.loss
    W1, b1 = net.layers[0].W.copy(), net.layers[0].b.copy()  # type: ignore[union-attr]
    W2, b2 = net.layers[1].W.copy(), net.layers[1].b.copy()  # type: ignore[union-attr]

    def ours() -> None:
        a = net.forward(X)
        net.parameter_gradients(loss.delta(a, T))

    def floor() -> None:
        z1 = X @ W1 + b1
        h = np.exp(-np.logaddexp(0.0, -z1))
        z2 = h @ W2 + b2
        y = np.exp(-np.logaddexp(0.0, -z2))
        d2 = (y - T) / n
        dW2, db2 = h.T @ d2, d2.sum(axis=0)
        d1 = (d2 @ W2.T) * (h * (1.0 - h))
        dW1, db1 = X.T @ d1, d1.sum(axis=0)
        del dW1, db1, dW2, db2

    def block(fn: Callable[[], None]) -> float:
        start = time.perf_counter()
        for _ in range(EPOCHS_PER_BLOCK):
            fn()
        return (time.perf_counter() - start) / EPOCHS_PER_BLOCK

    block(ours), block(floor)  # warm-up
    ours_t, floor_t = [], []
    for _ in range(EPOCH_BLOCKS):
        ours_t.append(block(ours))
        floor_t.append(block(floor))
    return statistics.median(ours_t), statistics.median(floor_t)


def sklearn_rows(target_accuracy: float) -> list[tuple[str, float, str, float]]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    config = TrainConfig()
    data = make_dataset(config.features, config.target)
    # The same split and standardisation as train(TrainConfig()).
    train_idx, test_idx = stratified_split(data.y, config.test_fraction, np.random.default_rng(0))
    mean, std = data.X[train_idx].mean(axis=0), data.X[train_idx].std(axis=0)
    X_train, X_test = (data.X[train_idx] - mean) / std, (data.X[test_idx] - mean) / std
    y_train, y_test = data.y[train_idx], data.y[test_idx]
    rows = []
    for solver in ("sgd", "lbfgs"):

        def fit(solver: str = solver) -> MLPClassifier:
            mlp = MLPClassifier(
                hidden_layer_sizes=(3,),
                activation="logistic",
                solver=solver,
                max_iter=2000,
                random_state=0,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                return mlp.fit(X_train, y_train)

        mlp = fit()
        seconds = median_time(fit, SKLEARN_REPEATS)
        rows.append(
            (
                f"scikit-learn MLPClassifier {solver}, fit (max_iter=2000)",
                seconds,
                f"{mlp.n_iter_} iterations",
                mlp.score(X_test, y_test),
            )
        )

    # How many sgd epochs does scikit-learn need to reach our test accuracy? Found with
    # partial_fit (untimed: its per-call overhead would inflate the figure), then timed
    # as one plain fit of exactly that many epochs.
    mlp = MLPClassifier(
        hidden_layer_sizes=(3,), activation="logistic", solver="sgd", random_state=0
    )
    epochs, accuracy = 0, 0.0
    while accuracy < target_accuracy and epochs < 20_000:
        mlp.partial_fit(X_train, y_train, classes=[0, 1])
        epochs += 1
        accuracy = mlp.score(X_test, y_test)

    def fit_epochs() -> MLPClassifier:
        mlp = MLPClassifier(
            hidden_layer_sizes=(3,),
            activation="logistic",
            solver="sgd",
            random_state=0,
            max_iter=epochs,
            n_iter_no_change=epochs + 1,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return mlp.fit(X_train, y_train)

    fitted = fit_epochs()
    reached = "" if accuracy >= target_accuracy else ", target not reached"
    rows.append(
        (
            f"scikit-learn MLPClassifier sgd, fit for the epochs partial_fit needed to reach "
            f"test accuracy {target_accuracy:.2f}",
            median_time(fit_epochs, SGD_UNTIL_REPEATS),
            f"{fitted.n_iter_} iterations{reached}",
            fitted.score(X_test, y_test),
        )
    )
    return rows


def main() -> None:
    import sklearn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    seconds, metrics = default_training()
    ours, floor = epoch_costs()
    rows = [
        (
            "backprop-serve train(TrainConfig()) (gd, default model)",
            seconds,
            f"{metrics['epochs']} epochs, converged={metrics['converged']}",
            metrics["test_accuracy"],
        ),
        *sklearn_rows(metrics["test_accuracy"]),
    ]
    verdict = "within" if ours <= 1.5 * floor else "NOT within"
    lines = [
        "| fit (Iris, sepal length + width, setosa vs rest, seed 0) | median time | work "
        "| test accuracy |",
        "|---|---:|---|---:|",
        *(
            f"| {name} | {secs * 1e3:.1f} ms | {work} | {accuracy:.3f} |"
            for name, secs, work, accuracy in rows
        ),
        "",
        "| full-batch forward + backward, 150 rows, 2-3-1 sigmoid | median per epoch |",
        "|---|---:|",
        f"| model.network (Network.forward + parameter_gradients) | {ours * 1e6:.1f} us |",
        f"| bare inline NumPy, same shapes and maths (the floor) | {floor * 1e6:.1f} us |",
        f"| ratio (target <= 1.5x) | **{ours / floor:.2f}x** ({verdict} target) |",
        "",
        f"Medians: {TRAIN_REPEATS} fits of ours, {SKLEARN_REPEATS} of each scikit-learn fit, "
        f"{SGD_UNTIL_REPEATS} of the long sgd fit, {EPOCH_BLOCKS} alternating blocks of "
        f"{EPOCHS_PER_BLOCK} epochs; test accuracy on the same stratified 30-flower hold-out. "
        f"Python {platform.python_version()}, NumPy {np.__version__}, scikit-learn "
        f"{sklearn.__version__}, {os.cpu_count()} cores.",
    ]
    table = "\n".join(lines)
    sys.stdout.write(table + "\n")
    if not args.no_write:
        write_section("Model training", table)


if __name__ == "__main__":
    main()
