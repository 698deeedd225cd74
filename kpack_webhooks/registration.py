"""How the apiserver is told to call us: the Mutating/ValidatingWebhookConfiguration objects and the CRD conversion
stanza, built by pure functions from the served kinds (`KindInfo`) and where the server is reached (`Target`).

kpack 0.4.0 registered its admission webhooks for `v1alpha2` only with `matchPolicy: Exact`, so writes through
`v1alpha1` were neither defaulted nor validated. Ours list every served version (and `matchPolicy: Equivalent`), so
both versions are admitted; each handler gets the object in the version the client used.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kpack_core.runtime.resource import Resource
from kpack_webhooks.handlers import KindInfo

JSON = dict[str, Any]

MUTATING_WEBHOOK_CONFIGURATIONS = Resource(
    "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False
)
VALIDATING_WEBHOOK_CONFIGURATIONS = Resource(
    "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False
)

DEFAULTING_WEBHOOK = "defaults.webhook.kpack.io"
"""Name of the MutatingWebhookConfiguration and of its one webhook (kpack's)."""
VALIDATION_WEBHOOK = "validation.webhook.kpack.io"
"""Name of the ValidatingWebhookConfiguration and of its one webhook (kpack's)."""

CONVERT_PATH = "/convert"
DEFAULT_PATH = "/default"
VALIDATE_PATH = "/validate"

ADMISSION_TIMEOUT_SECONDS = 10
"""The apiserver's default (and maximum is 30): a webhook slower than this fails the write (failurePolicy Fail)."""


@dataclass(frozen=True)
class ServiceTarget:
    """In cluster: the apiserver dials `<name>.<namespace>.svc:<port>` (the Service's port, not the pod's)."""

    namespace: str
    name: str
    port: int = 443


@dataclass(frozen=True)
class UrlTarget:
    """Out of cluster (local mode, tests): the apiserver dials `<base_url><path>`, e.g. `https://127.0.0.1:8443`."""

    base_url: str


Target = ServiceTarget | UrlTarget


def client_config(target: Target, path: str, ca_bundle: bytes | None = None) -> JSON:
    """A `WebhookClientConfig` for `path` on `target`; `ca_bundle` (PEM) is what the apiserver trusts."""
    config: JSON
    if isinstance(target, ServiceTarget):
        service = {"namespace": target.namespace, "name": target.name, "path": path, "port": target.port}
        config = {"service": service}
    else:
        config = {"url": target.base_url.rstrip("/") + path}
    if ca_bundle:
        config["caBundle"] = base64.b64encode(ca_bundle).decode()
    return config


def admission_rules(kinds: Sequence[KindInfo]) -> list[JSON]:
    """One rule per (group, versions) of the admitted kinds: CREATE and UPDATE of each resource and its status."""
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for info in kinds:
        if info.admit:
            grouped.setdefault((info.group, info.versions), []).extend([info.plural, f"{info.plural}/status"])
    return [
        {
            "apiGroups": [group],
            "apiVersions": list(versions),
            "operations": ["CREATE", "UPDATE"],
            "resources": resources,
            "scope": "*",
        }
        for (group, versions), resources in grouped.items()
    ]


def _webhook(name: str, kinds: Sequence[KindInfo], target: Target, path: str, ca_bundle: bytes | None) -> JSON:
    return {
        "name": name,
        "admissionReviewVersions": ["v1"],
        "clientConfig": client_config(target, path, ca_bundle),
        "rules": admission_rules(kinds),
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "timeoutSeconds": ADMISSION_TIMEOUT_SECONDS,
    }


def mutating_webhook_configuration(
    kinds: Sequence[KindInfo], target: Target, *, ca_bundle: bytes | None = None, name: str = DEFAULTING_WEBHOOK
) -> JSON:
    """The defaulting webhook's configuration (calls `/default`)."""
    webhook = _webhook(name, kinds, target, DEFAULT_PATH, ca_bundle)
    webhook["reinvocationPolicy"] = "Never"  # defaults are idempotent and other mutators do not touch our kinds
    return {
        "apiVersion": MUTATING_WEBHOOK_CONFIGURATIONS.api_version,
        "kind": MUTATING_WEBHOOK_CONFIGURATIONS.kind,
        "metadata": {"name": name},
        "webhooks": [webhook],
    }


def validating_webhook_configuration(
    kinds: Sequence[KindInfo], target: Target, *, ca_bundle: bytes | None = None, name: str = VALIDATION_WEBHOOK
) -> JSON:
    """The validating webhook's configuration (calls `/validate`)."""
    return {
        "apiVersion": VALIDATING_WEBHOOK_CONFIGURATIONS.api_version,
        "kind": VALIDATING_WEBHOOK_CONFIGURATIONS.kind,
        "metadata": {"name": name},
        "webhooks": [_webhook(name, kinds, target, VALIDATE_PATH, ca_bundle)],
    }


def conversion(target: Target, ca_bundle: bytes | None = None) -> JSON:
    """A CRD's `spec.conversion` sending every conversion to `/convert` (ConversionReview v1)."""
    return {
        "strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": client_config(target, CONVERT_PATH, ca_bundle)},
    }


def with_conversion(crd: JSON, target: Target, ca_bundle: bytes | None = None) -> JSON:
    """A copy of `crd` converting through `/convert` on `target`."""
    result = copy.deepcopy(crd)
    result.setdefault("spec", {})["conversion"] = conversion(target, ca_bundle)
    return result
