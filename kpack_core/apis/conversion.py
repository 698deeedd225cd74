"""Lossless conversion between `v1alpha1` and the `v1alpha2` hub, for every kind.

Each kind declares how its fields move between versions (`Move` rules: renames and relocations); everything else
keeps its path. Converting down (hub → v1alpha1) applies the moves, then keeps only what the v1alpha1 model has a
home for. What that loses — computed exactly, by converting the result back up and comparing with the original —
travels in the annotation `ANNOTATION` as a small list of set/remove operations. Converting up applies the moves
back, replays the annotation and removes it, so the annotation never stays on a hub object and both round trips
are exact:

    up(down(hub)) == hub            down(up(old)) == old   (for objects written through v1alpha1)

Both directions are the webhook's hot path: the common conversion down runs as code compiled once per kind
(`downplan`, checked against the exact path by property tests), and per-kind tables live on the `KindConversion`.

Unlike kpack 0.4.0, which dropped v1alpha2-only fields (additional tags, registry cache, cosign, services, ...)
whenever a client read and wrote an object through v1alpha1, nothing is lost, and no defaults are added on the way.
`metadata` is copied verbatim apart from the annotation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel

from kpack_core.apis.base import GROUP, HUB_VERSION, JSON
from kpack_core.apis.downplan import DownPlan, compile_down
from kpack_core.apis.shapes import Path, keep_known

ANNOTATION = "conversion.kpack.io/v1alpha2-fields"
"""Carries, on a v1alpha1 object, the hub fields v1alpha1 has no home for."""


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "moves", tuple(self.moves))  # immutable, and the conversion stays hashable

    # Derived tables, built on first use and kept on the instance: looking them up in a cache keyed by the
    # conversion would hash its models and every move on each call.

    @functools.cached_property
    def up_moves(self) -> tuple[tuple[Path, Path], ...]:
        """(source, target) of every move, converting up."""
        return tuple((m.old, m.hub) for m in self.moves)

    @functools.cached_property
    def down_moves(self) -> tuple[tuple[Path, Path], ...]:
        """(source, target) of every move, converting down."""
        return tuple((m.hub, m.old) for m in self.moves)

    @functools.cached_property
    def down_plan(self) -> DownPlan | None:
        """The one-pass conversion down (`downplan`); None when the moves do not compile to one."""
        return compile_down(self.down_moves, self.old_model)


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


def _moved(obj: JSON, moves: Sequence[tuple[Path, Path]]) -> JSON:
    """A new object: `obj` with each value at a source path moved to its target path. Only the dicts along those
    paths are copied (copy on write); everything else is shared with `obj`, which is left untouched. This is the
    hot path of every conversion: a deep copy of a whole object would cost more than all the rest of it."""
    result = dict(obj)
    owned = {id(result)}
    taken = []
    for source, target in moves:
        chain = [result]
        node: Any = result
        for key in source[:-1]:
            node = node.get(key)
            if type(node) is not dict:
                break
            chain.append(node)
        else:
            last = source[-1]
            if last not in node:
                continue
            for depth in range(1, len(chain)):  # private copies of the dicts on the way
                if id(chain[depth]) not in owned:
                    chain[depth] = chain[depth - 1][source[depth - 1]] = dict(chain[depth])
                    owned.add(id(chain[depth]))
            taken.append((target, chain[-1].pop(last)))
            # Parents the move emptied go too: an empty `cache: {}` left behind would not round-trip.
            for depth in range(len(chain) - 1, 0, -1):
                if chain[depth]:
                    break
                del chain[depth - 1][source[depth - 1]]
    for target, value in taken:
        _set_owned(result, target, value, owned)
    return result


def _set_owned(obj: JSON, path: Path, value: Any, owned: set[int]) -> None:
    """`_set` on private copies of the dicts along `path` (`owned` holds the ids of those already copied)."""
    for key in path[:-1]:
        child = obj.get(key)
        if not isinstance(child, dict):
            child = obj[key] = {}
        elif id(child) not in owned:
            child = obj[key] = dict(child)
        owned.add(id(child))
        obj = child
    obj[path[-1]] = value


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


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
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    name = metadata.get("name") or "<unnamed>"
    name = f"{metadata.get('namespace')}/{name}" if metadata.get("namespace") else name
    return f"{obj.get('kind', '?')} {name}"


def _up_plain(old: JSON, conversion: KindConversion) -> JSON:
    hub = _moved(old, conversion.up_moves)
    hub["apiVersion"] = f"{GROUP}/{HUB_VERSION}"
    return hub


def _without_annotation(metadata: Any) -> Any:
    """`metadata` without the conversion annotation (a copy when it had one; the input is not changed)."""
    if not isinstance(metadata, dict):
        return metadata
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict) or ANNOTATION not in annotations:
        return metadata
    return {**metadata, "annotations": {k: v for k, v in annotations.items() if k != ANNOTATION}}


_API_VERSIONS = {version: f"{GROUP}/{version}" for version in (HUB_VERSION, "v1alpha1")}


def down(hub: JSON, conversion: KindConversion, version: str) -> JSON:
    """The v1alpha1 form of a hub object, with what v1alpha1 cannot hold in the annotation.

    `hub` is not changed; the result shares the values it keeps unchanged with it (copy before editing either in
    place if the other must stay as it is)."""
    quick = _down_quick(hub, conversion)
    if quick is not None:
        old, dropped = quick
        sets: list[Any] = [[list(path), value] for path, value in dropped] if dropped else []
        removes: list[Any] = []
    else:
        body = {k: v for k, v in hub.items() if k != "metadata"}
        old = keep_known(_moved(body, conversion.down_moves), conversion.old_model)
        back = _moved(old, conversion.up_moves)
        sets, removes = [], []
        _diff(back, body, (), sets, removes)
    old["apiVersion"] = _API_VERSIONS.get(version) or f"{GROUP}/{version}"
    if "metadata" in hub:
        # A stale copy of the annotation on a hub object is never authoritative.
        old["metadata"] = _without_annotation(hub["metadata"])
    if sets or removes:
        patch: JSON = {}
        if sets:
            patch["set"] = sets
        if removes:
            patch["remove"] = removes
        meta = old["metadata"] = dict(old.get("metadata") or {})
        if "annotations" not in meta:
            patch["createdAnnotations"] = True  # so `up` removes the map it would otherwise leave empty
        meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION: orjson.dumps(patch).decode()}
    return old


def _down_quick(hub: JSON, conversion: KindConversion) -> tuple[JSON, list[tuple[Path, Any]]] | None:
    """The v1alpha1 body (no `metadata`) and what it lost, in one pass, for the common object whose lost fields
    are exactly what `keep_known` leaves out: none of them near a move, and no move landing on a field that is
    already there. None for any other object, which `down` handles by converting back and comparing (exact, and
    slower). The pass is the kind's `DownPlan`, code compiled once from its moves and its v1alpha1 model."""
    plan = conversion.down_plan
    return plan.run(hub) if plan is not None else None


