"""Builder and ClusterBuilder controllers on envtest with the token registry (TLS + bearer tokens).

ClusterStack and ClusterStore statuses are written by the tests (what those controllers would write, computed from
the images pushed here), so these tests need no other controller. Registry traffic of the controllers is logged
through a traced HTTP session, which shows what was mounted, what was uploaded and that a reconcile with nothing new
writes nothing.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kpack_core.apis.resources import BUILDERS, CLUSTER_BUILDERS, CLUSTER_STACKS, CLUSTER_STORES
from kpack_core.envtest.cnb import BuildpackStack, GroupEntry, ShellBuildpack, filler_bytes
from kpack_core.envtest.registry import Registry
from kpack_core.registry import RegistryClient, parse_reference
from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import Resource
from tests.skopeo import skopeo_inspect

from .builder_support import (
    BIONIC,
    RequestLog,
    TracedClients,
    World,
    admin_client,
    cluster_stack,
    cluster_store,
    create_configmap,
    create_credentials,
    create_stack_and_store,
    create_with_status,
    lifecycle_configmap,
    running_builder_controllers,
    set_password,
    set_status,
    store_buildpacks,
    unique,
    wait_for,
)
from .conftest import install_kpack_crds, ready_condition

pytestmark = pytest.mark.integration

JSON = dict[str, Any]

STACKS = (BuildpackStack(BIONIC),)
JAVA = ShellBuildpack(
    "example/java",
    "5.0.0",
    homepage="https://example.com/java",
    order=((GroupEntry("example/jre", "8.0.0"), GroupEntry("example/maven", optional=True)),),
)
JRE = ShellBuildpack("example/jre", "8.0.0", stacks=STACKS, extra_files=(("jre.bin", filler_bytes("jre", 8192)),))
MAVEN = ShellBuildpack("example/maven", "5.0.0", stacks=STACKS, extra_files=(("m.bin", filler_bytes("maven", 2048)),))
GO = ShellBuildpack("example/go", "1.0.0", api="0.5", stacks=(BuildpackStack("*"),))


@dataclass
class Env:
    client: Client
    registry: Registry
    namespace: str
    world: World
    log: RequestLog
    clients: TracedClients
    admin: RegistryClient


@pytest_asyncio.fixture(loop_scope="session")
async def env(client: Client, token_registry: Registry, namespace: str) -> AsyncIterator[Env]:
    """Stack, lifecycle and two buildpackages in the registry; credentials and the lifecycle ConfigMap in a fresh
    namespace (which is also the controllers' system namespace)."""
    await install_kpack_crds(client)
    world = World(token_registry, unique("builders"))
    log = RequestLog()
    clients = TracedClients(token_registry, log)
    async with admin_client(token_registry) as admin:
        await world.push_stack(admin)
        await world.push_lifecycle(admin)
        await world.push_package(admin, "java", [JAVA, JRE, MAVEN])
        await world.push_package(admin, "go", [GO])
        await create_credentials(client, namespace, token_registry)
        try:
            yield Env(client, token_registry, namespace, world, log, clients, admin)
        finally:
            await clients.close()


def builder(namespace: str, name: str, tag: str, stack: str, store: str, order: list[JSON]) -> JSON:
    return {
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "Builder",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "tag": tag,
            "stack": {"kind": "ClusterStack", "name": stack},
            "store": {"kind": "ClusterStore", "name": store},
            "serviceAccountName": "builder",
            "order": order,
        },
    }


def cluster_builder(namespace: str, name: str, tag: str, stack: str, store: str, order: list[JSON]) -> JSON:
    return {
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "ClusterBuilder",
        "metadata": {"name": name},
        "spec": {
            "tag": tag,
            "stack": {"kind": "ClusterStack", "name": stack},
            "store": {"kind": "ClusterStore", "name": store},
            "serviceAccountRef": {"name": "builder", "namespace": namespace},
            "order": order,
        },
    }


JAVA_ORDER = [{"group": [{"id": "example/java"}]}, {"group": [{"id": "example/go", "optional": True}]}]


async def wait_ready(
    env: Env, resource: Resource, name: str, status: str = "True", *, namespace: str | None = None, check: Any = None
) -> JSON:
    """The object once its Ready condition has `status` (and `check(obj)` holds); the last one seen on timeout."""
    seen: dict[str, JSON] = {}

    async def done() -> bool:
        obj = await env.client.get(resource, name, namespace)
        seen["obj"] = obj
        return ready_condition(obj).get("status") == status and (check is None or bool(check(obj)))

    try:
        await wait_for(done, f"{resource.kind} {name} Ready={status}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last status: {json.dumps(seen.get('obj', {}).get('status'), indent=1)}") from None
    return seen["obj"]


