"""The HTTPS server: `/convert`, `/default`, `/validate` (reviews) and `/healthz`, `/readyz` on one aiohttp server.

HTTPS only, TLS 1.2 or newer, HTTP/1.1 (announced by ALPN; the apiserver's client would otherwise try HTTP/2).
The serving certificate lives in one `ServingCertificate`, whose `ssl.SSLContext` is the one the listening socket
uses: loading a new chain into it changes what every *new* handshake presents, so a rotated certificate is served
without a restart (connections already open keep the old one until they close, which is what makes a rotation with
a CA bundle that trusts old and new seamless).

Request bodies are capped (`max_body_bytes`, answered with 413); everything inside the body is judged by `reviews`,
whose functions never raise: a bad body gets a 400 with a reason, never a traceback, and the server keeps serving.
Each review endpoint is instrumented like controller-runtime's (requests by code, latency, in flight, panics).
Reviews are handled on the event loop: a conversion is a few microseconds per object (reads through v1alpha1 by
the native fast path, `fastconvert`), cheaper than a hand-off to a thread would be.

The server is aiohttp's low-level `web.Server` with a fixed route table (five paths), not a `web.Application`: the
application's router, middleware chain and request objects cost ~5 µs a request (a constant answer over TLS: 68 µs
against 73), about a third of what a one-object conversion adds over a bare handler (tests/benchmarks/README.md).
Paths are matched as sent, query left out (percent-escapes are decoded only for a path not found as sent): unknown
paths get 404, other methods 405 with `Allow`, and `Expect: 100-continue` is answered as `web.Application` would.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import gc
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import orjson
import structlog
from aiohttp import web
from cryptography import x509

from kpack_webhooks import metrics, reviews
from kpack_webhooks.handlers import Registry
from kpack_webhooks.registration import CONVERT_PATH, DEFAULT_PATH, VALIDATE_PATH

log = structlog.get_logger(__name__)

REVIEW_PATHS = (CONVERT_PATH, DEFAULT_PATH, VALIDATE_PATH)

Review = Callable[[bytes, Registry], reviews.Reply]
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def tls_context() -> ssl.SSLContext:
    """A server context: TLS ≥ 1.2, HTTP/1.1 by ALPN, no certificate yet."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def _write_pair(directory: str, cert_pem: bytes, key_pem: bytes) -> tuple[str, str]:
    cert_path, key_path = Path(directory) / "tls.crt", Path(directory) / "tls.key"
    cert_path.write_bytes(cert_pem)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem)
    return str(cert_path), str(key_path)


class ServingCertificate:
    """The live TLS context of the server and the certificate it currently presents.

    `ssl` only loads chains from files, so a chain in memory is written to a private temporary directory (in a
    thread) and removed right after loading (reading two small files back is the only file work left on the loop).
    It is first loaded into a scratch context, so a broken or mismatched pair is refused without touching the live
    one (OpenSSL would otherwise have replaced the certificate before finding that the key does not match). Loading
    into the live context happens on the event loop thread, which is the thread that runs every handshake with it.
    """

    def __init__(self) -> None:
        self.context = tls_context()
        self.not_after: datetime.datetime | None = None
        self.serial: int | None = None

    @property
    def loaded(self) -> bool:
        return self.serial is not None

    async def load(self, cert_pem: bytes, key_pem: bytes) -> None:
        """Serve this chain (leaf first, PEM) and key from the next handshake on; raises `ssl.SSLError` or
        `ValueError` (and keeps the current chain) when they are unusable."""
        metrics.CERTIFICATE_READS.inc()
        try:
            leaf = x509.load_pem_x509_certificate(cert_pem)
            with tempfile.TemporaryDirectory(prefix="kpack-webhook-tls-") as directory:
                cert_path, key_path = await asyncio.to_thread(_write_pair, directory, cert_pem, key_pem)
                tls_context().load_cert_chain(cert_path, key_path)
                self.context.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, ValueError, OSError):
            metrics.CERTIFICATE_READ_ERRORS.inc()
            raise
        self.not_after = leaf.not_valid_after_utc
        self.serial = leaf.serial_number
        log.info("serving certificate loaded", serial=f"{leaf.serial_number:x}", not_after=self.not_after.isoformat())


