"""The Builder and ClusterBuilder reconcilers (spec §1.3): assemble the builder image from a ClusterStack, a
ClusterStore and the lifecycle image, push it to `spec.tag`, and report what is in it.

One reconciler class serves both kinds; they differ in scope and in whose credentials push (a Builder: its
namespace's `spec.serviceAccountName`/`serviceAccount`; a ClusterBuilder: `spec.serviceAccountRef`).

Differences from kpack 0.4.0, on purpose:
- Errors are not permanent. The `Ready=False` condition names the buildpack, stack, store or image at fault (the
  previous `latestImage`, `builderMetadata`, `stack` and `order` are kept, as in kpack), and the reconcile raises,
  so it is retried with per-key exponential backoff and recovers by itself once the cause is fixed.
- A ClusterStack or ClusterStore change re-reconciles the builders using it through field indexes (no tracker
  lease, no full scan); so does a change of the `lifecycle-image` ConfigMap or of the lifecycle image digest.
- Builders are re-checked every `recheck_interval` seconds (kpack configured a polling frequency but never used
  it): a lifecycle image moved under its tag, or a builder tag overwritten by someone else, is noticed.
- A reconcile that finds nothing new writes nothing: the assembled image's digest is compared with what the tag
  holds before any push, and the status is written only when it changed.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import pydantic
import structlog

from kpack_controllers.lifecycle import (
    DEFAULT_SYSTEM_NAMESPACE,
    LIFECYCLE_CONFIGMAP,
    LifecycleImageProvider,
)
from kpack_controllers.registry_clients import RegistryClientFactory, manager_registry_clients
from kpack_controllers.status import READY, condition, previous_conditions, ready, write_status
from kpack_core.apis.resources import BUILDERS, CLUSTER_BUILDERS, CLUSTER_STACKS, CLUSTER_STORES
from kpack_core.apis.v1alpha2.builder import BuilderSpec, NamespacedBuilderSpec, effective_service_account
from kpack_core.apis.v1alpha2.clusterbuilder import ClusterBuilderSpec
from kpack_core.apis.v1alpha2.clusterstack import ClusterStackStatus
from kpack_core.apis.v1alpha2.clusterstore import ClusterStoreStatus
from kpack_core.cnb import (
    BuilderError,
    BuilderImage,
    RemoteLayer,
    SaveResult,
    StackInputs,
    StoreIndex,
    assemble_builder,
    order_from_entries,
    order_json,
    read_image,
    resolve_order,
    save_image,
)
from kpack_core.keychains import ClientReader, SecretFormatError, SecretReader, ServiceAccountKeychain
from kpack_core.registry import InvalidReferenceError, Keychain, RegistryError, RegistryOptions
from kpack_core.runtime.client import Client
from kpack_core.runtime.clock import REAL_CLOCK, Clock
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.informer import Informer
from kpack_core.runtime.manager import Manager
from kpack_core.runtime.predicate import GenerationChanged
from kpack_core.runtime.reconcile import ReportedError, Request, Result
from kpack_core.runtime.resource import CONFIGMAPS, Resource
from kpack_core.runtime.store import ALL_NAMESPACES, IndexFunc, field_indexer

log = structlog.get_logger(__name__)

JSON = dict[str, Any]

STACK_INDEX: Final = "spec.stack.name"
"""Builders (and ClusterBuilders) by the ClusterStack they name."""
STORE_INDEX: Final = "spec.store.name"
"""Builders (and ClusterBuilders) by the ClusterStore they name."""
DEFAULT_RECHECK_INTERVAL: Final = 600.0
DEFAULT_WORKERS: Final = 2


def _version() -> str:
    try:
        return importlib.metadata.version("kpack-py")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


CREATED_BY_VERSION: Final = f"v{_version()} (kpack-py)"
"""The builder metadata label's `createdBy.version` (kpack: `v<version> (git sha: <sha>)`)."""


class BuilderReferenceError(BuilderError):
    """The spec references a ClusterStack or ClusterStore that does not exist or is not usable (yet)."""


class InvalidBuilderSpecError(BuilderError):
    """The spec cannot be read (the webhook refuses such specs; this catches objects written around it)."""


class BuilderNotReadyError(ReportedError):
    """Raised after `Ready=False` was written, so the controller retries with backoff; names the builder."""

    def __init__(self, builder: str, cause: str) -> None:
        super().__init__(f"{builder}: {cause}")


_REPORTED = (BuilderError, RegistryError, InvalidReferenceError, SecretFormatError)
"""Failures a user can act on: reported in the Ready condition. Anything else (API errors, bugs) just retries."""