async def wait_not_ready(
    env: Env, resource: Resource, name: str, message: str, *, namespace: str | None = None
) -> JSON:
    return await wait_ready(
        env,
        resource,
        name,
        "False",
        namespace=namespace,
        check=lambda o: message in ready_condition(o).get("message", ""),
    )


async def layer_file(admin: RegistryClient, image: str, digest: str, path: str) -> str:
    blob = await admin.get_blob(image, digest)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:") as archive:
        extracted = archive.extractfile(path)
        assert extracted is not None
        return extracted.read().decode()


# -- the happy path -------------------------------------------------------------------------------------------------


async def test_builder_and_cluster_builder_become_ready_with_mounted_layers(env: Env, tmp_path: Path) -> None:
    stack, store = unique("stack"), unique("store")
    await create_stack_and_store(env.client, stack, store, env.world)
    await create_configmap(env.client, lifecycle_configmap(env.namespace, env.world.lifecycle_tag))
    tag = env.world.repo("builder") + ":java"
    cluster_tag = env.world.repo("cluster-builder")
    cluster_name = unique("cb")

    async with running_builder_controllers(env.client, env.clients, env.namespace, recheck_interval=1.0):
        mark = env.log.mark()
        await env.client.create(BUILDERS, builder(env.namespace, "java", tag, stack, store, JAVA_ORDER))
        await env.client.create(
            CLUSTER_BUILDERS, cluster_builder(env.namespace, cluster_name, cluster_tag, stack, store, JAVA_ORDER)
        )
        ready = await wait_ready(env, BUILDERS, "java", namespace=env.namespace)
        cluster_ready = await wait_ready(env, CLUSTER_BUILDERS, cluster_name)
        pushed = env.log.since(mark)

        status = ready["status"]
        digest = status["latestImage"].split("@", 1)[1]
        assert status["latestImage"] == f"{tag}@{digest}"
        assert status["observedGeneration"] == ready["metadata"]["generation"]
        entries = sorted(store_buildpacks(env.world.packages), key=lambda b: f"{b['id']}@{b['version']}", reverse=True)
        entries = sorted(entries, key=lambda b: b["size"], reverse=True)
        assert status["builderMetadata"] == [
            {k: v for k, v in b.items() if k in ("id", "version", "homepage")} for b in entries
        ]
        assert status["builderMetadata"][:2] == [
            {"id": "example/jre", "version": "8.0.0"},
            {"id": "example/maven", "version": "5.0.0"},
        ]
        assert status["order"] == [
            {"group": [{"id": "example/java", "version": "5.0.0"}]},
            {"group": [{"id": "example/go", "version": "1.0.0", "optional": True}]},
        ]
        assert status["stack"] == {"runImage": env.world.run_ref, "id": BIONIC}
        assert (status["observedStackGeneration"], status["observedStoreGeneration"], status["os"]) == (1, 1, "linux")
        assert cluster_ready["status"]["latestImage"].startswith(f"{cluster_tag}@sha256:")
        assert cluster_ready["status"]["builderMetadata"] == status["builderMetadata"]

        # The layers were sorted by size; the buildpack and base layers were mounted, never uploaded.
        sizes = {bp["digest"]: bp["size"] for bp in store_buildpacks(env.world.packages)}
        manifest = json.loads((await env.admin.get_manifest(status["latestImage"])).content)
        layer_digests = [layer["digest"] for layer in manifest["layers"]]
        buildpack_digests = [d for d in layer_digests if d in sizes]
        assert [sizes[d] for d in buildpack_digests] == sorted(sizes.values(), reverse=True)
        reused = set(buildpack_digests) | {layer_digests[0], layer_digests[2]}  # + build image and lifecycle layers
        uploaded = RequestLog.uploaded_digests(pushed)
        assert not reused & set(uploaded), f"reused layers were uploaded: {reused & set(uploaded)}"
        assert reused <= set(RequestLog.mounted_digests(pushed))
        made_here = {layer_digests[1], layer_digests[-2], layer_digests[-1], manifest["config"]["digest"]}
        assert set(uploaded) <= made_here

        # skopeo (an independent client) sees the labels; our client reads stack.toml and order.toml.
        by_digest = f"{env.world.repo('builder')}@{digest}"
        inspected = await skopeo_inspect(env.registry, tmp_path, by_digest)
        assert inspected["Digest"] == digest
        labels = inspected["Labels"]
        assert labels["io.buildpacks.stack.id"] == BIONIC
        assert labels["io.buildpacks.lifecycle.version"] == "0.11.4"
        assert json.loads(labels["io.buildpacks.buildpack.order"]) == status["order"]
        metadata = json.loads(labels["io.buildpacks.builder.metadata"])
        assert metadata["buildpacks"] == status["builderMetadata"]
        assert metadata["stack"] == {"runImage": {"image": env.world.run_tag, "mirrors": None}}
        assert set(json.loads(labels["io.buildpacks.buildpack.layers"])) == {
            "example/go",
            "example/java",
            "example/jre",
            "example/maven",
        }
        assert json.loads(labels["io.buildpacks.lifecycle.apis"])["platform"]["supported"] == [
            "0.3",
            "0.4",
            "0.5",
            "0.6",
        ]
        config = await skopeo_inspect(env.registry, tmp_path, by_digest, "--config")
        assert config["config"]["WorkingDir"] == "/layers"
        stack_toml = await layer_file(env.admin, tag, layer_digests[-2], "cnb/stack.toml")
        assert tomllib.loads(stack_toml) == {"run-image": {"image": env.world.run_tag}}
        order_toml = await layer_file(env.admin, tag, layer_digests[-1], "cnb/order.toml")
        assert tomllib.loads(order_toml) == {"order": status["order"]}
        # kpack's Save also tags the image with the time it was written
        tags = await env.admin.list_tags(tag)
        stamped = [t for t in tags if t.isdigit() and len(t) == 14]
        assert len(stamped) == 1
        assert await env.admin.get_digest(f"{env.world.repo('builder')}:{stamped[0]}") == digest

        # Re-checks (every second here) with nothing new read, but write nothing: no push, no status write.
        version = ready["metadata"]["resourceVersion"]
        mark = env.log.mark()
        tag_path = f"/v2/{parse_reference(tag).repository}/manifests/java"
        await wait_for(
            lambda: _async(sum(1 for m, p, _ in env.log.since(mark) if m == "HEAD" and p == tag_path) >= 2),
            "two re-checks of the builder",
        )
        assert RequestLog.writes(env.log.since(mark)) == []
        again = await env.client.get(BUILDERS, "java", env.namespace)
        assert again["metadata"]["resourceVersion"] == version


