"""An inference request's tensors: the JSON header, the binary data after it, the checks.

A body is a JSON inference request, optionally followed by raw tensor bytes (the
binary tensor data extension; ``Inference-Header-Content-Length`` says where the
JSON ends). The model takes one input, ``features``: ``FP32`` or ``FP64``, shape
``[N, n_features]``, data flat or nested row-major, or ``binary_data_size`` little-endian
bytes. Everything is checked here once; each problem is a 400 naming the fix.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
import orjson

from ..cache import LoadedModel
from ..errors import BadRequest
from ..inference import non_finite_message

INPUT_NAME = "features"
OUTPUT_NAMES = ("probabilities", "label")
INPUT_DATATYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
_NUMBER = (float, int)  # `type(True) is bool`: booleans are refused
_NUMBER_TYPES = frozenset(_NUMBER)
_FP32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class RequestedOutput:
    """One output to answer, as JSON data or as binary bytes after the JSON."""

    name: str
    binary: bool


class InferRequest(NamedTuple):
    """A checked inference request. Shapes: X (n_samples, n_features), float64.

    ``row`` is X's one row as floats when it has one (for the Python-float forward pass).
    """

    X: np.ndarray
    id: str | None
    outputs: tuple[RequestedOutput, ...]
    row: list[float] | None = None


def parse_request(
    body: bytes, header_length: int | None, model: LoadedModel, max_rows: int
) -> InferRequest:
    """The request in ``body``; ``header_length`` is the JSON part's size when binary follows."""
    if header_length is not None and not 0 <= header_length <= len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length is {header_length} but the body has {len(body)} bytes"
        )
    split = len(body) if header_length is None else header_length
    payload = _load(body[:split])
    request_id = payload.get("id")
    if request_id is not None and type(request_id) is not str:
        raise BadRequest(f'"id" must be a string, got {request_id!r}')
    parameters = _parameters(payload, "the request")
    binary_output = parameters.get("binary_data_output", False)
    if type(binary_output) is not bool:
        raise BadRequest(
            f'parameter "binary_data_output" must be true or false, got {binary_output!r}'
        )
    inputs = payload.get("inputs")
    if type(inputs) is not list or len(inputs) != 1 or type(inputs[0]) is not dict:
        raise BadRequest(
            f'"inputs" must be a list of exactly one tensor, {INPUT_NAME!r} of shape '
            f"[N, {len(model.features)}] (the features {list(model.features)} in this order)"
        )
    header = body[:split]
    may_hold_bools = b"true" in header or b"false" in header
    X = _input(inputs[0], body[split:], model, max_rows, may_hold_bools)
    outputs = _outputs(payload.get("outputs"), binary_output)
    return InferRequest(X, request_id, outputs, X[0].tolist() if len(X) == 1 else None)


