"""Event filters run before a watch's handler maps an event to requests (controller-runtime's `predicate`).

A predicate answers per event kind; the change predicates let creates, deletes and generic events through and judge
only updates. Mind that `GenerationChanged` also hides label, annotation and finalizer changes (they do not bump
`metadata.generation`), and resyncs (old is new).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

JSON = dict[str, Any]


class Predicate(Protocol):
    def create(self, obj: JSON) -> bool: ...

    def update(self, old: JSON, new: JSON) -> bool: ...

    def delete(self, obj: JSON) -> bool: ...


def _metadata(obj: JSON) -> JSON:
    return obj.get("metadata") or {}


class _UpdateOnly:
    def create(self, obj: JSON) -> bool:
        return True

    def delete(self, obj: JSON) -> bool:
        return True

    def update(self, old: JSON, new: JSON) -> bool:
        raise NotImplementedError


class GenerationChanged(_UpdateOnly):
    """Updates pass only when `metadata.generation` changed (spec changes of kinds with a status subresource)."""

    def update(self, old: JSON, new: JSON) -> bool:
        return _metadata(old).get("generation") != _metadata(new).get("generation")


class ResourceVersionChanged(_UpdateOnly):
    """Updates pass unless the resourceVersion is unchanged (drops resyncs)."""

    def update(self, old: JSON, new: JSON) -> bool:
        return _metadata(old).get("resourceVersion") != _metadata(new).get("resourceVersion")


class LabelsChanged(_UpdateOnly):
    def update(self, old: JSON, new: JSON) -> bool:
        return (_metadata(old).get("labels") or {}) != (_metadata(new).get("labels") or {})


class AnnotationsChanged(_UpdateOnly):
    def update(self, old: JSON, new: JSON) -> bool:
        return (_metadata(old).get("annotations") or {}) != (_metadata(new).get("annotations") or {})


@dataclass(frozen=True)
class Filter:
    """Every event passes when `keep(obj)` is true (for updates: of the new object)."""

    keep: Callable[[JSON], bool]

    def create(self, obj: JSON) -> bool:
        return self.keep(obj)

    def update(self, old: JSON, new: JSON) -> bool:
        return self.keep(new)

    def delete(self, obj: JSON) -> bool:
        return self.keep(obj)


def has_labels(**labels: str) -> Filter:
    """Objects carrying all these label values."""
    return Filter(lambda obj: all((_metadata(obj).get("labels") or {}).get(k) == v for k, v in labels.items()))


@dataclass(frozen=True)
class Any_:
    """Passes when any of its predicates passes."""

    predicates: tuple[Predicate, ...]

    def create(self, obj: JSON) -> bool:
        return any(p.create(obj) for p in self.predicates)

    def update(self, old: JSON, new: JSON) -> bool:
        return any(p.update(old, new) for p in self.predicates)

    def delete(self, obj: JSON) -> bool:
        return any(p.delete(obj) for p in self.predicates)


@dataclass(frozen=True)
class Not:
    predicate: Predicate

    def create(self, obj: JSON) -> bool:
        return not self.predicate.create(obj)

    def update(self, old: JSON, new: JSON) -> bool:
        return not self.predicate.update(old, new)

    def delete(self, obj: JSON) -> bool:
        return not self.predicate.delete(obj)


def any_of(*predicates: Predicate) -> Any_:
    return Any_(predicates)
