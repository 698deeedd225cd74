"""Builder (kpack.io/v1alpha2): a builder image assembled from a ClusterStack and buildpacks of a ClusterStore, and
pushed to `spec.tag` with the credentials of a ServiceAccount in the Builder's namespace.

The service account may be written `serviceAccount` (kpack 0.4.0, both versions) or `serviceAccountName` (the
spelling kpack adopted in 0.4.1, and Image's); both are accepted, two different names are refused, and
`service_account_name` gives the one in effect. Defaulting fills `serviceAccount`, the spelling kpack 0.4.0 clients
read.

This module also holds what ClusterBuilder shares (`BuilderSpec`, `BuilderStatus` and their defaulting and checks),
and the spec-level functions the v1alpha1 Builder, whose JSON is the same, delegates to.
"""

from __future__ import annotations

from typing import Final

from kpack_core.apis.base import ApiModel, KubeObjectModel, ObjectReference, Status
from kpack_core.apis.buildpacks import (
    CLUSTER_STACK_KIND,
    CLUSTER_STORE_KIND,
    BuildpackMetadata,
    BuildStack,
    OrderEntry,
    check_kind_reference,
    check_order,
    check_tag,
)
from kpack_core.apis.errors import FieldError, join, missing

KIND: Final = "Builder"
"""The kind's name."""
DEFAULT_SERVICE_ACCOUNT: Final = "default"
"""The service account a Builder uses when it names none."""


class BuilderSpec(ApiModel):
    """What a builder image is made of and where it is pushed (shared by Builder and ClusterBuilder)."""

    tag: str | None = None
    """Where the builder image is pushed: an image tag, e.g. `registry.example.com/builders/java`."""
    stack: ObjectReference | None = None
    """The ClusterStack the builder is built on: `name`, and `kind` ClusterStack (the default)."""
    store: ObjectReference | None = None
    """The ClusterStore the buildpacks come from: `name`, and `kind` ClusterStore (the default)."""
    order: list[OrderEntry] | None = None
    """The groups of buildpacks tried, in order, during detection; a buildpack without a version is the highest
    version the store has."""


class NamespacedBuilderSpec(BuilderSpec):
    """A Builder's spec: the builder, and the service account whose secrets push it."""

    service_account: str | None = None
    """The ServiceAccount (in the Builder's namespace) whose registry secrets push the builder image; default
    `default`. Same as `serviceAccountName`."""
    service_account_name: str | None = None
    """Same as `serviceAccount` (the spelling of kpack 0.4.1 and later); give one, or the same name in both."""


class BuilderStatus(Status):
    """What the builder reconciler made: the image it pushed and what is in it (shared by ClusterBuilder)."""

    builder_metadata: list[BuildpackMetadata] | None = None
    """The buildpacks the builder image contains."""
    order: list[OrderEntry] | None = None
    """The order of the builder image, every buildpack at a concrete version."""
    stack: BuildStack | None = None
    """The stack id, and the run image (the ClusterStack's resolved run image) builds use."""
    latest_image: str | None = None
    """The pushed builder image, by digest."""
    observed_stack_generation: int | None = None
    """The ClusterStack's `status.observedGeneration` the builder was made from."""
    observed_store_generation: int | None = None
    """The ClusterStore's `status.observedGeneration` the builder was made from."""
    os: str | None = None
    """The operating system of the builder image: `linux` or `windows`."""


class Builder(KubeObjectModel):
    """A builder image for the Images of one namespace."""

    spec: NamespacedBuilderSpec
    """The desired builder."""
    status: BuilderStatus | None = None
    """The builder last made."""


# -- shared with ClusterBuilder ----------------------------------------------------------------------------------


def default_builder_spec(spec: BuilderSpec) -> None:
    """Fill the kinds of the stack and store references: ClusterStack and ClusterStore are the only kinds they may
    name, so writing them adds nothing."""
    if spec.stack is None:
        spec.stack = ObjectReference(kind=CLUSTER_STACK_KIND)
    elif not spec.stack.kind:
        spec.stack.kind = CLUSTER_STACK_KIND
    if spec.store is None:
        spec.store = ObjectReference(kind=CLUSTER_STORE_KIND)
    elif not spec.store.kind:
        spec.store.kind = CLUSTER_STORE_KIND


def validate_builder_spec(spec: BuilderSpec, path: str) -> list[FieldError]:
    """`tag` a valid tag; `stack` and `store` name a ClusterStack and a ClusterStore; every order entry an id."""
    return [
        *check_tag(spec.tag, join(path, "tag")),
        *check_kind_reference(spec.stack, CLUSTER_STACK_KIND, join(path, "stack")),
        *check_kind_reference(spec.store, CLUSTER_STORE_KIND, join(path, "store")),
        *check_order(spec.order, join(path, "order")),
    ]


# -- Builder ------------------------------------------------------------------------------------------------------


def effective_service_account(spec: NamespacedBuilderSpec) -> str:
    """The service account a spec names under either spelling, else the default."""
    return spec.service_account_name or spec.service_account or DEFAULT_SERVICE_ACCOUNT


def default_namespaced_spec(spec: NamespacedBuilderSpec) -> None:
    """Builder defaults: the reference kinds, and `serviceAccount` when neither spelling names one."""
    default_builder_spec(spec)
    if not spec.service_account and not spec.service_account_name:
        spec.service_account = DEFAULT_SERVICE_ACCOUNT


def validate_namespaced_spec(spec: NamespacedBuilderSpec, path: str) -> list[FieldError]:
    """Builder rules: the shared ones, and one service account under either spelling."""
    errors = validate_builder_spec(spec, path)
    if spec.service_account and spec.service_account_name and spec.service_account != spec.service_account_name:
        errors.append(
            FieldError(
                f"{join(path, 'serviceAccount')}, {join(path, 'serviceAccountName')}",
                "expected exactly one, got both",
                f'serviceAccount is "{spec.service_account}" but serviceAccountName is "{spec.service_account_name}":'
                " they are two spellings of one field; give one, or the same name in both",
            )
        )
    elif not spec.service_account and not spec.service_account_name:
        errors.append(missing(join(path, "serviceAccount")))
    return errors


def set_defaults(obj: Builder) -> None:
    """Default a Builder in place (spec §5): `serviceAccount` "default", `stack.kind` ClusterStack, `store.kind`
    ClusterStore, each only when not given."""
    default_namespaced_spec(obj.spec)


def validate(obj: Builder, old: Builder | None = None) -> list[FieldError]:
    """Every violation of the Builder rules, paths from the object root. No Builder field is immutable (a new tag,
    stack, store or order just makes a new builder image), so `old` changes nothing; it keeps one signature for every
    kind."""
    del old
    return validate_namespaced_spec(obj.spec, "spec")


def service_account_name(builder: Builder) -> str:
    """The ServiceAccount whose secrets push the builder image."""
    return effective_service_account(builder.spec)
