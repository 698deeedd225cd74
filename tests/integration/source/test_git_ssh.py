"""GitResolver over SSH against a real OpenSSH server on loopback: key authentication, host key policy, and
short shas fetched through the same ssh command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from kpack_core.envtest.gitserver import GitRepository, GitServer
from kpack_core.envtest.ports import LOOPBACK
from kpack_core.source import (
    GitAuthenticationError,
    GitCredential,
    GitCredentialKind,
    GitHostKeyError,
    GitResolver,
    GitResolverOptions,
    GitSourceType,
    SshOptions,
    StaticGitKeychain,
)

from .sshd import SshServer, keypair

pytestmark = pytest.mark.integration


@dataclass
class Setup:
    sshd: SshServer
    repo: GitRepository
    commits: tuple[str, str]
    key: bytes
    other_key: bytes

    @property
    def url(self) -> str:
        return self.sshd.url(self.repo.path)

    def keychain(self, key: bytes | None = None) -> StaticGitKeychain:
        credential = GitCredential(GitCredentialKind.SSH, private_key=key or self.key, source="secret test/ssh")
        return StaticGitKeychain({f"{LOOPBACK}:{self.sshd.port}": credential})


@pytest_asyncio.fixture(loop_scope="session")
async def setup(tmp_path: Path, git_server: GitServer, unique_name: str) -> AsyncIterator[Setup]:
    repo = await git_server.create_repository(unique_name)
    first = await repo.commit({"a": "1"})
    second = await repo.commit({"a": "2"})
    key, public = await keypair(tmp_path / "client_key")
    other_key, _ = await keypair(tmp_path / "other_key")
    async with SshServer(tmp_path / "sshd", authorized=[public]) as sshd:
        yield Setup(sshd, repo, (first, second), key, other_key)


def _resolver(tmp_path: Path, known_hosts: bytes | None = None) -> GitResolver:
    return GitResolver(tmp_path / "cache", GitResolverOptions(timeout=30, ssh=SshOptions(known_hosts=known_hosts)))


async def test_branch_over_ssh_with_a_private_key(setup: Setup, tmp_path: Path) -> None:
    resolved = await _resolver(tmp_path).resolve(setup.url, "main", keychain=setup.keychain())

    assert (resolved.revision, resolved.type) == (setup.commits[1], GitSourceType.BRANCH)


async def test_short_sha_over_ssh(setup: Setup, tmp_path: Path) -> None:
    resolved = await _resolver(tmp_path).resolve(setup.url, setup.commits[0][:7], keychain=setup.keychain())

    assert (resolved.revision, resolved.type) == (setup.commits[0], GitSourceType.COMMIT)


async def test_pinned_host_key_is_accepted(setup: Setup, tmp_path: Path) -> None:
    resolver = _resolver(tmp_path, known_hosts=setup.sshd.known_hosts)

    assert (await resolver.resolve(setup.url, "main", keychain=setup.keychain())).revision == setup.commits[1]


async def test_host_key_other_than_the_pinned_one_is_refused(setup: Setup, tmp_path: Path) -> None:
    _, stranger = await keypair(tmp_path / "stranger")
    key_type, key = stranger.split()[:2]
    known_hosts = f"[{LOOPBACK}]:{setup.sshd.port} ".encode() + key_type + b" " + key + b"\n"

    with pytest.raises(GitHostKeyError, match="not a known host key") as caught:
        await _resolver(tmp_path, known_hosts).resolve(setup.url, "main", keychain=setup.keychain())

    assert not caught.value.transient


async def test_key_the_server_does_not_know_is_refused(setup: Setup, tmp_path: Path) -> None:
    with pytest.raises(GitAuthenticationError, match="ssh authentication failed") as caught:
        await _resolver(tmp_path).resolve(setup.url, "main", keychain=setup.keychain(setup.other_key))

    assert not caught.value.transient
    assert "PRIVATE KEY" not in str(caught.value)


async def test_no_key_is_refused(setup: Setup, tmp_path: Path) -> None:
    with pytest.raises(GitAuthenticationError, match="Permission denied"):
        await _resolver(tmp_path).resolve(setup.url, "main", keychain=StaticGitKeychain())
