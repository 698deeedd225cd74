"""The webhook server behind a real kube-apiserver (envtest): the toy two-version Widget CRD converts through our
`/convert`, writes are defaulted through `/default` and validated through `/validate`, with certificates our code
created in a Secret; and a certificate rotation (CA bundle re-injected, new certificate served without a restart)
keeps the apiserver calling us successfully."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import itertools
import ssl
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from cryptography import x509

from kpack_core.envtest import ControlPlane
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client, RetryPolicy
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, SECRETS
from kpack_webhooks.certificates import (
    LOCAL_HOSTS,
    CertificateManager,
    CertificateOptions,
    Certificates,
    generate,
    inject_ca_bundle,
)
from kpack_webhooks.install import register, unregister
from kpack_webhooks.registration import UrlTarget
from kpack_webhooks.server import ServerOptions, ServingCertificate, WebhookServer
from tests.integration.webhooks.conftest import KEEPALIVE, WIDGETS_V1, WIDGETS_V2, eventually, wait_until_served
from tests.unit.webhooks import toy

pytestmark = pytest.mark.integration


@dataclasses.dataclass
class Webhooks:
    client: Client
    namespace: str
    manager: CertificateManager
    serving: ServingCertificate
    server: WebhookServer
    certificates: Certificates
    mutating: str
    validating: str

    async def on_change(self, certificates: Certificates) -> None:
        """What `python -m kpack_webhooks` does with new certificates: trust first, then serve."""
        await inject_ca_bundle(
            self.client,
            certificates.bundle,
            crd_group=None,
            crd_names=[toy.INFO.crd_name],
            mutating=[self.mutating],
            validating=[self.validating],
        )
        if self.serving.loaded:
            await asyncio.sleep(1.0)  # the apiserver picks the new bundle up from its informers meanwhile
        await self.serving.load(certificates.server_cert_pem, certificates.server_key_pem)
        self.certificates = certificates


@pytest_asyncio.fixture(loop_scope="session")
async def webhooks(client: Client, namespace: str, widget_crd: None) -> AsyncIterator[Webhooks]:
    options = CertificateOptions(namespace=namespace, extra_hosts=LOCAL_HOSTS)
    manager = CertificateManager(client, options)
    certificates = await manager.ensure()  # creates the Secret
    serving = ServingCertificate()
    await serving.load(certificates.server_cert_pem, certificates.server_key_pem)
    server_options = ServerOptions(host="127.0.0.1", port=0, keepalive_timeout=KEEPALIVE)
    server = WebhookServer(toy.registry(), serving, server_options)
    await server.start()
    names = (f"defaults.{namespace}.test.kpack.io", f"validation.{namespace}.test.kpack.io")
    hooks = Webhooks(client, namespace, manager, serving, server, certificates, *names)
    manager.current = certificates
    try:
        target = UrlTarget(f"https://127.0.0.1:{server.port}")
        await register(client, [toy.INFO], target, certificates.bundle, mutating=names[0], validating=names[1])
        await wait_until_served(client, namespace)
        yield hooks
    finally:
        await unregister(client, mutating=names[0], validating=names[1])
        await server.stop()


async def test_the_certificates_are_in_a_secret(webhooks: Webhooks) -> None:
    secret = await webhooks.client.get(SECRETS, "webhook-certs", webhooks.namespace)
    assert Certificates.from_secret(secret) == webhooks.certificates
    crd = await webhooks.client.get(CUSTOM_RESOURCE_DEFINITIONS, toy.INFO.crd_name)
    config = crd["spec"]["conversion"]["webhook"]["clientConfig"]
    assert config == {
        "url": f"https://127.0.0.1:{webhooks.server.port}/convert",
        "caBundle": base64.b64encode(webhooks.certificates.bundle).decode(),
    }


async def test_create_through_v1_read_through_v2(webhooks: Webhooks) -> None:
    client, namespace = webhooks.client, webhooks.namespace
    created = await client.create(WIDGETS_V1, toy.widget("w", namespace=namespace, size=3, color="red"))
    assert created["apiVersion"] == toy.V1
    assert created["spec"] == {"size": 3, "color": "red"}
    stored = await client.get(WIDGETS_V2, "w", namespace)  # the storage version: what our converter wrote
    assert stored["apiVersion"] == toy.V2
    assert stored["spec"] == {"dimension": 3, "color": "red"}
    again = await client.get(WIDGETS_V1, "w", namespace)
    assert again["spec"] == {"size": 3, "color": "red"}
    listed = await client.list(WIDGETS_V1, namespace)
    assert {item["metadata"]["name"]: item["spec"].get("size") for item in listed.items}["w"] == 3
    created_v2 = await client.create(WIDGETS_V2, toy.widget("w2", api_version=toy.V2, namespace=namespace, dimension=4))
    assert (await client.get(WIDGETS_V1, "w2", namespace))["spec"] == {"size": 4, "color": "blue"}
    assert created_v2["spec"] == {"dimension": 4, "color": "blue"}


async def test_defaults_are_applied(webhooks: Webhooks) -> None:
    created = await webhooks.client.create(
        WIDGETS_V2, toy.widget("d", api_version=toy.V2, namespace=webhooks.namespace, dimension=1)
    )
    assert created["spec"]["color"] == "blue"


async def test_invalid_objects_are_refused_with_our_message(webhooks: Webhooks) -> None:
    client, namespace = webhooks.client, webhooks.namespace
    with pytest.raises(errors.InvalidError) as refused:
        await client.create(WIDGETS_V1, toy.widget("bad", namespace=namespace, size=-1, color="pink"))
    assert refused.value.message == (
        f'admission webhook "{webhooks.validating}" denied the request: Widget {namespace}/bad is invalid: '
        "spec.size: must be a positive integer, got -1; spec.color: must be one of red, green, blue, got 'pink'"
    )
    created = await client.create(WIDGETS_V1, toy.widget("ok", namespace=namespace, size=1, color="red"))
    created["spec"]["color"] = "green"
    with pytest.raises(errors.InvalidError, match=r"spec\.color: immutable"):
        await client.update(WIDGETS_V1, created)


async def test_a_conversion_failure_reaches_the_client(webhooks: Webhooks, control_plane: ControlPlane) -> None:
    async with await Client.from_kubeconfig(str(control_plane.kubeconfig_path), retry=RetryPolicy(attempts=1)) as once:
        with pytest.raises(errors.ServerError) as failed:
            await once.create(WIDGETS_V1, toy.widget("x", namespace=webhooks.namespace, size=1, unconvertible=True))
    assert f"converting Widget {webhooks.namespace}/x from {toy.V1} to {toy.V2}" in failed.value.message
    assert "spec.unconvertible: this widget cannot be converted" in failed.value.message


def presented_serial(port: int, bundle: bytes) -> int:
    context = ssl.create_default_context(cadata=bundle.decode())
    with context.wrap_socket(
        __import__("socket").create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1"
    ) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_rotation_keeps_the_apiserver_calling(webhooks: Webhooks) -> None:
    client, namespace = webhooks.client, webhooks.namespace
    await client.create(WIDGETS_V1, toy.widget("r", namespace=namespace, size=5))
    # A renewal forced at every check (everything is "due"), with a short lifetime, through the same Secret.
    forced = CertificateOptions(
        namespace=namespace, extra_hosts=LOCAL_HOSTS, validity=datetime.timedelta(minutes=10), renew_fraction=1.0
    )
    rotator = CertificateManager(client, forced)
    rotator.current = webhooks.certificates
    serials = [x509.load_pem_x509_certificate(webhooks.certificates.server_cert_pem).serial_number]
    for round_ in range(2):
        previous = webhooks.certificates
        renewed = await rotator.check(webhooks.on_change)
        assert renewed is webhooks.certificates
        assert renewed != previous
        bundle = x509.load_pem_x509_certificates(renewed.bundle)
        assert bundle[1] == x509.load_pem_x509_certificate(previous.ca_cert_pem)  # the old CA is still trusted
        crd = await client.get(CUSTOM_RESOURCE_DEFINITIONS, toy.INFO.crd_name)
        assert (
            crd["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"]
            == base64.b64encode(renewed.bundle).decode()
        )
        serial = await asyncio.to_thread(presented_serial, webhooks.server.port or 0, renewed.bundle)
        assert serial not in serials
        serials.append(serial)
        # Past the keep-alive timeout every connection from the apiserver is new: its handshakes see only the new
        # certificate, and after the second round the very first CA is no longer in the bundle at all.
        await asyncio.sleep(KEEPALIVE + 0.5)
        attempts = itertools.count()

        async def still_served(round_: int = round_, attempts: itertools.count[int] = attempts) -> None:
            name = f"r{round_}-{next(attempts)}"
            assert (await client.get(WIDGETS_V1, "r", namespace))["spec"]["size"] == 5
            created = await client.create(WIDGETS_V1, toy.widget(name, namespace=namespace, size=2))
            assert created["spec"]["color"] == "blue"
            with pytest.raises(errors.InvalidError):
                await client.create(WIDGETS_V1, toy.widget(f"bad-{name}", namespace=namespace, size=0))

        await eventually(still_served, "the apiserver calls the rotated server")
    stored = Certificates.from_secret(await client.get(SECRETS, "webhook-certs", namespace))
    assert stored == webhooks.certificates


async def test_the_apiserver_trusts_only_the_injected_bundle(webhooks: Webhooks, control_plane: ControlPlane) -> None:
    """The control for the rotation test: with a bundle that does not hold our CA, new connections fail."""
    client, namespace = webhooks.client, webhooks.namespace
    await client.create(WIDGETS_V1, toy.widget("t", namespace=namespace, size=1))
    stranger = await asyncio.to_thread(
        generate, ["elsewhere"], datetime.datetime.now(datetime.UTC), datetime.timedelta(hours=1)
    )
    names = {"crd_group": None, "crd_names": [toy.INFO.crd_name]}
    async with await Client.from_kubeconfig(str(control_plane.kubeconfig_path), retry=RetryPolicy(attempts=1)) as once:
        try:
            await inject_ca_bundle(client, stranger.bundle, **names)  # type: ignore[arg-type]

            async def refused() -> None:
                with pytest.raises(errors.ServerError, match="conversion webhook"):
                    await once.get(WIDGETS_V1, "t", namespace)

            await asyncio.sleep(KEEPALIVE + 0.5)
            await eventually(refused, "the apiserver distrusts our certificate")
        finally:
            await inject_ca_bundle(client, webhooks.certificates.bundle, **names)  # type: ignore[arg-type]

        async def trusted() -> None:
            assert (await once.get(WIDGETS_V1, "t", namespace))["spec"]["size"] == 1

        await eventually(trusted, "the apiserver trusts our certificate again")
