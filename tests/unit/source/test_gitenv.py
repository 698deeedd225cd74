"""The sealed git environment: no machine config, no prompt, credentials only through the child's environment."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from kpack_core.source import GitCredential, GitCredentialKind, InvalidCredentialError, SshOptions, parse_git_url
from kpack_core.source.gitenv import (
    CREDENTIAL_HELPER,
    PASSWORD_VARIABLE,
    USERNAME_VARIABLE,
    GitSession,
    applicable,
    check_credential,
)

BASIC = GitCredential(GitCredentialKind.BASIC, "alice", "pa55word", source="secret ns/git-basic")
KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
SSH = GitCredential(GitCredentialKind.SSH, private_key=KEY, source="secret ns/git-ssh")


def _config(env: dict[str, str]) -> list[tuple[str, str]]:
    count = int(env["GIT_CONFIG_COUNT"])
    return [(env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"]) for i in range(count)]


async def test_environment_is_sealed_from_machine_and_user_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'url.http://evil/.insteadof'='https://'")
    monkeypatch.setenv("GIT_ASKPASS", "/usr/bin/some-askpass")
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    async with GitSession(None) as session:
        env = session.env({"remote.origin.url": "https://git.example/app.git"})
        assert env["HOME"] == str(session.directory)
        assert env["GIT_CONFIG_NOSYSTEM"] == "1"
        assert env["GIT_CONFIG_GLOBAL"] == os.devnull
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        assert env["GIT_ALLOW_PROTOCOL"] == "http:https:ssh:git"
        assert env["LC_ALL"] == "C"
        assert "GIT_CONFIG_PARAMETERS" not in env
        assert "GIT_ASKPASS" not in env
        assert env["https_proxy"] == "http://proxy.example:3128"
        assert ("remote.origin.url", "https://git.example/app.git") in _config(env)
        # No credential: the helper list is reset and nothing is added.
        assert [value for key, value in _config(env) if key == "credential.helper"] == [""]
        assert USERNAME_VARIABLE not in env


async def test_basic_credential_travels_in_environment_only() -> None:
    async with GitSession(BASIC) as session:
        env = session.env()
        assert env[USERNAME_VARIABLE] == "alice"
        assert env[PASSWORD_VARIABLE] == "pa55word"
        assert [value for key, value in _config(env) if key == "credential.helper"] == ["", CREDENTIAL_HELPER]
        settings = " ".join(f"{key}={value}" for key, value in _config(env))
        assert "pa55word" not in settings
        assert "pa55word" not in env["GIT_SSH_COMMAND"]


async def _helper(action: str, env: dict[str, str]) -> str:
    # git runs a `!` helper as `sh -c '<helper> "$@"' <helper> <action>`; do the same.
    process = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        CREDENTIAL_HELPER.removeprefix("!") + ' "$@"',
        "helper",
        action,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate(b"protocol=https\nhost=git.example\n\n")
    assert process.returncode == 0
    return out.decode()


async def test_credential_helper_answers_get_and_ignores_store_and_erase() -> None:
    async with GitSession(BASIC) as session:
        env = session.env()
        assert await _helper("get", env) == "username=alice\npassword=pa55word\n"
        assert await _helper("erase", env) == ""
        assert await _helper("store", env) == ""


async def test_ssh_key_is_written_0600_and_used_with_identities_only() -> None:
    async with GitSession(SSH) as session:
        key_file = session.directory / "identity"
        assert key_file.read_bytes() == KEY + b"\n"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(session.directory.stat().st_mode) == 0o700
        command = session.env()["GIT_SSH_COMMAND"]
        assert f"-i {key_file}" in command
        for option in ("IdentitiesOnly=yes", "BatchMode=yes", "IdentityAgent=none", "StrictHostKeyChecking=accept-new"):
            assert option in command
        assert "-F /dev/null" in command
        directory = session.directory
    assert not directory.exists()


async def test_known_hosts_make_host_key_checking_strict() -> None:
    async with GitSession(None, SshOptions(known_hosts=b"git.example ssh-ed25519 AAAA\n")) as session:
        command = session.env()["GIT_SSH_COMMAND"]
        assert "StrictHostKeyChecking=yes" in command
        assert "IdentityFile=none" in command
        assert (session.directory / "known_hosts").read_bytes() == b"git.example ssh-ed25519 AAAA\n"


def test_session_outside_async_with_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="outside `async with`"):
        _ = GitSession(None).directory


@pytest.mark.parametrize(
    ("credential", "problem"),
    [
        (GitCredential(GitCredentialKind.BASIC, "alice", "pa\nss", source="secret ns/a"), "password contains a line"),
        (GitCredential(GitCredentialKind.BASIC, "al\rice", "x", source="secret ns/a"), "username contains a line"),
        (GitCredential(GitCredentialKind.SSH, private_key=b"  \n", source="secret ns/a"), "private key is empty"),
    ],
)
def test_unusable_credentials_are_refused_naming_their_source(credential: GitCredential, problem: str) -> None:
    with pytest.raises(InvalidCredentialError, match="secret ns/a") as caught:
        check_credential(credential)
    assert problem in str(caught.value)
    with pytest.raises(InvalidCredentialError):
        GitSession(credential)


@pytest.mark.parametrize(
    ("url", "credential", "used"),
    [
        ("https://git.example/app", BASIC, True),
        ("https://git.example/app", SSH, False),
        ("git@git.example:app", SSH, True),
        ("ssh://git@git.example/app", BASIC, False),
        ("git://git.example/app", BASIC, False),
        ("https://git.example/app", None, False),
    ],
)
def test_credential_applies_only_to_its_transport(url: str, credential: GitCredential | None, used: bool) -> None:
    assert applicable(credential, parse_git_url(url)) == (credential if used else None)


def test_credential_repr_hides_secrets() -> None:
    assert "pa55word" not in repr(BASIC)
    assert "OPENSSH" not in repr(SSH)
