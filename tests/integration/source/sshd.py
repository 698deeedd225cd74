"""A real OpenSSH server on loopback for the SSH tests, run as the current user with its own host key, config and
authorized keys in a temporary directory. Clients log in as the current user and run `git-upload-pack` on
repositories given by absolute path.

Needs Debian's `openssh-server` (/usr/sbin/sshd). Run as root, sshd insists on its privilege separation directory
/run/sshd, which the Debian service creates when it starts; it is created here the same way (empty, root-owned,
0755) when missing.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
from pathlib import Path
from types import TracebackType

from kpack_core.envtest.ports import LOOPBACK, free_port

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIRECTORY = Path("/run/sshd")


class SshdError(RuntimeError):
    """sshd is missing or did not start; the message says why."""


async def _run(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise SshdError(f"{' '.join(args)} failed: {(out + err).decode(errors='replace').strip()}")


async def keypair(path: Path) -> tuple[bytes, bytes]:
    """A new ed25519 key pair at `path` and `path.pub`; returns (private key, public key)."""
    await _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kpack-test", "-f", str(path))
    return await asyncio.to_thread(_read_pair, path)


def _read_pair(path: Path) -> tuple[bytes, bytes]:
    return path.read_bytes(), Path(f"{path}.pub").read_bytes()


class SshServer:
    """`async with SshServer(directory, authorized=[public key]) as sshd:` serves on `127.0.0.1:sshd.port`."""

    def __init__(self, directory: Path, authorized: list[bytes]) -> None:
        self.directory = directory
        self.authorized = authorized
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_public_key = b""
        self._process: asyncio.subprocess.Process | None = None

    def url(self, repository: Path) -> str:
        return f"ssh://{self.user}@{LOOPBACK}:{self.port}{repository}"

    @property
    def known_hosts(self) -> bytes:
        """A known_hosts line for this server's host key."""
        key_type, key = self.host_public_key.split()[:2]
        return f"[{LOOPBACK}]:{self.port} ".encode() + key_type + b" " + key + b"\n"

    async def __aenter__(self) -> SshServer:
        await asyncio.to_thread(self._check_and_prepare)
        _, self.host_public_key = await keypair(self.directory / "host_key")
        config = await asyncio.to_thread(self._write_config)
        log = await asyncio.to_thread((self.directory / "sshd.log").open, "wb")
        with log:
            self._process = await asyncio.create_subprocess_exec(
                str(SSHD), "-D", "-e", "-f", str(config), stdout=log, stderr=log
            )
        await self._wait_listening()
        return self

    def _check_and_prepare(self) -> None:
        if not SSHD.exists() or shutil.which("ssh-keygen") is None:
            raise SshdError("OpenSSH server not installed: install Debian's 'openssh-server' package")
        if os.geteuid() == 0 and not PRIVSEP_DIRECTORY.is_dir():
            PRIVSEP_DIRECTORY.mkdir(mode=0o755)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _write_config(self) -> Path:
        authorized_keys = self.directory / "authorized_keys"
        authorized_keys.write_bytes(b"".join(self.authorized))
        authorized_keys.chmod(0o600)
        config = self.directory / "sshd_config"
        settings = [
            f"Port {self.port}",
            f"ListenAddress {LOOPBACK}",
            f"HostKey {self.directory / 'host_key'}",
            f"AuthorizedKeysFile {authorized_keys}",
            f"PidFile {self.directory / 'sshd.pid'}",
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {self.user}",
        ]
        config.write_text("\n".join(settings) + "\n")
        return config

    async def _wait_listening(self) -> None:
        for _ in range(100):
            assert self._process is not None
            if self._process.returncode is not None:
                break
            try:
                _, writer = await asyncio.open_connection(LOOPBACK, self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        await self.__aexit__(None, None, None)
        log = await asyncio.to_thread((self.directory / "sshd.log").read_text, errors="replace")
        raise SshdError(f"sshd did not start on {LOOPBACK}:{self.port}: {log.strip()}")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()
        self._process = None
