"""Build (kpack.io/v1alpha2): one run of the buildpacks lifecycle in a pod, pushing an app image to `spec.tags`.

Builds are normally made by the Image controller, which copies the Image's configuration into them; users may also
make them. The spec is immutable: a Build is a record of what was built. Cosign keys and service bindings are
checked as on Image (own namespace only), since a Build made directly could otherwise reach another tenant's key.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from kpack_core.apis.base import (
    Affinity,
    ApiModel,
    ContainerState,
    EnvVar,
    KubeObjectModel,
    ObjectReference,
    ResourceRequirements,
    Status,
    Toleration,
)
from kpack_core.apis.buildpacks import BuildpackMetadata, BuildStack
from kpack_core.apis.core import (
    DEFAULT_SERVICE_ACCOUNT,
    BuildBuilderSpec,
    CNBBinding,
    NotaryConfig,
    SourceConfig,
    check_cnb_bindings,
    check_controller_only,
    check_image,
    check_node_selector,
    check_notary,
    check_pull_secrets,
    check_services,
    check_source,
    check_tag,
    check_tags,
)
from kpack_core.apis.errors import FieldError, join, missing
from kpack_core.apis.v1alpha2.image import (
    CNB_BINDINGS_DEPRECATED,
    NOTARY_DEPRECATED,
    CosignConfig,
    CosignKeyRef,
    RegistryCache,
    check_cosign,
    namespace_of,
    signing_key,
)

KIND: Final = "Build"
"""The kind's name."""


class BuildPersistentVolumeCache(ApiModel):
    """A build cache on an existing PersistentVolumeClaim."""

    persistent_volume_claim_name: str | None = None
    """The claim mounted at `/cache`; no volume cache when empty."""


class BuildCacheConfig(ApiModel):
    """The build cache: at most one of `volume` and `registry`."""

    volume: BuildPersistentVolumeCache | None = None
    """A cache on a volume."""
    registry: RegistryCache | None = None
    """A cache image in a registry."""


class BuildCache(ApiModel):
    """The cache the previous build left."""

    image: str | None = None
    """The previous cache image, by digest; restored from before building."""


class LastBuild(ApiModel):
    """The previous successful build of the same Image."""

    image: str | None = None
    """Its image, by digest (the base of a rebase, and the layers analysed)."""
    cache: BuildCache | None = None
    """Its registry cache."""
    stack_id: str | None = None
    """Its stack id."""


class BuildSpec(ApiModel):
    """What to build and how (immutable)."""

    tags: list[str] | None = None
    """The tags the image is pushed to; the first is the primary one. Required."""
    builder: BuildBuilderSpec | None = None
    """The builder image to run."""
    service_account_name: str | None = None
    """The ServiceAccount whose secrets fetch the source and push the image; default `default`."""
    source: SourceConfig | None = None
    """Where the source code comes from; required."""
    cache: BuildCacheConfig | None = None
    """The build cache."""
    services: list[ObjectReference] | None = None
    """Service bindings: Secrets (`kind: Secret`) or provisioned services (`apiVersion`, `kind`, `name`)."""
    cnb_bindings: list[CNBBinding] | None = None
    """Deprecated CNB bindings; only the kpack controller may set them in v1alpha2 (use v1alpha1 `bindings`)."""
    env: list[EnvVar] | None = None
    """Environment variables for the buildpacks."""
    project_descriptor_path: str | None = None
    """Path of the `project.toml` relative to the source root."""
    resources: ResourceRequirements | None = None
    """Resources of the build pod."""
    last_build: LastBuild | None = None
    """The previous build, whose image and cache this one reuses."""
    notary: NotaryConfig | None = None
    """Deprecated notary signing; only the kpack controller may set it in v1alpha2 (use v1alpha1)."""
    cosign: CosignConfig | None = None
    """Cosign signing of the built image."""
    default_process: str | None = None
    """The process type the image starts by default."""
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


class BuildStatusCommon(Status):
    """How the build went (condition `Succeeded`) and what it made: the fields both versions report (v1alpha1's
    Build status is exactly this)."""

    build_metadata: list[BuildpackMetadata] | None = None
    """The buildpacks that took part."""
    stack: BuildStack | None = None
    """The run image used and the stack id."""
    latest_image: str | None = None
    """The built image, by digest."""
    pod_name: str | None = None
    """The build pod."""
    step_states: list[ContainerState] | None = None
    """The state of each step (init container) of the pod, in order."""
    steps_completed: list[str] | None = None
    """The steps that have terminated."""


class BuildStatus(BuildStatusCommon):
    """How the build went (condition `Succeeded`) and what it made."""

    latest_cache_image: str | None = None
    """The registry cache image written, by digest."""


