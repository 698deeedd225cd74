"""What an API model has a home for, by JSON name: the field tree of a model, read once from its pydantic fields,
and `keep_known`, which cuts a JSON object down to it (what converting down to v1alpha1 does after the moves).

A `Shape` is the compiled form of a model for that walk: per field, the shape of the model it nests (or of the
items of its list), and the set of fields that nest no model at all, so an object holding only such fields is
copied whole (in C) instead of field by field. Conversion calls this for every object the webhook converts.
"""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

Path = tuple[str, ...]


@dataclass(eq=False, slots=True)
class Shape:
    """The fields of one model by JSON name. Filled once by `shape_of` (mutable only so that a model nesting
    itself gets a shape nesting itself), then only read."""

    model: type[BaseModel]
    fields: dict[str, tuple[Shape | None, Shape | None]] = field(default_factory=dict)
    """JSON name -> (shape of the nested model, shape of the list item model), each None when there is none."""
    known: frozenset[str] = frozenset()
    """Every field."""
    plain: frozenset[str] = frozenset()
    """The fields whose value is kept as it is whatever it holds (no model inside)."""
    walked: tuple[tuple[str, Shape | None, Shape | None], ...] = ()
    """The other fields, with their (nested, list item) shapes: their values may lose something inside."""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model inside an annotation like `Model | None`, else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if get_origin(candidate) is list:
            (item,) = get_args(candidate)
            return _model_of(item)
    return None


@functools.cache
def shape_of(model: type[BaseModel]) -> Shape:
    """The shape of `model`, computed once per model."""
    return _build(model, {})


def _build(model: type[BaseModel], building: dict[type[BaseModel], Shape]) -> Shape:
    if model in building:
        return building[model]
    shape = building[model] = Shape(model)
    for name, info in model.model_fields.items():
        nested, item = _model_of(info.annotation), _list_item_model(info.annotation)
        shape.fields[info.alias or name] = (
            _build(nested, building) if nested is not None else None,
            _build(item, building) if item is not None else None,
        )
    shape.known = frozenset(shape.fields)
    shape.walked = tuple((key, nested, item) for key, (nested, item) in shape.fields.items() if nested or item)
    shape.plain = shape.known - {key for key, _, _ in shape.walked}
    return shape


def keep_known(
    obj: dict[str, Any], model: type[BaseModel], dropped: list[tuple[Path, Any]] | None = None, path: Path = ()
) -> dict[str, Any]:
    """`obj` with only the fields `model` (recursively) declares, by JSON name. With `dropped`, each value left
    out is appended to it with its path, in the object's order (a list of objects that lost something inside
    counts as a whole).

    Every object of a model in the result is a new dict (values outside models are shared with `obj`)."""
    if dropped is None:
        return keep(obj, shape_of(model), None, path)
    lost: list[tuple[Path, Any]] = []
    kept = keep(obj, shape_of(model), lost, path)
    dropped += in_object_order(obj, lost, len(path))
    return kept


def keep(obj: dict[str, Any], shape: Shape, dropped: list[tuple[Path, Any]] | None, path: Path = ()) -> dict[str, Any]:
    """`keep_known` by shape, the hot path of every conversion down: the object is copied whole (in C), then
    only the fields that need it are visited: those the model does not know (removed) and those nesting a model
    (walked). What is lost is appended to `dropped` in no particular order (see `in_object_order`)."""
    kept = dict(obj)
    keys = obj.keys()
    if keys <= shape.plain:
        return kept
    if not keys <= shape.known:
        for key in keys - shape.known:
            value = kept.pop(key)
            if dropped is not None:
                dropped.append(((*path, key), value))
    for key, nested, item in shape.walked:
        value = kept.get(key)
        if nested is not None and isinstance(value, dict):
            if value.keys() <= nested.plain:
                kept[key] = dict(value)
            else:
                kept[key] = keep(value, nested, dropped, (*path, key))
        elif item is not None and isinstance(value, list):
            items = [
                (dict(v) if v.keys() <= item.plain else keep(v, item, None)) if isinstance(v, dict) else v
                for v in value
            ]
            if dropped is not None and items != value:
                dropped.append(((*path, key), value))
            kept[key] = items
    return kept


def in_object_order(obj: dict[str, Any], dropped: list[tuple[Path, Any]], skip: int = 0) -> list[tuple[Path, Any]]:
    """`dropped` (paths in `obj`, after `skip` leading keys that are not) sorted as a depth-first walk of `obj`
    meets them. Only an object that lost two things or more pays for the sort."""
    if len(dropped) < 2:
        return dropped

    def position(entry: tuple[Path, Any]) -> list[int]:
        node, where = obj, []
        for key in entry[0][skip:]:
            where.append(list(node).index(key))
            node = node[key]
        return where

    return sorted(dropped, key=position)


def keep_value(
    value: Any, known: tuple[Shape | None, Shape | None], dropped: list[tuple[Path, Any]], path: Path = ()
) -> Any:
    """What `keep` keeps of one field's value, given the field's (nested, list item) shapes; what is lost goes to
    `dropped` as in `keep`."""
    nested, item = known
    if nested is not None and isinstance(value, dict):
        return keep(value, nested, dropped, path)
    if item is not None and isinstance(value, list):
        items = [keep(v, item, None) if isinstance(v, dict) else v for v in value]
        if items != value:
            dropped.append((path, value))
        return items
    return value
