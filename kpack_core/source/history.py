"""Commit history of remotes, cached in one bare repository per remote, for what `ls-remote` cannot answer: which
commit a short sha abbreviates, and whether a full sha that no ref points at exists.

The cache is a partial clone holding commits only (`--filter=tree:0`; a server that does not support filters
sends everything, which is only slower). Branches and tags are fetched with `--prune`, so a fetch after the first
transfers only what is new. The remote's URL is never written into the repository (it may carry a token): fetches
get it as `remote.origin.url` in the child's environment, and local commands get no URL at all, so a partial
clone's lazy fetch of a missing object cannot reach the network behind our back.

A resolution holds its remote's repository with `using(remote)`: one lock per repository serialises the git
processes of this controller on it (a leader-elected controller is the only writer), and a held repository is never
evicted. Repositories are named by a hash of the URL. The cache is bounded: each use marks its repository (the
directory's mtime), and past `max_repositories` the least recently used ones nobody holds are deleted, so the
directory follows the remotes in use rather than every remote ever resolved by sha; an evicted remote is simply
fetched afresh next time. A repository left damaged by a killed fetch is deleted too. Locks live only while held or
awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
from collections import Counter
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import structlog

from kpack_core.source.errors import GitCommandError
from kpack_core.source.gitcli import GitResult, remote_error, run_git, scrub
from kpack_core.source.gitenv import GitSession
from kpack_core.source.urls import GitUrl

log = structlog.get_logger(__name__)

HISTORY_FILTER = "tree:0"
REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
_REMOTE = "origin"
# Answers of a server asked for an object it does not have, or will not give out by id.
_NOT_SERVED = ("not our ref", "couldn't find remote ref", "unadvertised object", "no such remote ref")


DEFAULT_MAX_REPOSITORIES = 64


class HistoryCache:
    """Bare repositories under `directory`, one per remote URL, at most `max_repositories` kept once unused."""

    def __init__(self, directory: Path, *, max_repositories: int = DEFAULT_MAX_REPOSITORIES) -> None:
        if max_repositories < 1:
            raise ValueError(f"max_repositories must be at least 1, got {max_repositories}")
        self.directory = directory
        self.max_repositories = max_repositories
        self._locks: dict[Path, asyncio.Lock] = {}
        self._holders: Counter[Path] = Counter()

    def path_for(self, remote: GitUrl) -> Path:
        """The repository of a remote: a hash of its URL, so no credential in a URL reaches a file name."""
        return self.directory / (hashlib.sha256(remote.url.encode()).hexdigest()[:32] + ".git")

    @contextlib.asynccontextmanager
    async def using(self, remote: GitUrl) -> AsyncIterator[None]:
        """Hold the remote's repository: its lock for the block, and no eviction while held or awaited. On the way
        out the repository is marked as just used, and the cache trimmed to `max_repositories`."""
        path = self.path_for(remote)
        lock = self._locks.setdefault(path, asyncio.Lock())
        self._holders[path] += 1
        try:
            async with lock:
                yield
        finally:
            self._holders[path] -= 1
            if not self._holders[path]:
                del self._holders[path], self._locks[path]
        # Marked after the lock is released, in the same thread hop as the trim: marked last, it is the newest, so the
        # trim never takes it.
        held = set(self._holders)
        for evicted in await asyncio.to_thread(_mark_used_and_trim, path, self.max_repositories, held):
            log.info("git history cache evicted", repository=evicted.name)

    async def commits_with_prefix(self, session: GitSession, remote: GitUrl, prefix: str, *, sync: bool) -> list[str]:
        """The commits of the cached history whose ids start with `prefix` (lowercase hex); with `sync`, the
        history is first brought up to date with the remote's branches and tags. Caller is `using(remote)`."""
        repository = await self._ensure(session, remote)
        if sync:
            await self._fetch(session, remote, repository, REFSPECS, prune=True)
        return await self._commits(session, remote, repository, prefix)

    async def fetch_commit(self, session: GitSession, remote: GitUrl, sha: str) -> bool:
        """Fetches commit `sha` by id (servers may give out any reachable commit). False when the server does not
        have it or will not give it by id; other failures raise. Caller is `using(remote)`."""
        repository = await self._ensure(session, remote)
        result = await self._run_fetch(session, remote, repository, (sha,), prune=False)
        if result.ok:
            return True
        if any(marker in result.stderr for marker in _NOT_SERVED):
            return False
        raise remote_error(remote.redacted, result, self._secrets(session))

    async def discard(self, remote: GitUrl) -> None:
        """Deletes the remote's repository (after a killed fetch may have left locks or half-written packs)."""
        await asyncio.to_thread(shutil.rmtree, self.path_for(remote), True)

    async def _ensure(self, session: GitSession, remote: GitUrl) -> Path:
        repository = self.path_for(remote)
        if await asyncio.to_thread((repository / "HEAD").is_file):
            return repository
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.rmtree, repository, True)
        env = session.env()
        commands = (
            ("init", "--quiet", "--bare", str(repository)),
            # Extensions are honoured only from repository format version 1.
            ("-C", str(repository), "config", "core.repositoryformatversion", "1"),
            ("-C", str(repository), "config", "extensions.partialClone", _REMOTE),
            ("-C", str(repository), "config", f"remote.{_REMOTE}.promisor", "true"),
            ("-C", str(repository), "config", "gc.auto", "0"),
        )
        for args in commands:
            result = await run_git(args, env=env, cwd=session.directory)
            if not result.ok:
                await self.discard(remote)
                raise GitCommandError(remote.redacted, "cannot create the history cache", scrub(result.stderr))
        log.debug("git history cache created", remote=remote.redacted)
        return repository

    async def _run_fetch(
        self, session: GitSession, remote: GitUrl, repository: Path, refspecs: tuple[str, ...], *, prune: bool
    ) -> GitResult:
        env = session.env({f"remote.{_REMOTE}.url": remote.url})
        args = [
            "-C",
            str(repository),
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-auto-gc",
            f"--filter={HISTORY_FILTER}",
        ]
        if prune:
            args.append("--prune")
        try:
            return await run_git([*args, _REMOTE, *refspecs], env=env, cwd=session.directory)
        except BaseException:
            # Killed mid-fetch (timeout, shutdown): the repository may hold lock files; start afresh next time.
            await asyncio.shield(self.discard(remote))
            raise

    async def _fetch(
        self, session: GitSession, remote: GitUrl, repository: Path, refspecs: tuple[str, ...], *, prune: bool
    ) -> None:
        result = await self._run_fetch(session, remote, repository, refspecs, prune=prune)
        if not result.ok:
            raise remote_error(remote.redacted, result, self._secrets(session))

    async def _commits(self, session: GitSession, remote: GitUrl, repository: Path, prefix: str) -> list[str]:
        env = session.env()
        # --disambiguate lists only objects present locally: no lazy fetch. Then keep the commits among them.
        listed = await run_git(
            ["-C", str(repository), "rev-parse", f"--disambiguate={prefix}"], env=env, cwd=session.directory
        )
        if not listed.ok:
            raise GitCommandError(remote.redacted, "cannot read the history cache", scrub(listed.stderr))
        oids = listed.stdout.split()
        if not oids:
            return []
        typed = await _batch_check(session, repository, oids)
        return sorted(oid for oid, kind in typed if kind == "commit")

    @staticmethod
    def _secrets(session: GitSession) -> tuple[str, ...]:
        credential = session.credential
        return (credential.password,) if credential is not None else ()


