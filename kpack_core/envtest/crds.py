"""CustomResourceDefinition manifests for tests: a kind whose spec and status accept anything.

Tests of the runtime need custom resources that the apiserver stores and serves like kpack's, without caring about
their schema; this builds such a CRD from its names.
"""

from __future__ import annotations

from typing import Any


def schemaless_crd(
    group: str, version: str, plural: str, kind: str, *, namespaced: bool = True, status_subresource: bool = True
) -> dict[str, Any]:
    """A v1 CRD for `<plural>.<group>` served and stored at `version`, spec and status preserving unknown fields."""
    served: dict[str, Any] = {
        "name": version,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }
        },
    }
    if status_subresource:
        served["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced" if namespaced else "Cluster",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
            "versions": [served],
        },
    }
