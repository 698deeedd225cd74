"""Runs an aiohttp application on a loopback port inside the current event loop (token issuer, git server)."""

from __future__ import annotations

import base64
import secrets
import ssl
from collections.abc import Mapping

from aiohttp import web


async def serve(app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None) -> web.AppRunner:
    """Starts `app` on host:port; the caller stops it with `await runner.cleanup()`."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def server_ssl_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    """A TLS >= 1.2 server context for a certificate issued by the envtest CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


def basic_auth_header(user: str, password: str) -> str:
    """The `Authorization` header value for HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """(user, password) from a basic `Authorization` header, or None when absent or malformed."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, separator, password = decoded.partition(":")
    return (user, password) if separator else None


ANONYMOUS = ""


def authenticate(header: str | None, users: Mapping[str, str]) -> str | None:
    """Checks basic credentials against `users` (name -> password).

    Returns the user name, `ANONYMOUS` when `users` is empty (no auth required), or None when refused.
    """
    if not users:
        return ANONYMOUS
    credentials = parse_basic_auth(header)
    if credentials is None:
        return None
    user, password = credentials
    expected = users.get(user)
    if expected is not None and secrets.compare_digest(expected.encode(), password.encode()):
        return user
    return None
