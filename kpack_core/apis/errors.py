"""Field errors: what is wrong, and where, in the shape knative's `apis.FieldError` gives kpack users.

Every check appends to a list instead of stopping, so one response names every violation; paths are dotted from
the object root (`spec.cache.registry.tag`), list elements indexed (`spec.tags[2]`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldError:
    """One violation: `path` names the field, `message` what is wrong, `details` optional context."""

    path: str
    message: str
    details: str = ""

    def __str__(self) -> str:
        text = f"{self.message}: {self.path}" if self.path else self.message
        return f"{text}\n{self.details}" if self.details else text


def missing(path: str) -> FieldError:
    return FieldError(path, "missing field(s)")


def invalid(path: str, value: object) -> FieldError:
    return FieldError(path, f"invalid value: {value}")


def immutable(path: str, old: object, new: object) -> FieldError:
    return FieldError(path, "Immutable field changed", f"got: {new}, want: {old}")


def join(path: str, child: str) -> str:
    """`join("spec", "cache")` = "spec.cache"; `join("spec.tags", "[2]")` = "spec.tags[2]"."""
    if not path:
        return child
    return f"{path}{child}" if child.startswith("[") else f"{path}.{child}"


def describe(errors: Iterable[FieldError]) -> str:
    """All errors, one per line, in a stable order."""
    return "\n".join(sorted(str(e) for e in errors))


def from_pydantic(error: ValidationError, prefix: str = "") -> list[FieldError]:
    """Field errors for what pydantic refused (wrong types, unknown fields), with JSON paths."""
    found = []
    for item in error.errors():
        path = prefix
        for part in item["loc"]:
            path = join(path, f"[{part}]" if isinstance(part, int) else str(part))
        if item["type"] == "extra_forbidden":
            found.append(FieldError(path, "unknown field"))
        elif item["type"] == "missing":
            found.append(FieldError(path, "missing field(s)"))
        else:
            found.append(FieldError(path, f"invalid value: {item['msg']}"))
    return found


class ValidationFailed(Exception):
    """An object violated the API: carries every `FieldError`."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(describe(errors))
        self.errors = errors
