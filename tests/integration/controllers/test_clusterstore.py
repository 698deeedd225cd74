"""The ClusterStore controller on envtest with real registries: the buildpacks of every source with their layer
digests and sizes, private registries through a service account, failures named in the status and recovered from
by itself, moved tags noticed by polling, and the seed manifest."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpack_controllers import store
from kpack_core.apis.resources import CLUSTER_STORES
from kpack_core.apis.v1alpha2.clusterstore import ClusterStoreStatus
from kpack_core.envtest.certs import CertificateAuthority
from kpack_core.envtest.cnb import (
    SEED_BUILDPACKAGES,
    BuildpackStack,
    GroupEntry,
    ImageBuild,
    ShellBuildpack,
    StackRole,
    buildpackage_image,
    relocate_manifest,
    stack_image,
    stand_up_seed_images,
)
from kpack_core.envtest.registry import Registry
from kpack_core.registry import Keychain, RegistryClient
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.manager import Manager
from kpack_core.runtime.resource import SECRETS, SERVICE_ACCOUNTS
from tests.integration.controllers.conftest import (
    docker_config_secret,
    failed_with,
    is_ready,
    running_manager,
    service_account,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("kpack_crds")]

SEED = Path(__file__).resolve().parents[3] / "config" / "samples" / "00-clusterstore.yaml"
POLL = 2.0
JSON = dict[str, Any]
Factory = Callable[[Keychain], RegistryClient]
STACKS = (BuildpackStack("io.buildpacks.stacks.test", ("curl",)),)


def clusterstore(name: str, sources: Sequence[str], *, account: JSON | None = None) -> JSON:
    spec: JSON = {"sources": [{"image": source} for source in sources]}
    if account is not None:
        spec["serviceAccountRef"] = account
    return {"apiVersion": "kpack.io/v1alpha2", "kind": "ClusterStore", "metadata": {"name": name}, "spec": spec}


def controller(factory: Factory, poll: float = POLL) -> Callable[[Manager], object]:
    return lambda manager: store.setup(manager, registry_client=factory, poll_interval=poll)


def buildpack(bp_id: str, version: str = "1.0.0", **kwargs: Any) -> ShellBuildpack:
    return ShellBuildpack(bp_id, version, homepage=f"https://example.com/{bp_id}", stacks=STACKS, **kwargs)


async def push(pusher: RegistryClient, reference: str, buildpacks: Sequence[ShellBuildpack]) -> ImageBuild:
    image = await buildpackage_image(buildpacks)
    await image.push(pusher, reference)
    return image


def expected_entries(image: ImageBuild, buildpacks: Sequence[ShellBuildpack], source: str) -> list[JSON]:
    """What the store should publish for one pushed buildpackage, computed from the image itself."""
    entry = buildpacks[0]
    package = {"id": entry.id, "version": entry.version, **({"homepage": entry.homepage} if entry.homepage else {})}
    out = []
    for bp, layer in zip(buildpacks, image.layers, strict=True):
        item: JSON = {
            "id": bp.id,
            "version": bp.version,
            "buildpackage": package,
            "storeImage": {"image": source},
            "diffId": layer.diff_id,
            "digest": layer.digest,
            "size": len(layer.blob),
            "api": bp.api,
        }
        if bp.homepage:
            item["homepage"] = bp.homepage
        if bp.order:
            item["order"] = [{"group": [e.to_json() for e in group]} for group in bp.order]
        if bp.stacks:
            item["stacks"] = [s.to_json() for s in bp.stacks]
        out.append(item)
    return out


async def test_a_store_lists_every_buildpack_of_every_source_sorted(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory, unique_name: str
) -> None:
    first, second = f"{registry.host}/{unique_name}/first:1", f"{registry.host}/{unique_name}/second:1"
    meta = ShellBuildpack("example/meta", "2.0.0", order=((GroupEntry("example/ruby", "1.0.0"),),))
    first_bps = [meta, buildpack("example/ruby")]
    second_bps = [buildpack("example/node", "3.1.0"), buildpack("example/ruby")]  # ruby again, from another image
    first_image = await push(push_client, first, first_bps)
    second_image = await push(push_client, second, second_bps)
    async with running_manager(client, controller(registry_client_factory)):
        await client.create(CLUSTER_STORES, clusterstore(unique_name, [second, first]))
        obj = await wait_for(client, CLUSTER_STORES, unique_name, is_ready, what="Ready")
    expected = expected_entries(first_image, first_bps, first) + expected_entries(second_image, second_bps, second)
    expected.sort(key=lambda bp: (f"{bp['id']}@{bp['version']}", bp["storeImage"]["image"]))
    assert obj["status"]["buildpacks"] == expected
    assert [(bp["id"], bp["storeImage"]["image"]) for bp in expected] == [
        ("example/meta", first),
        ("example/node", second),
        ("example/ruby", first),
        ("example/ruby", second),
    ]
    assert obj["status"]["observedGeneration"] == 1
    ClusterStoreStatus.from_json(obj["status"])


async def test_a_missing_or_broken_source_is_named_then_picked_up_once_fixed(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory, unique_name: str
) -> None:
    good, later = f"{registry.host}/{unique_name}/good:1", f"{registry.host}/{unique_name}/later:1"
    await push(push_client, good, [buildpack("example/go")])
    async with running_manager(client, controller(registry_client_factory)):
        await client.create(CLUSTER_STORES, clusterstore(unique_name, [good, later]))
        await wait_for(client, CLUSTER_STORES, unique_name, failed_with("ImageNotFound", f"store image {later}"))
        # now there is an image, but not a buildpackage
        await (await stack_image(StackRole.RUN, "io.buildpacks.stacks.test")).push(push_client, later)
        message = f"store image {later}: label io.buildpacks.buildpack.layers is missing"
        await wait_for(client, CLUSTER_STORES, unique_name, failed_with("InvalidBuildpackage", message))
        await push(push_client, later, [buildpack("example/java")])
        obj = await wait_for(client, CLUSTER_STORES, unique_name, is_ready, what="Ready after the push")
    assert [bp["id"] for bp in obj["status"]["buildpacks"]] == ["example/go", "example/java"]


async def test_a_private_registry_through_a_service_account(
    client: Client,
    push_client: RegistryClient,
    token_registry: Registry,
    registry_client_factory: Factory,
    namespace: str,
    unique_name: str,
) -> None:
    source = f"{token_registry.host}/{unique_name}/private:1"
    await push(push_client, source, [buildpack("example/private")])
    account = {"namespace": namespace, "name": "puller"}
    async with running_manager(client, controller(registry_client_factory)):
        await client.create(CLUSTER_STORES, clusterstore(f"{unique_name}-anonymous", [source]))
        await wait_for(
            client, CLUSTER_STORES, f"{unique_name}-anonymous", failed_with("Unauthorized", f"store image {source}")
        )
        await client.create(CLUSTER_STORES, clusterstore(unique_name, [source], account=account))
        await wait_for(client, CLUSTER_STORES, unique_name, failed_with("ServiceAccountNotFound", "puller"))
        secret = docker_config_secret(
            namespace, "creds", token_registry.host, token_registry.username, token_registry.password
        )
        await client.create(SECRETS, secret)
        await client.create(SERVICE_ACCOUNTS, service_account(namespace, "puller", ["creds"]))
        obj = await wait_for(client, CLUSTER_STORES, unique_name, is_ready, what="Ready with the service account")
    assert [bp["id"] for bp in obj["status"]["buildpacks"]] == ["example/private"]


async def test_a_registry_that_is_down_is_named_then_recovered_from(
    client: Client,
    push_client: RegistryClient,
    registry_client_factory: Factory,
    envtest_ca: CertificateAuthority,
    tmp_path: Path,
    unique_name: str,
) -> None:
    async with Registry(tmp_path / "second-registry", ca=envtest_ca) as second:
        source = f"{second.host}/{unique_name}/bp:1"
        await push(push_client, source, [buildpack("example/offline")])
        await second.stop()
        async with running_manager(client, controller(registry_client_factory)):
            await client.create(CLUSTER_STORES, clusterstore(unique_name, [source]))
            await wait_for(
                client, CLUSTER_STORES, unique_name, failed_with("RegistryUnavailable", f"store image {source}")
            )
            await second.start()
            await wait_for(client, CLUSTER_STORES, unique_name, is_ready, what="Ready once the registry is up")


async def test_a_moved_tag_is_noticed_and_last_good_buildpacks_are_kept_on_failure(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory, unique_name: str
) -> None:
    source = f"{registry.host}/{unique_name}/moving:1"
    await push(push_client, source, [buildpack("example/php", "1.0.0")])
    async with running_manager(client, controller(registry_client_factory, poll=1.0)):
        await client.create(CLUSTER_STORES, clusterstore(unique_name, [source]))
        await wait_for(client, CLUSTER_STORES, unique_name, is_ready, what="Ready")
        await push(push_client, source, [buildpack("example/php", "2.0.0")])

        def has_version_2(obj: JSON) -> bool:
            return [bp["version"] for bp in (obj.get("status") or {}).get("buildpacks") or ()] == ["2.0.0"]

        obj = await wait_for(client, CLUSTER_STORES, unique_name, has_version_2, what="showing the moved tag")
        assert is_ready(obj)
        await (await stack_image(StackRole.RUN, "io.buildpacks.stacks.test")).push(push_client, source)
        obj = await wait_for(client, CLUSTER_STORES, unique_name, failed_with("InvalidBuildpackage", source))
        assert has_version_2(obj)


async def test_the_seed_clusterstore_becomes_ready(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory
) -> None:
    mapping = await stand_up_seed_images(push_client, registry.host)
    seed = relocate_manifest(yaml.safe_load(SEED.read_text()), registry.host)
    name = seed["metadata"]["name"]
    with contextlib.suppress(errors.NotFoundError):
        await client.delete(CLUSTER_STORES, name)  # left by an earlier run on this control plane
    async with running_manager(client, controller(registry_client_factory)):
        await client.create(CLUSTER_STORES, seed)
        obj = await wait_for(client, CLUSTER_STORES, name, is_ready, what="Ready")
    original = "registry.example.com/buildpacks/java"
    buildpacks = SEED_BUILDPACKAGES[original]
    image = await buildpackage_image(buildpacks)
    expected = expected_entries(image, buildpacks, mapping[original])
    assert obj["status"]["buildpacks"] == sorted(expected, key=lambda bp: f"{bp['id']}@{bp['version']}")
