"""RFC 6902 JSON Patch from one JSON document to another: what the defaulting webhook sends back to the apiserver.

`diff(a, b)` returns operations that turn `a` into `b` exactly. Objects are compared member by member (removed
members are `remove`d, new ones `add`ed, changed ones diffed further); arrays index by index over their common
length, then surplus elements are removed from the end backwards (so earlier indexes stay valid) or new ones are
appended. That is not the shortest patch for an insertion at the front of an array, but it is always correct, and
defaulting mostly adds members, for which it is minimal. Values are compared strictly by JSON type: Python's
`True == 1 == 1.0` must not hide a change from `true` to `1`.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def escape(key: str) -> str:
    """A member name as one JSON Pointer reference token (RFC 6901): `~` → `~0`, then `/` → `~1`."""
    return key.replace("~", "~0").replace("/", "~1")


def same(a: Any, b: Any) -> bool:
    """JSON equality: same type all the way down (`true` is not `1`, `1` is not `1.0`), object member order ignored."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(key in b and same(value, b[key]) for key, value in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def diff(source: Any, target: Any) -> list[JSON]:
    """RFC 6902 operations that turn `source` into `target` (both JSON values: dicts with str keys, lists, str,
    int, float, bool, None). Empty when they are the same."""
    operations: list[JSON] = []
    _diff(source, target, "", operations)
    return operations


def _diff(source: Any, target: Any, path: str, operations: list[JSON]) -> None:
    if isinstance(source, dict) and isinstance(target, dict):
        for key, value in source.items():
            child = f"{path}/{escape(key)}"
            if key in target:
                _diff(value, target[key], child, operations)
            else:
                operations.append({"op": "remove", "path": child})
        for key, value in target.items():
            if key not in source:
                operations.append({"op": "add", "path": f"{path}/{escape(key)}", "value": value})
    elif isinstance(source, list) and isinstance(target, list):
        common = min(len(source), len(target))
        for index in range(common):
            _diff(source[index], target[index], f"{path}/{index}", operations)
        # From the end backwards: each removal leaves the indexes of the ones still to come unchanged.
        for index in range(len(source) - 1, common - 1, -1):
            operations.append({"op": "remove", "path": f"{path}/{index}"})
        for index in range(common, len(target)):
            operations.append({"op": "add", "path": f"{path}/{index}", "value": target[index]})
    elif not same(source, target):
        operations.append({"op": "replace", "path": path, "value": target})
