"""An inference request's tensors: the JSON header, the binary data after it, the checks.

A body is a JSON inference request, optionally followed by raw tensor bytes (the
binary tensor data extension; ``Inference-Header-Content-Length`` says where the
JSON ends). The model takes one input, ``features``: ``FP32`` or ``FP64``, shape
``[N, n_features]``, data flat or nested row-major, or ``binary_data_size`` little-endian
bytes. Everything is checked here once; each problem is a 400 naming the fix.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Sequence
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
import orjson

from ..cache import LoadedModel
from ..errors import BadRequest
from ..inference import non_finite_message
from .numbers import NUMBER_CHARACTERS, read_numbers

INPUT_NAME = "features"
OUTPUT_NAMES = ("probabilities", "label")
INPUT_DATATYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
_NUMBER = (float, int)  # `type(True) is bool`: booleans are refused
_NUMBER_TYPES = frozenset(_NUMBER)
# The least magnitude that rounds to infinity in FP32 (half an ulp above its maximum):
# 3.4028235e38, the maximum as written shortest, is below it and rounds to the maximum.
_FP32_LIMIT = (2 - 2**-24) * 2.0**127


class RequestedOutput(NamedTuple):
    """One output to answer, as JSON data or as binary bytes after the JSON (hashed in C:
    it keys the caches of answer headers)."""

    name: str
    binary: bool


class InferRequest:
    """A checked inference request. Shapes: X (n_samples, n_features), float64.

    ``row`` is the one row as floats when there is one; then X is built only if asked
    for (the Python-float forward pass needs no array).
    """

    __slots__ = ("_X", "id", "outputs", "row")

    def __init__(
        self,
        X: np.ndarray | None,
        id: str | None,  # noqa: A002 - the protocol's name
        outputs: tuple[RequestedOutput, ...],
        row: Sequence[float] | None = None,
    ) -> None:
        assert X is not None or row is not None
        self._X, self.id, self.outputs, self.row = X, id, outputs, row

    @property
    def X(self) -> np.ndarray:  # noqa: N802 - the matrix's conventional name
        if self._X is None:
            self._X = np.array([self.row], dtype=np.float64)
        return self._X

    @property
    def rows(self) -> int:
        return 1 if self._X is None else len(self._X)


class _Header(NamedTuple):
    """A checked JSON header: everything about a request but a binary input's values.

    ``X`` (or ``row``, for one FP32 row) holds the JSON data's values; both are None when
    they follow as ``dtype`` bytes.
    """

    id: str | None
    outputs: tuple[RequestedOutput, ...]
    X: np.ndarray | None
    row: Sequence[float] | None
    n: int
    f: int
    dtype: np.dtype[Any]
    datatype: str


# Headers followed by binary data are checked once per distinct header: a client sends
# the same one call after call, and everything but the values is decided by its bytes.
_CACHED_HEADER_BYTES = 4096


def parse_request(
    body: bytes, header_length: int | None, model: LoadedModel, max_rows: int
) -> InferRequest:
    """The request in ``body``; ``header_length`` is the JSON part's size when binary follows."""
    if header_length is not None and not 0 <= header_length <= len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length is {header_length} but the body has {len(body)} bytes"
        )
    split = len(body) if header_length is None else header_length
    header, binary = body[:split], body[split:]
    if not binary:
        checked = _json_header(header, model.features, max_rows)
    elif split > _CACHED_HEADER_BYTES or _may_name_an_id(header):  # an id: one per call
        checked = _check_header(header, len(binary), model.features, max_rows)
    else:
        checked = _cached_header(header, len(binary), model.features, max_rows)
    X, row = checked.X, checked.row
    if X is None and row is None:
        X, row = _from_binary(binary, checked)
    elif X is not None and checked.n == 1:
        row = X[0].tolist()
    return InferRequest(X, checked.id, checked.outputs, row)


