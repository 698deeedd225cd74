"""ControlPlane: a real etcd and kube-apiserver on loopback, for tests and local runs.

Like controller-runtime's envtest: secure port on 127.0.0.1, a throwaway CA for serving and client
certificates, an admin client certificate in group `system:masters`, RBAC authorization, and a service-account
issuer with a signing key so the TokenRequest API works. No kubelet, scheduler or controller-manager runs:
pods never start by themselves (see `kpack_core.envtest.kubelet`), there is no garbage collection, and
namespaces never finish deleting.

The control plane can be stopped and started again on the same data and the same ports, so clients can test
their recovery from a vanished API server.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from kpack_core.envtest import kubeconfig
from kpack_core.envtest.binaries import Binaries, find_binaries
from kpack_core.envtest.certs import CertificateAuthority, KeyPair, generate_rsa_key_pem
from kpack_core.envtest.ports import LOOPBACK, free_ports
from kpack_core.envtest.process import ManagedProcess, PortInUseError, ServerError
from kpack_core.envtest.server import Server

ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters",)
# Attempts at a first start when another process grabs a port between our pick and the server's bind.
_PORT_ATTEMPTS = 3


class ControlPlaneError(ServerError):
    """The control plane failed; the message carries the tail of both servers' logs."""


class ControlPlane(Server):
    """An async context manager running etcd + kube-apiserver.

    `directory` holds certificates, etcd's data, logs and kubeconfigs; by default a temporary directory that is
    removed on exit. `extra_apiserver_flags` override or add `--flag=value` pairs.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        binaries: Binaries | None = None,
        start_timeout: float = 90.0,
        stop_timeout: float = 20.0,
        extra_apiserver_flags: dict[str, str] | None = None,
    ) -> None:
        super().__init__(directory, "kpack-envtest-")
        self.binaries = binaries or find_binaries()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.extra_apiserver_flags = dict(extra_apiserver_flags or {})
        self.ca = CertificateAuthority()
        self._admin = self.ca.issue_client(ADMIN_USER, ADMIN_GROUPS)
        self._ports: tuple[int, int, int] | None = None  # etcd client, etcd peer, apiserver secure
        self._etcd: ManagedProcess | None = None
        self._apiserver: ManagedProcess | None = None
        self._prepared = False
        self._etcd_no_fsync: bool | None = None

    # --- addresses and credentials ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._ports is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._ports[2]

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    @property
    def etcd_url(self) -> str:
        if self._ports is None:
            raise ControlPlaneError("the control plane has not been started")
        return f"http://{LOOPBACK}:{self._ports[0]}"

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem

    @property
    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig (user `admin`, group `system:masters`)."""
        return self.directory / "kubeconfig"

    @property
    def etcd(self) -> ManagedProcess | None:
        """The etcd process (for tests that crash it on purpose)."""
        return self._etcd

    @property
    def apiserver(self) -> ManagedProcess | None:
        """The kube-apiserver process (for tests that crash it on purpose)."""
        return self._apiserver

    @property
    def running(self) -> bool:
        """True while both etcd and kube-apiserver processes are alive."""
        return bool(self._etcd and self._etcd.running and self._apiserver and self._apiserver.running)

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for process in (self._etcd, self._apiserver):
            if process is not None:
                parts.append(f"--- {process.name} ({process.log_path}):\n{process.log_tail(lines)}")
        return "\n".join(parts) or "(no server was started)"

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts etcd and kube-apiserver and waits until the API serves; idempotent.

        A first start picks free ports (retrying when one is taken meanwhile); a restart reuses the same
        ports, certificates and etcd data.
        """
        if self.running:
            return
        first_start = self._ports is None
        attempts = _PORT_ATTEMPTS if first_start else 1
        for attempt in range(1, attempts + 1):
            if first_start:
                etcd_client, etcd_peer, secure = free_ports(3)
                self._ports = (etcd_client, etcd_peer, secure)
                self._prepare()
            try:
                await self._start_processes()
                return
            except PortInUseError:
                await self.stop()
                if attempt == attempts:
                    raise
            except ServerError as exc:
                await self.stop()
                raise ControlPlaneError(f"{exc}\n{self.log_tail()}") from exc

    async def stop(self) -> None:
        """Stops kube-apiserver, then etcd; keeps the data so `start` can bring them back."""
        for process in (self._apiserver, self._etcd):
            if process is not None:
                await process.stop(self.stop_timeout)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def _prepare(self) -> None:
        """Writes certificates and keys once, and the admin kubeconfig for the current port."""
        certs = self.directory / "certs"
        if not self._prepared:
            certs.mkdir(parents=True, exist_ok=True)
            (certs / "ca.crt").write_bytes(self.ca.cert_pem)
            self.ca.issue_serving(["localhost", LOOPBACK]).write(certs, "apiserver")
            self._admin.write(certs, "admin")
            private, public = generate_rsa_key_pem()
            (certs / "sa.key").write_bytes(private)
            (certs / "sa.pub").write_bytes(public)
            self._prepared = True
        self._write_kubeconfig(self.kubeconfig_path, ADMIN_USER, self._admin)

    async def _etcd_supports_no_fsync(self) -> bool:
        """`--unsafe-no-fsync` (etcd 3.5+) makes tests much faster; older etcd rejects unknown flags."""
        if self._etcd_no_fsync is None:
            probe = await asyncio.create_subprocess_exec(
                str(self.binaries.etcd),
                "--help",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await probe.communicate()
            self._etcd_no_fsync = b"--unsafe-no-fsync" in output
        return self._etcd_no_fsync

    def _etcd_process(self, no_fsync: bool) -> ManagedProcess:
        assert self._ports is not None
        client, peer, _ = self._ports
        data = self.directory / "etcd-data"
        argv = [
            str(self.binaries.etcd),
            f"--data-dir={data}",
            "--name=envtest",
            f"--listen-client-urls=http://{LOOPBACK}:{client}",
            f"--advertise-client-urls=http://{LOOPBACK}:{client}",
            f"--listen-peer-urls=http://{LOOPBACK}:{peer}",
            f"--initial-advertise-peer-urls=http://{LOOPBACK}:{peer}",
            f"--initial-cluster=envtest=http://{LOOPBACK}:{peer}",
            "--log-level=warn",
        ]
        if no_fsync:
            argv.append("--unsafe-no-fsync=true")
        return ManagedProcess("etcd", argv, self.directory / "etcd.log")

    def _apiserver_process(self) -> ManagedProcess:
        assert self._ports is not None
        client, _, secure = self._ports
        certs = self.directory / "certs"
        flags = {
            "etcd-servers": f"http://{LOOPBACK}:{client}",
            "cert-dir": str(certs),
            "tls-cert-file": str(certs / "apiserver.crt"),
            "tls-private-key-file": str(certs / "apiserver.key"),
            "client-ca-file": str(certs / "ca.crt"),
            "secure-port": str(secure),
            "bind-address": LOOPBACK,
            "advertise-address": LOOPBACK,
            # The `kubernetes` Service endpoints would have to name a non-loopback address; nothing here
            # needs them, and a loopback advertise address keeps the control plane off the network.
            "endpoint-reconciler-type": "none",
            "service-cluster-ip-range": "10.0.0.0/24",
            "allow-privileged": "true",
            # No token controller runs, so pods must not wait for service-account tokens to be mounted.
            "disable-admission-plugins": "ServiceAccount",
            "authorization-mode": "RBAC",
            "service-account-issuer": f"https://{LOOPBACK}:{secure}/",
            "service-account-key-file": str(certs / "sa.pub"),
            "service-account-signing-key-file": str(certs / "sa.key"),
            "api-audiences": f"https://{LOOPBACK}:{secure}/",
        }
        flags.update(self.extra_apiserver_flags)
        argv = [str(self.binaries.kube_apiserver), *(f"--{key}={value}" for key, value in flags.items())]
        return ManagedProcess("kube-apiserver", argv, self.directory / "kube-apiserver.log")

    async def _start_processes(self) -> None:
        """Starts whichever of etcd and kube-apiserver is not running (both on a first start)."""
        if not (self._etcd and self._etcd.running):
            self._etcd = self._etcd_process(await self._etcd_supports_no_fsync())
            await self._start_etcd(self._etcd)
        if not (self._apiserver and self._apiserver.running):
            self._apiserver = self._apiserver_process()
            await self._start_apiserver(self._apiserver)

    async def _start_etcd(self, etcd: ManagedProcess) -> None:
        await etcd.start()
        async with aiohttp.ClientSession() as session:

            async def etcd_healthy() -> bool:
                async with session.get(f"{self.etcd_url}/health") as response:
                    body = await response.json(content_type=None)
                    return response.status == 200 and body.get("health") == "true"

            await etcd.wait_ready(etcd_healthy, self.start_timeout)

    async def _start_apiserver(self, apiserver: ManagedProcess) -> None:
        await apiserver.start()
        ssl_context = self.ssl_context()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context)) as session:

            async def apiserver_ready() -> bool:
                async with session.get(f"{self.url}/readyz") as response:
                    if response.status != 200:
                        return False
                # Like controller-runtime's envtest: the default namespace marks a finished bootstrap.
                async with session.get(f"{self.url}/api/v1/namespaces/default") as response:
                    return response.status == 200

            await apiserver.wait_ready(apiserver_ready, self.start_timeout)

    # --- clients and users ---------------------------------------------------------------------------

    def ssl_context(self, client: KeyPair | None = None) -> ssl.SSLContext:
        """A TLS context trusting our CA and presenting `client` (default: the admin certificate)."""
        context = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        certs = self.directory / "certs"
        if client is None:
            context.load_cert_chain(certs / "admin.crt", certs / "admin.key")
        else:
            with tempfile.TemporaryDirectory() as scratch:
                cert, key = client.write(Path(scratch), "client")
                context.load_cert_chain(cert, key)
        return context

    def _write_kubeconfig(self, path: Path, user: str, pair: KeyPair) -> Path:
        credentials = kubeconfig.Credentials(client_cert_pem=pair.cert_pem, client_key_pem=pair.key_pem)
        return kubeconfig.write(path, kubeconfig.render(self.url, self.ca_pem, user, credentials))

    def kubeconfig_for_user(self, user: str, groups: tuple[str, ...] = (), path: Path | None = None) -> Path:
        """Mints a client certificate for `user` in `groups` and writes a kubeconfig for it.

        The user has no rights beyond what RBAC grants it (and the `system:authenticated` defaults).
        """
        pair = self.ca.issue_client(user, groups)
        target = path or self.directory / "users" / f"{user.replace(':', '_')}.kubeconfig"
        return self._write_kubeconfig(target, user, pair)

    async def kubeconfig_for_service_account(
        self, namespace: str, name: str, *, path: Path | None = None, expiration_seconds: int = 3600
    ) -> Path:
        """Writes a kubeconfig that authenticates as the service account `namespace/name`.

        Creates the service account when it does not exist, then asks the TokenRequest API for a token.
        """
        sa_path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
        status, body = await self.request("GET", f"{sa_path}/{name}")
        if status == 404:
            account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
            status, body = await self.request("POST", sa_path, account)
            if status not in (200, 201, 409):
                raise ControlPlaneError(f"creating service account {namespace}/{name}: {status} {body}")
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        status, body = await self.request("POST", f"{sa_path}/{name}/token", review)
        if status != 201:
            raise ControlPlaneError(f"TokenRequest for service account {namespace}/{name}: {status} {body}")
        token = body["status"]["token"]
        user = f"system:serviceaccount:{namespace}:{name}"
        target = path or self.directory / "users" / f"sa-{namespace}-{name}.kubeconfig"
        config = kubeconfig.render(self.url, self.ca_pem, user, kubeconfig.Credentials(token=token))
        return kubeconfig.write(target, config)

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """One admin request to the API server: returns (HTTP status, decoded JSON body).

        For PATCH pass the patch type as `content_type`, e.g. "application/merge-patch+json".
        """
        connector = aiohttp.TCPConnector(ssl=self.ssl_context())
        data = json.dumps(body) if body is not None else None
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(method, f"{self.url}{path}", data=data, headers={"Content-Type": content_type}) as response,
        ):
            text = await response.text()
            try:
                return response.status, json.loads(text) if text else None
            except json.JSONDecodeError:
                return response.status, text

    async def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision and return that revision.

        Afterwards any watch or list from an older resourceVersion that reaches etcd fails with 410 Gone, which is
        how tests make an informer's resourceVersion expire. Uses etcd's JSON gateway on the client port.
        """
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.etcd_url}/v3/kv/range", json={"key": "AA=="}) as response:
                body = await response.json(content_type=None)
                if response.status != 200:
                    raise ControlPlaneError(f"etcd range for the current revision: {response.status} {body}")
            revision = int(body["header"]["revision"])
            compaction = {"revision": str(revision), "physical": True}
            async with session.post(f"{self.etcd_url}/v3/kv/compaction", json=compaction) as response:
                if response.status != 200:
                    raise ControlPlaneError(f"etcd compaction to {revision}: {response.status} {await response.text()}")
        return revision
