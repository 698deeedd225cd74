"""Signing settings and failures on a real registry: signature repositories, Docker media types, digests signed as
given, and every way signing fails (wrong password, push denied, registry unreachable) leaving no tag moved."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kpack_core.cosign import (
    DOCKER_MEDIA_TYPES_ANNOTATION,
    REPOSITORY_ANNOTATION,
    InvalidSettingError,
    SigningError,
    VerificationError,
    WrongPasswordError,
    cosign_secret_from_data,
    generate_key_pair_async,
    sign_image,
    signature_reference,
    verify_image,
)
from kpack_core.envtest.ports import free_port
from kpack_core.envtest.registry import Registry
from kpack_core.envtest.tokenissuer import AccessPolicy
from kpack_core.registry import (
    DeniedError,
    ImageIndex,
    NotFoundError,
    RegistryClient,
    RegistryOptions,
    RetryPolicy,
    TransientError,
    UnauthorizedError,
    mediatypes,
    parse_reference,
)
from tests.integration.cosign.conftest import CosignCLI, keychain_for
from tests.integration.cosign.test_cli_interop import PASSWORD, new_key, push_image, push_random_image

pytestmark = pytest.mark.integration


async def tags(client: RegistryClient, repository: str) -> list[str]:
    """The repository's tags; none when the repository does not exist."""
    try:
        return sorted(await client.list_tags(repository))
    except NotFoundError:
        return []


@contextmanager
def read_only(registry: Registry, repository_prefix: str) -> Iterator[None]:
    """While inside, the token issuer grants only `pull` on repositories starting with `repository_prefix`."""
    issuer = registry.token_issuer
    assert issuer is not None, "the token registry has no token issuer"
    original: AccessPolicy = issuer.policy

    def policy(user: str | None, repository: str, actions: list[str]) -> list[str]:
        granted = original(user, repository, actions)
        return [a for a in granted if a == "pull"] if repository.startswith(repository_prefix) else granted

    issuer.policy = policy
    try:
        yield
    finally:
        issuer.policy = original


async def test_signature_repository_keeps_the_image_repository_untouched(
    client: RegistryClient, token_registry: Registry, cosign: CosignCLI, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "app")
    sigrepo = f"{token_registry.host}/sigs-{secrets.token_hex(3)}"
    key, public = await new_key(tmp_path)
    settings = cosign_secret_from_data(
        "ns/signing", {"cosign.key": b"unused"}, {REPOSITORY_ANNOTATION: sigrepo, DOCKER_MEDIA_TYPES_ANNOTATION: "0"}
    )

    result = await sign_image(
        client,
        key,
        image,
        signature_repository=settings.signature_repository,
        docker_media_types=settings.docker_media_types,
    )

    assert result.signature.name == sigrepo
    assert await tags(client, image.name) == ["v1"]
    assert await tags(client, sigrepo) == [result.signature.tag]
    payload = (await verify_image(client, key.public_key, image, signature_repository=sigrepo))[0].claims
    assert payload.docker_reference == image.name  # always the image's repository
    verified = await cosign.verify(public, str(image), env={"COSIGN_REPOSITORY": sigrepo})
    assert verified.returncode == 0, verified.explain()
    elsewhere = await cosign.verify(public, str(image))
    assert elsewhere.returncode != 0, elsewhere.explain()


async def test_docker_media_types_on_request(
    client: RegistryClient, token_registry: Registry, cosign: CosignCLI, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "docker-types")
    key, public = await new_key(tmp_path)

    result = await sign_image(client, key, image, docker_media_types=True)

    raw = await client.get_manifest(result.signature)
    assert raw.media_type == mediatypes.DOCKER_MANIFEST
    assert raw.json()["mediaType"] == mediatypes.DOCKER_MANIFEST
    assert raw.image().config.media_type == mediatypes.DOCKER_CONFIG
    assert raw.image().layers[0].media_type == "application/vnd.dev.cosign.simplesigning.v1+json"
    verified = await cosign.verify(public, str(image))
    assert verified.returncode == 0, verified.explain()

    default = await sign_image(client, key, await push_image(client, token_registry, "oci-types"))
    assert (await client.get_manifest(default.signature)).media_type == mediatypes.OCI_MANIFEST


async def test_a_digest_reference_is_signed_as_given_even_after_the_tag_moved(
    client: RegistryClient, token_registry: Registry, cosign: CosignCLI, tmp_path: Path
) -> None:
    first = await push_image(client, token_registry, "moving")
    first_digest = await client.get_digest(first)
    moved = await push_random_image(client, first)  # the tag now names another image
    key, public = await new_key(tmp_path)

    by_digest = await sign_image(client, key, f"{first}@{first_digest}")
    by_tag = await sign_image(client, key, first)

    assert by_digest.digest == first_digest
    assert by_digest.image == first.with_digest(first_digest)
    assert by_tag.digest == moved.digest != first_digest
    pinned = await cosign.verify(public, f"{first.name}@{first_digest}")
    assert pinned.returncode == 0, pinned.explain()
    assert [p.claims.manifest_digest for p in await verify_image(client, key.public_key, first)] == [moved.digest]


async def test_wrong_password_fails_before_anything_is_pushed(client: RegistryClient, token_registry: Registry) -> None:
    image = await push_image(client, token_registry, "wrong-password")
    pair = await generate_key_pair_async(PASSWORD)
    settings = cosign_secret_from_data("ns/signing", {"cosign.key": pair.private_pem, "cosign.password": b"nope"})

    with pytest.raises(WrongPasswordError, match=r"^secret ns/signing cosign\.key: "):
        await settings.load_key()  # the key is loaded before signing starts: nothing can be pushed

    assert await tags(client, image.name) == ["v1"]


