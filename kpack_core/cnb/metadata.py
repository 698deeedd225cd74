"""Builder metadata: the buildpack and order values a builder is made of, the lifecycle's metadata label, and the JSON
of the labels a builder image carries (formats.md §3.2).

Label JSON keeps the field order of kpack's Go structs and Go's sorted map keys, so the labels read the same as
kpack's; the values are compact JSON (`json_label`), which is what the image config holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from kpack_core.cnb.errors import LifecycleImageError

BUILDER_METADATA_LABEL: Final = "io.buildpacks.builder.metadata"
BUILDPACK_LAYERS_LABEL: Final = "io.buildpacks.buildpack.layers"
BUILDPACK_ORDER_LABEL: Final = "io.buildpacks.buildpack.order"
LIFECYCLE_VERSION_LABEL: Final = "io.buildpacks.lifecycle.version"
LIFECYCLE_APIS_LABEL: Final = "io.buildpacks.lifecycle.apis"
LIFECYCLE_METADATA_LABEL: Final = "io.buildpacks.lifecycle.metadata"
"""On kpack's lifecycle image: version and APIs of the lifecycle it carries."""

BUILDER_DESCRIPTION: Final = "Custom Builder built with kpack"
CREATED_BY_NAME: Final = "kpack Builder"

JSON = dict[str, Any]


@dataclass(frozen=True)
class OrderRef:
    """A member of an order group. In a resolved order `version` is always set; in a meta-buildpack's order (as
    the store read it) it may be None, meaning the highest version the store has."""

    id: str
    version: str | None = None
    optional: bool = False

    def to_json(self) -> JSON:
        # Go's `omitempty`: no version when empty, `optional` only when true.
        out: JSON = {"id": self.id}
        if self.version:
            out["version"] = self.version
        if self.optional:
            out["optional"] = True
        return out


Order = tuple[tuple[OrderRef, ...], ...]
"""Groups tried in turn during detection; each group a tuple of members."""


def order_json(order: Order) -> list[JSON]:
    """`[{"group": [{"id", "version"?, "optional"?}]}]`: the order label, status field and store field shape."""
    return [{"group": [ref.to_json() for ref in group]} for group in order]


@dataclass(frozen=True)
class StackSupport:
    """A stack a buildpack declares, with the mixins it requires of it."""

    id: str
    mixins: tuple[str, ...] = ()

    def to_json(self) -> JSON:
        return {"id": self.id, "mixins": list(self.mixins)} if self.mixins else {"id": self.id}


@dataclass(frozen=True)
class BuildpackLayer:
    """One buildpack of a builder: who it is, where its layer lives (a store image's repository, by digest), and
    what it declares (stacks for a regular buildpack, an order for a meta-buildpack)."""

    id: str
    version: str
    api: str
    diff_id: str
    digest: str
    size: int
    store_image: str
    """The source image as the ClusterStore lists it; its repository is where the layer is mounted from."""
    homepage: str | None = None
    order: Order = ()
    stacks: tuple[StackSupport, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def is_meta(self) -> bool:
        return bool(self.order)

    def info_json(self) -> JSON:
        """`{id, version, homepage?}`: a `builderMetadata` status entry and a builder metadata label entry."""
        out: JSON = {"id": self.id, "version": self.version}
        if self.homepage:
            out["homepage"] = self.homepage
        return out

    def layer_info_json(self) -> JSON:
        """The `io.buildpacks.buildpack.layers` entry, fields in the order of kpack's `BuildpackLayerInfo`."""
        out: JSON = {"api": self.api, "layerDiffID": self.diff_id}
        if self.order:
            out["order"] = order_json(self.order)
        if self.stacks:
            out["stacks"] = [stack.to_json() for stack in self.stacks]
        if self.homepage:
            out["homepage"] = self.homepage
        return out


@dataclass(frozen=True)
class ApiSet:
    """The API versions of one kind (buildpack or platform) a lifecycle supports."""

    deprecated: tuple[str, ...] = ()
    supported: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.deprecated, *self.supported)

    def to_json(self) -> JSON:
        return {"deprecated": list(self.deprecated), "supported": list(self.supported)}


