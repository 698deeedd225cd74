"""The ClusterStack controller on envtest with real registries: Ready with digests, private registries through a
service account, every failure named in the status and recovered from by itself, moved tags noticed by polling,
and the seed manifest."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpack_controllers import stack
from kpack_core.apis.resources import CLUSTER_STACKS
from kpack_core.envtest.certs import CertificateAuthority
from kpack_core.envtest.cnb import (
    StackImages,
    StackRole,
    push_stack_images,
    relocate_manifest,
    stack_image,
    stand_up_seed_images,
)
from kpack_core.envtest.registry import Registry
from kpack_core.registry import Keychain, RegistryClient, parse_reference
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

SEED = Path(__file__).resolve().parents[3] / "config" / "samples" / "00-clusterstack.yaml"
POLL = 2.0  # seconds: the periodic re-check, and so the longest retry backoff
STACK_ID = "io.buildpacks.stacks.test"
JSON = dict[str, Any]
Factory = Callable[[Keychain], RegistryClient]


def clusterstack(name: str, build: str, run: str, *, stack_id: str = STACK_ID, account: JSON | None = None) -> JSON:
    spec: JSON = {"id": stack_id, "buildImage": {"image": build}, "runImage": {"image": run}}
    if account is not None:
        spec["serviceAccountRef"] = account
    return {"apiVersion": "kpack.io/v1alpha2", "kind": "ClusterStack", "metadata": {"name": name}, "spec": spec}


def controller(factory: Factory, poll: float = POLL) -> Callable[[Manager], object]:
    return lambda manager: stack.setup(manager, registry_client=factory, poll_interval=poll)


def refs(host: str, name: str) -> tuple[str, str]:
    return f"{host}/{name}/build:1", f"{host}/{name}/run:1"


async def push_images(
    pusher: RegistryClient,
    build: str,
    run: str,
    *,
    stack_id: str = STACK_ID,
    mixins: Sequence[str] = (),
    uid: int = 1000,
) -> StackImages:
    return await push_stack_images(pusher, build, run, stack_id, mixins=mixins, user_id=uid, group_id=uid + 1)


async def test_a_stack_becomes_ready_with_digests_mixins_and_ids(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory, unique_name: str
) -> None:
    build, run = refs(registry.host, unique_name)
    pushed = await push_images(push_client, build, run, mixins=["ca-certificates", "build:git", "run:tzdata"])
    async with running_manager(client, controller(registry_client_factory)):
        await client.create(CLUSTER_STACKS, clusterstack(unique_name, build, run))
        obj = await wait_for(client, CLUSTER_STACKS, unique_name, is_ready, what="Ready")
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["id"] == STACK_ID
    assert status["buildImage"] == {"latestImage": str(pushed.build), "image": build}
    assert status["runImage"] == {"latestImage": str(pushed.run), "image": run}
    assert str(pushed.build) == f"{registry.host}/{unique_name}/build@{pushed.build.digest}"
    assert status["mixins"] == ["ca-certificates", "build:git", "run:tzdata"]
    assert (status["userId"], status["groupId"]) == (1000, 1001)


async def test_a_missing_image_is_named_then_picked_up_once_pushed_with_backoff(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory, unique_name: str
) -> None:
    build, run = refs(registry.host, unique_name)
    # Reads are counted per manager, and its controller reconciles every ClusterStack: other tests' leftovers go.
    for leftover in (await client.list(CLUSTER_STACKS)).items:
        await client.delete(CLUSTER_STACKS, leftover["metadata"]["name"])
    reads = 0

    def counting(keychain: Keychain) -> RegistryClient:
        nonlocal reads
        reads += 1
        return registry_client_factory(keychain)

    async with running_manager(client, controller(counting)):
        await client.create(CLUSTER_STACKS, clusterstack(unique_name, build, run))
        started = asyncio.get_running_loop().time()
        await wait_for(client, CLUSTER_STACKS, unique_name, failed_with("ImageNotFound", f"build image {build}"))
        await asyncio.sleep(4)
        failing_for = asyncio.get_running_loop().time() - started
        # Exponential backoff from 5 ms capped at the poll interval: about log2(POLL / 5 ms) quick retries, then one
        # per poll interval. Without backoff this would be thousands.
        bound = math.log2(POLL / 0.005) + failing_for / POLL + 4
        assert reads <= bound, f"{reads} reads in {failing_for:.1f} s (at most {bound:.0f} expected with backoff)"
        await push_images(push_client, build, run)
        await wait_for(client, CLUSTER_STACKS, unique_name, is_ready, what="Ready after the push")


async def test_a_stack_id_mismatch_names_both_images_then_recovers(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory, unique_name: str
) -> None:
    build, run = refs(registry.host, unique_name)
    await push_images(push_client, build, run, stack_id="io.buildpacks.stacks.other")
    async with running_manager(client, controller(registry_client_factory)):
        await client.create(CLUSTER_STACKS, clusterstack(unique_name, build, run))
        expected = (
            f"build image {build} has 'io.buildpacks.stacks.other', run image {run} has 'io.buildpacks.stacks.other'"
        )
        await wait_for(client, CLUSTER_STACKS, unique_name, failed_with("StackIdMismatch", STACK_ID, expected))
        await push_images(push_client, build, run)
        await wait_for(client, CLUSTER_STACKS, unique_name, is_ready, what="Ready after the fix")


async def test_bad_mixins_are_named_then_recovered_from(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory, unique_name: str
) -> None:
    build, run = refs(registry.host, unique_name)
    await (await stack_image(StackRole.BUILD, STACK_ID, mixins=["run:tzdata"])).push(push_client, build)
    await (await stack_image(StackRole.RUN, STACK_ID)).push(push_client, run)
    async with running_manager(client, controller(registry_client_factory)):
        await client.create(CLUSTER_STACKS, clusterstack(unique_name, build, run))
        message = f"build image {build} declares run-only mixin(s): run:tzdata"
        await wait_for(client, CLUSTER_STACKS, unique_name, failed_with("InvalidMixins", message))
        await push_images(push_client, build, run, mixins=["run:tzdata"])
        # The build image is pushed before the run image: a reconcile in between sees a valid stack without the
        # run mixin, and the periodic check then sees the new run image. Wait for that final state.
        await wait_for(
            client,
            CLUSTER_STACKS,
            unique_name,
            lambda o: is_ready(o) and o["status"].get("mixins") == ["run:tzdata"],
            what="Ready with the run image's mixin",
        )


async def test_a_build_image_without_cnb_user_id_is_named_then_recovered_from(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory, unique_name: str
) -> None:
    build, run = refs(registry.host, unique_name)
    no_user = await stack_image(StackRole.BUILD, STACK_ID, env={"PATH": "/bin", "CNB_GROUP_ID": "1000"})
    await no_user.push(push_client, build)
    await (await stack_image(StackRole.RUN, STACK_ID)).push(push_client, run)
    async with running_manager(client, controller(registry_client_factory)):
        await client.create(CLUSTER_STACKS, clusterstack(unique_name, build, run))
        message = f"build image {build}: env CNB_USER_ID is not set"
        await wait_for(client, CLUSTER_STACKS, unique_name, failed_with("InvalidBuildImage", message))
        await push_images(push_client, build, run, uid=4242)
        obj = await wait_for(client, CLUSTER_STACKS, unique_name, is_ready, what="Ready after the fix")
        assert obj["status"]["userId"] == 4242


async def test_a_private_registry_through_a_service_account_and_a_fixed_secret(
    client: Client,
    push_client: RegistryClient,
    token_registry: Registry,
    registry_client_factory: Factory,
    namespace: str,
    unique_name: str,
) -> None:
    build, run = refs(token_registry.host, unique_name)
    pushed = await push_images(push_client, build, run)
    account = {"namespace": namespace, "name": "puller"}
    async with running_manager(client, controller(registry_client_factory)):
        # anonymous: refused by the registry
        anonymous = f"{unique_name}-anonymous"
        await client.create(CLUSTER_STACKS, clusterstack(anonymous, build, run))
        await wait_for(client, CLUSTER_STACKS, anonymous, failed_with("Unauthorized", f"build image {build}"))
        # the service account does not exist yet, then its secret does not, then the password is wrong
        await client.create(CLUSTER_STACKS, clusterstack(unique_name, build, run, account=account))
        await wait_for(
            client, CLUSTER_STACKS, unique_name, failed_with("ServiceAccountNotFound", f"{namespace}/puller")
        )
        await client.create(SERVICE_ACCOUNTS, service_account(namespace, "puller", ["creds"]))
        await wait_for(
            client,
            CLUSTER_STACKS,
            unique_name,
            failed_with("SecretNotFound", f"{namespace}/creds", f"{namespace}/puller"),
        )
        secret = docker_config_secret(namespace, "creds", token_registry.host, token_registry.username, "wrong")
        await client.create(SECRETS, secret)
        await wait_for(client, CLUSTER_STACKS, unique_name, failed_with("Unauthorized", f"build image {build}"))
        # fixing the secret is enough: the object is never touched
        fixed = docker_config_secret(
            namespace, "creds", token_registry.host, token_registry.username, token_registry.password
        )
        current = await client.get(SECRETS, "creds", namespace)
        await client.update(SECRETS, {**current, "data": fixed["data"]})
        obj = await wait_for(client, CLUSTER_STACKS, unique_name, is_ready, what="Ready with the fixed secret")
        assert obj["status"]["buildImage"]["latestImage"] == str(pushed.build)
        assert obj["metadata"]["generation"] == 1


async def test_a_registry_that_is_down_is_named_then_recovered_from(
    client: Client,
    push_client: RegistryClient,
    registry_client_factory: Factory,
    envtest_ca: CertificateAuthority,
    tmp_path: Path,
    unique_name: str,
) -> None:
    async with Registry(tmp_path / "second-registry", ca=envtest_ca) as second:
        build, run = refs(second.host, unique_name)
        pushed = await push_images(push_client, build, run)
        await second.stop()
        async with running_manager(client, controller(registry_client_factory)):
            await client.create(CLUSTER_STACKS, clusterstack(unique_name, build, run))
            await wait_for(
                client, CLUSTER_STACKS, unique_name, failed_with("RegistryUnavailable", f"build image {build}")
            )
            await second.start()
            obj = await wait_for(client, CLUSTER_STACKS, unique_name, is_ready, what="Ready once the registry is up")
            assert obj["status"]["runImage"]["latestImage"] == str(pushed.run)


async def test_a_moved_tag_is_noticed_by_the_periodic_check_and_last_good_fields_are_kept(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory, unique_name: str
) -> None:
    build, run = refs(registry.host, unique_name)
    first = await push_images(push_client, build, run, uid=1000)
    async with running_manager(client, controller(registry_client_factory, poll=1.0)):
        await client.create(CLUSTER_STACKS, clusterstack(unique_name, build, run))
        await wait_for(client, CLUSTER_STACKS, unique_name, is_ready, what="Ready")
        second = await push_images(push_client, build, run, uid=2000)
        assert second.build.digest != first.build.digest
        obj = await wait_for(
            client,
            CLUSTER_STACKS,
            unique_name,
            lambda o: (o.get("status") or {}).get("buildImage", {}).get("latestImage") == str(second.build),
            what="showing the moved build image",
        )
        assert obj["status"]["userId"] == 2000
        assert is_ready(obj)
        # the tags move to a broken stack: Ready=False, and the last good digests stay
        await push_images(push_client, build, run, stack_id="io.buildpacks.stacks.other")
        obj = await wait_for(client, CLUSTER_STACKS, unique_name, failed_with("StackIdMismatch", build))
        assert obj["status"]["buildImage"]["latestImage"] == str(second.build)
        assert obj["status"]["userId"] == 2000


async def test_the_seed_clusterstack_becomes_ready(
    client: Client, push_client: RegistryClient, registry: Registry, registry_client_factory: Factory
) -> None:
    mapping = await stand_up_seed_images(push_client, registry.host)
    seed = relocate_manifest(yaml.safe_load(SEED.read_text()), registry.host)
    name = seed["metadata"]["name"]
    with contextlib.suppress(errors.NotFoundError):
        await client.delete(CLUSTER_STACKS, name)  # left by an earlier run on this control plane
    async with running_manager(client, controller(registry_client_factory)):
        await client.create(CLUSTER_STACKS, seed)
        obj = await wait_for(client, CLUSTER_STACKS, name, is_ready, what="Ready")
    build = mapping["registry.example.com/stacks/build:base"]
    assert obj["status"]["buildImage"]["image"] == build
    assert obj["status"]["buildImage"]["latestImage"].startswith(f"{parse_reference(build).name}@sha256:")
    assert obj["status"]["mixins"] == ["ca-certificates", "build:git", "run:tzdata"]
