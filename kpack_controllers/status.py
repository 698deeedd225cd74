"""Status writing shared by every reconciler: knative-style conditions and "write only what changed".

`condition()` builds a condition and keeps its `lastTransitionTime` when its status did not change (so a
reconcile that finds nothing new writes nothing); `write_status()` PUTs the status subresource only when the new
status differs from the stored one. A conflict (409) raises, and the reconcile is retried on fresh state.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any

from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import Resource

JSON = dict[str, Any]

READY = "Ready"


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str,
    status: bool | None,
    *,
    previous: Iterable[JSON] | None = None,
    reason: str | None = None,
    message: str | None = None,
    now: Callable[[], datetime.datetime] = utc_now,
) -> JSON:
    """A condition of `type_` (`status` None means Unknown). Its transition time is the previous condition's when
    the status is unchanged, else now."""
    text = "Unknown" if status is None else "True" if status else "False"
    built: JSON = {"type": type_, "status": text}
    before = next((c for c in previous or () if c.get("type") == type_), None)
    if before is not None and before.get("status") == text and before.get("lastTransitionTime"):
        built["lastTransitionTime"] = before["lastTransitionTime"]
    else:
        built["lastTransitionTime"] = _timestamp(now())
    if reason:
        built["reason"] = reason
    if message:
        built["message"] = message
    return built


def ready(obj: JSON) -> bool:
    """Whether the object's `Ready` condition is True."""
    return condition_status(obj, READY) == "True"


def condition_status(obj: JSON, type_: str) -> str | None:
    for found in (obj.get("status") or {}).get("conditions") or ():
        if found.get("type") == type_:
            status = found.get("status")
            return status if isinstance(status, str) else None
    return None


def previous_conditions(obj: JSON) -> list[JSON]:
    conditions = (obj.get("status") or {}).get("conditions")
    return list(conditions) if isinstance(conditions, list) else []


async def write_status(client: Client, resource: Resource, obj: JSON, status: JSON) -> bool:
    """PUT `status` on `obj` (as read, with its resourceVersion) unless it equals the stored status; True when
    written."""
    if obj.get("status") == status:
        return False
    await client.update_status(resource, {**obj, "status": status})
    return True
