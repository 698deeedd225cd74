"""ClusterStore (kpack.io/v1alpha2): the buildpacks builders take from a list of buildpackage (or builder) images.

The images are read anonymously (or with ambient credentials) unless `serviceAccountRef` names a ServiceAccount
whose secrets pull them.
"""

from __future__ import annotations

from typing import Final

from kpack_core.apis.base import ApiModel, KubeObjectModel, ObjectReference, Status
from kpack_core.apis.buildpacks import StoreBuildpack, StoreImage, check_image, check_service_account_ref
from kpack_core.apis.errors import FieldError, join, missing

KIND: Final = "ClusterStore"
"""The kind's name."""


class ClusterStoreSpec(ApiModel):
    """Where the store's buildpacks come from."""

    sources: list[StoreImage] | None = None
    """The buildpackage (or builder) images whose buildpacks the store offers; at least one."""
    service_account_ref: ObjectReference | None = None
    """The ServiceAccount (`name` and `namespace`, both required) whose secrets pull the source images; absent
    means anonymous or ambient credentials."""


class ClusterStoreStatus(Status):
    """The buildpacks last found."""

    buildpacks: list[StoreBuildpack] | None = None
    """Every buildpack found in the sources, with its layer and the image it came from."""


class ClusterStore(KubeObjectModel):
    """A store of buildpacks builders of every namespace may use."""

    spec: ClusterStoreSpec
    """The desired store."""
    status: ClusterStoreStatus | None = None
    """The buildpacks last found."""


def validate_spec(spec: ClusterStoreSpec, path: str) -> list[FieldError]:
    """ClusterStore rules: service account reference complete if given; at least one source; each source a valid
    image reference, reported at `sources[i].image` (kpack reported `sources[i]` and printed the whole entry)."""
    errors = []
    if spec.service_account_ref is not None:
        errors += check_service_account_ref(spec.service_account_ref, join(path, "serviceAccountRef"))
    if not spec.sources:
        errors.append(missing(join(path, "sources")))
    for i, source in enumerate(spec.sources or []):
        errors += check_image(source.image, f"{join(path, 'sources')}[{i}].image")
    return errors


def set_defaults(obj: ClusterStore) -> None:
    """A ClusterStore has no defaults; kept so every kind is defaulted the same way."""
    del obj


def validate(obj: ClusterStore, old: ClusterStore | None = None) -> list[FieldError]:
    """Every violation of the ClusterStore rules, paths from the object root. No field is immutable (new sources
    just change the buildpacks offered), so `old` changes nothing; it keeps one signature for every kind."""
    del old
    return validate_spec(obj.spec, "spec")
