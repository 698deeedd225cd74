"""The CNB test images in real registries, checked with skopeo (an independent client) and read back with ours.

skopeo runs as an asyncio subprocess: the token issuer serves from this event loop, so nothing here may block it.
"""

from __future__ import annotations

import gzip
import io
import json
import secrets
import tarfile
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kpack_core.envtest.cnb import (
    BUILDPACK_LAYERS_LABEL,
    BUILDPACKAGE_METADATA_LABEL,
    LIFECYCLE_METADATA_LABEL,
    MIXINS_LABEL,
    SEED_STACK_MIXINS,
    STACK_ID_LABEL,
    BuildpackStack,
    GroupEntry,
    ShellBuildpack,
    buildpackage_image,
    push_buildpackage,
    push_lifecycle_image,
    push_stack_images,
    relocate_manifest,
    seed_documents,
    seed_images,
    stand_up_seed_images,
)
from kpack_core.envtest.cnb.seeds import load_documents
from kpack_core.envtest.registry import Registry
from kpack_core.registry import Credentials, RegistryClient, RegistryOptions, StaticKeychain, parse_reference
from tests.skopeo import skopeo, skopeo_inspect

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"
BIONIC = "io.buildpacks.stacks.bionic"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

GO = ShellBuildpack("example/go", "1.0.0", api="0.5", stacks=(BuildpackStack(BIONIC, ("build:git",)),))
DEP = ShellBuildpack("example/dep", "0.3.0", homepage="https://example.com/dep", stacks=(BuildpackStack(BIONIC),))
GO_META = ShellBuildpack(
    "example/golang", "3.1.0", order=((GroupEntry("example/go", "1.0.0"), GroupEntry("example/dep")),)
)


@pytest_asyncio.fixture(loop_scope="session")
async def plain_client(registry: Registry) -> AsyncIterator[RegistryClient]:
    async with RegistryClient() as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def token_client(token_registry: Registry) -> AsyncIterator[RegistryClient]:
    keychain = StaticKeychain({token_registry.host: Credentials(token_registry.username, token_registry.password)})
    async with RegistryClient(keychain, RegistryOptions(ca_pem=token_registry.ca_pem)) as client:
        yield client


def _repo(registry: Registry, name: str) -> str:
    return f"{registry.host}/{name}-{secrets.token_hex(3)}"


async def _inspect(
    registry: Registry, image: str, tmp_path: Path, *, config: bool = False, raw: bool = False
) -> dict[str, Any]:
    """skopeo's summary (digest, labels, env, layers); with `config` the image config, with `raw` the manifest."""
    extra = ["--config"] * config + ["--raw"] * raw
    return await skopeo_inspect(registry, tmp_path, image, *extra)


def _tar_files(blob: bytes) -> dict[str, tuple[int, bytes | None]]:
    """name -> (mode, content or None for a directory), read with the standard library."""
    out: dict[str, tuple[int, bytes | None]] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:") as archive:
        for info in archive.getmembers():
            extracted = archive.extractfile(info) if info.isfile() else None
            out[info.name] = (info.mode, extracted.read() if extracted is not None else None)
    return out


def _env(inspected: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in inspected["Env"])