def _strings(value: Any, where: str, image: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise LifecycleImageError(image, f"{LIFECYCLE_METADATA_LABEL}: {where} is not a list of strings")
    return tuple(value)


def _object(value: Any, where: str, image: str) -> JSON:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LifecycleImageError(image, f"{LIFECYCLE_METADATA_LABEL}: {where} is not an object")
    return value


@dataclass(frozen=True)
class LifecycleMetadata:
    """The `io.buildpacks.lifecycle.metadata` label: version, the legacy single-version `api`, and `apis`."""

    version: str
    buildpack_apis: ApiSet
    platform_apis: ApiSet
    legacy_api: tuple[tuple[str, str], ...] = ()
    """The legacy `api` object's (key, value) pairs, kept as read (`buildpack`, `platform`)."""

    @classmethod
    def parse(cls, label: str | None, image: str) -> LifecycleMetadata:
        """Parse the label of lifecycle image `image`; `LifecycleImageError` names the image and the fault. A label
        with only the legacy `api` gives one supported version of each kind."""
        if not label:
            raise LifecycleImageError(image, f"label {LIFECYCLE_METADATA_LABEL} is missing")
        try:
            decoded = orjson.loads(label)
        except orjson.JSONDecodeError as exc:
            raise LifecycleImageError(image, f"label {LIFECYCLE_METADATA_LABEL} is not JSON: {exc}") from None
        raw = _object(decoded, "the label", image)
        version = raw.get("version")
        if not isinstance(version, str) or not version:
            raise LifecycleImageError(image, f"{LIFECYCLE_METADATA_LABEL}: no version")
        legacy = {k: v for k, v in _object(raw.get("api"), "api", image).items() if isinstance(v, str) and v}
        apis = _object(raw.get("apis"), "apis", image)
        kinds: dict[str, ApiSet] = {}
        for kind in ("buildpack", "platform"):
            if kind in apis:
                entry = _object(apis[kind], f"apis.{kind}", image)
                kinds[kind] = ApiSet(
                    _strings(entry.get("deprecated"), f"apis.{kind}.deprecated", image),
                    _strings(entry.get("supported"), f"apis.{kind}.supported", image),
                )
            else:
                kinds[kind] = ApiSet(supported=(legacy[kind],) if kind in legacy else ())
        return cls(version, kinds["buildpack"], kinds["platform"], tuple(legacy.items()))

    def apis_json(self) -> JSON:
        """The `io.buildpacks.lifecycle.apis` label value."""
        return {"buildpack": self.buildpack_apis.to_json(), "platform": self.platform_apis.to_json()}

    def to_json(self) -> JSON:
        """The `lifecycle` object of the builder metadata label."""
        return {"version": self.version, "api": dict(self.legacy_api), "apis": self.apis_json()}


def json_label(value: Any) -> str:
    """A label value holding JSON, compact like Go's `json.Marshal`."""
    return orjson.dumps(value).decode()


def builder_metadata_json(
    run_image: str, lifecycle: LifecycleMetadata, buildpacks: Iterable[BuildpackLayer], created_by_version: str
) -> JSON:
    """The `io.buildpacks.builder.metadata` object (`mirrors` is null, as kpack writes it)."""
    return {
        "description": BUILDER_DESCRIPTION,
        "stack": {"runImage": {"image": run_image, "mirrors": None}},
        "lifecycle": lifecycle.to_json(),
        "createdBy": {"name": CREATED_BY_NAME, "version": created_by_version},
        "buildpacks": [buildpack.info_json() for buildpack in buildpacks],
    }


def buildpack_layers_json(buildpacks: Iterable[BuildpackLayer]) -> dict[str, dict[str, JSON]]:
    """The `io.buildpacks.buildpack.layers` map id -> version -> layer info, keys sorted as Go marshals maps."""
    out: dict[str, dict[str, JSON]] = {}
    for buildpack in sorted(buildpacks, key=lambda bp: (bp.id, bp.version)):
        out.setdefault(buildpack.id, {})[buildpack.version] = buildpack.layer_info_json()
    return out


def builder_labels(
    run_image: str,
    lifecycle: LifecycleMetadata,
    buildpacks: Sequence[BuildpackLayer],
    order: Order,
    created_by_version: str,
) -> dict[str, str]:
    """Every label a builder adds to its build image's labels."""
    return {
        BUILDER_METADATA_LABEL: json_label(builder_metadata_json(run_image, lifecycle, buildpacks, created_by_version)),
        BUILDPACK_LAYERS_LABEL: json_label(buildpack_layers_json(buildpacks)),
        BUILDPACK_ORDER_LABEL: json_label(order_json(order)),
        LIFECYCLE_VERSION_LABEL: lifecycle.version,
        LIFECYCLE_APIS_LABEL: json_label(lifecycle.apis_json()),
    }
