"""The sealed environment every git child runs in, and how credentials reach it without being exposed.

- Nothing of the machine's or user's git setup applies: `GIT_CONFIG_NOSYSTEM=1`, `GIT_CONFIG_GLOBAL=/dev/null`,
  and `HOME` is a private scratch directory (so no `~/.netrc`, which git's curl would read). Settings are passed
  as `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`, never as `-c` arguments.
- No prompt can ever block: `GIT_TERMINAL_PROMPT=0`, no askpass program, ssh in `BatchMode`.
- Only network transports (`GIT_ALLOW_PROTOCOL`), also for redirects and submodule-like indirections.
- Secrets are never on a command line (readable by anyone in /proc/<pid>/cmdline) nor in a file other than the
  0600 key file: a username and password travel in the child's environment (readable only by the same user) and
  a credential helper, itself free of secrets, prints them to git when asked (`get`) and ignores `store`/`erase`.
- SSH: the private key is written to a 0600 file in the 0700 scratch directory; `GIT_SSH_COMMAND` runs ssh with
  `-F /dev/null` (no user ssh config), `IdentitiesOnly`, no agent, and `BatchMode`. Host keys: with `known_hosts`
  given, only those keys are accepted (`StrictHostKeyChecking=yes`). Without, any host key is accepted
  (`accept-new` into a file that lives only as long as the session) — what kpack 0.4.0 did, since libgit2 had no
  known-hosts file; the connection is then encrypted but not protected against an active man in the middle.

The scratch directory is removed when the session ends, taking the key file with it.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from kpack_core.source.credentials import GitCredential, GitCredentialKind
from kpack_core.source.errors import InvalidCredentialError
from kpack_core.source.urls import GitTransport, GitUrl

USERNAME_VARIABLE = "KPACK_GIT_USERNAME"
PASSWORD_VARIABLE = "KPACK_GIT_PASSWORD"
# A credential helper run by git's shell: answers `get` with the two variables, ignores `store` and `erase` (git
# calls those after success or failure). stdin (git's request) is drained so git never sees a broken pipe.
CREDENTIAL_HELPER = (
    f'!f() {{ cat >/dev/null; test "$1" = get || exit 0; '
    f'printf \'username=%s\\npassword=%s\\n\' "${USERNAME_VARIABLE}" "${PASSWORD_VARIABLE}"; }}; f'
)
ALLOWED_PROTOCOLS = "http:https:ssh:git"
# Variables passed through from the controller's environment: the way to the network (proxies) and the CAs it
# trusts. Everything else is left out.
_PASSED_THROUGH = (
    "PATH",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
)
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class SshOptions:
    """How ssh treats the server. `known_hosts` is the content of a known_hosts file; None accepts any key."""

    known_hosts: bytes | None = None
    connect_timeout: int = 30


def check_credential(credential: GitCredential) -> None:
    """Refuses what git's line-based credential protocol or ssh could misread; names the credential's source."""
    if credential.kind is GitCredentialKind.BASIC:
        for name, value in (("username", credential.username), ("password", credential.password)):
            if "\n" in value or "\r" in value or "\0" in value:
                raise InvalidCredentialError(credential.source, f"the {name} contains a line break or NUL")
    elif not credential.private_key.strip():
        raise InvalidCredentialError(credential.source, "the ssh private key is empty")


def applicable(credential: GitCredential | None, remote: GitUrl) -> GitCredential | None:
    """The credential if the remote's transport can use it (basic for http(s), a key for ssh), else None."""
    if credential is None:
        return None
    if credential.kind is GitCredentialKind.BASIC and remote.transport is GitTransport.HTTP:
        return credential
    if credential.kind is GitCredentialKind.SSH and remote.transport is GitTransport.SSH:
        return credential
    return None


class GitSession:
    """A scratch directory and the environment for the git children of one resolution. `async with` it."""

    def __init__(self, credential: GitCredential | None, ssh: SshOptions | None = None) -> None:
        if credential is not None:
            check_credential(credential)
        self.credential = credential
        self.ssh = ssh or SshOptions()
        self._directory: Path | None = None

    @property
    def directory(self) -> Path:
        if self._directory is None:
            raise RuntimeError("GitSession used outside `async with`")
        return self._directory

    async def __aenter__(self) -> Self:
        self._directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="kpack-git-"))
        await asyncio.to_thread(self._write_files, self._directory)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._directory is not None:
            await asyncio.to_thread(shutil.rmtree, self._directory, True)
            self._directory = None

    def _write_files(self, directory: Path) -> None:
        if self.credential is not None and self.credential.kind is GitCredentialKind.SSH:
            key = self.credential.private_key
            _write_private(directory / "identity", key if key.endswith(b"\n") else key + b"\n")
        _write_private(directory / "known_hosts", self.ssh.known_hosts or b"")

    def env(self, config: Mapping[str, str] | None = None) -> dict[str, str]:
        """The complete environment of a git child; `config` adds git settings (key -> value)."""
        directory = self.directory
        env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
        env.setdefault("PATH", _DEFAULT_PATH)
        env.update(
            {
                "HOME": str(directory),
                "XDG_CONFIG_HOME": str(directory / ".config"),
                "LANG": "C",
                "LC_ALL": "C",
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
                "GIT_PROTOCOL_FROM_USER": "0",
                "GIT_SSH_VARIANT": "ssh",
                "GIT_SSH_COMMAND": self._ssh_command(directory),
            }
        )
        settings: list[tuple[str, str]] = [("protocol.version", "2"), ("credential.helper", "")]
        credential = self.credential
        if credential is not None and credential.kind is GitCredentialKind.BASIC:
            settings.append(("credential.helper", CREDENTIAL_HELPER))
            env[USERNAME_VARIABLE] = credential.username
            env[PASSWORD_VARIABLE] = credential.password
        settings.extend((config or {}).items())
        env["GIT_CONFIG_COUNT"] = str(len(settings))
        for index, (key, value) in enumerate(settings):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        return env

    def _ssh_command(self, directory: Path) -> str:
        strict = "yes" if self.ssh.known_hosts is not None else "accept-new"
        has_key = self.credential is not None and self.credential.kind is GitCredentialKind.SSH
        identity = ["-i", str(directory / "identity")] if has_key else ["-o", "IdentityFile=none"]
        words = [
            "ssh",
            "-F",
            os.devnull,
            *identity,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            f"StrictHostKeyChecking={strict}",
            "-o",
            f"UserKnownHostsFile={directory / 'known_hosts'}",
            "-o",
            f"GlobalKnownHostsFile={os.devnull}",
            "-o",
            f"ConnectTimeout={self.ssh.connect_timeout}",
        ]
        # git runs GIT_SSH_COMMAND through the shell: quote every word (the scratch path is ours, but still).
        return " ".join(shlex.quote(word) for word in words)


def _write_private(path: Path, data: bytes) -> None:
    """Writes `data` to a new file only the owner can read (created 0600, never wider for a moment)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
