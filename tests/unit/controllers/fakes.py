"""In-memory stand-ins for what the ClusterStack and ClusterStore reconcilers talk to: the informer cache, the
status writes, the secret reader, the registry (serving images assembled by `kpack_core.envtest.cnb`) and the event
recorder. They record calls so tests can assert on what was read and written."""

from __future__ import annotations

import base64
import copy
import json
from types import TracebackType
from typing import Any

from kpack_core.envtest.cnb import ImageBuild
from kpack_core.registry import (
    ManifestUnknownError,
    RawManifest,
    Reference,
    parse_reference,
)

JSON = dict[str, Any]


class FakeInformer:
    """`get(name)` from a dict of cluster-scoped objects, returning copies as the real cache does."""

    def __init__(self, *objects: JSON) -> None:
        self.objects = {obj["metadata"]["name"]: obj for obj in objects}

    def get(self, name: str, namespace: str | None = None) -> JSON | None:
        found = self.objects.get(name)
        return copy.deepcopy(found) if found is not None else None


class FakeClient:
    """Records `update_status` calls and stores the status on the informer's object (as the watch would)."""

    def __init__(self, informer: FakeInformer) -> None:
        self.informer = informer
        self.status_updates: list[JSON] = []

    async def update_status(self, resource: Any, obj: JSON) -> JSON:
        self.status_updates.append(copy.deepcopy(obj["status"]))
        self.informer.objects[obj["metadata"]["name"]] = copy.deepcopy(obj)
        return obj


class FakeSecrets:
    """A `SecretReader` over dicts keyed by (namespace, name)."""

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], JSON] = {}
        self.accounts: dict[tuple[str, str], JSON] = {}
        self.reads: list[tuple[str, str, str]] = []

    def add_docker_secret(self, namespace: str, name: str, registry: str, username: str, password: str) -> None:
        auths = {registry: {"username": username, "password": password}}
        data = base64.b64encode(json.dumps({"auths": auths}).encode()).decode()
        self.secrets[(namespace, name)] = {
            "metadata": {"namespace": namespace, "name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": data},
        }

    def add_account(self, namespace: str, name: str, secrets: list[str], pull_secrets: list[str] = []) -> None:  # noqa: B006
        self.accounts[(namespace, name)] = {
            "metadata": {"namespace": namespace, "name": name},
            "secrets": [{"name": s} for s in secrets],
            "imagePullSecrets": [{"name": s} for s in pull_secrets],
        }

    async def secret(self, namespace: str, name: str) -> JSON | None:
        self.reads.append(("secret", namespace, name))
        return self.secrets.get((namespace, name))

    async def service_account(self, namespace: str, name: str) -> JSON | None:
        self.reads.append(("serviceaccount", namespace, name))
        return self.accounts.get((namespace, name))


class FakeRegistry:
    """Images by reference text (tag or digest); `fail` maps a reference to the exception reading it raises."""

    def __init__(self) -> None:
        self.images: dict[str, ImageBuild] = {}
        self.fail: dict[str, Exception] = {}
        self.keychains: list[Any] = []
        self.closed = 0

    def put(self, reference: str, image: ImageBuild) -> str:
        """Serve `image` at `reference` (and by digest); returns its `<repository>@<digest>`."""
        self.images[reference] = image
        by_digest = f"{parse_reference(reference).name}@{image.digest}"
        self.images[by_digest] = image
        return by_digest

    def factory(self, keychain: Any) -> FakeRegistry:
        self.keychains.append(keychain)
        return self

    async def __aenter__(self) -> FakeRegistry:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.closed += 1

    def _image(self, reference: Reference | str) -> ImageBuild:
        ref = reference if isinstance(reference, Reference) else parse_reference(reference)
        for key in (str(reference), f"{ref.name}@{ref.digest}", f"{ref.name}:{ref.tag}"):
            if key in self.fail:
                raise self.fail[key]
        for key, image in self.images.items():
            known = parse_reference(key)
            if known.name == ref.name and (known.identifier == ref.identifier):
                return image
        raise ManifestUnknownError(str(ref), "get manifest failed with HTTP 404: MANIFEST_UNKNOWN: manifest unknown")

    async def resolve_image(self, reference: Reference | str) -> RawManifest:
        return RawManifest.of(self._image(reference).manifest)

    async def get_blob(self, reference: Reference | str, digest: str) -> bytes:
        return self._image(reference).blobs[digest]


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: JSON, type: str, reason: str, message: str) -> None:
        self.events.append((type, reason, message))
