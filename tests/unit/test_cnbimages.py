"""The CNB test images without a registry: reproducible layers, the tar layout buildpacks live in, label shapes.

Tar contents are read with the standard library's `tarfile`, not with the module under test, so a layout mistake
cannot hide behind a matching reader.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from kpack_core.envtest.cnb import (
    BUILDPACK_LAYERS_LABEL,
    BUILDPACKAGE_METADATA_LABEL,
    LIFECYCLE_METADATA_LABEL,
    MIXINS_LABEL,
    NORMALIZED_MTIME,
    SEED_BUILDPACKAGES,
    STACK_ID_LABEL,
    ApiVersions,
    BuildpackStack,
    GroupEntry,
    LifecycleApis,
    ShellBuildpack,
    StackRole,
    build_layer,
    buildpackage_image,
    directory,
    executable,
    lifecycle_image,
    regular_file,
    relocate,
    relocate_manifest,
    rewrite_image_references,
    seed_documents,
    seed_images,
    stack_image,
)
from kpack_core.envtest.cnb.layer import with_parents
from kpack_core.envtest.cnb.seeds import load_documents
from kpack_core.envtest.cnb.stack import mixins_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "config" / "samples"

ENTRIES_SCRIPT = """
import sys
from kpack_core.envtest.cnb import build_layer, directory, executable, regular_file
entries = {
    regular_file("b/file.txt", "hello\\n"),
    executable("a/bin/run", "#!/bin/sh\\nexit 0\\n"),
    directory("c/owned", uid=1000, gid=1001),
    regular_file("a/z", b"\\x00" * 700),
}
layer = build_layer(entries)
print(layer.diff_id, layer.digest)
"""
"""Entries given as a set: its iteration order changes with PYTHONHASHSEED, the layer must not."""


def _sample_entries() -> list[Any]:
    return [
        regular_file("b/file.txt", "hello\n"),
        executable("a/bin/run", "#!/bin/sh\nexit 0\n"),
        directory("c/owned", uid=1000, gid=1001),
        regular_file("a/z", b"\x00" * 700),
    ]


def _members(tar: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        return archive.getmembers()


def _files(tar: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        for info in archive.getmembers():
            if info.isfile():
                extracted = archive.extractfile(info)
                assert extracted is not None
                out[info.name] = extracted.read()
    return out


def _labels(config: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = config["config"]["Labels"]
    return labels


# --- layers ------------------------------------------------------------------------------------------------------


def test_layer_digests_are_stable_across_processes_and_hash_seeds() -> None:
    results = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run(
            [sys.executable, "-c", ENTRIES_SCRIPT],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        results.add(done.stdout.strip())
    in_process = build_layer(reversed(_sample_entries()))
    assert results == {f"{in_process.diff_id} {in_process.digest}"}


def test_layer_tar_is_pinned() -> None:
    # The uncompressed tar depends only on the entries and our header choices (not on zlib), so its hash is
    # pinned: a change here changes every diffID a test or a store status may have recorded.
    layer = build_layer(_sample_entries())
    assert layer.diff_id == "sha256:" + hashlib.sha256(layer.tar).hexdigest()
    assert layer.diff_id == PINNED_SAMPLE_DIFF_ID


PINNED_SAMPLE_DIFF_ID = "sha256:c27d094c0b3354cfbcbab3940dd805091c34bf8d56c8eb741165b2a81a7c1db4"


def test_layer_digest_size_and_gzip_header() -> None:
    layer = build_layer(_sample_entries())
    assert layer.digest == "sha256:" + hashlib.sha256(layer.blob).hexdigest()
    assert layer.size == len(layer.blob)
    assert gzip.decompress(layer.blob) == layer.tar
    assert layer.blob[:2] == b"\x1f\x8b"
    assert layer.blob[4:8] == b"\x00\x00\x00\x00"  # gzip MTIME field: no time of compression
    descriptor = layer.descriptor()
    assert (descriptor.media_type, descriptor.digest, descriptor.size) == (
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        layer.digest,
        layer.size,
    )


def test_layer_entries_are_sorted_with_parents_and_normalized_headers() -> None:
    members = _members(build_layer(_sample_entries()).tar)
    assert [(m.name, m.type, m.mode, m.uid, m.gid) for m in members] == [
        ("a", tarfile.DIRTYPE, 0o755, 0, 0),
        ("a/bin", tarfile.DIRTYPE, 0o755, 0, 0),
        ("a/bin/run", tarfile.REGTYPE, 0o755, 0, 0),
        ("a/z", tarfile.REGTYPE, 0o644, 0, 0),
        ("b", tarfile.DIRTYPE, 0o755, 0, 0),
        ("b/file.txt", tarfile.REGTYPE, 0o644, 0, 0),
        ("c", tarfile.DIRTYPE, 0o755, 0, 0),
        ("c/owned", tarfile.DIRTYPE, 0o755, 1000, 1001),
    ]
    assert {m.mtime for m in members} == {NORMALIZED_MTIME}
    assert {(m.uname, m.gname) for m in members} == {("", "")}
    assert NORMALIZED_MTIME == 315532801  # 1980-01-01T00:00:01Z


def test_directory_names_end_with_a_slash_in_the_raw_header() -> None:
    tar = build_layer([regular_file("/cnb/x", "x")]).tar
    assert tar[:100].rstrip(b"\x00") == b"cnb/"  # the first header is the added parent, named like Go names dirs
    assert tar[257:263] == b"ustar\x00"


@pytest.mark.parametrize("path", ["", "/", "a/../b", "./a", "a//b"])
def test_invalid_paths_are_rejected(path: str) -> None:
    with pytest.raises(ValueError, match="invalid layer path"):
        regular_file(path, "x")


def test_duplicate_paths_and_files_below_files_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate layer path 'a/b'"):
        with_parents([regular_file("a/b", "1"), regular_file("/a/b", "2")])
    with pytest.raises(ValueError, match="'a/b/c' is below the file 'a/b'"):
        with_parents([regular_file("a/b", "1"), regular_file("a/b/c", "2")])


# --- buildpacks --------------------------------------------------------------------------------------------------

BIONIC = "io.buildpacks.stacks.bionic"
NODE = ShellBuildpack(
    "example/node",
    "1.2.3",
    api="0.5",
    homepage="https://example.com/node",
    stacks=(BuildpackStack(BIONIC, ("build:git", "curl")), BuildpackStack("io.other")),
)
NPM = ShellBuildpack("example/npm", "0.1.0", stacks=(BuildpackStack(BIONIC, ("jq",)), BuildpackStack("io.third")))
META = ShellBuildpack(
    "example/js",
    "2.0.0",
    order=(
        (GroupEntry("example/node", "1.2.3"), GroupEntry("example/npm", optional=True)),
        (GroupEntry("example/node"),),
    ),
)


def test_regular_buildpack_layer_layout() -> None:
    layer = build_layer(NODE.layer_entries())
    members = _members(layer.tar)
    base = "cnb/buildpacks/example_node/1.2.3"
    assert [(m.name, m.isdir(), m.mode) for m in members] == [
        ("cnb", True, 0o755),
        ("cnb/buildpacks", True, 0o755),
        ("cnb/buildpacks/example_node", True, 0o755),
        (base, True, 0o755),
        (f"{base}/bin", True, 0o755),
        (f"{base}/bin/build", False, 0o755),
        (f"{base}/bin/detect", False, 0o755),
        (f"{base}/buildpack.toml", False, 0o644),
    ]
    files = _files(layer.tar)
    assert files[f"{base}/bin/detect"].startswith(b"#!/bin/sh\n")
    assert files[f"{base}/bin/build"].startswith(b"#!/bin/sh\n")
    assert tomllib.loads(files[f"{base}/buildpack.toml"].decode()) == {
        "api": "0.5",
        "buildpack": {"id": "example/node", "version": "1.2.3", "homepage": "https://example.com/node"},
        "stacks": [{"id": BIONIC, "mixins": ["build:git", "curl"]}, {"id": "io.other"}],
    }


def test_meta_buildpack_layer_has_an_order_and_no_executables() -> None:
    layer = build_layer(META.layer_entries())
    files = _files(layer.tar)
    assert list(files) == ["cnb/buildpacks/example_js/2.0.0/buildpack.toml"]
    assert tomllib.loads(files["cnb/buildpacks/example_js/2.0.0/buildpack.toml"].decode()) == {
        "api": "0.4",
        "buildpack": {"id": "example/js", "version": "2.0.0"},
        "order": [
            {
                "group": [
                    {"id": "example/node", "version": "1.2.3"},
                    {"id": "example/npm", "optional": True},
                ]
            },
            {"group": [{"id": "example/node"}]},
        ],
    }


def test_buildpack_toml_escapes_strings() -> None:
    odd = ShellBuildpack("x", "1", homepage='https://example.com/"quoted"\\path\n', stacks=(BuildpackStack("s"),))
    assert tomllib.loads(odd.descriptor_toml())["buildpack"]["homepage"] == 'https://example.com/"quoted"\\path\n'


def test_a_buildpack_cannot_declare_stacks_and_an_order() -> None:
    with pytest.raises(ValueError, match="both stacks and an order"):
        ShellBuildpack("x", "1", stacks=(BuildpackStack("s"),), order=((GroupEntry("y"),),))


async def test_buildpackage_labels_are_shaped_per_the_spec() -> None:
    image = await buildpackage_image([META, NODE, NPM])
    config = image.config_json()
    labels = _labels(config)
    js, node, npm = (layer.diff_id for layer in image.layers)
    assert json.loads(labels[BUILDPACK_LAYERS_LABEL]) == {
        "example/js": {
            "2.0.0": {
                "api": "0.4",
                "order": [
                    {"group": [{"id": "example/node", "version": "1.2.3"}, {"id": "example/npm", "optional": True}]},
                    {"group": [{"id": "example/node"}]},
                ],
                "layerDiffID": js,
            }
        },
        "example/node": {
            "1.2.3": {
                "api": "0.5",
                "stacks": [{"id": BIONIC, "mixins": ["build:git", "curl"]}, {"id": "io.other"}],
                "layerDiffID": node,
                "homepage": "https://example.com/node",
            }
        },
        "example/npm": {
            "0.1.0": {
                "api": "0.4",
                "stacks": [{"id": BIONIC, "mixins": ["jq"]}, {"id": "io.third"}],
                "layerDiffID": npm,
            }
        },
    }
    # A meta-buildpack entry: the package supports the stacks all children support, with their mixins merged.
    assert json.loads(labels[BUILDPACKAGE_METADATA_LABEL]) == {
        "id": "example/js",
        "version": "2.0.0",
        "stacks": [{"id": BIONIC, "mixins": ["build:git", "curl", "jq"]}],
    }
    assert config["rootfs"] == {"type": "layers", "diff_ids": [js, node, npm]}
    assert [d.digest for d in image.manifest.layers] == [layer.digest for layer in image.layers]
    assert image.manifest.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    # Each diffID leads to the layer holding exactly that buildpack.
    for layer, directory_name in zip(
        image.layers, ["example_js/2.0.0", "example_node/1.2.3", "example_npm/0.1.0"], strict=True
    ):
        assert hashlib.sha256(gzip.decompress(layer.blob)).hexdigest() == layer.diff_id.removeprefix("sha256:")
        assert f"cnb/buildpacks/{directory_name}/buildpack.toml" in _files(layer.tar)


async def test_single_buildpack_package_metadata_uses_its_own_stacks() -> None:
    image = await buildpackage_image([NODE])
    assert json.loads(_labels(image.config_json())[BUILDPACKAGE_METADATA_LABEL]) == {
        "id": "example/node",
        "version": "1.2.3",
        "homepage": "https://example.com/node",
        "stacks": [{"id": BIONIC, "mixins": ["build:git", "curl"]}, {"id": "io.other"}],
    }


async def test_buildpackage_images_are_reproducible() -> None:
    first, second = await asyncio.gather(buildpackage_image([META, NODE, NPM]), buildpackage_image([META, NODE, NPM]))
    assert first.digest == second.digest
    assert first.config == second.config


async def test_buildpackage_checks_its_contents() -> None:
    with pytest.raises(ValueError, match=r"example/js@2\.0\.0 orders example/npm, which is not in the package"):
        await buildpackage_image([META, NODE])
    with pytest.raises(ValueError, match=r"more than once: example/node@1\.2\.3"):
        await buildpackage_image([NODE, NODE])
    with pytest.raises(ValueError, match="at least one"):
        await buildpackage_image([])
    lone_meta = await buildpackage_image([META], allow_missing_children=True)
    assert json.loads(_labels(lone_meta.config_json())[BUILDPACKAGE_METADATA_LABEL])["stacks"] == []


# --- stacks ------------------------------------------------------------------------------------------------------


def test_mixins_are_split_by_prefix() -> None:
    mixins = ["curl", "build:git", "run:tzdata"]
    assert mixins_for(StackRole.BUILD, mixins) == ["curl", "build:git"]
    assert mixins_for(StackRole.RUN, mixins) == ["curl", "run:tzdata"]


async def test_build_image_config_carries_the_stack_contract() -> None:
    image = await stack_image(StackRole.BUILD, BIONIC, mixins=["curl", "build:git"], user_id=1001, group_id=1002)
    config = image.config_json()
    assert _labels(config) == {STACK_ID_LABEL: BIONIC, MIXINS_LABEL: '["curl","build:git"]'}
    env = dict(item.split("=", 1) for item in config["config"]["Env"])
    assert (env["CNB_USER_ID"], env["CNB_GROUP_ID"], env["CNB_STACK_ID"]) == ("1001", "1002", BIONIC)
    assert config["config"]["User"] == "1001:1002"
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["rootfs"]["diff_ids"] == [image.layers[0].diff_id]
    owned = {m.name: (m.uid, m.gid) for m in _members(image.layers[0].tar)}
    assert owned["home/cnb"] == (1001, 1002)


async def test_run_image_has_no_cnb_ids_in_env_and_a_different_layer() -> None:
    build = await stack_image(StackRole.BUILD, BIONIC)
    run = await stack_image(StackRole.RUN, BIONIC, labels={"io.buildpacks.stack.description": "run"})
    config = run.config_json()
    assert _labels(config) == {STACK_ID_LABEL: BIONIC, MIXINS_LABEL: "[]", "io.buildpacks.stack.description": "run"}
    assert not any(item.startswith("CNB_") for item in config["config"]["Env"])
    assert config["config"]["User"] == "1000:1000"
    assert run.layers[0].diff_id != build.layers[0].diff_id


async def test_stack_image_env_can_be_replaced_for_negative_tests() -> None:
    image = await stack_image(StackRole.BUILD, BIONIC, env={"CNB_USER_ID": "not-a-number"})
    assert image.config_json()["config"]["Env"] == ["CNB_USER_ID=not-a-number"]


# --- lifecycle ---------------------------------------------------------------------------------------------------


async def test_lifecycle_image_labels_and_layer() -> None:
    image = await lifecycle_image()
    labels = _labels(image.config_json())
    assert json.loads(labels[LIFECYCLE_METADATA_LABEL]) == {
        "version": "0.11.4",
        "api": {"buildpack": "0.2", "platform": "0.3"},
        "apis": {
            "buildpack": {"deprecated": [], "supported": ["0.2", "0.3", "0.4", "0.5", "0.6"]},
            "platform": {"deprecated": [], "supported": ["0.3", "0.4", "0.5", "0.6"]},
        },
    }
    [layer] = image.layers
    assert labels["linux"] == layer.diff_id
    phases = ["analyzer", "builder", "creator", "detector", "exporter", "launcher", "rebaser", "restorer"]
    assert [(m.name, m.mode) for m in _members(layer.tar)] == [
        ("cnb", 0o755),
        ("cnb/lifecycle", 0o755),
        *((f"cnb/lifecycle/{phase}", 0o755) for phase in phases),
    ]


async def test_lifecycle_image_options() -> None:
    apis = LifecycleApis(buildpack=ApiVersions(("0.7",)), platform=ApiVersions(("0.7",), deprecated=("0.2",)))
    image = await lifecycle_image("0.13.0", apis, os_label=None)
    labels = _labels(image.config_json())
    assert "linux" not in labels
    metadata = json.loads(labels[LIFECYCLE_METADATA_LABEL])
    assert metadata["version"] == "0.13.0"
    assert metadata["api"] == {"buildpack": "0.7", "platform": "0.2"}
    assert metadata["apis"]["platform"] == {"deprecated": ["0.2"], "supported": ["0.7"]}


@pytest.mark.parametrize(("platform_api", "code"), [("0.6", 0), ("0.3", 0), ("0.7", 11), ("", 11)])
async def test_lifecycle_phases_check_the_platform_api(tmp_path: Path, platform_api: str, code: int) -> None:
    image = await lifecycle_image()
    script = tmp_path / "detector"
    script.write_bytes(_files(image.layers[0].tar)["cnb/lifecycle/detector"])
    process = await asyncio.create_subprocess_exec(
        "sh", str(script), "-app=/workspace", env={"CNB_PLATFORM_API": platform_api}, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    assert process.returncode == code
    if code == 0:
        assert stdout == b"detector -app=/workspace\n"


# --- seeds -------------------------------------------------------------------------------------------------------


def test_seed_images_come_from_the_00_manifests() -> None:
    images = seed_images(seed_documents(SAMPLES))
    assert [(s.stack_id, s.build_image, s.run_image) for s in images.stacks] == [
        (BIONIC, "registry.example.com/stacks/build:base", "registry.example.com/stacks/run:base")
    ]
    assert images.store_images == ["registry.example.com/buildpacks/java"]
    assert set(images.store_images) <= set(SEED_BUILDPACKAGES)


def test_seed_store_holds_what_the_seed_builder_orders() -> None:
    [builder] = load_documents([SAMPLES / "01-builder.yaml"])
    ordered = {entry["id"] for group in builder["spec"]["order"] for entry in group["group"]}
    stored = {bp.id for bps in SEED_BUILDPACKAGES.values() for bp in bps}
    assert ordered <= stored


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("registry.example.com/stacks/build:base", "127.0.0.1:5000/stacks/build:base"),
        ("registry.example.com/buildpacks/java", "127.0.0.1:5000/buildpacks/java"),
        ("registry.example.com:8443/a/b:latest", "127.0.0.1:5000/a/b:latest"),
        ("ubuntu", "127.0.0.1:5000/library/ubuntu"),
        ("paketobuildpacks/build:base-cnb", "127.0.0.1:5000/paketobuildpacks/build:base-cnb"),
        (f"registry.example.com/x@sha256:{'a' * 64}", f"127.0.0.1:5000/x@sha256:{'a' * 64}"),
        (f"registry.example.com/x:t@sha256:{'a' * 64}", f"127.0.0.1:5000/x:t@sha256:{'a' * 64}"),
    ],
)
def test_relocate(reference: str, expected: str) -> None:
    assert relocate(reference, "127.0.0.1:5000") == expected


def test_rewrite_image_references_replaces_exact_values_only() -> None:
    [stack] = load_documents([SAMPLES / "00-clusterstack.yaml"])
    before = json.dumps(stack, sort_keys=True)
    mapping = {"registry.example.com/stacks/build:base": "127.0.0.1:5000/stacks/build:base"}
    rewritten = rewrite_image_references(stack, mapping)
    assert rewritten["spec"]["buildImage"]["image"] == "127.0.0.1:5000/stacks/build:base"
    assert rewritten["spec"]["runImage"]["image"] == "registry.example.com/stacks/run:base"
    assert rewritten["spec"]["id"] == BIONIC
    assert json.dumps(stack, sort_keys=True) == before  # pure


def test_relocate_manifest_moves_every_seed_registry_reference() -> None:
    [builder] = load_documents([SAMPLES / "01-builder.yaml"])
    moved = relocate_manifest(builder, "127.0.0.1:5000")
    assert moved["spec"]["tag"] == "127.0.0.1:5000/my-builder"
    assert moved["spec"]["order"] == builder["spec"]["order"]
    assert builder["spec"]["tag"] == "registry.example.com/my-builder"
    assert "registry.example.com" not in json.dumps(moved)