def _check_header(
    header: bytes, binary_length: int, features: tuple[str, ...], max_rows: int
) -> _Header:
    """Every check of the JSON header, with ``binary_length`` bytes after it."""
    payload = _load(header)
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
            f"[N, {len(features)}] (the features {list(features)} in this order)"
        )
    may_hold_bools = b"true" in header or b"false" in header
    tensor = _input(inputs[0], binary_length, features, max_rows, may_hold_bools)
    outputs = _outputs(payload.get("outputs"), binary_output)
    return _Header(request_id, outputs, *tensor[2:])


_cached_header = functools.lru_cache(maxsize=256)(_check_header)

# A JSON-tensor header is checked once per template: the header with its input's flat
# "data" array emptied. The values alone are read per call, when they hold nothing but
# number characters (so they cannot change the structure around them).
_DATA_KEY = b'"data":['
_TEMPLATES: dict[tuple[bytes, tuple[str, ...], int], _Header] = {}
_MAX_TEMPLATES = 256


_PLAIN_ROW_BYTES = 1024


class _RowPlan(NamedTuple):
    """The last plain one-row request's layout: any body that is ``prefix``, number
    characters, ``suffix`` has the same template, hence the same checked plan."""

    prefix: bytes  # up to and with '"data":['
    suffix: bytes  # from the data's "]" on
    features: tuple[str, ...]
    max_rows: int
    f: int
    fp32: struct.Struct | None  # None: FP64
    outputs: tuple[RequestedOutput, ...]


_last_row_plan: list[_RowPlan | None] = [None]  # a client sends one layout call after call


def plain_row(
    body: bytes, features: tuple[str, ...], max_rows: int
) -> tuple[tuple[float, ...], tuple[RequestedOutput, ...]] | None:
    """The row and outputs of a one-row JSON request whose template was checked before,
    read in one pass; None for anything else, which ``parse_request`` then takes.

    The most common V2 call: /predict's one-row path costs about this much, and the
    general path's layers would double it.
    """
    if len(body) > _PLAIN_ROW_BYTES:  # not one row of plainly written numbers
        return None
    plan = _last_row_plan[0]
    if (
        plan is not None
        and body.startswith(plan.prefix)
        and body.endswith(plan.suffix)
        and len(body) >= len(plan.prefix) + len(plan.suffix)
        and plan.features == features
        and plan.max_rows == max_rows
    ):
        values = body[len(plan.prefix) : len(body) - len(plan.suffix)]
        if not _number_characters(values):
            return None
    else:
        plan, values = _row_plan(body, features, max_rows)
        if plan is None:
            return None
    try:
        data = orjson.loads(b"[" + values + b"]")  # number characters only: numbers only
    except orjson.JSONDecodeError:
        return None
    if len(data) != plan.f:
        return None
    if plan.fp32 is None:
        return tuple(map(float, data)), plan.outputs
    if max(map(abs, data)) >= _FP32_LIMIT:
        return None
    return plan.fp32.unpack(plan.fp32.pack(*data)), plan.outputs


def _row_plan(
    body: bytes, features: tuple[str, ...], max_rows: int
) -> tuple[_RowPlan | None, bytes]:
    """The row plan of a body whose template holds a checked one-row plan (kept as the
    last one), and its values; None when there is none."""
    split = _split(body)
    if split is None:
        return None, b""
    template, start, end = split
    values = body[start:end]
    if not _number_characters(values):
        return None, b""
    checked = _TEMPLATES.get((template, features, max_rows))
    if checked is None or checked.n != 1:
        return None, b""
    fp32 = _row_struct("f", checked.f) if checked.dtype.itemsize == 4 else None
    plan = _RowPlan(
        body[:start],
        body[end:],
        features,
        max_rows,
        checked.f,
        fp32,
        checked.outputs,
    )
    _last_row_plan[0] = plan
    return plan, values


