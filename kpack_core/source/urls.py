"""Git remote URLs: the host a credential is matched against (kpack-controllers.md §0.7), what is allowed to reach
git, and how a URL is shown in messages.

scp-like remotes (`git@github.com:org/repo.git`) name the host before the colon; every other form is a URL.
The controller runs git on URLs that users write, so only network transports are allowed: a local path or
`file://` would read the controller's own filesystem, and `<helper>::<address>` (e.g. `ext::`) runs a program.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from kpack_core.source.errors import InvalidSourceError

_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?!//)(?P<path>.*)$")
# `<transport>::<address>` runs git-remote-<transport>; git gives it precedence over the scp-like form.
_REMOTE_HELPER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*::")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")

GIT_URL_FIELD = "spec.source.git.url"
"""The spec field a git URL comes from, named in validation errors."""


class GitTransport(enum.Enum):
    """How git reaches a remote; decides which kind of credential applies."""

    HTTP = "http"
    """http:// and https://: basic-auth credentials."""
    SSH = "ssh"
    """ssh:// and scp-like `user@host:path`: an SSH private key."""
    GIT = "git"
    """git:// (the unauthenticated git daemon): no credentials."""


_SCHEMES = {
    "http": GitTransport.HTTP,
    "https": GitTransport.HTTP,
    "ssh": GitTransport.SSH,
    "git+ssh": GitTransport.SSH,
    "ssh+git": GitTransport.SSH,
    "git": GitTransport.GIT,
}


@dataclass(frozen=True)
class GitUrl:
    """A validated git remote URL. `url` is exactly what was given (git gets it unchanged)."""

    url: str
    transport: GitTransport
    host: str

    @property
    def redacted(self) -> str:
        """The URL for messages and logs, with credentials in it masked."""
        return redact_url(self.url)


def git_host(url: str) -> str:
    """`host[:port]` of a git remote URL, scp-like or not; empty for a local path."""
    if "://" not in url:
        match = _SCP_LIKE.match(url)
        return match.group("host") if match else ""
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def redact_url(text: str) -> str:
    """`text` with the user information of every `scheme://user:password@` masked (`scheme://***@`), since
    tokens are often written into https URLs, as username or password. scp-like `git@host:` is left alone."""
    return _USERINFO.sub(lambda match: f"{match.group('scheme')}***@", text)


def parse_git_url(url: str, field: str = GIT_URL_FIELD) -> GitUrl:
    """Validates a remote URL; raises `InvalidSourceError` naming `field` when git must not be run on it."""
    if not url or url != url.strip():
        raise _invalid(field, url, "empty, or surrounded by whitespace")
    if _CONTROL.search(url) or " " in url:
        raise _invalid(field, url, "contains whitespace or control characters")
    if url.startswith("-"):
        raise _invalid(field, url, "must not start with '-'")
    if _REMOTE_HELPER.match(url):
        raise _invalid(field, url, "remote-helper transports (<transport>::<address>) are not allowed")
    if "://" in url:
        return _parse_scheme_url(url, field)
    match = _SCP_LIKE.match(url)
    if match is None:
        raise _invalid(field, url, "local repositories are not allowed; use an http(s), ssh or git URL")
    host, path = match.group("host"), match.group("path")
    if host.startswith("-") or not path:
        raise _invalid(field, url, "expected user@host:path")
    return GitUrl(url, GitTransport.SSH, host)


def _invalid(field: str, url: str, problem: str) -> InvalidSourceError:
    return InvalidSourceError(field, redact_url(url), problem)


def _parse_scheme_url(url: str, field: str) -> GitUrl:
    scheme = url.split("://", 1)[0].lower()
    if scheme == "file":
        raise _invalid(field, url, "local repositories (file://) are not allowed")
    transport = _SCHEMES.get(scheme)
    if transport is None:
        raise _invalid(field, url, f"unsupported scheme {scheme!r}; use http, https, ssh or git")
    try:
        parts = urlsplit(url)
        # .port raises ValueError for a port that is not a number in range.
        _ = parts.port
    except ValueError as exc:
        raise _invalid(field, url, str(exc)) from exc
    host = parts.hostname or ""
    if not host or host.startswith("-"):
        raise _invalid(field, url, "no host")
    if parts.path in ("", "/"):
        raise _invalid(field, url, "no repository path")
    return GitUrl(url, transport, git_host(url))
