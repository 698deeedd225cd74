"""The webhook configurations and CRD conversion stanzas built from the served kinds."""

from __future__ import annotations

import base64

import pytest

from kpack_webhooks.handlers import KindHandlers, KindInfo, Registry
from kpack_webhooks.registration import (
    ServiceTarget,
    UrlTarget,
    admission_rules,
    client_config,
    conversion,
    mutating_webhook_configuration,
    validating_webhook_configuration,
    with_conversion,
)
from tests.unit.webhooks import toy

KPACK_KINDS = [
    KindInfo("kpack.io", "Image", "images", ("v1alpha1", "v1alpha2")),
    KindInfo("kpack.io", "Builder", "builders", ("v1alpha1", "v1alpha2"), convert=False),
    KindInfo("kpack.io", "SourceResolver", "sourceresolvers", ("v1alpha1", "v1alpha2"), convert=False, admit=False),
]
SERVICE = ServiceTarget("kpack", "kpack-webhook", 443)


def test_rules_cover_both_versions_and_the_status_subresource() -> None:
    assert admission_rules(KPACK_KINDS) == [
        {
            "apiGroups": ["kpack.io"],
            "apiVersions": ["v1alpha1", "v1alpha2"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["images", "images/status", "builders", "builders/status"],
            "scope": "*",
        }
    ]


def test_client_configs() -> None:
    assert client_config(SERVICE, "/validate") == {
        "service": {"namespace": "kpack", "name": "kpack-webhook", "path": "/validate", "port": 443}
    }
    local = client_config(UrlTarget("https://127.0.0.1:9443/"), "/convert", b"PEM")
    assert local == {"url": "https://127.0.0.1:9443/convert", "caBundle": base64.b64encode(b"PEM").decode()}


@pytest.mark.parametrize(
    ("build", "path", "kind"),
    [
        (mutating_webhook_configuration, "/default", "MutatingWebhookConfiguration"),
        (validating_webhook_configuration, "/validate", "ValidatingWebhookConfiguration"),
    ],
)
def test_admission_configurations(build: object, path: str, kind: str) -> None:
    config = build(KPACK_KINDS, SERVICE, ca_bundle=b"CA")  # type: ignore[operator]
    assert config["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert config["kind"] == kind
    (webhook,) = config["webhooks"]
    assert webhook["name"] == config["metadata"]["name"]
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["sideEffects"] == "None"
    assert webhook["matchPolicy"] == "Equivalent"
    assert webhook["clientConfig"]["service"]["path"] == path
    assert webhook["clientConfig"]["caBundle"] == base64.b64encode(b"CA").decode()
    assert webhook["rules"] == admission_rules(KPACK_KINDS)


def test_kpack_names() -> None:
    assert mutating_webhook_configuration(KPACK_KINDS, SERVICE)["metadata"]["name"] == "defaults.webhook.kpack.io"
    assert validating_webhook_configuration(KPACK_KINDS, SERVICE)["metadata"]["name"] == "validation.webhook.kpack.io"


def test_conversion_stanza() -> None:
    assert conversion(UrlTarget("https://127.0.0.1:1234"), b"CA") == {
        "strategy": "Webhook",
        "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://127.0.0.1:1234/convert", "caBundle": base64.b64encode(b"CA").decode()},
        },
    }


def test_with_conversion_copies() -> None:
    crd = toy.crd()
    converted = with_conversion(crd, SERVICE)
    assert "conversion" not in crd["spec"]
    assert converted["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["path"] == "/convert"


def test_registry() -> None:
    registry = Registry()
    handlers: KindHandlers = toy.WidgetHandlers()
    registry.register(toy.INFO, handlers)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(toy.INFO, handlers)
    assert registry.lookup(toy.GROUP, toy.KIND) is not None
    assert registry.lookup(toy.GROUP, "Other") is None
    assert registry.kinds() == [toy.INFO]
    assert registry.groups() == [toy.GROUP]
    assert len(registry) == 1
    assert toy.INFO.api_versions == {toy.V1, toy.V2}
    assert toy.INFO.crd_name == "widgets.webhooks.test.kpack.io"
    with pytest.raises(ValueError, match="at least one version"):
        KindInfo("g", "K", "ks", ())
