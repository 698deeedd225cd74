"""The real git server: history written by the helpers is what `git ls-remote` and `git clone` see."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kpack_core.envtest.gitserver import GitError, GitServer, run_git

pytestmark = pytest.mark.integration


async def _ls_remote(url: str, *patterns: str) -> dict[str, str]:
    output = await run_git("ls-remote", url, *patterns)
    refs = {}
    for line in output.splitlines():
        sha, ref = line.split("\t")
        refs[ref] = sha
    return refs


async def test_ls_remote_of_a_branch_shows_its_commit(git_server: GitServer, unique_name: str) -> None:
    repo = await git_server.create_repository(f"apps/{unique_name}")
    first = await repo.commit({"README.md": "hello\n"}, message="first")
    second = await repo.commit({"app.py": "print('hi')\n"}, message="second")
    assert first != second
    refs = await _ls_remote(repo.url, "refs/heads/main")
    assert refs == {"refs/heads/main": second}


async def test_branches_and_tags_are_served_and_cloned(git_server: GitServer, unique_name: str, tmp_path: Path) -> None:
    repo = await git_server.create_repository(unique_name)
    base = await repo.commit({"a.txt": "a"})
    assert await repo.branch("feature") == base
    feature = await repo.commit({"b.txt": "b"}, branch="feature")
    assert await repo.tag("v1.0.0", "feature", message="release") == feature
    assert await repo.tag("light", base) == base
    refs = await _ls_remote(repo.url)
    assert refs["refs/heads/main"] == base
    assert refs["refs/heads/feature"] == feature
    assert refs["refs/tags/v1.0.0^{}"] == feature
    assert refs["refs/tags/light"] == base

    await run_git("clone", "--quiet", "--branch", "feature", repo.url, str(tmp_path / "clone"))
    assert (tmp_path / "clone" / "a.txt").read_text() == "a"
    assert (tmp_path / "clone" / "b.txt").read_text() == "b"
    # A push over smart HTTP lands in the served repository.
    work = tmp_path / "clone"
    (work / "c.txt").write_text("c")
    await run_git("add", "c.txt", cwd=work)
    await run_git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "c", cwd=work)
    await run_git("push", "--quiet", "origin", "feature", cwd=work)
    assert await repo.resolve("feature") == await run_git("rev-parse", "HEAD", cwd=work)


async def test_unknown_revision_is_named(git_server: GitServer, unique_name: str) -> None:
    repo = await git_server.create_repository(unique_name)
    await repo.commit({"a": "a"})
    with pytest.raises(GitError, match=f"repository {unique_name}: no revision 'nope'"):
        await repo.branch("x", "nope")
    with pytest.raises(GitError, match="invalid repository name"):
        await git_server.create_repository("../escape")


async def test_basic_auth_is_required_when_users_are_set(tmp_path: Path) -> None:
    async with GitServer(tmp_path / "git", users={"alice": "s3cret"}) as server:
        repo = await server.create_repository("private")
        sha = await repo.commit({"a": "a"})
        with pytest.raises(GitError, match=r"Authentication failed|could not read Username|401"):
            await run_git("ls-remote", repo.url)
        authed = repo.url.replace("http://", "http://alice:s3cret@")
        assert (await _ls_remote(authed, "refs/heads/main")) == {"refs/heads/main": sha}
        wrong = repo.url.replace("http://", "http://alice:wrong@")
        with pytest.raises(GitError):
            await asyncio.wait_for(run_git("ls-remote", wrong), 30)
