"""ClusterStack (kpack.io/v1alpha1): the same JSON as v1alpha2, `serviceAccountRef` included.

kpack 0.4.0 declared `serviceAccountRef` in v1alpha2 only, yet served it through v1alpha1 too (no conversion, a
schema that kept unknown fields), and its own samples set it on v1alpha1 ClusterStacks. Dropping it here would
prune a user's pull credentials silently, so v1alpha1 keeps it, and the models, defaults and rules are v1alpha2's.
"""

from __future__ import annotations

from kpack_core.apis.base import KubeObjectModel
from kpack_core.apis.errors import FieldError
from kpack_core.apis.v1alpha2.clusterstack import (
    KIND,
    ClusterStackSpec,
    ClusterStackSpecImage,
    ClusterStackStatus,
    ClusterStackStatusImage,
    validate_spec,
)

__all__ = [
    "KIND",
    "ClusterStack",
    "ClusterStackSpec",
    "ClusterStackSpecImage",
    "ClusterStackStatus",
    "ClusterStackStatusImage",
    "set_defaults",
    "validate",
]


class ClusterStack(KubeObjectModel):
    """A stack builders of every namespace may use."""

    spec: ClusterStackSpec
    """The desired stack."""
    status: ClusterStackStatus | None = None
    """The stack as last resolved."""


def set_defaults(obj: ClusterStack) -> None:
    """A ClusterStack has no defaults; kept so every kind is defaulted the same way."""
    del obj


def validate(obj: ClusterStack, old: ClusterStack | None = None) -> list[FieldError]:
    """Every violation of the ClusterStack rules, paths from the object root; no field is immutable."""
    del old
    return validate_spec(obj.spec, "spec")
