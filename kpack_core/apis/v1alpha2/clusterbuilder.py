"""ClusterBuilder (kpack.io/v1alpha2): a builder image any namespace's Images may use, pushed with the credentials
of a ServiceAccount named by namespace and name.

kpack 0.4.0 gave ClusterBuilder no defaults and reported its BuilderSpec errors without the `spec.` prefix; here
the stack and store kinds are defaulted as for Builder (they may name one kind only), and every path starts at the
object root.
"""

from __future__ import annotations

from typing import Final

from kpack_core.apis.base import KubeObjectModel, ObjectReference
from kpack_core.apis.buildpacks import check_service_account_ref
from kpack_core.apis.errors import FieldError, join
from kpack_core.apis.v1alpha2.builder import BuilderSpec, BuilderStatus, default_builder_spec, validate_builder_spec

KIND: Final = "ClusterBuilder"
"""The kind's name."""


class ClusterBuilderSpec(BuilderSpec):
    """A ClusterBuilder's spec: the builder, and the service account whose secrets push it."""

    service_account_ref: ObjectReference | None = None
    """The ServiceAccount (`name` and `namespace`, both required) whose registry secrets push the builder image."""


class ClusterBuilder(KubeObjectModel):
    """A builder image for the Images of every namespace."""

    spec: ClusterBuilderSpec
    """The desired builder."""
    status: BuilderStatus | None = None
    """The builder last made."""


def default_spec(spec: ClusterBuilderSpec) -> None:
    """ClusterBuilder defaults: the stack and store reference kinds (no default service account: it has to name a
    namespace)."""
    default_builder_spec(spec)


def validate_spec(spec: ClusterBuilderSpec, path: str) -> list[FieldError]:
    """ClusterBuilder rules: a service account reference with name and namespace, then the BuilderSpec rules."""
    return [
        *check_service_account_ref(spec.service_account_ref, join(path, "serviceAccountRef")),
        *validate_builder_spec(spec, path),
    ]


def set_defaults(obj: ClusterBuilder) -> None:
    """Default a ClusterBuilder in place: `stack.kind` ClusterStack and `store.kind` ClusterStore when not given."""
    default_spec(obj.spec)


def validate(obj: ClusterBuilder, old: ClusterBuilder | None = None) -> list[FieldError]:
    """Every violation of the ClusterBuilder rules, paths from the object root. No field is immutable, so `old`
    changes nothing; it keeps one signature for every kind."""
    del old
    return validate_spec(obj.spec, "spec")
