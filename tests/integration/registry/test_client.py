"""RegistryClient against the real registries: token auth over TLS, basic auth, plain HTTP on loopback.

What we push is read back by our client and by skopeo, an independent client, run as an asyncio subprocess: the
token issuer serves from this event loop, so nothing here may block it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from kpack_core.envtest.registry import Registry
from kpack_core.registry import (
    BlobPush,
    Credentials,
    Descriptor,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    ManifestUnknownError,
    Platform,
    RawManifest,
    RegistryClient,
    RegistryOptions,
    RetryPolicy,
    StaticKeychain,
    TransientError,
    UnauthorizedError,
    mediatypes,
    parse_reference,
    sha256_digest,
)
from kpack_core.registry.auth import Token, pull_scope
from tests.skopeo import skopeo_inspect

pytestmark = pytest.mark.integration


class Image:
    """A small image: a config with labels and two layers of random bytes (registries store any bytes)."""

    def __init__(self, labels: dict[str, str], platform: Platform | None = None, layers: int = 2) -> None:
        platform = platform or Platform()
        self.layers = [os.urandom(2048) for _ in range(layers)]
        config = {
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer) for layer in self.layers]},
        }
        if platform.variant:
            config["variant"] = platform.variant
        self.config = json.dumps(config).encode()
        self.manifest = ImageManifest(
            config=Descriptor.of(self.config, mediatypes.OCI_CONFIG),
            layers=tuple(Descriptor.of(layer, mediatypes.OCI_UNCOMPRESSED_LAYER) for layer in self.layers),
        )
        self.raw = RawManifest.of(self.manifest)

    @property
    def blobs(self) -> list[bytes]:
        return [*self.layers, self.config]


def _keychain(registry: Registry, password: str | None = None) -> StaticKeychain:
    credentials = Credentials(registry.username, password if password is not None else registry.password)
    return StaticKeychain({registry.host: credentials})


@pytest_asyncio.fixture(loop_scope="session")
async def token_client(token_registry: Registry) -> AsyncIterator[RegistryClient]:
    options = RegistryOptions(ca_pem=token_registry.ca_pem)
    async with RegistryClient(_keychain(token_registry), options) as client:
        yield client


def _repo(registry: Registry, name: str) -> str:
    return f"{registry.host}/{name}-{secrets.token_hex(3)}"


async def test_push_and_read_back_with_token_auth_over_tls(
    token_registry: Registry, token_client: RegistryClient, tmp_path: Path
) -> None:
    image = Image({"io.kpack.test": "token", "io.buildpacks.stack.id": "io.kpack.stack"})
    tagged = parse_reference(_repo(token_registry, "team/app") + ":v1")

    by_digest = await token_client.push_image(tagged, image.manifest, image.blobs)

    assert by_digest.digest == image.raw.digest
    assert (await token_client.get_manifest(by_digest)).content == image.raw.content
    fetched = await token_client.get_manifest(tagged)
    assert fetched.digest == image.raw.digest
    assert fetched.media_type == mediatypes.OCI_MANIFEST
    assert await token_client.get_digest(tagged) == image.raw.digest
    assert await token_client.get_labels(tagged) == {
        "io.kpack.test": "token",
        "io.buildpacks.stack.id": "io.kpack.stack",
    }
    assert await token_client.get_blob(tagged, image.manifest.layers[1].digest) == image.layers[1]

    inspected = await skopeo_inspect(token_registry, tmp_path, str(by_digest))
    assert inspected["Labels"] == {"io.kpack.test": "token", "io.buildpacks.stack.id": "io.kpack.stack"}
    assert inspected["Digest"] == image.raw.digest
    inspected_tag = await skopeo_inspect(token_registry, tmp_path, str(tagged))
    assert inspected_tag["Digest"] == image.raw.digest


async def test_tokens_are_reused_until_they_expire(token_registry: Registry, token_client: RegistryClient) -> None:
    assert token_registry.token_issuer is not None
    image = Image({"io.kpack.test": "reuse"})
    tagged = parse_reference(_repo(token_registry, "reuse") + ":v1")
    await token_client.push_image(tagged, image.manifest, image.blobs)
    await token_client.get_manifest(tagged)
    before = token_registry.token_issuer.issued

    for _ in range(3):
        await token_client.get_manifest(tagged)
        await token_client.get_digest(tagged)
    assert token_registry.token_issuer.issued == before  # one pull token served all six requests

    authenticator = token_client.transport.authenticator(tagged)
    assert authenticator is not None
    authenticator.clock = lambda: float("inf")  # every cached token has expired
    await token_client.get_manifest(tagged)
    assert token_registry.token_issuer.issued == before + 1


async def test_second_push_skips_existing_blobs(token_registry: Registry) -> None:
    requests: list[tuple[str, str]] = []

    async def record(_: aiohttp.ClientSession, __: object, params: aiohttp.TraceRequestStartParams) -> None:
        requests.append((params.method, params.url.path))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(record)
    image = Image({"io.kpack.test": "skip"})
    repo = _repo(token_registry, "skip")
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        RegistryClient(
            _keychain(token_registry), RegistryOptions(ca_pem=token_registry.ca_pem), session=session
        ) as client,
    ):
        await client.push_image(f"{repo}:first", image.manifest, image.blobs)
        assert sum(1 for method, path in requests if method == "POST" and "/blobs/uploads" in path) == 3
        requests.clear()
        assert await client.push_blob(repo, image.layers[0]) is BlobPush.EXISTED
        await client.push_image(f"{repo}:second", image.manifest, image.blobs)

    uploads = [r for r in requests if r[0] in ("POST", "PUT", "PATCH") and "/blobs/" in r[1]]
    assert uploads == []
    assert [r for r in requests if r[0] == "PUT"] == [("PUT", f"/v2/{repo.split('/', 1)[1]}/manifests/second")]


async def test_blobs_mount_across_repositories(token_registry: Registry, token_client: RegistryClient) -> None:
    image = Image({"io.kpack.test": "mount"})
    source = parse_reference(_repo(token_registry, "mount/source") + ":v1")
    target = parse_reference(_repo(token_registry, "mount/target") + ":v1")
    await token_client.push_image(source, image.manifest, image.blobs)

    assert await token_client.push_blob(target, image.layers[0], mount_from=[source]) is BlobPush.MOUNTED
    # No content given at all: every blob must come from the mount, and the image is complete afterwards.
    await token_client.push_image(target, image.manifest, mount_from=[source])
    assert await token_client.get_labels(target) == {"io.kpack.test": "mount"}


async def test_chunked_upload(token_registry: Registry) -> None:
    image = Image({"io.kpack.test": "chunked"}, layers=1)
    options = RegistryOptions(ca_pem=token_registry.ca_pem, chunk_size=500)
    ref = parse_reference(_repo(token_registry, "chunked") + ":v1")
    async with RegistryClient(_keychain(token_registry), options) as client:
        await client.push_image(ref, image.manifest, image.blobs)
        assert await client.get_blob(ref, image.manifest.layers[0].digest) == image.layers[0]


async def test_index_with_two_platforms(token_registry: Registry, token_client: RegistryClient, tmp_path: Path) -> None:
    amd64 = Image({"arch": "amd64"}, Platform("linux", "amd64"))
    arm64 = Image({"arch": "arm64"}, Platform("linux", "arm64", "v8"))
    repo = parse_reference(_repo(token_registry, "multi") + ":v1")
    for image in (amd64, arm64):
        await token_client.push_image(repo.with_digest(image.raw.digest), image.manifest, image.blobs)
    index = ImageIndex(
        (
            amd64.raw.descriptor(Platform("linux", "amd64")),
            arm64.raw.descriptor(Platform("linux", "arm64", "v8")),
        )
    )
    index_ref = await token_client.push_index(repo, index)

    head = await token_client.get_manifest(repo)
    assert head.is_index
    assert head.media_type == mediatypes.OCI_INDEX
    chosen = await token_client.resolve_image(repo, Platform("linux", "arm64"))
    assert chosen.digest == arm64.raw.digest
    assert await token_client.get_labels(repo, Platform.parse("linux/arm64/v8")) == {"arch": "arm64"}
    assert await token_client.get_labels(repo) == {"arch": "amd64"}
    with pytest.raises(ManifestUnknownError, match=r"no image for platform windows/amd64.*linux/arm64/v8"):
        await token_client.resolve_image(repo, Platform("windows", "amd64"))

    inspected = await skopeo_inspect(token_registry, tmp_path, str(repo), "--override-arch", "arm64")
    # skopeo reports the index's digest and the labels of the image it selected for arm64.
    assert inspected["Digest"] == index_ref.digest
    assert inspected["Labels"] == {"arch": "arm64"}


async def test_wrong_credentials_are_unauthorized_and_name_the_reference(token_registry: Registry) -> None:
    ref = f"{token_registry.host}/secret/app:v1"
    options = RegistryOptions(ca_pem=token_registry.ca_pem)
    async with RegistryClient(_keychain(token_registry, "wrong"), options) as client:
        with pytest.raises(UnauthorizedError, match=rf"^{token_registry.host}/secret/app:v1: .*refused") as caught:
            await client.get_manifest(ref)
    assert caught.value.reference == ref
    async with RegistryClient(None, options) as anonymous:
        with pytest.raises(UnauthorizedError, match="secret/app:v1"):
            await anonymous.get_manifest(ref)


async def test_unknown_tag_is_manifest_unknown(token_registry: Registry, token_client: RegistryClient) -> None:
    image = Image({"io.kpack.test": "unknown"})
    ref = parse_reference(_repo(token_registry, "unknown") + ":v1")
    await token_client.push_image(ref, image.manifest, image.blobs)
    missing = ref.with_tag("nope")
    with pytest.raises(ManifestUnknownError, match=f"{missing}: .*MANIFEST_UNKNOWN"):
        await token_client.get_manifest(missing)
    with pytest.raises(ManifestUnknownError, match=str(missing)):
        await token_client.get_digest(missing)
    assert await token_client.head_manifest(missing) is None


async def test_failed_push_moves_no_tag(token_registry: Registry, token_client: RegistryClient) -> None:
    old = Image({"io.kpack.test": "old"})
    new = Image({"io.kpack.test": "new"})
    ref = parse_reference(_repo(token_registry, "atomic") + ":v1")
    await token_client.push_image(ref, old.manifest, old.blobs)
    with pytest.raises(Exception, match="neither given nor in the registry"):
        await token_client.push_image(ref, new.manifest, new.layers)  # the config blob is missing
    assert await token_client.get_digest(ref) == old.raw.digest


async def test_tag_points_at_the_same_bytes(token_registry: Registry, token_client: RegistryClient) -> None:
    image = Image({"io.kpack.test": "tag"})
    ref = parse_reference(_repo(token_registry, "tagging") + ":v1")
    by_digest = await token_client.push_image(ref, image.manifest, image.blobs)
    latest = await token_client.tag(by_digest, "latest")
    assert await token_client.get_digest(latest) == image.raw.digest
    assert await token_client.list_tags(ref) == ["latest", "v1"]


async def test_basic_auth_registry(htpasswd_registry: Registry, tmp_path: Path) -> None:
    image = Image({"io.kpack.test": "basic"})
    ref = parse_reference(_repo(htpasswd_registry, "basic") + ":v1")
    options = RegistryOptions(ca_pem=htpasswd_registry.ca_pem)
    async with RegistryClient(_keychain(htpasswd_registry), options) as client:
        await client.push_image(ref, image.manifest, image.blobs)
        assert await client.get_labels(ref) == {"io.kpack.test": "basic"}
    async with RegistryClient(_keychain(htpasswd_registry, "wrong"), options) as client:
        with pytest.raises(UnauthorizedError, match=str(ref)):
            await client.get_manifest(ref)
    assert (await skopeo_inspect(htpasswd_registry, tmp_path, str(ref)))["Digest"] == image.raw.digest


async def test_plain_http_registry_on_loopback(registry: Registry, tmp_path: Path) -> None:
    image = Image({"io.kpack.test": "plain"})
    ref = parse_reference(_repo(registry, "plain") + ":v1")
    async with RegistryClient() as client:
        await client.push_image(ref, image.manifest, image.blobs)
        config = ImageConfig.from_bytes(await client.get_blob(ref, image.manifest.config.digest))
        assert config.labels == {"io.kpack.test": "plain"}
        assert await client.get_labels(ref) == {"io.kpack.test": "plain"}
    assert (await skopeo_inspect(registry, tmp_path, str(ref)))["Digest"] == image.raw.digest


async def test_tls_registry_needs_our_ca(tls_registry: Registry) -> None:
    ref = f"{tls_registry.host}/anything:v1"
    async with RegistryClient(options=RegistryOptions(retry=RetryPolicy(attempts=1))) as client:
        with pytest.raises(Exception, match="anything:v1"):
            await client.get_manifest(ref)


async def test_a_refused_token_is_replaced_after_the_401(
    token_registry: Registry, token_client: RegistryClient
) -> None:
    assert token_registry.token_issuer is not None
    image = Image({"io.kpack.test": "rechallenge"})
    ref = parse_reference(_repo(token_registry, "rechallenge") + ":v1")
    await token_client.push_image(ref, image.manifest, image.blobs)
    authenticator = token_client.transport.authenticator(ref)
    assert authenticator is not None
    # A token the registry does not accept (revoked, or signed by a rotated key) while our cache still trusts it.
    authenticator._tokens[frozenset({pull_scope(ref.repository)})] = Token("not-a-jwt", float("inf"))
    before = token_registry.token_issuer.issued

    assert (await token_client.get_manifest(ref)).digest == image.raw.digest
    assert token_registry.token_issuer.issued == before + 1


async def test_server_errors_and_lost_connections_are_retried(unused_tcp_port: int) -> None:
    """A fake registry on loopback: the first answers are 503, then the manifest comes."""
    manifest = RawManifest.of(Image({}).manifest)
    calls: list[str] = []

    async def v2(_: web.Request) -> web.Response:
        return web.Response(status=200)

    async def get_manifest(_: web.Request) -> web.Response:
        calls.append("manifest")
        if len(calls) < 3:
            return web.json_response({"errors": [{"code": "UNAVAILABLE", "message": "try later"}]}, status=503)
        return web.Response(body=manifest.content, content_type=mediatypes.OCI_MANIFEST)

    app = web.Application()
    app.router.add_get("/v2/", v2)
    app.router.add_get("/v2/app/manifests/v1", get_manifest)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    fast = RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.02)
    try:
        async with RegistryClient(options=RegistryOptions(retry=fast)) as client:
            fetched = await client.get_manifest(f"127.0.0.1:{unused_tcp_port}/app:v1")
            assert fetched.digest == manifest.digest
            assert calls == ["manifest"] * 3
            calls.clear()
        async with RegistryClient(
            options=RegistryOptions(retry=RetryPolicy(attempts=2, initial_backoff=0.01))
        ) as client:
            with pytest.raises(TransientError, match=r"127.0.0.1:\d+/app:v1: .*HTTP 503.*try later"):
                await client.get_manifest(f"127.0.0.1:{unused_tcp_port}/app:v1")
            assert calls == ["manifest", "manifest"]
    finally:
        await runner.cleanup()
    async with RegistryClient(options=RegistryOptions(retry=RetryPolicy(attempts=2, initial_backoff=0.01))) as client:
        with pytest.raises(TransientError, match="ping"):
            await client.get_manifest(f"127.0.0.1:{unused_tcp_port}/app:v1")


async def test_a_large_blob_is_streamed_and_arrives_whole(
    token_registry: Registry, token_client: RegistryClient
) -> None:
    """Bodies over STREAM_THRESHOLD go out in slices with an explicit Content-Length (not chunked encoding)."""
    from kpack_core.registry.transport import STREAM_SLICE, STREAM_THRESHOLD

    data = secrets.token_bytes(STREAM_THRESHOLD + STREAM_SLICE // 2 + 7)  # not a whole number of slices
    repository = _repo(token_registry, "large")
    assert await token_client.push_blob(repository, data) is BlobPush.UPLOADED
    digest = sha256_digest(data)
    assert await token_client.get_blob(repository, digest) == data
    assert await token_client.push_blob(repository, data) is BlobPush.EXISTED
