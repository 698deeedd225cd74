"""Git remote URLs: what may reach git, the host credentials match, and masking for messages."""

from __future__ import annotations

import pytest

from kpack_core.source import GitTransport, InvalidSourceError, git_host, parse_git_url, redact_url


@pytest.mark.parametrize(
    ("url", "transport", "host"),
    [
        ("https://github.com/org/app", GitTransport.HTTP, "github.com"),
        ("http://127.0.0.1:8080/app.git", GitTransport.HTTP, "127.0.0.1:8080"),
        ("https://x-access-token:tok@github.com/org/app.git", GitTransport.HTTP, "github.com"),
        ("ssh://git@github.com/org/app.git", GitTransport.SSH, "github.com"),
        ("ssh://git@gitlab.example:2222/org/app.git", GitTransport.SSH, "gitlab.example:2222"),
        ("git+ssh://git@github.com/org/app.git", GitTransport.SSH, "github.com"),
        ("git@github.com:org/app.git", GitTransport.SSH, "github.com"),
        ("github.com:org/app.git", GitTransport.SSH, "github.com"),
        ("git://git.kernel.org/pub/scm/git/git.git", GitTransport.GIT, "git.kernel.org"),
        ("HTTPS://github.com/org/app", GitTransport.HTTP, "github.com"),
    ],
)
def test_accepted_urls(url: str, transport: GitTransport, host: str) -> None:
    parsed = parse_git_url(url)
    assert (parsed.url, parsed.transport, parsed.host) == (url, transport, host)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        (" https://github.com/org/app", "whitespace"),
        ("https://github.com/org/a pp", "whitespace or control"),
        ("https://github.com/org/app\n", "whitespace"),
        ("https://github.com/org/\x01app", "control"),
        ("-uhttps://github.com/org/app", "must not start with '-'"),
        ("ext::sh -c touch% /tmp/pwned", "whitespace"),
        ("ext::sh", "remote-helper"),
        ("fd::17", "remote-helper"),
        ("file:///etc", "file://"),
        ("/srv/git/app.git", "local repositories"),
        ("./app", "local repositories"),
        ("ftp://example.com/app.git", "unsupported scheme 'ftp'"),
        ("https:///org/app", "no host"),
        ("ssh://-oProxyCommand=evil/app", "no host"),
        ("https://github.com", "no repository path"),
        ("https://github.com/", "no repository path"),
        ("https://github.com:99999/org/app", "out of range"),
        ("git@github.com:", "expected user@host:path"),
    ],
)
def test_rejected_urls_name_the_field(url: str, problem: str) -> None:
    with pytest.raises(InvalidSourceError, match=r"spec\.source\.git\.url") as caught:
        parse_git_url(url)
    assert problem in caught.value.problem
    assert caught.value.field == "spec.source.git.url"


def test_rejected_url_message_masks_credentials() -> None:
    with pytest.raises(InvalidSourceError) as caught:
        parse_git_url("https://alice:hunter2@github.com")
    assert "hunter2" not in str(caught.value)
    assert "https://***@github.com" in str(caught.value)


def test_field_can_be_named_by_the_caller() -> None:
    with pytest.raises(InvalidSourceError, match=r"^spec\.build\.git\.url: "):
        parse_git_url("", field="spec.build.git.url")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://alice:hunter2@github.com/a", "https://***@github.com/a"),
        ("https://ghp_token@github.com/a", "https://***@github.com/a"),
        (
            "fatal: Authentication failed for 'http://u:p@h:1/r.git/'",
            "fatal: Authentication failed for 'http://***@h:1/r.git/'",
        ),
        ("git@github.com:org/app.git", "git@github.com:org/app.git"),
        ("https://github.com/a@b", "https://github.com/a@b"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("git@github.com:org/app.git", "github.com"),
        ("https://user:pw@gitlab.example:8443/app", "gitlab.example:8443"),
        ("/local/path", ""),
    ],
)
def test_git_host(url: str, host: str) -> None:
    assert git_host(url) == host
