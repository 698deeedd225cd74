"""pytest fixtures over real servers: control plane, namespaces, registries, git server, kubelet.

Load with `-p kpack_core.envtest.pytest_plugin` (kpack-py's pyproject does). Servers are started once per
session, lazily (a unit-test run starts none). Before each test that uses a server, a dead server is started
again; a server that dies during a test fails that test with the server's log tail. Async tests and fixtures
share the session event loop (`asyncio_default_test_loop_scope = "session"`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from kpack_core.envtest.certs import CertificateAuthority
from kpack_core.envtest.controlplane import ControlPlane
from kpack_core.envtest.gitserver import GitServer
from kpack_core.envtest.kubelet import Kubelet
from kpack_core.envtest.registry import Registry, RegistryAuth
from kpack_core.envtest.server import Server
from kpack_core.runtime.client import Client


async def _checked(server: Server, name: str) -> AsyncIterator[None]:
    """Restarts `server` if an earlier test left it dead; fails the current test if it dies during it."""
    if not server.running:
        await server.start()
    yield
    if not server.running:
        pytest.fail(f"{name} died during the test; its log ends:\n{server.log_tail()}", pytrace=False)


@pytest.fixture(scope="session")
def envtest_ca() -> CertificateAuthority:
    """One CA for every server of the session, so one CA file trusts them all."""
    return CertificateAuthority()


@pytest.fixture(scope="session")
def envtest_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envtest")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _session_control_plane(envtest_dir: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(envtest_dir / "controlplane") as control_plane:
        yield control_plane


@pytest_asyncio.fixture(loop_scope="session")
async def control_plane(_session_control_plane: ControlPlane) -> AsyncIterator[ControlPlane]:
    """The session's etcd + kube-apiserver, checked alive around the test."""
    async for _ in _checked(_session_control_plane, "the control plane"):
        yield _session_control_plane


@pytest_asyncio.fixture(loop_scope="session")
async def api_client(control_plane: ControlPlane) -> AsyncIterator[k8s_client.ApiClient]:
    """A kubernetes-asyncio ApiClient authenticated as the admin (`system:masters`)."""
    api = await k8s_config.new_client_from_config(config_file=str(control_plane.kubeconfig_path))
    async with api:
        yield api


@pytest_asyncio.fixture(loop_scope="session")
async def client(control_plane: ControlPlane) -> AsyncIterator[Client]:
    """A kpack_core runtime Client authenticated as the admin (`system:masters`)."""
    async with await Client.from_kubeconfig(str(control_plane.kubeconfig_path)) as kube:
        yield kube


def _namespace_name(node_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:40].strip("-") or "test"
    return f"{base}-{secrets.token_hex(3)}"


@pytest_asyncio.fixture(loop_scope="session")
async def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh namespace for this test, deleted afterwards (envtest never finishes deleting it)."""
    name = _namespace_name(request.node.name)
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    status, answer = await control_plane.request("POST", "/api/v1/namespaces", body)
    if status != 201:
        pytest.fail(f"creating namespace {name}: {status} {answer}")
    yield name
    if control_plane.running:
        await control_plane.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
def kubelet(control_plane: ControlPlane) -> Kubelet:
    return Kubelet(control_plane)


class _SessionRegistries:
    """The session's registries, each variant started the first time a test asks for it."""

    def __init__(self, directory: Path, ca: CertificateAuthority) -> None:
        self._directory = directory
        self._ca = ca
        self._started: dict[str, Registry] = {}

    async def get(self, name: str, tls: bool, auth: RegistryAuth) -> Registry:
        if name not in self._started:
            started = Registry(self._directory / name, tls=tls, auth=auth, ca=self._ca)
            await started.start()
            self._started[name] = started
        return self._started[name]

    async def stop(self) -> None:
        for started in self._started.values():
            await started.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _session_registries(envtest_dir: Path, envtest_ca: CertificateAuthority) -> AsyncIterator[_SessionRegistries]:
    registries = _SessionRegistries(envtest_dir, envtest_ca)
    yield registries
    await registries.stop()


def _registry_fixture(name: str, tls: bool, auth: RegistryAuth, doc: str) -> object:
    """The per-test fixture `name`: the session's registry of that variant, checked alive around the test."""

    @pytest_asyncio.fixture(loop_scope="session", name=name)
    async def checked_registry(_session_registries: _SessionRegistries) -> AsyncIterator[Registry]:
        started = await _session_registries.get(name, tls, auth)
        async for _ in _checked(started, f"the {name.replace('_', ' ')}"):
            yield started

    checked_registry.__doc__ = doc
    return checked_registry


registry = _registry_fixture("registry", False, RegistryAuth.NONE, "Plain HTTP registry, anonymous access.")
tls_registry = _registry_fixture(
    "tls_registry", True, RegistryAuth.NONE, "TLS registry (certificate from `envtest_ca`), anonymous access."
)
htpasswd_registry = _registry_fixture(
    "htpasswd_registry",
    True,
    RegistryAuth.HTPASSWD,
    "TLS registry with htpasswd basic auth; credentials in `username` / `password`.",
)
token_registry = _registry_fixture(
    "token_registry",
    True,
    RegistryAuth.TOKEN,
    "TLS registry with bearer tokens from the envtest token issuer; credentials in `username`/`password`.",
)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _session_git_server(envtest_dir: Path) -> AsyncIterator[GitServer]:
    async with GitServer(envtest_dir / "git") as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def git_server(_session_git_server: GitServer) -> AsyncIterator[GitServer]:
    """Smart-HTTP git server without auth; create repositories with `create_repository`."""
    async for _ in _checked(_session_git_server, "the git server"):
        yield _session_git_server


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A DNS-1123 name unique to this test, for cluster-scoped objects and repositories."""
    return _namespace_name(request.node.name)
