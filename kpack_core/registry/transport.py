"""HTTP plumbing for the registry client: scheme choice, ping, authorisation, retries and typed errors.

One `Transport` serves many registries. Per registry it pings `/v2/` once (HTTPS; plain HTTP only for loopback
hosts or registries listed as insecure, and only when HTTPS does not answer), remembers the challenge, and keeps an
`Authenticator` per credentials. Each request carries the scopes it needs; a 401 updates the challenge and is
retried once with a fresh token. 5xx, 429 and lost connections are retried with bounded exponential backoff and
full jitter (tenacity); anything else becomes a typed `RegistryError` naming the reference.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from kpack_core.registry.auth import ANONYMOUS, Authenticator, Challenge, Credentials, Keychain, pick_challenge
from kpack_core.registry.errors import RegistryError, TransientError, UnauthorizedError, error_from_response
from kpack_core.registry.reference import Reference
from kpack_core.retry import RetryPolicy, Transient, parse_retry_after, retried


@dataclass(frozen=True)
class RegistryOptions:
    """How the client reaches registries. Every default is documented here and only here.

    - `ca_pem`: extra CA certificates (PEM) trusted besides the system ones; None: system trust only.
    - `insecure_registries`: hosts (`host:port`) that may be spoken to over plain HTTP; loopback hosts
      (`localhost`, `127.*`, `::1`) always may. HTTPS is still tried first.
    - `retry`: how 5xx, 429 and lost connections are retried; default `RetryPolicy(total=60.0)`: 5 attempts within
      60 s, backoff from 0.2 s doubling to 5 s with full jitter, a Retry-After honoured up to 10 s.
    - `chunk_size`: None uploads blobs in one PUT; a size uploads them in PATCH chunks of that many bytes.
    - `connect_timeout` / `read_timeout`: seconds to connect and between bytes read (default 30 and 300).
    """

    ca_pem: bytes | None = None
    insecure_registries: frozenset[str] = frozenset()
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(total=60.0))
    chunk_size: int | None = None
    connect_timeout: float = 30.0
    read_timeout: float = 300.0
    user_agent: str = "kpack-py"


def is_loopback(registry: str) -> bool:
    """`localhost[:port]`, `127.x.x.x[:port]` or `[::1][:port]`."""
    host = registry
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ssl_context(ca_pem: bytes | None) -> ssl.SSLContext:
    """System trust plus `ca_pem` (our own CA for in-cluster and test registries)."""
    context = ssl.create_default_context()
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem.decode())
    return context


def new_session(options: RegistryOptions, trace_configs: Sequence[aiohttp.TraceConfig] = ()) -> aiohttp.ClientSession:
    """An HTTP session with the options' timeouts and user agent (`trace_configs`: aiohttp's request hooks)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=options.connect_timeout, sock_read=options.read_timeout)
    return aiohttp.ClientSession(
        timeout=timeout, headers={"User-Agent": options.user_agent}, trace_configs=list(trace_configs) or None
    )


