"""Image (kpack.io/v1alpha2): an app image kept built from a source and a builder; every change of source, builder
or configuration makes a new Build.

Besides kpack 0.4.0's fields this version takes our users' spellings (seed manifests): `spec.serviceAccount` for
`spec.serviceAccountName`, `spec.serviceBindings` for `spec.build.services`, and `spec.cosign.enabled` and
`spec.cosign.keyRef` for signing with a named key. Either spelling may be used, or both with the same value; the
effective-value helpers (`service_account_name`, `services`, `cosign_key_ref`) read whichever was given, so
controllers need not care. Defaulting never adds the other spelling: a later `kubectl apply` changing the user's
spelling would otherwise leave the added one behind, different, and be refused.

This module also holds the checks the v1alpha1 Image shares (name, tag, builder, history limits, cache size).
"""

from __future__ import annotations

import re
from typing import Final

from kpack_core.apis.base import (
    Affinity,
    ApiModel,
    EnvVar,
    KubeObjectModel,
    ObjectReference,
    Quantity,
    ResourceRequirements,
    Status,
    Toleration,
)
from kpack_core.apis.core import (
    DEFAULT_SERVICE_ACCOUNT,
    CNBBinding,
    NotaryConfig,
    SourceConfig,
    check_cnb_bindings,
    check_controller_only,
    check_node_selector,
    check_notary,
    check_one_of_two,
    check_same_registry,
    check_services,
    check_size,
    check_source,
    check_tag,
    check_tags,
    parse_quantity,
)
from kpack_core.apis.errors import FieldError, immutable, join, missing

KIND: Final = "Image"
"""The kind's name."""
BUILDER_KINDS: Final = ("Builder", "ClusterBuilder")
"""The kinds an Image's `spec.builder` may name."""
TAGGING_STRATEGIES: Final = ("None", "BuildNumber")
"""`None`: builds push `tag` (and `additionalTags`) only; `BuildNumber`: also a tag naming the build number."""
DEFAULT_HISTORY_LIMIT: Final = 10
"""How many successful and how many failed Builds are kept when the Image says nothing."""
DEFAULT_CACHE_SIZE: Final = "2G"
"""The volume cache an Image gets when it names no cache and the cluster has a default StorageClass."""
NOTARY_DEPRECATED: Final = (
    "use of this field has been deprecated in v1alpha2, please use v1alpha1 for notary image signing"
)
CNB_BINDINGS_DEPRECATED: Final = (
    "use of this field has been deprecated in v1alpha2, please use v1alpha1 for CNB bindings"
)


# -- models ---------------------------------------------------------------------------------------------------------


class ImagePersistentVolumeCache(ApiModel):
    """A build cache on a PersistentVolumeClaim of the default StorageClass."""

    size: Quantity | None = None
    """The claim's size, e.g. `2G`; without a size there is no claim. It may grow but not shrink."""


class RegistryCache(ApiModel):
    """A build cache kept as an image in a registry."""

    tag: str | None = None
    """The cache image's tag."""


class ImageCacheConfig(ApiModel):
    """The build cache: at most one of `volume` and `registry`; `{}` means no cache."""

    volume: ImagePersistentVolumeCache | None = None
    """A cache on a volume."""
    registry: RegistryCache | None = None
    """A cache image in a registry."""


class CosignAnnotation(ApiModel):
    """An annotation added to the cosign signature."""

    name: str | None = None
    """The annotation's name."""
    value: str | None = None
    """The annotation's value."""


class CosignKeyRef(ApiModel):
    """The Secret holding the cosign key (data `cosign.key`, optionally `cosign.password`)."""

    name: str | None = None
    """The Secret's name."""
    namespace: str | None = None
    """The Secret's namespace; only the object's own namespace is allowed (and meant when absent)."""


class CosignConfig(ApiModel):
    """Signing of built images with cosign."""

    enabled: bool | None = None
    """false: never signed. true or absent: signed with `keyRef`'s key if given, else with every Secret of the
    service account that holds a `cosign.key` (kpack 0.4.0's only way)."""
    key_ref: CosignKeyRef | None = None
    """The Secret with the signing key, in the object's namespace."""
    annotations: list[CosignAnnotation] | None = None
    """Annotations added to the signature (besides `buildTimestamp` and `buildNumber`)."""


