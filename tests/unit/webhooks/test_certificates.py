"""Certificate generation, the renewal rules on a fake clock, the Secret life cycle (create, races, renewal) and CA
bundle injection, against an in-memory stand-in for the API."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from kpack_core.runtime import errors
from kpack_core.runtime.client import Client, ObjectList, PatchType
from kpack_core.runtime.clock import FakeClock
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, SECRETS, Resource
from kpack_webhooks.certificates import (
    CA_BUNDLE_KEY,
    LOCAL_HOSTS,
    CertificateManager,
    CertificateOptions,
    Certificates,
    generate,
    inject_ca_bundle,
    renewal_reason,
    service_hosts,
)
from kpack_webhooks.registration import MUTATING_WEBHOOK_CONFIGURATIONS, VALIDATING_WEBHOOK_CONFIGURATIONS
from tests.unit.webhooks.rfc6902 import PatchError, apply

NOW = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
HOSTS = [*service_hosts("kpack-webhook", "kpack"), *LOCAL_HOSTS]


def certs_of(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


# -- generation and renewal rules ---------------------------------------------------------------------------------


def test_generated_certificates() -> None:
    generated = generate(HOSTS, NOW, 90 * DAY)
    ca, server = (
        x509.load_pem_x509_certificate(generated.ca_cert_pem),
        x509.load_pem_x509_certificate(generated.server_cert_pem),
    )
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "kpack-webhook",
        "kpack-webhook.kpack",
        "kpack-webhook.kpack.svc",
        "kpack-webhook.kpack.svc.cluster.local",
        "localhost",
    ]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert server.not_valid_before_utc == NOW - datetime.timedelta(minutes=5)
    assert server.not_valid_after_utc == NOW + 90 * DAY
    assert generated.bundle == generated.ca_cert_pem
    assert b"PRIVATE KEY" in generated.server_key_pem


def test_renewal_is_due_in_the_last_third() -> None:
    generated = generate(HOSTS, NOW, 90 * DAY)
    lifetime = 90 * DAY + datetime.timedelta(minutes=5)
    due_at = NOW + 90 * DAY - lifetime / 3
    assert renewal_reason(generated, HOSTS, NOW, 1 / 3) is None
    assert renewal_reason(generated, HOSTS, due_at - datetime.timedelta(seconds=1), 1 / 3) is None
    assert renewal_reason(generated, HOSTS, due_at + datetime.timedelta(seconds=1), 1 / 3) == "due for renewal"
    assert renewal_reason(generated, HOSTS, NOW + 90 * DAY, 1 / 3) == "expired"


def test_renewal_reasons() -> None:
    generated = generate(HOSTS, NOW, 90 * DAY)
    other = generate(HOSTS, NOW, 90 * DAY)
    assert renewal_reason(None, HOSTS, NOW, 1 / 3) == "absent or incomplete"
    assert renewal_reason(generated, [*HOSTS, "10.0.0.1"], NOW, 1 / 3) == "not valid for 10.0.0.1"
    mismatched = Certificates(generated.ca_cert_pem, generated.server_cert_pem, other.server_key_pem)
    assert renewal_reason(mismatched, HOSTS, NOW, 1 / 3) == "the key does not match the certificate"
    foreign_ca = Certificates(other.ca_cert_pem, generated.server_cert_pem, generated.server_key_pem)
    assert renewal_reason(foreign_ca, HOSTS, NOW, 1 / 3) == "the serving certificate is not signed by the CA"
    garbage = Certificates(b"nope", generated.server_cert_pem, generated.server_key_pem)
    assert renewal_reason(garbage, HOSTS, NOW, 1 / 3) == "unreadable"


def test_a_renewal_keeps_trusting_the_previous_ca_while_it_is_valid() -> None:
    first = generate(HOSTS, NOW, 90 * DAY)
    second = generate(HOSTS, NOW + 61 * DAY, 90 * DAY, previous=first)
    assert [c.subject for c in certs_of(second.bundle)] == [
        x509.load_pem_x509_certificate(second.ca_cert_pem).subject,
        x509.load_pem_x509_certificate(first.ca_cert_pem).subject,
    ]
    third = generate(HOSTS, NOW + 200 * DAY, 90 * DAY, previous=first)  # the first CA has expired by then
    assert len(certs_of(third.bundle)) == 1


def test_secret_round_trip() -> None:
    generated = generate(HOSTS, NOW, DAY)
    secret = {"data": generated.secret_data()}
    assert set(secret["data"]) == {"ca-cert.pem", "server-cert.pem", "server-key.pem", "ca-bundle.pem"}
    assert Certificates.from_secret(secret) == generated
    assert Certificates.from_secret({"data": {"ca-cert.pem": "!!"}}) is None
    assert Certificates.from_secret({"data": {"ca-cert.pem": "YQ=="}}) is None
    assert Certificates.from_secret({}) is None


# -- an in-memory API ---------------------------------------------------------------------------------------------


class FakeApi:
    """Just enough of `Client` for certificates: objects by (resource, namespace, name), resourceVersions, typed
    errors, merge and JSON patches; `before_write` lets a test act as another replica just before a write lands."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.version = 0
        self.writes: list[tuple[str, str, Any]] = []
        self.before_write: list[Any] = []

    def _key(self, resource: Resource, namespace: str | None, name: str) -> tuple[str, str | None, str]:
        return (resource.plural, namespace if resource.namespaced else None, name)

    def put(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.version)
        metadata = stored["metadata"]
        self.objects[self._key(resource, metadata.get("namespace"), metadata["name"])] = stored
        return copy.deepcopy(stored)

    async def _interfere(self) -> None:
        if self.before_write:
            await self.before_write.pop(0)()

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        found = self.objects.get(self._key(resource, namespace, name))
        if found is None:
            raise errors.NotFoundError(404, "NotFound", "not found", resource.describe(namespace, name))
        return copy.deepcopy(found)

    async def list(self, resource: Resource, namespace: str | None = None) -> ObjectList:
        items = [copy.deepcopy(o) for (plural, _, _), o in sorted(self.objects.items()) if plural == resource.plural]
        return ObjectList(items, str(self.version))

    async def create(self, resource: Resource, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        await self._interfere()
        name = body["metadata"]["name"]
        if self._key(resource, namespace or body["metadata"].get("namespace"), name) in self.objects:
            raise errors.AlreadyExistsError(409, "AlreadyExists", "exists", name)
        self.writes.append(("create", name, body))
        return self.put(resource, body)

    async def update(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        await self._interfere()
        metadata = body["metadata"]
        current = await self.get(resource, metadata["name"], metadata.get("namespace"))
        if current["metadata"]["resourceVersion"] != metadata.get("resourceVersion"):
            raise errors.ConflictError(409, "Conflict", "modified", metadata["name"])
        self.writes.append(("update", metadata["name"], body))
        return self.put(resource, body)

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = PatchType.MERGE,
    ) -> dict[str, Any]:
        current = await self.get(resource, name, namespace)
        if patch_type is PatchType.JSON:
            try:
                patched = apply(current, patch)
            except PatchError as exc:
                raise errors.InvalidError(422, "Invalid", str(exc), name) from None
        else:
            patched = _merge(current, patch)
        self.writes.append(("patch", name, patch))
        return self.put(resource, patched)


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def manager(api: FakeApi, clock: FakeClock, **options: Any) -> CertificateManager:
    options = {"namespace": "kpack", "extra_hosts": LOCAL_HOSTS, "check_interval": DAY.total_seconds(), **options}
    return CertificateManager(cast(Client, api), CertificateOptions(**options), clock=clock)


def fake_clock() -> FakeClock:
    return FakeClock(wall_start=NOW.timestamp())


async def eventually(condition: Any, within: float = 10.0) -> None:
    """Wait (in real time) for `condition()`: key generation runs in a thread the fake clock does not wait for."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the condition is plain state, nothing could set an Event
            await asyncio.sleep(0.005)


# -- the Secret life cycle ------------------------------------------------------------------------------------------


async def test_ensure_creates_the_secret_once() -> None:
    api, clock = FakeApi(), fake_clock()
    certificates = await manager(api, clock).ensure()
    secret = await api.get(SECRETS, "webhook-certs", "kpack")
    assert Certificates.from_secret(secret) == certificates
    assert secret["type"] == "Opaque"
    assert await manager(api, clock).ensure() == certificates
    assert [w[0] for w in api.writes] == ["create"]


async def test_an_empty_secret_from_the_manifests_is_filled_in() -> None:
    api, clock = FakeApi(), fake_clock()
    api.put(SECRETS, {"metadata": {"name": "webhook-certs", "namespace": "kpack", "labels": {"a": "b"}}})
    certificates = await manager(api, clock).ensure()
    secret = await api.get(SECRETS, "webhook-certs", "kpack")
    assert secret["metadata"]["labels"] == {"a": "b"}
    assert Certificates.from_secret(secret) == certificates


async def test_losing_the_create_race_takes_the_winners_certificates() -> None:
    api, clock = FakeApi(), fake_clock()
    winner = manager(api, clock)
    won: list[Certificates] = []

    async def other_replica_creates() -> None:
        won.append(await winner.ensure())

    api.before_write.append(other_replica_creates)
    assert await manager(api, clock).ensure() == won[0]
    assert [w[0] for w in api.writes] == ["create"]


async def test_losing_the_renewal_race_takes_the_winners_certificates() -> None:
    api, clock = FakeApi(), fake_clock()
    await manager(api, clock).ensure()
    await clock.advance((61 * DAY).total_seconds())
    won: list[Certificates] = []

    async def other_replica_renews() -> None:
        won.append(await manager(api, clock).ensure())

    api.before_write.append(other_replica_renews)
    assert await manager(api, clock).ensure() == won[0]
    assert [w[0] for w in api.writes] == ["create", "update"]


async def test_certificates_for_other_hosts_are_replaced() -> None:
    api, clock = FakeApi(), fake_clock()
    first = await manager(api, clock).ensure()
    second = await manager(api, clock, service="renamed").ensure()
    assert second != first
    assert renewal_reason(second, service_hosts("renamed", "kpack"), NOW, 1 / 3) is None


async def test_watch_renews_before_expiry_and_reports_each_change() -> None:
    api, clock = FakeApi(), fake_clock()
    keeper = manager(api, clock)
    seen: list[Certificates] = []

    async def on_change(certificates: Certificates) -> None:
        seen.append(certificates)

    first = await keeper.check(on_change)
    assert seen == [first]
    task = asyncio.create_task(keeper.watch(on_change))
    try:
        await clock.advance((59 * DAY).total_seconds())
        assert seen == [first]  # 31 days left of 90: not yet
        await clock.advance((2 * DAY).total_seconds())
        await eventually(lambda: len(seen) == 2)
        renewed = seen[1]
        assert renewal_reason(renewed, HOSTS, NOW + 61 * DAY, 1 / 3) is None
        assert certs_of(renewed.bundle)[1] == x509.load_pem_x509_certificate(first.ca_cert_pem)
        stored = await api.get(SECRETS, "webhook-certs", "kpack")
        assert Certificates.from_secret(stored) == renewed
        assert CA_BUNDLE_KEY in stored["data"]
        # Another replica's renewal is noticed at the next check too.
        theirs = generate(HOSTS, NOW + 61 * DAY, 90 * DAY, previous=renewed)
        stored["data"] = theirs.secret_data()
        api.put(SECRETS, stored)
        await clock.advance(DAY.total_seconds())
        await eventually(lambda: len(seen) == 3)
        assert seen[2] == theirs
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_watch_survives_api_failures() -> None:
    api, clock = FakeApi(), fake_clock()
    keeper = manager(api, clock)
    seen: list[Certificates] = []

    async def on_change(certificates: Certificates) -> None:
        seen.append(certificates)

    await keeper.check(on_change)

    async def broken(*_: Any, **__: Any) -> Any:
        raise errors.ServerError(503, "ServiceUnavailable", "down", "secret")

    task = asyncio.create_task(keeper.watch(on_change))
    try:
        original = api.get
        api.get = broken  # type: ignore[method-assign]
        await clock.advance((2 * DAY).total_seconds())
        api.get = original  # type: ignore[method-assign]
        await clock.advance((62 * DAY).total_seconds())
        await eventually(lambda: len(seen) == 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# -- CA bundle injection --------------------------------------------------------------------------------------------


def crd(name: str, group: str, strategy: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"group": group}
    if strategy == "Webhook":
        spec["conversion"] = {
            "strategy": "Webhook",
            "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"url": "https://127.0.0.1:1/convert"}},
        }
    elif strategy:
        spec["conversion"] = {"strategy": strategy}
    return {"metadata": {"name": name}, "spec": spec}


def webhook_configuration(name: str, *webhooks: str, bundle: str | None = None) -> dict[str, Any]:
    entries = []
    for webhook in webhooks:
        config: dict[str, Any] = {"url": "https://127.0.0.1:1/validate"}
        if bundle and webhook == webhooks[0]:
            config["caBundle"] = bundle
        entries.append({"name": webhook, "clientConfig": config})
    return {"metadata": {"name": name}, "webhooks": entries}


async def test_inject_ca_bundle_patches_what_differs_and_only_that() -> None:
    api = FakeApi()
    api.put(CUSTOM_RESOURCE_DEFINITIONS, crd("images.kpack.io", "kpack.io", "Webhook"))
    api.put(CUSTOM_RESOURCE_DEFINITIONS, crd("builders.kpack.io", "kpack.io", "None"))
    api.put(CUSTOM_RESOURCE_DEFINITIONS, crd("things.other.io", "other.io", "Webhook"))
    api.put(CUSTOM_RESOURCE_DEFINITIONS, crd("named.other.io", "other.io", "Webhook"))
    bundle = base64.b64encode(b"BUNDLE").decode()
    api.put(MUTATING_WEBHOOK_CONFIGURATIONS, webhook_configuration("m", "one", "two", bundle=bundle))
    api.put(VALIDATING_WEBHOOK_CONFIGURATIONS, webhook_configuration("v", "one"))
    client = cast(Client, api)

    patched = await inject_ca_bundle(
        client, b"BUNDLE", crd_names=["named.other.io"], mutating=["m"], validating=["v", "absent"]
    )
    assert patched == [
        "CustomResourceDefinition.apiextensions.k8s.io images.kpack.io",
        "CustomResourceDefinition.apiextensions.k8s.io named.other.io",
        "MutatingWebhookConfiguration.admissionregistration.k8s.io m",
        "ValidatingWebhookConfiguration.admissionregistration.k8s.io v",
    ]
    images = await api.get(CUSTOM_RESOURCE_DEFINITIONS, "images.kpack.io")
    assert images["spec"]["conversion"]["webhook"]["clientConfig"] == {
        "url": "https://127.0.0.1:1/convert",
        "caBundle": bundle,
    }
    other_group = await api.get(CUSTOM_RESOURCE_DEFINITIONS, "things.other.io")
    assert "caBundle" not in other_group["spec"]["conversion"]["webhook"]["clientConfig"]
    mutating = await api.get(MUTATING_WEBHOOK_CONFIGURATIONS, "m")
    assert [w["clientConfig"]["caBundle"] for w in mutating["webhooks"]] == [bundle, bundle]
    mutating_patch = next(w[2] for w in api.writes if w[1] == "m")
    assert mutating_patch == [
        {"op": "test", "path": "/webhooks/1/name", "value": "two"},
        {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": bundle},
    ]
    # Idempotent: nothing left to patch.
    writes = len(api.writes)
    assert (
        await inject_ca_bundle(client, b"BUNDLE", crd_names=["named.other.io"], mutating=["m"], validating=["v"]) == []
    )
    assert len(api.writes) == writes


async def test_inject_retries_when_the_webhooks_moved() -> None:
    api = FakeApi()
    api.put(VALIDATING_WEBHOOK_CONFIGURATIONS, webhook_configuration("v", "one", "two"))
    original_patch = api.patch
    moved = False

    async def reorder_first(*args: Any, **kwargs: Any) -> Any:
        nonlocal moved
        if not moved:  # someone reorders the webhooks between our read and our patch
            moved = True
            stored = await api.get(VALIDATING_WEBHOOK_CONFIGURATIONS, "v")
            stored["webhooks"].reverse()
            api.put(VALIDATING_WEBHOOK_CONFIGURATIONS, stored)
        return await original_patch(*args, **kwargs)

    api.patch = reorder_first  # type: ignore[method-assign]
    await inject_ca_bundle(cast(Client, api), b"B", crd_group=None, validating=["v"])
    stored = await api.get(VALIDATING_WEBHOOK_CONFIGURATIONS, "v")
    assert [w["name"] for w in stored["webhooks"]] == ["two", "one"]
    assert all(w["clientConfig"]["caBundle"] for w in stored["webhooks"])


@pytest.mark.parametrize("fraction", [0.5, 0.1])
def test_renew_fraction_is_honoured(fraction: float) -> None:
    generated = generate(HOSTS, NOW, 100 * DAY)
    lifetime = 100 * DAY + datetime.timedelta(minutes=5)
    just_before = NOW + 100 * DAY - lifetime * fraction - datetime.timedelta(minutes=1)
    assert renewal_reason(generated, HOSTS, just_before, fraction) is None
    assert renewal_reason(generated, HOSTS, just_before + datetime.timedelta(minutes=2), fraction) == "due for renewal"