@dataclass(frozen=True)
class Answer:
    """A completed HTTP exchange: status, headers, the whole body and the final URL (after redirects)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: URL


MAX_AUTHENTICATORS = 256
"""Authenticators (each with its tokens) kept per registry; the least recently used go first. Credentials change
(rotated passwords, new namespaces' secrets), and an endpoint shared by a pool would otherwise keep every one."""


@dataclass
class _Endpoint:
    """One registry as pinged: its base URL and the authenticators per credentials."""

    base: URL
    challenge: Challenge | None
    authenticators: dict[Credentials, Authenticator] = field(default_factory=dict)

    def authenticator(self, credentials: Credentials) -> Authenticator:
        found = self.authenticators.pop(credentials, None)
        if found is None:
            found = Authenticator(self.challenge, credentials)
            while len(self.authenticators) >= MAX_AUTHENTICATORS:
                del self.authenticators[next(iter(self.authenticators))]
        self.authenticators[credentials] = found
        return found


class Endpoints:
    """Registries as pinged, with their authenticators. One per `Transport` by default; the transports of a pool
    share one, so each registry is pinged once and a token is reused by every client holding the same
    credentials (an `Authenticator` belongs to one set of credentials, so sharing it grants nothing new)."""

    def __init__(self) -> None:
        self._endpoints: dict[str, _Endpoint] = {}
        self._ping_locks: dict[str, asyncio.Lock] = {}

    def get(self, registry: str) -> _Endpoint | None:
        return self._endpoints.get(registry)

    async def get_or_ping(self, registry: str, ping: Callable[[], Awaitable[_Endpoint]]) -> _Endpoint:
        endpoint = self._endpoints.get(registry)
        if endpoint is not None:
            return endpoint
        async with self._ping_locks.setdefault(registry, asyncio.Lock()):
            if registry not in self._endpoints:
                self._endpoints[registry] = await ping()
            return self._endpoints[registry]


STREAM_THRESHOLD = 4 * 1024 * 1024
"""Bodies larger than this are streamed in `STREAM_SLICE` slices instead of written at once."""
STREAM_SLICE = 1024 * 1024


async def _slices(data: bytes) -> AsyncIterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(view), STREAM_SLICE):
        yield view[start : start + STREAM_SLICE]


