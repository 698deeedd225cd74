"""The README flow for builders, end to end: the seed ClusterStore and ClusterStack (00-*), the builder's service
account and the seed Builder (01-*), their images relocated onto the test registry, with the ClusterStack,
ClusterStore and Builder controllers running together in one manager. The Builder becomes Ready on its own, its
image in the registry, once the stack and store the controllers resolve are Ready."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpack_controllers import stack, store
from kpack_controllers.builder import BuilderOptions, lifecycle_provider, setup_builders
from kpack_core.apis.resources import BUILDERS, CLUSTER_STACKS, CLUSTER_STORES
from kpack_core.envtest.cnb import push_lifecycle_image, relocate_manifest, stand_up_seed_images
from kpack_core.envtest.registry import Registry
from kpack_core.keychains import ClientReader
from kpack_core.registry import Keychain, RegistryClient
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.manager import Manager
from kpack_core.runtime.resource import CONFIGMAPS, SERVICE_ACCOUNTS
from tests.integration.controllers.conftest import is_ready, running_manager, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("kpack_crds")]

SAMPLES = Path(__file__).resolve().parents[3] / "config" / "samples"

Factory = Callable[[Keychain], RegistryClient]


def seed(name: str, host: str, namespace: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = relocate_manifest(yaml.safe_load((SAMPLES / name).read_text()), host)
    if namespace is not None:
        document["metadata"]["namespace"] = namespace
    return document


async def test_the_seed_builder_becomes_ready_with_the_seed_store_and_stack(
    client: Client,
    namespace: str,
    push_client: RegistryClient,
    registry: Registry,
    registry_client_factory: Factory,
) -> None:
    await stand_up_seed_images(push_client, registry.host)
    lifecycle = await push_lifecycle_image(push_client, f"{registry.host}/kpack/lifecycle:latest")
    await client.create(
        CONFIGMAPS,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "lifecycle-image", "namespace": namespace},
            "data": {"image": f"{registry.host}/kpack/lifecycle:latest"},
        },
    )
    cluster_store = seed("00-clusterstore.yaml", registry.host)
    cluster_stack = seed("00-clusterstack.yaml", registry.host)
    for resource, obj in ((CLUSTER_STORES, cluster_store), (CLUSTER_STACKS, cluster_stack)):
        with contextlib.suppress(errors.NotFoundError):  # left by an earlier test on this control plane
            await client.delete(resource, obj["metadata"]["name"])
    await client.create(SERVICE_ACCOUNTS, seed("01-serviceaccount.yaml", registry.host, namespace))
    builder = seed("01-builder.yaml", registry.host, namespace)

    def builders(manager: Manager) -> object:
        secrets = ClientReader(client)
        provider = lifecycle_provider(
            manager, registry_clients=registry_client_factory, secrets=secrets, system_namespace=namespace
        )
        options = BuilderOptions(system_namespace=namespace)
        return setup_builders(
            manager, options=options, registry_clients=registry_client_factory, secrets=secrets, lifecycle=provider
        )

    async with running_manager(
        client,
        lambda manager: stack.setup(manager, registry_client=registry_client_factory),
        lambda manager: store.setup(manager, registry_client=registry_client_factory),
        builders,
    ):
        # Everything at once, in the order a user's `kubectl apply -f config/samples` would create it.
        await client.create(CLUSTER_STORES, cluster_store)
        await client.create(CLUSTER_STACKS, cluster_stack)
        await client.create(BUILDERS, builder)
        name = builder["metadata"]["name"]
        ready = await wait_for(client, BUILDERS, name, is_ready, namespace=namespace, within=120, what="Ready")

    status = ready["status"]
    tag = builder["spec"]["tag"]
    assert status["latestImage"].startswith(f"{tag}@sha256:")
    digest = status["latestImage"].split("@", 1)[1]
    assert await push_client.get_digest(tag) == digest  # the image the status names is the one at the tag
    ids = {b["id"] for b in status["builderMetadata"]}
    assert "paketo-buildpacks/java" in ids
    assert status["stack"]["id"] == cluster_stack["spec"]["id"]
    labels = await push_client.get_labels(tag)
    assert labels["io.buildpacks.stack.id"] == cluster_stack["spec"]["id"]
    lifecycle_labels = await push_client.get_labels(lifecycle)
    assert (
        labels["io.buildpacks.lifecycle.version"]
        == yaml.safe_load(lifecycle_labels["io.buildpacks.lifecycle.metadata"])["version"]
    )
