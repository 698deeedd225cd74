"""`python -m kpack_core.envtest up|down`: everything ready for kubectl, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from kpack_core.envtest.binaries import find_binaries

pytestmark = pytest.mark.integration


async def _run(*argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


async def test_up_serves_kubectl_and_down_leaves_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "env"
    envtest = [sys.executable, "-m", "kpack_core.envtest"]
    code, out, err = await _run(*envtest, "up", "--dir", str(directory))
    try:
        assert code == 0, err
        env = dict(line.split("=", 1) for line in (directory / "env").read_text().splitlines())
        assert out.splitlines()[0] == f"KUBECONFIG={directory / 'kubeconfig'}"
        assert env["KUBECONFIG"] == str(directory / "kubeconfig")

        kubectl = find_binaries().kubectl
        assert kubectl is not None, "kubectl is neither in the envtest assets nor on PATH"
        code, out, err = await _run(str(kubectl), "--kubeconfig", env["KUBECONFIG"], "get", "ns")
        assert code == 0, err
        assert "default" in out
        assert "kube-system" in out

        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{env['REGISTRY']}/v2/") as response:
                assert response.status == 200
            async with session.get(f"{env['GIT_URL']}/nothing.git/info/refs?service=git-upload-pack") as response:
                assert response.status == 404

        code, _, err = await _run(*envtest, "up", "--dir", str(directory))
        assert code == 1
        assert "already running" in err
        assert _processes_mentioning(str(directory))
    finally:
        code, out, _ = await _run(*envtest, "down", "--dir", str(directory))
    assert code == 0
    assert "stopped" in out
    assert _processes_mentioning(str(directory)) == []
    code, out, _ = await _run(*envtest, "down", "--dir", str(directory))
    assert (code, out.strip()) == (0, f"envtest: nothing running in {directory}")


async def test_up_reports_a_failed_start_with_the_log(tmp_path: Path) -> None:
    directory = tmp_path / "env"
    env = {**os.environ, "KUBEBUILDER_ASSETS": str(tmp_path / "empty")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kpack_core.envtest",
        "up",
        "--dir",
        str(directory),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 1
    assert "envtest: failed to start" in err.decode()
    assert "cannot find kube-apiserver, etcd" in err.decode()
    assert _processes_mentioning(str(directory)) == []