@dataclass(frozen=True)
class BuilderOptions:
    """How the builder controllers run. Every default is documented here and only here.

    - `system_namespace`: where the `lifecycle-image` ConfigMap lives (kpack: `SYSTEM_NAMESPACE`, `kpack`).
    - `recheck_interval`: seconds between re-checks of a Ready builder (re-assembly; pushes only on change).
    - `workers`: concurrent reconciles per controller (kpack: 2).
    - `registry`: options of the default registry client factory (extra CA, insecure registries).
    """

    system_namespace: str = DEFAULT_SYSTEM_NAMESPACE
    recheck_interval: float = DEFAULT_RECHECK_INTERVAL
    workers: int = DEFAULT_WORKERS
    registry: RegistryOptions = field(default_factory=RegistryOptions)


@dataclass(frozen=True)
class _Inputs:
    """What a builder is made from, read from the cache: spec, stack and store."""

    spec: BuilderSpec
    tag: str
    stack: ClusterStackStatus
    stack_inputs: StackInputs
    build_image: str
    store_generation: int | None
    store_index: StoreIndex


def _generation(obj: JSON) -> int | None:
    value = (obj.get("metadata") or {}).get("generation")
    return value if isinstance(value, int) else None


def _message(obj: JSON) -> str:
    for found in (obj.get("status") or {}).get("conditions") or ():
        if found.get("type") == READY and found.get("message"):
            return f": {found['message']}"
    return ""


