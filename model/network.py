"""A network: a stack of dense layers of any depth, trained by backpropagation.

All parameters live in one flat vector `theta` (and all gradients in `grad`); each
layer's `W`, `b`, `dW`, `db` are views into them. The optimizer can then apply the
lecture's update `theta := theta - alpha * grad` in one step, and the stopping rule
`norm(theta - theta_prev)` is one subtraction. Change weights in place
(`layer.W[...] = ...`), never by rebinding `layer.W`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from model.activations import add_row
from model.layers import Dense
from model.losses import Loss, loss_for
from model.types import FloatArray

# The lecture's worked example ("Backpropagation by Hand").
LECTURE_W = [[1.0, -1.0, 3.0], [2.0, 2.0, -1.0]]
LECTURE_V = [[0.1], [0.5], [-0.1]]


def layer_names(n_layers: int) -> list[str]:
    """`hidden` (or `hidden1`, `hidden2`, ...) for the hidden layers, `output` for the last."""
    if n_layers == 1:
        return ["output"]
    if n_layers == 2:
        return ["hidden", "output"]
    return [f"hidden{i}" for i in range(1, n_layers)] + ["output"]


class Network:
    """A composition f_L o ... o f_1 of dense layers. Shapes: X (n, n_inputs)."""

    def __init__(self, layers: Sequence[Dense]) -> None:
        if not layers:
            raise ValueError("a network needs at least one layer")
        for i, (prev, layer) in enumerate(zip(layers, layers[1:], strict=False), start=1):
            if layer.n_in != prev.n_out:
                raise ValueError(
                    f"layer {i} ({layer.name!r}) takes {layer.n_in} inputs but layer {i - 1} "
                    f"({prev.name!r}) has {prev.n_out} outputs"
                )
        for i, layer in enumerate(layers[:-1]):
            if layer.activation == "softmax":
                raise ValueError(f"layer {i} ({layer.name!r}): softmax is only allowed last")
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be distinct, got {names}")
        self.layers = list(layers)
        size = sum(layer.n_parameters for layer in self.layers)
        self.theta: FloatArray = np.empty(size)
        self.grad: FloatArray = np.zeros(size)
        offset = 0
        for layer in self.layers:
            offset = self._bind(layer, offset)

    def _bind(self, layer: Dense, offset: int) -> int:
        """Move a layer's parameters and gradients into views of theta and grad."""
        end = offset + layer.W.size
        W = self.theta[offset:end].reshape(layer.W.shape)
        W[...] = layer.W
        layer.W, layer.dW = W, self.grad[offset:end].reshape(layer.W.shape)
        if layer.b is not None:
            offset, end = end, end + layer.b.size
            b = self.theta[offset:end]
            b[...] = layer.b
            layer.b, layer.db = b, self.grad[offset:end]
        return end

    @classmethod
    def initialize(
        cls,
        n_inputs: int,
        hidden_units: Sequence[int],
        n_outputs: int,
        *,
        hidden_activation: str,
        output_activation: str,
        rng: np.random.Generator,
        bias: bool = True,
    ) -> Network:
        """Random weights, zero biases.

        Glorot & Bengio (2010) uniform initialisation, U(-r, r) with
        r = sqrt(6 / (fan_in + fan_out)), or sqrt(2 / ...) for sigmoid units, the
        scale scikit-learn's MLPClassifier uses for its logistic activation.
        """
        sizes = [n_inputs, *hidden_units, n_outputs]
        names = layer_names(len(sizes) - 1)
        layers = []
        for i, name in enumerate(names):
            fan_in, fan_out = sizes[i], sizes[i + 1]
            activation = output_activation if name == "output" else hidden_activation
            factor = 2.0 if activation == "sigmoid" else 6.0
            r = np.sqrt(factor / (fan_in + fan_out))
            W = rng.uniform(-r, r, size=(fan_in, fan_out))
            b = np.zeros(fan_out) if bias else None
            layers.append(Dense(name, W, b, activation))
        return cls(layers)

    @classmethod
    def from_spec(cls, layers: list[dict[str, Any]]) -> Network:
        """A network from plain lists, as POST /backprop sends it; ValueError names the layer."""
        from model.spec import parse_spec

        return cls(parse_spec(layers))

    def to_spec(self) -> list[dict[str, Any]]:
        """The inverse of `from_spec`: JSON-ready weights, biases and activations."""
        return [
            {
                "weights": layer.W.tolist(),
                "bias": None if layer.b is None else layer.b.tolist(),
                "activation": layer.activation,
            }
            for layer in self.layers
        ]

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def output_activation(self) -> str:
        return self.layers[-1].activation

    @property
    def loss(self) -> Loss:
        """The loss paired with the output activation."""
        return loss_for(self.output_activation)

    def layer(self, name: str) -> Dense:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers are {[x.name for x in self.layers]}")

    def parameters(self) -> dict[str, FloatArray]:
        """Parameters by name, e.g. `hidden.W`, `hidden.b`, `output.W` (views, not copies)."""
        params = {}
        for layer in self.layers:
            params[f"{layer.name}.W"] = layer.W
            if layer.b is not None:
                params[f"{layer.name}.b"] = layer.b
        return params

    def gradients(self) -> dict[str, FloatArray]:
        """Gradients from the last backward, named like `parameters()`."""
        grads = {}
        for layer in self.layers:
            grads[f"{layer.name}.W"] = layer.dW
            if layer.db is not None:
                grads[f"{layer.name}.b"] = layer.db
        return grads

    def forward(self, X: FloatArray) -> FloatArray:
        """Network output, each layer caching what backward needs. Shapes: (n, in) -> (n, out)."""
        a = X
        for layer in self.layers:
            a = layer.forward(a)
        return a

    def backward(self, grad_output: FloatArray) -> FloatArray:
        """dJ/dX from dJ/d(output), filling every layer's gradients. Shapes: (n, out) -> (n, in)."""
        g = grad_output
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    def backward_delta(self, delta: FloatArray) -> FloatArray:
        """dJ/dX from dJ/dz of the output layer (the stable (a - T) / n of the losses)."""
        layers = self.layers
        g = layers[-1].backward_delta(delta)
        for i in range(len(layers) - 2, -1, -1):
            g = layers[i].backward(g)
        return g

    def parameter_gradients(self, delta: FloatArray) -> None:
        """Like `backward_delta`, but skips dJ/dX, which training does not need."""
        layers = self.layers
        if len(layers) == 1:
            layers[0].parameter_gradients(delta)
            return
        g = layers[-1].backward_delta(delta)
        for i in range(len(layers) - 2, 0, -1):
            g = layers[i].backward(g)
        first = layers[0]
        assert first.a is not None
        first.parameter_gradients(first.act.backward(first.a, g))

    def predict_proba(self, X: FloatArray) -> FloatArray:
        """Network output without caching (safe to share between threads). Shapes: (n, out)."""
        a = np.asarray(X, dtype=np.float64)
        for layer in self.layers:
            z = a @ layer.W
            if layer.b is not None:
                add_row(z, layer.b)
            a = layer.act.forward(z)
        return a

    def logits(self, X: FloatArray) -> FloatArray:
        """The output layer's pre-activation z, without caching. Shapes: (n, out)."""
        a = np.asarray(X, dtype=np.float64)
        for layer in self.layers[:-1]:
            a = layer.act.forward(layer.pre_activation(a))
        return self.layers[-1].pre_activation(a)

    def clear_cache(self) -> None:
        """Drop what the last forward cached (e.g. the training inputs, after training)."""
        for layer in self.layers:
            layer.x = layer.z = layer.a = None

    def copy(self) -> Network:
        """An independent copy (own parameters, empty caches)."""
        return Network([Dense(x.name, x.W, x.b, x.activation) for x in self.layers])

    def __repr__(self) -> str:
        sizes = " -> ".join(
            [str(self.n_inputs)] + [f"{x.n_out} {x.activation}" for x in self.layers]
        )
        return f"Network({sizes}; {self.theta.size} parameters)"


def lecture_network() -> Network:
    """The lecture's two-layer net: W (2, 3), V (3, 1), no bias, sigmoid in both layers."""
    return Network(
        [
            Dense("hidden", np.array(LECTURE_W), None, "sigmoid"),
            Dense("output", np.array(LECTURE_V), None, "sigmoid"),
        ]
    )
