"""The real registry: anonymous, htpasswd and token variants; an image pushed and read back by digest.

kpack_core's own registry client arrives later; this test speaks the distribution API by hand and lets
skopeo, an independent client, read what was pushed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import aiohttp
import pytest

from kpack_core.envtest.registry import Registry
from kpack_core.envtest.webserver import basic_auth_header
from tests.skopeo import skopeo_inspect

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _challenge(header: str) -> dict[str, str]:
    scheme, _, params = header.partition(" ")
    assert scheme == "Bearer", header
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


async def _token(
    session: aiohttp.ClientSession, registry: Registry, scope: str, auth: str | None
) -> aiohttp.ClientResponse:
    async with session.get(f"{registry.url}/v2/") as response:
        assert response.status == 401
        challenge = _challenge(response.headers["WWW-Authenticate"])
    assert challenge["realm"] == registry.token_url
    params = {"service": challenge["service"], "scope": scope}
    headers = {"Authorization": auth} if auth else {}
    response = await session.get(challenge["realm"], params=params, headers=headers)
    await response.read()
    return response


def _image(label: str) -> tuple[bytes, bytes, bytes]:
    layer = b"not really a tarball, but the registry stores any bytes"
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"io.kpack.test": label}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    return layer, config, manifest


async def _push_blob(
    session: aiohttp.ClientSession, base: str, repo: str, blob: bytes, headers: dict[str, str]
) -> None:
    async with session.post(f"{base}/v2/{repo}/blobs/uploads/", headers=headers) as response:
        assert response.status == 202, await response.text()
        location = response.headers["Location"]
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    separator = "&" if "?" in location else "?"
    upload = location if location.startswith("http") else f"{base}{location}"
    async with session.put(
        f"{upload}{separator}digest={digest}",
        data=blob,
        headers={**headers, "Content-Type": "application/octet-stream"},
    ) as response:
        assert response.status == 201, await response.text()


async def test_image_pushed_with_token_auth_reads_back_by_digest(token_registry: Registry, tmp_path: Path) -> None:
    registry = token_registry
    repo = "team/app"
    ssl_context = registry.client_ssl_context()
    credentials = basic_auth_header(registry.username, registry.password)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context)) as session:
        refused = await _token(session, registry, f"repository:{repo}:pull,push", None)
        assert refused.status == 401
        wrong = basic_auth_header(registry.username, "wrong")
        assert (await _token(session, registry, f"repository:{repo}:pull,push", wrong)).status == 401

        granted = await _token(session, registry, f"repository:{repo}:pull,push", credentials)
        assert granted.status == 200
        headers = {"Authorization": f"Bearer {(await granted.json())['token']}"}

        async with session.head(f"{registry.url}/v2/{repo}/manifests/v1") as response:
            assert response.status == 401  # no token, no access

        layer, config, manifest = _image("token-flow")
        for blob in (layer, config):
            await _push_blob(session, registry.url, repo, blob, headers)
        async with session.put(
            f"{registry.url}/v2/{repo}/manifests/v1",
            data=manifest,
            headers={**headers, "Content-Type": OCI_MANIFEST},
        ) as response:
            assert response.status == 201, await response.text()
            digest = response.headers["Docker-Content-Digest"]
        assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()

        async with session.get(
            f"{registry.url}/v2/{repo}/manifests/{digest}", headers={**headers, "Accept": OCI_MANIFEST}
        ) as response:
            assert response.status == 200
            assert await response.read() == manifest

    inspected = await skopeo_inspect(registry, tmp_path, f"{registry.host}/{repo}@{digest}")
    assert inspected["Labels"] == {"io.kpack.test": "token-flow"}


async def test_token_policy_limits_actions(token_registry: Registry) -> None:
    registry = token_registry
    assert registry.token_issuer is not None
    registry.token_issuer.policy = lambda user, repo, actions: [a for a in actions if a == "pull"]
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=registry.client_ssl_context())) as session:
            response = await _token(
                session,
                registry,
                "repository:readonly:pull,push",
                basic_auth_header(registry.username, registry.password),
            )
            token = (await response.json())["token"]
            async with session.post(
                f"{registry.url}/v2/readonly/blobs/uploads/", headers={"Authorization": f"Bearer {token}"}
            ) as upload:
                assert upload.status == 401
                assert "insufficient_scope" in upload.headers["WWW-Authenticate"]
    finally:
        registry.token_issuer.policy = lambda user, repo, actions: actions


async def test_htpasswd_registry_checks_the_password(htpasswd_registry: Registry) -> None:
    registry = htpasswd_registry
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=registry.client_ssl_context())) as session:
        async with session.get(f"{registry.url}/v2/") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Basic")
        async with session.get(
            f"{registry.url}/v2/", headers={"Authorization": basic_auth_header(registry.username, "wrong")}
        ) as response:
            assert response.status == 401
        async with session.get(
            f"{registry.url}/v2/",
            headers={"Authorization": basic_auth_header(registry.username, registry.password)},
        ) as response:
            assert response.status == 200


async def test_plain_and_tls_registries_accept_anonymous_pushes(registry: Registry, tls_registry: Registry) -> None:
    assert registry.url.startswith("http://")
    assert tls_registry.url.startswith("https://")
    for target in (registry, tls_registry):
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=target.client_ssl_context() or False)
        ) as session:
            layer, config, manifest = _image("anonymous")
            for blob in (layer, config):
                await _push_blob(session, target.url, "anon", blob, {})
            async with session.put(
                f"{target.url}/v2/anon/manifests/latest",
                data=manifest,
                headers={"Content-Type": OCI_MANIFEST},
            ) as response:
                assert response.status == 201
            async with session.get(f"{target.url}/v2/anon/tags/list") as response:
                assert (await response.json())["tags"] == ["latest"]


async def test_missing_registry_binary_is_named(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="install Debian's 'docker-registry'"):
        async with Registry(tmp_path / "r", binary=str(tmp_path / "no-registry")):
            pass
