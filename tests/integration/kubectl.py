"""Running the envtest kubectl from tests."""

from __future__ import annotations

import asyncio
import time

from kpack_core.envtest import ControlPlane


async def kubectl(plane: ControlPlane, *args: str, within: float = 30.0) -> str:
    """Run kubectl until it succeeds (new CRDs reach the published OpenAPI a moment after they are served)."""
    assert plane.binaries.kubectl is not None, "kubectl is needed (built by hack/setup-envtest.sh)"
    deadline = time.monotonic() + within
    while True:
        process = await asyncio.create_subprocess_exec(
            str(plane.binaries.kubectl), "--kubeconfig", str(plane.kubeconfig_path), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await process.communicate()
        if process.returncode == 0:
            return out.decode()
        assert time.monotonic() < deadline, out.decode()
        await asyncio.sleep(0.5)
