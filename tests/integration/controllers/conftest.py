"""Shared fixtures and helpers of the controller integration tests (envtest control plane + real registries).

Fixtures:

- `kpack_crds`: the kpack CRDs of `config/crds/`, installed in the session control plane (once; later tests find
  them) and served at v1alpha2. Without the webhook running, CRDs with Webhook conversion still accept and serve
  v1alpha2 (the storage version): write v1alpha2 objects. Use it with `pytest.mark.usefixtures("kpack_crds")`.
- `registry_options`: `RegistryOptions` trusting the envtest CA (every session registry's certificate comes from
  it) with short registry retries, so a failure shows in a status within seconds.
- `registry_client_factory`: `keychain -> RegistryClient` with `registry_options`, what a controller's
  `setup(..., registry_client=...)` takes.
- `push_client`: a `RegistryClient` that pushes test images to `registry` (anonymous) and `token_registry` (with
  its user's credentials).

Helpers:

- `running_manager(client, *setups)`: an async context manager running a `Manager` (no metrics or health servers)
  with the controllers each `setup(manager)` registers, until the block ends; it waits for the caches to sync and
  fails loudly if the manager stopped with an error.
- `wait_for(client, resource, name, check, namespace=None, within=60)`: polls the object until `check(obj)` holds
  and returns it; on timeout the assertion shows the last object seen.
- `ready_condition(obj)`: the object's Ready condition (or `{}`).
- `docker_config_secret(...)` / `service_account(...)`: the objects a `serviceAccountRef` needs for a registry.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from kpack_core.apis.resources import ALL as KPACK_RESOURCES
from kpack_core.envtest import ControlPlane
from kpack_core.envtest.certs import CertificateAuthority
from kpack_core.envtest.registry import Registry
from kpack_core.registry import Credentials, Keychain, RegistryClient, RegistryOptions, RetryPolicy, StaticKeychain
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.manager import Manager, ManagerOptions
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, Resource

JSON = dict[str, Any]
CRDS = Path(__file__).resolve().parents[3] / "config" / "crds"


# -- CRDs -----------------------------------------------------------------------------------------------------------


async def install_kpack_crds(client: Client, within: float = 60.0) -> None:
    """Create every CRD of `config/crds/` that is missing, then wait until each kind is served at v1alpha2."""
    manifests = sorted(CRDS.glob("*.yaml"))
    assert manifests, f"no CRDs in {CRDS}"
    for manifest in manifests:
        with contextlib.suppress(errors.AlreadyExistsError):
            await client.create(CUSTOM_RESOURCE_DEFINITIONS, yaml.safe_load(manifest.read_text()))
    deadline = asyncio.get_running_loop().time() + within
    for resource in KPACK_RESOURCES:
        while True:
            try:
                await client.list(resource, "default" if resource.namespaced else None, limit=1)
                break
            except errors.NotFoundError:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{resource.plural}.kpack.io is not served within {within:g} s") from None
                await asyncio.sleep(0.2)


@pytest_asyncio.fixture(loop_scope="session")
async def kpack_crds(client: Client, control_plane: ControlPlane) -> None:
    """The kpack CRDs, installed in the session control plane (idempotent: a no-op once they are served)."""
    await install_kpack_crds(client)


# -- registries -----------------------------------------------------------------------------------------------------


@pytest.fixture
def registry_options(envtest_ca: CertificateAuthority) -> RegistryOptions:
    """Trust in the envtest CA; two attempts within 5 s for transient failures (the default is 5 within 60 s)."""
    return RegistryOptions(
        ca_pem=envtest_ca.cert_pem,
        retry=RetryPolicy(attempts=2, total=5.0, initial_backoff=0.05, max_backoff=0.5),
        connect_timeout=5.0,
        read_timeout=30.0,
    )


@pytest.fixture
def registry_client_factory(registry_options: RegistryOptions) -> Callable[[Keychain], RegistryClient]:
    """What controllers' `setup(..., registry_client=...)` takes: a client for a keychain, trusting the test CA."""
    return lambda keychain: RegistryClient(keychain, registry_options)


