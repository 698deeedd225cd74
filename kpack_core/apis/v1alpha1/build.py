"""Build (kpack.io/v1alpha1): the first form of the Build API: `serviceAccount`, `cacheName` for a volume cache,
CNB `bindings`, notary signing, and no registry cache.

kpack 0.4.0 neither defaulted nor validated v1alpha1 writes; here they get v1alpha2's defaults and checks for the
fields this version has (notary included, which kpack's v1alpha1 validator skipped). The spec is immutable.
"""

from __future__ import annotations

from kpack_core.apis.base import ApiModel, EnvVar, KubeObjectModel, ResourceRequirements
from kpack_core.apis.core import (
    DEFAULT_SERVICE_ACCOUNT,
    BuildBuilderSpec,
    CNBBinding,
    NotaryConfig,
    SourceConfig,
    check_cnb_bindings,
    check_image,
    check_notary,
    check_pull_secrets,
    check_source,
    check_tags,
)
from kpack_core.apis.errors import FieldError, missing
from kpack_core.apis.v1alpha2.build import KIND, BuildStatusCommon, check_last_build, check_spec_unchanged

__all__ = [
    "KIND",
    "Build",
    "BuildSpec",
    "BuildStatus",
    "LastBuild",
    "service_account_name",
    "set_defaults",
    "validate",
]


class LastBuild(ApiModel):
    """The previous successful build of the same Image."""

    image: str | None = None
    """Its image, by digest."""
    stack_id: str | None = None
    """Its stack id."""


class BuildSpec(ApiModel):
    """What to build and how (immutable)."""

    tags: list[str] | None = None
    """The tags the image is pushed to; the first is the primary one. Required."""
    builder: BuildBuilderSpec | None = None
    """The builder image to run."""
    service_account: str | None = None
    """The ServiceAccount whose secrets fetch the source and push the image; default `default`."""
    source: SourceConfig | None = None
    """Where the source code comes from; required."""
    cache_name: str | None = None
    """A PersistentVolumeClaim mounted at `/cache` as the build cache."""
    bindings: list[CNBBinding] | None = None
    """CNB bindings: a metadata ConfigMap and optional Secret each, mounted under `/platform/bindings/<name>`."""
    env: list[EnvVar] | None = None
    """Environment variables for the buildpacks."""
    resources: ResourceRequirements | None = None
    """Resources of the build pod."""
    last_build: LastBuild | None = None
    """The previous build, whose image this one reuses."""
    notary: NotaryConfig | None = None
    """Notary signing of the built image."""


BuildStatus = BuildStatusCommon
"""v1alpha1 has every status field of v1alpha2 but `latestCacheImage`."""


class Build(KubeObjectModel):
    """One build of an app image."""

    spec: BuildSpec
    """What to build."""
    status: BuildStatus | None = None
    """How the build went."""


def service_account_name(build: Build) -> str:
    """The ServiceAccount the build pod runs as."""
    return build.spec.service_account or DEFAULT_SERVICE_ACCOUNT


def set_defaults(obj: Build) -> None:
    """Default a Build in place: service account `default`."""
    if not obj.spec.service_account:
        obj.spec.service_account = DEFAULT_SERVICE_ACCOUNT


def validate(obj: Build, old: Build | None = None) -> list[FieldError]:
    """Every violation of the Build rules (spec §6.4, v1alpha1), paths from the object root; on update (`old`
    given) the spec must be unchanged."""
    spec = obj.spec
    builder = spec.builder or BuildBuilderSpec()
    return [
        *([] if spec.tags else [missing("spec.tags")]),
        *check_tags(spec.tags, "spec.tags"),
        *check_image(builder.image, "spec.builder.image"),
        *check_pull_secrets(builder.image_pull_secrets, "spec.builder.imagePullSecrets"),
        *check_source(spec.source, "spec.source"),
        *check_cnb_bindings(spec.bindings, "spec.bindings"),
        *check_last_build(spec.last_build.image if spec.last_build else None, None, "spec.lastBuild"),
        *check_spec_unchanged(spec, old.spec if old else None, "spec"),
        *check_notary(spec.notary, "spec.notary"),
    ]
