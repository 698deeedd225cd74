"""Git credentials from a service account's secrets, as kpack's git keychain (spec §0.7).

Candidates are the service account's `kubernetes.io/basic-auth` and `kubernetes.io/ssh-auth` secrets annotated
`kpack.io/git: <domain>`, tried sorted by secret name; the first whose domain is the remote's host (`host`,
`https://host`, `http://host` or `git@host`) and whose kind the transport accepts wins. Username and password go
to HTTP(S) remotes only; an SSH key (`ssh-privatekey`) to `ssh://` and scp-like (`user@host:path`) remotes only,
with the username taken from the URL (`git` when it names none). No match: None, and the fetch goes anonymous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kpack_core.keychains.errors import SecretFormatError
from kpack_core.keychains.reader import DEFAULT_SERVICE_ACCOUNT, SecretReader
from kpack_core.keychains.secrets import (
    BASIC_AUTH_TYPE,
    GIT_ANNOTATION,
    PASSWORD_KEY,
    SSH_AUTH_TYPE,
    SSH_PRIVATE_KEY_KEY,
    USERNAME_KEY,
    annotation,
    secret_data,
    secret_name,
    secret_source,
    secret_text,
    secret_type,
)
from kpack_core.keychains.service_account import service_account_secrets
from kpack_core.keychains.snapshot import Snapshot
from kpack_core.source.credentials import GitCredential, GitCredentialKind
from kpack_core.source.urls import git_host

DEFAULT_SSH_USER = "git"

# `[user@]host:path` with no `/` before the colon and no `//` after it: git's scp-like syntax.
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?!//)")
_HTTP_SCHEMES = frozenset({"http", "https"})
_SSH_SCHEMES = frozenset({"ssh", "git+ssh", "ssh+git"})


@dataclass(frozen=True)
class GitTransport:
    """What a remote URL allows: its kind of credential and, for SSH, the user it names."""

    kind: GitCredentialKind
    ssh_user: str = ""


def git_transport(url: str) -> GitTransport | None:
    """BASIC for http(s) URLs, SSH (with the URL's user, default `git`) for ssh:// and scp-like ones; None for
    anything else (git://, file paths), which takes no credentials."""
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in _HTTP_SCHEMES:
            return GitTransport(GitCredentialKind.BASIC)
        if scheme in _SSH_SCHEMES:
            return GitTransport(GitCredentialKind.SSH, parts.username or DEFAULT_SSH_USER)
        return None
    match = _SCP_LIKE.match(url)
    if match is None:
        return None
    return GitTransport(GitCredentialKind.SSH, match.group("user") or DEFAULT_SSH_USER)


def git_domain_matches(domain: str, host: str) -> bool:
    """Whether a `kpack.io/git` annotation names the remote host."""
    return bool(host) and domain in (host, f"https://{host}", f"http://{host}", f"git@{host}")


@dataclass(frozen=True)
class GitSecret:
    """One candidate: the secret's name (the sort key), its annotated domain and its credential (for SSH without
    the username, which comes from the URL)."""

    name: str
    domain: str
    credential: GitCredential


def git_secret(secret: Mapping[str, Any]) -> GitSecret | None:
    """The candidate a secret makes, or None when it is no annotated basic-auth or ssh-auth secret."""
    domain = annotation(secret, GIT_ANNOTATION)
    kind = secret_type(secret)
    if not domain or kind not in (BASIC_AUTH_TYPE, SSH_AUTH_TYPE):
        return None
    source = secret_source(secret)
    if kind == BASIC_AUTH_TYPE:
        username, password = secret_text(secret, USERNAME_KEY), secret_text(secret, PASSWORD_KEY)
        credential = GitCredential(GitCredentialKind.BASIC, username=username, password=password, source=source)
    else:
        key = secret_data(secret, SSH_PRIVATE_KEY_KEY)
        if not key:
            raise SecretFormatError(source, SSH_PRIVATE_KEY_KEY, "missing or empty in an ssh-auth secret")
        credential = GitCredential(GitCredentialKind.SSH, private_key=key, source=source)
    return GitSecret(secret_name(secret), domain, credential)


def git_secrets(secrets: Iterable[Mapping[str, Any]]) -> list[GitSecret]:
    """The candidates among `secrets`, sorted by secret name (the order kpack tries them in)."""
    candidates = [candidate for candidate in map(git_secret, secrets) if candidate is not None]
    return sorted(candidates, key=lambda candidate: candidate.name)


def match_git_credential(candidates: Iterable[GitSecret], url: str) -> GitCredential | None:
    """The first candidate (in the order given) for `url`, with the SSH username filled in from the URL."""
    transport = git_transport(url)
    if transport is None:
        return None
    host = git_host(url)
    for candidate in candidates:
        credential = candidate.credential
        if credential.kind is transport.kind and git_domain_matches(candidate.domain, host):
            if credential.kind is GitCredentialKind.SSH:
                return GitCredential(
                    GitCredentialKind.SSH,
                    username=transport.ssh_user,
                    private_key=credential.private_key,
                    source=credential.source,
                )
            return credential
    return None


class ServiceAccountGitKeychain:
    """The `GitKeychain` of a namespace's service account (default `default`): a snapshot of its annotated git
    secrets, read on first use. Missing account: no credentials; missing secrets: skipped; malformed: raises."""

    def __init__(self, reader: SecretReader, namespace: str, service_account: str = DEFAULT_SERVICE_ACCOUNT) -> None:
        self.reader = reader
        self.namespace = namespace
        self.service_account = service_account or DEFAULT_SERVICE_ACCOUNT
        self._candidates = Snapshot(self._load)

    def __repr__(self) -> str:
        return f"ServiceAccountGitKeychain({self.namespace}/{self.service_account})"

    async def _load(self) -> list[GitSecret]:
        if not self.namespace:
            return []
        return git_secrets(await service_account_secrets(self.reader, self.namespace, self.service_account))

    def reset(self) -> None:
        self._candidates.reset()

    async def resolve(self, url: str) -> GitCredential | None:
        return match_git_credential(await self._candidates.get(), url)
