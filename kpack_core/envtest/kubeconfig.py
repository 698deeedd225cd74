"""Kubeconfig files for the envtest control plane: the admin, minted users and service accounts.

Written as JSON, which is valid YAML, so kubectl, kubernetes-asyncio and client-go all read them; credentials
are embedded (`*-data` fields) so a file stands on its own, and files are created with mode 0600.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

CLUSTER_NAME = "envtest"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Credentials:
    """How a kubeconfig user authenticates: a client certificate or a bearer token."""

    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None


def render(server: str, ca_pem: bytes, user: str, credentials: Credentials) -> dict[str, object]:
    """A single-context kubeconfig for `user` against `server`."""
    user_entry: dict[str, str] = {}
    if credentials.client_cert_pem is not None and credentials.client_key_pem is not None:
        user_entry["client-certificate-data"] = _b64(credentials.client_cert_pem)
        user_entry["client-key-data"] = _b64(credentials.client_key_pem)
    if credentials.token is not None:
        user_entry["token"] = credentials.token
    if not user_entry:
        raise ValueError(f"kubeconfig user {user!r} has neither a client certificate nor a token")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": user, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": user,
        "preferences": {},
    }


def write(path: Path, config: dict[str, object]) -> Path:
    """Writes `config` to `path` readable only by its owner; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
