"""One server process run by envtest: started, probed until ready, watched, stopped, its log kept.

Each process writes stdout and stderr to its own log file, so an error can always show the tail of what the
server said before it failed. Children are asked to die with their parent (Linux `PR_SET_PDEATHSIG`), so a
killed test run leaves no etcd or kube-apiserver behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PROBE_TIMEOUT = 2.0
_PORT_IN_USE_MARKERS = ("address already in use", "bind: address in use")


class ServerError(RuntimeError):
    """A server envtest manages failed to start, died, or did not become ready."""


class PortInUseError(ServerError):
    """A server could not bind its port because another process took it first; retry with new ports."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file, or a note that it is missing."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """A child process with a name, a log file and a readiness probe."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def describe_failure(self, what: str) -> str:
        return f"{self.name} {what}; last lines of its log ({self.log_path}):\n{self.log_tail()}"

    async def start(self) -> None:
        """Spawns the process with its output appended to the log file."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env} if self.env is not None else None
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            try:
                self._process = await asyncio.create_subprocess_exec(
                    *self.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise ServerError(f"{self.name}: cannot execute {self.argv[0]}: {exc}") from exc

    async def wait_ready(self, probe: Callable[[], Awaitable[bool]], within: float) -> None:
        """Polls `probe` every 100 ms until it returns True.

        Raises `PortInUseError` if the process exited because its port was taken, `ServerError` if it exited
        otherwise or did not become ready within `within` seconds; the message holds its log tail.
        """
        deadline = time.monotonic() + within
        while True:
            if not self.running:
                message = self.describe_failure(f"exited with code {self.returncode} while starting")
                if any(marker in self.log_tail(80).lower() for marker in _PORT_IN_USE_MARKERS):
                    raise PortInUseError(message)
                raise ServerError(message)
            # A port taken by a stranger may accept connections and never answer: bound every attempt.
            with contextlib.suppress(Exception):
                if await asyncio.wait_for(probe(), _PROBE_TIMEOUT):
                    return
            if time.monotonic() > deadline:
                raise ServerError(self.describe_failure(f"did not become ready within {within:.0f} s"))
            await asyncio.sleep(0.1)

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process else None

    async def stop(self, grace: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns once the process is gone."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def kill(self) -> None:
        """SIGKILL, as a crash would; returns once the process is gone."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
