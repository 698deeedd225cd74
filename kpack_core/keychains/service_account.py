"""Registry keychains for a namespace and service account, as kpack's `KeychainForSecretRef` (spec §0.6).

With a namespace, three keychains are asked in order and the first that knows credentials answers:

1. `ServiceAccountSecretsKeychain`: the service account's `secrets` (default account `default`), merged first-wins
   as kpack does (annotated basic-auth secrets, then dockercfg/dockerconfigjson), matched by kpack's exact rule;
2. the `VolumeKeychain` (`CREDENTIAL_PROVIDER_SECRET_PATH`);
3. `PullSecretsKeychain`: k8schain's keyring over the explicit image pull secrets, then the service account's
   `imagePullSecrets`, matched by the Kubernetes glob rule.

Without a namespace only the volume keychain is asked (kpack adds cloud-provider helpers there; we have none).
A missing service account gives no credentials and missing secrets are skipped. A malformed secret is fatal: the
resolve raises `SecretFormatError` naming it, as kpack fails the whole keychain, rather than quietly pushing as
someone else (or anonymously) and failing later with a less helpful 401.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kpack_core.keychains.dockerconfig import DockerCredentials
from kpack_core.keychains.matching import Keyring
from kpack_core.keychains.multi import MultiKeychain
from kpack_core.keychains.reader import (
    DEFAULT_SERVICE_ACCOUNT,
    SecretReader,
    image_pull_secret_names,
    read_secrets,
    read_service_account,
    secret_names,
)
from kpack_core.keychains.secrets import docker_config_credentials, kpack_docker_credentials
from kpack_core.keychains.snapshot import Snapshot
from kpack_core.keychains.volume import VolumeKeychain
from kpack_core.registry.auth import ANONYMOUS, Credentials
from kpack_core.registry.reference import Reference


async def service_account_secrets(reader: SecretReader, namespace: str, service_account: str) -> list[dict[str, Any]]:
    """The existing secrets of the service account's `secrets` list, in order; empty without the account."""
    account = await read_service_account(reader, namespace, service_account or DEFAULT_SERVICE_ACCOUNT)
    return await read_secrets(reader, namespace, secret_names(account))


class ServiceAccountSecretsKeychain:
    """kpack's own credentials from a service account's `secrets`, matched by registry host exactly."""

    def __init__(self, reader: SecretReader, namespace: str, service_account: str = DEFAULT_SERVICE_ACCOUNT) -> None:
        self.reader = reader
        self.namespace = namespace
        self.service_account = service_account or DEFAULT_SERVICE_ACCOUNT
        self._credentials = Snapshot(self._load)

    def __repr__(self) -> str:
        return f"ServiceAccountSecretsKeychain({self.namespace}/{self.service_account})"

    async def _load(self) -> DockerCredentials:
        secrets = await service_account_secrets(self.reader, self.namespace, self.service_account)
        return kpack_docker_credentials(secrets)

    async def credentials(self) -> DockerCredentials:
        return await self._credentials.get()

    def reset(self) -> None:
        self._credentials.reset()

    async def resolve(self, reference: Reference) -> Credentials:
        return (await self.credentials()).for_registry(reference.registry)


class PullSecretsKeychain:
    """k8schain: the Kubernetes keyring over image pull secrets (explicit ones first, then the service account's
    `imagePullSecrets`), looked up with the repository name (`registry/repository`), so keys with a path work.

    Only `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg` secrets count, as in the kubelet. Unlike
    the kubelet's keyring, identity and registry tokens of an entry are kept, not dropped.
    """

    def __init__(
        self,
        reader: SecretReader,
        namespace: str,
        service_account: str = DEFAULT_SERVICE_ACCOUNT,
        image_pull_secrets: Iterable[str] = (),
    ) -> None:
        self.reader = reader
        self.namespace = namespace
        self.service_account = service_account or DEFAULT_SERVICE_ACCOUNT
        self.image_pull_secrets = tuple(image_pull_secrets)
        self._keyring = Snapshot(self._load)

    def __repr__(self) -> str:
        return f"PullSecretsKeychain({self.namespace}/{self.service_account}, extra={list(self.image_pull_secrets)})"

    async def _load(self) -> Keyring:
        account = await read_service_account(self.reader, self.namespace, self.service_account)
        names = [*self.image_pull_secrets, *image_pull_secret_names(account)]
        secrets = await read_secrets(self.reader, self.namespace, names)
        configs = [config for config in map(docker_config_credentials, secrets) if config is not None]
        return Keyring(configs)

    async def keyring(self) -> Keyring:
        return await self._keyring.get()

    def reset(self) -> None:
        self._keyring.reset()

    async def resolve(self, reference: Reference) -> Credentials:
        found = (await self.keyring()).lookup(reference.name)
        return found[0] if found else ANONYMOUS


class ServiceAccountKeychain:
    """kpack's keychain for (namespace, service account, image pull secrets); see the module docstring.

    Each part reads its secrets once, on first use: make one keychain per reconcile, or `reset()` it.
    `volume_directory` overrides `CREDENTIAL_PROVIDER_SECRET_PATH`; `environ` is where that is looked up.
    """

    def __init__(
        self,
        reader: SecretReader,
        namespace: str,
        service_account: str = DEFAULT_SERVICE_ACCOUNT,
        image_pull_secrets: Iterable[str] = (),
        *,
        volume_directory: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.namespace = namespace
        self.service_account = service_account or DEFAULT_SERVICE_ACCOUNT
        self.volume = VolumeKeychain(volume_directory, environ=environ)
        self.secrets: ServiceAccountSecretsKeychain | None = None
        self.pull_secrets: PullSecretsKeychain | None = None
        if namespace:
            self.secrets = ServiceAccountSecretsKeychain(reader, namespace, self.service_account)
            self.pull_secrets = PullSecretsKeychain(reader, namespace, self.service_account, image_pull_secrets)
            self._chain = MultiKeychain(self.secrets, self.volume, self.pull_secrets)
        else:
            self._chain = MultiKeychain(self.volume)

    def __repr__(self) -> str:
        return f"ServiceAccountKeychain({self.namespace}/{self.service_account}, {self._chain!r})"

    def reset(self) -> None:
        """Read every secret again on the next resolve."""
        self.volume.reset()
        for part in (self.secrets, self.pull_secrets):
            if part is not None:
                part.reset()

    async def resolve(self, reference: Reference) -> Credentials:
        return await self._chain.resolve(reference)


async def service_account_docker_config(
    reader: SecretReader,
    namespace: str,
    service_account: str = DEFAULT_SERVICE_ACCOUNT,
    builder_pull_secrets: Iterable[str] = (),
    *,
    builder_pull_secrets_namespace: str | None = None,
) -> dict[str, Any]:
    """The docker `config.json` (`{"auths": {...}}`) a build's lifecycle gets: the service account's docker
    secrets merged as kpack's build-init merges them (annotated basic-auth, then dockercfg/dockerconfigjson), then
    the builder's pull secrets (read in `builder_pull_secrets_namespace`, default `namespace`); first-wins."""
    secrets = await service_account_secrets(reader, namespace, service_account)
    pull = await read_secrets(reader, builder_pull_secrets_namespace or namespace, builder_pull_secrets)
    return kpack_docker_credentials(secrets, pull).to_config_json()
