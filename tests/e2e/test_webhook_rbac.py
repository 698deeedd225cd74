"""The webhook as deployed: config/crds and config/webhook applied with kubectl on a control plane of its own, then
`python -m kpack_webhooks` (in-cluster mode, not --local) run as the `kpack/webhook` service account with only the
RBAC of config/webhook/webhook.yaml. It must create its certificate Secret and write the CA bundle into every kpack
CRD and both webhook configurations; without its ClusterRoleBinding it must fail to start, saying what was refused.

A control plane of its own, because the applied webhook configurations point at a Service nothing serves in envtest
(every kpack write would fail while they exist) and the CRDs' CA bundles are rewritten.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from kpack_core.envtest import ControlPlane
from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, SECRETS
from kpack_webhooks.certificates import Certificates
from kpack_webhooks.registration import (
    DEFAULTING_WEBHOOK,
    MUTATING_WEBHOOK_CONFIGURATIONS,
    VALIDATING_WEBHOOK_CONFIGURATIONS,
    VALIDATION_WEBHOOK,
)
from tests.integration.kubectl import kubectl

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest_asyncio.fixture(loop_scope="session")
async def deployed(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(tmp_path / "plane") as plane:
        await kubectl(plane, "apply", "-f", str(ROOT / "config" / "crds"))
        await kubectl(plane, "apply", "-f", str(ROOT / "config" / "webhook"))
        yield plane


async def start_webhook(plane: ControlPlane, tmp_path: Path, port: int, *extra: str) -> asyncio.subprocess.Process:
    kubeconfig = await plane.kubeconfig_for_service_account("kpack", "webhook", path=tmp_path / "webhook.kubeconfig")
    environment = {**os.environ, "KPACK_LOG_FORMAT": "json", "POD_NAMESPACE": "kpack"}
    environment.pop("KUBECONFIG", None)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kpack_webhooks", "--kubeconfig", str(kubeconfig), "--port", str(port),
        "--metrics-port", "0", "--rotation-delay", "0", *extra,
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip


async def healthy(port: int, ca_pem: bytes, process: asyncio.subprocess.Process) -> None:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            assert process.returncode is None, "the webhook exited during start-up"
            try:
                # The certificate names the Service; connect to loopback while checking that name.
                url = f"https://127.0.0.1:{port}/readyz"
                async with session.get(url, ssl=context, server_hostname="kpack-webhook.kpack.svc") as answer:
                    if answer.status == 200:
                        return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the webhook did not become ready")


async def test_the_webhook_runs_with_its_deployed_rbac(deployed: ControlPlane, tmp_path: Path) -> None:
    port = free_port()
    process = await start_webhook(deployed, tmp_path, port)
    try:
        admin = await Client.from_kubeconfig(str(deployed.kubeconfig_path))
        try:
            secret = None
            for _ in range(300):
                if process.returncode is not None:
                    break
                try:
                    secret = await admin.get(SECRETS, "webhook-certs", "kpack")
                    if Certificates.from_secret(secret) is not None:
                        break
                except Exception:
                    pass
                await asyncio.sleep(0.1)
            assert secret is not None, "the webhook did not create its certificate Secret"
            certificates = Certificates.from_secret(secret)
            assert certificates is not None
            await healthy(port, certificates.bundle, process)

            crds = (await admin.list(CUSTOM_RESOURCE_DEFINITIONS)).items
            kpack_crds = [c for c in crds if c["spec"]["group"] == "kpack.io"]
            assert len(kpack_crds) == 7
            for crd in kpack_crds:
                config = crd["spec"]["conversion"]["webhook"]["clientConfig"]
                assert base64.b64decode(config["caBundle"]) == certificates.bundle, crd["metadata"]["name"]
            for resource, name in (
                (MUTATING_WEBHOOK_CONFIGURATIONS, DEFAULTING_WEBHOOK),
                (VALIDATING_WEBHOOK_CONFIGURATIONS, VALIDATION_WEBHOOK),
            ):
                config = (await admin.get(resource, name))["webhooks"][0]["clientConfig"]
                assert base64.b64decode(config["caBundle"]) == certificates.bundle, name
        finally:
            await admin.close()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()[-3000:]
    assert b"forbidden" not in output.lower(), output.decode()[-3000:]


async def test_without_its_cluster_role_the_webhook_refuses_to_start(deployed: ControlPlane, tmp_path: Path) -> None:
    await kubectl(deployed, "delete", "clusterrolebinding", "kpack-webhook")
    process = await start_webhook(deployed, tmp_path, free_port(), "--start-timeout", "5")
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        raise AssertionError("still running after 60 s:\n" + output.decode()[-3000:]) from None
    assert process.returncode == 1, output.decode()[-3000:]
    text = output.decode()
    assert "failed to start" in text
    assert 'cannot list resource \\"storageclasses\\"' in text, text[-3000:]
