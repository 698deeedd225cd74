"""kpack's lifecycle image: a layer of `/cnb/lifecycle/<phase>` executables and the labels kpack reads (§3.2).

- `io.buildpacks.lifecycle.metadata`: `{"version", "api": {"buildpack", "platform"}, "apis": {"buildpack":
  {"deprecated", "supported"}, "platform": {...}}}`; `api` is the legacy single-version form (the oldest of each).
- `linux`: the diffID of the linux lifecycle layer, which the builder copies into every builder image.

The phases are shell scripts, since pods never run in envtest: each checks `CNB_PLATFORM_API` against the
supported platform APIs and exits 11 when it is not one, as a real phase does, then exits 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kpack_core.cnb.layers import Entry
from kpack_core.envtest.cnb.image import ImageBuild, assemble_image, json_label
from kpack_core.envtest.cnb.layer import build_layer_async, directory, executable
from kpack_core.registry import Reference, RegistryClient

LIFECYCLE_METADATA_LABEL = "io.buildpacks.lifecycle.metadata"
LIFECYCLE_DIR = "cnb/lifecycle"
PHASES = ("detector", "analyzer", "restorer", "builder", "exporter", "creator", "rebaser", "launcher")
DEFAULT_VERSION = "0.11.4"
UNSUPPORTED_PLATFORM_API_EXIT = 11


@dataclass(frozen=True)
class ApiVersions:
    """The API versions of one kind (buildpack or platform) a lifecycle supports."""

    supported: tuple[str, ...]
    deprecated: tuple[str, ...] = ()

    def to_json(self) -> dict[str, list[str]]:
        return {"deprecated": list(self.deprecated), "supported": list(self.supported)}

    @property
    def oldest(self) -> str | None:
        """The legacy `api` value: the first listed version, deprecated ones first."""
        listed = (*self.deprecated, *self.supported)
        return listed[0] if listed else None


@dataclass(frozen=True)
class LifecycleApis:
    """Defaults: what lifecycle 0.11 (kpack 0.4.0's) supports."""

    buildpack: ApiVersions = field(default_factory=lambda: ApiVersions(("0.2", "0.3", "0.4", "0.5", "0.6")))
    platform: ApiVersions = field(default_factory=lambda: ApiVersions(("0.3", "0.4", "0.5", "0.6")))

    def to_json(self) -> dict[str, Any]:
        return {"buildpack": self.buildpack.to_json(), "platform": self.platform.to_json()}


def lifecycle_metadata(version: str, apis: LifecycleApis) -> dict[str, Any]:
    """The `io.buildpacks.lifecycle.metadata` object."""
    legacy: dict[str, str] = {}
    for name, versions in (("buildpack", apis.buildpack), ("platform", apis.platform)):
        if versions.oldest is not None:
            legacy[name] = versions.oldest
    return {"version": version, "api": legacy, "apis": apis.to_json()}


def phase_script(phase: str, version: str, platform_apis: Sequence[str]) -> str:
    accepted = "|".join(platform_apis) or "none"
    return (
        "#!/bin/sh\n"
        f"# kpack-py test lifecycle {version}: {phase} (a stand-in; envtest never runs pods)\n"
        'case "${CNB_PLATFORM_API:-}" in\n'
        f"  {accepted}) ;;\n"
        f'  *) echo "platform API ${{CNB_PLATFORM_API:-}} is not supported by {phase}" >&2;'
        f" exit {UNSUPPORTED_PLATFORM_API_EXIT} ;;\n"
        "esac\n"
        f'echo "{phase} $*"\n'
    )


def lifecycle_entries(version: str, apis: LifecycleApis) -> list[Entry]:
    platform_apis = (*apis.platform.deprecated, *apis.platform.supported)
    return [
        directory(LIFECYCLE_DIR),
        *(executable(f"{LIFECYCLE_DIR}/{phase}", phase_script(phase, version, platform_apis)) for phase in PHASES),
    ]


async def lifecycle_image(
    version: str = DEFAULT_VERSION, apis: LifecycleApis | None = None, *, os_label: str | None = "linux"
) -> ImageBuild:
    """The lifecycle image. `os_label=None` leaves out the per-OS diffID label (kpack then cannot find the
    lifecycle layer: "could not find lifecycle for os")."""
    apis = apis or LifecycleApis()
    layer = await build_layer_async(lifecycle_entries(version, apis))
    labels = {LIFECYCLE_METADATA_LABEL: json_label(lifecycle_metadata(version, apis))}
    if os_label is not None:
        labels[os_label] = layer.diff_id
    return assemble_image([layer], labels=labels)


async def push_lifecycle_image(
    client: RegistryClient,
    reference: Reference | str,
    *,
    version: str = DEFAULT_VERSION,
    apis: LifecycleApis | None = None,
    os_label: str | None = "linux",
) -> Reference:
    """Pushes a lifecycle image to `reference`; returns the reference by digest."""
    image = await lifecycle_image(version, apis, os_label=os_label)
    return await image.push(client, reference)
