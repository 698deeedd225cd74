"""SourceResolver (kpack.io/v1alpha2): resolves an Image's source to something fixed (a git revision to its
commit) and polls branches and tags for new commits. The Image controller makes one per Image, named
`<image>-source`, copying the Image's source and service account.

kpack 0.4.0 neither defaulted nor validated SourceResolvers (its webhooks did not handle the kind). Here the
service account is defaulted to `default`, as on Image and Build, and the source gets the same checks as an
Image's: a SourceResolver made by hand fails at admission instead of in the resolver. The JSON name of the service
account is `serviceAccount` in both versions (kpack 0.4.0's, whatever its Go name).
"""

from __future__ import annotations

from typing import Final

from kpack_core.apis.base import ApiModel, KubeObjectModel, Status
from kpack_core.apis.core import DEFAULT_SERVICE_ACCOUNT, ResolvedSourceConfig, SourceConfig, check_source
from kpack_core.apis.errors import FieldError, join

KIND: Final = "SourceResolver"
"""The kind's name."""


class SourceResolverSpec(ApiModel):
    """The source to resolve, and the credentials to reach it."""

    service_account: str | None = None
    """The ServiceAccount whose git secrets (annotated `kpack.io/git`) reach the repository; default `default`."""
    source: SourceConfig | None = None
    """The source to resolve; required."""


class SourceResolverStatus(Status):
    """The source as last resolved (conditions `Ready` and `ActivePolling`)."""

    source: ResolvedSourceConfig | None = None
    """The resolved source."""


class SourceResolver(KubeObjectModel):
    """A source resolved and polled for an Image."""

    spec: SourceResolverSpec
    """The source to resolve."""
    status: SourceResolverStatus | None = None
    """The source as last resolved."""


def service_account_name(resolver: SourceResolver) -> str:
    """The ServiceAccount whose secrets reach the source."""
    return resolver.spec.service_account or DEFAULT_SERVICE_ACCOUNT


def default_spec(spec: SourceResolverSpec) -> None:
    """Service account `default` when none is given (shared with v1alpha1)."""
    if not spec.service_account:
        spec.service_account = DEFAULT_SERVICE_ACCOUNT


def validate_spec(spec: SourceResolverSpec, path: str) -> list[FieldError]:
    """The source: exactly one kind, complete (shared with v1alpha1). Nothing is immutable: the Image controller
    updates the source when the Image's changes."""
    return check_source(spec.source, join(path, "source"))


def set_defaults(obj: SourceResolver) -> None:
    """Default a SourceResolver in place (ours; kpack had none): service account `default`."""
    default_spec(obj.spec)


def validate(obj: SourceResolver, old: SourceResolver | None = None) -> list[FieldError]:
    """Every violation of the SourceResolver rules (ours; kpack had none), paths from the object root. No field is
    immutable, so `old` changes nothing."""
    del old
    return validate_spec(obj.spec, "spec")
