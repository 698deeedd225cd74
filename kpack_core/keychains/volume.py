"""The volume keychain: docker secrets mounted into the controller's pod, in one directory.

kpack reads the directory named by `CREDENTIAL_PROVIDER_SECRET_PATH` (no variable: no credentials), files
`.dockerconfigjson` and `.dockercfg` (either may be absent), and matches with kpack's exact rule. The same reader
serves build-init, which finds each selected docker secret mounted as such a directory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

from kpack_core.keychains.dockerconfig import DockerCredentials
from kpack_core.keychains.secrets import DOCKER_CONFIG_JSON_KEY, DOCKERCFG_KEY, parse_docker_config
from kpack_core.keychains.snapshot import Snapshot
from kpack_core.registry.auth import Credentials
from kpack_core.registry.reference import Reference

CREDENTIAL_PROVIDER_SECRET_PATH = "CREDENTIAL_PROVIDER_SECRET_PATH"
"""Environment variable naming the directory of mounted docker secrets."""


def read_docker_config_dir(directory: Path) -> DockerCredentials:
    """The credentials of `directory/.dockerconfigjson` then `directory/.dockercfg`, first-wins (a missing file or
    directory contributes nothing). Blocking: call it through `load_docker_config_dir` in async code."""
    merged = DockerCredentials()
    for name, wrapped in ((DOCKER_CONFIG_JSON_KEY, True), (DOCKERCFG_KEY, False)):
        path = directory / name
        if not path.is_file():
            continue
        merged = merged.merged(parse_docker_config(path.read_bytes(), f"directory {directory}", name, wrapped=wrapped))
    return merged


async def load_docker_config_dir(directory: Path) -> DockerCredentials:
    """`read_docker_config_dir` in a thread, so the event loop never waits on the file system."""
    return await asyncio.to_thread(read_docker_config_dir, directory)


def volume_directory(environ: Mapping[str, str] | None = None) -> Path | None:
    """The directory `CREDENTIAL_PROVIDER_SECRET_PATH` names, or None when it is unset or empty."""
    value = (os.environ if environ is None else environ).get(CREDENTIAL_PROVIDER_SECRET_PATH, "")
    return Path(value) if value else None


class VolumeKeychain:
    """kpack's exact-match keychain over one directory of mounted docker secrets (a snapshot, read on first use).

    `directory` None means the one named by `CREDENTIAL_PROVIDER_SECRET_PATH` (and no credentials without it);
    "" means no directory (never the current one).
    """

    def __init__(self, directory: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        if directory is None:
            self.directory = volume_directory(environ)
        else:
            self.directory = Path(directory) if str(directory) else None
        self._credentials = Snapshot(self._load)

    def __repr__(self) -> str:
        return f"VolumeKeychain({str(self.directory) if self.directory else None!r})"

    async def _load(self) -> DockerCredentials:
        if self.directory is None:
            return DockerCredentials()
        return await load_docker_config_dir(self.directory)

    async def credentials(self) -> DockerCredentials:
        return await self._credentials.get()

    def reset(self) -> None:
        """Read the directory again on the next resolve (the kubelet updates mounted secrets in place)."""
        self._credentials.reset()

    async def resolve(self, reference: Reference) -> Credentials:
        return (await self.credentials()).for_registry(reference.registry)
