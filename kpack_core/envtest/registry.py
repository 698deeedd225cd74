"""Registry: a real Docker distribution registry (Debian's `docker-registry`) on a loopback port.

Variants, combinable with TLS or plain HTTP:
- `RegistryAuth.NONE`: anonymous pull and push;
- `RegistryAuth.HTPASSWD`: basic auth from an htpasswd file (bcrypt, the only hash the registry accepts);
- `RegistryAuth.TOKEN`: bearer tokens from `kpack_core.envtest.tokenissuer`, run in this process, so the real
  OCI token flow (challenge, token request with credentials and scopes, retry with the token) is exercised.
"""

from __future__ import annotations

import enum
import json
import secrets
import shutil
import ssl
from pathlib import Path

import aiohttp
from aiohttp import web

from kpack_core.envtest.certs import CertificateAuthority
from kpack_core.envtest.ports import LOOPBACK, free_ports
from kpack_core.envtest.process import ManagedProcess, PortInUseError, ServerError
from kpack_core.envtest.server import Server
from kpack_core.envtest.tokenissuer import AccessPolicy, TokenIssuer, grant_all
from kpack_core.envtest.webserver import serve, server_ssl_context

REGISTRY_BINARY = "docker-registry"
SERVICE = "kpack-py-envtest-registry"
_PORT_ATTEMPTS = 3


class RegistryError(ServerError):
    """The registry or its token issuer failed to start or died; the message carries the log tail."""


class RegistryAuth(enum.Enum):
    NONE = "none"
    HTPASSWD = "htpasswd"
    TOKEN = "token"


def _htpasswd_line(user: str, password: str) -> str:
    try:
        import bcrypt
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise RegistryError("the htpasswd registry needs the 'bcrypt' package (pip install 'kpack-py[dev]')") from exc
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{user}:{hashed}"


class Registry(Server):
    """An async context manager running one registry.

    `users` maps user names to passwords for the HTPASSWD and TOKEN variants (default: one random user,
    see `username`/`password`). `policy` decides, for the TOKEN variant, which actions a user gets.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        tls: bool = False,
        auth: RegistryAuth = RegistryAuth.NONE,
        users: dict[str, str] | None = None,
        policy: AccessPolicy = grant_all,
        ca: CertificateAuthority | None = None,
        binary: str | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        super().__init__(directory, "kpack-registry-")
        self.tls = tls
        self.auth = auth
        if users is None and auth is not RegistryAuth.NONE:
            users = {"envtest": secrets.token_urlsafe(12)}
        self.users = dict(users or {})
        self.policy = policy
        self.ca = ca or CertificateAuthority("kpack-py-envtest-registry-ca")
        self.binary = binary or shutil.which(REGISTRY_BINARY) or f"/usr/bin/{REGISTRY_BINARY}"
        self.start_timeout = start_timeout
        self._port: int | None = None
        self._token_port: int | None = None
        self._process: ManagedProcess | None = None
        self._token_runner: web.AppRunner | None = None
        self.token_issuer: TokenIssuer | None = None

    # --- addresses and credentials ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`, the registry part of image references."""
        if self._port is None:
            raise RegistryError("the registry has not been started")
        return f"{LOOPBACK}:{self._port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def token_url(self) -> str:
        if self._token_port is None:
            raise RegistryError("this registry has no token issuer")
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self._token_port}/token"

    @property
    def username(self) -> str:
        return next(iter(self.users))

    @property
    def password(self) -> str:
        return self.users[self.username]

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem

    @property
    def ca_path(self) -> Path:
        return self.directory / "certs" / "ca.crt"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def log_tail(self, lines: int = 40) -> str:
        return self._process.log_tail(lines) if self._process else "(the registry was not started)"

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """What a client needs to talk to this registry: trust in our CA for TLS, nothing for plain HTTP."""
        return ssl.create_default_context(cadata=self.ca_pem.decode()) if self.tls else None

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts the registry (and its token issuer) and waits for `/v2/` to answer; idempotent."""
        if self.running:
            return
        self._require_binary()
        first_start = self._port is None
        for attempt in range(1, (_PORT_ATTEMPTS if first_start else 1) + 1):
            if first_start:
                self._port, self._token_port = free_ports(2)
            try:
                await self._start_once()
                return
            except PortInUseError:
                await self.stop()
                if attempt == _PORT_ATTEMPTS:
                    raise
            except ServerError as exc:
                await self.stop()
                raise RegistryError(str(exc)) from exc

    def _require_binary(self) -> None:
        if not Path(self.binary).exists():
            raise RegistryError(
                f"the registry binary {self.binary} is missing; install Debian's 'docker-registry' package"
            )

    async def stop(self) -> None:
        if self._process is not None:
            await self._process.stop()
        if self._token_runner is not None:
            await self._token_runner.cleanup()
            self._token_runner = None

    async def _start_once(self) -> None:
        config = self._write_config()
        if self.auth is RegistryAuth.TOKEN:
            await self._start_token_issuer()
        self._process = ManagedProcess(
            "docker-registry", [self.binary, "serve", str(config)], self.directory / "registry.log"
        )
        await self._process.start()
        async with aiohttp.ClientSession() as session:

            async def answers() -> bool:
                async with session.get(f"{self.url}/v2/", ssl=self.client_ssl_context() or False) as response:
                    return response.status in (200, 401)

            await self._process.wait_ready(answers, self.start_timeout)

    async def _start_token_issuer(self) -> None:
        certs = self.directory / "certs"
        self.token_issuer = TokenIssuer(
            signer=self.ca.issue_serving(["envtest-token-signer"], rsa_key=True),
            service=SERVICE,
            users=self.users,
            policy=self.policy,
        )
        assert self._token_port is not None
        context = server_ssl_context(str(certs / "registry.crt"), str(certs / "registry.key")) if self.tls else None
        try:
            self._token_runner = await serve(self.token_issuer.application(), LOOPBACK, self._token_port, context)
        except OSError as exc:
            raise PortInUseError(f"token issuer cannot listen on {LOOPBACK}:{self._token_port}: {exc}") from exc

    def _write_config(self) -> Path:
        """The registry's configuration (JSON is valid YAML) plus certificates and htpasswd as needed."""
        certs = self.directory / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        self.ca_path.write_bytes(self.ca_pem)
        http: dict[str, object] = {
            "addr": f"{LOOPBACK}:{self._port}",
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        if self.tls:
            cert, key = self.ca.issue_serving(["localhost", LOOPBACK]).write(certs, "registry")
            http["tls"] = {"certificate": str(cert), "key": str(key)}
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.directory / "data")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
        }
        if self.auth is RegistryAuth.HTPASSWD:
            htpasswd = self.directory / "htpasswd"
            htpasswd.write_text("".join(_htpasswd_line(u, p) + "\n" for u, p in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "envtest-registry", "path": str(htpasswd)}}
        elif self.auth is RegistryAuth.TOKEN:
            config["auth"] = {
                "token": {
                    "realm": self.token_url,
                    "service": SERVICE,
                    "issuer": "kpack-py-envtest-token-issuer",
                    "rootcertbundle": str(self.ca_path),
                }
            }
        path = self.directory / "config.yml"
        path.write_text(json.dumps(config, indent=2))
        return path
