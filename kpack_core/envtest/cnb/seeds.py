"""The seed manifests' images on a test registry: stand them up, and point the manifests at them.

The `00-*` seeds in `config/samples/` name a ClusterStack's build and run images and a ClusterStore's buildpackage
images on `registry.example.com`. `stand_up_seed_images` pushes an image for each onto a test registry (same
repository path and tag) and returns original -> relocated reference; `rewrite_image_references` and
`relocate_manifest` rewrite parsed manifests to match. The buildpackages come from `SEED_BUILDPACKAGES`: the Java
store is a meta-buildpack `paketo-buildpacks/java` (what `01-builder.yaml` orders) with its two children.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kpack_core.envtest.cnb.buildpack import BuildpackStack, GroupEntry, ShellBuildpack, filler_bytes
from kpack_core.envtest.cnb.buildpackage import push_buildpackage
from kpack_core.envtest.cnb.stack import push_stack_images
from kpack_core.registry import Reference, RegistryClient, parse_reference

SEED_REGISTRY = "registry.example.com"
SEED_STACK_ID = "io.buildpacks.stacks.bionic"
SEED_STACK_MIXINS = ("ca-certificates", "build:git", "run:tzdata")
"""The mixins of every seed stack: one shared, one build-only, one run-only, so every kpack mixin rule is used."""

_JAVA_STACKS = (BuildpackStack(SEED_STACK_ID),)
SEED_BUILDPACKAGES: Mapping[str, tuple[ShellBuildpack, ...]] = {
    f"{SEED_REGISTRY}/buildpacks/java": (
        ShellBuildpack(
            "paketo-buildpacks/java",
            "5.0.0",
            homepage="https://github.com/paketo-buildpacks/java",
            order=(
                (
                    GroupEntry("paketo-buildpacks/bellsoft-liberica", "8.0.0"),
                    GroupEntry("paketo-buildpacks/maven", "5.0.0", optional=True),
                ),
            ),
        ),
        # Different sizes, so the builder's largest-first layer order is visible in tests.
        ShellBuildpack(
            "paketo-buildpacks/bellsoft-liberica",
            "8.0.0",
            homepage="https://github.com/paketo-buildpacks/bellsoft-liberica",
            stacks=_JAVA_STACKS,
            extra_files=(("jre.bin", filler_bytes("bellsoft-liberica", 8192)),),
        ),
        ShellBuildpack(
            "paketo-buildpacks/maven",
            "5.0.0",
            homepage="https://github.com/paketo-buildpacks/maven",
            stacks=_JAVA_STACKS,
            extra_files=(("maven.bin", filler_bytes("maven", 2048)),),
        ),
    ),
}
"""Seed store image (as written in the manifest) -> its buildpacks, entry first."""


def default_samples_dir() -> Path:
    """`config/samples/` of the source checkout this package lives in."""
    samples = Path(__file__).resolve().parents[3] / "config" / "samples"
    if not samples.is_dir():
        raise FileNotFoundError(f"no seed manifests at {samples}: pass samples_dir (this is not a source checkout)")
    return samples


def load_documents(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Every non-empty YAML document of these files, in order."""
    documents: list[dict[str, Any]] = []
    for path in paths:
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def seed_documents(samples_dir: Path | None = None) -> list[dict[str, Any]]:
    """The parsed `00-*` seed manifests (cluster-scoped store and stack)."""
    return load_documents(sorted((samples_dir or default_samples_dir()).glob("00-*.yaml")))


@dataclass(frozen=True)
class SeedStack:
    stack_id: str
    build_image: str
    run_image: str


@dataclass
class SeedImages:
    """The images the seed manifests name, as written."""

    stacks: list[SeedStack] = field(default_factory=list)
    store_images: list[str] = field(default_factory=list)

    @property
    def references(self) -> list[str]:
        out = [ref for stack in self.stacks for ref in (stack.build_image, stack.run_image)]
        return out + self.store_images