class BuilderReconciler:
    """Reconciles Builders (`resource` BUILDERS) or ClusterBuilders (`resource` CLUSTER_BUILDERS)."""

    def __init__(
        self,
        client: Client,
        resource: Resource,
        builders: Informer,
        stacks: Informer,
        stores: Informer,
        lifecycle: LifecycleImageProvider,
        registry_clients: RegistryClientFactory,
        secrets: SecretReader,
        *,
        clock: Clock = REAL_CLOCK,
        recheck_interval: float = DEFAULT_RECHECK_INTERVAL,
        created_by_version: str = CREATED_BY_VERSION,
    ) -> None:
        self.client = client
        self.resource = resource
        self.builders = builders
        self.stacks = stacks
        self.stores = stores
        self.lifecycle = lifecycle
        self.registry_clients = registry_clients
        self.secrets = secrets
        self.clock = clock
        self.recheck_interval = recheck_interval
        self.created_by_version = created_by_version

    async def reconcile(self, request: Request) -> Result:
        obj = self.builders.get(request.name, request.namespace)
        if obj is None:
            return Result()  # deleted: the pushed image stays, as in kpack
        try:
            image, saved, inputs = await self._make(obj)
        except _REPORTED as exc:
            await self._report_failure(obj, str(exc))
            raise BuilderNotReadyError(self.resource.describe(request.namespace, request.name), str(exc)) from exc
        if saved.written:
            log.info("builder image pushed", image=saved.identifier, timestamp_tag=saved.timestamp_tag)
        await write_status(self.client, self.resource, obj, self._ready_status(obj, image, saved, inputs))
        return Result(requeue_after=self.recheck_interval)

    # -- inputs ---------------------------------------------------------------------------------------------------

    def _spec(self, obj: JSON) -> BuilderSpec:
        model: type[BuilderSpec] = NamespacedBuilderSpec if self.resource.namespaced else ClusterBuilderSpec
        try:
            return model.from_json(obj.get("spec") or {})
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in ("spec", *first["loc"]))
            raise InvalidBuilderSpecError(f"invalid spec: {where}: {first['msg']}") from None

    def _inputs(self, obj: JSON) -> _Inputs:
        spec = self._spec(obj)
        if not spec.tag:
            raise InvalidBuilderSpecError("spec.tag is empty")
        store_name = spec.store.name if spec.store else None
        stack_name = spec.stack.name if spec.stack else None
        if not store_name or not stack_name:
            raise InvalidBuilderSpecError("spec.store.name and spec.stack.name are required")
        store = self.stores.get(store_name)
        if store is None:
            raise BuilderReferenceError(f"ClusterStore {store_name} not found")
        if not ready(store):
            raise BuilderReferenceError(f"ClusterStore {store_name} is not ready{_message(store)}")
        stack = self.stacks.get(stack_name)
        if stack is None:
            raise BuilderReferenceError(f"ClusterStack {stack_name} not found")
        if not ready(stack):
            raise BuilderReferenceError(f"stack {stack_name} is not ready{_message(stack)}")
        stack_status = ClusterStackStatus.from_json(stack.get("status") or {})
        store_status = ClusterStoreStatus.from_json(store.get("status") or {})
        stack_inputs, build_image = _stack_inputs(stack_name, stack_status)
        return _Inputs(
            spec=spec,
            tag=spec.tag,
            stack=stack_status,
            stack_inputs=stack_inputs,
            build_image=build_image,
            store_generation=store_status.observed_generation,
            store_index=StoreIndex(store_name, store_status.buildpacks or []),
        )

    def keychain(self, obj: JSON, spec: BuilderSpec) -> Keychain:
        """Whose secrets read the build image and push the builder."""
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        if isinstance(spec, NamespacedBuilderSpec):
            return ServiceAccountKeychain(self.secrets, namespace, effective_service_account(spec))
        ref = spec.service_account_ref if isinstance(spec, ClusterBuilderSpec) else None
        return ServiceAccountKeychain(
            self.secrets, (ref.namespace if ref else None) or "", (ref.name if ref else None) or ""
        )

    # -- making the image -----------------------------------------------------------------------------------------

    async def _make(self, obj: JSON) -> tuple[BuilderImage, SaveResult, _Inputs]:
        inputs = self._inputs(obj)
        resolved = resolve_order(order_from_entries(inputs.spec.order), inputs.store_index)
        lifecycle = await self.lifecycle.current()
        async with self.registry_clients(self.keychain(obj, inputs.spec)) as registry:
            build = await read_image(registry, inputs.build_image)
            image = assemble_builder(build, lifecycle, inputs.stack_inputs, resolved, self.created_by_version)

            async def fetch(layer: RemoteLayer) -> bytes:
                if layer.source.name == lifecycle.reference.name:
                    return await self.lifecycle.read_blob(layer)
                return await registry.get_blob(layer.source, layer.digest)

            saved = await save_image(registry, inputs.tag, image, fetch=fetch, wall=self.clock.wall())
        return image, saved, inputs

    # -- status ---------------------------------------------------------------------------------------------------

    def _ready_status(self, obj: JSON, image: BuilderImage, saved: SaveResult, inputs: _Inputs) -> JSON:
        stack = inputs.stack
        status: JSON = {
            "observedGeneration": _generation(obj),
            "conditions": [condition(READY, True, previous=previous_conditions(obj))],
            "builderMetadata": [buildpack.info_json() for buildpack in image.buildpacks],
            "order": order_json(image.order),
            "stack": {"runImage": stack.run_image.latest_image if stack.run_image else None, "id": stack.id},
            "latestImage": saved.identifier,
            "observedStackGeneration": stack.observed_generation,
            "observedStoreGeneration": inputs.store_generation,
            "os": image.os,
        }
        return {key: value for key, value in status.items() if value is not None}

    async def _report_failure(self, obj: JSON, message: str) -> None:
        """Ready=False with `message`; every other field as it was (kpack keeps the last good image)."""
        status = dict(obj.get("status") or {})
        status["observedGeneration"] = _generation(obj)
        status["conditions"] = [condition(READY, False, previous=previous_conditions(obj), message=message)]
        log.info("builder not ready", reason=message)
        await write_status(self.client, self.resource, obj, {k: v for k, v in status.items() if v is not None})


def _stack_inputs(name: str, status: ClusterStackStatus) -> tuple[StackInputs, str]:
    """What the builder takes from a Ready stack's status, and its build image; a status without them is reported,
    naming the fields."""
    build_image = status.build_image.latest_image if status.build_image else None
    values = {
        "id": status.id,
        "buildImage.latestImage": build_image,
        "runImage.image": status.run_image.image if status.run_image else None,
        "runImage.latestImage": status.run_image.latest_image if status.run_image else None,
        "userId": status.user_id,
        "groupId": status.group_id,
    }
    missing = [key for key, value in values.items() if value is None or value == ""]
    if (
        missing
        or not status.id
        or not build_image
        or not status.run_image
        or not status.run_image.image
        or status.user_id is None
        or status.group_id is None
    ):
        raise BuilderReferenceError(f"ClusterStack {name} status has no {', '.join(missing)}")
    mixins = tuple(status.mixins or ())
    return StackInputs(status.id, status.run_image.image, mixins, status.user_id, status.group_id), build_image


# -- wiring ---------------------------------------------------------------------------------------------------------


def _spec_name(field_name: str) -> IndexFunc:
    def extract(obj: JSON) -> Iterable[str]:
        ref = (obj.get("spec") or {}).get(field_name) or {}
        name = ref.get("name") if isinstance(ref, dict) else None
        return [name] if isinstance(name, str) and name else []

    return field_indexer(extract)


