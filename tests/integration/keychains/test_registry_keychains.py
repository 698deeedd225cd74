"""Registry keychains over secrets on the real apiserver, proved by pushes and pulls against real registries.

Every secret format reaches the htpasswd registry (Basic auth) and the token registry (Bearer tokens from the
envtest issuer) through `RegistryClient` with a `ServiceAccountKeychain`; the merged docker config is handed to
skopeo, an independent client. The token issuer serves from this event loop: nothing here blocks it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from kpack_core.envtest.registry import Registry
from kpack_core.keychains import (
    ClientReader,
    SecretFormatError,
    ServiceAccountKeychain,
    service_account_docker_config,
)
from kpack_core.registry import RegistryClient, RegistryOptions, UnauthorizedError, parse_reference
from kpack_core.registry.auth import Keychain
from kpack_core.registry.reference import Reference
from kpack_core.runtime.client import Client

from .objects import b64, create_docker_config_json, create_secret, create_service_account, push_small_image

pytestmark = pytest.mark.integration

Setup = Callable[[Client, str, Registry], Awaitable[ServiceAccountKeychain]]


def _repo(registry: Registry, name: str) -> Reference:
    return parse_reference(f"{registry.host}/keychains/{name}-{secrets.token_hex(3)}:v1")


async def _push_and_pull(registry: Registry, keychain: Keychain, label: str) -> None:
    """Pushes an image and reads it back with `keychain`; then checks anonymous access is refused (so the
    credentials did the work)."""
    reference = _repo(registry, label)
    options = RegistryOptions(ca_pem=registry.ca_pem)
    async with RegistryClient(keychain, options) as client:
        by_digest = await push_small_image(client, reference, label)
        assert await client.get_labels(reference) == {"io.kpack.test": label}
        assert (await client.get_manifest(by_digest)).digest == by_digest.digest
    async with RegistryClient(None, options) as anonymous:
        with pytest.raises(UnauthorizedError, match=str(reference)):
            await anonymous.get_manifest(reference)


# --- one setup per secret format -----------------------------------------------------------------------------


async def _dockerconfigjson(client: Client, namespace: str, registry: Registry) -> ServiceAccountKeychain:
    auths = {registry.host: {"username": registry.username, "password": registry.password}}
    await create_docker_config_json(client, namespace, "regcred", auths)
    await create_service_account(client, namespace, "builder", secrets=["regcred"])
    return ServiceAccountKeychain(ClientReader(client), namespace, "builder", environ={})


async def _dockercfg_with_unpadded_auth(client: Client, namespace: str, registry: Registry) -> ServiceAccountKeychain:
    # A user name whose `user:password` base64 needs padding, written without it.
    auth = b64(f"{registry.username}:{registry.password}").rstrip("=")
    cfg = json.dumps({f"https://{registry.host}/v2/": {"auth": auth, "username": "ignored", "password": "ignored"}})
    await create_secret(client, namespace, "legacy", "kubernetes.io/dockercfg", {".dockercfg": cfg})
    await create_service_account(client, namespace, "default", secrets=["legacy"])
    return ServiceAccountKeychain(ClientReader(client), namespace, environ={})


async def _annotated_basic_auth(client: Client, namespace: str, registry: Registry) -> ServiceAccountKeychain:
    data: dict[str, str | bytes] = {"username": registry.username, "password": registry.password}
    annotations = {"kpack.io/docker": f"http://{registry.host}"}
    await create_secret(client, namespace, "basic", "kubernetes.io/basic-auth", data, annotations)
    await create_service_account(client, namespace, "builder", secrets=["basic"])
    return ServiceAccountKeychain(ClientReader(client), namespace, "builder", environ={})


async def _service_account_image_pull_secret(
    client: Client, namespace: str, registry: Registry
) -> ServiceAccountKeychain:
    # A keyring key with a path: only images under /keychains are covered.
    auths = {f"{registry.host}/keychains": {"username": registry.username, "password": registry.password}}
    await create_docker_config_json(client, namespace, "pull", auths)
    await create_service_account(client, namespace, "builder", pull_secrets=["pull"])
    return ServiceAccountKeychain(ClientReader(client), namespace, "builder", environ={})


async def _explicit_image_pull_secret(client: Client, namespace: str, registry: Registry) -> ServiceAccountKeychain:
    cfg = json.dumps({registry.host: {"username": registry.username, "password": registry.password}})
    await create_secret(client, namespace, "extra", "kubernetes.io/dockercfg", {".dockercfg": cfg})
    await create_service_account(client, namespace, "builder")
    return ServiceAccountKeychain(ClientReader(client), namespace, "builder", ["extra"], environ={})


FORMATS = [
    _dockerconfigjson,
    _dockercfg_with_unpadded_auth,
    _annotated_basic_auth,
    _service_account_image_pull_secret,
    _explicit_image_pull_secret,
]


@pytest.mark.parametrize("setup", FORMATS, ids=lambda setup: setup.__name__.strip("_"))
async def test_each_secret_format_authenticates_basic_auth(
    client: Client, namespace: str, htpasswd_registry: Registry, setup: Setup
) -> None:
    await _push_and_pull(htpasswd_registry, await setup(client, namespace, htpasswd_registry), "basic")


@pytest.mark.parametrize("setup", FORMATS, ids=lambda setup: setup.__name__.strip("_"))
async def test_each_secret_format_authenticates_token_auth(
    client: Client, namespace: str, token_registry: Registry, setup: Setup
) -> None:
    await _push_and_pull(token_registry, await setup(client, namespace, token_registry), "token")


async def test_registry_token_from_a_secret_is_used_as_the_bearer_token(
    client: Client, namespace: str, token_registry: Registry
) -> None:
    assert token_registry.token_issuer is not None
    reference = _repo(token_registry, "registrytoken")
    access: list[dict[str, object]] = [
        {"type": "repository", "name": reference.repository, "actions": ["pull", "push"]}
    ]
    token = token_registry.token_issuer.sign(token_registry.username, access)
    await create_docker_config_json(client, namespace, "token", {token_registry.host: {"registrytoken": token}})
    await create_service_account(client, namespace, "default", secrets=["token"])
    issued = token_registry.token_issuer.issued
    keychain = ServiceAccountKeychain(ClientReader(client), namespace, environ={})
    async with RegistryClient(keychain, RegistryOptions(ca_pem=token_registry.ca_pem)) as registry_client:
        await push_small_image(registry_client, reference, "registrytoken")
        assert await registry_client.get_labels(reference) == {"io.kpack.test": "registrytoken"}
    assert token_registry.token_issuer.issued == issued  # no token exchange: the secret's token was enough


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
async def test_wrong_credentials_from_a_secret_are_unauthorized_naming_the_reference(
    client: Client, namespace: str, htpasswd_registry: Registry, token_registry: Registry, auth: str
) -> None:
    registry = htpasswd_registry if auth == "htpasswd" else token_registry
    auths = {registry.host: {"auth": b64(f"{registry.username}:wrong-password")}}
    await create_docker_config_json(client, namespace, "wrong", auths)
    await create_service_account(client, namespace, "default", secrets=["wrong"])
    reference = _repo(registry, "wrong")
    keychain = ServiceAccountKeychain(ClientReader(client), namespace, environ={})
    async with RegistryClient(keychain, RegistryOptions(ca_pem=registry.ca_pem)) as registry_client:
        with pytest.raises(UnauthorizedError, match=f"^{reference}: ") as caught:
            await registry_client.get_manifest(reference)
    assert caught.value.reference == str(reference)
    assert "wrong-password" not in str(caught.value)
    assert "no credentials" not in str(caught.value)  # credentials were sent, and refused


async def test_missing_service_account_is_anonymous(client: Client, namespace: str, token_registry: Registry) -> None:
    reference = _repo(token_registry, "no-account")
    keychain = ServiceAccountKeychain(ClientReader(client), namespace, "nobody", environ={})
    async with RegistryClient(keychain, RegistryOptions(ca_pem=token_registry.ca_pem)) as registry_client:
        with pytest.raises(UnauthorizedError, match=rf"^{reference}: .*refused anonymous access"):
            await registry_client.get_manifest(reference)


async def test_missing_secrets_are_skipped(client: Client, namespace: str, htpasswd_registry: Registry) -> None:
    auths = {htpasswd_registry.host: {"username": htpasswd_registry.username, "password": htpasswd_registry.password}}
    await create_docker_config_json(client, namespace, "present", auths)
    await create_service_account(
        client, namespace, "builder", secrets=["absent", "present"], pull_secrets=["absent-too"]
    )
    keychain = ServiceAccountKeychain(ClientReader(client), namespace, "builder", ["absent-3"], environ={})
    await _push_and_pull(htpasswd_registry, keychain, "skipped")


async def test_malformed_secret_fails_the_push_naming_the_secret(
    client: Client, namespace: str, htpasswd_registry: Registry
) -> None:
    # The apiserver checks that .dockerconfigjson is JSON, not what its `auth` fields hold.
    await create_docker_config_json(client, namespace, "broken", {"other.io": {"auth": b64("no-colon-s3cret")}})
    await create_service_account(client, namespace, "default", secrets=["broken"])
    keychain = ServiceAccountKeychain(ClientReader(client), namespace, environ={})
    async with RegistryClient(keychain, RegistryOptions(ca_pem=htpasswd_registry.ca_pem)) as registry_client:
        with pytest.raises(SecretFormatError, match=rf"^secret {namespace}/broken: key '.dockerconfigjson'") as e:
            await registry_client.get_manifest(_repo(htpasswd_registry, "broken"))
    assert "s3cret" not in str(e.value)


async def test_volume_keychain_and_empty_namespace(
    client: Client, namespace: str, htpasswd_registry: Registry, tmp_path: Path
) -> None:
    auths = {htpasswd_registry.host: {"username": htpasswd_registry.username, "password": htpasswd_registry.password}}
    (tmp_path / ".dockerconfigjson").write_text(json.dumps({"auths": auths}))
    environ = {"CREDENTIAL_PROVIDER_SECRET_PATH": str(tmp_path)}
    await _push_and_pull(htpasswd_registry, ServiceAccountKeychain(ClientReader(client), "", environ=environ), "vol")
    with_namespace = ServiceAccountKeychain(ClientReader(client), namespace, "nobody", environ=environ)
    await _push_and_pull(htpasswd_registry, with_namespace, "vol-ns")


async def test_merged_docker_config_works_for_skopeo(
    client: Client, namespace: str, htpasswd_registry: Registry, token_registry: Registry, tmp_path: Path
) -> None:
    """The config.json a build gets, read by an independent client: skopeo inspects an image on each registry."""
    basic = {"username": htpasswd_registry.username, "password": htpasswd_registry.password}
    await create_docker_config_json(client, namespace, "regcred", {htpasswd_registry.host: basic})
    annotations = {"kpack.io/docker": token_registry.host}
    data: dict[str, str | bytes] = {"username": token_registry.username, "password": token_registry.password}
    await create_secret(client, namespace, "token-basic", "kubernetes.io/basic-auth", data, annotations)
    await create_service_account(client, namespace, "builder", secrets=["regcred", "token-basic"])
    keychain = ServiceAccountKeychain(ClientReader(client), namespace, "builder", environ={})
    references = []
    for registry in (htpasswd_registry, token_registry):
        reference = _repo(registry, "skopeo")
        async with RegistryClient(keychain, RegistryOptions(ca_pem=registry.ca_pem)) as registry_client:
            references.append(await push_small_image(registry_client, reference, "skopeo"))

    config = await service_account_docker_config(ClientReader(client), namespace, "builder")
    assert set(config["auths"]) == {htpasswd_registry.host, token_registry.host}
    authfile = tmp_path / "config.json"
    authfile.write_text(json.dumps(config))
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    (cert_dir / "ca.crt").write_bytes(htpasswd_registry.ca_pem)
    for reference in references:
        digest = await _skopeo_digest(str(reference), authfile, cert_dir)
        assert digest == reference.digest


async def _skopeo_digest(image: str, authfile: Path, cert_dir: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        "skopeo",
        "inspect",
        "--authfile",
        str(authfile),
        "--cert-dir",
        str(cert_dir),
        f"docker://{image}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    digest: str = json.loads(stdout)["Digest"]
    return digest
