"""The real cosign CLI, the independent verifier (and second signer) of the cosign integration tests.

`cosign_cli` builds it once per session with hack/setup-cosign.sh (which honours `COSIGN_BIN`); a build that fails
fails every test that needs it, with the script's reason. `cosign` wraps one registry: its CA goes in through
`SSL_CERT_FILE` and its credentials through a throwaway `DOCKER_CONFIG`, the way a user's shell would set them.
Commands run as asyncio subprocesses: the registry's token issuer serves from this event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from kpack_core.envtest.registry import Registry
from kpack_core.registry import Credentials, RegistryClient, RegistryOptions, StaticKeychain

ROOT = Path(__file__).resolve().parents[3]
SETUP_SCRIPT = ROOT / "hack" / "setup-cosign.sh"
BUILD_TIMEOUT = 1800.0
"""The first build compiles cosign and its ~300 modules: minutes on two cores; later runs reuse the cache."""
COMMAND_TIMEOUT = 120.0


def _cosign_is_built() -> bool:
    """Whether setup-cosign.sh will answer at once (COSIGN_BIN given, or the pinned version already built)."""
    if os.environ.get("COSIGN_BIN"):
        return True
    for line in (ROOT / "hack" / "envtest.env").read_text().splitlines():
        if line.startswith("COSIGN_VERSION="):
            return (ROOT / ".cache" / "cosign" / line.split("=", 1)[1].strip() / "cosign").is_file()
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The first test needing cosign also waits for its first build: only that test gets the build's time on top
    of the usual per-test timeout, and only when a build is still to come."""
    if _cosign_is_built():
        return
    for item in items:
        if "cosign_cli" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT + 300))
            return


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def cosign_cli() -> str:
    """The path of the cosign binary: `COSIGN_BIN`, or built from its Go module into .cache/cosign/."""
    process = await asyncio.create_subprocess_exec(
        str(SETUP_SCRIPT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), BUILD_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"hack/setup-cosign.sh did not finish within {BUILD_TIMEOUT:.0f} s", pytrace=False)
    lines = stdout.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        pytest.fail(
            f"hack/setup-cosign.sh failed (exit {process.returncode}); cannot run the cosign CLI:\n"
            + stderr.decode()[-4000:],
            pytrace=False,
        )
    binary = lines[-1]
    if not os.access(binary, os.X_OK):
        pytest.fail(f"hack/setup-cosign.sh printed {binary!r}, which is not an executable", pytrace=False)
    return binary


@dataclass(frozen=True)
class Run:
    """One finished cosign command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return f"cosign {' '.join(self.args)} exited {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


@dataclass
class CosignCLI:
    """cosign set up for one registry. `env` is the whole environment of every command (nothing leaks in from the
    developer's shell: no ~/.docker, no ~/.sigstore, no COSIGN_* variables)."""

    binary: str
    env: dict[str, str] = field(default_factory=dict)

    async def run(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
        process = await asyncio.create_subprocess_exec(
            self.binary,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, **(env or {})},
            cwd=cwd,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"cosign {' '.join(args)} did not finish within {COMMAND_TIMEOUT:.0f} s") from None
        assert process.returncode is not None
        return Run(args, process.returncode, stdout.decode(), stderr.decode())

    async def ok(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
        """Runs and requires success, showing cosign's output when it fails."""
        run = await self.run(*args, env=env, cwd=cwd)
        assert run.returncode == 0, run.explain()
        return run

    async def verify(self, public_key: Path, image: str, *extra: str, env: dict[str, str] | None = None) -> Run:
        """`cosign verify --key` without the transparency log (our signatures are never uploaded to Rekor)."""
        return await self.run(
            "verify",
            "--key",
            str(public_key),
            "--insecure-ignore-tlog=true",
            "--output",
            "json",
            *extra,
            image,
            env=env,
        )


@pytest.fixture
def cosign(cosign_cli: str, token_registry: Registry, tmp_path: Path) -> CosignCLI:
    """cosign trusting the token registry's CA and holding its credentials."""
    home = tmp_path / "cosign-home"
    docker_config = home / ".docker"
    docker_config.mkdir(parents=True)
    auth = base64.b64encode(f"{token_registry.username}:{token_registry.password}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {token_registry.host: {"auth": auth}}}))
    ca_file = home / "ca.crt"
    ca_file.write_bytes(token_registry.ca_pem)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DOCKER_CONFIG": str(docker_config),
        "SSL_CERT_FILE": str(ca_file),
        "TUF_ROOT": str(home / ".sigstore" / "root"),
    }
    return CosignCLI(cosign_cli, env)


def keychain_for(registry: Registry) -> StaticKeychain:
    return StaticKeychain({registry.host: Credentials(registry.username, registry.password)})


@pytest_asyncio.fixture(loop_scope="session")
async def client(token_registry: Registry) -> AsyncIterator[RegistryClient]:
    """Our client, authorised on the token registry."""
    async with RegistryClient(keychain_for(token_registry), RegistryOptions(ca_pem=token_registry.ca_pem)) as opened:
        yield opened
