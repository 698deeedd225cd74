"""The HTTPS server on the loopback: endpoints, bad input, body limit, TLS versions, metrics, and certificate rotation
on the live server (new handshakes get the new certificate, open connections keep working)."""

from __future__ import annotations

import asyncio
import datetime
import gc
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from cryptography import x509
from yarl import URL

from kpack_core.runtime.metrics import REGISTRY, exposition
from kpack_webhooks.certificates import LOCAL_HOSTS, Certificates, generate
from kpack_webhooks.server import ServerOptions, ServingCertificate, WebhookServer
from tests.unit.webhooks import toy

NOW = datetime.datetime.now(datetime.UTC)


def client_context(*cas: Certificates, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata="".join(ca.ca_cert_pem.decode() for ca in cas))
    if maximum is not None:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
    return context


class Running:
    def __init__(self, server: WebhookServer, certificates: Certificates) -> None:
        self.server = server
        self.certificates = certificates
        self.url = f"https://localhost:{server.port}"


@pytest_asyncio.fixture(loop_scope="session")
async def running() -> AsyncIterator[Running]:
    certificates = await asyncio.to_thread(generate, list(LOCAL_HOSTS), NOW, datetime.timedelta(days=1))
    serving = ServingCertificate()
    await serving.load(certificates.server_cert_pem, certificates.server_key_pem)
    server = WebhookServer(toy.registry(), serving, ServerOptions(host="127.0.0.1", port=0, max_body_bytes=64 * 1024))
    await server.start()
    try:
        yield Running(server, certificates)
    finally:
        await server.stop()


def conversion_body(*objects: dict[str, Any], uid: str = "u") -> bytes:
    review = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"}
    return orjson.dumps({**review, "request": {"uid": uid, "desiredAPIVersion": toy.V2, "objects": list(objects)}})


async def post(running: Running, path: str, body: bytes, context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(running.url + path, data=body, ssl=context or client_context(running.certificates)) as response,
    ):
        return response.status, orjson.loads(await response.read())


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


async def test_convert_over_https(running: Running) -> None:
    status, answer = await post(running, "/convert", conversion_body(toy.widget("a", size=2), toy.widget("b", size=3)))
    assert status == 200
    assert answer["response"]["uid"] == "u"
    assert [o["spec"] for o in answer["response"]["convertedObjects"]] == [{"dimension": 2}, {"dimension": 3}]


async def test_the_query_the_apiserver_adds_is_ignored(running: Running) -> None:
    status, answer = await post(running, "/convert?timeout=10s", conversion_body(toy.widget("a", size=2)))
    assert status == 200
    assert answer["response"]["convertedObjects"][0]["spec"] == {"dimension": 2}


async def test_health_and_readiness(running: Running) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(running.url + path, ssl=client_context(running.certificates)) as response:
                assert (response.status, await response.text()) == (200, "ok")
            async with session.head(running.url + path, ssl=client_context(running.certificates)) as response:
                assert (response.status, await response.read()) == (200, b"")


async def test_garbage_gets_400_and_the_server_keeps_serving(running: Running) -> None:
    before = sample("controller_runtime_webhook_requests_total", webhook="/validate", code="400")
    status, answer = await post(running, "/validate", b"\x00\xff not json")
    assert status == 400
    assert answer["reason"] == "BadRequest"
    assert answer["message"].startswith("the request body is not JSON")
    assert sample("controller_runtime_webhook_requests_total", webhook="/validate", code="400") == before + 1
    status, _ = await post(running, "/convert", conversion_body(toy.widget("a", size=1)))
    assert status == 200


async def test_a_body_over_the_limit_is_refused(running: Running) -> None:
    status, answer = await post(running, "/convert", b" " * (65 * 1024))
    assert status == 413
    assert answer["code"] == 413
    assert answer["message"] == "the request body exceeds 65536 bytes"


async def test_only_post_is_served_on_review_paths(running: Running) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(running.url + "/convert", ssl=client_context(running.certificates)) as response,
    ):
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert await response.text() == "GET is not allowed (allowed: POST)"


async def test_unknown_paths_get_404(running: Running) -> None:
    async with aiohttp.ClientSession() as session:
        for method, path in (("POST", "/convert/"), ("GET", "/"), ("POST", "/mutate")):
            async with session.request(
                method, running.url + path, data=b"{}", ssl=client_context(running.certificates)
            ) as response:
                assert response.status == 404, (method, path)


async def test_percent_encoded_paths_are_decoded(running: Running) -> None:
    body = conversion_body(toy.widget("a", size=1))
    async with aiohttp.ClientSession() as session:
        for path, status in (("/%63onvert", 200), ("/conv%65rt?timeout=30s", 200), ("/%2Fconvert", 404)):
            # `encoded=True`: sent as written, not normalised by yarl on the way out.
            url = URL(running.url + path, encoded=True)
            async with session.post(url, data=body, ssl=client_context(running.certificates)) as response:
                assert response.status == status, path
                if status == 200:
                    assert (await response.json())["response"]["result"]["status"] == "Success"


