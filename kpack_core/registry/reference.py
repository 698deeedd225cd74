"""Image references (`registry/repository:tag@digest`), parsed and normalised the way go-containerregistry does.

Pure functions and a frozen value: a missing registry means Docker Hub (`index.docker.io`, with `docker.io` as an
alias), a one-segment Hub repository gets `library/`, a missing tag means `latest`. The first path segment is a
registry only when it contains `.` or `:` or is `localhost` (formats.md §2.1). Validation errors name the reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from kpack_core.registry.errors import InvalidReferenceError

DOCKER_HUB = "index.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_PATTERN = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_PATTERN = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_PATTERN = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_SHA256_HEX = re.compile(r"[a-f0-9]{64}")
_HOST_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
REGISTRY_PATTERN = re.compile(rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
MAX_REPOSITORY_LENGTH = 255


def validate_digest(digest: str, reference: str = "") -> str:
    """Returns `digest` when it is `algorithm:encoded` (sha256 with exactly 64 lowercase hex digits)."""
    where = reference or digest
    if not DIGEST_PATTERN.fullmatch(digest):
        raise InvalidReferenceError(where, f"invalid digest {digest!r}")
    algorithm, _, encoded = digest.partition(":")
    if algorithm == "sha256" and not _SHA256_HEX.fullmatch(encoded):
        raise InvalidReferenceError(where, f"invalid sha256 digest {digest!r}: 64 lowercase hex digits expected")
    return digest


@dataclass(frozen=True)
class Reference:
    """One normalised image reference.

    `tag` and `digest` may both be set (`name:tag@digest`); then the digest is what is fetched (`identifier`).
    When neither was given `tag` is `latest`. `str()` gives the canonical, fully qualified form.
    """

    registry: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @property
    def name(self) -> str:
        """`registry/repository`, what kpack calls the repository name (ggcr `Repository.Name()`)."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What goes after `/manifests/`: the digest when there is one, else the tag."""
        if self.digest is not None:
            return self.digest
        return self.tag or DEFAULT_TAG

    @property
    def is_docker_hub(self) -> bool:
        return self.registry == DOCKER_HUB

    def with_tag(self, tag: str) -> Reference:
        """The same repository at `tag` (any digest dropped)."""
        if not TAG_PATTERN.fullmatch(tag):
            raise InvalidReferenceError(f"{self.name}:{tag}", f"invalid tag {tag!r}")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        """The same repository at `digest` (the tag dropped: a digest reference is immutable)."""
        validate_digest(digest, f"{self.name}@{digest}")
        return replace(self, tag=None, digest=digest)

    def in_repository(self, repository: str) -> Reference:
        """Another repository on the same registry (for cross-repository mounts), at the same tag/digest."""
        return parse_reference(f"{self.registry}/{repository}").with_identifier(self.identifier)

    def with_identifier(self, identifier: str) -> Reference:
        return self.with_digest(identifier) if ":" in identifier else self.with_tag(identifier)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _split_registry(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DOCKER_HUB, name


def parse_reference(text: str) -> Reference:
    """Parses and normalises an image reference; raises `InvalidReferenceError` naming `text` when it is invalid."""
    if not text or text != text.strip():
        raise InvalidReferenceError(text, "empty reference or surrounding whitespace")
    remainder, at, digest = text.partition("@")
    if at:
        validate_digest(digest, text)
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    tag: str | None = None
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not TAG_PATTERN.fullmatch(tag):
            raise InvalidReferenceError(text, f"invalid tag {tag!r}")
    registry, repository = _split_registry(remainder)
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if not REGISTRY_PATTERN.fullmatch(registry):
        raise InvalidReferenceError(text, f"invalid registry {registry!r}")
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not REPOSITORY_PATTERN.fullmatch(repository):
        hint = " (repository names are lowercase)" if repository.lower() != repository else ""
        raise InvalidReferenceError(text, f"invalid repository {repository!r}{hint}")
    if len(repository) > MAX_REPOSITORY_LENGTH:
        raise InvalidReferenceError(text, f"repository longer than {MAX_REPOSITORY_LENGTH} characters")
    if tag is None and not at:
        tag = DEFAULT_TAG
    return Reference(registry, repository, tag, digest if at else None)
