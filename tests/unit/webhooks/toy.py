"""A toy kind for the webhook tests: `Widget` of `webhooks.test.kpack.io`, versions v1 and v2 (the storage version).

v1 calls a field `spec.size`, v2 calls it `spec.dimension`; everything else is the same, so conversion is a rename
and round trips are lossless. Defaulting sets `spec.color: blue` when absent; validation wants the size to be a
positive integer and `spec.color` (when set) one of red/green/blue, and forbids changing `spec.color` on UPDATE.
`spec.unconvertible` (any value) makes conversion fail with a `ConversionError`; `spec.crash: true` makes every
handler raise an unexpected exception (a bug). Also used by the integration tests and the benchmark.
"""

from __future__ import annotations

import copy
from typing import Any

from kpack_core.envtest.crds import schemaless_crd
from kpack_webhooks.handlers import JSON, ConversionError, KindInfo, Registry

GROUP = "webhooks.test.kpack.io"
KIND = "Widget"
PLURAL = "widgets"
VERSIONS = ("v1", "v2")
V1 = f"{GROUP}/v1"
V2 = f"{GROUP}/v2"
INFO = KindInfo(GROUP, KIND, PLURAL, VERSIONS)

FIELD = {V1: "size", V2: "dimension"}
COLORS = ("red", "green", "blue")


class WidgetHandlers:
    """The toy conversion (rename), defaulting and validation of Widgets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def convert(self, obj: JSON, desired_api_version: str) -> JSON:
        self.calls.append(("convert", desired_api_version))
        spec = obj.get("spec") or {}
        if spec.get("crash"):
            raise RuntimeError("the toy converter crashed")
        source_field, target_field = FIELD[obj["apiVersion"]], FIELD[desired_api_version]
        if "unconvertible" in spec:
            raise ConversionError("spec.unconvertible: this widget cannot be converted")
        if source_field in spec:
            spec[target_field] = spec.pop(source_field)
        obj["apiVersion"] = desired_api_version
        return obj

    def default(self, obj: JSON, *, operation: str) -> JSON:
        self.calls.append(("default", operation))
        spec = obj.setdefault("spec", {})
        if spec.get("crash"):
            raise RuntimeError("the toy defaulter crashed")
        spec.setdefault("color", "blue")
        return obj

    def validate(self, obj: JSON, old: JSON | None, *, operation: str, username: str | None = None) -> list[str]:
        self.calls.append(("validate", operation))
        spec = obj.get("spec") or {}
        if spec.get("crash"):
            raise RuntimeError("the toy validator crashed")
        field = FIELD.get(obj.get("apiVersion", ""), "size")
        messages = []
        size = spec.get(field)
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            messages.append(f"spec.{field}: must be a positive integer, got {size!r}")
        color = spec.get("color")
        if color is not None and color not in COLORS:
            messages.append(f"spec.color: must be one of {', '.join(COLORS)}, got {color!r}")
        if old is not None and (old.get("spec") or {}).get("color") != color:
            messages.append("spec.color: immutable")
        return messages


def registry(handlers: WidgetHandlers | None = None) -> Registry:
    """A registry serving only the toy Widget."""
    result = Registry()
    result.register(INFO, handlers or WidgetHandlers())
    return result


def widget(name: str, *, api_version: str = V1, namespace: str | None = "default", **spec: Any) -> JSON:
    metadata: JSON = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": KIND, "metadata": metadata, "spec": dict(spec)}


def crd() -> JSON:
    """The two-version Widget CRD (v2 stored), with no conversion stanza yet."""
    base = schemaless_crd(GROUP, "v2", PLURAL, KIND)
    v2 = base["spec"]["versions"][0]
    v1 = copy.deepcopy(v2)
    v1["name"], v1["storage"] = "v1", False
    base["spec"]["versions"] = [v1, v2]
    return base