async def test_buildpackage_with_a_meta_buildpack_over_token_auth(
    token_registry: Registry, token_client: RegistryClient, tmp_path: Path
) -> None:
    tagged = _repo(token_registry, "buildpacks/golang") + ":1"
    pushed = await push_buildpackage(token_client, tagged, [GO_META, GO, DEP])

    assert pushed.digest == (await buildpackage_image([GO_META, GO, DEP])).digest  # reproducible
    inspected = await _inspect(token_registry, tagged, tmp_path)
    assert inspected["Digest"] == pushed.digest
    manifest = await _inspect(token_registry, tagged, tmp_path, raw=True)
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DOCKER_LAYER] * 3
    assert inspected["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    layers = json.loads(inspected["Labels"][BUILDPACK_LAYERS_LABEL])
    assert {bp_id: list(versions) for bp_id, versions in layers.items()} == {
        "example/dep": ["0.3.0"],
        "example/go": ["1.0.0"],
        "example/golang": ["3.1.0"],
    }
    assert layers["example/golang"]["3.1.0"]["order"] == [
        {"group": [{"id": "example/go", "version": "1.0.0"}, {"id": "example/dep"}]}
    ]
    assert layers["example/go"]["1.0.0"]["stacks"] == [{"id": BIONIC, "mixins": ["build:git"]}]
    assert json.loads(inspected["Labels"][BUILDPACKAGE_METADATA_LABEL]) == {
        "id": "example/golang",
        "version": "3.1.0",
        "stacks": [{"id": BIONIC, "mixins": ["build:git"]}],
    }

    # Find the go buildpack's layer the way kpack's store reader does: by the label's diffID, in the config.
    config = await _inspect(token_registry, tagged, tmp_path, config=True)
    diff_ids = config["rootfs"]["diff_ids"]
    position = diff_ids.index(layers["example/go"]["1.0.0"]["layerDiffID"])
    descriptor = manifest["layers"][position]
    blob = await token_client.get_blob(pushed, descriptor["digest"])
    assert len(blob) == descriptor["size"]
    files = _tar_files(blob)
    base = "cnb/buildpacks/example_go/1.0.0"
    expected = ["cnb", "cnb/buildpacks", "cnb/buildpacks/example_go", base, f"{base}/bin", f"{base}/bin/build"]
    assert sorted(files) == sorted([*expected, f"{base}/bin/detect", f"{base}/buildpack.toml"])
    assert files[f"{base}/bin/detect"][0] == 0o755
    toml_mode, toml_content = files[f"{base}/buildpack.toml"]
    assert toml_mode == 0o644
    assert toml_content is not None
    assert tomllib.loads(toml_content.decode())["buildpack"] == {"id": "example/go", "version": "1.0.0"}


async def test_every_blob_matches_its_descriptor(
    registry: Registry, plain_client: RegistryClient, tmp_path: Path
) -> None:
    # skopeo copy verifies each blob against the manifest's digest and size while it downloads.
    tagged = _repo(registry, "buildpacks/dep") + ":1"
    await push_buildpackage(plain_client, tagged, [DEP])
    target = tmp_path / "copy"
    await skopeo(registry, tmp_path, "copy", f"docker://{tagged}", f"dir:{target}")
    manifest = json.loads((target / "manifest.json").read_bytes())
    [layer] = manifest["layers"]
    assert (target / layer["digest"].removeprefix("sha256:")).stat().st_size == layer["size"]


async def test_stack_images(registry: Registry, plain_client: RegistryClient, tmp_path: Path) -> None:
    build_ref, run_ref = _repo(registry, "stacks/build") + ":base", _repo(registry, "stacks/run") + ":base"
    images = await push_stack_images(
        plain_client,
        build_ref,
        run_ref,
        BIONIC,
        mixins=["curl", "build:git", "run:tzdata"],
        user_id=1001,
        group_id=1002,
    )

    build = await _inspect(registry, build_ref, tmp_path)
    run = await _inspect(registry, run_ref, tmp_path)
    assert (build["Digest"], run["Digest"]) == (images.build.digest, images.run.digest)
    assert build["Labels"] == {STACK_ID_LABEL: BIONIC, MIXINS_LABEL: '["curl","build:git"]'}
    assert run["Labels"] == {STACK_ID_LABEL: BIONIC, MIXINS_LABEL: '["curl","run:tzdata"]'}
    build_env = _env(build)
    assert (build_env["CNB_USER_ID"], build_env["CNB_GROUP_ID"], build_env["CNB_STACK_ID"]) == ("1001", "1002", BIONIC)
    assert not any(name.startswith("CNB_") for name in _env(run))
    assert (len(build["Layers"]), len(run["Layers"])) == (1, 1)
    assert build["Layers"] != run["Layers"]
    for ref in (build_ref, run_ref):
        config = await _inspect(registry, ref, tmp_path, config=True)
        assert config["config"]["User"] == "1001:1002"
        assert (config["os"], config["architecture"]) == ("linux", "amd64")


async def test_lifecycle_image(registry: Registry, plain_client: RegistryClient, tmp_path: Path) -> None:
    tagged = _repo(registry, "lifecycle") + ":latest"
    pushed = await push_lifecycle_image(plain_client, tagged)

    inspected = await _inspect(registry, tagged, tmp_path)
    assert inspected["Digest"] == pushed.digest
    metadata = json.loads(inspected["Labels"][LIFECYCLE_METADATA_LABEL])
    assert metadata["version"] == "0.11.4"
    assert metadata["apis"]["platform"]["supported"] == ["0.3", "0.4", "0.5", "0.6"]
    config = await _inspect(registry, tagged, tmp_path, config=True)
    assert config["rootfs"]["diff_ids"] == [inspected["Labels"]["linux"]]
    [layer] = inspected["Layers"]
    files = _tar_files(await plain_client.get_blob(pushed, layer))
    phases = {"detector", "analyzer", "restorer", "builder", "exporter", "creator", "rebaser", "launcher"}
    assert {name.removeprefix("cnb/lifecycle/") for name in files if name.startswith("cnb/lifecycle/")} == phases
    assert all(mode == 0o755 for mode, _ in files.values())


async def test_seed_images_stand_up_and_resolve(
    registry: Registry, plain_client: RegistryClient, tmp_path: Path
) -> None:
    mapping = await stand_up_seed_images(plain_client, registry.host, samples_dir=SAMPLES)

    seeds = seed_images(seed_documents(SAMPLES))
    assert sorted(mapping) == sorted(seeds.references)
    digests = {}
    for original, relocated in mapping.items():
        assert relocated.startswith(f"{registry.host}/")
        assert relocated.removeprefix(f"{registry.host}/") == original.removeprefix("registry.example.com/")
        digests[original] = await plain_client.get_digest(relocated)
        assert (await _inspect(registry, relocated, tmp_path))["Digest"] == digests[original]

    [stack] = seeds.stacks
    for image in (stack.build_image, stack.run_image):
        assert (await plain_client.get_labels(mapping[image]))[STACK_ID_LABEL] == stack.stack_id
    build_mixins = json.loads((await plain_client.get_labels(mapping[stack.build_image]))[MIXINS_LABEL])
    assert build_mixins == [m for m in SEED_STACK_MIXINS if not m.startswith("run:")]

    # The applied seeds fit together: the relocated store holds every buildpack the seed builder orders.
    applied = [relocate_manifest(doc, registry.host) for doc in load_documents(sorted(SAMPLES.glob("0[01]-*.yaml")))]
    [store] = [doc for doc in applied if doc["kind"] == "ClusterStore"]
    [builder] = [doc for doc in applied if doc["kind"] == "Builder"]
    stored: set[str] = set()
    for source in store["spec"]["sources"]:
        stored |= set(json.loads((await plain_client.get_labels(source["image"]))[BUILDPACK_LAYERS_LABEL]))
    assert {entry["id"] for group in builder["spec"]["order"] for entry in group["group"]} <= stored
    assert parse_reference(builder["spec"]["tag"]).registry == registry.host

    # Standing up again changes nothing: the images are reproducible.
    await stand_up_seed_images(plain_client, registry.host, samples_dir=SAMPLES)
    assert {original: await plain_client.get_digest(ref) for original, ref in mapping.items()} == digests
