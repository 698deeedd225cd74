"""GitResolver against real git servers: `git http-backend` over smart HTTP, with and without basic auth, a port
nobody listens on, and a server that accepts connections but never answers.

The git servers run in this event loop, so every git the resolver starts must be an asyncio child: a blocking call
would hang the server it talks to.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from kpack_core.envtest.gitserver import GitRepository, GitServer, run_git
from kpack_core.envtest.ports import LOOPBACK, free_port
from kpack_core.source import (
    AmbiguousRevisionError,
    GitAuthenticationError,
    GitCredential,
    GitCredentialKind,
    GitRepositoryNotFoundError,
    GitResolver,
    GitResolverOptions,
    GitSourceType,
    GitTimeoutError,
    GitUnreachableError,
    ResolvedGit,
    StaticGitKeychain,
    UnknownRevisionError,
    git_host,
)
from kpack_core.source.gitenv import GitSession
from kpack_core.source.history import HistoryCache
from kpack_core.source.urls import parse_git_url

pytestmark = pytest.mark.integration

USER = "alice"
PASSWORD = "pa55-w0rd-for-git"


@dataclass
class History:
    """A repository with two commits on main, a branch, a lightweight and an annotated tag."""

    repo: GitRepository
    first: str
    second: str


@pytest_asyncio.fixture(loop_scope="session")
async def history(git_server: GitServer, unique_name: str) -> History:
    repo = await git_server.create_repository(unique_name)
    first = await repo.commit({"app.py": "print(1)\n"}, "first")
    second = await repo.commit({"app.py": "print(2)\n"}, "second")
    await repo.branch("release", first)
    await repo.tag("light", second)
    await repo.tag("v1", first, message="release 1")
    return History(repo, first, second)


@pytest.fixture
def resolver(tmp_path: Path) -> GitResolver:
    return GitResolver(tmp_path / "cache", GitResolverOptions(timeout=30))


@pytest_asyncio.fixture(loop_scope="session")
async def auth_server(tmp_path: Path) -> AsyncIterator[GitServer]:
    """A git server of this test's own that wants basic auth."""
    async with GitServer(tmp_path / "auth-git", users={USER: PASSWORD}) as server:
        yield server


def _keychain(server: GitServer, password: str = PASSWORD) -> StaticGitKeychain:
    credential = GitCredential(GitCredentialKind.BASIC, USER, password, source="secret test/git")
    return StaticGitKeychain({git_host(server.url): credential})


class SilentServer:
    """Accepts TCP connections and never answers: what a hung git host looks like."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/app.git"

    async def __aenter__(self) -> SilentServer:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, self.port)
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        await reader.read()  # until the client goes away; never a byte back

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()


def _processes_mentioning(text: str) -> dict[int, tuple[str, str]]:
    """pid -> (command line, environment) of the live processes whose command line contains `text`."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text in cmdline:
                environ = Path(f"/proc/{entry}/environ").read_bytes().replace(b"\0", b"\n").decode(errors="replace")
                found[int(entry)] = (cmdline, environ)
        except OSError:
            continue  # the process ended while we looked
    return found


# --- refs ---------------------------------------------------------------------------------------------------------


async def test_branch_resolves_to_its_head_commit(history: History, resolver: GitResolver) -> None:
    resolved = await resolver.resolve(history.repo.url, "main", sub_path="api")

    assert resolved == ResolvedGit(history.repo.url, history.second, GitSourceType.BRANCH, "api", "refs/heads/main")
    assert resolved.type.pollable

    release = await resolver.resolve(history.repo.url, "release")
    assert (release.revision, release.type) == (history.first, GitSourceType.BRANCH)


async def test_branch_follows_new_commits(history: History, resolver: GitResolver) -> None:
    third = await history.repo.commit({"app.py": "print(3)\n"}, "third")

    assert (await resolver.resolve(history.repo.url, "main")).revision == third


async def test_lightweight_tag(history: History, resolver: GitResolver) -> None:
    resolved = await resolver.resolve(history.repo.url, "light")

    assert (resolved.revision, resolved.type, resolved.ref) == (history.second, GitSourceType.TAG, "refs/tags/light")


async def test_annotated_tag_is_peeled_to_its_commit(history: History, resolver: GitResolver) -> None:
    tag_object = await run_git("rev-parse", "refs/tags/v1", cwd=history.repo.path)
    assert tag_object != history.first  # really an annotated tag: its own object

    resolved = await resolver.resolve(history.repo.url, "v1")

    assert (resolved.revision, resolved.type) == (history.first, GitSourceType.TAG)


async def test_full_ref_names_and_head(history: History, resolver: GitResolver) -> None:
    assert (await resolver.resolve(history.repo.url, "refs/heads/release")).revision == history.first
    assert (await resolver.resolve(history.repo.url, "refs/tags/v1")).revision == history.first
    head = await resolver.resolve(history.repo.url, "HEAD")
    assert (head.revision, head.type, head.ref) == (history.second, GitSourceType.BRANCH, "HEAD")


