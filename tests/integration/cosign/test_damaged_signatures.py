"""Damaged signature images in a real registry: what the signer refuses to append to, and what the verifier reports
for each layer it cannot accept."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpack_core.cosign import (
    PAYLOAD_MEDIA_TYPE,
    SigningError,
    VerificationError,
    build_payload,
    sign_image,
    signature_reference,
    verify_image,
)
from kpack_core.cosign.sigimage import signature_layer
from kpack_core.envtest.ports import free_port
from kpack_core.envtest.registry import Registry
from kpack_core.registry import (
    Descriptor,
    ImageManifest,
    Reference,
    RegistryClient,
    RegistryOptions,
    RetryPolicy,
    mediatypes,
)
from tests.integration.cosign.conftest import keychain_for
from tests.integration.cosign.test_cli_interop import new_key, push_image

pytestmark = pytest.mark.integration


async def delete_blob(client: RegistryClient, ref: Reference, digest: str) -> None:
    """Unlinks a blob from the repository (the envtest registry allows deletes), so a manifest now points at nothing."""
    await client.transport.request(
        ref,
        "delete blob",
        "DELETE",
        f"/v2/{ref.repository}/blobs/{digest}",
        scopes=[f"repository:{ref.repository}:delete,pull,push"],
        ok=(202,),
    )


async def push_signature_image(
    client: RegistryClient, sig: Reference, layers: list[tuple[Descriptor, bytes]], config: bytes = b"{}"
) -> None:
    manifest = ImageManifest(Descriptor.of(config, mediatypes.OCI_CONFIG), tuple(d for d, _ in layers))
    await client.push_image(sig, manifest, [config, *(blob for _, blob in layers)])


async def test_a_config_that_is_no_object_is_refused(
    client: RegistryClient, token_registry: Registry, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "bad-config")
    sig = signature_reference(image, await client.get_digest(image))
    await push_signature_image(client, sig, [], config=b"[1]")
    before = await client.get_digest(sig)
    key, _ = await new_key(tmp_path)

    with pytest.raises(SigningError, match="the signature image config is not a JSON object"):
        await sign_image(client, key, image)

    assert await client.get_digest(sig) == before


async def test_a_missing_config_blob_is_refused(
    client: RegistryClient, token_registry: Registry, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "lost-config")
    key, _ = await new_key(tmp_path)
    first = await sign_image(client, key, image)
    config = (await client.get_manifest(first.signature)).image().config
    await delete_blob(client, first.signature, config.digest)

    with pytest.raises(SigningError, match=r"reading the config of the existing signatures: .*get blob failed"):
        await sign_image(client, key, image, annotations={"n": "2"})

    assert await client.get_digest(first.signature) == first.signature_digest


async def test_the_verifier_reports_each_layer_it_rejects(
    client: RegistryClient, token_registry: Registry, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "damaged")
    digest = await client.get_digest(image)
    sig = signature_reference(image, digest)
    key, _ = await new_key(tmp_path)
    other_digest = "sha256:" + "0" * 64
    not_json = b"not json"
    elsewhere = build_payload(image, other_digest)
    lost = build_payload(image, digest, {"lost": "yes"})
    unsigned = build_payload(image, digest, {"unsigned": "yes"})
    layers = [
        (Descriptor.of(unsigned, PAYLOAD_MEDIA_TYPE), unsigned),
        (signature_layer(not_json, key.sign(not_json)), not_json),
        (signature_layer(elsewhere, key.sign(elsewhere)), elsewhere),
        (signature_layer(lost, key.sign(lost)), lost),
    ]
    await push_signature_image(client, sig, layers)
    await delete_blob(client, sig, layers[3][0].digest)

    with pytest.raises(VerificationError) as caught:
        await verify_image(client, key.public_key, image)

    message = str(caught.value)
    assert message.startswith(f"verifying {image}: no signature at {sig} verified (")
    assert "layer 0: no signature annotation" in message
    assert "layer 1: the payload is not JSON" in message
    assert f"layer 2: signs {other_digest}, not {digest}" in message
    assert "layer 3: payload not readable: " in message


async def test_a_signature_image_without_layers_verifies_nothing(
    client: RegistryClient, token_registry: Registry, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "empty-sig")
    await push_signature_image(client, signature_reference(image, await client.get_digest(image)), [])
    key, _ = await new_key(tmp_path)

    with pytest.raises(VerificationError, match="the signature image has no layers"):
        await verify_image(client, key.public_key, image)


async def test_unreachable_signature_registry_when_verifying(
    client: RegistryClient, token_registry: Registry, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "verify-unreachable")
    key, _ = await new_key(tmp_path)
    options = RegistryOptions(
        ca_pem=token_registry.ca_pem, retry=RetryPolicy(attempts=2, total=5, initial_backoff=0.05)
    )

    async with RegistryClient(keychain_for(token_registry), options) as quick:
        with pytest.raises(VerificationError, match=r"reading the signatures: .*ping over"):
            await verify_image(quick, key.public_key, image, signature_repository=f"127.0.0.1:{free_port()}/sigs")
