"""Where keychains read secrets and service accounts from: the live API (`ClientReader`) or an informer cache
(`CacheReader`), behind one tiny protocol, plus the lookups every keychain shares.

A missing service account or secret is not an error to a keychain (kpack: "a missing SA yields an empty credential
set, missing secrets are skipped"), so the protocol answers None for it; any other API failure propagates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import structlog

from kpack_core.runtime import errors
from kpack_core.runtime.cache import Cache
from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import SECRETS, SERVICE_ACCOUNTS, Resource

log = structlog.get_logger(__name__)

JSON = dict[str, Any]

DEFAULT_SERVICE_ACCOUNT = "default"


class SecretReader(Protocol):
    """Reads one secret or service account by namespace and name; None when it does not exist."""

    async def secret(self, namespace: str, name: str) -> JSON | None: ...

    async def service_account(self, namespace: str, name: str) -> JSON | None: ...


class ClientReader:
    """A `SecretReader` on the live API: every read is a GET (fresh, and one round trip each)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def _get(self, resource: Resource, namespace: str, name: str) -> JSON | None:
        try:
            return await self.client.get(resource, name, namespace)
        except errors.NotFoundError:
            return None

    async def secret(self, namespace: str, name: str) -> JSON | None:
        return await self._get(SECRETS, namespace, name)

    async def service_account(self, namespace: str, name: str) -> JSON | None:
        return await self._get(SERVICE_ACCOUNTS, namespace, name)


class CacheReader:
    """A `SecretReader` on an informer cache: reads cost nothing but may lag the API by a watch event.

    The cache must have informers for secrets and service accounts (all namespaces, or the one read); `watch`
    asks it for them. Reading without them raises the cache's `NoInformerError`, a wiring mistake.
    """

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    @classmethod
    def watch(cls, cache: Cache, namespace: str | None = None) -> CacheReader:
        """A reader on `cache` after asking it for the secret and service account informers of `namespace`
        (None: all namespaces). They start with the cache, or at once if it already runs."""
        cache.informer(SECRETS, namespace=namespace)
        cache.informer(SERVICE_ACCOUNTS, namespace=namespace)
        return cls(cache)

    async def secret(self, namespace: str, name: str) -> JSON | None:
        return self.cache.get(SECRETS, name, namespace)

    async def service_account(self, namespace: str, name: str) -> JSON | None:
        return self.cache.get(SERVICE_ACCOUNTS, name, namespace)


def _names(references: object) -> list[str]:
    """The `name`s of a list of object references (`secrets`, `imagePullSecrets`), skipping malformed entries."""
    if not isinstance(references, list):
        return []
    return [ref["name"] for ref in references if isinstance(ref, dict) and isinstance(ref.get("name"), str)]


async def read_secrets(reader: SecretReader, namespace: str, names: Iterable[str]) -> list[JSON]:
    """The secrets named, in order, skipping (with a warning) those that do not exist."""
    found = []
    for name in names:
        secret = await reader.secret(namespace, name)
        if secret is None:
            log.warning("secret not found; skipped", namespace=namespace, secret=name)
            continue
        found.append(secret)
    return found


async def read_service_account(reader: SecretReader, namespace: str, name: str) -> JSON | None:
    """The service account, or None (with a warning) when it does not exist."""
    account = await reader.service_account(namespace, name)
    if account is None:
        log.warning("service account not found; no credentials from it", namespace=namespace, service_account=name)
    return account


def secret_names(service_account: JSON | None) -> list[str]:
    """The names in the service account's `secrets` list, in order."""
    return _names((service_account or {}).get("secrets"))


def image_pull_secret_names(service_account: JSON | None) -> list[str]:
    """The names in the service account's `imagePullSecrets` list, in order."""
    return _names((service_account or {}).get("imagePullSecrets"))