class Build(KubeObjectModel):
    """One build of an app image."""

    spec: BuildSpec
    """What to build."""
    status: BuildStatus | None = None
    """How the build went."""


# -- effective values ---------------------------------------------------------------------------------------------


def service_account_name(build: Build) -> str:
    """The ServiceAccount the build pod runs as."""
    return build.spec.service_account_name or DEFAULT_SERVICE_ACCOUNT


def cosign_key_ref(build: Build) -> CosignKeyRef | None:
    """The Secret the build signs with, its namespace filled in; None when no key is named."""
    return signing_key(build.spec.cosign, namespace_of(build))


# -- immutability (shared with v1alpha1) ----------------------------------------------------------------------------


def _prune(value: Any) -> Any:
    """JSON as Go's `omitempty` writes it: null, "", [] and {} members are absent, so they compare as absent."""
    if isinstance(value, dict):
        pruned = {key: _prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item is not None and item not in ("", [], {})}
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def _diff(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            line
            for key in sorted(old.keys() | new.keys())
            for line in _diff(old.get(key), new.get(key), join(path, key))
        ]
    if old == new:
        return []
    lines = [] if old is None else [f"-{path}: {orjson.dumps(old).decode()}"]
    return lines + ([] if new is None else [f"+{path}: {orjson.dumps(new).decode()}"])


def check_spec_unchanged(spec: ApiModel, old_spec: ApiModel | None, path: str) -> list[FieldError]:
    """On update the whole spec is as stored, `/status` updates included; the details list each change."""
    if old_spec is None:
        return []
    lines = _diff(_prune(old_spec.to_json()), _prune(spec.to_json()), path)
    return [FieldError(path, "Immutable fields changed (-old +new)", "\n".join(lines))] if lines else []


# -- defaulting and validation --------------------------------------------------------------------------------------


def set_defaults(obj: Build) -> None:
    """Default a Build in place (spec §5): service account `default` (no cache default: a Build names an existing
    claim)."""
    if not obj.spec.service_account_name:
        obj.spec.service_account_name = DEFAULT_SERVICE_ACCOUNT


def _check_cache(cache: BuildCacheConfig | None) -> list[FieldError]:
    if cache is None:
        return []
    errors = []
    if cache.volume is not None and cache.registry is not None:
        errors.append(FieldError("spec.cache.volume, spec.cache.registry", "only one type of cache can be specified"))
    if cache.registry is not None:
        errors += check_tag(cache.registry.tag, "spec.cache.registry.tag")
    return errors


def check_last_build(image: str | None, cache_image: str | None, path: str) -> list[FieldError]:
    """The previous build's images, where given, are image references (shared with v1alpha1)."""
    errors = check_image(image, join(path, "image")) if image else []
    return errors + (check_image(cache_image, join(path, "cache.image")) if cache_image else [])


def validate(obj: Build, old: Build | None = None, *, username: str | None = None) -> list[FieldError]:
    """Every violation of the Build rules (spec §6.4 and ours), paths from the object root. `old` is the stored
    Build on update; `username` the requesting user on admission (None: not an admission request, so the fields only
    the controller may set are not refused)."""
    spec, namespace = obj.spec, namespace_of(obj)
    builder = spec.builder or BuildBuilderSpec()
    last = spec.last_build or LastBuild()
    old_spec = old.spec if old else BuildSpec()
    return [
        *([] if spec.tags else [missing("spec.tags")]),
        *check_tags(spec.tags, "spec.tags"),
        *_check_cache(spec.cache),
        *check_image(builder.image, "spec.builder.image"),
        *check_pull_secrets(builder.image_pull_secrets, "spec.builder.imagePullSecrets"),
        *check_source(spec.source, "spec.source"),
        *check_services(spec.services, "spec.services", namespace),
        *check_last_build(last.image, last.cache.image if last.cache else None, "spec.lastBuild"),
        *check_spec_unchanged(spec, old.spec if old else None, "spec"),
        *check_controller_only(
            spec.cnb_bindings, old_spec.cnb_bindings, "spec.cnbBindings", username, CNB_BINDINGS_DEPRECATED
        ),
        *check_cnb_bindings(spec.cnb_bindings, "spec.cnbBindings"),
        *check_node_selector(spec.node_selector, "spec.nodeSelector"),
        *check_controller_only(spec.notary, old_spec.notary, "spec.notary", username, NOTARY_DEPRECATED),
        *check_notary(spec.notary, "spec.notary"),
        *check_cosign(spec.cosign, namespace, "spec.cosign"),
    ]
