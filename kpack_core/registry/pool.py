"""`RegistryClients`: registry clients for many keychains that share what can be shared safely.

A controller makes a client per reconcile, each with the credentials of the object at hand. Made by a pool, those
clients share one HTTP session (connections and TLS sessions stay open between reconciles), one TLS context, the
registries' pings and the tokens of each set of credentials (`Endpoints`: an authenticator belongs to one set of
credentials, so a client only ever reuses tokens its own credentials would get), and the memory of where blobs
are (`BlobLocations`): a layer one builder uploaded is mounted by the next, whatever repository each pushes to.

Closing a client made here leaves the shared session open; `close()` the pool once, at shut-down.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp

from kpack_core.registry.auth import Keychain
from kpack_core.registry.client import RegistryClient
from kpack_core.registry.locations import BlobLocations
from kpack_core.registry.transport import Endpoints, RegistryOptions, new_session, ssl_context


class RegistryClients:
    """Callable: `clients(keychain)` is a `RegistryClient` for that keychain (see the module docstring)."""

    def __init__(
        self, options: RegistryOptions | None = None, *, trace_configs: Sequence[aiohttp.TraceConfig] = ()
    ) -> None:
        """`trace_configs` are aiohttp's request hooks, given to the shared session (to count or log requests)."""
        self.options = options or RegistryOptions()
        self.trace_configs = list(trace_configs)
        self.endpoints = Endpoints()
        self.locations = BlobLocations()
        self._tls = ssl_context(self.options.ca_pem)
        self._session: aiohttp.ClientSession | None = None

    def __call__(self, keychain: Keychain | None) -> RegistryClient:
        return RegistryClient(
            keychain,
            self.options,
            session=self._shared_session(),
            endpoints=self.endpoints,
            locations=self.locations,
            tls=self._tls,
        )

    def _shared_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = new_session(self.options, self.trace_configs)
        return self._session

    async def close(self) -> None:
        """Close the shared session (clients made afterwards open a new one)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
