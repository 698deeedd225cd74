"""Secret and service account objects as the apiserver returns them, and an in-memory `SecretReader`."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

JSON = dict[str, Any]


def b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def secret(
    name: str,
    kind: str,
    data: dict[str, str | bytes],
    *,
    namespace: str = "team",
    annotations: dict[str, str] | None = None,
) -> JSON:
    """A Secret with `data` base64-encoded, as read from the API."""
    metadata: JSON = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": kind,
        "data": {key: b64(value) for key, value in data.items()},
    }


def dockerconfigjson(name: str, auths: dict[str, Any], **kwargs: Any) -> JSON:
    return secret(name, "kubernetes.io/dockerconfigjson", {".dockerconfigjson": json.dumps({"auths": auths})}, **kwargs)


def dockercfg(name: str, entries: dict[str, Any], **kwargs: Any) -> JSON:
    return secret(name, "kubernetes.io/dockercfg", {".dockercfg": json.dumps(entries)}, **kwargs)


def basic_auth(name: str, username: str, password: str, annotations: dict[str, str], **kwargs: Any) -> JSON:
    return secret(
        name,
        "kubernetes.io/basic-auth",
        {"username": username, "password": password},
        annotations=annotations,
        **kwargs,
    )


def service_account(
    name: str = "default", secrets: Sequence[str] = (), pull_secrets: Sequence[str] = (), namespace: str = "team"
) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
        "secrets": [{"name": s} for s in secrets],
        "imagePullSecrets": [{"name": s} for s in pull_secrets],
    }


class MemoryReader:
    """A `SecretReader` over a list of objects; counts reads so tests can prove snapshots read once."""

    def __init__(self, *objects: JSON) -> None:
        self.objects = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
        self.reads = 0

    async def secret(self, namespace: str, name: str) -> JSON | None:
        self.reads += 1
        return self.objects.get(("Secret", namespace, name))

    async def service_account(self, namespace: str, name: str) -> JSON | None:
        self.reads += 1
        return self.objects.get(("ServiceAccount", namespace, name))
