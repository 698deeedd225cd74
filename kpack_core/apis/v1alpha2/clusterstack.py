"""ClusterStack (kpack.io/v1alpha2): the build and run images builders are made on, resolved to digests.

The images are read anonymously (or with ambient credentials) unless `serviceAccountRef` names a ServiceAccount
whose secrets pull them.
"""

from __future__ import annotations

from typing import Final

from kpack_core.apis.base import ApiModel, KubeObjectModel, ObjectReference, Status
from kpack_core.apis.buildpacks import check_image, check_service_account_ref
from kpack_core.apis.errors import FieldError, join, missing

KIND: Final = "ClusterStack"
"""The kind's name."""


class ClusterStackSpecImage(ApiModel):
    """A stack image as given."""

    image: str | None = None
    """The image reference, by tag or digest; its `io.buildpacks.stack.id` label must equal the stack id."""


class ClusterStackSpec(ApiModel):
    """The stack: its id and its two images."""

    id: str | None = None
    """The stack id, e.g. `io.buildpacks.stacks.bionic`."""
    build_image: ClusterStackSpecImage | None = None
    """The image builds run in."""
    run_image: ClusterStackSpecImage | None = None
    """The image built apps run on."""
    service_account_ref: ObjectReference | None = None
    """The ServiceAccount (`name` and `namespace`, both required) whose secrets pull the stack images; absent
    means anonymous or ambient credentials."""


class ClusterStackStatusImage(ApiModel):
    """A stack image as resolved."""

    latest_image: str | None = None
    """The image, by digest."""
    image: str | None = None
    """The image as the spec gave it."""


class ClusterStackStatus(Status):
    """The stack as last resolved."""

    id: str | None = None
    """The stack id."""
    build_image: ClusterStackStatusImage | None = None
    """The resolved build image."""
    run_image: ClusterStackStatusImage | None = None
    """The resolved run image."""
    mixins: list[str] | None = None
    """The mixins the stack provides: common ones, and `build:`- and `run:`-prefixed ones."""
    user_id: int | None = None
    """The user builds run as (the build image's `CNB_USER_ID`)."""
    group_id: int | None = None
    """The group builds run as (the build image's `CNB_GROUP_ID`)."""


class ClusterStack(KubeObjectModel):
    """A stack builders of every namespace may use."""

    spec: ClusterStackSpec
    """The desired stack."""
    status: ClusterStackStatus | None = None
    """The stack as last resolved."""


def validate_spec(spec: ClusterStackSpec, path: str) -> list[FieldError]:
    """ClusterStack rules: service account reference complete if given; id given; both images valid references.
    kpack stopped at the first service account error; here every error is reported."""
    errors = []
    if spec.service_account_ref is not None:
        errors += check_service_account_ref(spec.service_account_ref, join(path, "serviceAccountRef"))
    if not spec.id:
        errors.append(missing(join(path, "id")))
    for field, image in (("buildImage", spec.build_image), ("runImage", spec.run_image)):
        errors += check_image(image.image if image else None, join(join(path, field), "image"))
    return errors


def set_defaults(obj: ClusterStack) -> None:
    """A ClusterStack has no defaults; kept so every kind is defaulted the same way."""
    del obj


def validate(obj: ClusterStack, old: ClusterStack | None = None) -> list[FieldError]:
    """Every violation of the ClusterStack rules, paths from the object root. No field is immutable (a new image
    rebuilds the builders on it), so `old` changes nothing; it keeps one signature for every kind."""
    del old
    return validate_spec(obj.spec, "spec")
