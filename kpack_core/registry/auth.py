"""Registry authentication: credentials, keychains, `WWW-Authenticate` challenges and the bearer token flow.

formats.md §2.2: a registry's `/v2/` answers 200 (no auth), or 401 with one or more challenges. Basic means the
credentials go on every request. Bearer means a token is fetched from the challenge's `realm` for the scopes an
operation needs (`repository:<path>:pull` or `:push,pull`), cached per scope set until it expires, and fetched
again (with the scope the registry names added) when the registry answers 401 to a request that carried it.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import aiohttp
import orjson

from kpack_core.registry.errors import RegistryError, UnauthorizedError, error_from_response
from kpack_core.registry.reference import DOCKER_HUB, DOCKER_HUB_ALIASES

if TYPE_CHECKING:
    import ssl

    from kpack_core.registry.reference import Reference

DEFAULT_TOKEN_LIFETIME = 60.0
"""Seconds a token lives when the token server does not say (`expires_in`), as the distribution spec defines."""
TOKEN_EXPIRY_MARGIN = 5.0
"""A token is renewed this many seconds before it expires, so it does not lapse between check and use."""
CLIENT_ID = "kpack-py"


# --- credentials and keychains -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What a keychain knows for a registry: a username and password, an OAuth2 identity (refresh) token, or a
    registry token used directly as the Bearer token. All empty means anonymous."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def basic_header(self) -> str | None:
        """`Basic base64(user:password)`, or None without a username and password."""
        if not (self.username or self.password):
            return None
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


ANONYMOUS = Credentials()


class Keychain(Protocol):
    """Finds the credentials for an image reference (anonymous when nothing matches). Async, because the real
    keychains read Kubernetes secrets; given the whole reference, because some match on the repository path."""

    async def resolve(self, reference: Reference) -> Credentials: ...


class StaticKeychain:
    """Credentials by registry host (`gcr.io`, `127.0.0.1:5000`); Docker Hub answers to any of its aliases."""

    def __init__(self, credentials: Mapping[str, Credentials] | None = None) -> None:
        self._by_host = {self._normalise(host): value for host, value in (credentials or {}).items()}

    @staticmethod
    def _normalise(host: str) -> str:
        host = re.sub(r"^https?://", "", host).split("/", 1)[0]
        return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host

    async def resolve(self, reference: Reference) -> Credentials:
        return self._by_host.get(reference.registry, ANONYMOUS)


# --- challenges --------------------------------------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME_OR_KEY = re.compile(rf"[\s,]*({_TOKEN})\s*(=)?\s*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_BARE = re.compile(r"[^\s,]*")


@dataclass(frozen=True)
class Challenge:
    """One `WWW-Authenticate` challenge: the scheme (lowercased) and its parameters (keys lowercased)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes the challenge names (space-separated in one `scope` parameter)."""
        return tuple(self.params.get("scope", "").split())


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges of a `WWW-Authenticate` header. Quoted values may contain commas and escaped quotes
    (`scope="repository:a/b:pull,push"`), so the header is scanned, never split on commas."""
    challenges: list[tuple[str, dict[str, str]]] = []
    position = 0
    while position < len(header):
        match = _SCHEME_OR_KEY.match(header, position)
        if match is None or not match.group(1):
            break
        word, is_param = match.group(1), match.group(2) is not None
        position = match.end()
        if not is_param:
            challenges.append((word.lower(), {}))
            continue
        quoted = _QUOTED.match(header, position)
        if quoted is not None:
            value = re.sub(r"\\(.)", r"\1", quoted.group(1))
            position = quoted.end()
        else:
            bare = _BARE.match(header, position)
            assert bare is not None  # `[^\s,]*` matches the empty string too
            value, position = bare.group(0), bare.end()
        if challenges:
            challenges[-1][1][word.lower()] = value
    return [Challenge(scheme, params) for scheme, params in challenges]


def pick_challenge(header: str) -> Challenge | None:
    """The first Basic or Bearer challenge, the ones this client speaks."""
    return next((c for c in parse_challenges(header) if c.scheme in ("basic", "bearer")), None)


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:push,pull"


# --- tokens ------------------------------------------------------------------------------------------------------


def _grants(scopes: frozenset[str]) -> frozenset[tuple[str, str]]:
    """(resource, action) pairs of scopes: `repository:r:push,pull` is (`repository:r`, push) and (.., pull)."""
    pairs: set[tuple[str, str]] = set()
    for scope in scopes:
        resource, _, actions = scope.rpartition(":")
        pairs.update((resource, action) for action in actions.split(","))
    return frozenset(pairs)


@dataclass(frozen=True)
class Token:
    """A bearer token and the monotonic time after which it is not used any more."""

    value: str
    expires_at: float

    def valid(self, now: float) -> bool:
        return now < self.expires_at


