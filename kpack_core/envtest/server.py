"""Server: what every envtest server shares — a state directory, start/stop, and `async with` use.

A server given no directory makes a temporary one and removes it when the `async with` block ends; a server
given a directory keeps it, so its data outlives the process (etcd's data, the registry's blobs, repositories).
"""

from __future__ import annotations

import abc
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self


class Server(abc.ABC):
    """Base of ControlPlane, Registry, GitServer and Environment."""

    def __init__(self, directory: Path | None, prefix: str) -> None:
        self._owns_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix=prefix)) if directory is None else directory

    @property
    @abc.abstractmethod
    def running(self) -> bool:
        """True while every process or listener of this server is alive."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Starts what is not running and returns once it serves; idempotent."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stops everything, keeping the directory so `start` can bring the same state back."""

    def log_tail(self, lines: int = 40) -> str:
        """The end of this server's logs, for error messages."""
        return "(this server runs in the test process and keeps no log of its own)"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)
