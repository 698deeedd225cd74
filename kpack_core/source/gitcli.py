"""Running the git CLI as an asyncio child process, and reading its failures as typed errors.

Each git runs in its own process group, so that when the caller is cancelled (a timeout, a shutdown) the whole
group — git and the `git-remote-http`/`ssh` it started — is killed and reaped, and no hanging server can keep a
process alive. Messages are read with `LC_ALL=C` (set by `GitSession`), so the patterns below are git's English.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kpack_core.source.errors import (
    GitAuthenticationError,
    GitCommandError,
    GitHostKeyError,
    GitRemoteError,
    GitRepositoryNotFoundError,
    GitUnreachableError,
)
from kpack_core.source.urls import redact_url

_MAX_DETAIL = 300

# (pattern, error class, message). First match wins; the order puts the specific before the generic.
_FAILURES: tuple[tuple[re.Pattern[str], type[GitRemoteError], str], ...] = (
    (
        re.compile(r"could not read (Username|Password)|terminal prompts disabled"),
        GitAuthenticationError,
        "authentication required, and no credentials were found for this remote",
    ),
    (
        re.compile(r"Authentication failed|HTTP 401|returned error: 40[13]"),
        GitAuthenticationError,
        "authentication failed",
    ),
    (
        re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|no matching host key"),
        GitHostKeyError,
        "ssh host key verification failed: the server's key is not a known host key",
    ),
    (re.compile(r"Permission denied \("), GitAuthenticationError, "ssh authentication failed"),
    (
        re.compile(r"repository '.*' not found|does not appear to be a git repository|returned error: 404"),
        GitRepositoryNotFoundError,
        "repository not found",
    ),
    (
        re.compile(
            r"Could not resolve host|Failed to connect|Couldn't connect|Connection refused|Connection timed out"
            r"|Connection reset|Operation timed out|Network is unreachable|No route to host|unable to access"
            r"|returned error: 5\d\d|Could not read from remote repository|early EOF|RPC failed"
            r"|Connection closed|ssh: connect to host"
        ),
        GitUnreachableError,
        "remote unreachable",
    ),
)


@dataclass(frozen=True)
class GitResult:
    """A finished git: exit status and decoded output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


async def run_git(args: Sequence[str], *, env: Mapping[str, str], cwd: Path, stdin: bytes | None = None) -> GitResult:
    """Runs `git args…` (fed `stdin`) and waits for it; on cancellation kills its process group and re-raises."""
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await process.communicate(stdin)
    except BaseException:
        _kill_group(process.pid)
        # Shielded so that a second cancellation cannot leave a zombie behind.
        await asyncio.shield(process.wait())
        raise
    returncode = process.returncode if process.returncode is not None else -1
    return GitResult(returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def _kill_group(pid: int) -> None:
    # The child made its own session (start_new_session), so its pid is its group's id: this reaches only the
    # processes this call started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """git's stderr made safe for a message: URL credentials masked, known secret values replaced, shortened."""
    cleaned = redact_url(text)
    for secret in secrets:
        if secret:
            cleaned = cleaned.replace(secret, "***")
    lines = [line.strip() for line in cleaned.splitlines() if line.strip() and not line.startswith("hint:")]
    detail = "; ".join(lines)
    return detail if len(detail) <= _MAX_DETAIL else detail[: _MAX_DETAIL - 3] + "..."


def remote_error(url: str, result: GitResult, secrets: Sequence[str] = ()) -> GitRemoteError:
    """The typed error for a git that failed talking to the remote at `url` (already redacted)."""
    detail = scrub(result.stderr, secrets)
    for pattern, cls, message in _FAILURES:
        if pattern.search(result.stderr):
            return cls(url, message, detail)
    return GitCommandError(url, f"git failed with exit status {result.returncode}", detail)
