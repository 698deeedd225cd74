"""Whether a builder's buildpacks can run on its stack with its lifecycle (spec §1.3.1 step 6).

- The lifecycle must speak one of the platform APIs this controller drives builds with (0.3 to 0.6).
- Every regular (non-meta) buildpack must use a buildpack API the lifecycle runs, declare the stack's id (or `*`
  from buildpack API 0.5 on), and the first matching stack entry's mixins must all be on the stack.

Mixins: the stack lists unprefixed mixins (on both images) and `build:`/`run:` ones. A buildpack requirement is met
by the same string, and a prefixed requirement (`build:git`) also by the unprefixed mixin (`git` is on both images);
kpack compared strings only and refused that second case.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from kpack_core.cnb.errors import (
    MissingMixinsError,
    StackNotSupportedError,
    UnsupportedBuildpackApiError,
    UnsupportedPlatformApiError,
)
from kpack_core.cnb.metadata import BuildpackLayer, LifecycleMetadata, StackSupport
from kpack_core.cnb.semver import parse_api

SUPPORTED_PLATFORM_APIS: Final = ("0.3", "0.4", "0.5", "0.6")
"""The platform APIs the build pod knows how to drive (spec §2.2)."""

ANY_STACK: Final = "*"
ANY_STACK_MIN_API: Final = (0, 5)
"""The buildpack API from which a buildpack may declare the stack `*`."""


def check_platform_apis(lifecycle: LifecycleMetadata) -> None:
    offered = lifecycle.platform_apis.all
    if not any(api in offered for api in SUPPORTED_PLATFORM_APIS):
        raise UnsupportedPlatformApiError(lifecycle.version, offered, SUPPORTED_PLATFORM_APIS)


def missing_mixins(required: Iterable[str], provided: Iterable[str]) -> list[str]:
    """The required mixins the stack lacks, in the order required."""
    have = set(provided)
    missing = []
    for mixin in required:
        _, colon, bare = mixin.partition(":")
        prefixed = colon and mixin.split(":", 1)[0] in ("build", "run")
        if mixin in have or (prefixed and bare in have):
            continue
        missing.append(mixin)
    return missing


def matching_stack(buildpack: BuildpackLayer, stack_id: str) -> StackSupport | None:
    """The first stack entry of `buildpack` that matches `stack_id` (`*` only from buildpack API 0.5)."""
    api = parse_api(buildpack.api)
    any_allowed = api is not None and api >= ANY_STACK_MIN_API
    for stack in buildpack.stacks:
        if stack.id == stack_id or (stack.id == ANY_STACK and any_allowed):
            return stack
    return None


def check_buildpack(
    buildpack: BuildpackLayer, lifecycle: LifecycleMetadata, stack_id: str, mixins: Sequence[str]
) -> None:
    """Raise the first reason `buildpack` (not a meta-buildpack) cannot run on this stack and lifecycle."""
    supported = lifecycle.buildpack_apis.all
    if buildpack.api not in supported:
        raise UnsupportedBuildpackApiError(buildpack.key, buildpack.api, lifecycle.version, supported)
    stack = matching_stack(buildpack, stack_id)
    if stack is None:
        raise StackNotSupportedError(buildpack.key, stack_id)
    missing = missing_mixins(stack.mixins, mixins)
    if missing:
        raise MissingMixinsError(buildpack.key, stack_id, missing)


def validate_builder(
    buildpacks: Sequence[BuildpackLayer], lifecycle: LifecycleMetadata, stack_id: str, mixins: Sequence[str]
) -> None:
    """Every check above, buildpacks in builder layer order; meta-buildpacks run nothing and are not checked."""
    for buildpack in buildpacks:
        if not buildpack.is_meta:
            check_buildpack(buildpack, lifecycle, stack_id, mixins)
    check_platform_apis(lifecycle)