class Transport:
    """Authorised, retried HTTP requests to registries. Owns its aiohttp session unless one is passed in."""

    def __init__(
        self,
        keychain: Keychain | None,
        options: RegistryOptions,
        session: aiohttp.ClientSession | None = None,
        *,
        endpoints: Endpoints | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.keychain = keychain
        self.options = options
        self._ssl = tls or ssl_context(options.ca_pem)
        self._own_session = session is None
        self._session = session
        self._endpoints = endpoints if endpoints is not None else Endpoints()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = new_session(self.options)
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    def authenticator(self, reference: Reference) -> Authenticator | None:
        """The authenticator used so far for this reference's registry (for tests and diagnostics)."""
        endpoint = self._endpoints.get(reference.registry)
        if endpoint is None:
            return None
        return next(reversed(endpoint.authenticators.values()), None)

    # --- ping --------------------------------------------------------------------------------------------------

    def _plain_http_allowed(self, registry: str) -> bool:
        return is_loopback(registry) or registry in self.options.insecure_registries

    def _ssl_for(self, url: URL) -> ssl.SSLContext | bool:
        return self._ssl if url.scheme == "https" else False

    async def _endpoint(self, reference: Reference) -> _Endpoint:
        return await self._endpoints.get_or_ping(reference.registry, lambda: self._ping(reference))

    async def _ping(self, reference: Reference) -> _Endpoint:
        schemes = ["https", "http"] if self._plain_http_allowed(reference.registry) else ["https"]
        first_failure: RegistryError | None = None
        for scheme in schemes:
            base = URL.build(scheme=scheme, authority=reference.registry)
            ping = base.with_path("/v2/")
            try:
                if scheme != schemes[-1]:
                    # A probe: a plain HTTP server fails the TLS handshake at once; retrying it would only cost time.
                    answer = await self._once("GET", ping, {})
                else:
                    answer = await self._retried(str(reference), "ping", functools.partial(self._once, "GET", ping, {}))
            except (TimeoutError, aiohttp.ClientError) as exc:
                message = f"ping over {scheme} failed: {type(exc).__name__}: {exc}"
                first_failure = first_failure or TransientError(str(reference), message)
                continue
            except TransientError as exc:
                first_failure = first_failure or exc
                continue
            if answer.status == 200:
                return _Endpoint(base, None)
            if answer.status == 401:
                challenge = pick_challenge(answer.headers.get("WWW-Authenticate", ""))
                if challenge is None:
                    raise RegistryError(str(reference), "401 from /v2/ without a Basic or Bearer challenge", status=401)
                return _Endpoint(base, challenge)
            raise error_from_response(str(reference), "ping", answer.status, answer.body)
        assert first_failure is not None
        raise first_failure

    # --- requests ----------------------------------------------------------------------------------------------

    async def request(
        self,
        reference: Reference,
        operation: str,
        method: str,
        target: str | URL,
        *,
        scopes: Iterable[str],
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        ok: Iterable[int] = (200,),
        not_found: type[RegistryError] | None = None,
    ) -> Answer:
        """One authorised request. `target` is a path below the registry (`/v2/...`) or an absolute URL (an upload
        location). Statuses in `ok` are returned; 401 triggers one fresh token; other failures raise typed errors."""
        endpoint = await self._endpoint(reference)
        url = target if isinstance(target, URL) else URL(f"{endpoint.base}{target}", encoded=True)
        credentials = await self.keychain.resolve(reference) if self.keychain is not None else ANONYMOUS
        authenticator = endpoint.authenticator(credentials)
        wanted = set(scopes)
        name = str(reference)
        answer = await self._authorised(name, operation, method, url, authenticator, wanted, headers, data)
        if answer.status == 401:
            challenge = pick_challenge(answer.headers.get("WWW-Authenticate", ""))
            if challenge is not None:
                authenticator.update(challenge)
                wanted |= set(challenge.scopes)
                answer = await self._authorised(
                    name, operation, method, url, authenticator, wanted, headers, data, refresh=True
                )
        if answer.status in set(ok):
            return answer
        error = error_from_response(name, operation, answer.status, answer.body, not_found=not_found)
        if isinstance(error, UnauthorizedError) and credentials.anonymous:
            error = UnauthorizedError(name, f"{error.args[0].split(': ', 1)[1]} (no credentials)", status=401)
        raise error

    async def authorize(self, reference: Reference, scopes: Iterable[str]) -> None:
        """Get a token for `scopes` now, so the requests that follow, each needing some of them, share it (one
        token for a whole push rather than one per set of mount sources)."""
        endpoint = await self._endpoint(reference)
        credentials = await self.keychain.resolve(reference) if self.keychain is not None else ANONYMOUS
        await endpoint.authenticator(credentials).header(
            self.session, self._ssl_for(endpoint.base), scopes, str(reference)
        )

    async def _authorised(
        self,
        name: str,
        operation: str,
        method: str,
        url: URL,
        authenticator: Authenticator,
        scopes: set[str],
        headers: Mapping[str, str] | None,
        data: bytes | None,
        *,
        refresh: bool = False,
    ) -> Answer:
        all_headers = dict(headers or {})
        authorization = await authenticator.header(self.session, self._ssl_for(url), scopes, name, refresh=refresh)
        if authorization is not None:
            all_headers["Authorization"] = authorization
        return await self._retried(name, operation, lambda: self._once(method, url, all_headers, data))

    async def _once(self, method: str, url: URL, headers: Mapping[str, str], data: bytes | None = None) -> Answer:
        kwargs: dict[str, Any] = {"headers": headers, "ssl": self._ssl_for(url)}
        if data is not None and len(data) > STREAM_THRESHOLD:
            # Handed to aiohttp whole, a large body is copied into its write buffer and the TLS layer's in one go;
            # streamed in slices of a view it is encrypted and sent as it goes (about 1.5x faster for 100 MB).
            kwargs["data"] = _slices(data)
            kwargs["headers"] = {**headers, "Content-Length": str(len(data))}
        elif data is not None:
            kwargs["data"] = data
        # aiohttp follows redirects (blob downloads from object storage) and drops Authorization on a host change.
        async with self.session.request(method, url, **kwargs) as response:
            body = b"" if method == "HEAD" else await response.read()
            return Answer(response.status, response.headers, body, response.url)

    async def _retried(self, name: str, operation: str, call: Callable[[], Awaitable[Answer]]) -> Answer:
        async def attempt() -> Answer:
            try:
                answer = await call()
            except (TimeoutError, aiohttp.ClientError) as exc:
                error = TransientError(name, f"{operation} failed: {type(exc).__name__}: {exc}")
                raise Transient(error) from exc
            if answer.status >= 500 or answer.status == 429:
                failed = error_from_response(name, operation, answer.status, answer.body)
                transient = TransientError(name, failed.args[0].split(": ", 1)[1], status=answer.status)
                raise Transient(transient, parse_retry_after(answer.headers))
            return answer

        return await retried(self.options.retry, attempt)
