"""50 Builders sharing one ClusterStore and one ClusterStack, on envtest and the TLS + token test registry.

The seed store, stack and lifecycle images (`config/samples/00-*`, relocated onto the test registry) are pushed
first; the ClusterStack, ClusterStore and Builder controllers run in one manager with their defaults (2 workers
each), the builder controller's registry clients traced so every request it makes is counted. Each Builder pushes
to a repository of its own (`<registry>/bench-builders/b-<i>`), the case where reusing layers across repositories
matters most: every layer it needs is already somewhere on the registry, but never in its own repository.

* Baseline (same run): one Builder alone, from creation to `Ready`, and the registry requests it made (it has to
  upload the builder's own small layers and config: nobody has them yet).
* Then 50 Builders created at once: wall time until every one is `Ready`, and registry requests per Builder.

Asserted (correctness only): every Builder is Ready with its image at its tag, and no blob was uploaded twice in the
whole run (the builders' own layers go up once, then are mounted; the stack's, lifecycle's and buildpacks' layers
are never uploaded at all). Printed, never asserted: the times and the request counts.
"""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path
from typing import Any

import yaml

from kpack_controllers import stack, store
from kpack_controllers.builder import BuilderOptions, lifecycle_provider, setup_builders
from kpack_core.apis.resources import BUILDERS, CLUSTER_STACKS, CLUSTER_STORES
from kpack_core.envtest.certs import CertificateAuthority
from kpack_core.envtest.cnb import push_lifecycle_image, relocate_manifest, stand_up_seed_images
from kpack_core.envtest.registry import Registry
from kpack_core.keychains import ClientReader
from kpack_core.registry import Credentials, RegistryClient, RegistryClients, RegistryOptions, StaticKeychain
from kpack_core.runtime.client import Client
from kpack_core.runtime.manager import Manager
from kpack_core.runtime.resource import CONFIGMAPS, SECRETS, SERVICE_ACCOUNTS
from tests.integration.controllers.builder_support import RequestLog
from tests.integration.controllers.conftest import (
    docker_config_secret,
    install_kpack_crds,
    is_ready,
    running_manager,
    service_account,
    wait_for,
)

JSON = dict[str, Any]

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"
BUILDERS_COUNT = 50
BASELINE = "one Builder alone"
STORE, STACK = "bench-store", "bench-stack"
ACCOUNT = "builder"


def sample(name: str, host: str) -> JSON:
    document: JSON = relocate_manifest(yaml.safe_load((SAMPLES / name).read_text()), host)
    return document


def builder(namespace: str, index: int, host: str) -> JSON:
    obj = sample("01-builder.yaml", host)
    obj["metadata"] = {"name": f"b-{index}", "namespace": namespace}
    obj["spec"] |= {
        "tag": f"{host}/bench-builders/b-{index}",
        "serviceAccountName": ACCOUNT,
        "stack": {"kind": "ClusterStack", "name": STACK},
        "store": {"kind": "ClusterStore", "name": STORE},
    }
    obj["spec"].pop("serviceAccount", None)
    return obj


async def all_ready(client: Client, namespace: str, names: set[str]) -> bool:
    listed = await client.list(BUILDERS, namespace)
    ready = {obj["metadata"]["name"] for obj in listed.items if is_ready(obj)}
    return names <= ready