def up(old: JSON, conversion: KindConversion) -> JSON:
    """The hub form of a v1alpha1 object, restoring what its annotation carries and removing the annotation.

    `old` is not changed; the result may share values with it (see `down`)."""
    hub = _up_plain(old, conversion)
    metadata = hub.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    carried = annotations.get(ANNOTATION)
    if carried is None:
        return hub
    # Replaying writes anywhere in the object: this rarer path works on a private deep copy.
    hub = dict(_copy(hub))
    metadata = hub["metadata"]
    annotations = metadata["annotations"]
    del annotations[ANNOTATION]
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


def _check_metadata(obj: JSON) -> None:
    """`metadata` and its `annotations` are objects (or null), or the conversion, which reads and writes the
    annotation, cannot be done: a clear error rather than whatever a dict operation on a string raises."""
    metadata = obj.get("metadata")
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise ConversionError(f"{_describe(obj)}: metadata is a JSON {_json_type(metadata)}, not an object")
    annotations = metadata.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        message = f"metadata.annotations is a JSON {_json_type(annotations)}, not an object"
        raise ConversionError(f"{_describe(obj)}: {message}")


def _json_type(value: Any) -> str:
    return {str: "string", bool: "boolean", int: "number", float: "number", list: "array"}.get(type(value), "value")


_VERSIONS = (HUB_VERSION, "v1alpha1")
_ROUTES = {(f"{GROUP}/{a}", f"{GROUP}/{b}"): b for a in _VERSIONS for b in _VERSIONS if a != b}
"""(apiVersion, desired apiVersion) -> desired version, for every conversion between two served versions."""


def convert(obj: JSON, desired_api_version: str, conversions: dict[str, KindConversion]) -> JSON:
    """Convert `obj` (any served version of a kpack kind) to `desired_api_version`."""
    api_version = str(obj.get("apiVersion", ""))
    kind = str(obj.get("kind", ""))
    # One lookup answers the valid cases; everything else goes through the checks below, for their messages.
    route = _ROUTES.get((api_version, desired_api_version))
    conversion = conversions.get(kind)
    if route is not None and conversion is not None:
        _check_metadata(obj)
        if route == HUB_VERSION:
            return up(obj, conversion)
        return down(obj, conversion, route)
    group, _, version = api_version.partition("/")
    want_group, _, want_version = desired_api_version.partition("/")
    if group != GROUP or want_group != GROUP:
        raise ConversionError(f"{_describe(obj)}: cannot convert {api_version} to {desired_api_version}")
    if conversion is None:
        raise ConversionError(f"{_describe(obj)}: {kind!r} is not a kind of {GROUP}")
    if version == want_version:
        return obj
    raise ConversionError(f"{_describe(obj)}: unknown version in {api_version} -> {desired_api_version}")