@pytest_asyncio.fixture(loop_scope="session")
async def push_client(
    registry: Registry, token_registry: Registry, registry_options: RegistryOptions
) -> AsyncIterator[RegistryClient]:
    """Pushes test images: anonymous on `registry`, with the user's credentials on `token_registry`."""
    keychain = StaticKeychain({token_registry.host: Credentials(token_registry.username, token_registry.password)})
    async with RegistryClient(keychain, registry_options) as pusher:
        yield pusher


# -- running controllers --------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_manager(client: Client, *setups: Callable[[Manager], object]) -> AsyncIterator[Manager]:
    """A Manager running the controllers `setups` register (each is called with the manager before it starts);
    stopped gracefully when the block ends. Fails if the manager exits by itself or with an error."""
    manager = Manager(client, ManagerOptions(metrics_bind_address=None, health_probe_bind_address=None))
    for setup in setups:
        setup(manager)
    running = asyncio.create_task(manager.run(), name="test manager")
    try:
        async with asyncio.timeout(60):
            while not (manager.cache.synced and all(c.started for c in manager.controllers)):
                if running.done():
                    raise AssertionError(f"the manager stopped while starting: exit code {running.result()}")
                await asyncio.sleep(0.05)
        yield manager
        assert not running.done(), f"the manager stopped by itself: exit code {running.result()}"
    finally:
        manager.stop()
        code = await asyncio.wait_for(running, 60)
    assert code == 0, f"the manager exited with {code}"


# -- objects and waiting --------------------------------------------------------------------------------------------


def ready_condition(obj: JSON | None) -> JSON:
    """The object's Ready condition, `{}` when it has none."""
    for found in ((obj or {}).get("status") or {}).get("conditions") or ():
        if found.get("type") == "Ready":
            return dict(found)
    return {}


def is_ready(obj: JSON) -> bool:
    """The object's Ready condition is True."""
    return ready_condition(obj).get("status") == "True"


def failed_with(reason: str, *parts: str) -> Callable[[JSON], bool]:
    """A check: Ready is False with `reason` and a message containing every one of `parts`."""

    def check(obj: JSON) -> bool:
        ready = ready_condition(obj)
        message = ready.get("message", "")
        return ready.get("status") == "False" and ready.get("reason") == reason and all(p in message for p in parts)

    return check


async def wait_for(
    client: Client,
    resource: Resource,
    name: str,
    check: Callable[[JSON], bool],
    *,
    namespace: str | None = None,
    within: float = 60.0,
    what: str = "the expected state",
) -> JSON:
    """Poll the object (from the apiserver) until `check(obj)` is true and return it; on timeout fail with the last
    object's status."""
    last: JSON | None = None
    deadline = asyncio.get_running_loop().time() + within
    while True:
        with contextlib.suppress(errors.NotFoundError):
            last = await client.get(resource, name, namespace)
            if check(last):
                return last
        if asyncio.get_running_loop().time() > deadline:
            shown = json.dumps((last or {}).get("status"), indent=1) if last else "(not found)"
            raise AssertionError(f"{resource.kind} {name}: not {what} within {within:g} s; last status: {shown}")
        await asyncio.sleep(0.2)


def docker_config_secret(namespace: str, name: str, registry: str, username: str, password: str) -> JSON:
    """A `kubernetes.io/dockerconfigjson` secret with credentials for `registry` (`host:port`)."""
    config = {"auths": {registry: {"username": username, "password": password}}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


def service_account(namespace: str, name: str, secrets: list[str]) -> JSON:
    """A ServiceAccount listing `secrets` (kpack reads registry credentials from this list)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
        "secrets": [{"name": secret} for secret in secrets],
    }
