"""The git keychain over secrets on the real apiserver, proved by `git ls-remote` against a git server with basic
auth. The credential reaches git through GIT_ASKPASS reading environment variables, never the command line."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from kpack_core.envtest.gitserver import GitServer
from kpack_core.keychains import ClientReader, ServiceAccountGitKeychain
from kpack_core.runtime.client import Client
from kpack_core.source.credentials import GitCredential, GitCredentialKind
from kpack_core.source.urls import git_host

from .objects import create_secret, create_service_account

pytestmark = pytest.mark.integration

PASSWORD = secrets.token_urlsafe(12)

# git asks twice: "Username for '…': " then "Password for '…': "; the answers come from the environment.
ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s' "$KPACK_TEST_GIT_USERNAME" ;;
  *) printf '%s' "$KPACK_TEST_GIT_PASSWORD" ;;
esac
"""


@pytest_asyncio.fixture(loop_scope="session")
async def private_server(tmp_path: Path) -> AsyncIterator[GitServer]:
    async with GitServer(tmp_path / "git", users={"alice": PASSWORD}) as server:
        yield server


async def ls_remote(url: str, credential: GitCredential | None, tmp_path: Path) -> tuple[int, str, str]:
    """`git ls-remote url` with the credential offered through GIT_ASKPASS; (exit code, stdout, stderr)."""
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(ASKPASS)
    askpass.chmod(askpass.stat().st_mode | stat.S_IXUSR)
    env = {
        **os.environ,
        "GIT_ASKPASS": str(askpass),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),  # no user config, no stored credentials
    }
    if credential is not None:
        env["KPACK_TEST_GIT_USERNAME"] = credential.username
        env["KPACK_TEST_GIT_PASSWORD"] = credential.password
    process = await asyncio.create_subprocess_exec(
        "git",
        "-c",
        "credential.helper=",
        "ls-remote",
        url,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.parametrize("domain_form", ["{host}", "http://{host}", "git@{host}"])
async def test_basic_auth_secret_lets_git_authenticate(
    client: Client, namespace: str, private_server: GitServer, tmp_path: Path, domain_form: str
) -> None:
    repository = await private_server.create_repository("private")
    sha = await repository.commit({"README": "hello"})
    host = git_host(repository.url)
    annotations = {"kpack.io/git": domain_form.format(host=host)}
    data: dict[str, str | bytes] = {"username": "alice", "password": PASSWORD}
    await create_secret(client, namespace, "git-creds", "kubernetes.io/basic-auth", data, annotations)
    # A deploy key for the same host sorts first but is no credential for an HTTP remote.
    ssh_data: dict[str, str | bytes] = {"ssh-privatekey": "not really a key"}
    await create_secret(client, namespace, "a-deploy-key", "kubernetes.io/ssh-auth", ssh_data, annotations)
    await create_service_account(client, namespace, "builder", secrets=["a-deploy-key", "git-creds"])

    credential = await ServiceAccountGitKeychain(ClientReader(client), namespace, "builder").resolve(repository.url)

    assert credential == GitCredential(
        GitCredentialKind.BASIC, "alice", PASSWORD, source=f"secret {namespace}/git-creds"
    )
    code, stdout, stderr = await ls_remote(repository.url, credential, tmp_path)
    assert code == 0, stderr
    assert f"{sha}\trefs/heads/main" in stdout.splitlines()


async def test_wrong_password_in_the_secret_is_refused_and_no_secret_is_anonymous(
    client: Client, namespace: str, private_server: GitServer, tmp_path: Path
) -> None:
    repository = await private_server.create_repository("refused")
    await repository.commit({"README": "hello"})
    annotations = {"kpack.io/git": private_server.url}
    data: dict[str, str | bytes] = {"username": "alice", "password": "wrong"}
    await create_secret(client, namespace, "wrong", "kubernetes.io/basic-auth", data, annotations)
    await create_service_account(client, namespace, "default", secrets=["wrong"])

    credential = await ServiceAccountGitKeychain(ClientReader(client), namespace).resolve(repository.url)
    assert credential is not None
    assert credential.source == f"secret {namespace}/wrong"
    code, _, stderr = await ls_remote(repository.url, credential, tmp_path)
    assert code != 0
    assert "Authentication failed" in stderr

    anonymous = await ServiceAccountGitKeychain(ClientReader(client), namespace, "nobody").resolve(repository.url)
    assert anonymous is None
    code, _, stderr = await ls_remote(repository.url, None, tmp_path)
    assert code != 0
    assert "Authentication failed" in stderr or "could not read Username" in stderr
