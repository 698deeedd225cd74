"""Image (kpack.io/v1alpha1): the first form of the Image API, served next to v1alpha2: `serviceAccount`,
`cacheSize` for a volume cache, CNB `build.bindings`, and notary signing.

kpack 0.4.0 neither defaulted nor validated v1alpha1 writes (its webhooks matched v1alpha2 only); here they get the
same defaults and the same checks as v1alpha2 (history limits and tagging strategy included), minus the rules for
fields this version does not have. The status is v1alpha2's.
"""

from __future__ import annotations

from typing import Final

from kpack_core.apis.base import ApiModel, EnvVar, KubeObjectModel, ObjectReference, Quantity, ResourceRequirements
from kpack_core.apis.core import (
    DEFAULT_SERVICE_ACCOUNT,
    CNBBinding,
    NotaryConfig,
    SourceConfig,
    check_cnb_bindings,
    check_notary,
    check_source,
)
from kpack_core.apis.errors import FieldError
from kpack_core.apis.v1alpha2.image import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_HISTORY_LIMIT,
    KIND,
    ImageStatus,
    check_builder,
    check_cache_size,
    check_history_limits,
    check_name,
    check_tag_update,
    check_tagging_strategy,
)

__all__ = [
    "KIND",
    "Image",
    "ImageBuild",
    "ImageSpec",
    "ImageStatus",
    "service_account_name",
    "set_defaults",
    "validate",
]

NO_STORAGE_CLASS: Final = "spec.cacheSize cannot be set with no default StorageClass"


class ImageBuild(ApiModel):
    """How the Image's Builds run."""

    bindings: list[CNBBinding] | None = None
    """CNB bindings: a metadata ConfigMap and optional Secret each, mounted under `/platform/bindings/<name>`."""
    env: list[EnvVar] | None = None
    """Environment variables for the buildpacks."""
    resources: ResourceRequirements | None = None
    """Resources of the build pod."""


class ImageSpec(ApiModel):
    """The app image wanted: where it goes, what it is built from, and how builds run."""

    tag: str | None = None
    """Where the image is pushed, e.g. `registry.example.com/my-app`; required and immutable."""
    builder: ObjectReference | None = None
    """The builder: `kind` Builder (in the Image's namespace) or ClusterBuilder, and `name`."""
    service_account: str | None = None
    """The ServiceAccount whose secrets fetch the source and push the image; default `default`."""
    source: SourceConfig | None = None
    """Where the source code comes from; required."""
    cache_size: Quantity | None = None
    """Size of the volume build cache, e.g. `2G`; default 2G when the cluster has a default StorageClass. It may
    grow but not shrink."""
    failed_build_history_limit: int | None = None
    """How many failed Builds to keep (at least 1); default 10."""
    success_build_history_limit: int | None = None
    """How many successful Builds to keep (at least 1); default 10."""
    image_tagging_strategy: str | None = None
    """`BuildNumber` (default) or `None`."""
    build: ImageBuild | None = None
    """How builds run."""
    notary: NotaryConfig | None = None
    """Notary signing of built images."""


class Image(KubeObjectModel):
    """An app image kept built."""

    spec: ImageSpec
    """The image wanted."""
    status: ImageStatus | None = None
    """The builds as last observed."""


def service_account_name(image: Image) -> str:
    """The ServiceAccount the Image's builds use."""
    return image.spec.service_account or DEFAULT_SERVICE_ACCOUNT


def set_defaults(obj: Image, *, has_default_storage_class: bool = False) -> None:
    """Default an Image in place (spec §5): service account `default`, tagging strategy BuildNumber, history
    limits 10, and a 2G cache when none is given and the cluster has a default StorageClass."""
    spec = obj.spec
    if not spec.service_account:
        spec.service_account = DEFAULT_SERVICE_ACCOUNT
    if not spec.image_tagging_strategy:
        spec.image_tagging_strategy = "BuildNumber"
    if spec.failed_build_history_limit is None:
        spec.failed_build_history_limit = DEFAULT_HISTORY_LIMIT
    if spec.success_build_history_limit is None:
        spec.success_build_history_limit = DEFAULT_HISTORY_LIMIT
    if spec.cache_size is None and has_default_storage_class:
        spec.cache_size = DEFAULT_CACHE_SIZE


def validate(obj: Image, old: Image | None = None, *, has_default_storage_class: bool = False) -> list[FieldError]:
    """Every violation of the Image rules (spec §6.3, v1alpha1, plus the v1alpha2 limits and strategy checks), paths
    from the object root. `old` is the stored Image on update. (No field is reserved for the controller in v1alpha1,
    so the requesting user does not matter.)"""
    spec = obj.spec
    return [
        *check_name(obj),
        *check_tag_update(spec.tag, old.spec.tag if old else None, "spec.tag", old is not None),
        *check_builder(spec.builder, "spec.builder"),
        *check_source(spec.source, "spec.source"),
        *check_cnb_bindings(spec.build.bindings if spec.build else None, "spec.build.bindings"),
        *check_tagging_strategy(spec.image_tagging_strategy, "spec.imageTaggingStrategy"),
        *check_history_limits(spec.failed_build_history_limit, spec.success_build_history_limit, "spec"),
        *check_cache_size(
            spec.cache_size,
            old.spec.cache_size if old else None,
            "spec.cacheSize",
            has_default_storage_class=has_default_storage_class,
            no_class=NO_STORAGE_CLASS,
        ),
        *check_notary(spec.notary, "spec.notary"),
    ]
