"""The client's retry policy against a scripted HTTP server: which failures are retried, how long it waits, and
what reaches the caller. (A scripted server, not a Kubernetes mock: only the HTTP status logic is under test.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from aiohttp import web
from kubernetes_asyncio import client as k8s_client

from kpack_core.envtest.ports import free_ports
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client, RetryPolicy
from kpack_core.runtime.resource import CONFIGMAPS

Script = list[Callable[[], web.Response]]

FAST = RetryPolicy(attempts=4, total=10.0, initial_backoff=0.01, max_backoff=0.02, max_retry_after=1.0)


def status(code: int, reason: str = "", headers: dict[str, str] | None = None) -> Callable[[], web.Response]:
    body = {"kind": "Status", "status": "Failure", "reason": reason, "code": code, "message": reason}
    return lambda: web.json_response(body, status=code, headers=headers)


def ok() -> web.Response:
    return web.json_response({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}})


class ScriptedServer:
    def __init__(self) -> None:
        self.script: Script = []
        self.calls: list[float] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(time.monotonic())
        return self.script.pop(0)() if self.script else ok()


@pytest_asyncio.fixture(loop_scope="session")
async def server() -> AsyncIterator[tuple[ScriptedServer, str]]:
    scripted = ScriptedServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    (port,) = free_ports(1)
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield scripted, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def make_client(url: str, policy: RetryPolicy = FAST) -> Client:
    configuration = k8s_client.Configuration(host=url)
    return Client(k8s_client.ApiClient(configuration), retry=policy)


async def consume(client: Client, seen: list[str], inactivity_timeout: float = 70.0) -> None:
    async with client.watch(CONFIGMAPS, "ns", resource_version="5", inactivity_timeout=inactivity_timeout) as events:
        async for event in events:
            seen.append(event.type)


@pytest.mark.parametrize("code", [500, 502, 503, 504])
async def test_server_errors_are_retried(server: tuple[ScriptedServer, str], code: int) -> None:
    scripted, url = server
    scripted.script = [status(code), status(code)]
    async with make_client(url) as client:
        assert (await client.get(CONFIGMAPS, "a", "ns"))["metadata"]["name"] == "a"
    assert len(scripted.calls) == 3


async def test_too_many_requests_waits_retry_after(server: tuple[ScriptedServer, str]) -> None:
    scripted, url = server
    scripted.script = [status(429, "TooManyRequests", {"Retry-After": "1"})]
    async with make_client(url) as client:
        await client.get(CONFIGMAPS, "a", "ns")
    assert len(scripted.calls) == 2
    assert scripted.calls[1] - scripted.calls[0] >= 0.95


async def test_retries_are_bounded_and_the_last_error_is_typed(server: tuple[ScriptedServer, str]) -> None:
    scripted, url = server
    scripted.script = [status(503, "ServiceUnavailable")] * 10
    async with make_client(url) as client:
        with pytest.raises(errors.ServerError, match="ConfigMap ns/a: 503 ServiceUnavailable"):
            await client.get(CONFIGMAPS, "a", "ns")
    assert len(scripted.calls) == FAST.attempts


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [
        (400, "BadRequest", errors.BadRequestError),
        (403, "Forbidden", errors.ForbiddenError),
        (404, "NotFound", errors.NotFoundError),
        (409, "Conflict", errors.ConflictError),
        (409, "AlreadyExists", errors.AlreadyExistsError),
        (410, "Expired", errors.GoneError),
        (422, "Invalid", errors.InvalidError),
    ],
)
async def test_client_errors_are_not_retried(
    server: tuple[ScriptedServer, str], code: int, reason: str, error: type[errors.ApiError]
) -> None:
    scripted, url = server
    scripted.script = [status(code, reason)]
    async with make_client(url) as client:
        with pytest.raises(error) as caught:
            await client.get(CONFIGMAPS, "a", "ns")
    assert caught.value.status == code
    assert caught.value.reason == reason
    assert len(scripted.calls) == 1


async def test_no_answer_becomes_a_transport_error_after_the_retries() -> None:
    (port,) = free_ports(1)  # nothing listens here
    async with make_client(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(errors.TransportError, match="ConfigMap ns/a"):
            await client.get(CONFIGMAPS, "a", "ns")


async def test_non_json_error_body_is_kept_in_the_message(server: tuple[ScriptedServer, str]) -> None:
    scripted, url = server
    scripted.script = [lambda: web.Response(status=404, text="no such route\n")]
    async with make_client(url) as client:
        with pytest.raises(errors.NotFoundError, match="no such route"):
            await client.get(CONFIGMAPS, "a", "ns")


async def test_watch_open_is_not_retried(server: tuple[ScriptedServer, str]) -> None:
    scripted, url = server
    scripted.script = [status(503, "ServiceUnavailable")]
    async with make_client(url) as client:
        with pytest.raises(errors.ServerError, match="503"):
            await consume(client, [])
    assert len(scripted.calls) == 1


async def test_watch_error_events_are_typed(server: tuple[ScriptedServer, str]) -> None:
    scripted, url = server
    gone = b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}\n'
    scripted.script = [lambda: web.Response(body=gone, content_type="application/json")]
    async with make_client(url) as client:
        with pytest.raises(errors.GoneError, match="too old"):
            await consume(client, [])


async def test_silent_watch_is_noticed() -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}\n')
        await asyncio.sleep(5)  # then nothing, like a connection a load balancer silently dropped
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    (port,) = free_ports(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    seen: list[str] = []
    try:
        async with make_client(f"http://127.0.0.1:{port}") as client:
            with pytest.raises(errors.WatchStalledError, match=r"nothing for 0\.3 s"):
                await consume(client, seen, inactivity_timeout=0.3)
    finally:
        await runner.cleanup()
    assert seen == ["BOOKMARK"]
