"""`Classifier.predict_proba` for many rows, bit for bit, in fewer NumPy calls.

NumPy costs a microsecond or two per call on a few thousand elements, and the
lecture's 2-3-1 network on 1,000 rows is some twenty calls: most of its time. A served
model's weights never change, so what a training step must recompute can be prepared
once:

- the z-score statistics and each bias repeated over rows ("tiles"): one elementwise
  call over the whole array where a short row broadcast over many rows needs one call
  per column (NumPy runs a broadcast row k elements at a time);
- the negated weights and bias of each sigmoid layer: x @ (-W) + (-b) is exactly
  -(x @ W + b), since IEEE rounding is symmetric in sign, so the stable bulk sigmoid
  1 / (1 + exp(-z)) needs no negation of its own;
- a binary model's probability written straight into its column of the answer.

Every element goes through the same IEEE operations, in the same order, as in
`Classifier.predict_proba`, and the matrix products see the same shapes and layouts;
so the answers are the same doubles, which the tests check bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.activations import BULK_SIZE, add_row, standardize_rows
from model.classifier import Classifier
from model.types import FloatArray

# Tiles are kept for rows of at most this many columns (wider rows broadcast quickly),
# from this many rows of a batch on, and up to this many bytes in all (grown as larger
# batches arrive). A larger batch takes the column-by-column forms: the same arithmetic.
# The lecture's 2-3-1 network keeps 8 values a row: tiles of up to 4,096 rows.
MAX_TILE_COLUMNS = 8
MIN_TILE_ROWS = 64
TILE_BYTES = 256 * 1024


@dataclass(frozen=True)
class _Layer:
    W: FloatArray  # negated for a sigmoid layer
    b: FloatArray | None  # likewise
    sigmoid: bool
    forward: Callable[[FloatArray], FloatArray]  # the activation (unused for sigmoid)


@dataclass(frozen=True)
class _Tiles:
    rows: int
    mean: FloatArray | None  # (rows, d)
    std: FloatArray | None
    biases: tuple[FloatArray | None, ...]  # (rows, units) per layer


_NO_TILES = _Tiles(0, None, None, ())


class BatchForward:
    """Class probabilities of many rows; safe to share between threads."""

    def __init__(self, classifier: Classifier) -> None:
        self._classifier = classifier
        self._mean, self._std = classifier.mean, classifier.std
        layers = []
        for layer in classifier.network.layers:
            sigmoid = layer.act.name == "sigmoid"
            W, b = layer.W.copy(), None if layer.b is None else layer.b.copy()
            if sigmoid:
                W, b = -W, None if b is None else -b
            layers.append(_Layer(W, b, sigmoid, layer.act.forward))
        self._layers = tuple(layers)
        self._binary = classifier.binary
        self._tiles = _NO_TILES
        rows = (self._mean, self._std, *(layer.b for layer in self._layers))
        per_row = sum(len(r) for r in rows if r is not None and len(r) <= MAX_TILE_COLUMNS)
        self._max_tile_rows = TILE_BYTES // (8 * per_row) if per_row else 0

    def __call__(self, X: FloatArray) -> FloatArray:
        """One probability column per class, in `classes` order. Shapes: (n, d) -> (n, k).

        Like `Classifier.predict_proba`, rows that overflow give non-finite values; the
        caller checks. NumPy's overflow warnings are silenced here.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            return self._classifier.predict_proba(X)
        n = X.shape[0]
        tiles = self._tiles_for(n)
        with np.errstate(over="ignore", invalid="ignore"):
            a = self._standardized(X, tiles)
            last = len(self._layers) - 1
            for i, layer in enumerate(self._layers):
                z = a @ layer.W
                if layer.b is not None:
                    tile = tiles.biases[i] if tiles.biases else None
                    if tile is None:
                        add_row(z, layer.b)
                    else:
                        np.add(z, tile[:n], out=z)
                if i == last and self._binary:  # [1 - p, p]
                    both = np.empty((n, 2))
                    column = both[:, 1:]
                    p = self._activate(z, layer, column)
                    np.subtract(1.0, p, out=both[:, :1])
                    if p is not column:
                        column[...] = p
                    return both
                a = self._activate(z, layer, None)
            return a

    def _standardized(self, X: FloatArray, tiles: _Tiles) -> FloatArray:
        if self._mean is None or self._std is None:
            return X
        if tiles.mean is None or tiles.std is None:
            return standardize_rows(X, self._mean, self._std)
        n = X.shape[0]
        out = np.subtract(X, tiles.mean[:n])
        return np.divide(out, tiles.std[:n], out=out)

    @staticmethod
    def _activate(z: FloatArray, layer: _Layer, out: FloatArray | None) -> FloatArray:
        """The layer's activation of z (for a sigmoid layer, z holds -z), into ``out``
        when given and the bulk form applies."""
        if not layer.sigmoid:
            return layer.forward(z)
        if z.size < BULK_SIZE:  # sigmoid's small form, exp(-log(1 + exp(-z)))
            return np.exp(-np.logaddexp(0.0, z))
        np.exp(z, out=z)
        z += 1.0
        return np.reciprocal(z, out=z if out is None else out)

    def _tiles_for(self, n: int) -> _Tiles:
        """Tiles of at least ``n`` rows, or none when ``n`` is too small or too large."""
        tiles = self._tiles
        if not MIN_TILE_ROWS <= n <= self._max_tile_rows:
            return _NO_TILES
        if tiles.rows >= n:
            return tiles
        rows = min(self._max_tile_rows, max(n, 2 * tiles.rows))
        tiles = self._tiles = _Tiles(  # one assignment: safe for other threads' reads
            rows,
            _tile(self._mean, rows),
            _tile(self._std, rows),
            tuple(_tile(layer.b, rows) for layer in self._layers),
        )
        return tiles


def _tile(row: FloatArray | None, rows: int) -> FloatArray | None:
    """``row`` repeated ``rows`` times, when it is short enough to gain from it."""
    if row is None or len(row) > MAX_TILE_COLUMNS:
        return None
    return np.tile(row, (rows, 1))