async def _async(value: bool) -> bool:
    return value


# -- changes of what a builder is made from ----------------------------------------------------------------------


async def test_stack_store_and_lifecycle_changes_rebuild_the_builders_using_them(env: Env) -> None:
    stack, store, other_store = unique("stack"), unique("store"), unique("store")
    await create_stack_and_store(env.client, stack, store, env.world)
    await create_with_status(
        env.client, CLUSTER_STORES, cluster_store(other_store, env.world), env.world.store_status()
    )
    await create_configmap(env.client, lifecycle_configmap(env.namespace, env.world.lifecycle_tag))
    go_order = [{"group": [{"id": "example/go"}]}]
    tag, bystander_tag = env.world.repo("changing") + ":1", env.world.repo("bystander") + ":1"

    async with running_builder_controllers(env.client, env.clients, env.namespace, recheck_interval=600.0):
        await env.client.create(BUILDERS, builder(env.namespace, "changing", tag, stack, store, go_order))
        await env.client.create(
            BUILDERS, builder(env.namespace, "bystander", bystander_tag, stack, other_store, go_order)
        )
        first = (await wait_ready(env, BUILDERS, "changing", namespace=env.namespace))["status"]
        bystander = await wait_ready(env, BUILDERS, "bystander", namespace=env.namespace)

        # A new go version in the store: only the builder on that store picks it up (no version in its order).
        newer = ShellBuildpack("example/go", "1.1.0", api="0.5", stacks=(BuildpackStack("*"),))
        await env.world.push_package(env.admin, "go-newer", [newer])
        await set_status(env.client, CLUSTER_STORES, store, env.world.store_status(generation=2))
        second = (
            await wait_ready(
                env,
                BUILDERS,
                "changing",
                namespace=env.namespace,
                check=lambda o: o["status"].get("observedStoreGeneration") == 2,
            )
        )["status"]
        assert second["order"] == [{"group": [{"id": "example/go", "version": "1.1.0"}]}]
        assert second["latestImage"] != first["latestImage"]

        # A new build image in the stack status: the stack generation and the builder image follow.
        await env.world.push_stack(env.admin, user_id=2000)
        await set_status(env.client, CLUSTER_STACKS, stack, env.world.stack_status(generation=3))
        third = (
            await wait_ready(
                env,
                BUILDERS,
                "changing",
                namespace=env.namespace,
                check=lambda o: o["status"].get("observedStackGeneration") == 3,
            )
        )["status"]
        assert third["latestImage"] != second["latestImage"]
        manifest = json.loads((await env.admin.get_manifest(third["latestImage"])).content)
        assert (
            manifest["layers"][0]["digest"]
            == (await env.admin.resolve_image(env.world.build_ref)).image().layers[0].digest
        )

        # The lifecycle image moved under its tag: noticed by the next reconcile of any builder (here the store
        # change wakes one), and every builder is rebuilt with the new lifecycle.
        await env.world.push_lifecycle(env.admin, version="0.11.5")
        await set_status(env.client, CLUSTER_STORES, other_store, env.world.store_status(generation=4))
        old_images = (third["latestImage"], bystander["status"]["latestImage"])
        for name in ("changing", "bystander"):
            moved = await wait_ready(
                env,
                BUILDERS,
                name,
                namespace=env.namespace,
                check=lambda o: o["status"]["latestImage"] not in old_images,
            )
            labels = await env.admin.get_labels(moved["status"]["latestImage"])
            assert labels["io.buildpacks.lifecycle.version"] == "0.11.5"
        assert (await env.client.get(BUILDERS, "bystander", env.namespace))["status"]["observedStackGeneration"] == 3