async def test_fifty_builders_sharing_a_store_and_a_stack(
    client: Client, namespace: str, token_registry: Registry, envtest_ca: CertificateAuthority
) -> None:
    await install_kpack_crds(client)
    host = token_registry.host
    options = RegistryOptions(ca_pem=envtest_ca.cert_pem)
    admin = StaticKeychain({host: Credentials(token_registry.username, token_registry.password)})
    async with RegistryClient(admin, options) as pusher:
        await stand_up_seed_images(pusher, host)
        await push_lifecycle_image(pusher, f"{host}/kpack/lifecycle:latest")

    secret = docker_config_secret(namespace, "registry", host, token_registry.username, token_registry.password)
    await client.create(SECRETS, secret)
    await client.create(SERVICE_ACCOUNTS, service_account(namespace, ACCOUNT, ["registry"]))
    await client.create(
        CONFIGMAPS,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "lifecycle-image", "namespace": namespace},
            "data": {
                "image": f"{host}/kpack/lifecycle:latest",
                "serviceAccountRef.name": ACCOUNT,
                "serviceAccountRef.namespace": namespace,
            },
        },
    )
    cluster_store = sample("00-clusterstore.yaml", host) | {"metadata": {"name": STORE}}
    cluster_stack = sample("00-clusterstack.yaml", host) | {"metadata": {"name": STACK}}
    for cluster_scoped in (cluster_store, cluster_stack):  # the token registry refuses anonymous reads
        cluster_scoped["spec"]["serviceAccountRef"] = {"name": ACCOUNT, "namespace": namespace}

    log = RequestLog()
    secrets = ClientReader(client)
    plain = RegistryClients(options)
    traced = RegistryClients(options, trace_configs=[log.trace_config()])

    def builders(manager: Manager) -> object:
        provider = lifecycle_provider(manager, registry_clients=traced, secrets=secrets, system_namespace=namespace)
        return setup_builders(
            manager,
            options=BuilderOptions(system_namespace=namespace),
            registry_clients=traced,
            secrets=secrets,
            lifecycle=provider,
        )

    try:
        async with running_manager(
            client,
            lambda manager: stack.setup(manager, registry_client=plain, secrets=secrets),
            lambda manager: store.setup(manager, registry_client=plain, secrets=secrets),
            builders,
        ):
            await client.create(CLUSTER_STORES, cluster_store)
            await client.create(CLUSTER_STACKS, cluster_stack)
            await wait_for(client, CLUSTER_STORES, STORE, is_ready, within=120, what="Ready")
            await wait_for(client, CLUSTER_STACKS, STACK, is_ready, within=120, what="Ready")

            mark = log.mark()
            started = time.perf_counter()
            await client.create(BUILDERS, builder(namespace, 0, host))
            await wait_for(client, BUILDERS, "b-0", is_ready, namespace=namespace, within=120, what="Ready")
            alone_seconds = time.perf_counter() - started
            alone_requests = log.since(mark)

            mark = log.mark()
            started = time.perf_counter()
            await asyncio.gather(*(client.create(BUILDERS, builder(namespace, i, host)) for i in range(1, 51)))
            names = {f"b-{i}" for i in range(1, BUILDERS_COUNT + 1)}
            deadline = time.perf_counter() + 600
            while not await all_ready(client, namespace, names):
                assert time.perf_counter() < deadline, "50 Builders not all Ready within 600 s"
                await asyncio.sleep(0.05)
            fifty_seconds = time.perf_counter() - started
            fifty_requests = log.since(mark)
    finally:
        await plain.close()
        await traced.close()

    async with RegistryClient(admin, options) as reader:
        digests = set()
        for i in range(BUILDERS_COUNT + 1):
            obj = await client.get(BUILDERS, f"b-{i}", namespace)
            latest = obj["status"]["latestImage"]
            assert latest.startswith(f"{host}/bench-builders/b-{i}@sha256:"), latest
            assert await reader.get_digest(f"{host}/bench-builders/b-{i}") == latest.split("@", 1)[1]
            digests.add(latest.split("@", 1)[1])
    uploaded = collections.Counter(RequestLog.uploaded_digests(log.requests))
    twice = {digest: count for digest, count in uploaded.items() if count > 1}
    assert not twice, f"blobs uploaded more than once: {twice}"

    per_builder = len(fifty_requests) / BUILDERS_COUNT
    by_kind = collections.Counter(f"{method} {status}" for method, _, status in fifty_requests)
    print(
        f"builders bench: one Builder alone {alone_seconds:.2f} s, {len(alone_requests)} requests "
        f"({len(RequestLog.uploaded_digests(alone_requests))} blobs uploaded); "
        f"{BUILDERS_COUNT} Builders {fifty_seconds:.2f} s, {len(fifty_requests)} requests "
        f"({len(RequestLog.uploaded_digests(fifty_requests))} uploaded, "
        f"{len(RequestLog.mounted_digests(fifty_requests))} mounted); image digests {len(digests)}"
    )
    print(f"builders bench: requests of the 50 by method and status: {dict(sorted(by_kind.items()))}")
    print(
        f"bench: builders_50_ready: {fifty_seconds:.2f} s ({fifty_seconds / alone_seconds:.2f} × {BASELINE})"  # noqa: RUF001
    )
    print(
        f"bench: builder_registry_requests: {per_builder:.1f} requests/Builder "
        f"({per_builder / len(alone_requests):.2f} × {BASELINE})"  # noqa: RUF001
    )
