"""A ``ModelInferRequest``'s tensors, checked by the REST V2 code, and the answer's.

The request is handed to ``service.v2.tensors.parse_request`` as the REST path's
binary form (a small JSON header, then each input's little-endian bytes), so every
check and every message is the REST one. Typed contents (``fp32_contents``,
``fp64_contents``) are packed to those bytes first. The answer mirrors the request:
raw inputs get ``raw_output_contents`` (as Triton answers), typed inputs get typed
``contents``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from ..cache import LoadedModel
from ..errors import BadRequest
from ..inference import best_classes
from ..v2.response import _length_prefixed
from ..v2.tensors import INPUT_DATATYPES, InferRequest, parse_request
from . import grpc_predict_v2_pb2 as pb

# The typed field that carries each datatype the model takes.
CONTENTS_FIELD = {"FP32": "fp32_contents", "FP64": "fp64_contents"}
_TYPED_FIELDS = (
    "bool_contents",
    "int_contents",
    "int64_contents",
    "uint_contents",
    "uint64_contents",
    "fp32_contents",
    "fp64_contents",
    "bytes_contents",
)
# Parameters the REST checks refuse by name (extensions this server does not offer).
_REFUSED_PARAMETERS = ("shared_memory_region", "classification")


def parse_infer(request: Any, model: LoadedModel, max_rows: int) -> tuple[InferRequest, bool]:
    """The checked request, and whether its inputs came as raw contents."""
    raw = request.raw_input_contents
    inputs = request.inputs
    if raw and len(raw) != len(inputs):
        raise BadRequest(
            f"raw_input_contents holds {len(raw)} tensors but the request has {len(inputs)} "
            "inputs; give one entry per input, or use typed contents"
        )
    tensors, blobs = [], []
    for i, tensor in enumerate(inputs):
        if len(inputs) != 1:  # refused by the REST checks first, as REST refuses it
            blob = b""
        else:
            blob = raw[i] if raw else _packed(tensor, model, max_rows)
        if raw and _typed_count(tensor):
            raise BadRequest(
                f"input {tensor.name!r} gives both contents and raw_input_contents; give one"
            )
        tensors.append(
            {
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": list(tensor.shape),
                "parameters": {**_parameters(tensor.parameters), "binary_data_size": len(blob)},
            }
        )
        blobs.append(blob)
    outputs = [{"name": o.name, "parameters": _parameters(o.parameters)} for o in request.outputs]
    payload: dict[str, Any] = {"inputs": tensors, "outputs": outputs}
    refused = _parameters(request.parameters)
    if refused:  # the request's own parameters: refused by name, as REST refuses them
        payload["parameters"] = refused
    header = orjson.dumps(payload)
    try:
        parsed = parse_request(b"".join((header, *blobs)), len(header), model, max_rows)
    except BadRequest as exc:
        raise BadRequest(_reworded(exc.detail, bool(raw))) from None
    return parsed, bool(raw)


def _parameters(parameters: Any) -> dict[str, Any]:
    """The parameters the REST checks look at, as plain values."""
    found: dict[str, Any] = {}
    for name in _REFUSED_PARAMETERS:
        if name in parameters:
            value = parameters[name]
            kind = value.WhichOneof("parameter_choice")
            found[name] = getattr(value, kind) if kind else True
    return found


def _typed_count(tensor: Any) -> int:
    if not tensor.HasField("contents"):
        return 0
    return sum(len(getattr(tensor.contents, name)) for name in _TYPED_FIELDS)


def _packed(tensor: Any, model: LoadedModel, max_rows: int) -> bytes:
    """Typed contents as the little-endian bytes of the tensor's datatype."""
    field = CONTENTS_FIELD.get(tensor.datatype)
    if field is None:
        return b""  # the datatype itself is refused by the REST checks
    values = getattr(tensor.contents, field)
    others = [name for name in _TYPED_FIELDS if name != field and getattr(tensor.contents, name)]
    if others:  # values of another datatype, instead of the right ones or beside them
        where = f"also in {others[0]}" if values else f"in {others[0]}"
        raise BadRequest(
            f"input {tensor.name!r} has datatype {tensor.datatype} but its values are {where}; "
            f"{tensor.datatype} values go in {field} only"
        )
    shape = list(tensor.shape)
    f = len(model.features)
    if len(shape) == 2 and shape[1] == f and 1 <= shape[0] <= max_rows:
        if len(values) != shape[0] * f:
            raise BadRequest(
                f"input {tensor.name!r} has shape [{shape[0]}, {f}] ({shape[0] * f} values) but "
                f"{field} holds {len(values)}"
            )
    return np.asarray(values, dtype=INPUT_DATATYPES[tensor.datatype]).tobytes()


def _reworded(message: str, raw: bool) -> str:
    """The REST message, with the binary extension's names replaced by the gRPC fields."""
    if "binary_data_size " not in message:
        return message
    head, _, tail = message.partition("binary_data_size ")
    size, _, rest = tail.partition(",")
    return f"{head}{size} bytes in {'raw_input_contents' if raw else 'its contents'},{rest}"


def infer_response(
    name: str,
    version: str,
    request_id: str,
    proba: np.ndarray,
    classes: tuple[str, ...],
    parsed: InferRequest,
    raw: bool,
) -> Any:
    """The ``ModelInferResponse``. Shapes: proba (n_samples, n_classes)."""
    response = pb.ModelInferResponse(model_name=name, model_version=version, id=request_id)
    n = proba.shape[0]
    for output in parsed.outputs:
        tensor = response.outputs.add(name=output.name)
        if output.name == "probabilities":
            tensor.datatype = "FP32"
            tensor.shape.extend(proba.shape)
            values = proba.astype("<f4")
            if raw:
                response.raw_output_contents.append(values.tobytes())
            else:
                tensor.contents.fp32_contents.extend(values.ravel().tolist())
        else:
            tensor.datatype = "BYTES"
            tensor.shape.append(n)
            best = best_classes(proba).tolist()  # as REST: ties go to the first class
            if raw:
                prefixed = _length_prefixed(classes)
                response.raw_output_contents.append(b"".join([prefixed[k] for k in best]))
            else:
                encoded = [c.encode() for c in classes]
                tensor.contents.bytes_contents.extend([encoded[k] for k in best])
    return response
