"""A loopback TCP proxy that tests can break on purpose, to cut an informer off from a healthy apiserver.

`sever()` drops every connection and refuses new ones (the client sees errors at once); `freeze()` keeps
connections open but forwards nothing (the silent stall of a connection a load balancer forgot); `restore()` goes
back to forwarding. TLS passes through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib

from kpack_core.envtest.ports import free_ports


class FaultyProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        (self.port,) = free_ports(1)
        self.mode = "forward"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._forwarding = asyncio.Event()
        self._forwarding.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def __aenter__(self) -> FaultyProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self.sever()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def sever(self) -> None:
        self.mode = "sever"
        self._forwarding.set()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def freeze(self) -> None:
        self.mode = "freeze"
        self._forwarding.clear()

    def restore(self) -> None:
        # Connections frozen so far are dropped: their streams are stale by now.
        if self.mode == "freeze":
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
        self.mode = "forward"
        self._forwarding.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "sever":
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer), return_exceptions=True
        )
        for w in (writer, upstream_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self._forwarding.wait()
                if writer.transport.is_closing():
                    return
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
