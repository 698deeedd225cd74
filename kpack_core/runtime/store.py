"""The informer's cache: objects by key, with indexes, kept memory-lean.

Each object is held as its compact JSON encoding (orjson bytes), not as a tree of Python dicts: a parsed object
costs about four times its JSON size in Python objects, the bytes about one time. Reads decode a fresh dict, so a
reconciler can never mutate the cache (controller-runtime deep-copies for the same reason). Indexes map index
values to sets of keys; the values an object was indexed under are recomputed from its stored form when it changes.

Keys are `namespace/name`, or `name` for cluster-scoped objects, as in client-go.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

JSON = dict[str, Any]
IndexFunc = Callable[[JSON], Iterable[str]]

NAMESPACE_INDEX = "namespace"
OWNER_UID_INDEX = "owner-uid"
CONTROLLER_UID_INDEX = "controller-uid"
ALL_NAMESPACES = "__all_namespaces"


def object_key(obj: JSON) -> str:
    """The cache key of an object: `namespace/name`, or `name` when it has no namespace."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = metadata.get("name", "")
    return f"{namespace}/{name}" if namespace else str(name)


def split_key(key: str) -> tuple[str | None, str]:
    """(namespace, name) of a cache key."""
    namespace, _, name = key.rpartition("/")
    return (namespace or None), name


def index_by_namespace(obj: JSON) -> list[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


def index_by_owner_uid(obj: JSON) -> list[str]:
    return [ref["uid"] for ref in (obj.get("metadata") or {}).get("ownerReferences") or [] if ref.get("uid")]


def index_by_controller_uid(obj: JSON) -> list[str]:
    return [
        ref["uid"]
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
        if ref.get("controller") and ref.get("uid")
    ]


def field_indexer(extract: Callable[[JSON], Iterable[str]]) -> IndexFunc:
    """A controller-runtime style field index: values `<namespace>/<value>` plus `__all_namespaces/<value>`, so
    lookups work within one namespace and across all of them."""

    def index(obj: JSON) -> list[str]:
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        values = list(extract(obj))
        return [f"{namespace}/{v}" for v in values] + [f"{ALL_NAMESPACES}/{v}" for v in values]

    return index


DEFAULT_INDEXERS: dict[str, IndexFunc] = {
    NAMESPACE_INDEX: index_by_namespace,
    OWNER_UID_INDEX: index_by_owner_uid,
    CONTROLLER_UID_INDEX: index_by_controller_uid,
}


class Store:
    """Objects by key as compact JSON, with named indexes.

    Invariant: for every index, `_indices[index][value]` holds exactly the keys whose stored object yields `value`
    from that index's function; empty value sets are removed so the index does not grow with churn.
    """

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, bytes] = {}
        self._indexers: dict[str, IndexFunc] = dict(DEFAULT_INDEXERS if indexers is None else indexers)
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def keys(self) -> list[str]:
        return list(self._items)

    @property
    def size_bytes(self) -> int:
        """Total size of the stored JSON."""
        return sum(len(raw) for raw in self._items.values())

    def get(self, key: str) -> JSON | None:
        """A fresh copy of the object at `key`, or None."""
        raw = self._items.get(key)
        return None if raw is None else orjson.loads(raw)

    def get_raw(self, key: str) -> bytes | None:
        """The stored JSON of `key` (no decoding)."""
        return self._items.get(key)

    def list(self) -> list[JSON]:
        """Fresh copies of every object."""
        return [orjson.loads(raw) for raw in self._items.values()]

    def iter_items(self) -> Iterator[tuple[str, bytes]]:
        """(key, stored JSON) pairs, without decoding; safe against concurrent changes."""
        return iter(list(self._items.items()))

    def index_names(self) -> builtins.list[str]:
        return list(self._indexers)

    def by_index(self, index: str, value: str) -> builtins.list[JSON]:
        """Fresh copies of the objects indexed under `value` in `index`."""
        return [obj for key in self.index_keys(index, value) if (obj := self.get(key)) is not None]

    def index_keys(self, index: str, value: str) -> builtins.list[str]:
        """Keys of the objects indexed under `value` in `index`."""
        try:
            values = self._indices[index]
        except KeyError:
            raise KeyError(f"no index named {index!r}; indexes: {', '.join(self._indexers)}") from None
        return sorted(values.get(value, ()))

    def add_indexer(self, name: str, index: IndexFunc) -> None:
        """Add an index; existing objects are indexed at once."""
        if name in self._indexers:
            raise ValueError(f"an index named {name!r} already exists")
        self._indexers[name] = index
        self._indices[name] = {}
        for key, raw in self._items.items():
            self._index(name, key, orjson.loads(raw))

    def put(self, key: str, obj: JSON, raw: bytes | None = None) -> JSON | None:
        """Store `obj` (its JSON `raw` when the caller already has it) and return the previous object, if any."""
        # orjson leaves its doubling buffer's spare capacity in the bytes it returns (a 3.3 KB object can hold 8 KB);
        # a copy through memoryview is exact-size (bytes(b) would return b itself).
        encoded = bytes(memoryview(raw if raw is not None else orjson.dumps(obj)))
        key = sys.intern(key)  # the dict and every index set then share one string per key
        old_raw = self._items.get(key)
        old = None
        if old_raw is not None:
            old = orjson.loads(old_raw)
            self._unindex_all(key, old)
        self._items[key] = encoded
        for name in self._indexers:
            self._index(name, key, obj)
        return old

    def delete(self, key: str) -> JSON | None:
        """Remove `key` and return the object it held, if any."""
        old_raw = self._items.pop(key, None)
        if old_raw is None:
            return None
        old: JSON = orjson.loads(old_raw)
        self._unindex_all(key, old)
        return old

    def _index(self, name: str, key: str, obj: JSON) -> None:
        values = self._indices[name]
        for value in self._indexers[name](obj):
            values.setdefault(value, set()).add(key)

    def _unindex_all(self, key: str, obj: JSON) -> None:
        for name, index in self._indexers.items():
            values = self._indices[name]
            for value in index(obj):
                keys = values.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del values[value]
