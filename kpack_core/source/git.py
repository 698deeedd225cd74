"""Git source resolution: a remote URL and a revision (branch, tag, ref, full or short sha) to one commit.

Why the git CLI rather than a Python implementation such as dulwich: it is what the build pods run, so a revision
resolves here exactly as it will be fetched there; it speaks every transport and protocol version (smart HTTP,
SSH, git://, protocol v2, partial clone filters) and honours proxies and CA settings the way operators expect;
and it adds no dependency (Debian's git is on every machine that builds). The cost is a process per command,
which is small next to the network round trip. How git is sealed from the machine's configuration and how
credentials reach it without touching a command line or a log: kpack_core.source.gitenv.

Resolution, in order:
1. `git ls-remote`: the advertised refs. The revision is matched under git's rules (kpack_core.source.refs);
   a match gives the commit (annotated tags peeled) and the type Branch (also `HEAD`), Tag, or Unknown for
   other refs, as kpack 0.4.0 classified them.
2. A full sha (40 or 64 hex digits) is a Commit. With `verify_commits` it must exist on the remote: advertised
   by a ref, already in the history cache, fetchable by id, or found in the remote's branches and tags.
3. A short sha is looked up in the remote's history (kpack_core.source.history), brought up to date first; it
   must abbreviate exactly one commit.
4. Anything else is an `UnknownRevisionError` (kpack 0.4.0 assumed it was a sha and built nothing).

Failures are typed (kpack_core.source.errors). For the SourceResolver reconciler:
- `GitRemoteError` is what kpack 0.4.0 reported as type Unknown. To keep its behaviour, on that error write
  `ResolvedGit.unknown(url, revision, sub_path)` unless `status.observedGeneration == metadata.generation`, in
  which case keep the previous status (a poll that fails must not wipe a good resolution); `error.transient`
  says whether to retry with backoff soon (network, timeout) or wait for a change (authentication, host key,
  not found).
- `GitRevisionError` and `InvalidSourceError` are permanent until the spec changes, `InvalidCredentialError`
  until the secret does: report them.
The whole resolution runs under one deadline (`timeout`); past it every git process is killed and a
`GitTimeoutError` (transient) names the URL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from kpack_core.source.credentials import GitCredential, GitKeychain
from kpack_core.source.errors import (
    AmbiguousRevisionError,
    GitCommandError,
    GitTimeoutError,
    InvalidSourceError,
    UnknownRevisionError,
)
from kpack_core.source.gitcli import remote_error, run_git
from kpack_core.source.gitenv import GitSession, SshOptions, applicable
from kpack_core.source.history import DEFAULT_MAX_REPOSITORIES, HistoryCache
from kpack_core.source.refs import (
    AdvertisedRef,
    LsRemoteParseError,
    advertised_commit,
    is_full_sha,
    is_short_sha,
    match_revision,
    parse_ls_remote,
)
from kpack_core.source.resolved import GitSourceType, ResolvedGit
from kpack_core.source.urls import GIT_URL_FIELD, GitUrl, parse_git_url

log = structlog.get_logger(__name__)

GIT_REVISION_FIELD = "spec.source.git.revision"
"""The spec field a revision comes from, named in validation errors."""


@dataclass(frozen=True)
class GitResolverOptions:
    """Settings of a GitResolver; every default is the one the controller runs with."""

    timeout: float = 60.0
    """Deadline in seconds for one resolution, every git command included; then the processes are killed."""
    verify_commits: bool = True
    """Check that a full sha exists on the remote (kpack 0.4.0 did not); off, any full sha is a Commit."""
    ssh: SshOptions = field(default_factory=SshOptions)
    """Host key policy and connect timeout for SSH remotes."""
    history_repositories: int = DEFAULT_MAX_REPOSITORIES
    """How many remotes' commit histories (for short and unadvertised shas) stay cached; the least recently used
    beyond that are deleted and fetched afresh when needed again."""

    def __post_init__(self) -> None:
        # Checked here rather than where each value is used, so the message names the option the user set.
        if not self.timeout > 0:
            raise ValueError(f"GitResolverOptions.timeout must be > 0 seconds, got {self.timeout}")
        if self.history_repositories < 1:
            raise ValueError(
                f"GitResolverOptions.history_repositories must be at least 1, got {self.history_repositories}"
            )


class GitResolver:
    """Resolves git revisions; `cache_dir` holds the history caches needed for short (and unadvertised) shas."""

    def __init__(self, cache_dir: Path, options: GitResolverOptions | None = None) -> None:
        self.options = options or GitResolverOptions()
        self.history = HistoryCache(cache_dir, max_repositories=self.options.history_repositories)

    async def resolve(
        self,
        url: str,
        revision: str,
        *,
        keychain: GitKeychain | None = None,
        sub_path: str | None = None,
    ) -> ResolvedGit:
        """The commit `revision` names on the remote at `url`, with credentials from `keychain` (anonymous when it
        has none for the URL, or none of the transport's kind). Raises a `SourceError` subclass."""
        remote = parse_git_url(url, GIT_URL_FIELD)
        check_revision(revision)
        credential = applicable(await keychain.resolve(url), remote) if keychain is not None else None
        try:
            async with asyncio.timeout(self.options.timeout):
                resolved = await self._resolve(remote, revision, credential, sub_path)
        except TimeoutError:
            log.info("git resolution timed out", remote=remote.redacted, timeout=self.options.timeout)
            raise GitTimeoutError(remote.redacted, self.options.timeout) from None
        log.debug("git revision resolved", remote=remote.redacted, revision=revision, commit=resolved.revision)
        return resolved

    async def _resolve(
        self, remote: GitUrl, revision: str, credential: GitCredential | None, sub_path: str | None
    ) -> ResolvedGit:
        async with GitSession(credential, self.options.ssh) as session:
            refs = await self._ls_remote(session, remote)
            ref = match_revision(refs, revision)
            if ref is not None:
                return ResolvedGit(remote.url, ref.commit, ref.type, sub_path, ref.name)
            sha = revision.lower()
            if is_full_sha(sha):
                if self.options.verify_commits and not advertised_commit(refs.values(), sha):
                    await self._verify_commit(session, remote, revision, sha)
                return ResolvedGit(remote.url, sha, GitSourceType.COMMIT, sub_path)
            if is_short_sha(sha):
                commit = await self._expand(session, remote, revision, sha)
                return ResolvedGit(remote.url, commit, GitSourceType.COMMIT, sub_path)
        raise UnknownRevisionError(remote.redacted, revision)

    async def _ls_remote(self, session: GitSession, remote: GitUrl) -> dict[str, AdvertisedRef]:
        result = await run_git(["ls-remote", "--end-of-options", remote.url], env=session.env(), cwd=session.directory)
        if not result.ok:
            secrets = (session.credential.password,) if session.credential is not None else ()
            raise remote_error(remote.redacted, result, secrets)
        try:
            return parse_ls_remote(result.stdout)
        except LsRemoteParseError as exc:
            raise GitCommandError(remote.redacted, "unreadable ls-remote answer", str(exc)) from exc

    async def _verify_commit(self, session: GitSession, remote: GitUrl, revision: str, sha: str) -> None:
        """Raises UnknownRevisionError unless commit `sha` exists on the remote."""
        history = self.history
        async with history.using(remote):
            if await history.commits_with_prefix(session, remote, sha, sync=False):
                return
            if await history.fetch_commit(session, remote, sha) and await history.commits_with_prefix(
                session, remote, sha, sync=False
            ):
                return
            if await history.commits_with_prefix(session, remote, sha, sync=True):
                return
        raise UnknownRevisionError(remote.redacted, revision)

    async def _expand(self, session: GitSession, remote: GitUrl, revision: str, prefix: str) -> str:
        """The one commit of the remote's branches and tags that `prefix` abbreviates."""
        async with self.history.using(remote):
            commits = await self.history.commits_with_prefix(session, remote, prefix, sync=True)
        if not commits:
            raise UnknownRevisionError(remote.redacted, revision)
        if len(commits) > 1:
            raise AmbiguousRevisionError(remote.redacted, revision, tuple(commits))
        return commits[0]


def check_revision(revision: str, field: str = GIT_REVISION_FIELD) -> None:
    """Refuses a revision git could read as an option or that no ref name can hold; names `field`."""
    if not revision or revision != revision.strip():
        raise InvalidSourceError(field, revision, "empty, or surrounded by whitespace")
    if revision.startswith("-"):
        raise InvalidSourceError(field, revision, "must not start with '-'")
    if any(ord(char) < 0x20 or char in " ~^:?*[\\\x7f" for char in revision):
        raise InvalidSourceError(field, revision, "contains a character a ref name cannot hold")
