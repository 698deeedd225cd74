"""Reading git's failures as typed errors, and keeping secrets out of their messages."""

from __future__ import annotations

import pytest

from kpack_core.source import (
    GitAuthenticationError,
    GitCommandError,
    GitHostKeyError,
    GitRemoteError,
    GitRepositoryNotFoundError,
    GitUnreachableError,
)
from kpack_core.source.gitcli import GitResult, remote_error, scrub

URL = "https://git.example/app.git"


@pytest.mark.parametrize(
    ("stderr", "cls", "transient"),
    [
        (
            "fatal: could not read Username for 'https://git.example': terminal prompts disabled",
            GitAuthenticationError,
            False,
        ),
        ("fatal: Authentication failed for 'https://git.example/app.git/'", GitAuthenticationError, False),
        (
            "git@git.example: Permission denied (publickey).\nfatal: Could not read from remote repository.",
            GitAuthenticationError,
            False,
        ),
        ("Host key verification failed.\nfatal: Could not read from remote repository.", GitHostKeyError, False),
        ("fatal: repository 'https://git.example/app.git/' not found", GitRepositoryNotFoundError, False),
        ("fatal: 'org/app.git' does not appear to be a git repository", GitRepositoryNotFoundError, False),
        (
            "fatal: unable to access 'https://git.example/app.git/': Could not resolve host: git.example",
            GitUnreachableError,
            True,
        ),
        (
            "fatal: unable to access 'x': Failed to connect to 127.0.0.1 port 1: Couldn't connect to server",
            GitUnreachableError,
            True,
        ),
        ("fatal: unable to access 'x': The requested URL returned error: 502", GitUnreachableError, True),
        ("ssh: connect to host git.example port 22: Connection refused", GitUnreachableError, True),
        ("fatal: the remote end hung up unexpectedly\nfatal: early EOF", GitUnreachableError, True),
        ("fatal: something nobody expected", GitCommandError, True),
    ],
)
def test_failures_are_classified(stderr: str, cls: type[GitRemoteError], transient: bool) -> None:
    error = remote_error(URL, GitResult(128, "", stderr))
    assert type(error) is cls
    assert error.transient is transient
    assert error.url == URL
    assert str(error).startswith(f"git remote {URL}: ")


def test_unclassified_failure_names_the_exit_status() -> None:
    error = remote_error(URL, GitResult(3, "", "fatal: odd"))
    assert "exit status 3" in str(error)
    assert error.detail == "fatal: odd"


def test_scrub_masks_url_credentials_and_known_secrets_and_drops_hints() -> None:
    stderr = (
        "hint: use a token\nfatal: unable to access 'https://bob:pa55word@git.example/app.git/': server said pa55word\n"
    )
    detail = scrub(stderr, ["pa55word"])
    assert "pa55word" not in detail
    assert "hint" not in detail
    assert detail == "fatal: unable to access 'https://***@git.example/app.git/': server said ***"


def test_scrub_shortens_long_output() -> None:
    detail = scrub("x" * 1000)
    assert len(detail) == 300
    assert detail.endswith("...")


def test_remote_error_message_never_holds_the_password() -> None:
    error = remote_error(URL, GitResult(128, "", "fatal: Authentication failed for 'https://u:s3cret@h/x'"), ["s3cret"])
    assert "s3cret" not in str(error)