def _ensure_index(informer: Informer, name: str, field_name: str) -> None:
    if name not in informer.store.index_names():
        informer.add_indexer(name, _spec_name(field_name))


def _requests(objects: Iterable[JSON]) -> list[Request]:
    return [Request((obj.get("metadata") or {}).get("namespace") or None, obj["metadata"]["name"]) for obj in objects]


def lifecycle_provider(
    manager: Manager,
    *,
    registry_clients: RegistryClientFactory,
    secrets: SecretReader,
    system_namespace: str = DEFAULT_SYSTEM_NAMESPACE,
) -> LifecycleImageProvider:
    """A provider reading the `lifecycle-image` ConfigMap through the manager's cache (one informer, scoped to the
    ConfigMap by name, shared by both builder controllers)."""
    return LifecycleImageProvider(_configmaps(manager, system_namespace), registry_clients, secrets, system_namespace)


def _configmaps(manager: Manager, namespace: str) -> Informer:
    return manager.cache.informer(
        CONFIGMAPS, namespace=namespace, field_selector=f"metadata.name={LIFECYCLE_CONFIGMAP}"
    )


def _setup(
    manager: Manager,
    resource: Resource,
    name: str,
    *,
    options: BuilderOptions,
    registry_clients_: RegistryClientFactory | None,
    secrets: SecretReader | None,
    lifecycle: LifecycleImageProvider | None,
) -> Controller:
    factory = registry_clients_ or manager_registry_clients(manager, options.registry)
    reader = secrets or ClientReader(manager.client)
    provider = lifecycle or lifecycle_provider(
        manager, registry_clients=factory, secrets=reader, system_namespace=options.system_namespace
    )
    builders = manager.cache.informer(resource)
    stacks = manager.cache.informer(CLUSTER_STACKS)
    stores = manager.cache.informer(CLUSTER_STORES)
    _ensure_index(builders, STACK_INDEX, "stack")
    _ensure_index(builders, STORE_INDEX, "store")
    reconciler = BuilderReconciler(
        manager.client,
        resource,
        builders,
        stacks,
        stores,
        provider,
        factory,
        reader,
        clock=manager.clock,
        recheck_interval=options.recheck_interval,
    )
    controller = Controller(name, reconciler, max_concurrent_reconciles=options.workers, clock=manager.clock)

    def using(index: str) -> Callable[[JSON], list[Request]]:
        def users(obj: JSON) -> list[Request]:
            return _requests(builders.by_index(index, f"{ALL_NAMESPACES}/{obj['metadata']['name']}"))

        return users

    def everyone(obj: JSON) -> list[Request]:
        del obj
        return _requests(builders.list())

    # Our own status writes do not change the generation: without the predicate each would reconcile again.
    controller.watch_for(builders, GenerationChanged())
    controller.watch_mapped(stacks, using(STACK_INDEX))
    controller.watch_mapped(stores, using(STORE_INDEX))
    controller.watch_mapped(provider.configmaps, everyone)

    def lifecycle_moved() -> None:
        for request in everyone({}):
            controller.queue.add(request)

    provider.on_change(lifecycle_moved)
    manager.add_controller(controller)
    return controller


def setup_builders(
    manager: Manager,
    *,
    options: BuilderOptions | None = None,
    registry_clients: RegistryClientFactory | None = None,
    secrets: SecretReader | None = None,
    lifecycle: LifecycleImageProvider | None = None,
) -> Controller:
    """Register the Builder controller (queue `Builders`): informers, field indexes, watches. Pass the same
    `lifecycle` provider to `setup_cluster_builders` to share it (one is made per call otherwise)."""
    return _setup(
        manager,
        BUILDERS,
        "Builders",
        options=options or BuilderOptions(),
        registry_clients_=registry_clients,
        secrets=secrets,
        lifecycle=lifecycle,
    )


def setup_cluster_builders(
    manager: Manager,
    *,
    options: BuilderOptions | None = None,
    registry_clients: RegistryClientFactory | None = None,
    secrets: SecretReader | None = None,
    lifecycle: LifecycleImageProvider | None = None,
) -> Controller:
    """Register the ClusterBuilder controller (queue `ClusterBuilders`); see `setup_builders`."""
    return _setup(
        manager,
        CLUSTER_BUILDERS,
        "ClusterBuilders",
        options=options or BuilderOptions(),
        registry_clients_=registry_clients,
        secrets=secrets,
        lifecycle=lifecycle,
    )
