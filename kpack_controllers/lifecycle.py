"""The lifecycle image provider (spec §1.3.3): which lifecycle image builders copy `/cnb/lifecycle` from.

The ConfigMap `lifecycle-image` in the system namespace names it: key `image`, and optionally
`serviceAccountRef.name` / `serviceAccountRef.namespace` for the credentials that read it. Differences from kpack:

- A missing or invalid ConfigMap is not fatal to the process: `current()` raises `LifecycleNotConfiguredError` and
  the builders say so in their `Ready` condition; they are reconciled again when the ConfigMap appears (the builder
  controllers watch it).
- The image is not fetched once per ConfigMap change but looked up on every `current()` (one HEAD of the tag), so a
  lifecycle image moved under the same tag is noticed by the next builder reconcile (and the periodic re-check).
  The parsed image is kept per digest, and a digest change calls the `on_change` listeners, which re-reconcile
  every builder, as kpack's global resync did.
- `serviceAccountRef.name` without a namespace means the system namespace (kpack fell back to anonymous access).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import structlog

from kpack_controllers.registry_clients import RegistryClientFactory
from kpack_core.cnb import LifecycleImage, LifecycleImageError, LifecycleNotConfiguredError, RemoteLayer, read_image
from kpack_core.keychains import SecretReader, ServiceAccountKeychain
from kpack_core.registry import (
    InvalidReferenceError,
    Keychain,
    Reference,
    RegistryError,
    parse_reference,
)
from kpack_core.runtime.informer import Informer

log = structlog.get_logger(__name__)

JSON = dict[str, Any]

LIFECYCLE_CONFIGMAP: Final = "lifecycle-image"
IMAGE_KEY: Final = "image"
SERVICE_ACCOUNT_NAME_KEY: Final = "serviceAccountRef.name"
SERVICE_ACCOUNT_NAMESPACE_KEY: Final = "serviceAccountRef.namespace"
DEFAULT_SYSTEM_NAMESPACE: Final = "kpack"


@dataclass(frozen=True)
class LifecycleConfig:
    """The ConfigMap's content: the image, and who reads it (no namespace: the volume keychain only)."""

    image: Reference
    service_account: str | None = None
    service_account_namespace: str | None = None


def parse_config(configmap: JSON | None, namespace: str) -> LifecycleConfig:
    """The lifecycle config of the ConfigMap as read (None when it does not exist)."""
    where = f"ConfigMap {namespace}/{LIFECYCLE_CONFIGMAP}"
    if configmap is None:
        raise LifecycleNotConfiguredError(f"{where} not found")
    data = configmap.get("data") or {}
    image = data.get(IMAGE_KEY)
    if not isinstance(image, str) or not image:
        raise LifecycleNotConfiguredError(f"{where} has no key {IMAGE_KEY!r}")
    try:
        reference = parse_reference(image)
    except InvalidReferenceError as exc:
        raise LifecycleNotConfiguredError(f"{where}: key {IMAGE_KEY!r}: {exc}") from None
    name = data.get(SERVICE_ACCOUNT_NAME_KEY) or None
    account_namespace = data.get(SERVICE_ACCOUNT_NAMESPACE_KEY) or None
    if name is not None and account_namespace is None:
        account_namespace = namespace
    return LifecycleConfig(reference, name, account_namespace)


@dataclass(frozen=True)
class _Loaded:
    config: LifecycleConfig
    digest: str
    image: LifecycleImage


class LifecycleImageProvider:
    """The current lifecycle image, read through `configmaps` (an informer of the system namespace)."""

    def __init__(
        self,
        configmaps: Informer,
        registry_clients: RegistryClientFactory,
        secrets: SecretReader,
        namespace: str = DEFAULT_SYSTEM_NAMESPACE,
    ) -> None:
        self.configmaps = configmaps
        self.registry_clients = registry_clients
        self.secrets = secrets
        self.namespace = namespace
        self._loaded: _Loaded | None = None
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (it must not block) whenever the lifecycle image digest changes."""
        self._listeners.append(listener)

    def config(self) -> LifecycleConfig:
        return parse_config(self.configmaps.get(LIFECYCLE_CONFIGMAP, self.namespace), self.namespace)

    def keychain(self, config: LifecycleConfig) -> Keychain:
        # No service account: an empty namespace gives the volume keychain only (kpack's anonymous + ambient).
        return ServiceAccountKeychain(
            self.secrets, config.service_account_namespace or "", config.service_account or "default"
        )

    async def current(self) -> LifecycleImage:
        """The lifecycle image the ConfigMap names, as it is now; `BuilderError`s name what is wrong."""
        config = self.config()
        async with self.registry_clients(self.keychain(config)) as client:
            try:
                digest = await client.get_digest(config.image)
                loaded = self._loaded
                if loaded is not None and loaded.config == config and loaded.digest == digest:
                    return loaded.image
                async with self._lock:
                    image = LifecycleImage.of(await read_image(client, config.image.with_digest(digest)))
            except RegistryError as exc:
                raise LifecycleImageError(str(config.image), f"cannot be read: {_without_reference(exc)}") from exc
        previous, self._loaded = self._loaded, _Loaded(config, digest, image)
        if previous is not None and previous.digest != digest:
            log.info("lifecycle image changed", image=str(config.image), digest=digest, previous=previous.digest)
            for listener in self._listeners:
                listener()
        return image

    async def read_blob(self, layer: RemoteLayer) -> bytes:
        """A lifecycle layer's bytes, with the lifecycle's credentials (when a builder push cannot mount it)."""
        async with self.registry_clients(self.keychain(self.config())) as client:
            return await client.get_blob(layer.source, layer.digest)


def _without_reference(exc: RegistryError) -> str:
    """The registry's message without the leading `<reference>: ` (the caller names the image already)."""
    text = str(exc)
    prefix = f"{exc.reference}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
