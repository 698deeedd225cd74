"""The example of docs/runtime.md, run as written against envtest: a doc example that does not run is a bug."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

from kpack_core.envtest import ControlPlane
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import CONFIGMAPS

ROOT = Path(__file__).resolve().parents[3]


def example_source() -> str:
    text = (ROOT / "docs" / "runtime.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks, "docs/runtime.md has no python example"
    return blocks[0]


async def mirror_data(client: Client, namespace: str) -> dict[str, str] | None:
    try:
        mirror = await client.get(CONFIGMAPS, "demo-mirror", namespace)
    except errors.NotFoundError:
        return None
    data: dict[str, str] = mirror.get("data", {})
    return data


async def eventually_equal(client: Client, namespace: str, expected: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while (found := await mirror_data(client, namespace)) != expected:
        assert time.monotonic() < deadline, f"mirror is {found}, expected {expected}"
        await asyncio.sleep(0.1)


async def test_runtime_doc_example_runs(
    control_plane: ControlPlane, client: Client, namespace: str, tmp_path: Path
) -> None:
    script = tmp_path / "mirror.py"
    script.write_text(example_source())
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig_path), "NAMESPACE": namespace}
    log = (tmp_path / "mirror.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), cwd=ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    try:
        await client.create(CONFIGMAPS, {"metadata": {"name": "plain", "namespace": namespace}, "data": {"a": "1"}})
        source = {"name": "demo", "namespace": namespace, "labels": {"mirror": "yes"}}
        await client.create(CONFIGMAPS, {"metadata": source, "data": {"a": "1"}})
        await eventually_equal(client, namespace, {"a": "1"})
        await client.patch(CONFIGMAPS, "demo", {"data": {"a": "2"}}, namespace=namespace)
        await eventually_equal(client, namespace, {"a": "2"})
        # Someone edits the mirror: its owner is woken through the owner reference and puts it back.
        await client.patch(CONFIGMAPS, "demo-mirror", {"data": {"a": "tampered"}}, namespace=namespace)
        await eventually_equal(client, namespace, {"a": "2"})
        listed = await client.list(CONFIGMAPS, namespace)
        assert "plain-mirror" not in {item["metadata"]["name"] for item in listed.items}
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0, (tmp_path / "mirror.log").read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()