@dataclass(frozen=True)
class ServerOptions:
    """Where and how the server listens."""

    host: str = "0.0.0.0"
    port: int = 8443
    """0 picks a free port (see `WebhookServer.port`)."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body. Not the apiserver's 3 MiB per object: a list read in a non-storage version converts a
    whole page (500 objects for kubectl and informers) in one review, so this allows 16 KiB per object of a page,
    while bounding what one request can make the server parse (the port is reachable from inside the cluster)."""
    shutdown_timeout: float = 15.0
    """How long `stop()` lets in-flight requests finish."""
    keepalive_timeout: float = 120.0
    """Idle keep-alive connections are closed after this long. Longer than the apiserver's own idle timeout (90 s):
    the client must be the one to close, or it may send a request on a connection the server is closing just then
    (and a POST is not retried)."""
    freeze_gc: bool = False
    """On `start()`, collect garbage once, then freeze every object alive (`gc.freeze`): see `WebhookServer.start`.
    Process-wide, so only for a process whose main job the server is (`python -m kpack_webhooks` turns it on)."""


def _status_reply(status: int, reason: str, message: str, crash: BaseException | None = None) -> reviews.Reply:
    body: dict[str, object] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    body |= {"message": message, "reason": reason, "code": status}
    return reviews.Reply(status, orjson.dumps(body), problem=message, crashes=(crash,) if crash else ())


async def _answer(response: web.Response) -> web.Response:
    return response


async def _expect(request: web.BaseRequest) -> web.Response | None:
    """What `web.Application` does with `Expect` (curl, for one, asks before sending a body over 1 KiB): 100 Continue
    for `100-continue`, 417 for anything else."""
    expect = request.headers["Expect"]
    if expect.lower() != "100-continue":
        return web.Response(status=417, text=f"unknown Expect: {expect}")
    if request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


class _Endpoint:
    """One review endpoint: reads the body, lets `reviews` answer it, counts and logs what needs it."""

    def __init__(self, path: str, review: Review, registry: Registry, max_body_bytes: int) -> None:
        self.path = path
        self.review = review
        self.registry = registry
        self.max_body_bytes = max_body_bytes
        self.stats = metrics.endpoint_stats(path)
        self.panics = metrics.CONVERSION_PANICS if path == CONVERT_PATH else metrics.WEBHOOK_PANICS

    async def handle(self, request: web.BaseRequest) -> web.Response:
        started = time.perf_counter()
        if "Expect" in request.headers:
            refused = await _expect(request)
            if refused is not None:
                return refused
        stats = self.stats
        stats.in_flight += 1
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                reply = _status_reply(
                    413, "RequestEntityTooLarge", f"the request body exceeds {self.max_body_bytes} bytes"
                )
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:  # the client left mid-body, or lied
                reply = _status_reply(400, "BadRequest", f"reading the request body: {type(exc).__name__}")
            else:
                reply = self.review(body, self.registry)
        except Exception as exc:  # a bug here, not in a handler (reviews catch those): still no traceback out
            reply = _status_reply(500, "InternalError", f"internal error: {type(exc).__name__}", exc)
        finally:
            stats.in_flight -= 1
        if reply.problem is not None:
            self._report(reply)
        response = web.Response(status=reply.status, body=reply.body, content_type="application/json")
        stats.observe(reply.status, time.perf_counter() - started)
        return response

    def _report(self, reply: reviews.Reply) -> None:
        for crash in reply.crashes:
            self.panics.inc()
            log.error(
                "webhook handler failed",
                webhook=self.path,
                uid=reply.uid,
                problem=reply.problem,
                exc_info=(type(crash), crash, crash.__traceback__),
            )
        if not reply.crashes:
            log.info(
                "webhook request refused", webhook=self.path, uid=reply.uid, code=reply.status, problem=reply.problem
            )


