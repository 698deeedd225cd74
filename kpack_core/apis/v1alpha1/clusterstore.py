"""ClusterStore (kpack.io/v1alpha1): the same JSON as v1alpha2, `serviceAccountRef` included.

kpack 0.4.0 declared `serviceAccountRef` in v1alpha2 only, yet served it through v1alpha1 too (no conversion, a
schema that kept unknown fields), and its own samples set it on v1alpha1 ClusterStores. Dropping it here would
prune a user's pull credentials silently, so v1alpha1 keeps it, and the models, defaults and rules are v1alpha2's.
"""

from __future__ import annotations

from kpack_core.apis.base import KubeObjectModel
from kpack_core.apis.errors import FieldError
from kpack_core.apis.v1alpha2.clusterstore import KIND, ClusterStoreSpec, ClusterStoreStatus, validate_spec

__all__ = ["KIND", "ClusterStore", "ClusterStoreSpec", "ClusterStoreStatus", "set_defaults", "validate"]


class ClusterStore(KubeObjectModel):
    """A store of buildpacks builders of every namespace may use."""

    spec: ClusterStoreSpec
    """The desired store."""
    status: ClusterStoreStatus | None = None
    """The buildpacks last found."""


def set_defaults(obj: ClusterStore) -> None:
    """A ClusterStore has no defaults; kept so every kind is defaulted the same way."""
    del obj


def validate(obj: ClusterStore, old: ClusterStore | None = None) -> list[FieldError]:
    """Every violation of the ClusterStore rules, paths from the object root; no field is immutable."""
    del old
    return validate_spec(obj.spec, "spec")
