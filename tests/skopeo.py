"""skopeo, the independent registry client the integration tests check our pushes with, run as an asyncio
subprocess (the token issuer of the test registries serves from the test's event loop, so nothing may block it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from kpack_core.envtest.registry import Registry


async def skopeo(registry: Registry, workdir: Path, *args: str) -> bytes:
    """`skopeo <args>` trusting the registry's CA (or without TLS verification for a plain HTTP one) with its
    credentials (as the source of a `copy`); stdout, after asserting success."""
    cert_dir = workdir / "certs"
    cert_dir.mkdir(exist_ok=True)
    (cert_dir / "ca.crt").write_bytes(registry.ca_pem)
    flag = "--cert-dir" if args[0] == "inspect" else "--src-cert-dir"
    options = [flag, str(cert_dir)] if registry.tls else [flag.replace("cert-dir", "tls-verify") + "=false"]
    if registry.users:
        creds = "--creds" if args[0] == "inspect" else "--src-creds"
        options += [creds, f"{registry.username}:{registry.password}"]
    process = await asyncio.create_subprocess_exec(
        "skopeo", args[0], *options, *args[1:], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    return stdout


async def skopeo_inspect(registry: Registry, workdir: Path, image: str, *extra: str) -> dict[str, Any]:
    """`skopeo inspect [extra] docker://<image>`, decoded (`--config`: the image config, `--raw`: the manifest)."""
    decoded: dict[str, Any] = json.loads(await skopeo(registry, workdir, "inspect", *extra, f"docker://{image}"))
    return decoded
