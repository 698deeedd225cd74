"""The small layers a builder adds: exact contents, ownership, modes and deterministic bytes; and the path rules
every layer entry (builder or test image) is held to."""

from __future__ import annotations

import gzip
import io
import tarfile
import tomllib

import pytest

from kpack_core.cnb import OrderRef
from kpack_core.cnb.layers import (
    DIRECTORY_MODE,
    FILE_MODE,
    NORMALIZED_MTIME,
    Entry,
    default_dirs_layer,
    order_layer,
    order_toml,
    stack_layer,
)
from kpack_core.registry import mediatypes, sha256_digest


def _members(blob: bytes) -> list[tuple[str, int, int, int, int, bytes | None]]:
    tar = gzip.decompress(blob)
    out = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        for info in archive.getmembers():
            assert info.mtime == NORMALIZED_MTIME
            assert (info.uname, info.gname) == ("", "")
            extracted = archive.extractfile(info) if info.isfile() else None
            out.append(
                (info.name, info.mode, info.uid, info.gid, info.type[0], extracted.read() if extracted else None)
            )
    return out


ORDER = (
    (OrderRef("paketo/java", "5.0.0"), OrderRef("paketo/maven", "1.0.0", optional=True)),
    (OrderRef('we"ird', "1.0.0"),),
)


def test_default_dirs_are_owned_by_the_stack_user_where_kpack_puts_them() -> None:
    d = ord(tarfile.DIRTYPE)
    assert _members(default_dirs_layer(1000, 1001).blob) == [
        ("workspace", 0o755, 1000, 1001, d, None),
        ("layers", 0o755, 1000, 1001, d, None),
        ("cnb", 0o755, 0, 0, d, None),
        ("cnb/buildpacks", 0o755, 0, 0, d, None),
        ("platform", 0o755, 0, 0, d, None),
        ("platform/env", 0o755, 0, 0, d, None),
    ]


def test_stack_toml_names_the_run_image() -> None:
    members = _members(stack_layer("registry.example.com/run:base").blob)

    assert [(name, mode) for name, mode, *_ in members] == [("cnb", 0o755), ("cnb/stack.toml", 0o644)]
    content = members[1][5]
    assert content is not None
    assert tomllib.loads(content.decode()) == {"run-image": {"image": "registry.example.com/run:base"}}


def test_order_toml_lists_groups_and_optional_only_when_true() -> None:
    members = _members(order_layer(ORDER).blob)

    assert [(name, mode) for name, mode, *_ in members] == [("cnb", 0o755), ("cnb/order.toml", 0o644)]
    content = members[1][5]
    assert content is not None
    assert tomllib.loads(content.decode()) == {
        "order": [
            {
                "group": [
                    {"id": "paketo/java", "version": "5.0.0"},
                    {"id": "paketo/maven", "version": "1.0.0", "optional": True},
                ]
            },
            {"group": [{"id": 'we"ird', "version": "1.0.0"}]},
        ]
    }
    assert "optional = false" not in order_toml(ORDER)


def test_layers_are_byte_for_byte_reproducible_and_digests_are_of_the_bytes() -> None:
    first, second = order_layer(ORDER), order_layer(ORDER)

    assert first == second
    assert first.digest == sha256_digest(first.blob)
    assert first.diff_id == sha256_digest(gzip.decompress(first.blob))
    assert default_dirs_layer(1, 1).digest != default_dirs_layer(2, 2).digest
    assert order_layer(ORDER[:1]).digest != first.digest


def test_a_layer_describes_itself_with_the_media_type_it_was_built_for() -> None:
    docker, oci = order_layer(ORDER), order_layer(ORDER, mediatypes.OCI_LAYER)

    assert docker.blob == oci.blob  # the same bytes under either type
    assert (docker.descriptor().media_type, oci.descriptor().media_type) == (
        mediatypes.DOCKER_LAYER,
        mediatypes.OCI_LAYER,
    )
    assert (oci.descriptor().digest, oci.descriptor().size) == (oci.digest, oci.size)


@pytest.mark.parametrize("path", ["", "/", "..", "cnb/../etc", "../cnb", "./cnb", "cnb//order.toml"])
def test_an_entry_outside_the_layer_root_or_without_a_name_is_rejected(path: str) -> None:
    with pytest.raises(ValueError, match=f"invalid layer path {path!r}"):
        Entry(path, FILE_MODE, b"x")
    with pytest.raises(ValueError, match=f"invalid layer path {path!r}"):
        Entry(path, DIRECTORY_MODE)


def test_entry_paths_are_written_relative() -> None:
    entry = Entry("/cnb/buildpacks/", DIRECTORY_MODE)

    assert (entry.path, entry.is_directory) == ("cnb/buildpacks", True)
    assert not Entry("cnb/stack.toml", FILE_MODE, b"").is_directory
