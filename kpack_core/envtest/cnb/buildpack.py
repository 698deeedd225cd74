"""Shell buildpacks: `buildpack.toml` plus `bin/detect` and `bin/build` scripts, laid out as one layer.

The layer holds the buildpack at `/cnb/buildpacks/<id with / escaped as _>/<version>/`, exactly where builders and
buildpackages keep it (formats.md §3.2, §3.3). A meta-buildpack has an `order` and no stacks and no `bin/` (the
buildpack spec forbids declaring both; it never runs). The scripts do the least a real buildpack does: detect
passes, build declares a `web` process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from kpack_core.cnb.layers import Entry
from kpack_core.envtest.cnb.layer import directory, executable, regular_file

BUILDPACKS_DIR = "cnb/buildpacks"

DEFAULT_DETECT = """#!/bin/sh
# detect <platform> <plan>: always passes.
exit 0
"""

DEFAULT_BUILD = """#!/bin/sh
# build <layers> <platform> <plan>: declares one web process.
set -eu
cat > "$1/launch.toml" <<'EOF'
[[processes]]
type = "web"
command = "echo hello from a kpack-py test buildpack"
EOF
"""


@dataclass(frozen=True)
class BuildpackStack:
    """A stack a buildpack supports (`[[stacks]]`), with the mixins it requires."""

    id: str
    mixins: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        # Go's dist.Stack tags mixins omitempty.
        return {"id": self.id, "mixins": list(self.mixins)} if self.mixins else {"id": self.id}


@dataclass(frozen=True)
class GroupEntry:
    """A member of an order group: a buildpack id, an optional version and the optional flag."""

    id: str
    version: str | None = None
    optional: bool = False

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id}
        if self.version:
            out["version"] = self.version
        if self.optional:
            out["optional"] = True
        return out


Order = tuple[tuple[GroupEntry, ...], ...]
"""Groups tried in turn; each group a tuple of entries."""


def order_json(order: Order) -> list[dict[str, object]]:
    """`[{"group": [{"id", "version"?, "optional"?}]}]`, the shape of every order label and status field."""
    return [{"group": [entry.to_json() for entry in group]} for group in order]


@dataclass(frozen=True)
class ShellBuildpack:
    """One buildpack; `stacks` for a regular buildpack, `order` for a meta-buildpack.

    `extra_files` (paths relative to the buildpack directory) let a test shape the layer, for example to give
    buildpacks different compressed sizes (kpack sorts builder layers by size); see `filler_bytes`.
    """

    id: str
    version: str
    api: str = "0.4"
    homepage: str | None = None
    stacks: tuple[BuildpackStack, ...] = ()
    order: Order = ()
    detect: str = DEFAULT_DETECT
    build: str = DEFAULT_BUILD
    extra_files: tuple[tuple[str, bytes], ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.id or not self.version:
            raise ValueError(f"a buildpack needs an id and a version, got {self.id!r}@{self.version!r}")
        if self.stacks and self.order:
            raise ValueError(f"buildpack {self.key} declares both stacks and an order")

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def is_meta(self) -> bool:
        return bool(self.order)

    @property
    def escaped_id(self) -> str:
        return self.id.replace("/", "_")

    @property
    def directory(self) -> str:
        """The buildpack's directory inside a layer, relative to `/`."""
        return f"{BUILDPACKS_DIR}/{self.escaped_id}/{self.version}"

    def descriptor_toml(self) -> str:
        """The text of `buildpack.toml`."""
        lines = [f"api = {_toml_string(self.api)}", "", "[buildpack]"]
        lines.append(f"id = {_toml_string(self.id)}")
        lines.append(f"version = {_toml_string(self.version)}")
        if self.homepage:
            lines.append(f"homepage = {_toml_string(self.homepage)}")
        for stack in self.stacks:
            lines += ["", "[[stacks]]", f"id = {_toml_string(stack.id)}"]
            if stack.mixins:
                lines.append(f"mixins = {_toml_array(stack.mixins)}")
        for group in self.order:
            lines += ["", "[[order]]"]
            for entry in group:
                lines += ["", "[[order.group]]", f"id = {_toml_string(entry.id)}"]
                if entry.version:
                    lines.append(f"version = {_toml_string(entry.version)}")
                if entry.optional:
                    lines.append("optional = true")
        return "\n".join(lines) + "\n"

    def layer_entries(self) -> list[Entry]:
        """The files of the buildpack's layer (parent directories are added by the layer builder)."""
        base = self.directory
        entries = [directory(base), regular_file(f"{base}/buildpack.toml", self.descriptor_toml())]
        if not self.is_meta:
            entries += [
                directory(f"{base}/bin"),
                executable(f"{base}/bin/detect", self.detect),
                executable(f"{base}/bin/build", self.build),
            ]
        entries += [regular_file(f"{base}/{path}", content) for path, content in self.extra_files]
        return entries

    def children(self) -> Iterable[GroupEntry]:
        for group in self.order:
            yield from group


def filler_bytes(seed: str, size: int) -> bytes:
    """`size` deterministic bytes that do not compress (a sha256 counter stream), to make a layer `size` larger."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def _toml_string(value: str) -> str:
    # A JSON string with ensure_ascii is a valid TOML basic string (same escapes, \uXXXX for the rest).
    return json.dumps(value)


def _toml_array(values: Iterable[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"