class WebhookServer:
    """The review endpoints of a `Registry` over HTTPS with `certificate`. `start()`, then `stop()`."""

    def __init__(
        self, registry: Registry, certificate: ServingCertificate, options: ServerOptions | None = None
    ) -> None:
        self.registry = registry
        self.certificate = certificate
        self.options = options or ServerOptions()
        self.port: int | None = None
        self._runner: web.ServerRunner | None = None
        max_body = self.options.max_body_bytes
        self.routes: dict[str, dict[str, Handler]] = {
            path: {"POST": _Endpoint(path, review, registry, max_body).handle}
            for path, review in (
                (CONVERT_PATH, reviews.convert),
                (DEFAULT_PATH, reviews.default),
                (VALIDATE_PATH, reviews.validate),
            )
        }
        # HEAD too, as `web.Application.add_get` registers it (aiohttp sends no body for HEAD).
        self.routes["/healthz"] = {"GET": self._healthz, "HEAD": self._healthz}
        self.routes["/readyz"] = {"GET": self._readyz, "HEAD": self._readyz}

    def handle(self, request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        """Dispatch one request by path and method: the route's handler, itself awaited by aiohttp (one coroutine
        per request, not two)."""
        # The path as sent, without the query (the apiserver adds `?timeout=…`): `request.path` would build and
        # decode a URL, several µs of a request that costs ~100 µs in all. Only a path not found as sent is decoded
        # (`/%63onvert` is `/convert`, as Go's ServeMux sees it).
        path = request.raw_path.partition("?")[0]
        methods = self.routes.get(path)
        if methods is None and "%" in path:
            methods = self.routes.get(unquote(path))
        if methods is None:
            return _answer(web.Response(status=404, text="not found"))
        handler = methods.get(request.method)
        if handler is None:
            allowed = ", ".join(methods)
            message = f"{request.method} is not allowed (allowed: {allowed})"
            return _answer(web.Response(status=405, text=message, headers={"Allow": allowed}))
        return handler(request)

    async def _healthz(self, _: web.BaseRequest) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, _: web.BaseRequest) -> web.Response:
        if not self.certificate.loaded:
            return web.Response(status=500, text="no serving certificate loaded")
        return web.Response(text="ok")

    async def start(self) -> None:
        """Listen; the certificate must be loaded (a TLS server without one could not complete a handshake)."""
        if not self.certificate.loaded:
            raise RuntimeError("load a serving certificate before starting the webhook server")
        # No access log: one line per conversion would outweigh the conversion; refusals are logged with reasons.
        runner = web.ServerRunner(
            web.Server(
                self.handle,
                request_factory=functools.partial(
                    web.BaseRequest, loop=asyncio.get_running_loop(), client_max_size=self.options.max_body_bytes
                ),
                access_log=None,
                keepalive_timeout=self.options.keepalive_timeout,
            ),
            shutdown_timeout=self.options.shutdown_timeout,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.options.host, self.options.port, ssl_context=self.certificate.context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        if self.options.freeze_gc:
            # What is alive once the server listens (modules, models, field shapes, the registry) lives as
            # long as the process, yet every full collection walks it. A review of many objects keeps them alive
            # long enough to reach the oldest generation, and the full collections that follow cost ~60 ms each on
            # a 115k-object heap: measured, a third of the server's CPU on 100-object reviews. Frozen objects are
            # skipped by every collection (collecting first keeps today's garbage out of the frozen set).
            gc.collect()
            gc.freeze()
        log.info("webhook server listening", host=self.options.host, port=self.port, paths=list(REVIEW_PATHS))

    async def stop(self) -> None:
        """Stop listening and let in-flight requests finish (within `shutdown_timeout`)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("webhook server stopped")