class _BinaryRowPlan(NamedTuple):
    """The last one-row binary request's checked JSON header: any body that is this
    header followed by one row of ``values`` bytes has the same plan."""

    header: bytes
    length: bytes  # Inference-Header-Content-Length as sent
    features: tuple[str, ...]
    max_rows: int
    values: struct.Struct  # the row, little-endian FP32 or FP64
    outputs: tuple[RequestedOutput, ...]


_last_binary_plan: list[_BinaryRowPlan | None] = [None]


def plain_binary_row(
    body: bytes, header_length: bytes, features: tuple[str, ...], max_rows: int
) -> tuple[tuple[float, ...], tuple[RequestedOutput, ...]] | None:
    """``plain_row`` of a one-row request whose values follow its JSON header as bytes
    (tritonclient's default): the row and outputs when the header is the last one
    checked, or one that checks out; None for anything else (an id, a bad header, a
    value that is not finite), which ``parse_request`` then takes and words."""
    plan = _last_binary_plan[0]
    if (
        plan is None
        or header_length != plan.length
        or len(body) != len(plan.header) + plan.values.size
        or not body.startswith(plan.header)
        or plan.features != features
        or plan.max_rows != max_rows
    ):
        plan = _binary_row_plan(body, header_length, features, max_rows)
        if plan is None:
            return None
    row = plan.values.unpack_from(body, len(plan.header))
    if not all(map(math.isfinite, row)):
        return None
    return row, plan.outputs


def _binary_row_plan(
    body: bytes, header_length: bytes, features: tuple[str, ...], max_rows: int
) -> _BinaryRowPlan | None:
    """The plan of a one-row binary request's header (kept as the last one), or None."""
    if not header_length.isdigit():  # the general path words the 400
        return None
    split = int(header_length)
    if not split <= min(len(body), _CACHED_HEADER_BYTES):
        return None
    header = body[:split]
    if _may_name_an_id(header):  # an id: one per call
        return None
    try:
        checked = _cached_header(header, len(body) - split, features, max_rows)
    except BadRequest:
        return None
    if checked.n != 1 or checked.X is not None or checked.row is not None:
        return None
    values = _row_struct(checked.dtype.char, checked.f)
    plan = _BinaryRowPlan(header, header_length, features, max_rows, values, checked.outputs)
    _last_binary_plan[0] = plan
    return plan


def _split(header: bytes) -> tuple[bytes, int, int] | None:
    """The template (the header with its one "data" array emptied up to its first "]")
    and where the values start and end, when the template is small enough to keep.

    The values may hold anything but "]": a template stands for its requests only when
    they are number characters (``_number_characters``), as ``read_numbers`` checks; so
    a second "data" array is looked for after them only (values that spell one are
    refused anyway), and they are not copied out of the header.
    """
    start = header.find(_DATA_KEY) + len(_DATA_KEY)
    end = header.find(b"]", start)
    if start < len(_DATA_KEY) or end < 0 or header.find(_DATA_KEY, end) >= 0:
        return None
    if len(header) - (end - start) > _CACHED_HEADER_BYTES:
        return None
    return header[:start] + header[end:], start, end


def _json_header(header: bytes, features: tuple[str, ...], max_rows: int) -> _Header:
    """``_check_header`` of a header with JSON data, through its template when it has one."""
    split = _split(header)
    if split is None or _may_name_an_id(split[0]):  # an id: one per call, no template kept
        return _check_header(header, 0, features, max_rows)
    template, start, end = split
    key = (template, features, max_rows)
    plan = _TEMPLATES.get(key)
    if plan is not None:
        data = read_numbers(header, start, end)  # None unless numbers only: a nested list,
        if data is not None:  # a string... (then the whole header's parse words the error)
            return _with_values(plan, data, may_hold_bools=False)
    checked = _check_header(header, 0, features, max_rows)
    if _number_characters(header[start:end]) and _is_the_input_data(template):
        if len(_TEMPLATES) >= _MAX_TEMPLATES:
            try:
                _TEMPLATES.pop(next(iter(_TEMPLATES)), None)  # the oldest
            except RuntimeError:  # another thread changed it meanwhile: evict next time
                pass
        _TEMPLATES[key] = checked._replace(X=None, row=None)
    return checked


