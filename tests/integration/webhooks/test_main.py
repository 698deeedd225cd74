"""`python -m kpack_webhooks --local` against envtest: in-process with the toy registry (registers itself, serves,
removes its admission configurations on stop), and as a real process stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

import pytest

from kpack_core.apis.crdgen import crd
from kpack_core.apis.kinds import KINDS
from kpack_core.envtest import ControlPlane
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, SECRETS
from kpack_webhooks.__main__ import EXIT_FAILED, EXIT_OK, parse_args, run
from kpack_webhooks.certificates import Certificates
from kpack_webhooks.handlers import KindInfo, Registry
from kpack_webhooks.registration import (
    DEFAULTING_WEBHOOK,
    MUTATING_WEBHOOK_CONFIGURATIONS,
    VALIDATING_WEBHOOK_CONFIGURATIONS,
    VALIDATION_WEBHOOK,
)
from tests.integration.webhooks.conftest import WIDGETS_V1, wait_until_served
from tests.unit.webhooks import toy

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_local_mode_registers_serves_and_cleans_up(
    client: Client, control_plane: ControlPlane, namespace: str, widget_crd: None
) -> None:
    argv = ["--local", "--port", str(free_port()), "--namespace", namespace]
    args = parse_args([*argv, "--kubeconfig", str(control_plane.kubeconfig_path)])
    stop = asyncio.Event()
    running = asyncio.create_task(run(args, registry=toy.registry(), stop=stop))
    try:
        await wait_until_served(client, namespace)
        secret = await client.get(SECRETS, "webhook-certs", namespace)
        assert Certificates.from_secret(secret) is not None
        config = await client.get(VALIDATING_WEBHOOK_CONFIGURATIONS, VALIDATION_WEBHOOK)
        assert config["webhooks"][0]["clientConfig"]["url"] == f"https://127.0.0.1:{args.port}/validate"
        created = await client.create(WIDGETS_V1, toy.widget("m", namespace=namespace, size=2))
        assert created["spec"] == {"size": 2, "color": "blue"}
    finally:
        stop.set()
        assert await asyncio.wait_for(running, 30) == EXIT_OK
    for resource, name in (
        (MUTATING_WEBHOOK_CONFIGURATIONS, DEFAULTING_WEBHOOK),
        (VALIDATING_WEBHOOK_CONFIGURATIONS, VALIDATION_WEBHOOK),
    ):
        with pytest.raises(errors.NotFoundError):
            await client.get(resource, name)


async def test_the_process_stops_gracefully_on_sigterm(
    control_plane: ControlPlane, client: Client, namespace: str
) -> None:
    for info in KINDS:  # the process serves the kpack kinds: their CRDs must exist to point conversion at it
        with contextlib.suppress(errors.AlreadyExistsError):
            await client.create(CUSTOM_RESOURCE_DEFINITIONS, crd(info))
    argv = ["--local", "--port", str(free_port()), "--namespace", namespace]
    environment = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig_path), "KPACK_LOG_FORMAT": "json"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kpack_webhooks", *argv, env=environment, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    lines: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while b"kpack webhooks serving" not in (line := await process.stderr.readline()):
                assert line, b"".join(lines).decode()
                lines.append(line)
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stderr.read(), 30)
        assert await process.wait() == 0, rest.decode()
        assert b'"event":"stopping"' in rest
        assert b"Traceback" not in b"".join(lines) + rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_missing_crd_stops_the_start_with_a_clear_error(
    control_plane: ControlPlane, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = Registry()
    missing.register(KindInfo("nope.kpack.io", "Nope", "nopes", ("v1", "v2")), toy.WidgetHandlers())
    argv = ["--local", "--port", str(free_port()), "--namespace", namespace]
    args = parse_args([*argv, "--kubeconfig", str(control_plane.kubeconfig_path)])
    assert await asyncio.wait_for(run(args, registry=missing, stop=asyncio.Event()), 60) == EXIT_FAILED
    assert "CRD nopes.nope.kpack.io is not installed: apply config/crds first" in capsys.readouterr().out
