"""Every kpack kind in one table: its CRD presentation, its model, defaulting and validation per version, and how
it converts. The CRD generator, the API reference and the webhooks all read this table, and the JSON-level
functions here (`default_object`, `validate_object`, `convert_object`) are what the webhooks call.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from kpack_core.apis import conversion, errors
from kpack_core.apis.base import GROUP, HUB_VERSION, JSON, V1ALPHA1, KubeObjectModel
from kpack_core.apis.conversion import ConversionError, KindConversion, Move
from kpack_core.apis.crdgen import KindInfo, PrinterColumn
from kpack_core.apis.errors import FieldError
from kpack_core.apis.v1alpha1 import build as build_v1
from kpack_core.apis.v1alpha1 import builder as builder_v1
from kpack_core.apis.v1alpha1 import clusterbuilder as clusterbuilder_v1
from kpack_core.apis.v1alpha1 import clusterstack as clusterstack_v1
from kpack_core.apis.v1alpha1 import clusterstore as clusterstore_v1
from kpack_core.apis.v1alpha1 import image as image_v1
from kpack_core.apis.v1alpha1 import sourceresolver as sourceresolver_v1
from kpack_core.apis.v1alpha2 import build as build_v2
from kpack_core.apis.v1alpha2 import builder as builder_v2
from kpack_core.apis.v1alpha2 import clusterbuilder as clusterbuilder_v2
from kpack_core.apis.v1alpha2 import clusterstack as clusterstack_v2
from kpack_core.apis.v1alpha2 import clusterstore as clusterstore_v2
from kpack_core.apis.v1alpha2 import image as image_v2
from kpack_core.apis.v1alpha2 import sourceresolver as sourceresolver_v2

READY = PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status')
LATEST_IMAGE = PrinterColumn("LatestImage", "string", ".status.latestImage")


OPTIONS = frozenset({"has_default_storage_class", "username"})
"""What defaulting and validation may be told about the request: whether the cluster has a default StorageClass,
and the requesting user."""


@dataclass(frozen=True)
class VersionApi:
    """One version of a kind: its model and its module's `set_defaults(obj, **options)` and
    `validate(obj, old, **options)`. Each of those declares only the `OPTIONS` it uses and is given only those."""

    model: type[KubeObjectModel]
    module: ModuleType
    _accepted: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        accepted = {
            name: frozenset(inspect.signature(getattr(self.module, name)).parameters) & OPTIONS
            for name in ("set_defaults", "validate")
        }
        object.__setattr__(self, "_accepted", accepted)

    def _call(self, name: str, *args: Any, **options: Any) -> Any:
        unknown = options.keys() - OPTIONS
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)}; known: {sorted(OPTIONS)}")
        accepted = self._accepted[name]
        return getattr(self.module, name)(*args, **{k: v for k, v in options.items() if k in accepted})

    def set_defaults(self, obj: KubeObjectModel, **options: Any) -> None:
        self._call("set_defaults", obj, **options)

    def validate(self, obj: KubeObjectModel, old: KubeObjectModel | None, **options: Any) -> list[FieldError]:
        result: list[FieldError] = self._call("validate", obj, old, **options)
        return result


@dataclass(frozen=True)
class Kind:
    info: KindInfo
    versions: dict[str, VersionApi]
    conversion: KindConversion


def _kind(
    kind: str,
    plural: str,
    namespaced: bool,
    v1: ModuleType,
    v2: ModuleType,
    *,
    short_names: tuple[str, ...] = (),
    columns: tuple[PrinterColumn, ...] = (READY,),
    moves: tuple[Move, ...] = (),
) -> Kind:
    old_model: type[KubeObjectModel] = getattr(v1, kind)
    hub_model: type[KubeObjectModel] = getattr(v2, kind)
    info = KindInfo(
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        models={V1ALPHA1: old_model, HUB_VERSION: hub_model},
        short_names=short_names,
        printer_columns=columns,
        description=(hub_model.__doc__ or "").strip().splitlines()[0] if hub_model.__doc__ else "",
    )
    versions = {V1ALPHA1: VersionApi(old_model, v1), HUB_VERSION: VersionApi(hub_model, v2)}
    return Kind(info, versions, KindConversion(kind, hub_model, old_model, moves))


def _moved(*pairs: tuple[str, str]) -> tuple[Move, ...]:
    return tuple(Move(tuple(hub.split(".")), tuple(old.split("."))) for hub, old in pairs)


REGISTRY: dict[str, Kind] = {
    k.info.kind: k
    for k in (
        _kind(
            "Image", "images", True, image_v1, image_v2,
            short_names=("cnbimage", "cnbimages", "img", "imgs"), columns=(LATEST_IMAGE, READY),
            moves=_moved(
                ("spec.serviceAccountName", "spec.serviceAccount"),
                ("spec.cache.volume.size", "spec.cacheSize"),
                ("spec.build.cnbBindings", "spec.build.bindings"),
            ),
        ),
        _kind(
            "Build", "builds", True, build_v1, build_v2,
            short_names=("cnbbuild", "cnbbuilds", "bld", "blds"),
            columns=(
                PrinterColumn("Image", "string", ".status.latestImage"),
                PrinterColumn("Succeeded", "string", '.status.conditions[?(@.type=="Succeeded")].status'),
            ),
            moves=_moved(
                ("spec.serviceAccountName", "spec.serviceAccount"),
                ("spec.cache.volume.persistentVolumeClaimName", "spec.cacheName"),
                ("spec.cnbBindings", "spec.bindings"),
            ),
        ),
        _kind("Builder", "builders", True, builder_v1, builder_v2, short_names=("bldr", "bldrs"),
              columns=(LATEST_IMAGE, READY)),
        _kind("ClusterBuilder", "clusterbuilders", False, clusterbuilder_v1, clusterbuilder_v2,
              short_names=("clstbldr", "clstbldrs"), columns=(LATEST_IMAGE, READY)),
        _kind("ClusterStack", "clusterstacks", False, clusterstack_v1, clusterstack_v2),
        _kind("ClusterStore", "clusterstores", False, clusterstore_v1, clusterstore_v2),
        _kind("SourceResolver", "sourceresolvers", True, sourceresolver_v1, sourceresolver_v2),
    )
}  # fmt: skip

KINDS: list[KindInfo] = [k.info for k in REGISTRY.values()]
CONVERSIONS: dict[str, KindConversion] = {name: k.conversion for name, k in REGISTRY.items()}


def _version_api(obj: JSON) -> tuple[Kind, VersionApi]:
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.partition("/")
    kind = REGISTRY.get(str(obj.get("kind", "")))
    if group != GROUP or kind is None:
        raise errors.ValidationFailed([FieldError("kind", f"not a kind of {GROUP}: {api_version} {obj.get('kind')}")])
    api = kind.versions.get(version)
    if api is None:
        raise errors.ValidationFailed([FieldError("apiVersion", f"{GROUP} serves no version {version!r}")])
    return kind, api


def _parse(api: VersionApi, obj: JSON) -> KubeObjectModel:
    try:
        return api.model.from_json(obj)
    except ValidationError as exc:
        raise errors.ValidationFailed(errors.from_pydantic(exc)) from None


def default_object(obj: JSON, **options: Any) -> JSON:
    """`obj` with its version's defaults applied (raises ValidationFailed if it does not even parse)."""
    _, api = _version_api(obj)
    model = _parse(api, obj)
    api.set_defaults(model, **options)
    return model.to_json()


def validate_object(obj: JSON, old: JSON | None = None, **options: Any) -> list[FieldError]:
    """Every violation of `obj` (an update of `old`, if given), parse errors included."""
    try:
        _, api = _version_api(obj)
        model = _parse(api, obj)
        old_model = None
        if old is not None:
            _, old_api = _version_api(old)
            old_model = _parse(old_api, old) if old_api is api else None
    except errors.ValidationFailed as exc:
        return exc.errors
    return api.validate(model, old_model, **options)


def convert_object(obj: JSON, desired_api_version: str) -> JSON:
    """`obj` converted to `desired_api_version`, losslessly (raises ConversionError)."""
    return conversion.convert(obj, desired_api_version, CONVERSIONS)


__all__ = [
    "CONVERSIONS",
    "KINDS",
    "OPTIONS",
    "REGISTRY",
    "ConversionError",
    "Kind",
    "VersionApi",
    "convert_object",
    "default_object",
    "validate_object",
]
