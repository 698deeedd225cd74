"""What the Builder and ClusterBuilder integration tests stand on, independent of the ClusterStack and ClusterStore
controllers: kpack's CRDs installed on envtest, images pushed to the token registry with the cnb helpers, the
ClusterStack and ClusterStore statuses those controllers would write (spec §1.4, §1.5) computed from the pushed
images, credentials as Kubernetes objects, a registry request log, and a manager running the builder controllers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from kpack_controllers.builder import BuilderOptions, lifecycle_provider, setup_builders, setup_cluster_builders
from kpack_core.apis.resources import CLUSTER_STACKS, CLUSTER_STORES
from kpack_core.envtest.cnb import (
    ImageBuild,
    ShellBuildpack,
    StackRole,
    buildpackage_image,
    lifecycle_image,
    stack_image,
)
from kpack_core.envtest.cnb.stack import mixins_for
from kpack_core.envtest.registry import Registry
from kpack_core.keychains import ClientReader
from kpack_core.registry import Credentials, Keychain, RegistryClient, RegistryOptions, StaticKeychain
from kpack_core.runtime.client import Client
from kpack_core.runtime.manager import Manager, ManagerOptions
from kpack_core.runtime.resource import CONFIGMAPS, SECRETS, SERVICE_ACCOUNTS

JSON = dict[str, Any]

ROOT = Path(__file__).resolve().parents[3]
BIONIC = "io.buildpacks.stacks.bionic"
STACK_MIXINS = ("ca-certificates", "build:git", "run:tzdata")
TIMEOUT = 60.0


# -- the API ------------------------------------------------------------------------------------------------------


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, within: float = TIMEOUT) -> None:
    """Poll `check` until it is true; fail naming `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


def docker_secret(namespace: str, name: str, registry: str, username: str, password: str) -> JSON:
    auths = {registry: {"username": username, "password": password}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps({"auths": auths}).encode()).decode()},
    }


async def create_credentials(
    client: Client, namespace: str, registry: Registry, account: str = "builder", *, password: str | None = None
) -> None:
    """A ServiceAccount whose one docker secret holds the registry's credentials (or a wrong `password`)."""
    secret = docker_secret(
        namespace, f"{account}-registry", registry.host, registry.username, password or registry.password
    )
    await client.create(SECRETS, secret)
    await client.create(
        SERVICE_ACCOUNTS,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": namespace},
            "secrets": [{"name": f"{account}-registry"}],
        },
    )


async def set_password(client: Client, namespace: str, registry: Registry, account: str, password: str) -> None:
    secret = await client.get(SECRETS, f"{account}-registry", namespace)
    fresh = docker_secret(namespace, f"{account}-registry", registry.host, registry.username, password)
    await client.update(SECRETS, {**secret, "data": fresh["data"]})


def lifecycle_configmap(namespace: str, image: str, account: str = "builder") -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "lifecycle-image", "namespace": namespace},
        "data": {"image": image, "serviceAccountRef.name": account, "serviceAccountRef.namespace": namespace},
    }


async def create_configmap(client: Client, configmap: JSON) -> None:
    await client.create(CONFIGMAPS, configmap)


# -- the registry ---------------------------------------------------------------------------------------------------


@dataclass
class RequestLog:
    """Every registry request made through sessions traced by `trace_config`: (method, path with query, status)."""

    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_end(
            session: aiohttp.ClientSession, context: types.SimpleNamespace, params: aiohttp.TraceRequestEndParams
        ) -> None:
            del session, context
            self.requests.append((params.method, params.url.path_qs, params.response.status))

        config.on_request_end.append(on_end)
        return config

    def mark(self) -> int:
        return len(self.requests)

    def since(self, mark: int) -> list[tuple[str, str, int]]:
        return self.requests[mark:]

    @staticmethod
    def writes(requests: Sequence[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
        """Requests that change the registry (uploads, mounts, manifests)."""
        return [r for r in requests if r[0] in ("PUT", "POST", "PATCH", "DELETE")]

    @staticmethod
    def uploaded_digests(requests: Sequence[tuple[str, str, int]]) -> list[str]:
        """Digests of blobs whose bytes were uploaded (the PUT that completes an upload carries `digest=`)."""
        out = []
        for method, path, status in requests:
            if method == "PUT" and "/blobs/uploads/" in path and "digest=" in path and status == 201:
                out.append(path.split("digest=", 1)[1].split("&", 1)[0].replace("%3A", ":"))
        return out

    @staticmethod
    def mounted_digests(requests: Sequence[tuple[str, str, int]]) -> list[str]:
        out = []
        for method, path, status in requests:
            if method == "POST" and "mount=" in path and status == 201:
                out.append(path.split("mount=", 1)[1].split("&", 1)[0].replace("%3A", ":"))
        return out


class TracedClients:
    """A registry client factory whose clients trust the registry's CA and log every request."""

    def __init__(self, registry: Registry, log: RequestLog) -> None:
        self.options = RegistryOptions(ca_pem=registry.ca_pem)
        self.log = log
        self._session: aiohttp.ClientSession | None = None

    def __call__(self, keychain: Keychain) -> RegistryClient:
        if self._session is None:
            self._session = aiohttp.ClientSession(trace_configs=[self.log.trace_config()])
        return RegistryClient(keychain, self.options, session=self._session)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def admin_client(registry: Registry) -> RegistryClient:
    keychain = StaticKeychain({registry.host: Credentials(registry.username, registry.password)})
    return RegistryClient(keychain, RegistryOptions(ca_pem=registry.ca_pem))


# -- images and the statuses the stack and store controllers would write -------------------------------------------


@dataclass(frozen=True)
class PushedPackage:
    image: str
    build: ImageBuild
    buildpacks: tuple[ShellBuildpack, ...]


def store_buildpacks(packages: Sequence[PushedPackage]) -> list[JSON]:
    """A ClusterStore's `status.buildpacks` for these pushed buildpackages (spec §1.5 step 2-3)."""
    out: list[JSON] = []
    for package in packages:
        entry = package.buildpacks[0]
        info: JSON = {"id": entry.id, "version": entry.version}
        if entry.homepage:
            info["homepage"] = entry.homepage
        for buildpack, layer in zip(package.buildpacks, package.build.layers, strict=True):
            item: JSON = {
                "id": buildpack.id,
                "version": buildpack.version,
                "buildpackage": info,
                "storeImage": {"image": package.image},
                "diffId": layer.diff_id,
                "digest": layer.digest,
                "size": layer.size,
                "api": buildpack.api,
            }
            if buildpack.homepage:
                item["homepage"] = buildpack.homepage
            if buildpack.order:
                item["order"] = [{"group": [e.to_json() for e in group]} for group in buildpack.order]
            if buildpack.stacks:
                item["stacks"] = [s.to_json() for s in buildpack.stacks]
            out.append(item)
    return sorted(out, key=lambda b: (f"{b['id']}@{b['version']}", b["storeImage"]["image"]))


@dataclass
class World:
    """Images in the registry and the cluster-scoped objects a builder references."""

    registry: Registry
    prefix: str
    build_ref: str = ""
    run_ref: str = ""
    run_tag: str = ""
    lifecycle_tag: str = ""
    packages: list[PushedPackage] = field(default_factory=list)

    def repo(self, name: str) -> str:
        return f"{self.registry.host}/{self.prefix}/{name}"

    async def push_stack(self, client: RegistryClient, *, user_id: int = 1000) -> None:
        build = await stack_image(
            StackRole.BUILD, BIONIC, mixins=mixins_for(StackRole.BUILD, STACK_MIXINS), user_id=user_id, group_id=user_id
        )
        run = await stack_image(StackRole.RUN, BIONIC, mixins=mixins_for(StackRole.RUN, STACK_MIXINS))
        self.run_tag = self.repo("run") + ":base"
        self.build_ref = str(await build.push(client, self.repo("build") + ":base"))
        self.run_ref = str(await run.push(client, self.run_tag))

    async def push_lifecycle(self, client: RegistryClient, version: str = "0.11.4") -> str:
        self.lifecycle_tag = self.repo("lifecycle") + ":latest"
        image = await lifecycle_image(version)
        await image.push(client, self.lifecycle_tag)
        return image.digest

    async def push_package(self, client: RegistryClient, name: str, buildpacks: Sequence[ShellBuildpack]) -> None:
        image = self.repo(f"buildpacks/{name}") + ":1"
        build = await buildpackage_image(buildpacks, allow_missing_children=True)
        await build.push(client, image)
        self.packages.append(PushedPackage(image, build, tuple(buildpacks)))

    def stack_status(self, generation: int = 1) -> JSON:
        return {
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
            "id": BIONIC,
            "buildImage": {"latestImage": self.build_ref, "image": self.repo("build") + ":base"},
            "runImage": {"latestImage": self.run_ref, "image": self.run_tag},
            "mixins": ["ca-certificates", "build:git", "run:tzdata"],
            "userId": 1000,
            "groupId": 1000,
        }

    def store_status(self, generation: int = 1) -> JSON:
        return {
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
            "buildpacks": store_buildpacks(self.packages),
        }


async def create_with_status(client: Client, resource: Any, obj: JSON, status: JSON | None) -> JSON:
    created = await client.create(resource, obj)
    if status is not None:
        created = await client.update_status(resource, {**created, "status": status})
    return created


async def set_status(client: Client, resource: Any, name: str, status: JSON, namespace: str | None = None) -> None:
    current = await client.get(resource, name, namespace)
    await client.update_status(resource, {**current, "status": status})


def cluster_stack(name: str, world: World) -> JSON:
    return {
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "ClusterStack",
        "metadata": {"name": name},
        "spec": {
            "id": BIONIC,
            "buildImage": {"image": world.repo("build") + ":base"},
            "runImage": {"image": world.run_tag},
        },
    }


def cluster_store(name: str, world: World) -> JSON:
    return {
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "ClusterStore",
        "metadata": {"name": name},
        "spec": {"sources": [{"image": package.image} for package in world.packages]},
    }


async def create_stack_and_store(client: Client, stack: str, store: str, world: World) -> None:
    await create_with_status(client, CLUSTER_STACKS, cluster_stack(stack, world), world.stack_status())
    await create_with_status(client, CLUSTER_STORES, cluster_store(store, world), world.store_status())


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


# -- running the controllers ----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_builder_controllers(
    client: Client,
    clients: TracedClients,
    system_namespace: str,
    *,
    recheck_interval: float = 600.0,
) -> AsyncIterator[Manager]:
    """A manager running the Builder and ClusterBuilder controllers (sharing one lifecycle provider) until the
    block ends; a manager that stopped on its own fails the test."""
    manager = Manager(client, ManagerOptions(metrics_bind_address=None))
    options = BuilderOptions(system_namespace=system_namespace, recheck_interval=recheck_interval)
    reader = ClientReader(client)
    provider = lifecycle_provider(manager, registry_clients=clients, secrets=reader, system_namespace=system_namespace)
    setup_builders(manager, options=options, registry_clients=clients, secrets=reader, lifecycle=provider)
    setup_cluster_builders(manager, options=options, registry_clients=clients, secrets=reader, lifecycle=provider)
    task = asyncio.create_task(manager.run())
    try:
        await manager.cache.wait_for_sync(TIMEOUT)
        yield manager
        assert not task.done(), (
            f"the manager stopped by itself: {task.result() if not task.cancelled() else 'cancelled'}"
        )
    finally:
        manager.stop()
        await asyncio.wait_for(task, TIMEOUT)
