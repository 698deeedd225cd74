"""How controllers get registry clients: a `RegistryClientFactory` per controller, by default the manager's pool.

Every controller of one manager that is not given a factory shares one `RegistryClients` pool per set of registry
options (one HTTP session, the registries' pings and tokens per credentials, and the memory of where blobs are), so
a layer the store controller read or a builder pushed is mounted by the next builder. The pool is closed when the
manager shuts down. Tests pass a factory of their own (trusting their CA, counting requests).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from kpack_core.registry import Keychain, RegistryClient, RegistryClients, RegistryOptions
from kpack_core.runtime.manager import Manager

RegistryClientFactory = Callable[[Keychain], RegistryClient]
"""Makes a registry client for a keychain; the client is used in one `async with` block."""

_POOLS: weakref.WeakKeyDictionary[Manager, dict[RegistryOptions, RegistryClients]] = weakref.WeakKeyDictionary()


def manager_registry_clients(manager: Manager, options: RegistryOptions | None = None) -> RegistryClients:
    """The pool of `manager`'s controllers for `options` (made on first use; closed when the manager stops)."""
    options = options or RegistryOptions()
    pools = _POOLS.setdefault(manager, {})
    pool = pools.get(options)
    if pool is None:
        pool = pools[options] = RegistryClients(options)
        manager.on_shutdown(pool.close)
    return pool
