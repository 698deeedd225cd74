"""The small layers a builder adds: exact contents, ownership, modes and deterministic bytes."""

from __future__ import annotations

import gzip
import io
import tarfile
import tomllib

from kpack_core.cnb import OrderRef
from kpack_core.cnb.layers import NORMALIZED_MTIME, default_dirs_layer, order_layer, order_toml, stack_layer
from kpack_core.registry import sha256_digest


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
