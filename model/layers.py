"""A dense (fully connected) layer: a = activation(x @ W + b), rows are samples."""

from __future__ import annotations

import numpy as np

from model.activations import get_activation
from model.types import FloatArray


class Dense:
    """p neurons in parallel on the same input, as in the lecture's `LinearSigmoidLayer`.

    `forward` caches its input `x`, pre-activation `z` and output `a`; `backward`
    reads them, fills `dW` and `db` (shaped like `W` and `b`) and returns dJ/dx.
    Shapes: W (in, out), b (out,) or None.
    """

    def __init__(
        self, name: str, W: FloatArray, b: FloatArray | None, activation: str = "sigmoid"
    ) -> None:
        self.name = name
        self.activation = activation
        self.act = get_activation(activation)
        self.W: FloatArray = np.array(W, dtype=np.float64)
        if self.W.ndim != 2:
            raise ValueError(f"layer {name!r}: W must be 2-D (in, out), got shape {self.W.shape}")
        self.b: FloatArray | None = None
        if b is not None:
            self.b = np.array(b, dtype=np.float64)
            if self.b.shape != (self.W.shape[1],):
                raise ValueError(
                    f"layer {name!r}: b must have shape ({self.W.shape[1]},), got {self.b.shape}"
                )
        self.dW: FloatArray = np.zeros_like(self.W)
        self.db: FloatArray | None = None if self.b is None else np.zeros_like(self.b)
        self.x: FloatArray | None = None
        self.z: FloatArray | None = None
        self.a: FloatArray | None = None

    @property
    def n_in(self) -> int:
        return int(self.W.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.W.shape[1])

    @property
    def n_parameters(self) -> int:
        return self.W.size + (0 if self.b is None else self.b.size)

    def pre_activation(self, x: FloatArray) -> FloatArray:
        """z = x @ W (+ b). Shapes: x (n, in) -> (n, out)."""
        z = x @ self.W
        if self.b is not None:
            z += self.b
        return z

    def forward(self, x: FloatArray) -> FloatArray:
        """Output a, caching x, z and a for backward. Shapes: x (n, in) -> (n, out)."""
        z = self.pre_activation(x)
        a = self.act.forward(z)
        self.x, self.z, self.a = x, z, a
        return a

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dJ/dx from dJ/da, filling dW and db. Shapes: grad_output (n, out) -> (n, in)."""
        if self.a is None:
            raise RuntimeError(f"layer {self.name!r}: backward called before forward")
        return self.backward_delta(self.act.backward(self.a, grad_output))

    def backward_delta(self, delta: FloatArray) -> FloatArray:
        """dJ/dx from delta = dJ/dz, filling dW and db. Shapes: delta (n, out) -> (n, in)."""
        self.parameter_gradients(delta)
        return delta @ self.W.T

    def parameter_gradients(self, delta: FloatArray) -> None:
        """Fill dW = x^T delta and db = sum(delta) only. Shapes: delta (n, out)."""
        if self.x is None:
            raise RuntimeError(f"layer {self.name!r}: backward called before forward")
        # dW and db may be views into the network's flat gradient vector: write in place.
        np.matmul(self.x.T, delta, out=self.dW)
        if self.db is not None:
            delta.sum(axis=0, out=self.db)

    def __repr__(self) -> str:
        bias = "bias" if self.b is not None else "no bias"
        return f"Dense({self.name!r}, {self.n_in}->{self.n_out}, {self.activation}, {bias})"
