"""Semantic versions as kpack's store lookup reads them (Masterminds/semver): lenient parsing (`v` prefix, missing
minor or patch), precedence by SemVer 2.0 (a pre-release is lower than its release, build metadata is ignored).

Only used to pick the highest version of a buildpack; anything else that does not parse is the caller's error.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_VERSION = re.compile(
    r"v?(?P<major>0|[1-9][0-9]*)(?:\.(?P<minor>0|[1-9][0-9]*))?(?:\.(?P<patch>0|[1-9][0-9]*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    """A parsed version; compares by SemVer precedence."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    def _core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        if self._core() != other._core():
            return self._core() < other._core()
        # A release outranks any of its pre-releases.
        if not self.prerelease or not other.prerelease:
            return bool(self.prerelease) and not other.prerelease
        return _prerelease_key(self.prerelease) < _prerelease_key(other.prerelease)


def _prerelease_key(parts: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    # Numeric identifiers rank below alphanumeric ones and compare as numbers; a shorter prefix ranks lower.
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts)


def parse_version(text: str) -> Version | None:
    """The version, or None when `text` is not a semantic version."""
    match = _VERSION.fullmatch(text)
    if match is None:
        return None
    pre = match.group("pre")
    return Version(
        int(match.group("major")),
        int(match.group("minor") or 0),
        int(match.group("patch") or 0),
        tuple(pre.split(".")) if pre else (),
    )


def parse_api(text: str) -> tuple[int, int] | None:
    """A buildpack or platform API version (`0.5`), or None when it is not `<major>.<minor>`."""
    match = re.fullmatch(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None
