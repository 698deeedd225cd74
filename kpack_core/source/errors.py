"""Typed source-resolution errors: the SourceResolver reconciler acts on the type, users read the message.

Three families, so the reconciler can keep kpack 0.4.0's behaviour where it wants it and say more where it can:

- `InvalidSourceError`: the spec itself is wrong (a malformed URL, an empty revision); `field` names the spec field.
  Retrying cannot help until the object changes.
- `GitRemoteError`: the remote could not be read (unreachable, timed out, authentication refused, SSH host key
  not known, no such repository). kpack 0.4.0 turned every one of these into a resolution of type `Unknown` and
  kept the previous status when the generation had already been observed. `transient` is True for the failures a
  retry can cure by itself (network, timeout, a server error); authentication, host key and not-found need a change
  of secret, configuration or spec.
- `GitRevisionError`: the remote was read, but the revision names no commit there (unknown, or an ambiguous short
  sha). kpack 0.4.0 assumed such a revision was a commit sha; we say so instead.

Messages name the URL (with any password in it masked) and the revision; they never contain a secret.
"""

from __future__ import annotations

from typing import ClassVar


class SourceError(Exception):
    """Base of every source-resolution error. `transient`: a retry alone may succeed."""

    transient: ClassVar[bool] = False


class InvalidSourceError(SourceError, ValueError):
    """A source spec field that cannot be used; `field` is its path (`spec.source.git.url`), `value` what it held."""

    def __init__(self, field: str, value: str, problem: str) -> None:
        super().__init__(f"{field}: invalid value {value!r}: {problem}")
        self.field = field
        self.value = value
        self.problem = problem


class InvalidCredentialError(SourceError):
    """A git credential that cannot be handed to git (a newline in a password, an empty private key)."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"git credential {source or '(unnamed)'}: {problem}")
        self.source = source


class GitRemoteError(SourceError):
    """The remote at `url` could not be read; `detail` is what git said (already free of secrets)."""

    def __init__(self, url: str, message: str, detail: str = "") -> None:
        super().__init__(f"git remote {url}: {message}" + (f": {detail}" if detail else ""))
        self.url = url
        self.detail = detail


class GitUnreachableError(GitRemoteError):
    """No answer: the host does not resolve, refuses or drops the connection, or the server failed (5xx)."""

    transient: ClassVar[bool] = True


class GitTimeoutError(GitUnreachableError):
    """The remote did not finish answering within the resolver's timeout; the git process was killed."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, f"no answer within {timeout:g}s")
        self.timeout = timeout


class GitAuthenticationError(GitRemoteError):
    """The remote asked for credentials and refused the ones given (or none were found for it)."""


class GitHostKeyError(GitRemoteError):
    """The SSH server's host key is not one of the known hosts the resolver was given (or has changed)."""


class GitRepositoryNotFoundError(GitRemoteError):
    """The server answered that there is no repository at this URL (some hosts also say so to a stranger)."""


class GitCommandError(GitRemoteError):
    """git failed in a way none of the other errors describes; treated as transient, so it is retried."""

    transient: ClassVar[bool] = True


class GitRevisionError(SourceError):
    """The remote was read but `revision` does not name one commit there."""

    def __init__(self, url: str, revision: str, message: str) -> None:
        super().__init__(f"git remote {url}: revision {revision!r} {message}")
        self.url = url
        self.revision = revision


class UnknownRevisionError(GitRevisionError):
    """No branch, tag, ref or commit of the remote matches the revision."""

    def __init__(self, url: str, revision: str) -> None:
        super().__init__(url, revision, "matches no branch, tag, ref or commit")


class AmbiguousRevisionError(GitRevisionError):
    """A short sha that is the prefix of more than one commit; `candidates` lists them."""

    def __init__(self, url: str, revision: str, candidates: tuple[str, ...]) -> None:
        super().__init__(url, revision, f"is ambiguous: it abbreviates {', '.join(candidates)}")
        self.candidates = candidates
