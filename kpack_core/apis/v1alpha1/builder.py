"""Builder (kpack.io/v1alpha1): the same JSON as v1alpha2 (kpack 0.4.0 served both versions of Builder from one
stored object), so the spec and status models, the defaults and the rules are v1alpha2's; only the kind model is
this version's own. kpack never validated or defaulted v1alpha1 writes; here they get exactly what v1alpha2 gets.
"""

from __future__ import annotations

from kpack_core.apis.base import KubeObjectModel
from kpack_core.apis.errors import FieldError
from kpack_core.apis.v1alpha2.builder import (
    DEFAULT_SERVICE_ACCOUNT,
    KIND,
    BuilderSpec,
    BuilderStatus,
    NamespacedBuilderSpec,
    default_namespaced_spec,
    effective_service_account,
    validate_namespaced_spec,
)

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT",
    "KIND",
    "Builder",
    "BuilderSpec",
    "BuilderStatus",
    "NamespacedBuilderSpec",
    "service_account_name",
    "set_defaults",
    "validate",
]


class Builder(KubeObjectModel):
    """A builder image for the Images of one namespace."""

    spec: NamespacedBuilderSpec
    """The desired builder."""
    status: BuilderStatus | None = None
    """The builder last made."""


def set_defaults(obj: Builder) -> None:
    """Default a Builder in place: `serviceAccount` "default", `stack.kind` ClusterStack, `store.kind`
    ClusterStore, each only when not given."""
    default_namespaced_spec(obj.spec)


def validate(obj: Builder, old: Builder | None = None) -> list[FieldError]:
    """Every violation of the Builder rules, paths from the object root; no field is immutable."""
    del old
    return validate_namespaced_spec(obj.spec, "spec")


def service_account_name(builder: Builder) -> str:
    """The ServiceAccount whose secrets push the builder image."""
    return effective_service_account(builder.spec)