async def _batch_check(session: GitSession, repository: Path, oids: list[str]) -> list[tuple[str, str]]:
    """(oid, type) of each object, by `git cat-file --batch-check` fed on stdin."""
    result = await run_git(
        ["-C", str(repository), "cat-file", "--batch-check=%(objectname) %(objecttype)"],
        env=session.env(),
        cwd=session.directory,
        stdin="".join(f"{oid}\n" for oid in oids).encode(),
    )
    pairs = []
    for line in result.stdout.splitlines():
        oid, _, kind = line.partition(" ")
        pairs.append((oid, kind))
    return pairs


def _mark_used_and_trim(repository: Path, keep: int, held: Collection[Path]) -> list[Path]:
    with contextlib.suppress(FileNotFoundError):  # a failed creation or a killed fetch discarded it
        os.utime(repository)
    return _evict(repository.parent, keep, held)


def _evict(directory: Path, keep: int, held: Collection[Path]) -> list[Path]:
    """Deletes the least recently used repositories of `directory` not in `held` until at most `keep` remain (or
    only held ones are left over); returns those deleted."""
    used: list[tuple[float, Path]] = []
    with contextlib.suppress(FileNotFoundError):
        for path in directory.glob("*.git"):
            with contextlib.suppress(FileNotFoundError):
                used.append((path.stat().st_mtime, path))
    excess = len(used) - keep
    evicted: list[Path] = []
    for _, path in sorted(used):
        if len(evicted) >= excess:
            break
        if path not in held:
            shutil.rmtree(path, ignore_errors=True)
            evicted.append(path)
    return evicted
