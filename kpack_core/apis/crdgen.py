"""CustomResourceDefinitions generated from the API models: what `hack/generate-crds.py` writes to `config/crds/`.

Each version's schema is the model's JSON schema made *structural* (what the apiserver requires to prune and
validate): references inlined, every node typed, optional fields as their non-null type, no `additionalProperties:
false` next to `properties`, no pydantic titles or defaults (the defaulting webhook owns defaults). Field docstrings
become `description`s, so `kubectl explain image.spec.cache` documents the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kpack_core.apis.base import GROUP, HUB_VERSION, JSON, KubeObjectModel

_DROPPED_KEYS = frozenset({"title", "default", "examples", "discriminator"})


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str


@dataclass(frozen=True)
class KindInfo:
    """A kind as the CRD presents it, and its model in every served version."""

    kind: str
    plural: str
    namespaced: bool
    models: dict[str, type[KubeObjectModel]]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ("kpack",)
    printer_columns: tuple[PrinterColumn, ...] = ()
    storage_version: str = HUB_VERSION
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


@dataclass(frozen=True)
class WebhookService:
    """Where the apiserver sends conversion reviews in a cluster."""

    name: str = "kpack-webhook"
    namespace: str = "kpack"
    path: str = "/convert"


def structural_schema(model: type[KubeObjectModel]) -> JSON:
    """The structural OpenAPI v3 schema of a kind's model."""
    raw = model.model_json_schema(by_alias=True, mode="serialization")
    definitions: dict[str, JSON] = raw.pop("$defs", {})
    schema = _structural(raw, definitions, depth=0)
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {
        "type": "string",
        "description": "The versioned schema of this representation of an object.",
    }
    properties["kind"] = {"type": "string", "description": "The REST resource this object represents."}
    properties["metadata"] = {"type": "object"}
    schema.pop("required", None)
    return schema


def _structural(node: Any, definitions: dict[str, JSON], depth: int) -> JSON:
    if depth > 64:
        raise ValueError("schema nests deeper than 64 levels: a recursive model cannot become a structural schema")
    if not isinstance(node, dict):
        raise TypeError(f"unexpected schema node {node!r}")
    node = dict(node)
    if "$ref" in node:
        target = definitions[node.pop("$ref").rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, definitions, depth + 1)
    for combinator in ("anyOf", "oneOf"):
        if combinator in node and not node.get("x-kubernetes-int-or-string"):
            branches = [b for b in node.pop(combinator) if b.get("type") != "null"]
            if len(branches) != 1:
                raise ValueError(f"cannot make a structural schema of a union of {branches}")
            return _structural({**branches[0], **node}, definitions, depth + 1)
    if "allOf" in node:
        (only,) = node.pop("allOf")
        return _structural({**only, **node}, definitions, depth + 1)
    out: JSON = {k: v for k, v in node.items() if k not in _DROPPED_KEYS}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if out.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)
        out.pop("type", None)
    if "properties" in out:
        out["type"] = "object"
        out["properties"] = {
            name: _structural(child, definitions, depth + 1) for name, child in out["properties"].items()
        }
        out.pop("additionalProperties", None)
    elif isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(out["additionalProperties"], definitions, depth + 1)
    elif out.get("additionalProperties") is True:
        out.pop("additionalProperties")
        out["x-kubernetes-preserve-unknown-fields"] = True
    elif out.get("additionalProperties") is False:
        out.pop("additionalProperties")
    if "items" in out:
        out["items"] = _structural(out["items"], definitions, depth + 1)
    if out.get("type") == "integer":
        out.setdefault("format", "int64")
    if "type" not in out and not (
        out.get("x-kubernetes-int-or-string") or out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
        out["type"] = "object"
    return out


DEFAULT_WEBHOOK = WebhookService()


def crd(info: KindInfo, webhook: WebhookService | None = DEFAULT_WEBHOOK) -> JSON:
    """The CustomResourceDefinition of a kind: every version served, `storage_version` stored, status subresource,
    printer columns, and conversion through the webhook when there is more than one version."""
    versions = []
    for version, model in info.models.items():
        entry: JSON = {
            "name": version,
            "served": True,
            "storage": version == info.storage_version,
            "schema": {"openAPIV3Schema": structural_schema(model)},
            "subresources": {"status": {}},
        }
        if info.description:
            entry["schema"]["openAPIV3Schema"]["description"] = info.description
        if info.printer_columns:
            entry["additionalPrinterColumns"] = [
                {"name": c.name, "type": c.type, "jsonPath": c.json_path} for c in info.printer_columns
            ]
        versions.append(entry)
    names: JSON = {
        "kind": info.kind,
        "listKind": f"{info.kind}List",
        "plural": info.plural,
        "singular": info.kind.lower(),
        "categories": list(info.categories),
    }
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    spec: JSON = {
        "group": GROUP,
        "names": names,
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "versions": versions,
    }
    if webhook is not None and len(versions) > 1:
        spec["conversion"] = {
            "strategy": "Webhook",
            "webhook": {
                "conversionReviewVersions": ["v1"],
                "clientConfig": {
                    "service": {"name": webhook.name, "namespace": webhook.namespace, "path": webhook.path}
                },
            },
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": info.crd_name},
        "spec": spec,
    }


def crds(kinds: Sequence[KindInfo], webhook: WebhookService | None = DEFAULT_WEBHOOK) -> list[JSON]:
    return [crd(info, webhook) for info in kinds]
