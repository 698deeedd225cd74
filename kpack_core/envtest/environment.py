"""Environment: the control plane, a registry and a git server together, as `make run` and the CLI use them.

It writes `<dir>/kubeconfig` (the admin) and `<dir>/env`, shell lines a person or script can source:
`KUBECONFIG=…`, `REGISTRY=…` (host:port for image references), `GIT_URL=…` (base URL of the git server).
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from kpack_core.envtest.controlplane import ControlPlane
from kpack_core.envtest.gitserver import GitServer
from kpack_core.envtest.registry import Registry
from kpack_core.envtest.server import Server


class Environment(Server):
    """Starts and stops all three servers with their state kept under `directory`."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory.resolve(), "kpack-environment-")
        self.control_plane = ControlPlane(self.directory / "controlplane")
        self.registry = Registry(self.directory / "registry", ca=self.control_plane.ca)
        self.git = GitServer(self.directory / "git")

    @property
    def running(self) -> bool:
        return self.control_plane.running and self.registry.running and self.git.running

    def log_tail(self, lines: int = 40) -> str:
        return f"{self.control_plane.log_tail(lines)}\n--- docker-registry:\n{self.registry.log_tail(lines)}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def env_path(self) -> Path:
        return self.directory / "env"

    def env_lines(self) -> dict[str, str]:
        return {
            "KUBECONFIG": str(self.kubeconfig_path),
            "REGISTRY": self.registry.host,
            "GIT_URL": self.git.url,
        }

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            await self.control_plane.start()
            await self.registry.start()
            await self.git.start()
        except BaseException:
            await self.stop()
            raise
        shutil.copyfile(self.control_plane.kubeconfig_path, self.kubeconfig_path)
        self.kubeconfig_path.chmod(0o600)
        self.env_path.write_text("".join(f"{key}={shlex.quote(value)}\n" for key, value in self.env_lines().items()))

    async def stop(self) -> None:
        await self.git.stop()
        await self.registry.stop()
        await self.control_plane.stop()
