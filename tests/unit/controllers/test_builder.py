"""The Builder reconciler's failure paths without a registry (table-driven), and the lifecycle ConfigMap parsing.

Each row puts objects in real informer stores, reconciles one Builder, and checks the Ready=False message written
(previous status fields kept) and that the reconcile raised, so the controller retries with backoff.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest

from kpack_controllers.builder import BuilderNotReadyError, BuilderReconciler
from kpack_controllers.lifecycle import LifecycleImageProvider, parse_config
from kpack_core.apis.resources import BUILDERS, CLUSTER_STACKS, CLUSTER_STORES
from kpack_core.cnb import LifecycleNotConfiguredError
from kpack_core.registry import Keychain, RegistryClient
from kpack_core.runtime.client import Client
from kpack_core.runtime.informer import Informer
from kpack_core.runtime.reconcile import Request, Result
from kpack_core.runtime.resource import CONFIGMAPS, Resource
from kpack_core.runtime.store import object_key

JSON = dict[str, Any]
READY = {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}
PREVIOUS = {"latestImage": "r.io/b@sha256:" + "1" * 64, "builderMetadata": [{"id": "a", "version": "1"}]}


class RecordingClient:
    def __init__(self) -> None:
        self.statuses: list[JSON] = []

    async def update_status(self, resource: Resource, obj: JSON) -> JSON:
        self.statuses.append(copy.deepcopy(obj["status"]))
        return obj


class NoSecrets:
    async def secret(self, namespace: str, name: str) -> JSON | None:
        return None

    async def service_account(self, namespace: str, name: str) -> JSON | None:
        return None


def _no_registry(keychain: Keychain) -> RegistryClient:
    raise AssertionError("these rows fail before any registry access")


def informer(resource: Resource, *objects: JSON) -> Informer:
    found = Informer(cast(Client, None), resource)
    for obj in objects:
        found.store.put(object_key(obj), obj)
    return found


def stack(name: str = "stack", ready: bool = True, **status: Any) -> JSON:
    condition = READY if ready else {"type": "Ready", "status": "False", "message": "bad image"}
    full = {
        "observedGeneration": 1,
        "conditions": [condition],
        "id": "io.buildpacks.stacks.bionic",
        "buildImage": {"latestImage": "r.io/build@sha256:" + "2" * 64},
        "runImage": {"latestImage": "r.io/run@sha256:" + "3" * 64, "image": "r.io/run:base"},
        "userId": 1000,
        "groupId": 1000,
        **status,
    }
    return {"metadata": {"name": name}, "spec": {}, "status": {k: v for k, v in full.items() if v is not None}}


def store(name: str = "store", ready: bool = True, buildpacks: list[JSON] | None = None) -> JSON:
    condition = READY if ready else {"type": "Ready", "status": "False"}
    return {
        "metadata": {"name": name},
        "spec": {},
        "status": {"conditions": [condition], "buildpacks": buildpacks or []},
    }


def builder(**spec: Any) -> JSON:
    full = {
        "tag": "r.io/builder",
        "stack": {"kind": "ClusterStack", "name": "stack"},
        "store": {"kind": "ClusterStore", "name": "store"},
        "order": [{"group": [{"id": "example/go"}]}],
        **spec,
    }
    return {
        "metadata": {"name": "b", "namespace": "ns", "generation": 3},
        "spec": {k: v for k, v in full.items() if v is not None},
        "status": {**PREVIOUS, "conditions": [READY], "observedGeneration": 2},
    }


GO = {
    "id": "example/go",
    "version": "1.0.0",
    "storeImage": {"image": "r.io/go:1"},
    "diffId": "sha256:" + "4" * 64,
    "digest": "sha256:" + "5" * 64,
    "size": 10,
    "api": "0.4",
    "stacks": [{"id": "io.buildpacks.stacks.bionic"}],
}

ROWS = {
    "store missing": (builder(), [stack()], [], None, "ClusterStore store not found"),
    "store not ready": (builder(), [stack()], [store(ready=False)], None, "ClusterStore store is not ready"),
    "stack missing": (builder(), [], [store()], None, "ClusterStack stack not found"),
    "stack not ready": (builder(), [stack(ready=False)], [store()], None, "stack stack is not ready: bad image"),
    "stack status incomplete": (
        builder(),
        [stack(userId=None, buildImage=None)],
        [store()],
        None,
        "ClusterStack stack status has no buildImage.latestImage, userId",
    ),
    "unknown buildpack": (builder(), [stack()], [store()], None, "could not find buildpack with id 'example/go'"),
    "unknown version": (
        builder(order=[{"group": [{"id": "example/go", "version": "2.0.0"}]}]),
        [stack()],
        [store(buildpacks=[GO])],
        None,
        "could not find buildpack example/go@2.0.0 in ClusterStore store",
    ),
    "lifecycle not configured": (
        builder(),
        [stack()],
        [store(buildpacks=[GO])],
        None,
        "lifecycle image not configured: ConfigMap kpack/lifecycle-image not found",
    ),
    "lifecycle without image": (
        builder(),
        [stack()],
        [store(buildpacks=[GO])],
        {"metadata": {"name": "lifecycle-image", "namespace": "kpack"}, "data": {}},
        "lifecycle image not configured: ConfigMap kpack/lifecycle-image has no key 'image'",
    ),
    "no tag": (builder(tag=None), [stack()], [store()], None, "spec.tag is empty"),
    "unreadable spec": (
        builder(order="nonsense"),
        [stack()],
        [store()],
        None,
        "invalid spec: spec.order: Input should be a valid list",
    ),
}


@pytest.mark.parametrize(("obj", "stacks", "stores", "configmap", "message"), ROWS.values(), ids=list(ROWS))
async def test_failures_are_reported_then_raised(
    obj: JSON, stacks: list[JSON], stores: list[JSON], configmap: JSON | None, message: str
) -> None:
    client = RecordingClient()
    configmaps = informer(CONFIGMAPS, *([configmap] if configmap else []))
    provider = LifecycleImageProvider(configmaps, _no_registry, NoSecrets(), "kpack")
    reconciler = BuilderReconciler(
        cast(Client, client),
        BUILDERS,
        informer(BUILDERS, obj),
        informer(CLUSTER_STACKS, *stacks),
        informer(CLUSTER_STORES, *stores),
        provider,
        _no_registry,
        NoSecrets(),
    )

    with pytest.raises(BuilderNotReadyError, match=r"Builder\.kpack\.io ns/b: ") as raised:
        await reconciler.reconcile(Request("ns", "b"))

    assert message in str(raised.value)
    [status] = client.statuses
    [condition] = status["conditions"]
    assert condition["status"] == "False"
    assert message in condition["message"]
    assert status["observedGeneration"] == 3
    assert {k: status[k] for k in PREVIOUS} == PREVIOUS  # the last good image is kept


async def test_a_deleted_builder_is_done() -> None:
    reconciler = BuilderReconciler(
        cast(Client, RecordingClient()),
        BUILDERS,
        informer(BUILDERS),
        informer(CLUSTER_STACKS),
        informer(CLUSTER_STORES),
        LifecycleImageProvider(informer(CONFIGMAPS), _no_registry, NoSecrets()),
        _no_registry,
        NoSecrets(),
    )

    assert await reconciler.reconcile(Request("ns", "gone")) == Result()


def _configmap(**data: str) -> JSON:
    return {"metadata": {"name": "lifecycle-image", "namespace": "sys"}, "data": data}


def test_the_lifecycle_configmap_names_image_and_service_account() -> None:
    config = parse_config(
        _configmap(**{"image": "r.io/lifecycle:1", "serviceAccountRef.name": "sa", "serviceAccountRef.namespace": "x"}),
        "sys",
    )
    assert (str(config.image), config.service_account, config.service_account_namespace) == (
        "r.io/lifecycle:1",
        "sa",
        "x",
    )
    # a service account without a namespace is in the system namespace; none at all means no service account
    assert (
        parse_config(
            _configmap(**{"image": "r.io/l:1", "serviceAccountRef.name": "sa"}), "sys"
        ).service_account_namespace
        == "sys"
    )
    assert parse_config(_configmap(image="r.io/l:1"), "sys").service_account is None


@pytest.mark.parametrize(
    ("configmap", "message"),
    [
        (None, "ConfigMap sys/lifecycle-image not found"),
        (_configmap(), "ConfigMap sys/lifecycle-image has no key 'image'"),
        (_configmap(image="Not A Reference"), "ConfigMap sys/lifecycle-image: key 'image': invalid image reference"),
    ],
)
def test_an_unusable_lifecycle_configmap_says_why(configmap: JSON | None, message: str) -> None:
    with pytest.raises(LifecycleNotConfiguredError, match="lifecycle image not configured: " + message):
        parse_config(configmap, "sys")