def forget_checked_headers() -> None:
    """Empty every cache of checked headers (tests start from nothing with it)."""
    _TEMPLATES.clear()
    _last_row_plan[0] = None
    _last_binary_plan[0] = None
    _cached_header.cache_clear()


def _may_name_an_id(header: bytes) -> bool:
    """Whether a JSON header may hold the key "id": written plainly, or spelled with a
    \\u escape ("\\u0069d"). Any such escape takes the paths that parse every key."""
    return b'"id"' in header or b"\\u" in header


def _number_characters(values: bytes) -> bool:
    """Whether ``values`` holds only what numbers and their separators are written with
    (not a nested list, a string, true, null...)."""
    return not values.translate(None, NUMBER_CHARACTERS)


def _is_the_input_data(template: bytes) -> bool:
    """Whether the emptied array of ``template`` is the data of its one input (and not,
    say, a field the checks ignore while the input's data sits elsewhere)."""
    try:
        inputs = orjson.loads(template).get("inputs")
        return type(inputs) is list and inputs[0].get("data") == []
    except (orjson.JSONDecodeError, AttributeError, IndexError):
        return False


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
    binary_length: int,
    features: tuple[str, ...],
    max_rows: int,
    may_hold_bools: bool = True,
) -> _Header:
    """The input tensor's checks, and its JSON values (as X) when it has them."""
    name = tensor.get("name")
    if name != INPUT_NAME:
        raise BadRequest(f"unknown input {name!r}: the model takes one input, {INPUT_NAME!r}")
    datatype = tensor.get("datatype")
    if type(datatype) is not str or datatype not in INPUT_DATATYPES:
        raise BadRequest(f"input {INPUT_NAME!r} has datatype {datatype!r}; expected FP32 or FP64")
    dtype = INPUT_DATATYPES[datatype]
    n, f = _shape(tensor.get("shape"), features, max_rows)
    size = _parameters(tensor, f"input {INPUT_NAME!r}").get("binary_data_size")
    if size is None:
        if binary_length:
            raise BadRequest(
                f"{binary_length} bytes follow the JSON header but no input has binary_data_size"
            )
        plan = _Header(None, (), None, None, n, f, dtype, datatype)
        return _with_values(plan, tensor.get("data"), may_hold_bools)
    _check_binary(tensor, size, binary_length, n, f, dtype)
    return _Header(None, (), None, None, n, f, dtype, datatype)


def _with_values(plan: _Header, data: Any, may_hold_bools: bool = True) -> _Header:
    """``plan`` with the input's JSON ``data`` checked and in place (as X, or one FP32 row)."""
    # Finite by construction: orjson refuses NaN and Infinity, _from_json the
    # numbers too large for FP32.
    values = _from_json(data, plan.n, plan.f, plan.dtype, may_hold_bools)
    request_id, outputs, _, _, n, f, dtype, datatype = plan  # built anew: _replace is slow
    if isinstance(values, tuple):
        return _Header(request_id, outputs, None, values, n, f, dtype, datatype)
    X = values if values.ndim == 2 else values.reshape(n, f)
    return _Header(request_id, outputs, X, None, n, f, dtype, datatype)


def _refuse_non_finite(bad: np.ndarray, datatype: str) -> None:
    """A 400 naming the first row that holds a ``bad`` value. Shapes: bad (n, f)."""
    row = int(np.argwhere(bad)[0][0])
    raise BadRequest(
        f"input {INPUT_NAME!r} holds a value that is not a finite {datatype} number "
        f"(NaN, infinity or out of range) in row {row}; every value must be finite"
    )


