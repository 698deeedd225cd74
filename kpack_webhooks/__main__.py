"""`python -m kpack_webhooks`: the webhook server process.

Start-up: make sure the certificate Secret holds a valid CA and serving certificate (creating or renewing them),
inject the CA bundle into the converted CRDs and the admission webhook configurations, load the serving certificate,
listen. Then a background task looks at the Secret every `check_interval`: renewed certificates (by this replica or
another) are injected first and served `--rotation-delay` seconds later, without a restart.

`--local` serves on 127.0.0.1 and registers the webhooks itself with URL client configs (for a development
apiserver such as envtest), removing the admission configurations again on exit. SIGTERM/SIGINT stop gracefully:
optionally keep serving for `--shutdown-delay` seconds (the time a Service needs to stop sending traffic to a
terminating pod), then finish in-flight requests and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence

import structlog
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kpack_core.runtime import metrics as runtime_metrics
from kpack_core.runtime.client import Client
from kpack_core.runtime.log import configure_logging
from kpack_webhooks import kinds
from kpack_webhooks.certificates import (
    LOCAL_HOSTS,
    CertificateManager,
    CertificateOptions,
    Certificates,
    inject_ca_bundle,
)
from kpack_webhooks.handlers import Registry
from kpack_webhooks.install import MissingCRDError, register, unregister
from kpack_webhooks.registration import DEFAULTING_WEBHOOK, VALIDATION_WEBHOOK, UrlTarget
from kpack_webhooks.server import ServerOptions, ServingCertificate, WebhookServer
from kpack_webhooks.storageclasses import DefaultStorageClass

log = structlog.get_logger("kpack_webhooks")

EXIT_OK = 0
EXIT_FAILED = 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    environ = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m kpack_webhooks",
        description="The kpack webhook server: conversion, defaulting and validation over HTTPS.",
    )
    parser.add_argument("--port", type=int, default=8443, help="HTTPS port (default 8443)")
    parser.add_argument("--cert-secret", default="webhook-certs", help="Secret holding the certificates")
    parser.add_argument(
        "--namespace",
        default=environ.get("POD_NAMESPACE", "kpack"),
        help="namespace of the Secret and the Service (default $POD_NAMESPACE, else kpack)",
    )
    parser.add_argument("--service", default="kpack-webhook", help="Service the apiserver dials (certificate SANs)")
    parser.add_argument("--local", action="store_true", help="serve on 127.0.0.1 and register URL client configs")
    parser.add_argument("--kubeconfig", default=environ.get("KUBECONFIG"), help="default $KUBECONFIG or in-cluster")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="plain-HTTP /metrics port (default 8080; 0 = off, off with --local)",
    )
    parser.add_argument(
        "--rotation-delay",
        type=float,
        default=10.0,
        help="seconds between injecting a new CA bundle and serving the certificate it trusts",
    )
    parser.add_argument("--shutdown-delay", type=float, default=0.0, help="seconds to keep serving after SIGTERM")
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the StorageClass cache at start-up (e.g. for RBAC applied just after) before "
        "exiting 1 (default 60)",
    )
    parser.add_argument("--log-level", default=environ.get("KPACK_LOG_LEVEL", "info"))
    args = parser.parse_args(argv)
    if args.metrics_port is None:
        args.metrics_port = 0 if args.local else 8080
    return args


async def _client(kubeconfig: str | None) -> Client:
    if kubeconfig or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return await Client.from_kubeconfig(kubeconfig)
    return Client.in_cluster()


async def _serve_metrics(port: int) -> web.AppRunner:
    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=runtime_metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


class Webhooks:
    """The running process: certificates, server and (local mode) registration."""

    def __init__(
        self,
        args: argparse.Namespace,
        client: Client,
        registry: Registry,
        storage: DefaultStorageClass | None = None,
    ) -> None:
        self.args = args
        self.client = client
        self.registry = registry
        self.storage = storage
        extra_hosts = LOCAL_HOSTS if args.local else ()
        self.certificates = CertificateManager(
            client,
            CertificateOptions(
                namespace=args.namespace, secret_name=args.cert_secret, service=args.service, extra_hosts=extra_hosts
            ),
        )
        self.serving = ServingCertificate()
        host = "127.0.0.1" if args.local else "0.0.0.0"
        self.server = WebhookServer(registry, self.serving, ServerOptions(host=host, port=args.port, freeze_gc=True))

    async def on_change(self, certificates: Certificates) -> None:
        """Trust first, serve second: the bundle (old and new CA) reaches the apiserver before the new certificate
        is presented."""
        converted = [info.crd_name for info in self.registry.kinds() if info.convert and len(info.versions) > 1]
        admitted = any(info.admit for info in self.registry.kinds())
        await inject_ca_bundle(
            self.client,
            certificates.bundle,
            crd_group=None,
            crd_names=converted,
            mutating=[DEFAULTING_WEBHOOK] if admitted else [],
            validating=[VALIDATION_WEBHOOK] if admitted else [],
        )
        if self.serving.loaded:
            await asyncio.sleep(self.args.rotation_delay)
        await self.serving.load(certificates.server_cert_pem, certificates.server_key_pem)

    async def start(self) -> None:
        if self.storage is not None:
            # Before serving: answers must not flip once synced.
            await self.storage.start(self.client, within=self.args.start_timeout)
        if self.args.local:
            certificates = await self.certificates.ensure()
            target = UrlTarget(f"https://127.0.0.1:{self.args.port}")
            await register(self.client, self.registry.kinds(), target, certificates.bundle)
        await self.certificates.check(self.on_change)
        await self.server.start()

    async def stop(self) -> None:
        """Stop serving; in local mode also remove the admission configurations (failures are logged: stopping
        must go on)."""
        await self.server.stop()
        if self.storage is not None:
            await self.storage.stop()
        if self.args.local:
            try:
                await unregister(self.client)
            except Exception:
                log.exception("removing the webhook configurations failed")


async def run(args: argparse.Namespace, registry: Registry | None = None, stop: asyncio.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or until `stop` is set, when given: then signals are left alone); returns the
    exit code: 0 after a graceful stop, 1 when start-up or the certificate watch failed."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    storage = DefaultStorageClass() if registry is None else None
    registry = registry if registry is not None else kinds.registry(storage or (lambda: False))
    if not len(registry):
        log.warning("no kinds registered: every review will be refused")
    async with contextlib.AsyncExitStack() as stack:
        try:
            if args.metrics_port:
                stack.push_async_callback((await _serve_metrics(args.metrics_port)).cleanup)
            client = await _client(args.kubeconfig)
            stack.push_async_callback(client.close)
            webhooks = Webhooks(args, client, registry, storage)
            stack.push_async_callback(webhooks.stop)
            await webhooks.start()
        except MissingCRDError as exc:
            log.error("the webhook server failed to start", error=str(exc))
            return EXIT_FAILED
        except Exception:
            log.exception("the webhook server failed to start")
            return EXIT_FAILED
        watcher = asyncio.create_task(webhooks.certificates.watch(webhooks.on_change), name="certificate-watch")
        stopped = asyncio.create_task(stop.wait(), name="stop")
        log.info("kpack webhooks serving", port=webhooks.server.port, local=args.local, kinds=len(registry))
        await asyncio.wait([watcher, stopped], return_when=asyncio.FIRST_COMPLETED)
        for task in (watcher, stopped):
            task.cancel()
        results = await asyncio.gather(watcher, stopped, return_exceptions=True)
        if not stop.is_set():
            log.error("the certificate watch ended", error=repr(results[0]))
            return EXIT_FAILED
        log.info("stopping", shutdown_delay=args.shutdown_delay)
        await asyncio.sleep(args.shutdown_delay)
        return EXIT_OK
    raise AssertionError("unreachable: the block returns")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(level=args.log_level)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
