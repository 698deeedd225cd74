"""Typed errors of builder assembly: each names the buildpack, stack, store or image at fault, so the message can go
into a Builder's `Ready` condition as it is and tell the user what to fix.

Every error is a `BuilderError`; the controller reports any of them on the Builder and retries with backoff (a
store, stack or lifecycle image that is fixed later makes the builder recover by itself).
"""

from __future__ import annotations

from collections.abc import Sequence


class BuilderError(Exception):
    """A builder image cannot be made from what its spec references."""


class BuildpackNotFoundError(BuilderError):
    """The store has no buildpack with this id (and version, when one was asked for)."""

    def __init__(
        self, store: str, buildpack_id: str, version: str | None = None, *, required_by: str | None = None
    ) -> None:
        if version:
            message = f"could not find buildpack {buildpack_id}@{version} in ClusterStore {store}"
        else:
            message = f"could not find buildpack with id '{buildpack_id}' in ClusterStore {store}"
        if required_by:
            message += f" (in the order of meta-buildpack {required_by})"
        super().__init__(message)
        self.store = store
        self.buildpack_id = buildpack_id
        self.version = version


class InvalidBuildpackVersionError(BuilderError):
    """No version was asked for and a candidate's version is not semantic, so there is no "highest" one."""

    def __init__(self, store: str, buildpack_id: str, version: str) -> None:
        super().__init__(
            f"cannot pick the highest version of buildpack '{buildpack_id}' in ClusterStore {store}: version "
            f"{version!r} is not a semantic version; give the version in the builder's order"
        )
        self.store = store
        self.buildpack_id = buildpack_id
        self.version = version


class BuildpackCycleError(BuilderError):
    """A meta-buildpack orders itself, directly or through others (kpack recursed until it crashed)."""

    def __init__(self, chain: Sequence[str]) -> None:
        super().__init__(f"meta-buildpack order cycle: {' -> '.join(chain)}")
        self.chain = tuple(chain)


class InvalidStoreBuildpackError(BuilderError):
    """A store status entry lacks what a builder layer needs (digest, diffID, size or source image)."""

    def __init__(self, store: str, buildpack: str, problem: str) -> None:
        super().__init__(f"ClusterStore {store}: buildpack {buildpack}: {problem}")
        self.store = store
        self.buildpack = buildpack


class StackNotSupportedError(BuilderError):
    """A buildpack declares no stack matching the builder's stack id."""

    def __init__(self, buildpack: str, stack_id: str) -> None:
        super().__init__(f"buildpack {buildpack} does not support stack {stack_id}: stack {stack_id} is not supported")
        self.buildpack = buildpack
        self.stack_id = stack_id


class MissingMixinsError(BuilderError):
    """The stack lacks mixins a buildpack requires."""

    def __init__(self, buildpack: str, stack_id: str, missing: Sequence[str]) -> None:
        super().__init__(
            f"buildpack {buildpack} does not support stack {stack_id}: stack missing mixin(s): {', '.join(missing)}"
        )
        self.buildpack = buildpack
        self.stack_id = stack_id
        self.missing = tuple(missing)


class UnsupportedBuildpackApiError(BuilderError):
    """A buildpack implements a buildpack API the lifecycle does not run."""

    def __init__(self, buildpack: str, api: str, lifecycle_version: str, supported: Sequence[str]) -> None:
        super().__init__(
            f"buildpack {buildpack} uses buildpack API {api or '(none)'}, which lifecycle {lifecycle_version} does "
            f"not support (supported: {', '.join(supported) or 'none'})"
        )
        self.buildpack = buildpack
        self.api = api


class UnsupportedPlatformApiError(BuilderError):
    """The lifecycle speaks none of the platform APIs this controller drives builds with."""

    def __init__(self, lifecycle_version: str, offered: Sequence[str], wanted: Sequence[str]) -> None:
        super().__init__(
            f"unsupported platform apis in lifecycle {lifecycle_version}: {', '.join(offered) or 'none'}; "
            f"expecting one of: {', '.join(wanted)}"
        )
        self.lifecycle_version = lifecycle_version


class LifecycleImageError(BuilderError):
    """The lifecycle image lacks what a builder needs (its metadata label, or a layer for the builder's OS)."""

    def __init__(self, image: str, problem: str) -> None:
        super().__init__(f"lifecycle image {image}: {problem}")
        self.image = image
        self.problem = problem


class LifecycleNotConfiguredError(BuilderError):
    """The `lifecycle-image` ConfigMap is missing or unusable."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"lifecycle image not configured: {problem}")
        self.problem = problem


class StackImageError(BuilderError):
    """The build image cannot carry a builder (unsupported OS, unusable config)."""

    def __init__(self, image: str, problem: str) -> None:
        super().__init__(f"build image {image}: {problem}")
        self.image = image
        self.problem = problem
