"""Source resolution: git revisions, blob URLs and registry images resolved to exact, immutable references.

`GitResolver` turns a branch, tag, ref or sha into a commit with the git CLI (credentials from a `GitKeychain`);
`resolve_blob` checks an archive URL; `resolve_registry_image` pins an image to its digest. Each returns a
`ResolvedGit`/`ResolvedBlob`/`ResolvedRegistry` whose `to_api()` is the SourceResolver's `status.source`, or raises
a `SourceError` subclass (kpack_core.source.errors says which failures are transient).
"""

from kpack_core.source.blob import BLOB_URL_FIELD, resolve_blob
from kpack_core.source.credentials import GitCredential, GitCredentialKind, GitKeychain, StaticGitKeychain
from kpack_core.source.errors import (
    AmbiguousRevisionError,
    GitAuthenticationError,
    GitCommandError,
    GitHostKeyError,
    GitRemoteError,
    GitRepositoryNotFoundError,
    GitRevisionError,
    GitTimeoutError,
    GitUnreachableError,
    InvalidCredentialError,
    InvalidSourceError,
    SourceError,
    UnknownRevisionError,
)
from kpack_core.source.git import GIT_REVISION_FIELD, GitResolver, GitResolverOptions
from kpack_core.source.gitenv import SshOptions
from kpack_core.source.registry import REGISTRY_IMAGE_FIELD, resolve_registry_image
from kpack_core.source.resolved import GitSourceType, ResolvedBlob, ResolvedGit, ResolvedRegistry, ResolvedSource
from kpack_core.source.urls import GIT_URL_FIELD, GitTransport, GitUrl, git_host, parse_git_url, redact_url

__all__ = [
    "BLOB_URL_FIELD",
    "GIT_REVISION_FIELD",
    "GIT_URL_FIELD",
    "REGISTRY_IMAGE_FIELD",
    "AmbiguousRevisionError",
    "GitAuthenticationError",
    "GitCommandError",
    "GitCredential",
    "GitCredentialKind",
    "GitHostKeyError",
    "GitKeychain",
    "GitRemoteError",
    "GitRepositoryNotFoundError",
    "GitResolver",
    "GitResolverOptions",
    "GitRevisionError",
    "GitSourceType",
    "GitTimeoutError",
    "GitTransport",
    "GitUnreachableError",
    "GitUrl",
    "InvalidCredentialError",
    "InvalidSourceError",
    "ResolvedBlob",
    "ResolvedGit",
    "ResolvedRegistry",
    "ResolvedSource",
    "SourceError",
    "SshOptions",
    "StaticGitKeychain",
    "UnknownRevisionError",
    "git_host",
    "parse_git_url",
    "redact_url",
    "resolve_blob",
    "resolve_registry_image",
]