async def test_tag_wins_over_branch_of_the_same_name(history: History, resolver: GitResolver) -> None:
    await history.repo.branch("same", history.second)
    await history.repo.tag("same", history.first)

    resolved = await resolver.resolve(history.repo.url, "same")

    assert (resolved.revision, resolved.type) == (history.first, GitSourceType.TAG)


async def test_unknown_revision_names_revision_and_url(history: History, resolver: GitResolver) -> None:
    with pytest.raises(UnknownRevisionError) as caught:
        await resolver.resolve(history.repo.url, "no-such-branch")

    assert caught.value.revision == "no-such-branch"
    assert "'no-such-branch'" in str(caught.value)
    assert history.repo.url in str(caught.value)
    assert not caught.value.transient


# --- shas ---------------------------------------------------------------------------------------------------------


async def test_full_sha_of_an_advertised_commit(history: History, resolver: GitResolver) -> None:
    resolved = await resolver.resolve(history.repo.url, history.second)

    assert resolved == ResolvedGit(history.repo.url, history.second, GitSourceType.COMMIT)
    assert not resolved.type.pollable
    # Advertised by a ref: no history had to be fetched.
    assert not resolver.history.path_for(parse_git_url(history.repo.url)).exists()


async def test_full_sha_no_ref_points_at_is_verified_in_history(
    git_server: GitServer, unique_name: str, resolver: GitResolver
) -> None:
    repo = await git_server.create_repository(unique_name)
    first = await repo.commit({"a": "1"})
    await repo.commit({"a": "2"})

    resolved = await resolver.resolve(repo.url, first.upper())

    assert (resolved.revision, resolved.type) == (first, GitSourceType.COMMIT)


async def test_full_sha_missing_from_the_remote_is_unknown(history: History, resolver: GitResolver) -> None:
    missing = "0123456789" * 4

    with pytest.raises(UnknownRevisionError, match=missing):
        await resolver.resolve(history.repo.url, missing)


async def test_full_sha_is_accepted_unverified_when_asked(history: History, tmp_path: Path) -> None:
    resolver = GitResolver(tmp_path / "cache", GitResolverOptions(verify_commits=False))
    missing = "0123456789" * 4

    resolved = await resolver.resolve(history.repo.url, missing)

    assert (resolved.revision, resolved.type) == (missing, GitSourceType.COMMIT)


async def test_short_sha_expands_to_the_commit(history: History, resolver: GitResolver) -> None:
    resolved = await resolver.resolve(history.repo.url, history.first[:7], sub_path="src")

    assert resolved == ResolvedGit(history.repo.url, history.first, GitSourceType.COMMIT, "src")


async def test_short_sha_history_is_a_partial_clone_of_commits(
    git_server: GitServer, unique_name: str, resolver: GitResolver
) -> None:
    repo = await git_server.create_repository(unique_name)
    await run_git("config", "uploadpack.allowFilter", "true", cwd=repo.path)
    first = await repo.commit({"big.bin": os.urandom(4096)})
    await repo.commit({"big.bin": os.urandom(4096)})

    resolved = await resolver.resolve(repo.url, first[:6])

    assert resolved.revision == first
    cache = resolver.history.path_for(parse_git_url(repo.url))
    objects = await run_git("cat-file", "--batch-all-objects", "--batch-check=%(objecttype)", cwd=cache)
    assert set(objects.split()) == {"commit"}
    # The remote's URL is not stored in the cache (it may carry a token).
    assert repo.url not in (cache / "config").read_text()


async def test_short_sha_sees_commits_pushed_after_the_first_lookup(history: History, resolver: GitResolver) -> None:
    await resolver.resolve(history.repo.url, history.first[:8])
    third = await history.repo.commit({"app.py": "print(3)\n"})

    assert (await resolver.resolve(history.repo.url, third[:8])).revision == third


async def test_unknown_short_sha(history: History, resolver: GitResolver) -> None:
    commits = (await run_git("rev-list", "--all", cwd=history.repo.path)).split()
    prefix = next(p for p in ("0000000", "fffffff", "1234567") if not any(c.startswith(p) for c in commits))

    with pytest.raises(UnknownRevisionError) as caught:
        await resolver.resolve(history.repo.url, prefix)

    assert caught.value.revision == prefix
    assert history.repo.url in str(caught.value)


