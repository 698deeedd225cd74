"""GitServer: bare repositories served over smart HTTP by the real `git http-backend`.

A small aiohttp server in this process runs `git http-backend` as a CGI program for every request, optionally
behind basic auth, so clone, fetch, ls-remote and push behave exactly as against any git host. Helpers create
repositories, commits, branches and tags directly in the bare repositories with git plumbing (no work tree).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from kpack_core.envtest.ports import LOOPBACK, free_port
from kpack_core.envtest.process import ServerError
from kpack_core.envtest.server import Server
from kpack_core.envtest.webserver import authenticate, serve

_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
# Fixed identity and dates make commit shas depend only on content, parents and message.
_COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "envtest",
    "GIT_AUTHOR_EMAIL": "envtest@kpack-py.invalid",
    "GIT_COMMITTER_NAME": "envtest",
    "GIT_COMMITTER_EMAIL": "envtest@kpack-py.invalid",
}


class GitError(ServerError):
    """A git command or the git server failed; the message names the repository and the command."""


async def run_git(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, stdin: bytes | None = None
) -> str:
    """Runs `git args…`, returns its stripped stdout, or raises GitError with its stderr."""
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    if process.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed ({process.returncode}): {err.decode(errors='replace').strip()}")
    return out.decode().strip()


@dataclass
class GitRepository:
    """A bare repository on the server, with helpers that write history into it."""

    name: str
    path: Path
    url: str

    async def commit(self, files: Mapping[str, str | bytes], message: str = "commit", branch: str = "main") -> str:
        """Adds a commit on `branch` (created if absent) that writes `files` over the parent's tree.

        Returns the new commit's sha.
        """
        ref = f"refs/heads/{branch}"
        parent = await self.resolve(ref)
        with tempfile.TemporaryDirectory() as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            if parent:
                await run_git("read-tree", parent, cwd=self.path, env=env)
            for file_path, content in files.items():
                data = content.encode() if isinstance(content, str) else content
                blob = await run_git("hash-object", "-w", "--stdin", cwd=self.path, stdin=data)
                await run_git(
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    f"100644,{blob},{file_path}",
                    cwd=self.path,
                    env=env,
                )
            tree = await run_git("write-tree", cwd=self.path, env=env)
        parents = ["-p", parent] if parent else []
        sha = await run_git("commit-tree", tree, *parents, "-m", message, cwd=self.path, env=_COMMIT_ENV)
        await run_git("update-ref", ref, sha, parent or "", cwd=self.path)
        return sha

    async def branch(self, name: str, start: str = "main") -> str:
        """Creates branch `name` at `start` (a branch, tag or sha); returns its sha."""
        sha = await self._require(start)
        await run_git("update-ref", f"refs/heads/{name}", sha, cwd=self.path)
        return sha

    async def tag(self, name: str, start: str = "main", message: str | None = None) -> str:
        """Creates tag `name` at `start`, annotated when `message` is given; returns the commit's sha."""
        sha = await self._require(start)
        args = ["tag", "-a", name, sha, "-m", message] if message is not None else ["tag", name, sha]
        await run_git(*args, cwd=self.path, env=_COMMIT_ENV)
        return sha

    async def resolve(self, revision: str) -> str | None:
        """The commit sha `revision` names in this repository, or None."""
        try:
            return await run_git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", cwd=self.path)
        except GitError:
            return None

    async def _require(self, revision: str) -> str:
        sha = await self.resolve(revision)
        if sha is None:
            raise GitError(f"repository {self.name}: no revision {revision!r}")
        return sha


class GitServer(Server):
    """An async context manager serving bare repositories under `directory` at http://127.0.0.1:<port>/.

    With `users` (name -> password), every request needs basic auth; pushes are allowed to any
    authenticated user (or anyone, without `users`).
    """

    def __init__(self, directory: Path | None = None, *, users: dict[str, str] | None = None) -> None:
        super().__init__(directory, "kpack-git-")
        self.users = dict(users or {})
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self.requests = 0

    @property
    def url(self) -> str:
        if self._port is None:
            raise GitError("the git server has not been started")
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        if shutil.which("git") is None:
            raise GitError("git is not installed; install Debian's 'git' package")
        if self._runner is not None:
            return
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{path:.*}", self._handle)
        for attempt in range(3):
            port = self._port or free_port()
            try:
                self._runner = await serve(app, LOOPBACK, port, None)
                self._port = port
                return
            except OSError as exc:
                if attempt == 2:
                    raise GitError(f"git server cannot listen on {LOOPBACK}:{port}: {exc}") from exc

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def create_repository(self, name: str, default_branch: str = "main") -> GitRepository:
        """A new empty bare repository `<name>.git`, served at `<url>/<name>.git`."""
        if not _REPO_NAME.match(name) or ".." in name:
            raise GitError(f"invalid repository name {name!r}")
        path = self.directory / f"{name}.git"
        if path.exists():
            raise GitError(f"repository {name!r} already exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        await run_git("init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path))
        await run_git("config", "http.receivepack", "true", cwd=path)
        return GitRepository(name=name, path=path, url=f"{self.url}/{name}.git")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        user = authenticate(request.headers.get("Authorization"), self.users)
        if user is None:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="envtest-git"'})
        body = await request.read()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.directory),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": request.path,
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query_string,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": request.remote or "",
            "REMOTE_USER": user,
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        for header, variable in (
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
            ("Git-Protocol", "GIT_PROTOCOL"),
        ):
            if header in request.headers:
                env[variable] = request.headers[header]
        process = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(body)
        return _cgi_response(out, err)


def _cgi_response(output: bytes, stderr: bytes) -> web.Response:
    """Turns CGI output (headers, blank line, body) into an HTTP response."""
    # The header block ends at the first blank line, whichever line ending the program used; the binary
    # body after it may contain either sequence.
    ends = [(index, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (index := output.find(sep)) >= 0]
    if ends:
        index, length = min(ends)
        head, body = output[:index], output[index + length :]
    else:
        head, body = output, b""
    status, reason, headers = 200, None, {}
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        if key.lower() == "status":
            code, _, reason_text = value.strip().partition(" ")
            status, reason = int(code), reason_text or None
        elif key:
            headers[key.strip()] = value.strip()
    if not head and stderr:
        return web.Response(status=500, text=stderr.decode(errors="replace"))
    return web.Response(status=status, reason=reason, body=body, headers=headers)
