"""Git credentials: what a git keychain hands the source resolver for one remote URL.

The resolver (kpack_core.source.git) only knows this protocol; kpack_core.keychains builds the Kubernetes-backed
keychain (service account secrets annotated `kpack.io/git`) on it, and tests use `StaticGitKeychain`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class GitCredentialKind(enum.Enum):
    BASIC = "basic"
    """Username and password (a `kubernetes.io/basic-auth` secret), for HTTP(S) remotes."""
    SSH = "ssh"
    """A private key (a `kubernetes.io/ssh-auth` secret's `ssh-privatekey`), for SSH remotes."""


@dataclass(frozen=True)
class GitCredential:
    """One credential for a git remote. `source` names where it came from (`secret ns/name`) for messages;
    the secret values never appear in repr or logs."""

    kind: GitCredentialKind
    username: str = ""
    password: str = field(default="", repr=False)
    private_key: bytes = field(default=b"", repr=False)
    source: str = ""


class GitKeychain(Protocol):
    """Finds the credential for a remote URL, or None to try anonymously."""

    async def resolve(self, url: str) -> GitCredential | None: ...


class StaticGitKeychain:
    """Credentials by remote host (`github.com`, `127.0.0.1:8080`): a keychain for tests and local runs."""

    def __init__(self, credentials: Mapping[str, GitCredential] | None = None) -> None:
        self._by_host = dict(credentials or {})

    async def resolve(self, url: str) -> GitCredential | None:
        from kpack_core.source.urls import git_host

        return self._by_host.get(git_host(url))
