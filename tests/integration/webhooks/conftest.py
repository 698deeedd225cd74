"""Fixtures of the webhook integration tests: the toy two-version Widget CRD, and waiting for the apiserver to call
our webhooks."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest_asyncio

from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, Resource
from tests.unit.webhooks import toy

WIDGETS_V1 = Resource(toy.GROUP, "v1", toy.PLURAL, toy.KIND)
WIDGETS_V2 = Resource(toy.GROUP, "v2", toy.PLURAL, toy.KIND)
KEEPALIVE = 1.0  # seconds: idle connections from the apiserver are closed quickly, so new handshakes happen


async def eventually(check: Any, what: str, within: float = 30.0) -> Any:
    """Retry `check()` (a coroutine function) until it returns without raising; returns its value."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await check()
        except (AssertionError, errors.ApiError, errors.TransportError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{what}: not within {within:g} s; last: {exc}") from exc
            await asyncio.sleep(0.2)


@pytest_asyncio.fixture(loop_scope="session")
async def widget_crd(client: Client) -> None:
    """The two-version Widget CRD, installed once (later tests find it installed)."""
    with contextlib.suppress(errors.AlreadyExistsError):
        await client.create(CUSTOM_RESOURCE_DEFINITIONS, toy.crd())

    async def established() -> None:
        crd = await client.get(CUSTOM_RESOURCE_DEFINITIONS, toy.INFO.crd_name)
        conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
        assert conditions.get("Established") == "True"

    await eventually(established, "the Widget CRD is established")


async def wait_until_served(client: Client, namespace: str) -> None:
    """Until the apiserver uses our webhooks: defaults applied (mutating), an invalid Widget refused (validating),
    a v1 write stored through a conversion."""
    attempt = 0

    async def served() -> None:
        nonlocal attempt
        attempt += 1
        created = await client.create(WIDGETS_V1, toy.widget(f"probe-{attempt}", namespace=namespace, size=1))
        assert created["spec"].get("color") == "blue", created
        try:
            invalid = await client.create(WIDGETS_V1, toy.widget(f"bad-probe-{attempt}", namespace=namespace, size=0))
        except errors.InvalidError as exc:
            refusal = exc.message
        else:
            await client.delete(WIDGETS_V1, invalid["metadata"]["name"], namespace)
            raise AssertionError("the validating webhook is not called yet")
        assert "is invalid" in refusal

    await eventually(served, "the apiserver calls our webhooks", within=60.0)