async def _many_commits(repo: GitRepository, count: int) -> list[str]:
    """`count` commits on main, written by one `git fast-import`; fixed dates make their shas reproducible."""
    stream = []
    for index in range(count):
        message, content = f"commit {index}\n".encode(), f"{index}\n".encode()
        stream.append(b"commit refs/heads/main\n")
        stream.append(f"mark :{index + 1}\n".encode())
        stream.append(b"committer envtest <envtest@kpack-py.invalid> 0 +0000\n")
        stream.append(f"data {len(message)}\n".encode() + message)
        if index:
            stream.append(f"from :{index}\n".encode())
        stream.append(f"M 644 inline n.txt\ndata {len(content)}\n".encode() + content + b"\n")
    await run_git("fast-import", "--quiet", cwd=repo.path, stdin=b"".join(stream))
    return (await run_git("rev-list", "main", cwd=repo.path)).split()


async def test_ambiguous_short_sha_lists_the_candidates(
    git_server: GitServer, unique_name: str, resolver: GitResolver
) -> None:
    repo = await git_server.create_repository(unique_name)
    commits = await _many_commits(repo, 1000)
    by_prefix: dict[str, list[str]] = {}
    for commit in commits:
        by_prefix.setdefault(commit[:4], []).append(commit)
    prefix, sharing = next((p, c) for p, c in sorted(by_prefix.items()) if len(c) > 1)

    with pytest.raises(AmbiguousRevisionError) as caught:
        await resolver.resolve(repo.url, prefix)

    assert set(caught.value.candidates) == set(sharing)
    assert prefix in str(caught.value)
    # One more digit that tells them apart resolves.
    longer = next(
        commit[:n] for commit in sharing for n in range(5, 41) if sum(c.startswith(commit[:n]) for c in commits) == 1
    )
    assert (await resolver.resolve(repo.url, longer)).revision.startswith(longer)


async def test_concurrent_short_sha_lookups_share_one_cache(history: History, resolver: GitResolver) -> None:
    results = await asyncio.gather(
        *(resolver.resolve(history.repo.url, sha[:7]) for sha in (history.first, history.second) * 3)
    )

    assert [r.revision for r in results] == [history.first, history.second] * 3
    assert list(resolver.history.directory.glob("*.git")) == [
        resolver.history.path_for(parse_git_url(history.repo.url))
    ]
    assert resolver.history._locks == {}  # no lock kept once nobody holds or awaits it


async def test_history_cache_keeps_the_most_recently_used_remotes(
    git_server: GitServer, unique_name: str, tmp_path: Path
) -> None:
    repos = [await git_server.create_repository(f"{unique_name}-{i}") for i in range(3)]
    firsts = [await repo.commit({"app.py": f"print({i})\n"}) for i, repo in enumerate(repos)]
    resolver = GitResolver(tmp_path / "cache", GitResolverOptions(timeout=30, history_repositories=2))
    path = [resolver.history.path_for(parse_git_url(repo.url)) for repo in repos]

    for repo, first in zip(repos, firsts, strict=True):
        assert (await resolver.resolve(repo.url, first[:7])).revision == first
    assert sorted(resolver.history.directory.glob("*.git")) == sorted(path[1:])  # the oldest went

    # Using the second again makes the third the least recently used; the first comes back, fetched afresh.
    assert (await resolver.resolve(repos[1].url, firsts[1][:7])).revision == firsts[1]
    assert (await resolver.resolve(repos[0].url, firsts[0][:7])).revision == firsts[0]
    assert sorted(resolver.history.directory.glob("*.git")) == sorted([path[0], path[1]])


# --- credentials --------------------------------------------------------------------------------------------------


async def test_basic_auth_with_keychain_credentials(auth_server: GitServer, resolver: GitResolver) -> None:
    repo = await auth_server.create_repository("private")
    first = await repo.commit({"a": "1"})
    second = await repo.commit({"a": "2"})
    keychain = _keychain(auth_server)

    branch = await resolver.resolve(repo.url, "main", keychain=keychain)
    short = await resolver.resolve(repo.url, first[:7], keychain=keychain)

    assert (branch.revision, branch.type) == (second, GitSourceType.BRANCH)
    assert (short.revision, short.type) == (first, GitSourceType.COMMIT)


async def test_no_credentials_for_an_auth_server(auth_server: GitServer, resolver: GitResolver) -> None:
    repo = await auth_server.create_repository("private")
    await repo.commit({"a": "1"})

    with pytest.raises(GitAuthenticationError, match="no credentials were found") as caught:
        await resolver.resolve(repo.url, "main", keychain=StaticGitKeychain())

    assert caught.value.url == repo.url
    assert not caught.value.transient


async def test_wrong_password_is_refused_and_never_shown(auth_server: GitServer, resolver: GitResolver) -> None:
    repo = await auth_server.create_repository("private")
    await repo.commit({"a": "1"})
    wrong = "not-the-Password-42"

    with pytest.raises(GitAuthenticationError, match="authentication failed") as caught:
        await resolver.resolve(repo.url, "main", keychain=_keychain(auth_server, wrong))

    assert repo.url in str(caught.value)
    assert wrong not in str(caught.value)


