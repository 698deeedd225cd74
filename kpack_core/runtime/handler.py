"""Event handlers: how a watched object's events become reconcile `Request`s (controller-runtime's `handler`).

- `for_object()`: the object itself (the primary kind).
- `for_owner(group, kind)`: the owner named by the object's controller owner reference (an owned kind: a Build's
  Pod wakes the Build). Version is ignored, as in controller-runtime; updates wake the owners of both the old and the
  new object, so a change of ownership reaches the old owner too.
- `from_map(fn)`: anything a function maps the object to, e.g. every Builder that references a changed
  ClusterStack, found through an index.

`QueueingHandler` binds a mapper, the watch's predicates and a controller's queue into an informer event handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from kpack_core.runtime.informer import DeletedFinalStateUnknown
from kpack_core.runtime.predicate import Predicate
from kpack_core.runtime.reconcile import Request

JSON = dict[str, Any]
log = structlog.get_logger(__name__)


class Mapper(Protocol):
    """Maps one event's object(s) to the requests to enqueue."""

    def map_create(self, obj: JSON) -> Iterable[Request]: ...

    def map_update(self, old: JSON, new: JSON) -> Iterable[Request]: ...

    def map_delete(self, obj: JSON) -> Iterable[Request]: ...


class Enqueuer(Protocol):
    def add(self, item: Request) -> None: ...


def request_for(obj: JSON) -> Request:
    metadata = obj.get("metadata") or {}
    return Request(metadata.get("namespace") or None, metadata.get("name", ""))


class ForObject:
    def map_create(self, obj: JSON) -> Iterable[Request]:
        return (request_for(obj),)

    def map_update(self, old: JSON, new: JSON) -> Iterable[Request]:
        return (request_for(new),)

    def map_delete(self, obj: JSON) -> Iterable[Request]:
        return (request_for(obj),)


@dataclass(frozen=True)
class ForOwner:
    """Requests for the owners (of this group and kind) named in an object's owner references."""

    group: str
    kind: str
    owner_namespaced: bool = True
    only_controller: bool = True

    def _owners(self, obj: JSON) -> list[Request]:
        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace") if self.owner_namespaced else None
        requests = []
        for ref in metadata.get("ownerReferences") or []:
            if self.only_controller and not ref.get("controller"):
                continue
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            if ref.get("kind") == self.kind and group == self.group and ref.get("name"):
                requests.append(Request(namespace, ref["name"]))
        return requests

    def map_create(self, obj: JSON) -> Iterable[Request]:
        return self._owners(obj)

    def map_update(self, old: JSON, new: JSON) -> Iterable[Request]:
        return dict.fromkeys([*self._owners(old), *self._owners(new)])

    def map_delete(self, obj: JSON) -> Iterable[Request]:
        return self._owners(obj)


@dataclass(frozen=True)
class FromMap:
    """Requests computed by `fn` from the object (for updates: from the old and the new object)."""

    fn: Callable[[JSON], Iterable[Request]]

    def map_create(self, obj: JSON) -> Iterable[Request]:
        return self.fn(obj)

    def map_update(self, old: JSON, new: JSON) -> Iterable[Request]:
        if old is new:
            return self.fn(new)
        return dict.fromkeys([*self.fn(old), *self.fn(new)])

    def map_delete(self, obj: JSON) -> Iterable[Request]:
        return self.fn(obj)


def for_object() -> ForObject:
    return ForObject()


def for_owner(group: str, kind: str, *, owner_namespaced: bool = True, only_controller: bool = True) -> ForOwner:
    return ForOwner(group, kind, owner_namespaced, only_controller)


def from_map(fn: Callable[[JSON], Iterable[Request]]) -> FromMap:
    return FromMap(fn)


class QueueingHandler:
    """An informer event handler: predicates (all must pass), then the mapper, then `queue.add` per request."""

    def __init__(self, queue: Enqueuer, mapper: Mapper, predicates: Iterable[Predicate] = ()) -> None:
        self.queue = queue
        self.mapper = mapper
        self.predicates = tuple(predicates)

    def on_add(self, obj: JSON, is_in_initial_list: bool) -> None:
        if all(p.create(obj) for p in self.predicates):
            self._enqueue(self.mapper.map_create(obj))

    def on_update(self, old: JSON, new: JSON) -> None:
        if all(p.update(old, new) for p in self.predicates):
            self._enqueue(self.mapper.map_update(old, new))

    def on_delete(self, obj: JSON | DeletedFinalStateUnknown) -> None:
        final = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if all(p.delete(final) for p in self.predicates):
            self._enqueue(self.mapper.map_delete(final))

    def _enqueue(self, requests: Iterable[Request]) -> None:
        for request in requests:
            self.queue.add(request)
