"""`DockerCredentials`: the entries of a docker config (`{"auths": {<key>: {...}}}`), merged first-wins.

This is kpack's own credential set (`pkg/dockercreds`): what build-init assembles from the service account's
secrets and writes to `$HOME/.docker/config.json` for the lifecycle, and what the controller's first keychain
matches with kpack's exact key rule (`matching.kpack_key_matches`). Entries keep the order in which they were
claimed, so "the first secret to claim a host wins" holds even when two spellings of one host (`gcr.io`,
`https://gcr.io`) were claimed by different secrets.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kpack_core.keychains.matching import kpack_key_matches
from kpack_core.registry.auth import ANONYMOUS, Credentials
from kpack_core.registry.reference import Reference


class DockerCredentials(Mapping[str, Credentials]):
    """Credentials by docker config key, in claim order. Immutable; `merged` returns a new set.

    The repr lists the keys only: credentials never reach a log through it.
    """

    def __init__(self, entries: Mapping[str, Credentials] | Iterable[tuple[str, Credentials]] = ()) -> None:
        items = entries.items() if isinstance(entries, Mapping) else entries
        self._entries: dict[str, Credentials] = {}
        for key, credentials in items:
            self._entries.setdefault(key, credentials)

    def __getitem__(self, key: str) -> Credentials:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"DockerCredentials(keys={list(self._entries)!r})"

    def merged(self, *others: Mapping[str, Credentials]) -> DockerCredentials:
        """This set with the keys of `others` it does not have yet: a key already present is never replaced."""
        entries = dict(self._entries)
        for other in others:
            for key, credentials in other.items():
                entries.setdefault(key, credentials)
        return DockerCredentials(entries)

    def for_registry(self, registry: str) -> Credentials:
        """The first entry whose key names `registry` (a host such as `gcr.io`; Docker Hub is `index.docker.io`)
        by kpack's exact rule; anonymous when none does."""
        for key, credentials in self._entries.items():
            if kpack_key_matches(key, registry):
                return credentials
        return ANONYMOUS

    async def resolve(self, reference: Reference) -> Credentials:
        """The `Keychain` protocol: kpack matches on the registry host only, never on the repository path."""
        return self.for_registry(reference.registry)

    def to_config_json(self) -> dict[str, Any]:
        """The docker `config.json` document, `{"auths": {...}}`, as the lifecycle and the Docker CLI read it.

        Each entry carries `auth` (base64 of `username:password`) next to `username` and `password`, as ggcr writes
        it, so readers that know only one of the two spellings still authenticate; empty fields are left out.
        """
        return {"auths": {key: _config_entry(credentials) for key, credentials in self._entries.items()}}


def _config_entry(credentials: Credentials) -> dict[str, str]:
    entry: dict[str, str] = {}
    if credentials.username or credentials.password:
        entry["username"] = credentials.username
        entry["password"] = credentials.password
        entry["auth"] = encode_auth(credentials.username, credentials.password)
    if credentials.identity_token:
        entry["identitytoken"] = credentials.identity_token
    if credentials.registry_token:
        entry["registrytoken"] = credentials.registry_token
    return entry


def encode_auth(username: str, password: str) -> str:
    """A docker config `auth` field: base64 of `username:password`."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()
