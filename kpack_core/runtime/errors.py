"""Typed errors of the API client: callers catch what they can act on (not found, conflict, gone) by type.

Every error carries the HTTP status, the apiserver's `reason` and `message`, and what was being accessed, so a log
line or a status condition can say exactly which object failed and why.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """The apiserver answered with a non-2xx status (a `Status` object, usually)."""

    def __init__(self, status: int, reason: str, message: str, target: str, retry_after: float | None = None) -> None:
        super().__init__(f"{target}: {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.target = target
        self.retry_after = retry_after


class BadRequestError(ApiError):
    """400: the request itself is malformed."""


class UnauthorizedError(ApiError):
    """401: no or bad credentials."""


class ForbiddenError(ApiError):
    """403: RBAC (or admission) refused the request."""


class NotFoundError(ApiError):
    """404: the object (or its kind) does not exist."""


class ConflictError(ApiError):
    """409 Conflict: the object changed since it was read (resourceVersion mismatch); re-read and retry."""


class AlreadyExistsError(ApiError):
    """409 AlreadyExists: a create named an object that exists."""


class GoneError(ApiError):
    """410 Gone / Expired: the resourceVersion is older than etcd keeps; a watcher must relist."""


class InvalidError(ApiError):
    """422: the object failed validation; `message` names the fields."""


class TooManyRequestsError(ApiError):
    """429: the apiserver is throttling; `retry_after` says how long to wait."""


class ServerError(ApiError):
    """5xx: the apiserver (or something in front of it) failed."""


class TransportError(Exception):
    """No HTTP answer at all (connection refused or reset, timeout) after the retries ran out."""


class WatchStalledError(Exception):
    """A watch stream delivered nothing (not even a bookmark) for longer than its inactivity timeout."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    410: GoneError,
    422: InvalidError,
    429: TooManyRequestsError,
}


def api_error(status: int, body: Any, target: str, retry_after: float | None = None) -> ApiError:
    """The typed error for a status code and the decoded response body (a `Status` object or anything else)."""
    reason, message = "", ""
    if isinstance(body, dict):
        reason = str(body.get("reason", ""))
        message = str(body.get("message", ""))
    elif isinstance(body, str | bytes):
        message = body.decode(errors="replace") if isinstance(body, bytes) else body
        message = message.strip()[:500]
    cls: type[ApiError]
    if status == 409:
        cls = AlreadyExistsError if reason == "AlreadyExists" else ConflictError
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, ApiError)
    return cls(status, reason, message, target, retry_after)
