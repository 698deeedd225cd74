"""A small, strict RFC 6902 applier (add, remove, replace, test) for checking the patches the webhook produces.

Independent of `kpack_webhooks.jsonpatch` on purpose: it is what checks it. Strict like the apiserver's applier: a
`remove`/`replace` of a missing member, an array index out of range or a failed `test` is an error.
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(Exception):
    pass


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"pointer {pointer!r} does not start with /")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _index(token: str, length: int, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"bad array index {token!r}")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise PatchError(f"array index {index} out of range (length {length})")
    return index


def _child(container: Any, token: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise PatchError(f"no member {token!r}")
        return container[token]
    if isinstance(container, list):
        return container[_index(token, len(container), allow_end=False)]
    raise PatchError(f"cannot descend into a {type(container).__name__}")


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def apply(document: Any, operations: list[dict[str, Any]]) -> Any:
    """`document` with `operations` applied (the input is not changed)."""
    result = copy.deepcopy(document)
    for operation in operations:
        op, tokens = operation["op"], _tokens(operation["path"])
        if not tokens:
            if op in ("add", "replace"):
                result = copy.deepcopy(operation["value"])
                continue
            if op == "test":
                if not _same(result, operation["value"]):
                    raise PatchError("test failed at the root")
                continue
            raise PatchError(f"cannot {op} the root")
        parent = result
        for token in tokens[:-1]:
            parent = _child(parent, token)
        last = tokens[-1]
        if op == "test":
            if not _same(_child(parent, last), operation["value"]):
                raise PatchError(f"test failed at {operation['path']}")
        elif isinstance(parent, dict):
            if op in ("remove", "replace") and last not in parent:
                raise PatchError(f"{op}: no member {last!r}")
            if op == "remove":
                del parent[last]
            elif op in ("add", "replace"):
                parent[last] = copy.deepcopy(operation["value"])
            else:
                raise PatchError(f"unsupported op {op!r}")
        elif isinstance(parent, list):
            if op == "add":
                parent.insert(_index(last, len(parent), allow_end=True), copy.deepcopy(operation["value"]))
            elif op == "remove":
                del parent[_index(last, len(parent), allow_end=False)]
            elif op == "replace":
                parent[_index(last, len(parent), allow_end=False)] = copy.deepcopy(operation["value"])
            else:
                raise PatchError(f"unsupported op {op!r}")
        else:
            raise PatchError(f"cannot {op} inside a {type(parent).__name__}")
    return result
