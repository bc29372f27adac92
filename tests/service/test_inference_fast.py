"""The predict path's C-speed steps give exactly what the row-by-row path gives."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import inference
from service.inference import encode_answer, encode_row_answer


@pytest.mark.parametrize("classes", [("not-setosa", "setosa"), ("a", 'b"q', "c\u00e9", "d")])
@pytest.mark.parametrize("n", [1, 2, 1000])
def test_encoded_answer_is_byte_identical_to_the_dict_form(classes: tuple, n: int) -> None:
    rng = np.random.default_rng(n)
    proba = rng.random((n, len(classes)))
    proba[0, 0] = 5e-324
    proba[-1, -1] = 1.0
    best = proba.argmax(axis=1).tolist()
    expected = orjson.dumps(
        {
            "model_version": "v1",
            "predictions": [
                {"label": classes[k], "probabilities": dict(zip(classes, row, strict=True))}
                for k, row in zip(best, proba.tolist(), strict=True)
            ],
        }
    )
    assert encode_answer("v1", classes, proba) == expected
    if n == 1:
        assert encode_row_answer("v1", classes, proba[0].tolist()) == expected


@pytest.mark.parametrize("proba", [[0.5, 0.5], [0.2, 0.4, 0.4], [1.0, 0.0], [5e-324, 1.0]])
def test_the_one_row_encoding_breaks_ties_as_argmax(proba: list[float]) -> None:
    classes = tuple("abcd"[: len(proba)])
    assert encode_row_answer("v", classes, proba) == encode_answer("v", classes, np.array([proba]))


numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**63 - 1)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(numbers, min_size=2, max_size=2), min_size=1, max_size=20))
def test_plain_rows_equal_the_row_by_row_array(rows: list[list[float]]) -> None:
    body = orjson.dumps({"instances": rows})
    X = inference._plain_rows(body, orjson.loads(body)["instances"], 2)
    assert X is not None
    np.testing.assert_array_equal(X, np.array(rows, dtype=np.float64))


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[5.0, true]]}',
        b'{"instances": [[5.0, null]]}',
        b'{"instances": [[5.0, "3.0"]]}',
        b'{"instances": [[5.0, [3.0]]]}',
        b'{"instances": [[5.0]]}',
        b'{"instances": [[5.0, 3.0], [1.0, 2.0, 3.0]]}',
        b'{"instances": [{"sepal_length": 5.0, "sepal_width": 3.0}]}',
    ],
)
def test_anything_not_plain_goes_to_the_row_checks(body: bytes) -> None:
    assert inference._plain_rows(body, orjson.loads(body)["instances"], 2) is None


@given(
    st.integers(1, 40).flatmap(
        lambda n: st.lists(
            st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1e-300]), min_size=2, max_size=2),
            min_size=n,
            max_size=n,
        )
    )
)
def test_best_classes_is_argmax_with_ties_to_the_first(rows: list[list[float]]) -> None:
    from service.inference import best_classes

    proba = np.array(rows)
    assert best_classes(proba).tolist() == proba.argmax(axis=1).tolist()
    three = np.hstack([proba, proba[:, :1]])  # other widths: NumPy's own argmax
    assert best_classes(three).tolist() == three.argmax(axis=1).tolist()
