"""Registry sources resolved to digests against the envtest registry with bearer-token auth over TLS."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kpack_core.envtest.registry import Registry
from kpack_core.registry import (
    Credentials,
    Descriptor,
    ImageManifest,
    ManifestUnknownError,
    RawManifest,
    RegistryClient,
    RegistryOptions,
    StaticKeychain,
    UnauthorizedError,
    mediatypes,
    sha256_digest,
)
from kpack_core.source import ResolvedRegistry, resolve_registry_image

pytestmark = pytest.mark.integration


def _client(registry: Registry, password: str | None = None) -> RegistryClient:
    credentials = Credentials(registry.username, registry.password if password is None else password)
    return RegistryClient(StaticKeychain({registry.host: credentials}), RegistryOptions(ca_pem=registry.ca_pem))


@pytest_asyncio.fixture(loop_scope="session")
async def client(token_registry: Registry) -> AsyncIterator[RegistryClient]:
    async with _client(token_registry) as registry_client:
        yield registry_client


async def _push_source_image(client: RegistryClient, repository: str) -> str:
    """Pushes a one-layer image holding "source code" at `<repository>:v1`; returns its manifest digest."""
    layer = os.urandom(1024)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]}}
    ).encode()
    manifest = ImageManifest(
        config=Descriptor.of(config, mediatypes.OCI_CONFIG),
        layers=(Descriptor.of(layer, mediatypes.OCI_UNCOMPRESSED_LAYER),),
    )
    pushed = await client.push_image(f"{repository}:v1", manifest, [layer, config])
    assert pushed.digest == RawManifest.of(manifest).digest
    return pushed.digest


@pytest.fixture
def repository(token_registry: Registry) -> str:
    return f"{token_registry.host}/source/app-{secrets.token_hex(3)}"


async def test_tag_resolves_to_digest_reference(client: RegistryClient, repository: str) -> None:
    digest = await _push_source_image(client, repository)

    resolved = await resolve_registry_image(
        client, f"{repository}:v1", image_pull_secrets=["pull-secret"], sub_path="src"
    )

    assert resolved == ResolvedRegistry(f"{repository}@{digest}", ("pull-secret",), "src")


async def test_digest_reference_is_checked_and_kept(client: RegistryClient, repository: str) -> None:
    digest = await _push_source_image(client, repository)

    resolved = await resolve_registry_image(client, f"{repository}:v1@{digest}")

    assert resolved.image == f"{repository}@{digest}"


async def test_moved_tag_resolves_to_the_new_digest(client: RegistryClient, repository: str) -> None:
    first = await _push_source_image(client, repository)
    second = await _push_source_image(client, repository)

    assert first != second
    assert (await resolve_registry_image(client, f"{repository}:v1")).image == f"{repository}@{second}"


async def test_missing_tag_error_passes_through(client: RegistryClient, repository: str) -> None:
    await _push_source_image(client, repository)

    with pytest.raises(ManifestUnknownError) as caught:
        await resolve_registry_image(client, f"{repository}:missing")

    assert caught.value.reference == f"{repository}:missing"


async def test_wrong_credentials_error_passes_through(token_registry: Registry, repository: str) -> None:
    async with _client(token_registry) as good:
        await _push_source_image(good, repository)
    async with _client(token_registry, password="wrong-password") as bad:
        with pytest.raises(UnauthorizedError) as caught:
            await resolve_registry_image(bad, f"{repository}:v1")

    assert "wrong-password" not in str(caught.value)
