"""Typed registry errors: callers act on the type (not found, unauthorized, denied), users read the reference.

A registry answers failures with `{"errors": [{"code", "message", "detail"}]}` (formats.md §2.7), or with a body
that is not JSON at all. `error_from_response` maps status and codes to one of the classes below; every message
starts with the reference (or repository) that was being accessed, so a status condition says what failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of a registry's `errors[]` list."""

    code: str
    message: str
    detail: Any = None


class InvalidReferenceError(ValueError):
    """An image reference or digest that does not parse; `reference` is the text as given."""

    def __init__(self, reference: str, problem: str) -> None:
        super().__init__(f"invalid image reference {reference!r}: {problem}")
        self.reference = reference
        self.problem = problem


class RegistryError(Exception):
    """A registry operation failed. `reference` names what was accessed; `status` is the HTTP status (0 for a
    failure without an answer); `errors` the parsed `errors[]` of the body."""

    def __init__(self, reference: str, message: str, *, status: int = 0, errors: tuple[ErrorDetail, ...] = ()) -> None:
        super().__init__(f"{reference}: {message}")
        self.reference = reference
        self.status = status
        self.errors = errors

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(error.code for error in self.errors)


class UnauthorizedError(RegistryError):
    """401: no credentials, wrong credentials, or a token the registry refused."""


class DeniedError(RegistryError):
    """403 or `DENIED`: authenticated, but not allowed to do this."""


class NotFoundError(RegistryError):
    """404: the repository, manifest or blob does not exist."""


class ManifestUnknownError(NotFoundError):
    """`MANIFEST_UNKNOWN`: no manifest at this tag or digest."""


class BlobUnknownError(NotFoundError):
    """`BLOB_UNKNOWN` (or `MANIFEST_BLOB_UNKNOWN` on a manifest PUT): a referenced blob is missing."""


class NameUnknownError(NotFoundError):
    """`NAME_UNKNOWN`: the repository does not exist."""


class DigestMismatchError(RegistryError):
    """The bytes received do not hash to the digest that was asked for or announced."""


class TransientError(RegistryError):
    """5xx, 429 or a lost connection that outlasted the retries."""


_BY_CODE: dict[str, type[RegistryError]] = {
    "MANIFEST_UNKNOWN": ManifestUnknownError,
    "BLOB_UNKNOWN": BlobUnknownError,
    "MANIFEST_BLOB_UNKNOWN": BlobUnknownError,
    "NAME_UNKNOWN": NameUnknownError,
    "UNAUTHORIZED": UnauthorizedError,
    "DENIED": DeniedError,
}
_BY_STATUS: dict[int, type[RegistryError]] = {401: UnauthorizedError, 403: DeniedError, 404: NotFoundError}


def parse_error_body(body: bytes) -> tuple[ErrorDetail, ...]:
    """The `errors[]` of a registry error body; empty when the body is not the documented JSON."""
    try:
        decoded = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return ()
    entries = decoded.get("errors") if isinstance(decoded, dict) else None
    if not isinstance(entries, list):
        return ()
    return tuple(
        ErrorDetail(str(entry.get("code", "")), str(entry.get("message", "")), entry.get("detail"))
        for entry in entries
        if isinstance(entry, dict)
    )


def error_from_response(
    reference: str, operation: str, status: int, body: bytes, *, not_found: type[RegistryError] | None = None
) -> RegistryError:
    """The typed error for a failed answer. The first known code wins, then the status; `not_found` refines a bare
    404 (a HEAD has no body, so a manifest HEAD passes `ManifestUnknownError`)."""
    errors = parse_error_body(body)
    cls: type[RegistryError] = RegistryError
    for error in errors:
        if error.code in _BY_CODE:
            cls = _BY_CODE[error.code]
            break
    else:
        cls = (not_found if status == 404 and not_found else None) or _BY_STATUS.get(status, RegistryError)
    if errors:
        detail = "; ".join(f"{e.code}: {e.message}" if e.message else e.code for e in errors)
    else:
        text = body[:200].decode("utf-8", "replace").strip()
        detail = text or "no details"
    return cls(reference, f"{operation} failed with HTTP {status}: {detail}", status=status, errors=errors)
