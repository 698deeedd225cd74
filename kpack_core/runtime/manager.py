"""The manager: runs the shared cache, the controllers, leader election and the HTTP endpoints of one process.

Start order (controller-runtime's): metrics and health servers; informers (caches are warmed on standbys too, so a
new leader does not start cold); wait for the caches to sync (`/readyz` fails until then); acquire the Lease if
leader election is on; start the controllers. `/healthz` fails when a watch has been broken or silent too long.

Stop: the first SIGTERM/SIGINT stops new work, lets in-flight reconciles finish within the grace period, releases the
Lease (so a standby takes over in about a retry period instead of a lease duration), stops the caches and servers,
and `run()` returns 0; a second signal exits at once with 1. Losing the Lease is fatal by design: controllers are
cancelled at once, the Lease is left alone and `run()` returns 1, so two leaders never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kpack_core.runtime import metrics
from kpack_core.runtime.cache import Cache
from kpack_core.runtime.client import Client
from kpack_core.runtime.clock import REAL_CLOCK, Clock
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.events import EventRecorder
from kpack_core.runtime.healthz import Check, Checks, caches_synced, watch_health
from kpack_core.runtime.informer import InformerOptions
from kpack_core.runtime.leaderelection import LeaderElectionConfig, LeaderElector, LeadershipLost

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1


@dataclass(frozen=True)
class ManagerOptions:
    """Defaults are controller-runtime's unless noted. Addresses are `host:port`; None disables a server, port 0
    picks a free one (see `Manager.metrics_port`)."""

    metrics_bind_address: str | None = "0.0.0.0:8080"
    health_probe_bind_address: str | None = None
    leader_election: LeaderElectionConfig | None = None
    graceful_shutdown_timeout: float = 30.0
    cache_sync_timeout: float = 120.0
    watch_health_threshold: float = 180.0
    """`/healthz` fails once a watch has failed, or heard nothing (not even a bookmark or a re-open), this long.
    Ours: controller-runtime has no such check."""
    informer: InformerOptions = field(default_factory=InformerOptions)


class Manager:
    """Owns the process's cache, controllers and servers. `await run()` until stopped; it returns the exit code."""

    def __init__(self, client: Client, options: ManagerOptions | None = None, *, clock: Clock = REAL_CLOCK) -> None:
        self.client = client
        self.options = options or ManagerOptions()
        self.clock = clock
        self.cache = Cache(client, options=self.options.informer, clock=clock)
        self.controllers: list[Controller] = []
        self.healthz = Checks("healthz")
        self.readyz = Checks("readyz")
        self.healthz.add(
            "watches", watch_health(lambda: self.cache.informers, self.options.watch_health_threshold, clock)
        )
        self.readyz.add("caches", caches_synced(lambda: self.cache.informers))
        self.elector: LeaderElector | None = None
        if self.options.leader_election is not None:
            self.elector = LeaderElector(client, self.options.leader_election, clock=clock)
        self._stop = asyncio.Event()
        self._runners: list[web.AppRunner] = []
        self.metrics_port: int | None = None
        self.health_port: int | None = None
        self._signals = 0
        self._recorders: dict[str, EventRecorder] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def add_controller(self, controller: Controller) -> None:
        self.controllers.append(controller)

    def event_recorder(self, component: str) -> EventRecorder:
        """An EventRecorder for `component`, started with the manager and flushed when it stops."""
        recorder = self._recorders.get(component)
        if recorder is None:
            recorder = self._recorders[component] = EventRecorder(self.client, component, clock=self.clock)
        return recorder

    def add_healthz_check(self, name: str, check: Check) -> None:
        self.healthz.add(name, check)

    def add_readyz_check(self, name: str, check: Check) -> None:
        self.readyz.add(name, check)

    def on_shutdown(self, close: Callable[[], Awaitable[None]]) -> None:
        """Call `close` when the manager stops, after the controllers and caches (for resources the controllers
        share, such as connection pools). A failing `close` is logged; the others still run."""
        self._closers.append(close)

    def stop(self) -> None:
        """Ask `run()` to stop gracefully (what the first SIGTERM does)."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """First SIGTERM/SIGINT: graceful stop; second: exit 1 at once."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals > 1:
            log.error("second signal; exiting at once", signal=signal.Signals(signum).name)
            os._exit(EXIT_FAILED)
        log.info("signal received; shutting down gracefully", signal=signal.Signals(signum).name)
        self.stop()

    # -- running ------------------------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until `stop()` (or a signal, with `install_signal_handlers`); returns the process exit code."""
        holding: asyncio.Task[None] | None = None
        try:
            await self._start_servers()
            for recorder in self._recorders.values():
                recorder.start()
            self.cache.start()
            await self._until_stopped(self.cache.wait_for_sync(self.options.cache_sync_timeout))
            if self._stop.is_set():
                return await self._shutdown(holding)
            log.info("caches synced", informers=len(self.cache.informers))
            if self.elector is not None:
                await self._until_stopped(self.elector.acquire())
                if self._stop.is_set():
                    return await self._shutdown(holding)
                holding = asyncio.create_task(self.elector.hold(), name="leader election renew")
            for controller in self.controllers:
                controller.start()
            stopping = asyncio.create_task(self._stop.wait())
            waiting: set[asyncio.Future[object]] = {stopping}  # type: ignore[arg-type]
            if holding is not None:
                waiting.add(holding)  # type: ignore[arg-type]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if holding is not None and holding.done():
                return await self._lost(holding)
            return await self._shutdown(holding)
        except TimeoutError as exc:
            log.error("manager failed to start", error=str(exc))
            await self._shutdown(holding, release=False)
            return EXIT_FAILED

    async def _until_stopped(self, work: Awaitable[None]) -> None:
        """Run `work`, but give up on it when a stop is requested meanwhile."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
        task.result()

    async def _lost(self, holding: asyncio.Task[None]) -> int:
        exc = holding.exception()
        log.error("leader election lost; stopping at once", error=str(exc))
        # No grace: another replica may be leading already.
        await asyncio.gather(*(controller.stop(grace=0) for controller in self.controllers))
        await self._shutdown(None, release=False)
        if not isinstance(exc, LeadershipLost) and exc is not None:
            log.error("leader election failed unexpectedly", error=repr(exc))
        return EXIT_FAILED

    async def _shutdown(self, holding: asyncio.Task[None] | None, *, release: bool = True) -> int:
        grace = self.options.graceful_shutdown_timeout
        drained = all(await asyncio.gather(*(controller.stop(grace) for controller in self.controllers)))
        if holding is not None:
            holding.cancel()
            with contextlib.suppress(asyncio.CancelledError, LeadershipLost):
                await holding
        election = self.options.leader_election
        if release and self.elector is not None and self.elector.is_leader and election and election.release_on_cancel:
            await self.elector.release()
        for recorder in self._recorders.values():
            await recorder.close()
        await self.cache.stop()
        for close in self._closers:
            try:
                await close()
            except Exception as exc:  # one broken resource must not keep the others open
                log.error("closing a shared resource failed", error=repr(exc))
        await self._stop_servers()
        log.info("manager stopped", drained=drained)
        return EXIT_OK

    # -- servers ------------------------------------------------------------------------------------------------

    async def _start_servers(self) -> None:
        if self.options.metrics_bind_address:
            app = web.Application()
            app.router.add_get("/metrics", _serve_metrics)
            self.metrics_port = await self._serve(app, self.options.metrics_bind_address)
        if self.options.health_probe_bind_address:
            app = web.Application()
            app.add_routes(self.healthz.routes() + self.readyz.routes())
            self.health_port = await self._serve(app, self.options.health_probe_bind_address)

    async def _serve(self, app: web.Application, address: str) -> int:
        host, _, port = address.rpartition(":")
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host or "0.0.0.0", int(port))
        await site.start()
        self._runners.append(runner)
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else int(port)

    async def _stop_servers(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners = []


async def _serve_metrics(request: web.Request) -> web.Response:
    del request
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
