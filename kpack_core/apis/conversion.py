"""Lossless conversion between `v1alpha1` and the `v1alpha2` hub, for every kind.

Each kind declares how its fields move between versions (`Move` rules: renames and relocations); everything else
keeps its path. Converting down (hub → v1alpha1) applies the moves, then keeps only what the v1alpha1 model has a
home for. What that loses — computed exactly, by converting the result back up and comparing with the original —
travels in the annotation `ANNOTATION` as a small list of set/remove operations. Converting up applies the moves
back, replays the annotation and removes it, so the annotation never stays on a hub object and both round trips
are exact:

    up(down(hub)) == hub            down(up(old)) == old   (for objects written through v1alpha1)

Unlike kpack 0.4.0, which dropped v1alpha2-only fields (additional tags, registry cache, cosign, services, ...)
whenever a client read and wrote an object through v1alpha1, nothing is lost, and no defaults are added on the way.
`metadata` is copied verbatim apart from the annotation.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

import orjson
from pydantic import BaseModel

from kpack_core.apis.base import GROUP, HUB_VERSION, JSON

ANNOTATION = "conversion.kpack.io/v1alpha2-fields"
"""Carries, on a v1alpha1 object, the hub fields v1alpha1 has no home for."""

Path = tuple[str, ...]


class ConversionError(Exception):
    """An object could not be converted; the message names the object and the problem."""


@dataclass(frozen=True)
class Move:
    """A field at `hub` in v1alpha2 lives at `old` in v1alpha1 (a rename or a relocation)."""

    hub: Path
    old: Path


@dataclass(frozen=True)
class KindConversion:
    """How one kind converts: its models and the moves between them."""

    kind: str
    hub_model: type[BaseModel]
    old_model: type[BaseModel]
    moves: Sequence[Move] = ()


def _get(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _pop(obj: Any, path: Path) -> Any:
    parents = []
    for key in path[:-1]:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        parents.append((obj, key))
        obj = obj[key]
    if not isinstance(obj, dict) or path[-1] not in obj:
        return _MISSING
    value = obj.pop(path[-1])
    # Parents emptied by the move go too: an empty `cache: {}` left behind would not round-trip.
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]
        else:
            break
    return value


def _set(obj: JSON, path: Path, value: Any) -> None:
    for key in path[:-1]:
        child = obj.get(key)
        if not isinstance(child, dict):
            child = obj[key] = {}
        obj = child
    obj[path[-1]] = value


def _copy(obj: Any) -> Any:
    """A deep copy of plain JSON; an orjson round trip is several times faster than copy.deepcopy."""
    return orjson.loads(orjson.dumps(obj))


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _apply_moves(obj: JSON, moves: Sequence[tuple[Path, Path]]) -> None:
    taken = [(target, _pop(obj, source)) for source, target in moves]
    for target, value in taken:
        if value is not _MISSING:
            _set(obj, target, value)


# -- keeping what a model has a home for ------------------------------------------------------------------------


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
def _fields(model: type[BaseModel]) -> dict[str, tuple[type[BaseModel] | None, type[BaseModel] | None]]:
    """JSON name -> (nested model, list item model) of every field; computed once per model (this is the hot
    path of every conversion)."""
    return {
        (info.alias or name): (_model_of(info.annotation), _list_item_model(info.annotation))
        for name, info in model.model_fields.items()
    }


def keep_known(obj: JSON, model: type[BaseModel]) -> JSON:
    """`obj` with only the fields `model` (recursively) declares, by JSON name."""
    fields = _fields(model)
    kept: JSON = {}
    for key, value in obj.items():
        known = fields.get(key)
        if known is None:
            continue
        nested, item_model = known
        if nested is not None and isinstance(value, dict):
            kept[key] = keep_known(value, nested)
        elif item_model is not None and isinstance(value, list):
            kept[key] = [keep_known(v, item_model) if isinstance(v, dict) else v for v in value]
        else:
            kept[key] = value
    return kept


# -- what a conversion lost ---------------------------------------------------------------------------------------


def _diff(have: Any, want: Any, path: tuple[str, ...], sets: list[Any], removes: list[Any]) -> None:
    """Operations turning `have` into `want`: dicts are compared key by key, anything else replaced whole."""
    if isinstance(have, dict) and isinstance(want, dict):
        for key in have.keys() - want.keys():
            removes.append([*path, key])
        for key, value in want.items():
            if key not in have:
                sets.append([[*path, key], value])
            elif have[key] != value or type(have[key]) is not type(value):
                _diff(have[key], value, (*path, key), sets, removes)
        return
    sets.append([list(path), want])


def _replay(obj: JSON, patch: JSON) -> None:
    for path in patch.get("remove", []):
        _pop(obj, tuple(path))
    for path, value in patch.get("set", []):
        if not path:
            raise ConversionError("the conversion annotation replaces the whole object")
        _set(obj, tuple(path), value)


# -- the conversions ----------------------------------------------------------------------------------------------


def _describe(obj: JSON) -> str:
    metadata = obj.get("metadata") or {}
    name = f"{metadata.get('namespace')}/{metadata.get('name')}" if metadata.get("namespace") else metadata.get("name")
    return f"{obj.get('kind', '?')} {name}"


def _up_plain(old: JSON, conversion: KindConversion) -> JSON:
    hub: JSON = _copy(old)
    hub["apiVersion"] = f"{GROUP}/{HUB_VERSION}"
    _apply_moves(hub, [(m.old, m.hub) for m in conversion.moves])
    return hub


def down(hub: JSON, conversion: KindConversion, version: str) -> JSON:
    """The v1alpha1 form of a hub object, with what v1alpha1 cannot hold in the annotation."""
    source = _copy(hub)
    annotations = (source.get("metadata") or {}).get("annotations") or {}
    annotations.pop(ANNOTATION, None)  # a stale copy on a hub object is never authoritative
    moved = _copy(source)
    _apply_moves(moved, [(m.hub, m.old) for m in conversion.moves])
    metadata = moved.pop("metadata", None)
    old = keep_known(moved, conversion.old_model)
    old["apiVersion"] = f"{GROUP}/{version}"
    if metadata is not None:
        old["metadata"] = metadata
    back = _up_plain(old, conversion)
    sets: list[Any] = []
    removes: list[Any] = []
    _diff({k: v for k, v in back.items() if k != "metadata"}, {k: v for k, v in source.items() if k != "metadata"},
          (), sets, removes)  # fmt: skip
    if sets or removes:
        patch: JSON = {}
        if sets:
            patch["set"] = sets
        if removes:
            patch["remove"] = removes
        meta = old.setdefault("metadata", {})
        if "annotations" not in meta:
            patch["createdAnnotations"] = True  # so `up` removes the map it would otherwise leave empty
        meta.setdefault("annotations", {})[ANNOTATION] = orjson.dumps(patch).decode()
    return old


def up(old: JSON, conversion: KindConversion) -> JSON:
    """The hub form of a v1alpha1 object, restoring what its annotation carries and removing the annotation."""
    hub = _up_plain(old, conversion)
    metadata = hub.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    carried = annotations.pop(ANNOTATION, None)
    if carried is None:
        return hub
    try:
        patch = orjson.loads(carried)
    except orjson.JSONDecodeError as exc:
        raise ConversionError(f"{_describe(old)}: annotation {ANNOTATION} is not JSON: {exc}") from exc
    if not isinstance(patch, dict):
        raise ConversionError(f"{_describe(old)}: annotation {ANNOTATION} is not a JSON object")
    if patch.get("createdAnnotations") and not annotations:
        del metadata["annotations"]
    try:
        _replay(hub, patch)
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"{_describe(old)}: annotation {ANNOTATION} is malformed: {exc}") from exc
    return hub


def convert(obj: JSON, desired_api_version: str, conversions: dict[str, KindConversion]) -> JSON:
    """Convert `obj` (any served version of a kpack kind) to `desired_api_version`."""
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.partition("/")
    want_group, _, want_version = desired_api_version.partition("/")
    kind = str(obj.get("kind", ""))
    if group != GROUP or want_group != GROUP:
        raise ConversionError(f"{_describe(obj)}: cannot convert {api_version} to {desired_api_version}")
    conversion = conversions.get(kind)
    if conversion is None:
        raise ConversionError(f"{_describe(obj)}: {kind!r} is not a kind of {GROUP}")
    if version == want_version:
        return obj
    versions = {HUB_VERSION, "v1alpha1"}
    if version not in versions or want_version not in versions:
        raise ConversionError(f"{_describe(obj)}: unknown version in {api_version} -> {desired_api_version}")
    if want_version == HUB_VERSION:
        return up(obj, conversion)
    return down(obj, conversion, want_version)