# -- failures and recovery ----------------------------------------------------------------------------------------


async def test_failures_name_their_cause_keep_the_last_image_and_recover(env: Env) -> None:
    stack, store = unique("stack"), unique("store")
    later_stack, later_store, unready_stack = unique("stack"), unique("store"), unique("stack")
    await create_stack_and_store(env.client, stack, store, env.world)
    not_ready = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "False", "message": "no run image"}],
    }
    await create_with_status(env.client, CLUSTER_STACKS, cluster_stack(unready_stack, env.world), not_ready)
    await create_configmap(env.client, lifecycle_configmap(env.namespace, env.world.lifecycle_tag))
    # A buildpack for another stack, and one needing a mixin the stack lacks.
    other = ShellBuildpack("example/other-stack", "1.0.0", stacks=(BuildpackStack("io.other"),))
    needs_curl = ShellBuildpack("example/needs-curl", "1.0.0", stacks=(BuildpackStack(BIONIC, ("curl",)),))
    await env.world.push_package(env.admin, "odd", [other, needs_curl])
    await set_status(env.client, CLUSTER_STORES, store, env.world.store_status(generation=2))

    cases = {
        "no-store": (stack, later_store, [{"group": [{"id": "example/go"}]}], f"ClusterStore {later_store} not found"),
        "no-stack": (later_stack, store, [{"group": [{"id": "example/go"}]}], f"ClusterStack {later_stack} not found"),
        "unready": (
            unready_stack,
            store,
            [{"group": [{"id": "example/go"}]}],
            f"stack {unready_stack} is not ready: no run image",
        ),
        "unknown-id": (
            stack,
            store,
            [{"group": [{"id": "example/rust"}]}],
            "could not find buildpack with id 'example/rust'",
        ),
        "unknown-version": (
            stack,
            store,
            [{"group": [{"id": "example/go", "version": "9.0.0"}]}],
            "could not find buildpack example/go@9.0.0",
        ),
        "other-stack": (
            stack,
            store,
            [{"group": [{"id": "example/other-stack"}]}],
            f"buildpack example/other-stack@1.0.0 does not support stack {BIONIC}",
        ),
        "mixins": (stack, store, [{"group": [{"id": "example/needs-curl"}]}], "stack missing mixin(s): curl"),
    }
    async with running_builder_controllers(env.client, env.clients, env.namespace):
        for name, (stack_name, store_name, order, _) in cases.items():
            await env.client.create(
                BUILDERS, builder(env.namespace, name, env.world.repo(name), stack_name, store_name, order)
            )
        for name, (*_, message) in cases.items():
            failed = await wait_not_ready(env, BUILDERS, name, message, namespace=env.namespace)
            assert "latestImage" not in failed["status"]

        # Fix each cause: the missing store and stack appear, the stack gets ready and the curl mixin, the store
        # gets rust, go 9.0.0 and other-stack built for bionic.
        await create_stack_and_store(env.client, later_stack, later_store, env.world)
        await set_status(env.client, CLUSTER_STACKS, unready_stack, env.world.stack_status())
        rust = ShellBuildpack("example/rust", "1.0.0", stacks=STACKS)
        go9 = ShellBuildpack("example/go", "9.0.0", stacks=STACKS)
        fixed_other = ShellBuildpack("example/other-stack", "1.0.0", stacks=STACKS)
        await env.world.push_package(env.admin, "fixes", [rust, go9, fixed_other])
        status = env.world.store_status(generation=3)
        status["buildpacks"] = [
            b
            for b in status["buildpacks"]
            if not (b["id"] == "example/other-stack" and "odd" in b["storeImage"]["image"])
        ]
        await set_status(env.client, CLUSTER_STORES, store, status)
        stack_status = env.world.stack_status(generation=2)
        stack_status["mixins"] = [*stack_status["mixins"], "curl"]
        await set_status(env.client, CLUSTER_STACKS, stack, stack_status)
        for name in cases:
            await wait_ready(env, BUILDERS, name, namespace=env.namespace)

        # Now break a Ready builder: its last good image stays in the status next to the reason.
        good = await env.client.get(BUILDERS, "unknown-id", env.namespace)
        spec = {**good["spec"], "order": [{"group": [{"id": "example/rust", "version": "0.0.1"}]}]}
        await env.client.update(BUILDERS, {**good, "spec": spec})
        failed = await wait_not_ready(env, BUILDERS, "unknown-id", "example/rust@0.0.1", namespace=env.namespace)
        assert failed["status"]["latestImage"] == good["status"]["latestImage"]
        assert failed["status"]["builderMetadata"] == good["status"]["builderMetadata"]
        assert failed["status"]["observedGeneration"] == failed["metadata"]["generation"]


