"""A controller: one reconciler, one workqueue, N workers, and the watches that feed the queue.

Outcomes of a reconcile follow controller-runtime exactly (and are counted in the same metrics):

| outcome                     | queue                          | reconcile_total{result} | other counters          |
|-----------------------------|--------------------------------|-------------------------|-------------------------|
| exception                   | `add_rate_limited` (backoff)   | error                   | reconcile_errors_total  |
| `TerminalError`             | dropped (`forget`)             | error                   | + terminal_reconcile_…  |
| per-reconcile timeout       | `add_rate_limited`             | error                   | + reconcile_timeouts_…  |
| `Result(requeue_after=d>0)` | `forget`, then `add_after(d)`  | requeue_after           |                         |
| `Result()`                  | `forget`                       | success                 |                         |

Exceptions are logged with their traceback, except API and transport errors and `ReportedError`s (failures the
reconciler already reported in a status): their message says it all. An exception never ends a worker. A key is
never reconciled by two workers at once (the queue guarantees it), and a key changed while being reconciled is
reconciled again afterwards, once. Python has no panics, so `controller_runtime_reconcile_panics_total` exists (for
dashboards) but stays 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable

import structlog

from kpack_core.runtime import errors, metrics
from kpack_core.runtime.clock import REAL_CLOCK, Clock
from kpack_core.runtime.handler import Mapper, QueueingHandler, for_object, for_owner, from_map
from kpack_core.runtime.informer import Informer
from kpack_core.runtime.log import bind_reconcile
from kpack_core.runtime.predicate import Predicate
from kpack_core.runtime.ratelimiter import RateLimiter
from kpack_core.runtime.reconcile import Reconciler, ReportedError, Request, Result, TerminalError
from kpack_core.runtime.resource import Resource
from kpack_core.runtime.store import JSON
from kpack_core.runtime.workqueue import ShutDown, WorkQueue

log = structlog.get_logger(__name__)


class Controller:
    """Reconciles the keys its watches enqueue with `max_concurrent_reconciles` workers.

    Set it up with `watch`/`watch_for`/`watch_owned`/`watch_mapped` before `start()`; `await stop()` stops taking
    new keys and lets in-flight reconciles finish.
    """

    def __init__(
        self,
        name: str,
        reconciler: Reconciler,
        *,
        max_concurrent_reconciles: int = 1,
        rate_limiter: RateLimiter | None = None,
        reconcile_timeout: float | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        if max_concurrent_reconciles < 1:
            raise ValueError(f"controller {name}: max_concurrent_reconciles must be >= 1")
        self.name = name
        self.reconciler = reconciler
        self.max_concurrent_reconciles = max_concurrent_reconciles
        self.reconcile_timeout = reconcile_timeout
        self.clock = clock
        self.queue: WorkQueue[Request] = WorkQueue(name, rate_limiter=rate_limiter, clock=clock)
        self.informers: list[Informer] = []
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._reconcile_total = {
            result: metrics.RECONCILE_TOTAL.labels(controller=name, result=result)
            for result in metrics.RECONCILE_RESULTS
        }
        self._errors = metrics.RECONCILE_ERRORS.labels(controller=name)
        self._terminal = metrics.TERMINAL_RECONCILE_ERRORS.labels(controller=name)
        self._timeouts = metrics.RECONCILE_TIMEOUTS.labels(controller=name)
        self._time = metrics.RECONCILE_TIME.labels(controller=name)
        self._active = metrics.ACTIVE_WORKERS.labels(controller=name)

    # -- watches ------------------------------------------------------------------------------------------------

    def watch(self, informer: Informer, mapper: Mapper, *predicates: Predicate) -> None:
        """Enqueue what `mapper` makes of the informer's events that pass every predicate."""
        informer.add_handler(QueueingHandler(self.queue, mapper, predicates))
        if informer not in self.informers:
            self.informers.append(informer)

    def watch_for(self, informer: Informer, *predicates: Predicate) -> None:
        """The primary kind: each object enqueues itself."""
        self.watch(informer, for_object(), *predicates)

    def watch_owned(self, informer: Informer, owner: Resource, *predicates: Predicate) -> None:
        """An owned kind: each object enqueues its controller owner of kind `owner`."""
        self.watch(informer, for_owner(owner.group, owner.kind, owner_namespaced=owner.namespaced), *predicates)

    def watch_mapped(self, informer: Informer, fn: Callable[[JSON], Iterable[Request]], *predicates: Predicate) -> None:
        """Any kind, through a function from the changed object to the requests it affects."""
        self.watch(informer, from_map(fn), *predicates)

    # -- running ------------------------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(self._workers)

    async def wait_for_sync(self, within: float = 120.0) -> None:
        """Wait until every watched informer has synced (controller-runtime's CacheSyncTimeout, 2 minutes)."""
        await asyncio.gather(*(informer.wait_for_sync(within) for informer in self.informers))

    def start(self) -> None:
        """Start the workers on the running loop (after the caches synced: see `Manager`)."""
        if self._workers:
            return
        metrics.initialise_controller_metrics(self.name, self.max_concurrent_reconciles)
        self._workers = [
            asyncio.create_task(self._worker(), name=f"controller {self.name} worker {i}")
            for i in range(self.max_concurrent_reconciles)
        ]
        log.info("controller started", controller=self.name, workers=self.max_concurrent_reconciles)

    async def stop(self, grace: float = 30.0) -> bool:
        """Stop taking new keys, wait up to `grace` seconds for in-flight reconciles, then cancel the rest.

        Returns True when everything in flight finished within the grace period.
        """
        self._stopping = True
        self.queue.shutdown()
        finished = True
        if self._workers:
            done, pending = await asyncio.wait(self._workers, timeout=grace)
            finished = not pending
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            del done
        self._workers = []
        log.info("controller stopped", controller=self.name, drained=finished)
        return finished

    async def _worker(self) -> None:
        queue = self.queue
        while not self._stopping:
            try:
                request = await queue.get()
            except ShutDown:
                return
            if self._stopping:
                queue.done(request)
                return
            self._active.inc()
            try:
                await self.reconcile_handler(request)
            finally:
                queue.done(request)
                self._active.dec()

    async def reconcile_handler(self, request: Request) -> None:
        """Reconcile one key and act on the outcome (table in the module docstring)."""
        started = self.clock.now()
        reconcile_id = str(uuid.uuid4())
        with bind_reconcile(self.name, request.namespace or "", request.name, reconcile_id):
            deadline = asyncio.timeout(self.reconcile_timeout)
            try:
                async with deadline:
                    result = await self.reconciler.reconcile(request)
            except asyncio.CancelledError as exc:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the worker itself is being cancelled (stop after the grace period)
                # A cancellation from inside the reconcile (a shared task someone cancelled) is its failure.
                self._failed(request, exc)
            except TerminalError as exc:
                self._count_error()
                self._terminal.inc()
                self.queue.forget(request)
                log.error("reconcile failed permanently; not requeued", error=str(exc))
            except Exception as exc:
                if isinstance(exc, TimeoutError) and deadline.expired():
                    self._count_error()
                    self._timeouts.inc()
                    self.queue.add_rate_limited(request)
                    log.error("reconcile timed out; requeued with backoff", timeout=self.reconcile_timeout)
                else:
                    self._failed(request, exc)
            else:
                self._settle(request, result)
            finally:
                self._time.observe(self.clock.now() - started)

    def _failed(self, request: Request, exc: BaseException) -> None:
        self._count_error()
        self.queue.add_rate_limited(request)
        log.error(
            "reconcile failed; requeued with backoff",
            error=f"{type(exc).__name__}: {exc}",
            requeues=self.queue.num_requeues(request),
            exc_info=not isinstance(
                exc, errors.ApiError | errors.TransportError | ReportedError | asyncio.CancelledError
            ),
        )

    def _count_error(self) -> None:
        self._reconcile_total["error"].inc()
        self._errors.inc()

    def _settle(self, request: Request, result: Result | None) -> None:
        self.queue.forget(request)
        if result is not None and result.requeue_after > 0:
            self._reconcile_total["requeue_after"].inc()
            self.queue.add_after(request, result.requeue_after)
        else:
            self._reconcile_total["success"].inc()
