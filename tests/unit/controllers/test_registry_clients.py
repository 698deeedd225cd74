"""`manager_registry_clients`: one pool per manager and registry options, closed by the manager's shutdown."""

from __future__ import annotations

from typing import cast

from kpack_controllers.registry_clients import manager_registry_clients
from kpack_core.registry import RegistryOptions
from kpack_core.runtime.client import Client
from kpack_core.runtime.manager import Manager, ManagerOptions


def _manager() -> Manager:
    # Nothing here talks to an apiserver: the manager is only a key and a list of shutdown hooks.
    return Manager(cast(Client, object()), ManagerOptions(metrics_bind_address=None))


def test_one_pool_per_manager_and_options() -> None:
    first, second = _manager(), _manager()
    pool = manager_registry_clients(first)
    assert manager_registry_clients(first) is pool
    assert manager_registry_clients(first, RegistryOptions()) is pool  # the defaults, spelled out
    assert manager_registry_clients(first, RegistryOptions(chunk_size=1024)) is not pool
    assert manager_registry_clients(second) is not pool
    assert len(first._closers) == 2  # one hook per pool made, none for the reuse


async def test_the_pool_is_closed_by_the_manager_hook() -> None:
    manager = _manager()
    pool = manager_registry_clients(manager)
    client = pool(None)
    session = client.transport.session
    await manager._closers[0]()
    assert session.closed
