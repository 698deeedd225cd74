"""Buildpack, order, stack and store types shared by builders, builds and stores in both API versions (kpack's
`core/v1alpha1` helper types), and the checks the builder family (Builder, ClusterBuilder, ClusterStack,
ClusterStore) shares.

Fields Go marshals without `omitempty` ("required" in kpack's OpenAPI) are required here only in types the
controller writes (status); in types users write (an order in a Builder spec, a store's sources) they are checked
by the kind's `validate`, so one answer names every violation with its path.
"""

from __future__ import annotations

import re
from typing import Final

from kpack_core.apis.base import ApiModel, ObjectReference
from kpack_core.apis.errors import FieldError, invalid, join, missing

CLUSTER_STACK_KIND: Final = "ClusterStack"
"""The kind a builder's `stack` reference must name (and is defaulted to)."""
CLUSTER_STORE_KIND: Final = "ClusterStore"
"""The kind a builder's `store` reference must name (and is defaulted to)."""


class BuildpackInfo(ApiModel):
    """A buildpack by id and version."""

    id: str
    """The buildpack id, e.g. `paketo-buildpacks/java`."""
    version: str | None = None
    """The buildpack version; absent in a builder's order means the highest version the store has."""


class BuildpackRef(BuildpackInfo):
    """A buildpack in an order group."""

    optional: bool = False
    """Whether the group may pass detection without this buildpack."""


class OrderEntry(ApiModel):
    """One group of buildpacks the lifecycle tries, in order, during detection."""

    group: list[BuildpackRef] | None = None
    """The buildpacks of the group, in the order they run."""


class BuildpackStack(ApiModel):
    """A stack a buildpack supports."""

    id: str
    """The stack id, e.g. `io.buildpacks.stacks.bionic`."""
    mixins: list[str] | None = None
    """Mixins the buildpack needs the stack to provide."""


class StoreImage(ApiModel):
    """An image holding buildpacks (a buildpackage or a builder)."""

    image: str | None = None
    """The image reference, by tag or digest."""


class BuildpackageInfo(ApiModel):
    """The buildpackage a buildpack came from."""

    id: str | None = None
    """Id of the buildpackage's top-level buildpack."""
    version: str | None = None
    """Version of the buildpackage's top-level buildpack."""
    homepage: str | None = None
    """Homepage of the buildpackage's top-level buildpack."""


class StoreBuildpack(BuildpackInfo):
    """A buildpack a ClusterStore found in its sources, with where its layer lives."""

    buildpackage: BuildpackageInfo | None = None
    """The buildpackage the buildpack was found in."""
    store_image: StoreImage | None = None
    """The source image the buildpack was found in."""
    diff_id: str | None = None
    """The uncompressed digest of the buildpack's layer."""
    digest: str | None = None
    """The compressed digest of the buildpack's layer."""
    size: int | None = None
    """The compressed size of the buildpack's layer in bytes."""
    api: str | None = None
    """The buildpack API version the buildpack implements."""
    homepage: str | None = None
    """The buildpack's homepage."""
    order: list[OrderEntry] | None = None
    """The order of a meta-buildpack (one made of other buildpacks)."""
    stacks: list[BuildpackStack] | None = None
    """The stacks the buildpack supports."""


class BuildpackMetadata(ApiModel):
    """A buildpack included in a builder image or that took part in a build."""

    id: str
    """The buildpack id."""
    version: str
    """The buildpack version."""
    homepage: str | None = None
    """The buildpack's homepage."""


class BuildStack(ApiModel):
    """The stack a builder or a build uses."""

    run_image: str | None = None
    """The run image reference, by digest."""
    id: str | None = None
    """The stack id."""


# -- checks shared by the builder family ----------------------------------------------------------------------------
#
# The image-reference rules follow go-containerregistry's `name` package with weak validation, which kpack uses:
# a missing registry means Docker Hub and a missing tag means `latest`. A few things it let through and that no
# registry serves are refused: empty path components (`https://r.io/app` parsed as registry `https:`), an empty
# port or tag, and digests other than sha256. They stand in for the shared validators of `kpack_core.apis.core`
# until those land.

_REPOSITORY = re.compile(r"[a-z0-9_./-]{2,255}")
_TAG = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REGISTRY = re.compile(r"(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")


def _is_path(value: str) -> bool:
    return _REPOSITORY.fullmatch(value) is not None and "" not in value.split("/")


def _is_repository(value: str) -> bool:
    registry, slash, rest = value.partition("/")
    # The first part names a registry only if it looks like a host (has a dot or a port), as in Docker.
    if slash and ("." in registry or ":" in registry):
        return _REGISTRY.fullmatch(registry) is not None and _is_path(rest)
    return _is_path(value)


def is_tag_reference(value: str) -> bool:
    """Whether `value` names an image by tag (the tag may be left out); a digest reference is not a tag."""
    base, colon, tag = value.rpartition(":")
    # A colon followed by a slash belongs to a registry port (`localhost:5000/app`), not to a tag.
    if not colon or "/" in tag:
        return _is_repository(value)
    return _TAG.fullmatch(tag) is not None and _is_repository(base)


def is_image_reference(value: str) -> bool:
    """Whether `value` names an image by tag or by digest (`repo@sha256:...`, optionally with a tag too)."""
    if is_tag_reference(value):
        return True
    base, at, digest = value.partition("@")
    if not at or "@" in digest or _DIGEST.fullmatch(digest) is None:
        return False
    return is_tag_reference(base)


def check_tag(value: str | None, path: str) -> list[FieldError]:
    """A required image tag (where an image is pushed): missing, or not a tag reference."""
    if not value:
        return [missing(path)]
    return [] if is_tag_reference(value) else [invalid(path, value)]


def check_image(value: str | None, path: str) -> list[FieldError]:
    """A required image reference (by tag or digest): missing, or not a reference."""
    if not value:
        return [missing(path)]
    return [] if is_image_reference(value) else [invalid(path, value)]


def check_kind_reference(ref: ObjectReference | None, kind: str, path: str) -> list[FieldError]:
    """A reference that must name an object of one `kind`: `name` required, `kind` required and equal to `kind`."""
    ref = ref or ObjectReference()
    errors = [] if ref.name else [missing(join(path, "name"))]
    if not ref.kind:
        errors.append(missing(join(path, "kind")))
    elif ref.kind != kind:
        errors.append(FieldError(join(path, "kind"), f"invalid value: {ref.kind}", f"must be {kind}"))
    return errors


def check_service_account_ref(ref: ObjectReference | None, path: str) -> list[FieldError]:
    """A reference to a ServiceAccount in any namespace: `name` and `namespace` both required."""
    ref = ref or ObjectReference()
    return [missing(join(path, field)) for field in ("name", "namespace") if not getattr(ref, field)]


def check_order(order: list[OrderEntry] | None, path: str) -> list[FieldError]:
    """A builder's order: every buildpack of every group names an id (kpack accepted empty ids and failed later,
    when the builder was assembled)."""
    errors = []
    for i, entry in enumerate(order or []):
        for j, ref in enumerate(entry.group or []):
            if not ref.id:
                errors.append(missing(f"{path}[{i}].group[{j}].id"))
    return errors
