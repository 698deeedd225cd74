"""A small OCI registry token issuer (the Docker token authentication protocol) for envtest's registry.

The registry's `auth.token` points its `realm` here. A client that is refused by the registry with a
`WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge asks this server for a token, with basic
credentials when it has them; the server answers with a JWT signed by a key whose certificate chains to
the registry's `rootcertbundle` (sent in the `x5c` header), granting the requested actions that `policy`
allows. That is the real token flow every registry client has to handle.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kpack_core.envtest.certs import KeyPair
from kpack_core.envtest.webserver import authenticate

TOKEN_LIFETIME_SECONDS = 300

# policy(user or None for anonymous, repository, requested actions) -> granted actions
AccessPolicy = Callable[[str | None, str, list[str]], list[str]]


def grant_all(user: str | None, repository: str, actions: list[str]) -> list[str]:
    """The default policy: whoever authenticated (or anyone, when no users are set) gets what they ask."""
    return actions


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """`repository:name/with/slashes:pull,push` -> ("repository", name, actions); None if malformed.

    The name may itself contain a port-like colon only in theory; the type is before the first colon and
    the actions after the last one, as the registry defines it.
    """
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    resource_type, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
    return resource_type, name, [action for action in actions.split(",") if action]


@dataclass
class TokenIssuer:
    """Issues RS256 JWTs for `service`, signed by `signer`.

    `users` maps user names to passwords; empty means anonymous requests are allowed.
    """

    signer: KeyPair
    service: str
    issuer: str = "kpack-py-envtest-token-issuer"
    users: dict[str, str] = field(default_factory=dict)
    policy: AccessPolicy = grant_all
    issued: int = 0

    def __post_init__(self) -> None:
        key = serialization.load_pem_private_key(self.signer.key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("the token signer must hold an RSA key (RS256)")
        self._key = key
        certificate = x509.load_pem_x509_certificate(self.signer.cert_pem)
        self._x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()

    def sign(self, subject: str, access: list[dict[str, object]]) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    async def handle_token(self, request: web.Request) -> web.Response:
        user = authenticate(request.headers.get("Authorization"), self.users)
        if user is None:
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="envtest-token-issuer"'},
            )
        if request.query.get("service", self.service) != self.service:
            return web.json_response({"errors": [{"code": "DENIED", "message": "unknown service"}]}, status=400)
        access: list[dict[str, object]] = []
        for scope in request.query.getall("scope", []):
            for single in scope.split(" "):
                parsed = parse_scope(single)
                if parsed is None:
                    continue
                resource_type, name, actions = parsed
                granted = self.policy(user or None, name, actions)
                access.append({"type": resource_type, "name": name, "actions": granted})
        token = self.sign(user or "anonymous", access)
        self.issued += 1
        return web.json_response(
            {
                "token": token,
                "access_token": token,
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/token", self.handle_token)
        return app
