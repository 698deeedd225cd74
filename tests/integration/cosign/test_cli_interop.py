"""Our signatures against the real cosign CLI on a TLS registry with bearer tokens.

cosign verifies what we sign (with and without annotation checks), signs with keys we read, signs next to us on the
same `.sig` manifest (appending in both directions), writes byte-identical payloads and configs, and dedupes against
our layers as we dedupe against its layers.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from kpack_core.cosign import (
    COSIGN_LABEL,
    SIGSTORE_LABEL,
    SigningKey,
    SignResult,
    build_payload,
    decrypt_private_key_async,
    generate_key_pair_async,
    load_public_key,
    sign_image,
    signature_reference,
    verify_image,
)
from kpack_core.cosign.sigimage import append_signature, signature_layer
from kpack_core.envtest.registry import Registry
from kpack_core.registry import (
    Descriptor,
    ImageManifest,
    Reference,
    RegistryClient,
    mediatypes,
    parse_reference,
    sha256_digest,
)
from tests.integration.cosign.conftest import CosignCLI

pytestmark = pytest.mark.integration

PASSWORD = b"s3cret pass"


async def push_image(client: RegistryClient, registry: Registry, name: str, tag: str = "v1") -> Reference:
    """A small random image at `<registry>/<name>-<random>:<tag>`; returns the tag reference."""
    ref = parse_reference(f"{registry.host}/{name}-{secrets.token_hex(3)}:{tag}")
    await push_random_image(client, ref)
    return ref


async def push_random_image(client: RegistryClient, ref: Reference) -> Reference:
    """A small image of random bytes pushed at `ref`; returns it by digest."""
    layer = os.urandom(512)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]}}
    ).encode()
    manifest = ImageManifest(
        Descriptor.of(config, mediatypes.OCI_CONFIG), (Descriptor.of(layer, mediatypes.OCI_UNCOMPRESSED_LAYER),)
    )
    return await client.push_image(ref, manifest, [layer, config])


async def new_key(tmp_path: Path, password: bytes = PASSWORD, label: str = COSIGN_LABEL) -> tuple[SigningKey, Path]:
    """A key pair of ours: the loaded key, and the public key written where cosign can read it."""
    pair = await generate_key_pair_async(password, label=label)
    public = tmp_path / f"ours-{secrets.token_hex(3)}.pub"
    public.write_bytes(pair.public_pem)
    return await decrypt_private_key_async(pair.private_pem, password, "test key"), public


def payloads(run_stdout: str) -> list[dict[str, object]]:
    """The verified payloads `cosign verify --output json` prints."""
    decoded: list[dict[str, object]] = json.loads(run_stdout)
    return decoded


async def sig_layers(client: RegistryClient, image: Reference, digest: str) -> list[Descriptor]:
    return list((await client.get_manifest(signature_reference(image, digest))).image().layers)


async def test_cosign_verifies_our_signature_with_and_without_annotation_checks(
    client: RegistryClient, token_registry: Registry, cosign: CosignCLI, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "signed")
    key, public = await new_key(tmp_path)
    annotations = {"buildTimestamp": "20210901.101500", "buildNumber": "7", "team": "a&b <c>"}

    result = await sign_image(client, key, image, annotations=annotations)

    digest = await client.get_digest(image)
    assert result.digest == digest
    assert result.image == image.with_digest(digest)
    assert str(result.signature) == f"{image.name}:sha256-{digest.removeprefix('sha256:')}.sig"
    assert result.signature_digest == await client.get_digest(result.signature)
    assert result.appended

    verified = await cosign.verify(public, str(image))
    assert verified.returncode == 0, verified.explain()
    [payload] = payloads(verified.stdout)
    assert payload["critical"] == {
        "identity": {"docker-reference": image.name},
        "image": {"docker-manifest-digest": digest},
        "type": "cosign container image signature",
    }
    assert payload["optional"] == annotations

    checked = await cosign.verify(public, str(image), "-a", "buildNumber=7", "-a", "team=a&b <c>")
    assert checked.returncode == 0, checked.explain()
    mismatch = await cosign.verify(public, str(image), "-a", "buildNumber=8")
    assert mismatch.returncode != 0, mismatch.explain()
    other_key = tmp_path / "other.pub"
    other_key.write_bytes((await generate_key_pair_async(b"")).public_pem)
    wrong_key = await cosign.verify(other_key, str(image))
    assert wrong_key.returncode != 0, wrong_key.explain()


async def test_a_key_pair_made_by_cosign_signs_with_our_code(
    client: RegistryClient, token_registry: Registry, cosign: CosignCLI, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "cli-key")
    workdir = tmp_path / "cli-keys"
    workdir.mkdir()
    await cosign.ok("generate-key-pair", env={"COSIGN_PASSWORD": PASSWORD.decode()}, cwd=workdir)
    private_pem = (workdir / "cosign.key").read_bytes()
    assert private_pem.startswith(f"-----BEGIN {SIGSTORE_LABEL}-----".encode())  # what cosign v2.1+ writes

    key = await decrypt_private_key_async(private_pem, PASSWORD, "cosign.key")
    public = load_public_key((workdir / "cosign.pub").read_bytes(), "cosign.pub")
    assert key.public_key.public_numbers() == public.public_numbers()
    digest = await client.get_digest(image)
    result = await sign_image(client, key, image.with_digest(digest))

    assert result.digest == digest
    verified = await cosign.verify(workdir / "cosign.pub", f"{image.name}@{digest}")
    assert verified.returncode == 0, verified.explain()


async def test_cosign_reads_keys_we_write_with_either_label(
    client: RegistryClient, token_registry: Registry, cosign: CosignCLI, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "our-key")
    for label in (COSIGN_LABEL, SIGSTORE_LABEL):
        pair = await generate_key_pair_async(PASSWORD, label=label)
        key_file = tmp_path / f"{label.split()[1].lower()}.key"
        key_file.write_bytes(pair.private_pem)
        public = tmp_path / f"{label.split()[1].lower()}.pub"
        public.write_bytes(pair.public_pem)

        await cosign.ok(
            "sign",
            "--key",
            str(key_file),
            "--tlog-upload=false",
            "--yes",
            str(image),
            env={"COSIGN_PASSWORD": PASSWORD.decode()},
        )

        verified = await cosign.verify(public, str(image))
        assert verified.returncode == 0, verified.explain()
    assert len(await sig_layers(client, image, await client.get_digest(image))) == 2


async def test_cli_and_our_signatures_share_the_sig_manifest(
    client: RegistryClient, token_registry: Registry, cosign: CosignCLI, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "both")
    digest = await client.get_digest(image)
    cli_dir = tmp_path / "cli"
    cli_dir.mkdir()
    cli_env = {"COSIGN_PASSWORD": "cli"}
    await cosign.ok("generate-key-pair", env=cli_env, cwd=cli_dir)
    await cosign.ok(
        "sign",
        "--key",
        str(cli_dir / "cosign.key"),
        "--tlog-upload=false",
        "--yes",
        "-a",
        "by=cli",
        str(image),
        env=cli_env,
    )
    [cli_layer] = await sig_layers(client, image, digest)
    key, public = await new_key(tmp_path)

    result = await sign_image(client, key, image, annotations={"by": "kpack-py"})

    assert result.appended
    layers = await sig_layers(client, image, digest)
    assert len(layers) == 2
    assert layers[0] == cli_layer  # kept as cosign wrote it
    assert layers[0].annotations == cli_layer.annotations
    config = json.loads(await client.get_blob(result.signature, (await _manifest(client, result)).config.digest))
    assert config["rootfs"]["diff_ids"] == [layer.digest for layer in layers]
    assert len(config["history"]) == 2
    for pub, by in ((public, "kpack-py"), (cli_dir / "cosign.pub", "cli")):
        verified = await cosign.verify(pub, str(image), "-a", f"by={by}")
        assert verified.returncode == 0, verified.explain()
        assert [p["optional"] for p in payloads(verified.stdout)] == [{"by": by}]

    # cosign appends to what we wrote, and our verifier reads what cosign wrote.
    await cosign.ok(
        "sign",
        "--key",
        str(cli_dir / "cosign.key"),
        "--tlog-upload=false",
        "--yes",
        "-a",
        "by=cli-again",
        str(image),
        env=cli_env,
    )
    assert len(await sig_layers(client, image, digest)) == 3
    cli_public = load_public_key((cli_dir / "cosign.pub").read_bytes(), "cli cosign.pub")
    ours = await verify_image(client, key.public_key, image)
    theirs = await verify_image(client, cli_public, image)
    assert [v.claims.optional for v in ours] == [{"by": "kpack-py"}]
    assert [v.claims.optional for v in theirs] == [{"by": "cli"}, {"by": "cli-again"}]
    again = await cosign.verify(public, str(image), "-a", "by=kpack-py")
    assert again.returncode == 0, again.explain()


async def _manifest(client: RegistryClient, result: SignResult) -> ImageManifest:
    return (await client.get_manifest(result.signature)).image()


async def test_payload_and_config_bytes_equal_what_cosign_writes(
    client: RegistryClient, token_registry: Registry, cosign: CosignCLI, tmp_path: Path
) -> None:
    image = await push_image(client, token_registry, "bytes")
    digest = await client.get_digest(image)
    annotations = {"b": "<&>", "a": "x y", "unicode": "h\u00e9 \u2713"}
    flags = [arg for name in sorted(annotations) for arg in ("-a", f"{name}={annotations[name]}")]

    generated = await cosign.ok("generate", *flags, f"{image.name}@{digest}")
    plain = await cosign.ok("generate", f"{image.name}@{digest}")

    assert generated.stdout.encode() == build_payload(image, digest, annotations)
    assert plain.stdout.encode() == build_payload(image, digest)

    # A first signature's config depends only on the payload digest: cosign's and ours are the same bytes.
    cli_dir = tmp_path / "cli"
    cli_dir.mkdir()
    await cosign.ok("generate-key-pair", env={"COSIGN_PASSWORD": ""}, cwd=cli_dir)
    await cosign.ok(
        "sign",
        "--key",
        str(cli_dir / "cosign.key"),
        "--tlog-upload=false",
        "--yes",
        f"{image.name}@{digest}",
        env={"COSIGN_PASSWORD": ""},
    )
    sig_manifest = (await client.get_manifest(signature_reference(image, digest))).image()
    cli_config = await client.get_blob(image, sig_manifest.config.digest)
    ours = append_signature(None, None, signature_layer(build_payload(image, digest), "unused"))
    assert ours.config == cli_config
    assert sig_manifest.layers[0].digest == sha256_digest(build_payload(image, digest))


async def test_identical_signatures_are_not_appended_twice_either_way(
    client: RegistryClient, token_registry: Registry, cosign: CosignCLI, tmp_path: Path
) -> None:
    cli_dir = tmp_path / "cli"
    cli_dir.mkdir()
    env = {"COSIGN_PASSWORD": PASSWORD.decode()}
    await cosign.ok("generate-key-pair", env=env, cwd=cli_dir)
    key = await decrypt_private_key_async((cli_dir / "cosign.key").read_bytes(), PASSWORD, "cosign.key")
    sign_args = ("sign", "--key", str(cli_dir / "cosign.key"), "--tlog-upload=false", "--yes")

    # cosign first, then us with the same key and payload: we find its layer and push nothing.
    first = await push_image(client, token_registry, "dedupe-cli-first")
    await cosign.ok(*sign_args, str(first), env=env)
    before = await client.get_digest(signature_reference(first, await client.get_digest(first)))
    result = await sign_image(client, key, first)
    assert not result.appended
    assert result.signature_digest == before
    assert await client.get_digest(result.signature) == before

    # us first, then cosign: it finds our layer (same payload bytes, a signature that verifies) and adds nothing.
    second = await push_image(client, token_registry, "dedupe-ours-first")
    ours = await sign_image(client, key, second)
    await cosign.ok(*sign_args, str(second), env=env)
    assert len(await sig_layers(client, second, ours.digest)) == 1
    assert await client.get_digest(ours.signature) == ours.signature_digest

    # a different annotation is a different payload: appended.
    again = await sign_image(client, key, second, annotations={"buildNumber": "2"})
    assert again.appended
    assert len(await sig_layers(client, second, ours.digest)) == 2