def _shape(shape: Any, features: tuple[str, ...], max_rows: int) -> tuple[int, int]:
    f = len(features)
    if (
        type(shape) is not list
        or len(shape) != 2
        or type(shape[0]) is not int
        or type(shape[1]) is not int
        or shape[1] != f
    ):
        raise BadRequest(
            f"input {INPUT_NAME!r} has shape {shape!r}; expected [N, {f}]: N rows of the "
            f"features {list(features)} in this order"
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
) -> np.ndarray | tuple[float, ...]:
    """Flat or nested row-major JSON values as a flat float64 array, in ``dtype``'s precision
    (one FP32 row: as a tuple of floats)."""
    if type(data) is np.ndarray:  # read by read_numbers: flat, float64, numbers only
        return _from_numbers(data, n, f, dtype)
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
        return _fp32_row(data, f)
    X = np.fromiter(data, np.float64, len(data))  # JSON numbers are doubles: no overflow
    return _from_numbers(X, n, f, dtype)


def _from_numbers(
    X: np.ndarray, n: int, f: int, dtype: np.dtype[Any]
) -> np.ndarray | tuple[float, ...]:
    """``_from_json`` of values already in a flat float64 array."""
    if len(X) != n * f:
        raise BadRequest(
            f"input {INPUT_NAME!r} has shape [{n}, {f}] ({n * f} values) but data holds {len(X)}"
        )
    if n == 1 and dtype.itemsize == 4:
        return _fp32_row(X.tolist(), f)
    if dtype.itemsize == 4:  # FP32: rounded as the client's binary tensor would be
        # JSON numbers are never NaN: two reductions bound them, without a mask's arrays
        if np.maximum.reduce(X) >= _FP32_LIMIT or np.minimum.reduce(X) <= -_FP32_LIMIT:
            _refuse_non_finite((np.abs(X) >= _FP32_LIMIT).reshape(n, f), "FP32")
        X = X.astype(np.float32).astype(np.float64)
    return X


def _fp32_row(data: list[float], f: int) -> tuple[float, ...]:
    """One row of JSON numbers rounded to FP32 (as a client's binary tensor would be),
    or the 400 for a number beyond FP32's range, as the array path words it."""
    if max(map(abs, data)) >= _FP32_LIMIT:
        _refuse_non_finite(np.array([[abs(v) >= _FP32_LIMIT for v in data]]), "FP32")
    fp32 = _row_struct("f", f)
    return fp32.unpack(fp32.pack(*data))


def _check_binary(
    tensor: dict[str, Any], size: Any, binary_length: int, n: int, f: int, dtype: np.dtype[Any]
) -> None:
    """That ``size`` little-endian bytes of ``dtype`` follow the JSON header, as the shape says."""
    if "data" in tensor:
        raise BadRequest(f'input {INPUT_NAME!r} gives both "data" and binary_data_size; give one')
    expected = n * f * dtype.itemsize
    if type(size) is not int or size != expected:
        raise BadRequest(
            f"input {INPUT_NAME!r} has binary_data_size {size!r}, but shape [{n}, {f}] of "
            f"{dtype.itemsize}-byte values takes {expected} bytes"
        )
    if binary_length != size:
        raise BadRequest(
            f"input {INPUT_NAME!r} has binary_data_size {size} but {binary_length} bytes follow "
            "the JSON header (set Inference-Header-Content-Length to the JSON's length)"
        )


def _from_binary(
    binary: bytes, header: _Header
) -> tuple[np.ndarray | None, Sequence[float] | None]:
    """The checked binary input as X, and its one row as floats when it has one."""
    if header.n == 1:  # one row: unpacked without NumPy, unless a value is not finite
        row = _row_struct(header.dtype.char, header.f).unpack(binary)
        if all(map(math.isfinite, row)):
            return None, row
    X = np.frombuffer(binary, dtype=header.dtype).astype(np.float64).reshape(header.n, header.f)
    if not np.isfinite(X).all():
        _refuse_non_finite(~np.isfinite(X), header.datatype)
    return X, None


@functools.lru_cache(maxsize=16)
def _row_struct(char: str, f: int) -> struct.Struct:
    return struct.Struct(f"<{f}{char}")


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