class ImageBuild(ApiModel):
    """How the Image's Builds run."""

    services: list[ObjectReference] | None = None
    """Service bindings: Secrets (`kind: Secret`) or provisioned services (`apiVersion`, `kind`, `name`), mounted
    under `/platform/bindings/<name>`. Same as `spec.serviceBindings`."""
    cnb_bindings: list[CNBBinding] | None = None
    """Deprecated CNB bindings; only the kpack controller may set them in v1alpha2 (use v1alpha1 `bindings`)."""
    env: list[EnvVar] | None = None
    """Environment variables for the buildpacks."""
    resources: ResourceRequirements | None = None
    """Resources of the build pod."""
    tolerations: list[Toleration] | None = None
    """Tolerations of the build pod."""
    node_selector: dict[str, str] | None = None
    """Node selector of the build pod; `kubernetes.io/os` is set from the builder image and may not be given."""
    affinity: Affinity | None = None
    """Affinity of the build pod."""
    runtime_class_name: str | None = None
    """RuntimeClass of the build pod."""
    scheduler_name: str | None = None
    """Scheduler of the build pod."""


class ImageSpec(ApiModel):
    """The app image wanted: where it goes, what it is built from, and how builds run."""

    tag: str | None = None
    """Where the image is pushed, e.g. `registry.example.com/my-app`; required and immutable."""
    additional_tags: list[str] | None = None
    """More tags every build pushes, in the registry of `tag`."""
    builder: ObjectReference | None = None
    """The builder: `kind` Builder (in the Image's namespace) or ClusterBuilder, and `name`."""
    service_account_name: str | None = None
    """The ServiceAccount whose secrets fetch the source and push the image; default `default`. Same as
    `serviceAccount`."""
    service_account: str | None = None
    """Same as `serviceAccountName` (our users' spelling); give one, or the same name in both."""
    source: SourceConfig | None = None
    """Where the source code comes from; required."""
    cache: ImageCacheConfig | None = None
    """The build cache; default a 2G volume when the cluster has a default StorageClass."""
    failed_build_history_limit: int | None = None
    """How many failed Builds to keep (at least 1); default 10."""
    success_build_history_limit: int | None = None
    """How many successful Builds to keep (at least 1); default 10."""
    image_tagging_strategy: str | None = None
    """`BuildNumber` (default) or `None`."""
    project_descriptor_path: str | None = None
    """Path of the `project.toml` relative to the source root."""
    build: ImageBuild | None = None
    """How builds run."""
    service_bindings: list[ObjectReference] | None = None
    """Same as `build.services` (our users' spelling); give one, or the same list in both."""
    notary: NotaryConfig | None = None
    """Deprecated notary signing; only the kpack controller may set it in v1alpha2 (use v1alpha1)."""
    cosign: CosignConfig | None = None
    """Cosign signing of built images."""
    default_process: str | None = None
    """The process type the image starts by default (`web` when empty, on platform APIs that need one)."""


class ImageStatus(Status):
    """The Image's builds as last observed (the same in both versions)."""

    latest_build_ref: str | None = None
    """Name of the most recent Build."""
    latest_build_image_generation: int | None = None
    """The Image generation the most recent Build was made for."""
    latest_image: str | None = None
    """The image of the last successful Build, by digest."""
    latest_stack: str | None = None
    """The stack id of the latest Build if it succeeded."""
    build_counter: int | None = None
    """The build number of the most recent Build."""
    build_cache_name: str | None = None
    """The PersistentVolumeClaim of the volume cache, if any."""
    latest_build_reason: str | None = None
    """Why the most recent Build was made: TRIGGER, COMMIT, CONFIG, BUILDPACK, STACK (comma-separated)."""


class Image(KubeObjectModel):
    """An app image kept built."""

    spec: ImageSpec
    """The image wanted."""
    status: ImageStatus | None = None
    """The builds as last observed."""


# -- effective values -------------------------------------------------------------------------------------------------


def namespace_of(obj: KubeObjectModel) -> str | None:
    """The object's namespace, if its metadata names one."""
    namespace = obj.metadata.get("namespace")
    return namespace if isinstance(namespace, str) and namespace else None


def service_account_name(image: Image) -> str:
    """The ServiceAccount the Image's builds use, under either spelling."""
    return image.spec.service_account_name or image.spec.service_account or DEFAULT_SERVICE_ACCOUNT


def services(image: Image) -> list[ObjectReference]:
    """The Image's service bindings, under either spelling."""
    return list((image.spec.build.services if image.spec.build else None) or image.spec.service_bindings or [])


def signing_key(cosign: CosignConfig | None, namespace: str | None) -> CosignKeyRef | None:
    """The Secret a cosign config signs with, its namespace filled in; None when it names no key or signing is
    disabled (shared by Image and Build)."""
    if cosign is None or cosign.enabled is False or cosign.key_ref is None:
        return None
    return CosignKeyRef(name=cosign.key_ref.name, namespace=cosign.key_ref.namespace or namespace)


