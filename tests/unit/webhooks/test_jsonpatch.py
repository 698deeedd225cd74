"""The JSON patch diff: hand-picked cases (escaping, JSON types, arrays growing and shrinking) and the property that
applying `diff(a, b)` to `a` gives `b`, for random JSON."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpack_webhooks.jsonpatch import diff, escape, same
from tests.unit.webhooks.rfc6902 import apply


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({}, {"a": 1}, [{"op": "add", "path": "/a", "value": 1}]),
        ({"a": 1}, {}, [{"op": "remove", "path": "/a"}]),
        ({"a": 1}, {"a": 2}, [{"op": "replace", "path": "/a", "value": 2}]),
        ({"a/b": 1}, {"a/b": 2}, [{"op": "replace", "path": "/a~1b", "value": 2}]),
        ({"m~n": {}}, {"m~n": {"x": None}}, [{"op": "add", "path": "/m~0n/x", "value": None}]),
        ({"a": True}, {"a": 1}, [{"op": "replace", "path": "/a", "value": 1}]),
        ({"a": 1}, {"a": 1.0}, [{"op": "replace", "path": "/a", "value": 1.0}]),
        ({"a": 0}, {"a": False}, [{"op": "replace", "path": "/a", "value": False}]),
        ({"l": [1, 2, 3]}, {"l": [1]}, [{"op": "remove", "path": "/l/2"}, {"op": "remove", "path": "/l/1"}]),
        (
            {"l": [1]},
            {"l": [1, 2, 3]},
            [{"op": "add", "path": "/l/1", "value": 2}, {"op": "add", "path": "/l/2", "value": 3}],
        ),
        ({"l": [{"a": 1}]}, {"l": [{"a": 1, "b": 2}]}, [{"op": "add", "path": "/l/0/b", "value": 2}]),
        ({"a": {"b": 1}}, {"a": [1]}, [{"op": "replace", "path": "/a", "value": [1]}]),
        ({"": 1}, {"": 2}, [{"op": "replace", "path": "/", "value": 2}]),
    ],
)
def test_diff_cases(source: Any, target: Any, expected: list[dict[str, Any]]) -> None:
    assert diff(source, target) == expected
    assert apply(source, diff(source, target)) == target


def test_escape_order() -> None:
    # `~` first: escaping `/` first would turn `~1` into `~01`.
    assert escape("a~/b") == "a~0~1b"


def test_same_is_strict_about_json_types() -> None:
    assert same({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})
    assert not same({"a": True}, {"a": 1})
    assert not same([1], [1.0])
    assert not same({"a": 1}, {"a": 1, "b": 2})


KEYS = st.text(alphabet=st.sampled_from("ab~/0-"), max_size=4)
SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2, allow_nan=False) | st.text(max_size=3)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=25,
)


def _typed(value: Any) -> str:
    """A serialisation that tells `1` from `1.0` and `true`, for comparing results strictly."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@settings(max_examples=1000, deadline=None)
@given(JSON_VALUES, JSON_VALUES)
def test_applying_the_diff_gives_the_target(source: Any, target: Any) -> None:
    operations = diff(source, target)
    result = apply(source, operations)
    assert same(result, target), (source, target, operations)
    assert _typed(result) == _typed(target)
    assert (operations == []) == same(source, target)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON_VALUES, max_size=5), st.dictionaries(KEYS, JSON_VALUES, max_size=5))
def test_objects_diff_without_touching_the_root(source: dict[str, Any], target: dict[str, Any]) -> None:
    # The apiserver's applier cannot replace the whole document; between two objects the diff never needs to.
    assert all(op["path"] != "" for op in diff(source, target))
