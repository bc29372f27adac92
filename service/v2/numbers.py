"""The values of a flat JSON number array, read without a Python float each when many.

A 1,000-row JSON tensor holds thousands of numbers. orjson makes a Python float of
each and NumPy then copies them into an array: about 45 ns a value, most of such a
request. simdjson reads them straight into doubles (about 12 ns a value). Both round
each decimal to the nearest double, so the values are the same; where simdjson
refuses something (a malformed number, an integer beyond 64 bits), the caller falls
back to the full check, whose orjson parse words the error or accepts it.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import orjson

# Below this many bytes of values, orjson's list is as quick and needs no import.
NATIVE_BYTES = 256
# A simdjson parser keeps the buffers of the largest document it has read (about 9
# times its size), and the allocator keeps them even when a parser is freed: simdjson
# reads up to this many bytes (0.6 MiB kept; a 1,000-row tensor is about 12 KiB), and
# larger bodies take orjson's list, as before.
MAX_NATIVE_BYTES = 1 << 16

# What numbers and their separators are written with.
NUMBER_CHARACTERS = b"0123456789+-.eE \t\r\n,"

_local = threading.local()  # a simdjson parser is reused, but not across threads


def read_numbers(document: bytes, start: int, end: int) -> np.ndarray | list[Any] | None:
    """The numbers in ``document[start:end]``, the inside of a flat JSON array whose
    brackets are ``document[start - 1]`` and ``document[end]``: a float64 array (256
    bytes to 64 KiB of them) or a list; None if they are not numbers only (a nested
    list, a string, true, a malformed number...).

    The array is parsed where it lies in the body: a 1,000-row tensor's values are not
    copied out first. simdjson's typed read refuses any element that is not a number
    but flattens nested arrays, so it is given no "["; orjson's list needs the whole
    check first.
    """
    array = memoryview(document)[start - 1 : end + 1]
    if not NATIVE_BYTES <= end - start <= MAX_NATIVE_BYTES:
        if document[start:end].translate(None, NUMBER_CHARACTERS):
            return None
        try:
            data: list[Any] = orjson.loads(array)
        except orjson.JSONDecodeError:
            return None
        return data
    if document.find(b"[", start, end) >= 0:
        return None
    try:
        doc = _parser().parse(array)
        return np.frombuffer(doc.as_buffer(of_type="d"), dtype=np.float64)
    except (ValueError, RuntimeError, TypeError):  # simdjson's errors; the full check words them
        return None


def _parser() -> Any:
    parser = getattr(_local, "parser", None)
    if parser is None:
        import simdjson  # imported by the first large JSON tensor, not at start

        parser = _local.parser = simdjson.Parser()
    return parser
