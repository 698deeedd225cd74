"""Health and readiness endpoints (served in-process by aiohttp's test server), the watch-health check on a fake
clock with informer-like fakes, and the caches-synced check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kpack_core.runtime.clock import FakeClock
from kpack_core.runtime.healthz import Check, Checks, caches_synced, watch_health
from kpack_core.runtime.informer import Informer


def passing() -> str | None:
    return None


def failing(reason: str) -> Check:
    def check() -> str | None:
        return reason

    return check


def raising() -> str | None:
    raise RuntimeError("kaput")


@pytest.fixture
async def served() -> AsyncIterator[tuple[Checks, Checks, TestClient[web.Request, web.Application]]]:
    """`/healthz` and `/readyz` checks on one in-process server; add checks before requesting."""
    healthz, readyz = Checks("healthz"), Checks("readyz")
    app = web.Application()
    app.add_routes(healthz.routes())
    app.add_routes(readyz.routes())
    async with TestClient(TestServer(app)) as client:
        yield healthz, readyz, client


Served = tuple[Checks, Checks, TestClient[web.Request, web.Application]]


async def fetch(client: TestClient[web.Request, web.Application], path: str) -> tuple[int, str]:
    response = await client.get(path)
    return response.status, await response.text()


# -- Checks over HTTP ------------------------------------------------------------------------------------------------


async def test_no_checks_is_ok(served: Served) -> None:
    _, _, client = served
    assert await fetch(client, "/healthz") == (200, "ok")
    assert await fetch(client, "/readyz") == (200, "ok")
    assert await fetch(client, "/healthz?verbose") == (200, "healthz check passed\n")


async def test_all_passing_is_ok_and_verbose_lists_them(served: Served) -> None:
    healthz, _, client = served
    healthz.add("ping", passing)
    healthz.add("informers", passing)
    assert await fetch(client, "/healthz") == (200, "ok")
    assert await fetch(client, "/healthz?verbose") == (200, "[+]ping ok\n[+]informers ok\nhealthz check passed\n")
    assert await fetch(client, "/healthz?verbose=1") == (200, "[+]ping ok\n[+]informers ok\nhealthz check passed\n")


async def test_a_failing_check_fails_the_aggregate_with_every_line(served: Served) -> None:
    healthz, _, client = served
    healthz.add("ping", passing)
    healthz.add("informers", failing("watch of pods silent for 300 s"))
    healthz.add("last", passing)
    expected = "[+]ping ok\n[-]informers failed: watch of pods silent for 300 s\n[+]last ok\nhealthz check failed\n"
    assert await fetch(client, "/healthz") == (500, expected)
    assert await fetch(client, "/healthz?verbose") == (500, expected)


async def test_exclude_skips_checks(served: Served) -> None:
    healthz, _, client = served
    healthz.add("ping", passing)
    healthz.add("broken", failing("no"))
    healthz.add("also-broken", failing("nope"))
    assert await fetch(client, "/healthz?exclude=broken") == (
        500,
        "[+]ping ok\n[-]also-broken failed: nope\nhealthz check failed\n",
    )
    assert await fetch(client, "/healthz?exclude=broken&exclude=also-broken") == (200, "ok")
    assert await fetch(client, "/healthz?exclude=broken&exclude=also-broken&verbose") == (
        200,
        "[+]ping ok\nhealthz check passed\n",
    )
    assert await fetch(client, "/healthz?exclude=ping&exclude=broken&exclude=also-broken") == (200, "ok")
    assert await fetch(client, "/healthz?exclude=unknown") == (
        500,
        "[+]ping ok\n[-]broken failed: no\n[-]also-broken failed: nope\nhealthz check failed\n",
    )


async def test_each_check_is_served_alone(served: Served) -> None:
    healthz, _, client = served
    healthz.add("ping", passing)
    healthz.add("broken", failing("because"))
    assert await fetch(client, "/healthz/ping") == (200, "ok")
    assert await fetch(client, "/healthz/broken") == (500, "[-]broken failed: because\n")
    status, text = await fetch(client, "/healthz/unknown")
    assert status == 404
    assert text == "no healthz check named 'unknown'\n"


async def test_a_raising_check_is_reported_as_failed(served: Served) -> None:
    healthz, _, client = served
    healthz.add("ping", passing)
    healthz.add("boom", raising)
    assert await fetch(client, "/healthz") == (
        500,
        "[+]ping ok\n[-]boom failed: check raised RuntimeError: kaput\nhealthz check failed\n",
    )
    assert await fetch(client, "/healthz/boom") == (500, "[-]boom failed: check raised RuntimeError: kaput\n")


async def test_endpoints_are_independent(served: Served) -> None:
    healthz, readyz, client = served
    healthz.add("ping", passing)
    readyz.add("synced", failing("caches not synced: pods"))
    assert await fetch(client, "/healthz") == (200, "ok")
    assert await fetch(client, "/readyz") == (500, "[-]synced failed: caches not synced: pods\nreadyz check failed\n")
    assert await fetch(client, "/readyz/synced") == (500, "[-]synced failed: caches not synced: pods\n")
    assert (await fetch(client, "/readyz/ping"))[0] == 404
    assert (await fetch(client, "/healthz/synced"))[0] == 404


async def test_checks_are_evaluated_on_every_request(served: Served) -> None:
    healthz, _, client = served
    state: list[str | None] = [None]
    healthz.add("flaky", lambda: state[0])
    assert await fetch(client, "/healthz") == (200, "ok")
    state[0] = "down"
    assert await fetch(client, "/healthz") == (500, "[-]flaky failed: down\nhealthz check failed\n")
    state[0] = None
    assert await fetch(client, "/healthz/flaky") == (200, "ok")


def test_a_check_name_is_unique_per_endpoint() -> None:
    checks = Checks("readyz")
    checks.add("ping", passing)
    with pytest.raises(ValueError, match="a readyz check named 'ping' already exists"):
        checks.add("ping", passing)


def test_run_returns_results_in_registration_order() -> None:
    checks = Checks("healthz")
    checks.add("b", passing)
    checks.add("a", failing("x"))
    checks.add("c", raising)
    assert checks.run() == [("b", None), ("a", "x"), ("c", "check raised RuntimeError: kaput")]
    assert checks.run(exclude=["a", "c"]) == [("b", None)]


# -- watch_health ----------------------------------------------------------------------------------------------------


@dataclass
class FakeInformer:
    """The attributes `watch_health` and `caches_synced` read."""

    name: str
    last_activity: float
    running: bool = True
    failing_since: float | None = None
    last_error: str | None = None
    has_synced: bool = True


def informers_of(fakes: list[FakeInformer]) -> Callable[[], Iterable[Informer]]:
    return lambda: cast(list[Informer], list(fakes))


async def test_watch_health_of_healthy_informers() -> None:
    clock = FakeClock()
    fakes = [FakeInformer("pods", clock.now()), FakeInformer("builds.kpack.io", clock.now())]
    check = watch_health(informers_of(fakes), threshold=60, clock=clock)
    assert check() is None
    assert watch_health(informers_of([]), threshold=60, clock=clock)() is None


async def test_watch_health_fails_for_an_informer_that_is_not_running() -> None:
    clock = FakeClock()
    fakes = [FakeInformer("pods", clock.now(), running=False, failing_since=clock.now() - 1000, last_error="x")]
    check = watch_health(informers_of(fakes), threshold=60, clock=clock)
    assert check() == "informer for pods is not running"


async def test_watch_health_fails_when_failing_beyond_the_threshold() -> None:
    clock = FakeClock()
    informer = FakeInformer("pods", clock.now())
    check = watch_health(informers_of([informer]), threshold=60, clock=clock)
    informer.failing_since = clock.now()
    informer.last_error = "TransportError: connection refused"
    await clock.advance(30)
    informer.last_activity = clock.now()  # e.g. a list page arrived, yet the watch keeps failing
    await clock.advance(30)
    assert check() is None  # exactly at the threshold: not yet
    await clock.advance(1)
    assert check() == "list/watch of pods failing for 61 s: TransportError: connection refused"
    informer.failing_since = None  # recovered
    informer.last_activity = clock.now()
    assert check() is None


async def test_watch_health_reports_failing_before_silent() -> None:
    clock = FakeClock()
    informer = FakeInformer("pods", clock.now(), failing_since=clock.now(), last_error="GoneError: too old")
    check = watch_health(informers_of([informer]), threshold=10, clock=clock)
    await clock.advance(100)
    assert check() == "list/watch of pods failing for 100 s: GoneError: too old"


async def test_watch_health_fails_when_silent_beyond_the_threshold() -> None:
    clock = FakeClock()
    informer = FakeInformer("pods", clock.now())
    check = watch_health(informers_of([informer]), threshold=60, clock=clock)
    await clock.advance(60)
    assert check() is None
    await clock.advance(1)
    assert check() == "watch of pods silent for 61 s"
    informer.last_activity = clock.now()  # a bookmark arrived
    assert check() is None


async def test_watch_health_lists_every_problem_and_reads_the_informers_each_time() -> None:
    clock = FakeClock()
    fakes = [FakeInformer("pods", clock.now())]
    check = watch_health(informers_of(fakes), threshold=60, clock=clock)
    await clock.advance(90)
    fakes[0].last_activity = clock.now()
    assert check() is None
    fakes.append(FakeInformer("builds.kpack.io", clock.now() - 120))
    fakes.append(FakeInformer("images.kpack.io", clock.now(), running=False))
    fakes.append(FakeInformer("secrets", clock.now(), failing_since=clock.now() - 75, last_error="boom"))
    assert check() == (
        "watch of builds.kpack.io silent for 120 s; informer for images.kpack.io is not running; "
        "list/watch of secrets failing for 75 s: boom"
    )


async def test_watch_health_served_as_a_check(served: Served) -> None:
    healthz, _, client = served
    clock = FakeClock()
    informer = FakeInformer("pods", clock.now())
    healthz.add("informers", watch_health(informers_of([informer]), threshold=60, clock=clock))
    assert await fetch(client, "/healthz") == (200, "ok")
    await clock.advance(120)
    assert await fetch(client, "/healthz") == (
        500,
        "[-]informers failed: watch of pods silent for 120 s\nhealthz check failed\n",
    )


# -- caches_synced ---------------------------------------------------------------------------------------------------


def test_caches_synced() -> None:
    fakes = [
        FakeInformer("pods", 0.0, has_synced=False),
        FakeInformer("builds.kpack.io", 0.0),
        FakeInformer("images.kpack.io", 0.0, has_synced=False),
    ]
    check = caches_synced(informers_of(fakes))
    assert check() == "caches not synced: pods, images.kpack.io"
    fakes[0].has_synced = True
    assert check() == "caches not synced: images.kpack.io"
    fakes[2].has_synced = True
    assert check() is None
    assert caches_synced(informers_of([]))() is None
