"""What a reconciler is: `Request` in, `Result` out (controller-runtime's `reconcile` package).

A `Request` carries only namespace and name — never the event or the object — so reconcilers read the current
state and converge (level-triggered), whatever happened in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Request:
    """The object to reconcile: `namespace` is None for cluster-scoped kinds."""

    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Result:
    """What to do after a successful reconcile.

    `requeue_after` > 0 reconciles the object again after that many seconds (and resets its error backoff);
    0 means done until something changes. There is deliberately no `requeue=True`: in controller-runtime it means
    "requeue with the error backoff, which never resets" and is deprecated for surprising everyone; raise an
    exception to retry with backoff, or give a delay.
    """

    requeue_after: float = 0.0


class TerminalError(Exception):
    """A failure retrying cannot fix (invalid spec, missing referenced object the user must create): logged,
    counted, and not requeued. The object is reconciled again when it (or something mapped to it) changes."""


class ReportedError(Exception):
    """An expected failure the reconciler already reported where users look (a status condition, an Event):
    retried with backoff like any exception, and logged with its message only. A traceback is for the unexpected;
    one per retry of a missing image or a denied push would bury the failures that need one."""


class Reconciler(Protocol):
    """Converges the world towards one object's desired state. Idempotent; raises to retry with backoff."""

    async def reconcile(self, request: Request) -> Result: ...
