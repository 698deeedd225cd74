"""The keychains read through an informer cache: secrets and service accounts come from watches, not GETs."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kpack_core.envtest.registry import Registry
from kpack_core.keychains import CacheReader, ServiceAccountGitKeychain, ServiceAccountKeychain
from kpack_core.registry import RegistryClient, RegistryOptions, UnauthorizedError, parse_reference
from kpack_core.runtime.cache import Cache, NoInformerError
from kpack_core.runtime.client import Client
from kpack_core.runtime.informer import DeletedFinalStateUnknown, InformerOptions
from kpack_core.runtime.resource import SECRETS, SERVICE_ACCOUNTS
from kpack_core.runtime.store import JSON

from .objects import create_docker_config_json, create_secret, create_service_account, push_small_image

pytestmark = pytest.mark.integration

FAST = InformerOptions(backoff_initial=0.1, backoff_max=1.0, inactivity_timeout=70.0)


@pytest_asyncio.fixture(loop_scope="session")
async def cache(client: Client, namespace: str) -> AsyncIterator[Cache]:
    """A started, synced cache watching secrets and service accounts of the test's namespace."""
    started = Cache(client, options=FAST)
    CacheReader.watch(started, namespace)
    started.start()
    try:
        await started.wait_for_sync(30)
        yield started
    finally:
        await started.stop()


class Changed:
    """An informer handler that only says that something changed."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def on_add(self, obj: JSON, is_in_initial_list: bool) -> None:
        self.event.set()

    def on_update(self, old: JSON, new: JSON) -> None:
        self.event.set()

    def on_delete(self, obj: JSON | DeletedFinalStateUnknown) -> None:
        self.event.set()


async def _cached(cache: Cache, namespace: str, secret: str, service_account: str) -> None:
    """Waits until the cache's watches delivered both objects (created just before through the API)."""
    changed = Changed()
    for informer in cache.informers:
        informer.add_handler(changed)
    async with asyncio.timeout(30):
        while True:
            changed.event.clear()
            if (
                cache.get(SECRETS, secret, namespace) is not None
                and cache.get(SERVICE_ACCOUNTS, service_account, namespace) is not None
            ):
                return
            await changed.event.wait()


async def test_cache_backed_keychain_authenticates(
    client: Client, namespace: str, cache: Cache, htpasswd_registry: Registry
) -> None:
    reader = CacheReader(cache)
    auths = {htpasswd_registry.host: {"username": htpasswd_registry.username, "password": htpasswd_registry.password}}
    await create_docker_config_json(client, namespace, "regcred", auths)
    await create_service_account(client, namespace, "builder", secrets=["regcred"])
    await _cached(cache, namespace, "regcred", "builder")

    reference = parse_reference(f"{htpasswd_registry.host}/keychains/cached-{secrets.token_hex(3)}:v1")
    options = RegistryOptions(ca_pem=htpasswd_registry.ca_pem)
    keychain = ServiceAccountKeychain(reader, namespace, "builder", environ={})
    async with RegistryClient(keychain, options) as registry_client:
        await push_small_image(registry_client, reference, "cached")
        assert await registry_client.get_labels(reference) == {"io.kpack.test": "cached"}

    missing = ServiceAccountKeychain(reader, namespace, "nobody", environ={})
    async with RegistryClient(missing, options) as registry_client:
        with pytest.raises(UnauthorizedError, match=str(reference)):
            await registry_client.get_manifest(reference)


async def test_cache_backed_git_keychain(client: Client, namespace: str, cache: Cache) -> None:
    annotations = {"kpack.io/git": "https://github.com"}
    data: dict[str, str | bytes] = {"username": "alice", "password": "s3cret"}
    await create_secret(client, namespace, "git", "kubernetes.io/basic-auth", data, annotations)
    await create_service_account(client, namespace, "default", secrets=["git"])
    reader = CacheReader(cache)
    await _cached(cache, namespace, "git", "default")
    credential = await ServiceAccountGitKeychain(reader, namespace).resolve("https://github.com/org/repo")
    assert credential is not None
    assert (credential.username, credential.password, credential.source) == (
        "alice",
        "s3cret",
        f"secret {namespace}/git",
    )


async def test_missing_objects_read_as_none_and_an_unwatched_cache_is_a_wiring_error(
    client: Client, namespace: str, cache: Cache
) -> None:
    reader = CacheReader(cache)
    assert await reader.secret(namespace, "absent") is None
    assert await reader.service_account(namespace, "absent") is None
    with pytest.raises(NoInformerError, match="secrets"):
        await CacheReader(Cache(client)).secret(namespace, "anything")
