"""A backprop trace as Graphviz DOT: the lecture's slide drawing as a graph.

Each node shows its value (black) and dJ/d(node) (red); each edge its weight and
dJ/d(weight), as on the slides of "Backpropagation by Hand".
"""

from __future__ import annotations

from typing import Any


def _num(value: float) -> str:
    return f"{value:.4g}"


def trace_to_dot(trace: dict[str, Any]) -> str:
    """DOT text for a trace answer of ``GET /backprop``."""
    lines = [
        "digraph backprop {",
        "  rankdir=LR;",
        '  node [shape=circle, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8];',
        f'  label="{trace.get("model_version", "")}: loss {_num(trace["loss"])} '
        f'({trace["loss_name"]})"; labelloc=t;',
    ]
    inputs = trace["input"]["network_input"]
    grad_inputs = trace["grad_input"]
    previous = []
    for i, (value, grad) in enumerate(zip(inputs, grad_inputs, strict=True)):
        node = f"x{i + 1}"
        lines.append(f'  {node} [label="x{i + 1}\\n{_num(value)}\\n∂J {_num(grad)}"];')
        previous.append(node)
    for layer in trace["layers"]:
        name = layer["name"]
        current = []
        for j, (value, grad) in enumerate(zip(layer["output"], layer["grad_output"], strict=True)):
            node = f"{name}_{j + 1}"
            lines.append(
                f'  {node} [label="{name} {j + 1}\\n{_num(value)}\\n∂J {_num(grad)}", '
                f'xlabel="z={_num(layer["pre_activation"][j])}"];'
            )
            current.append(node)
        for i, source in enumerate(previous):
            for j, target in enumerate(current):
                weight = layer["weights"][i][j]
                grad = layer["grad_weights"][i][j]
                lines.append(
                    f'  {source} -> {target} [label="w {_num(weight)}\\n∂J {_num(grad)}"];'
                )
        previous = current
    lines.append(
        f'  loss [shape=box, label="J = {_num(trace["loss"])}\\n'
        f'dJ/dy {", ".join(_num(g) for g in trace["grad_loss_output"])}"];'
    )
    lines.extend(f"  {node} -> loss;" for node in previous)
    lines.append("}")
    return "\n".join(lines) + "\n"
