"""``POST /v2/models/{name}[/versions/{version}]/infer`` served straight from ASGI.

As for ``/predict``, the framework's routing and response layers would cost more than
the forward pass, so ``service.fastpath.serve_fast`` answers these paths with
``infer_answer``; the FastAPI routes of the same paths document them and call it too.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from .. import metrics
from ..cache import LoadedModel
from ..errors import (
    BadRequest,
    InvalidInput,
    PayloadTooLarge,
    ServiceError,
    UnsupportedEncoding,
    v2_error_body,
)
from ..inference import probabilities
from .metadata import served_model
from .response import encode_response, encode_row_response
from .tensors import parse_request, plain_binary_row, plain_row

INFER_ROUTE = "/v2/models/{model_name}/infer"
VERSIONED_INFER_ROUTE = "/v2/models/{model_name}/versions/{model_version}/infer"
HEADER_LENGTH = b"inference-header-content-length"

Headers = list[tuple[bytes, bytes]]
_JSON = (b"content-type", b"application/json")
_BINARY = (b"content-type", b"application/octet-stream")
_WBITS = {b"gzip": 31, b"deflate": 15, b"x-gzip": 31}  # zlib's window bits per coding


def infer_target(path: str) -> tuple[str, str | None] | None:
    """Model name and version (None: the active one) of an infer path; None otherwise."""
    if not path.startswith("/v2/models/") or not path.endswith("/infer"):
        return None
    parts = path.split("/")  # "", "v2", "models", name, ["versions", version,] "infer"
    if len(parts) == 5 and parts[3]:
        return parts[3], None
    if len(parts) == 7 and parts[4] == "versions" and parts[3] and parts[5]:
        return parts[3], parts[5]
    return None


async def infer_answer(
    state: Any,
    name: str,
    version: str | None,
    body: bytes,
    header_length: bytes | None,
    encoding: bytes | None,
    accept: bytes | None = None,
) -> tuple[int, Headers, bytes]:
    """Status, headers and body of a V2 inference call; ``accept`` is the request's
    Accept-Encoding (see ``compressed``)."""
    status, headers, answer = await _answer(state, name, version, body, header_length, encoding)
    if accept is not None:
        answer = compressed(headers, answer, accept)
    return status, headers, answer


async def _answer(
    state: Any,
    name: str,
    version: str | None,
    body: bytes,
    header_length: bytes | None,
    encoding: bytes | None,
) -> tuple[int, Headers, bytes]:
    settings = state.settings
    active = state.cache.active
    if version is None and active is not None and name == settings.model_name:
        if encoding is None and active.row is not None:
            plain = _plain_row_answer(name, active, body, header_length, settings.max_batch_rows)
            if plain is not None:
                return plain
    try:
        if version is None and active is not None and name == settings.model_name:
            model = active  # the common case, without a coroutine hop
        else:
            model = await served_model(state.cache, settings.model_name, name, version)
        body = _decoded(body, encoding, settings.max_body_bytes)
        request = parse_request(body, _length(header_length), model, settings.max_batch_rows)
        row = model.row(request.row) if request.row is not None and model.row else None
        if row is not None:  # one row, on Python floats
            answer, json_length = encode_row_response(
                name, model.version, request.id, row, model.classes, request.outputs
            )
        else:
            try:
                proba = probabilities(model, request.X)
            except InvalidInput as exc:  # finite but overflowing rows: a bad request here
                raise BadRequest(exc.msg.replace("row", "input row", 1)) from None
            answer, json_length = encode_response(
                name, model.version, request.id, proba, model.classes, request.outputs
            )
    except ServiceError as exc:
        extra = exc.headers or {}
        headers = [_JSON, *((k.lower().encode(), v.encode()) for k, v in extra.items())]
        return exc.status_code, headers, orjson.dumps(v2_error_body(exc))
    metrics.count_predictions(model.version, request.rows)
    if json_length is None:
        return 200, [_JSON], answer
    return 200, [_BINARY, (HEADER_LENGTH, str(json_length).encode())], answer


def _plain_row_answer(
    name: str, model: LoadedModel, body: bytes, header_length: bytes | None, max_rows: int
) -> tuple[int, Headers, bytes] | None:
    """The answer to a plain one-row request, JSON or binary (see ``plain_row`` and
    ``plain_binary_row``), else None."""
    assert model.row is not None
    if header_length is None:
        plain = plain_row(body, model.features, max_rows)
    else:
        plain = plain_binary_row(body, header_length, model.features, max_rows)
    if plain is None:
        return None
    row, outputs = plain
    proba = model.row(row)
    if proba is None:  # overflows: the general path words the 400
        return None
    answer, json_length = encode_row_response(
        name, model.version, None, proba, model.classes, outputs
    )
    metrics.count_predictions(model.version, 1)
    if json_length is None:
        return 200, [_JSON], answer
    return 200, [_BINARY, (HEADER_LENGTH, str(json_length).encode())], answer


def _length(value: bytes | None) -> int | None:
    if value is None:
        return None
    digits = value.strip()
    if not digits.isdigit():  # ASCII digits only: int() would also take "+1" and "1_0"
        raise BadRequest(
            f"Inference-Header-Content-Length must be a byte count, got {value.decode('latin-1')!r}"
        )
    return int(digits)


# Answers of at least this many bytes are compressed when the client asks (as Triton
# does, for tritonclient's response_compression_algorithm); smaller ones would grow.
COMPRESS_FROM_BYTES = 512
_COMPRESSION_LEVEL = 1  # numbers in JSON shrink about as well at 1 as at 6, in a third the time


def compressed(headers: Headers, answer: bytes, accept: bytes | None) -> bytes:
    """``answer`` in the first coding ``accept`` (Accept-Encoding) allows of gzip and
    deflate, its header added to ``headers``; unchanged when none or small."""
    if accept is None or len(answer) < COMPRESS_FROM_BYTES:
        return answer
    coding = _accepted(accept)
    if coding is None:
        return answer
    packer = zlib.compressobj(_COMPRESSION_LEVEL, zlib.DEFLATED, _WBITS[coding])
    headers += [(b"content-encoding", coding), (b"vary", b"accept-encoding")]
    return packer.compress(answer) + packer.flush()


def _accepted(accept: bytes) -> bytes | None:
    """gzip or deflate when Accept-Encoding allows it (gzip first), else None."""
    allowed: set[bytes] = set()
    refused: set[bytes] = set()
    for item in accept.lower().split(b","):
        coding, _, params = item.partition(b";")
        q = params.strip()
        try:
            wanted = not q.startswith(b"q=") or float(q[2:]) > 0
        except ValueError:
            wanted = False
        (allowed if wanted else refused).add(coding.strip())
    for coding in (b"gzip", b"deflate"):
        if coding in allowed or (b"*" in allowed and coding not in refused):
            return coding
    return None


def _decoded(body: bytes, encoding: bytes | None, limit: int) -> bytes:
    """The body after its Content-Encoding (gzip or deflate), inflated to at most ``limit``."""
    coding = (encoding or b"identity").strip().lower()
    if coding == b"identity":
        return body
    wbits = _WBITS.get(coding)
    if wbits is None:
        raise UnsupportedEncoding(
            f"Content-Encoding {coding.decode('latin-1')!r} is not supported; use gzip or deflate"
        )
    inflater = zlib.decompressobj(wbits)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"the {coding.decode()} body cannot be decoded: {exc}") from None
    if len(plain) > limit:
        raise PayloadTooLarge(f"the decoded request body is larger than the limit of {limit} bytes")
    if not inflater.eof:
        raise BadRequest(f"the {coding.decode()} body is truncated")
    return plain
