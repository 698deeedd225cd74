"""The ClusterStack reconciler (spec §1.4): resolve the build and run images to digests and check them.

A reconcile reads the spec, builds the keychain (`resolving.keychain_for`), reads both images concurrently,
applies `rules.validate_stack` and writes status:

- Ready: `{observedGeneration, conditions: [Ready=True], id, buildImage: {latestImage, image},
  runImage: {latestImage, image}, mixins (omitted when empty), userId, groupId}`; then it asks to be reconciled
  again after the poll interval, which notices a tag that moved.
- Not ready: `Ready=False` with a reason and a message naming the image or reference at fault, then the error is
  raised and retried with backoff (see `resolving`). **The last good resolved fields are kept** while they still
  describe the spec (same stack id and image references): a registry outage or a tag that now points at a bad
  image does not take a working stack's digests away (Builders still refuse a stack that is not Ready, so nothing
  builds on it meanwhile). When the spec names other images or another id they are cleared, since they would
  describe images the spec no longer names. kpack cleared them on every failure.
"""

from __future__ import annotations

from typing import Any

import structlog

from kpack_controllers.resolving import (
    DEFAULT_POLL_INTERVAL,
    WORKERS,
    InvalidSpecError,
    RegistryClientFactory,
    ResolveError,
    checked_spec,
    default_registry_client,
    first_failure_in_order,
    generation,
    keychain_for,
    publish,
    read_image,
    ready_condition,
    register_controller,
)
from kpack_controllers.stack.rules import StackImage, validate_stack
from kpack_core.apis.resources import CLUSTER_STACKS
from kpack_core.apis.v1alpha2.clusterstack import ClusterStackSpec, validate_spec
from kpack_core.keychains import SecretReader
from kpack_core.runtime.client import Client
from kpack_core.runtime.clock import REAL_CLOCK, Clock
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.events import EventRecorder
from kpack_core.runtime.informer import Informer
from kpack_core.runtime.manager import Manager
from kpack_core.runtime.reconcile import Request, Result, TerminalError

log = structlog.get_logger(__name__)

JSON = dict[str, Any]

CONTROLLER_NAME = "clusterstack"
"""The controller's name in logs and metrics."""
RESOLVED_FIELDS = ("id", "buildImage", "runImage", "mixins", "userId", "groupId")
"""Status fields computed from the images: kept on failure while they describe the spec."""


def parse_spec(obj: JSON) -> tuple[str, str, str, JSON | None]:
    """Stack id, build image, run image and service account reference of a valid spec; `InvalidSpecError` names
    every violation."""
    spec = checked_spec("ClusterStack", obj, ClusterStackSpec.from_json, validate_spec)
    ref = spec.service_account_ref
    build = spec.build_image.image if spec.build_image else None
    run = spec.run_image.image if spec.run_image else None
    if not (spec.id and build and run):  # unreachable after validate_spec; narrows the types
        raise InvalidSpecError("ClusterStack", [])
    return spec.id, build, run, ref.to_json() if ref is not None else None


def kept_fields(obj: JSON) -> JSON:
    """The last resolved fields, if they describe the current spec (module docstring); else nothing."""
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    same = (
        status.get("id") == spec.get("id")
        and (status.get("buildImage") or {}).get("image") == (spec.get("buildImage") or {}).get("image")
        and (status.get("runImage") or {}).get("image") == (spec.get("runImage") or {}).get("image")
    )
    return {field: status[field] for field in RESOLVED_FIELDS if field in status} if same else {}


class ClusterStackReconciler:
    """Resolves ClusterStacks. `stacks` is the ClusterStack informer (reads come from its cache); `secrets` reads
    the referenced ServiceAccounts and secrets; `registry_client` makes a registry client for a keychain."""

    def __init__(
        self,
        client: Client,
        stacks: Informer,
        secrets: SecretReader,
        *,
        registry_client: RegistryClientFactory = default_registry_client,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        clock: Clock = REAL_CLOCK,
        recorder: EventRecorder | None = None,
    ) -> None:
        self.client = client
        self.stacks = stacks
        self.secrets = secrets
        self.registry_client = registry_client
        self.poll_interval = poll_interval
        self.clock = clock
        self.recorder = recorder

    async def reconcile(self, request: Request) -> Result:
        obj = self.stacks.get(request.name)
        if obj is None:
            return Result()  # deleted: nothing of ours outlives it
        base: JSON = {"observedGeneration": generation(obj)}
        try:
            resolved = await self.resolve(obj)
        except ResolveError as exc:
            status = {**base, "conditions": [ready_condition(obj, exc, self.clock)], **kept_fields(obj)}
            await publish(self.client, CLUSTER_STACKS, obj, status, self.recorder)
            if isinstance(exc, InvalidSpecError):
                raise TerminalError(str(exc)) from exc
            raise
        status = {**base, "conditions": [ready_condition(obj, None, self.clock)], **resolved}
        await publish(self.client, CLUSTER_STACKS, obj, status, self.recorder)
        return Result(requeue_after=self.poll_interval)

    async def resolve(self, obj: JSON) -> JSON:
        """The resolved status fields of the stack; raises `ResolveError` saying what is at fault."""
        stack_id, build_image, run_image, service_account_ref = parse_spec(obj)
        keychain = await keychain_for(self.secrets, service_account_ref)
        async with self.registry_client(keychain) as registry:
            build, run = await first_failure_in_order(
                [read_image(registry, build_image, "build image"), read_image(registry, run_image, "run image")]
            )
        details = validate_stack(
            stack_id, StackImage(build.reference, build.labels, build.env), StackImage(run.reference, run.labels)
        )
        resolved: JSON = {
            "id": stack_id,
            "buildImage": {"latestImage": build.latest_image, "image": build.reference},
            "runImage": {"latestImage": run.latest_image, "image": run.reference},
        }
        if details.mixins:
            resolved["mixins"] = details.mixins
        resolved["userId"] = details.user_id
        resolved["groupId"] = details.group_id
        return resolved


def setup(
    manager: Manager,
    *,
    registry_client: RegistryClientFactory = default_registry_client,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    secrets: SecretReader | None = None,
    events: bool = True,
    workers: int = WORKERS,
) -> Controller:
    """Register the ClusterStack controller on `manager` and return it.

    See `kpack_controllers.resolving.register_controller` for its informer, watch, backoff, secrets and events.
    """

    def make(objects: Informer, reader: SecretReader, recorder: EventRecorder | None) -> ClusterStackReconciler:
        return ClusterStackReconciler(
            manager.client,
            objects,
            reader,
            registry_client=registry_client,
            poll_interval=poll_interval,
            clock=manager.clock,
            recorder=recorder,
        )

    return register_controller(
        manager,
        CLUSTER_STACKS,
        CONTROLLER_NAME,
        make,
        poll_interval=poll_interval,
        secrets=secrets,
        events=events,
        workers=workers,
    )