def _load(header: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        message = non_finite_message(header, exc)
        if message is not None:
            raise BadRequest(f"the inference request holds a non-finite value: {message}") from None
        raise BadRequest(f"the inference request is not valid JSON: {exc}") from None
    if type(payload) is not dict:
        raise BadRequest('the inference request must be a JSON object with "inputs"')
    return payload


def _parameters(obj: dict[str, Any], what: str) -> dict[str, Any]:
    parameters = obj.get("parameters")
    if parameters is None:
        return {}
    if type(parameters) is not dict:
        raise BadRequest(f'"parameters" of {what} must be an object, got {parameters!r}')
    for name in ("shared_memory_region", "classification"):
        if name in parameters:
            raise BadRequest(f'{what} asks for "{name}", an extension this server does not offer')
    for name, value in parameters.items():  # the protocol's $parameter: string, number, bool
        if type(value) not in (str, int, float, bool):
            raise BadRequest(
                f"parameter {name!r} of {what} must be a string, number or boolean, got {value!r}"
            )
    return parameters


def _input(
    tensor: dict[str, Any],
    binary: bytes,
    model: LoadedModel,
    max_rows: int,
    may_hold_bools: bool = True,
) -> np.ndarray:
    """The input tensor as X. Shapes: returns (n_samples, n_features)."""
    name = tensor.get("name")
    if name != INPUT_NAME:
        raise BadRequest(f"unknown input {name!r}: the model takes one input, {INPUT_NAME!r}")
    datatype = tensor.get("datatype")
    if type(datatype) is not str or datatype not in INPUT_DATATYPES:
        raise BadRequest(f"input {INPUT_NAME!r} has datatype {datatype!r}; expected FP32 or FP64")
    dtype = INPUT_DATATYPES[datatype]
    n, f = _shape(tensor.get("shape"), model, max_rows)
    size = _parameters(tensor, f"input {INPUT_NAME!r}").get("binary_data_size")
    if size is None:
        if binary:
            raise BadRequest(
                f"{len(binary)} bytes follow the JSON header but no input has binary_data_size"
            )
        # Finite by construction: orjson refuses NaN and Infinity, _from_json the
        # numbers too large for FP32.
        X = _from_json(tensor.get("data"), n, f, dtype, may_hold_bools)
        return X if X.ndim == 2 else X.reshape(n, f)
    X = _from_binary(tensor, size, binary, n, f, dtype).astype(np.float64).reshape(n, f)
    if not np.isfinite(X).all():
        _refuse_non_finite(~np.isfinite(X), datatype)
    return X


def _refuse_non_finite(bad: np.ndarray, datatype: str) -> None:
    """A 400 naming the first row that holds a ``bad`` value. Shapes: bad (n, f)."""
    row = int(np.argwhere(bad)[0][0])
    raise BadRequest(
        f"input {INPUT_NAME!r} holds a value that is not a finite {datatype} number "
        f"(NaN, infinity or out of range) in row {row}; every value must be finite"
    )


def _shape(shape: Any, model: LoadedModel, max_rows: int) -> tuple[int, int]:
    f = len(model.features)
    if (
        type(shape) is not list
        or len(shape) != 2
        or type(shape[0]) is not int
        or type(shape[1]) is not int
        or shape[1] != f
    ):
        raise BadRequest(
            f"input {INPUT_NAME!r} has shape {shape!r}; expected [N, {f}]: N rows of the "
            f"features {list(model.features)} in this order"
        )
    if not 1 <= shape[0] <= max_rows:
        raise BadRequest(
            f"input {INPUT_NAME!r} has {shape[0]} rows; one request takes 1 to {max_rows}"
        )
    return shape[0], f


def _numbers_only(data: list[Any], may_hold_bools: bool) -> bool:
    """Whether every value is an int or a float. ``sum`` stops at any other JSON value
    but true/false; those can only be there if the body spells them somewhere."""
    if may_hold_bools:
        return set(map(type, data)) <= _NUMBER_TYPES
    try:
        sum(data)
    except TypeError:
        return False
    return True


def _from_json(
    data: Any, n: int, f: int, dtype: np.dtype[Any], may_hold_bools: bool = True
) -> np.ndarray:
    """Flat or nested row-major JSON values as a flat float64 array, in ``dtype``'s precision."""
    if type(data) is not list:
        raise BadRequest(f'input {INPUT_NAME!r} needs "data" (a list) or binary_data_size')
    if data and type(data[0]) is list:
        if len(data) != n or set(map(type, data)) != {list} or set(map(len, data)) != {f}:
            raise BadRequest(
                f"input {INPUT_NAME!r} has shape [{n}, {f}] but its nested data is not "
                f"{n} rows of {f} values"
            )
        data = list(chain.from_iterable(data))
    if len(data) != n * f:
        raise BadRequest(
            f"input {INPUT_NAME!r} has shape [{n}, {f}] ({n * f} values) but data holds {len(data)}"
        )
    if not _numbers_only(data, may_hold_bools):  # one C-speed pass; the loop words it
        for i, value in enumerate(data):
            if type(value) not in _NUMBER:
                raise BadRequest(
                    f"input {INPUT_NAME!r} holds {value!r} at element {i}; "
                    "every value must be a number"
                )
    if n == 1 and dtype.itemsize == 4:  # one row: the same FP32 rounding, without NumPy
        return np.array([_fp32_row(data, f)])
    X = np.fromiter(data, np.float64, len(data))  # JSON numbers are doubles: no overflow
    if dtype.itemsize == 4:  # FP32: rounded as the client's binary tensor would be
        big = np.abs(X) > _FP32_MAX
        if big.any():
            _refuse_non_finite(big.reshape(n, f), "FP32")
        X = X.astype(np.float32).astype(np.float64)
    return X


def _fp32_row(data: list[float], f: int) -> tuple[float, ...]:
    """One row of JSON numbers rounded to FP32 (as a client's binary tensor would be),
    or the 400 for a number beyond FP32's range, as the array path words it."""
    if max(map(abs, data)) > _FP32_MAX:
        _refuse_non_finite(np.array([[abs(v) > _FP32_MAX for v in data]]), "FP32")
    fp32 = _fp32_struct(f)
    return fp32.unpack(fp32.pack(*data))


@functools.lru_cache(maxsize=16)
def _fp32_struct(f: int) -> struct.Struct:
    return struct.Struct(f"<{f}f")


def _from_binary(
    tensor: dict[str, Any], size: Any, binary: bytes, n: int, f: int, dtype: np.dtype[Any]
) -> np.ndarray:
    """``size`` little-endian bytes after the JSON header as a flat array of ``dtype``."""
    if "data" in tensor:
        raise BadRequest(f'input {INPUT_NAME!r} gives both "data" and binary_data_size; give one')
    expected = n * f * dtype.itemsize
    if type(size) is not int or size != expected:
        raise BadRequest(
            f"input {INPUT_NAME!r} has binary_data_size {size!r}, but shape [{n}, {f}] of "
            f"{dtype.itemsize}-byte values takes {expected} bytes"
        )
    if len(binary) != size:
        raise BadRequest(
            f"input {INPUT_NAME!r} has binary_data_size {size} but {len(binary)} bytes follow "
            "the JSON header (set Inference-Header-Content-Length to the JSON's length)"
        )
    return np.frombuffer(binary, dtype=dtype)


def _outputs(requested: Any, binary_default: bool) -> tuple[RequestedOutput, ...]:
    """The outputs to answer, in the order asked; all of them when none is named."""
    if requested is None or requested == []:
        return _ALL_OUTPUTS[binary_default]
    if type(requested) is not list or any(type(o) is not dict for o in requested):
        raise BadRequest(f'"outputs" must be a list of objects with a "name", got {requested!r}')
    outputs: list[RequestedOutput] = []
    for output in requested:
        name = output.get("name")
        if name not in OUTPUT_NAMES:
            raise BadRequest(f"unknown output {name!r}: the model answers {list(OUTPUT_NAMES)}")
        if any(o.name == name for o in outputs):
            raise BadRequest(f"output {name!r} is asked for twice")
        binary = _parameters(output, f"output {name!r}").get("binary_data", binary_default)
        if type(binary) is not bool:
            raise BadRequest(f'parameter "binary_data" of output {name!r} must be true or false')
        outputs.append(RequestedOutput(name, binary))
    return tuple(outputs)


_ALL_OUTPUTS = {
    binary: tuple(RequestedOutput(name, binary) for name in OUTPUT_NAMES)
    for binary in (False, True)
}