async def test_credentials_written_into_the_url(auth_server: GitServer, resolver: GitResolver) -> None:
    repo = await auth_server.create_repository("private")
    commit = await repo.commit({"a": "1"})
    host = git_host(auth_server.url)

    ok = await resolver.resolve(f"http://{USER}:{PASSWORD}@{host}/private.git", "main")
    assert ok.revision == commit
    assert ok.url == f"http://{USER}:{PASSWORD}@{host}/private.git"  # the URL as given, for the build pod

    with pytest.raises(GitAuthenticationError) as caught:
        await resolver.resolve(f"http://{USER}:wrong-secret@{host}/private.git", "main")
    assert "wrong-secret" not in str(caught.value)
    assert f"http://***@{host}/private.git" in str(caught.value)


async def test_password_never_appears_on_a_command_line(resolver: GitResolver) -> None:
    async with SilentServer() as silent:
        keychain = StaticGitKeychain(
            {f"{LOOPBACK}:{silent.port}": GitCredential(GitCredentialKind.BASIC, USER, PASSWORD)}
        )
        task = asyncio.create_task(resolver.resolve(silent.url, "main", keychain=keychain))
        deadline = time.monotonic() + 20
        processes: dict[int, tuple[str, str]] = {}
        while time.monotonic() < deadline and not (silent.connections and processes):
            await asyncio.sleep(0.1)
            processes = _processes_mentioning(f"{LOOPBACK}:{silent.port}")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert processes, "no git process talking to the silent server was seen"
    for cmdline, environ in processes.values():
        assert PASSWORD not in cmdline
        # It did reach git, through the environment only git's own processes can read.
        assert f"KPACK_GIT_PASSWORD={PASSWORD}" in environ.splitlines()


# --- failures -----------------------------------------------------------------------------------------------------


async def test_silent_server_times_out_and_git_is_killed(tmp_path: Path) -> None:
    resolver = GitResolver(tmp_path / "cache", GitResolverOptions(timeout=1.5))
    async with SilentServer() as silent:
        started = time.monotonic()
        with pytest.raises(GitTimeoutError) as caught:
            await resolver.resolve(silent.url, "main")
        elapsed = time.monotonic() - started
        remaining = _processes_mentioning(f"{LOOPBACK}:{silent.port}")

    assert silent.connections >= 1
    assert 1.5 <= elapsed < 10
    assert caught.value.url == silent.url
    assert "1.5s" in str(caught.value)
    assert caught.value.transient
    assert remaining == {}


async def test_cancelled_history_fetch_leaves_no_broken_cache(tmp_path: Path) -> None:
    """A fetch killed half-way (timeout, shutdown) may leave lock files: the cache is discarded, not kept broken."""
    cache = HistoryCache(tmp_path / "cache")
    async with SilentServer() as silent, GitSession(None) as session:
        remote = parse_git_url(silent.url)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                await cache.commits_with_prefix(session, remote, "abcdef1", sync=True)
        assert silent.connections >= 1
        remaining = _processes_mentioning(f"{LOOPBACK}:{silent.port}")

    assert not cache.path_for(remote).exists()
    assert remaining == {}


async def test_nobody_listening_is_transient_and_unreachable(resolver: GitResolver) -> None:
    url = f"http://{LOOPBACK}:{free_port()}/app.git"

    with pytest.raises(GitUnreachableError) as caught:
        await resolver.resolve(url, "main")

    assert caught.value.transient
    assert url in str(caught.value)


async def test_missing_repository(git_server: GitServer, resolver: GitResolver) -> None:
    url = f"{git_server.url}/no-such-repository.git"

    with pytest.raises(GitRepositoryNotFoundError, match="repository not found") as caught:
        await resolver.resolve(url, "main")

    assert not caught.value.transient
    assert url in str(caught.value)


async def test_user_and_system_git_config_do_not_apply(
    history: History, resolver: GitResolver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A global config (and a HOME with a .gitconfig) that would send every request to a dead port.
    dead = f"http://{LOOPBACK}:{free_port()}/"
    config = f'[url "{dead}"]\n\tinsteadOf = {history.repo.url.rsplit("/", 1)[0]}/\n'
    (tmp_path / "global").write_text(config)
    (tmp_path / ".gitconfig").write_text(config)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "global"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'url.{dead}.insteadof'='http://'")

    assert (await resolver.resolve(history.repo.url, "main")).revision == history.second


def test_history_cache_names_do_not_contain_the_url(tmp_path: Path) -> None:
    cache = HistoryCache(tmp_path)
    path = cache.path_for(parse_git_url(f"https://{USER}:{PASSWORD}@git.example/app.git"))
    assert PASSWORD not in str(path)
    assert path.parent == tmp_path
