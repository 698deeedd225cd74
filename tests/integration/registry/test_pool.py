"""`RegistryClients` on the TLS + token registry: clients of one pool share pings, tokens and blob locations, so
identical blobs pushed to many repositories go up once; a push takes one token for its target and every mount
source; a remembered location that turns out wrong falls back to an upload (or a clear error) and is forgotten."""

from __future__ import annotations

import asyncio
import secrets
import types
from collections import Counter

import aiohttp
import pytest

from kpack_core.envtest.registry import Registry
from kpack_core.registry import (
    BlobUnknownError,
    Credentials,
    ManifestUnknownError,
    RegistryClients,
    RegistryOptions,
    StaticKeychain,
    parse_reference,
)
from tests.integration.registry.test_client import Image

pytestmark = pytest.mark.integration


class Requests:
    """(method, path, status) of every request through the sessions it traces."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []
        self.config = aiohttp.TraceConfig()
        self.config.on_request_end.append(self._end)

    async def _end(
        self, _: aiohttp.ClientSession, __: types.SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        self.seen.append((params.method, params.url.path_qs, params.response.status))

    def uploads(self) -> Counter[str]:
        """Digests whose bytes were uploaded (the PUT completing an upload), with counts."""
        return Counter(
            path.split("digest=", 1)[1].replace("%3A", ":")
            for method, path, status in self.seen
            if method == "PUT" and "/blobs/uploads/" in path and "digest=" in path and status == 201
        )


def _keychain(registry: Registry) -> StaticKeychain:
    return StaticKeychain({registry.host: Credentials(registry.username, registry.password)})


def _repo(registry: Registry, name: str) -> str:
    return f"{registry.host}/pool/{name}-{secrets.token_hex(3)}"


async def test_identical_blobs_pushed_concurrently_to_many_repositories_go_up_once(token_registry: Registry) -> None:
    requests = Requests()
    pool = RegistryClients(RegistryOptions(ca_pem=token_registry.ca_pem), trace_configs=[requests.config])
    image = Image({"io.kpack.test": "pool"})
    targets = [_repo(token_registry, f"target{i}") + ":v1" for i in range(6)]

    async def push(target: str) -> None:
        async with pool(_keychain(token_registry)) as client:  # a client (and keychain) per push, as reconciles do
            await client.push_image(target, image.manifest, image.blobs)

    try:
        await asyncio.gather(*(push(target) for target in targets))
        async with pool(_keychain(token_registry)) as reader:
            for target in targets:
                assert await reader.get_digest(target) == image.raw.digest
                assert await reader.get_blob(target, image.manifest.layers[0].digest) == image.layers[0]
    finally:
        await pool.close()

    uploaded = requests.uploads()
    assert set(uploaded) == {sha for sha in (d.digest for d in (*image.manifest.layers, image.manifest.config))}
    assert set(uploaded.values()) == {1}  # each blob once; the other five repositories mounted it
    pings = [r for r in requests.seen if r[0] == "GET" and r[1] == "/v2/"]
    assert len(pings) == 1  # the registry was pinged once for all seven clients


async def test_a_push_takes_one_token_for_its_target_and_its_mount_sources(token_registry: Registry) -> None:
    assert token_registry.token_issuer is not None
    pool = RegistryClients(RegistryOptions(ca_pem=token_registry.ca_pem))
    first, second = Image({"io.kpack.test": "a"}), Image({"io.kpack.test": "b"})
    source_a, source_b = _repo(token_registry, "source-a") + ":v1", _repo(token_registry, "source-b") + ":v1"
    try:
        async with pool(_keychain(token_registry)) as client:
            await client.push_image(source_a, first.manifest, first.blobs)
            await client.push_image(source_b, second.manifest, second.blobs)
        combined = Image({"io.kpack.test": "combined"}, layers=0)
        manifest = combined.manifest.__class__(
            config=combined.manifest.config,
            layers=(*first.manifest.layers, *second.manifest.layers),
            media_type=combined.manifest.media_type,
        )
        target = parse_reference(_repo(token_registry, "combined") + ":v1")
        before = token_registry.token_issuer.issued
        async with pool(_keychain(token_registry)) as client:
            await client.push_image(target, manifest, [combined.config], mount_from=[source_a, source_b])
        assert token_registry.token_issuer.issued == before + 1  # push on the target and pull on both sources
        async with pool(_keychain(token_registry)) as client:
            assert (await client.get_manifest(target)).digest is not None
    finally:
        await pool.close()


async def test_a_wrong_remembered_location_falls_back_to_an_upload_and_is_forgotten(token_registry: Registry) -> None:
    pool = RegistryClients(RegistryOptions(ca_pem=token_registry.ca_pem))
    image = Image({"io.kpack.test": "stale"}, layers=1)
    layer = image.manifest.layers[0].digest
    nowhere = _repo(token_registry, "never-pushed")
    target = parse_reference(_repo(token_registry, "stale") + ":v1")
    try:
        async with pool(_keychain(token_registry)) as client:
            client.remember_blob(nowhere, layer)
            await client.push_image(target, image.manifest, image.blobs)
            assert await client.get_blob(target, layer) == image.layers[0]
        assert pool.locations.repositories(token_registry.host, layer) == [target.repository]
    finally:
        await pool.close()


async def test_a_wrong_remembered_location_without_the_bytes_is_blob_unknown_and_moves_no_tag(
    token_registry: Registry,
) -> None:
    pool = RegistryClients(RegistryOptions(ca_pem=token_registry.ca_pem))
    image = Image({"io.kpack.test": "stale-no-bytes"}, layers=1)
    layer = image.manifest.layers[0].digest
    target = parse_reference(_repo(token_registry, "stale-no-bytes") + ":v1")
    try:
        async with pool(_keychain(token_registry)) as client:
            client.remember_blob(_repo(token_registry, "never-pushed"), layer)
            with pytest.raises(BlobUnknownError, match=str(target).replace(":v1", "")):
                await client.push_image(target, image.manifest, [image.config])
            with pytest.raises(ManifestUnknownError):
                await client.get_manifest(target)
        assert pool.locations.repositories(token_registry.host, layer) == []
    finally:
        await pool.close()


async def test_closing_a_client_leaves_the_pool_open_and_closing_the_pool_ends_its_session(
    token_registry: Registry,
) -> None:
    assert token_registry.token_issuer is not None
    pool = RegistryClients(RegistryOptions(ca_pem=token_registry.ca_pem))
    image = Image({"io.kpack.test": "shared"})
    target = _repo(token_registry, "shared") + ":v1"
    async with pool(_keychain(token_registry)) as client:
        await client.push_image(target, image.manifest, image.blobs)
        await client.get_manifest(target)
        session = client.transport.session
    issued = token_registry.token_issuer.issued
    async with pool(_keychain(token_registry)) as client:  # the first client is closed; its session is not
        assert (await client.get_manifest(target)).digest == image.raw.digest
    assert token_registry.token_issuer.issued == issued  # the pull token of the first client served the second
    assert not session.closed

    await pool.close()
    assert session.closed
