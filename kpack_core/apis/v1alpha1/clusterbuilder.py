"""ClusterBuilder (kpack.io/v1alpha1): the same JSON as v1alpha2, so the spec and status models, the defaults and
the rules are v1alpha2's; only the kind model is this version's own. kpack never validated or defaulted v1alpha1
writes; here they get exactly what v1alpha2 gets.
"""

from __future__ import annotations

from kpack_core.apis.base import KubeObjectModel
from kpack_core.apis.errors import FieldError
from kpack_core.apis.v1alpha2.builder import BuilderSpec, BuilderStatus
from kpack_core.apis.v1alpha2.clusterbuilder import KIND, ClusterBuilderSpec, default_spec, validate_spec

__all__ = ["KIND", "BuilderSpec", "BuilderStatus", "ClusterBuilder", "ClusterBuilderSpec", "set_defaults", "validate"]


class ClusterBuilder(KubeObjectModel):
    """A builder image for the Images of every namespace."""

    spec: ClusterBuilderSpec
    """The desired builder."""
    status: BuilderStatus | None = None
    """The builder last made."""


def set_defaults(obj: ClusterBuilder) -> None:
    """Default a ClusterBuilder in place: `stack.kind` ClusterStack and `store.kind` ClusterStore when not given."""
    default_spec(obj.spec)


def validate(obj: ClusterBuilder, old: ClusterBuilder | None = None) -> list[FieldError]:
    """Every violation of the ClusterBuilder rules, paths from the object root; no field is immutable."""
    del old
    return validate_spec(obj.spec, "spec")
