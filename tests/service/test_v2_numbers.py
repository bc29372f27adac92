"""``read_numbers``: simdjson's doubles are orjson's, and what it refuses falls back."""

from __future__ import annotations

import threading

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from service.v2.numbers import MAX_NATIVE_BYTES, NATIVE_BYTES, read_numbers

# JSON numbers as clients write them, and the near misses a number-only span can hold.
_digits = st.text("0123456789", min_size=1, max_size=20)
_number = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda v: f"{v:.9g}"),
    st.integers(-(2**70), 2**70).map(str),
    st.builds(
        lambda sign, whole, frac, exp: f"{sign}{whole}{frac}{exp}",
        st.sampled_from(["", "-", "+"]),
        _digits,
        st.one_of(st.just(""), _digits.map(lambda d: "." + d), st.just(".")),
        st.one_of(
            st.just(""),
            st.builds(
                lambda e, s, d: f"{e}{s}{d}",
                st.sampled_from("eE"),
                st.sampled_from(["", "+", "-"]),
                st.one_of(_digits, st.just("")),
            ),
        ),
    ),
)
_separator = st.sampled_from([",", ", ", " ,", ",\n", ",,", " "])


def _read(values: bytes) -> np.ndarray | list[object] | None:
    """``read_numbers`` of ``values`` as the inside of a JSON array."""
    return read_numbers(b"[" + values + b"]", 1, len(values) + 1)


def _reference(values: bytes) -> np.ndarray | None:
    """What the full check reads: orjson's values, as float64."""
    try:
        data = orjson.loads(b"[" + values + b"]")
    except orjson.JSONDecodeError:
        return None
    return np.fromiter(data, np.float64, len(data))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_number, _separator), min_size=1, max_size=300))
def test_simdjson_reads_what_orjson_reads_or_leaves_it_to_orjson(
    parts: list[tuple[str, str]],
) -> None:
    text = "".join(number + separator for number, separator in parts[:-1]) + parts[-1][0]
    values = text.encode()
    got = _read(values)
    want = _reference(values)
    if got is None:  # refused: the caller's full check (orjson) then decides
        return
    assert want is not None, values  # never accepted where orjson refuses
    got = np.asarray(got, dtype=np.float64)
    assert got.tobytes() == want.tobytes(), values  # the same doubles, bit for bit (-0.0 too)


_not_a_number = st.sampled_from(
    ["true", "false", "null", '"1"', '"a,b"', "[1", "{}", '{"a":1}', "[]", "NaN", "Infinity", "x"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(_number, _not_a_number), min_size=1, max_size=200),
    st.integers(0, 199),
    _not_a_number,
)
def test_anything_but_numbers_is_refused(parts: list[str], at: int, junk: str) -> None:
    """Not only number characters: never read as numbers (true is not 1), at any size."""
    parts.insert(at % (len(parts) + 1), junk)
    for padding in ("", ",".join(["0.5"] * (NATIVE_BYTES // 4 + 1)) + ","):
        assert _read((padding + ",".join(parts)).encode()) is None


def test_many_values_come_as_one_float64_array_and_few_or_too_many_as_a_list() -> None:
    many = b",".join([b"0.1"] * (NATIVE_BYTES // 3 + 1))
    assert isinstance(_read(many), np.ndarray)
    assert _read(b"1,2.5") == [1, 2.5]
    # past the bound simdjson is not asked (a parser keeps its largest buffers)
    huge = b",".join([b"0.1"] * (MAX_NATIVE_BYTES // 4 + 1))
    assert len(huge) > MAX_NATIVE_BYTES
    got = _read(huge)
    assert isinstance(got, list) and len(got) == MAX_NATIVE_BYTES // 4 + 1
    for bad in (b"1,,2", b"1,", b"-", b"1.", b"01", b"1e999", b"1 2"):
        assert _read(bad) is None
        assert _read(b",".join([b"1"] * NATIVE_BYTES) + b"," + bad) is None


def test_the_values_are_read_where_they_lie_in_the_body() -> None:
    """Only the span between the brackets is read, whatever surrounds it."""
    values = b",".join([b"0.25"] * 100)
    body = b'{"inputs":[{"data":[' + values + b'],"shape":[50,2]}],"x":[true,"a"]}'
    start = body.index(values)
    got = read_numbers(body, start, start + len(values))
    assert isinstance(got, np.ndarray) and got.tolist() == [0.25] * 100
    small = b'{"data":[1,2.5],"y":[null]}'
    assert read_numbers(small, 9, 14) == [1, 2.5]


def test_threads_read_with_parsers_of_their_own() -> None:
    """A simdjson parser's document lives until its next parse: one parser a thread."""
    bodies = [b",".join([str(k + i).encode() for i in range(400)]) for k in range(4)]
    failures: list[int] = []

    def read(k: int) -> None:
        for _ in range(200):
            got = _read(bodies[k])
            if not isinstance(got, np.ndarray) or got[0] != k or got[-1] != k + 399:
                failures.append(k)

    threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