async def raw_exchange(running: Running, head: bytes, body: bytes) -> tuple[bytes, bytes]:
    """Send `head`, read the interim answer (up to an empty line), send `body`, read the final head."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", running.server.port, ssl=client_context(running.certificates), server_hostname="localhost"
    )
    try:
        writer.write(head)
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        if interim.startswith(b"HTTP/1.1 100"):
            writer.write(body)
            return interim, await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return b"", interim
    finally:
        writer.close()


async def test_expect_100_continue_is_answered(running: Running) -> None:
    body = conversion_body(toy.widget("a", size=1))
    head = (
        f"POST /convert HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    interim, final = await raw_exchange(running, head, body)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert final.startswith(b"HTTP/1.1 200")
    _, refused = await raw_exchange(running, head.replace(b"100-continue", b"200-ok"), body)
    assert refused.startswith(b"HTTP/1.1 417")


async def test_crashes_are_counted_and_answered(running: Running) -> None:
    before = sample("controller_runtime_conversion_webhook_panics_total")
    status, answer = await post(running, "/convert", conversion_body(toy.widget("a", crash=True)))
    assert status == 200
    assert answer["response"]["result"]["status"] == "Failure"
    assert sample("controller_runtime_conversion_webhook_panics_total") == before + 1


async def test_metrics_are_preinitialised_and_counted(running: Running) -> None:
    text = exposition().decode()
    for path in ("/convert", "/default", "/validate"):
        for code in ("200", "500"):
            assert f'controller_runtime_webhook_requests_total{{code="{code}",webhook="{path}"}}' in text
        assert f'controller_runtime_webhook_latency_seconds_count{{webhook="{path}"}}' in text
    before = sample("controller_runtime_webhook_requests_total", webhook="/convert", code="200")
    latency_before = sample("controller_runtime_webhook_latency_seconds_count", webhook="/convert")
    await post(running, "/convert", conversion_body(toy.widget("a", size=1)))
    assert sample("controller_runtime_webhook_requests_total", webhook="/convert", code="200") == before + 1
    assert sample("controller_runtime_webhook_latency_seconds_count", webhook="/convert") == latency_before + 1
    assert sample("controller_runtime_webhook_requests_in_flight", webhook="/convert") == 0


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tls_below_1_2_is_refused(running: Running) -> None:
    status, _ = await post(
        running, "/convert", conversion_body(), client_context(running.certificates, maximum=ssl.TLSVersion.TLSv1_2)
    )
    assert status == 200
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await post(
            running, "/convert", conversion_body(), client_context(running.certificates, maximum=ssl.TLSVersion.TLSv1_1)
        )


async def presented_serial(running: Running, context: ssl.SSLContext) -> int:
    _, writer = await asyncio.open_connection(
        "127.0.0.1", running.server.port, ssl=context, server_hostname="localhost"
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number
    finally:
        writer.close()
        await writer.wait_closed()


async def test_rotation_without_restart(running: Running) -> None:
    old = running.certificates
    new = await asyncio.to_thread(generate, list(LOCAL_HOSTS), NOW, datetime.timedelta(days=1), old)
    both = client_context(old, new)
    old_serial = x509.load_pem_x509_certificate(old.server_cert_pem).serial_number
    new_serial = x509.load_pem_x509_certificate(new.server_cert_pem).serial_number
    async with aiohttp.ClientSession() as session:  # one keep-alive connection, opened before the rotation
        async with session.post(running.url + "/convert", data=conversion_body(), ssl=both) as response:
            assert response.status == 200
        assert await presented_serial(running, both) == old_serial
        await running.server.certificate.load(new.server_cert_pem, new.server_key_pem)
        assert await presented_serial(running, both) == new_serial
        assert running.server.certificate.serial == new_serial
        async with session.post(running.url + "/convert", data=conversion_body(), ssl=both) as response:
            assert response.status == 200  # the connection opened with the old certificate still works
    # A client trusting only the new CA gets through; one trusting only the old CA no longer does.
    status, _ = await post(running, "/convert", conversion_body(), client_context(new))
    assert status == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await post(running, "/convert", conversion_body(), client_context(old))
    await running.server.certificate.load(old.server_cert_pem, old.server_key_pem)  # for the tests after this one


async def test_an_unusable_certificate_is_refused_and_the_old_one_kept(running: Running) -> None:
    other = await asyncio.to_thread(generate, list(LOCAL_HOSTS), NOW, datetime.timedelta(days=1))
    serving = running.server.certificate
    serial = serving.serial
    errors_before = sample("certwatcher_read_certificate_errors_total")
    with pytest.raises(ssl.SSLError):
        await serving.load(running.certificates.server_cert_pem, other.server_key_pem)
    with pytest.raises(ValueError, match="PEM"):
        await serving.load(b"not a certificate", other.server_key_pem)
    assert serving.serial == serial
    assert sample("certwatcher_read_certificate_errors_total") == errors_before + 2
    status, _ = await post(running, "/convert", conversion_body())
    assert status == 200


async def test_start_needs_a_certificate() -> None:
    with pytest.raises(RuntimeError, match="load a serving certificate"):
        await WebhookServer(toy.registry(), ServingCertificate()).start()


@pytest.mark.parametrize("freeze", [False, True])
async def test_start_freezes_what_is_alive_unless_told_not_to(freeze: bool) -> None:
    certificates = await asyncio.to_thread(generate, list(LOCAL_HOSTS), NOW, datetime.timedelta(days=1))
    serving = ServingCertificate()
    await serving.load(certificates.server_cert_pem, certificates.server_key_pem)
    gc.unfreeze()
    server = WebhookServer(toy.registry(), serving, ServerOptions(host="127.0.0.1", port=0, freeze_gc=freeze))
    await server.start()
    try:
        assert (gc.get_freeze_count() > 0) == freeze
    finally:
        await server.stop()
        gc.unfreeze()  # the rest of the test session collects as usual
