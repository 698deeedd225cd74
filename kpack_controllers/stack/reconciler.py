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
from typing_extensions import Unpack

from kpack_controllers.resolving import (
    ControllerOptions,
    ImageResolvingReconciler,
    InvalidSpecError,
    checked_spec,
    first_failure_in_order,
    keychain_for,
    read_image,
    register_controller,
)
from kpack_controllers.stack.rules import StackImage, validate_stack
from kpack_core.apis.resources import CLUSTER_STACKS
from kpack_core.apis.v1alpha2.clusterstack import ClusterStackSpec, validate_spec
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.manager import Manager

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


class ClusterStackReconciler(ImageResolvingReconciler):
    """Resolves ClusterStacks (see `ImageResolvingReconciler`): `objects` is the ClusterStack informer."""

    resource = CLUSTER_STACKS

    def kept(self, obj: JSON) -> JSON:
        return kept_fields(obj)

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


def setup(manager: Manager, **options: Unpack[ControllerOptions]) -> Controller:
    """Register the ClusterStack controller on `manager` and return it (options and their defaults:
    `kpack_controllers.resolving.register_controller`)."""
    return register_controller(manager, ClusterStackReconciler, CONTROLLER_NAME, **options)