async def test_denied_push_to_the_image_repository_moves_no_tag(
    client: RegistryClient, token_registry: Registry, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "locked")
    key, _ = await new_key(tmp_path)
    earlier = await sign_image(client, key, image, annotations={"n": "1"})

    # A fresh client: the one above holds a push token for this repository from before the lock.
    options = RegistryOptions(ca_pem=token_registry.ca_pem)
    async with RegistryClient(keychain_for(token_registry), options) as locked_out:
        with read_only(token_registry, image.repository), pytest.raises(SigningError) as caught:
            await sign_image(locked_out, key, image, annotations={"n": "2"})

    assert isinstance(caught.value.__cause__, UnauthorizedError | DeniedError)
    assert str(caught.value).startswith(f"signing {earlier.image}: pushing the signature: {earlier.signature}: ")
    assert await client.get_digest(earlier.signature) == earlier.signature_digest
    assert [v.claims.optional for v in await verify_image(client, key.public_key, image)] == [{"n": "1"}]


async def test_denied_push_to_a_signature_repository_creates_nothing(
    client: RegistryClient, token_registry: Registry, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "readable")
    sigrepo = f"{token_registry.host}/readonly-sigs-{secrets.token_hex(3)}"
    key, _ = await new_key(tmp_path)

    with read_only(token_registry, parse_reference(sigrepo).repository), pytest.raises(SigningError) as caught:
        await sign_image(client, key, image, signature_repository=sigrepo)

    assert isinstance(caught.value.__cause__, UnauthorizedError | DeniedError)
    assert await tags(client, sigrepo) == []
    assert await tags(client, image.name) == ["v1"]


async def test_unreachable_signature_registry_is_a_typed_error(
    client: RegistryClient, token_registry: Registry, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "unreachable")
    key, _ = await new_key(tmp_path)
    nowhere = f"127.0.0.1:{free_port()}/sigs"
    options = RegistryOptions(
        ca_pem=token_registry.ca_pem, retry=RetryPolicy(attempts=2, total=5, initial_backoff=0.05)
    )

    async with RegistryClient(keychain_for(token_registry), options) as quick:
        with pytest.raises(SigningError) as caught:
            await sign_image(quick, key, image, signature_repository=nowhere)
        with pytest.raises(SigningError, match="resolving the tag to a digest") as unresolved:
            await sign_image(quick, key, f"{nowhere}:v1")

    assert isinstance(caught.value.__cause__, TransientError)
    assert f"reading the existing signatures: {nowhere}:sha256-" in str(caught.value)
    assert isinstance(unresolved.value.__cause__, TransientError)
    assert await tags(client, image.name) == ["v1"]


async def test_a_signature_repository_with_a_tag_is_refused_before_any_request(
    client: RegistryClient, token_registry: Registry, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "tagged-sigrepo")
    sigrepo = f"{token_registry.host}/sigs-{secrets.token_hex(3)}"
    key, _ = await new_key(tmp_path)

    with pytest.raises(InvalidSettingError, match=r"^signature_repository: .* must be a repository, without a tag"):
        await sign_image(client, key, image, signature_repository=f"{sigrepo}:v1")
    with pytest.raises(InvalidSettingError, match=r"^signature_repository: "):
        await verify_image(client, key.public_key, image, signature_repository=f"{sigrepo}@sha256:{'a' * 64}")

    assert await tags(client, sigrepo) == []
    assert await tags(client, image.name) == ["v1"]


async def test_missing_tag_is_a_signing_error(client: RegistryClient, token_registry: Registry, tmp_path: Path) -> None:
    image = await push_image(client, token_registry, "tagged")
    key, _ = await new_key(tmp_path)

    with pytest.raises(SigningError, match="resolving the tag to a digest") as caught:
        await sign_image(client, key, image.with_tag("no-such-tag"))

    assert isinstance(caught.value.__cause__, NotFoundError)


async def test_something_else_at_the_signature_tag_is_refused(
    client: RegistryClient, token_registry: Registry, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "squatted")
    digest = await client.get_digest(image)
    sig = signature_reference(image, digest)
    index = ImageIndex(((await client.get_manifest(image)).descriptor(),))
    squatter = await client.push_index(sig, index)
    key, _ = await new_key(tmp_path)

    with pytest.raises(SigningError, match="is not a signature image"):
        await sign_image(client, key, image)
    with pytest.raises(VerificationError, match="is not a signature image"):
        await verify_image(client, key.public_key, image)

    assert await client.get_digest(sig) == squatter.digest


async def test_our_verifier_explains_failures(client: RegistryClient, token_registry: Registry, tmp_path: Path) -> None:
    image = await push_image(client, token_registry, "verify")
    key, _ = await new_key(tmp_path)
    other, _ = await new_key(tmp_path)

    with pytest.raises(VerificationError, match="no signatures found at"):
        await verify_image(client, key.public_key, image)
    await sign_image(client, key, image, annotations={"a": "1"})

    with pytest.raises(VerificationError, match="layer 0: signature does not verify with the key"):
        await verify_image(client, other.public_key, image)
    with pytest.raises(VerificationError, match="layer 0: annotation 'a' is '1', not '2'"):
        await verify_image(client, key.public_key, image, annotations={"a": "2"})
    with pytest.raises(VerificationError, match="layer 0: annotation 'a' is '1', not 1"):
        await verify_image(client, key.public_key, image, annotations={"a": 1})
    with pytest.raises(VerificationError, match="resolving the image"):
        await verify_image(client, key.public_key, image.with_tag("missing"))
    assert len(await verify_image(client, key.public_key, image, annotations={"a": "1"})) == 1