def seed_images(documents: Sequence[Mapping[str, Any]]) -> SeedImages:
    """The stack and store images named by ClusterStack and ClusterStore documents (other kinds ignored)."""
    found = SeedImages()
    for doc in documents:
        spec = doc.get("spec") or {}
        if doc.get("kind") == "ClusterStack":
            found.stacks.append(SeedStack(spec["id"], spec["buildImage"]["image"], spec["runImage"]["image"]))
        elif doc.get("kind") == "ClusterStore":
            found.store_images += [source["image"] for source in spec.get("sources") or ()]
    return found


def relocate(reference: str, host: str) -> str:
    """The same repository, tag and digest as written, on registry `host` (`registry.example.com/a/b:t` ->
    `127.0.0.1:5000/a/b:t`; a Docker Hub name gets its full repository, `ubuntu` -> `<host>/library/ubuntu`)."""
    ref = parse_reference(reference)
    name_part, _, _ = reference.partition("@")
    out = f"{host}/{ref.repository}"
    if ":" in name_part.rsplit("/", 1)[-1]:
        out += f":{ref.tag}"
    if ref.digest is not None:
        out += f"@{ref.digest}"
    return out


def rewrite_image_references(document: Any, mapping: Mapping[str, str]) -> Any:
    """A copy of a parsed manifest in which every string value equal to a key of `mapping` is replaced by its
    value. Keys of the document are never touched. Pure: the input is not modified."""
    if isinstance(document, dict):
        return {key: rewrite_image_references(value, mapping) for key, value in document.items()}
    if isinstance(document, list):
        return [rewrite_image_references(value, mapping) for value in document]
    if isinstance(document, str):
        return mapping.get(document, document)
    return document


def relocate_manifest(document: Any, host: str, *, source_registry: str = SEED_REGISTRY) -> Any:
    """A copy of a parsed manifest with every reference on `source_registry` moved to `host`, including
    references nobody pushed (a Builder's `spec.tag`, an Image's tag): what a test applies next to the seeds."""
    if isinstance(document, dict):
        return {key: relocate_manifest(value, host, source_registry=source_registry) for key, value in document.items()}
    if isinstance(document, list):
        return [relocate_manifest(value, host, source_registry=source_registry) for value in document]
    if isinstance(document, str) and document.startswith(f"{source_registry}/"):
        return relocate(document, host)
    return document


async def stand_up_seed_images(
    client: RegistryClient,
    host: str,
    *,
    samples_dir: Path | None = None,
    buildpackages: Mapping[str, Sequence[ShellBuildpack]] = SEED_BUILDPACKAGES,
) -> dict[str, str]:
    """Pushes every image the `00-*` seeds name onto registry `host`; returns original -> relocated reference
    (by tag, as written). A store image missing from `buildpackages` or a digest reference is a ValueError."""
    images = seed_images(seed_documents(samples_dir))
    for reference in images.references:
        if parse_reference(reference).digest is not None:
            raise ValueError(f"seed image {reference} is pinned by digest; a test registry cannot serve it")
    unknown = [ref for ref in images.store_images if ref not in buildpackages]
    if unknown:
        raise ValueError(f"no buildpacks known for seed store image(s) {', '.join(unknown)}: add to SEED_BUILDPACKAGES")
    mapping = {reference: relocate(reference, host) for reference in images.references}

    async def push_stack(stack: SeedStack) -> None:
        await push_stack_images(
            client, mapping[stack.build_image], mapping[stack.run_image], stack.stack_id, mixins=SEED_STACK_MIXINS
        )

    async def push_store_image(reference: str) -> Reference:
        return await push_buildpackage(client, mapping[reference], buildpackages[reference])

    await asyncio.gather(
        *(push_stack(stack) for stack in images.stacks), *(push_store_image(ref) for ref in images.store_images)
    )
    return mapping
