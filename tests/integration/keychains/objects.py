"""Creating service accounts and secrets on the apiserver, and small images to push, for the keychain tests."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from typing import Any

from kpack_core.registry import Descriptor, ImageManifest, RegistryClient, mediatypes, sha256_digest
from kpack_core.registry.reference import Reference
from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import SECRETS, SERVICE_ACCOUNTS

JSON = dict[str, Any]


def b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


async def create_secret(
    client: Client,
    namespace: str,
    name: str,
    kind: str,
    data: dict[str, str | bytes],
    annotations: dict[str, str] | None = None,
) -> JSON:
    metadata: JSON = {"name": name, "namespace": namespace, "annotations": annotations or {}}
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": kind}
    body["data"] = {key: b64(value) for key, value in data.items()}
    return await client.create(SECRETS, body, namespace)


async def create_docker_config_json(client: Client, namespace: str, name: str, auths: dict[str, JSON]) -> JSON:
    data: dict[str, str | bytes] = {".dockerconfigjson": json.dumps({"auths": auths})}
    return await create_secret(client, namespace, name, "kubernetes.io/dockerconfigjson", data)


async def create_service_account(
    client: Client, namespace: str, name: str, secrets: Sequence[str] = (), pull_secrets: Sequence[str] = ()
) -> JSON:
    body = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
        "secrets": [{"name": s} for s in secrets],
        "imagePullSecrets": [{"name": s} for s in pull_secrets],
    }
    return await client.create(SERVICE_ACCOUNTS, body, namespace)


async def push_small_image(client: RegistryClient, reference: Reference, label: str) -> Reference:
    """Pushes a one-layer image labelled `io.kpack.test=<label>`; returns the digest reference."""
    layer = os.urandom(512)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"io.kpack.test": label}},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]},
        }
    ).encode()
    manifest = ImageManifest(
        config=Descriptor.of(config, mediatypes.OCI_CONFIG),
        layers=(Descriptor.of(layer, mediatypes.OCI_UNCOMPRESSED_LAYER),),
    )
    return await client.push_image(reference, manifest, [layer, config])
