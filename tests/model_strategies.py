"""Hypothesis strategies that build JSON objects a pydantic API model accepts, field by field (all optional
fields independently present or absent), for property tests of conversion and serialisation."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from hypothesis import strategies as st
from pydantic import BaseModel

TEXT = st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=12)
JSON_LEAF = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | TEXT
FREE_JSON = st.recursive(
    JSON_LEAF,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)


def for_annotation(annotation: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of a field annotation, as JSON."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *_ = get_args(annotation)
        return for_annotation(base, depth)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return st.one_of(*(for_annotation(a, depth) for a in options))
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation)
        return st.lists(for_annotation(item, depth + 1), max_size=3)
    if origin is dict:
        _, value = get_args(annotation)
        if value is Any:
            return st.dictionaries(TEXT, FREE_JSON, max_size=3)
        return st.dictionaries(TEXT, for_annotation(value, depth + 1), max_size=3)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return for_model(annotation, depth + 1)
    if annotation is str:
        return TEXT
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(-(2**40), 2**40)
    if annotation is float:
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if annotation is Any:
        return FREE_JSON
    raise TypeError(f"no strategy for {annotation!r}")


def for_model(model: type[BaseModel], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects `model` accepts: required fields always, optional ones sometimes."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in ("apiVersion", "kind", "metadata"):
            continue
        strategy = for_annotation(info.annotation, depth)
        if info.is_required():
            required[key] = strategy
        elif depth < 6:
            optional[key] = strategy
    return st.fixed_dictionaries(required, optional=optional)