def cosign_key_ref(image: Image) -> CosignKeyRef | None:
    """The Secret the Image's builds sign with, its namespace filled in; None when no key is named (the service
    account's cosign secrets are used, unless `enabled` is false)."""
    return signing_key(image.spec.cosign, namespace_of(image))


def cosign_enabled(image: Image) -> bool:
    """Whether the Image's builds may be signed with cosign at all (only `enabled: false` turns it off)."""
    return image.spec.cosign is None or image.spec.cosign.enabled is not False


# -- checks shared with v1alpha1 --------------------------------------------------------------------------------------

_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def check_name(obj: KubeObjectModel) -> list[FieldError]:
    """The name is a valid label value: Builds carry it in their `image.kpack.io/image` label."""
    name = obj.metadata.get("name")
    if not isinstance(name, str) or not name or (len(name) <= 63 and _LABEL_VALUE.fullmatch(name)):
        return []
    return [
        FieldError(
            "metadata.name",
            # kpack's wording, typo included: clients may match it.
            f"invalid image name: {name}, name must be a a valid label",
            "at most 63 characters: letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        )
    ]


def check_tag_update(tag: str | None, old_tag: str | None, path: str, updating: bool) -> list[FieldError]:
    """On create a valid tag; on update an unchanged one (kpack checks only that, so objects admitted by older
    rules stay writable)."""
    if updating:
        return [immutable(path, old_tag or "", tag or "")] if (tag or "") != (old_tag or "") else []
    return check_tag(tag, path)


def check_builder(builder: ObjectReference | None, path: str) -> list[FieldError]:
    """A builder `name`, and `kind` Builder or ClusterBuilder (no default: the two differ in where they live)."""
    builder = builder or ObjectReference()
    errors = [] if builder.name else [missing(join(path, "name"))]
    if not builder.kind:
        errors.append(missing(join(path, "kind")))
    elif builder.kind not in BUILDER_KINDS:
        errors.append(
            FieldError(join(path, "kind"), f"invalid value: {builder.kind}", "must be Builder or ClusterBuilder")
        )
    return errors


def check_tagging_strategy(value: str | None, path: str) -> list[FieldError]:
    """`None` or `BuildNumber` (kpack took anything, and treated it as BuildNumber); empty is defaulted."""
    if value and value not in TAGGING_STRATEGIES:
        return [FieldError(path, f"invalid value: {value}", "must be None or BuildNumber")]
    return []


def check_history_limits(failed: int | None, success: int | None, path: str) -> list[FieldError]:
    """Each limit, if given, at least 1 (absent means the default, 10)."""
    return [
        FieldError(join(path, field), "build history limit must be greater than 0")
        for field, value in (("failedBuildHistoryLimit", failed), ("successBuildHistoryLimit", success))
        if value is not None and value < 1
    ]


def check_cache_size(
    size: Quantity | None, old_size: Quantity | None, path: str, *, has_default_storage_class: bool, no_class: str
) -> list[FieldError]:
    """A volume cache size: a positive quantity; only with a default StorageClass (checked when the size is new or
    changed, so Images keep working if the class goes away); never smaller than before (`old_size`, on update)."""
    errors = check_size(size, path)
    if size is None or errors:
        return errors
    new = parse_quantity(size)
    try:
        old = parse_quantity(old_size) if old_size is not None else None
    except ValueError:
        old = None
    if not has_default_storage_class and new != old:
        errors.append(FieldError(path, no_class))
    if old is not None and new < old:
        errors.append(FieldError(path, "Field cannot be decreased", f"current: {old_size}, requested: {size}"))
    return errors


def check_cosign(cosign: CosignConfig | None, namespace: str | None, path: str) -> list[FieldError]:
    """Annotations named and valued; a key Secret named, and in the object's own namespace: a tenant must not sign
    with another namespace's key."""
    if cosign is None:
        return []
    errors = []
    for i, annotation in enumerate(cosign.annotations or []):
        item = join(path, f"annotations[{i}]")
        errors += [missing(join(item, f)) for f in ("name", "value") if not getattr(annotation, f)]
    if cosign.key_ref is not None:
        if not cosign.key_ref.name:
            errors.append(missing(join(path, "keyRef.name")))
        if cosign.key_ref.namespace and cosign.key_ref.namespace != namespace:
            errors.append(
                FieldError(
                    join(path, "keyRef.namespace"),
                    f"invalid value: {cosign.key_ref.namespace}",
                    f"the key must be in the object's own namespace ({namespace})",
                )
            )
    return errors


# -- defaulting and validation ----------------------------------------------------------------------------------------


def set_defaults(obj: Image, *, has_default_storage_class: bool = False) -> None:
    """Default an Image in place (spec §5): service account `default` (unless either spelling names one), tagging
    strategy BuildNumber, history limits 10, and a 2G volume cache when no cache is named and the cluster has a
    default StorageClass."""
    spec = obj.spec
    if not spec.service_account_name and not spec.service_account:
        spec.service_account_name = DEFAULT_SERVICE_ACCOUNT
    if not spec.image_tagging_strategy:
        spec.image_tagging_strategy = "BuildNumber"
    if spec.failed_build_history_limit is None:
        spec.failed_build_history_limit = DEFAULT_HISTORY_LIMIT
    if spec.success_build_history_limit is None:
        spec.success_build_history_limit = DEFAULT_HISTORY_LIMIT
    if spec.cache is None and has_default_storage_class:
        spec.cache = ImageCacheConfig(volume=ImagePersistentVolumeCache(size=DEFAULT_CACHE_SIZE))


def _check_build(image: Image, old: Image | None, username: str | None) -> list[FieldError]:
    build = image.spec.build
    if build is None:
        return []
    path = "spec.build"
    old_bindings = old.spec.build.cnb_bindings if old and old.spec.build else None
    errors = check_node_selector(build.node_selector, join(path, "nodeSelector"))
    errors += check_services(build.services, join(path, "services"), namespace_of(image))
    errors += check_controller_only(
        build.cnb_bindings, old_bindings, join(path, "cnbBindings"), username, CNB_BINDINGS_DEPRECATED
    )
    return errors + check_cnb_bindings(build.cnb_bindings, join(path, "cnbBindings"))


def _check_synonyms(spec: ImageSpec, namespace: str | None) -> list[FieldError]:
    build_services = (spec.build.services if spec.build else None) or None
    errors = check_one_of_two(
        ("spec.serviceAccount", spec.service_account or None),
        ("spec.serviceAccountName", spec.service_account_name or None),
    )
    errors += check_one_of_two(
        ("spec.serviceBindings", spec.service_bindings or None), ("spec.build.services", build_services)
    )
    if build_services is None:  # otherwise checked as `build.services`, which it equals or conflicts with
        errors += check_services(spec.service_bindings, "spec.serviceBindings", namespace)
    return errors


def _check_cache(
    cache: ImageCacheConfig | None, old: ImageCacheConfig | None, has_default_storage_class: bool
) -> list[FieldError]:
    if cache is None:
        return []
    errors = []
    if cache.volume is not None and cache.registry is not None:
        errors.append(FieldError("spec.cache.volume, spec.cache.registry", "only one type of cache can be specified"))
    if cache.registry is not None:
        errors += check_tag(cache.registry.tag, "spec.cache.registry.tag")
    if cache.volume is not None:
        errors += check_cache_size(
            cache.volume.size,
            old.volume.size if old and old.volume else None,
            "spec.cache.volume.size",
            has_default_storage_class=has_default_storage_class,
            no_class="spec.cache.volume.size cannot be set with no default StorageClass",
        )
    return errors


def validate(
    obj: Image,
    old: Image | None = None,
    *,
    has_default_storage_class: bool = False,
    username: str | None = None,
) -> list[FieldError]:
    """Every violation of the Image rules (spec §6.3 and ours), paths from the object root. `old` is the stored
    Image on update; `username` the requesting user on admission (None: not an admission request, so the fields
    only the controller may set are not refused)."""
    spec, namespace = obj.spec, namespace_of(obj)
    return [
        *check_name(obj),
        *check_tag_update(spec.tag, old.spec.tag if old else None, "spec.tag", old is not None),
        *check_tags(spec.additional_tags, "spec.additionalTags"),
        *check_same_registry(spec.tag, spec.additional_tags, "spec.additionalTags"),
        *check_builder(spec.builder, "spec.builder"),
        *check_source(spec.source, "spec.source"),
        *_check_build(obj, old, username),
        *_check_synonyms(spec, namespace),
        *_check_cache(spec.cache, old.spec.cache if old else None, has_default_storage_class),
        *check_tagging_strategy(spec.image_tagging_strategy, "spec.imageTaggingStrategy"),
        *check_history_limits(spec.failed_build_history_limit, spec.success_build_history_limit, "spec"),
        *check_controller_only(
            spec.notary, old.spec.notary if old else None, "spec.notary", username, NOTARY_DEPRECATED
        ),
        *check_notary(spec.notary, "spec.notary"),
        *check_cosign(spec.cosign, namespace, "spec.cosign"),
    ]