async def test_wrong_credentials_and_a_missing_lifecycle_config_recover_once_fixed(env: Env) -> None:
    stack, store = unique("stack"), unique("store")
    await create_stack_and_store(env.client, stack, store, env.world)
    order = [{"group": [{"id": "example/go"}]}]
    await create_credentials(env.client, env.namespace, env.registry, "wrong", password="not-the-password")

    async with running_builder_controllers(env.client, env.clients, env.namespace):
        await env.client.create(BUILDERS, builder(env.namespace, "waits", env.world.repo("waits"), stack, store, order))
        await wait_not_ready(
            env,
            BUILDERS,
            "waits",
            f"lifecycle image not configured: ConfigMap {env.namespace}/lifecycle-image not found",
            namespace=env.namespace,
        )
        denied = builder(env.namespace, "denied", env.world.repo("denied"), stack, store, order)
        denied["spec"]["serviceAccountName"] = "wrong"
        await env.client.create(BUILDERS, denied)
        await create_configmap(env.client, lifecycle_configmap(env.namespace, env.world.lifecycle_tag))
        await wait_ready(env, BUILDERS, "waits", namespace=env.namespace)

        failed = await wait_not_ready(env, BUILDERS, "denied", "401", namespace=env.namespace)
        assert env.registry.host in ready_condition(failed)["message"]
        await set_password(env.client, env.namespace, env.registry, "wrong", env.registry.password)
        await wait_ready(env, BUILDERS, "denied", namespace=env.namespace)


async def test_a_push_the_registry_denies_is_reported_and_recovers_once_allowed(env: Env) -> None:
    """Reads allowed, the push refused (the token server grants only pull on the builder's repository): the
    builder names its tag, does not crash, and pushes once the registry allows it."""
    issuer = env.registry.token_issuer
    assert issuer is not None
    stack, store = unique("stack"), unique("store")
    await create_stack_and_store(env.client, stack, store, env.world)
    await create_configmap(env.client, lifecycle_configmap(env.namespace, env.world.lifecycle_tag))
    tag = env.world.repo("read-only")
    read_only = parse_reference(tag).repository
    allowed = issuer.policy

    def no_push_to_read_only(user: str | None, repository: str, actions: list[str]) -> list[str]:
        granted = allowed(user, repository, actions)
        return [a for a in granted if a == "pull"] if repository == read_only else granted

    issuer.policy = no_push_to_read_only
    try:
        async with running_builder_controllers(env.client, env.clients, env.namespace):
            order = [{"group": [{"id": "example/go"}]}]
            await env.client.create(BUILDERS, builder(env.namespace, "read-only", tag, stack, store, order))
            failed = await wait_not_ready(env, BUILDERS, "read-only", read_only, namespace=env.namespace)
            assert "latestImage" not in failed["status"]
            issuer.policy = allowed
            ready = await wait_ready(env, BUILDERS, "read-only", namespace=env.namespace)
            assert ready["status"]["latestImage"].startswith(f"{tag}@sha256:")
    finally:
        issuer.policy = allowed
