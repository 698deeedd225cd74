"""Resolved sources: what each resolver returns, and its SourceResolver `status.source` form (kpack-api.md §2.2).

Plain frozen values, so the resolvers know nothing of the API models; `to_api()` gives the model the
SourceResolver reconciler writes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kpack_core.apis.base import LocalObjectReference
from kpack_core.apis.core import (
    ResolvedBlobSource,
    ResolvedGitSource,
    ResolvedRegistrySource,
    ResolvedSourceConfig,
)


class GitSourceType(enum.StrEnum):
    """What a git revision named; `status.source.git.type`."""

    BRANCH = "Branch"
    """A branch (or the remote's HEAD): polled for new commits."""
    TAG = "Tag"
    """A tag: polled, since tags can be moved."""
    COMMIT = "Commit"
    """A commit sha: never polled."""
    UNKNOWN = "Unknown"
    """Another kind of ref (`refs/pull/1/head`), or, from `ResolvedGit.unknown`, a remote that could not be read."""

    @property
    def pollable(self) -> bool:
        """True for Branch and Tag, the types the SourceResolver polls (condition `ActivePolling`)."""
        return self in (GitSourceType.BRANCH, GitSourceType.TAG)


@dataclass(frozen=True)
class ResolvedGit:
    """A git revision resolved to a commit. `revision` is the commit sha (the revision as given for `unknown`);
    `ref` the advertised ref that matched, empty when the revision was a sha."""

    url: str
    revision: str
    type: GitSourceType
    sub_path: str | None = None
    ref: str = ""

    @classmethod
    def unknown(cls, url: str, revision: str, sub_path: str | None = None) -> ResolvedGit:
        """kpack 0.4.0's result for a remote it could not read: the revision as given, type Unknown. The
        reconciler builds it from a `GitRemoteError` when it follows kpack (see kpack_core.source.git)."""
        return cls(url=url, revision=revision, type=GitSourceType.UNKNOWN, sub_path=sub_path)

    def to_api(self) -> ResolvedSourceConfig:
        git = ResolvedGitSource(url=self.url, revision=self.revision, type=self.type.value)
        if self.sub_path:
            git.sub_path = self.sub_path
        return ResolvedSourceConfig(git=git)


@dataclass(frozen=True)
class ResolvedBlob:
    """A blob source: the URL, checked but not fetched."""

    url: str
    sub_path: str | None = None

    def to_api(self) -> ResolvedSourceConfig:
        blob = ResolvedBlobSource(url=self.url)
        if self.sub_path:
            blob.sub_path = self.sub_path
        return ResolvedSourceConfig(blob=blob)


@dataclass(frozen=True)
class ResolvedRegistry:
    """A registry source resolved to `image` = `registry/repository@sha256:...`."""

    image: str
    image_pull_secrets: tuple[str, ...] = ()
    sub_path: str | None = None

    def to_api(self) -> ResolvedSourceConfig:
        registry = ResolvedRegistrySource(image=self.image)
        if self.sub_path:
            registry.sub_path = self.sub_path
        if self.image_pull_secrets:
            registry.image_pull_secrets = [LocalObjectReference(name=name) for name in self.image_pull_secrets]
        return ResolvedSourceConfig(registry=registry)


ResolvedSource = ResolvedGit | ResolvedBlob | ResolvedRegistry
"""Any resolver's result."""