def _age_at_issue(issued_at: object) -> float:
    """How old the token already is according to `issued_at` (0 when absent, unparsable or in the future)."""
    if not isinstance(issued_at, str) or not issued_at:
        return 0.0
    try:
        issued = datetime.fromisoformat(issued_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if issued.tzinfo is None:
        return 0.0
    return max(0.0, time.time() - issued.timestamp())


def parse_token_response(body: bytes, now: float) -> Token:
    """The token of a token server answer: `access_token` preferred over `token`; lifetime from `expires_in`
    (default 60 s) less what already passed since `issued_at`, less a safety margin."""
    decoded = orjson.loads(body)
    if not isinstance(decoded, dict):
        raise ValueError("token response is not a JSON object")
    value = decoded.get("access_token") or decoded.get("token")
    if not isinstance(value, str) or not value:
        raise ValueError("token response has neither access_token nor token")
    expires_in = decoded.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else DEFAULT_TOKEN_LIFETIME
    remaining = lifetime - _age_at_issue(decoded.get("issued_at"))
    return Token(value, now + max(0.0, remaining - min(TOKEN_EXPIRY_MARGIN, lifetime / 10)))


class Authenticator:
    """The authentication state of one registry for one set of credentials: its challenge and cached tokens.

    Invariant: a cached token is only handed out while `valid(clock())`, and only for requests whose scopes its
    request asked for (`repository:r:push,pull` covers `repository:r:pull`), so a pull token is never used for a
    push. A token asked for more than one request needs (a push with every repository it mounts from) serves them
    all; should the token server have granted less than asked, the registry answers 401 and the request is retried
    once with a token for exactly its scopes. Concurrent requests for the same scopes share one token fetch, and
    expired tokens are dropped whenever a new one is stored.
    """

    def __init__(
        self,
        challenge: Challenge | None,
        credentials: Credentials,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.challenge = challenge
        self.credentials = credentials
        self.clock = clock
        self._tokens: dict[frozenset[str], Token] = {}
        self._locks: dict[frozenset[str], asyncio.Lock] = {}
        self.tokens_fetched = 0

    async def header(
        self,
        session: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext | bool,
        scopes: Iterable[str],
        reference: str,
        *,
        refresh: bool = False,
    ) -> str | None:
        """The `Authorization` header for a request needing `scopes`, or None (anonymous)."""
        challenge = self.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return self.credentials.basic_header()
        if self.credentials.registry_token:
            return f"Bearer {self.credentials.registry_token}"
        key = frozenset(scopes)
        token = None if refresh else self._covering(key)
        if token is None:
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                found = self._tokens.get(key)
                token = found if found is not None and found.valid(self.clock()) and not refresh else None
                if token is None:
                    token = await self._fetch(session, ssl_context, challenge, sorted(key), reference)
                    self._store(key, token)
        return f"Bearer {token.value}"

    def _covering(self, scopes: frozenset[str]) -> Token | None:
        """A valid token whose request asked for at least `scopes`."""
        now = self.clock()
        exact = self._tokens.get(scopes)
        if exact is not None and exact.valid(now):
            return exact
        wanted = _grants(scopes)
        for key, token in self._tokens.items():
            if token.valid(now) and wanted <= _grants(key):
                return token
        return None

    def _store(self, key: frozenset[str], token: Token) -> None:
        now = self.clock()
        self._tokens = {k: t for k, t in self._tokens.items() if t.valid(now)}
        self._tokens[key] = token
        self._locks = {k: lock for k, lock in self._locks.items() if k in self._tokens or lock.locked()}

    def update(self, challenge: Challenge) -> None:
        """A 401 brought a (possibly new) challenge: take it, and forget tokens issued under another realm."""
        if self.challenge is None or (challenge.scheme, challenge.realm) != (
            self.challenge.scheme,
            self.challenge.realm,
        ):
            self._tokens.clear()
        self.challenge = challenge

    async def _fetch(
        self,
        session: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext | bool,
        challenge: Challenge,
        scopes: list[str],
        reference: str,
    ) -> Token:
        if not challenge.realm:
            raise RegistryError(reference, "bearer challenge without a realm")
        self.tokens_fetched += 1
        if self.credentials.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": self.credentials.identity_token,
                "service": challenge.service,
                "scope": " ".join(scopes),
                "client_id": CLIENT_ID,
            }
            async with session.post(challenge.realm, data=form, ssl=ssl_context) as response:
                body = await response.read()
                # Token servers without the OAuth2 endpoint answer 404: fall back to the GET form.
                if response.status != 404:
                    return self._token_or_error(response.status, body, reference)
        params = [("service", challenge.service)] if challenge.service else []
        params += [("scope", scope) for scope in scopes]
        headers = {}
        basic = self.credentials.basic_header()
        if basic is not None:
            headers["Authorization"] = basic
        async with session.get(challenge.realm, params=params, headers=headers, ssl=ssl_context) as response:
            return self._token_or_error(response.status, await response.read(), reference)

    def _token_or_error(self, status: int, body: bytes, reference: str) -> Token:
        if status == 401:
            who = f"user {self.credentials.username!r}" if not self.credentials.anonymous else "anonymous access"
            raise UnauthorizedError(reference, f"the token server refused {who} (HTTP 401)", status=401)
        if status != 200:
            raise error_from_response(reference, "token request", status, body)
        try:
            return parse_token_response(body, self.clock())
        except ValueError as exc:
            raise RegistryError(reference, f"unreadable token response: {exc}", status=status) from exc
