"""SourceResolver (kpack.io/v1alpha1): the same JSON as v1alpha2 (kpack 0.4.0 served both versions from one stored
object), so the spec and status models, the defaults and the rules are v1alpha2's; only the kind model is this
version's own. As in v1alpha2, the defaults and checks are ours: kpack had none for this kind.
"""

from __future__ import annotations

from kpack_core.apis.base import KubeObjectModel
from kpack_core.apis.core import DEFAULT_SERVICE_ACCOUNT
from kpack_core.apis.errors import FieldError
from kpack_core.apis.v1alpha2.sourceresolver import (
    KIND,
    SourceResolverSpec,
    SourceResolverStatus,
    default_spec,
    validate_spec,
)

__all__ = [
    "KIND",
    "SourceResolver",
    "SourceResolverSpec",
    "SourceResolverStatus",
    "service_account_name",
    "set_defaults",
    "validate",
]


class SourceResolver(KubeObjectModel):
    """A source resolved and polled for an Image."""

    spec: SourceResolverSpec
    """The source to resolve."""
    status: SourceResolverStatus | None = None
    """The source as last resolved."""


def service_account_name(resolver: SourceResolver) -> str:
    """The ServiceAccount whose secrets reach the source."""
    return resolver.spec.service_account or DEFAULT_SERVICE_ACCOUNT


def set_defaults(obj: SourceResolver) -> None:
    """Default a SourceResolver in place: service account `default`."""
    default_spec(obj.spec)


def validate(obj: SourceResolver, old: SourceResolver | None = None) -> list[FieldError]:
    """Every violation of the SourceResolver rules, paths from the object root; nothing is immutable."""
    del old
    return validate_spec(obj.spec, "spec")
