"""hack/setup-envtest.sh: its refusals are immediate and say exactly what is missing and how to fix it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _copy_of_hack(tmp_path: Path) -> Path:
    """A checkout-like directory with hack/ only, so no envtest cache exists there."""
    shutil.copytree(REPO / "hack", tmp_path / "hack")
    return tmp_path / "hack" / "setup-envtest.sh"


def _run(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)


def test_no_go_and_no_assets_names_both_ways(tmp_path: Path) -> None:
    script = _copy_of_hack(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "sed", "dirname", "mkdir", "sort", "head", "cat"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    result = _run(script, {"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert result.returncode != 0
    assert "no Go toolchain" in result.stderr
    assert "KUBEBUILDER_ASSETS" in result.stderr
    assert "install Go" in result.stderr
    assert not (tmp_path / ".cache" / "envtest" / "build").exists()


def test_assets_directory_without_etcd_is_refused(tmp_path: Path) -> None:
    script = _copy_of_hack(tmp_path)
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "kube-apiserver").write_text("#!/bin/sh\n")
    (assets / "kube-apiserver").chmod(0o755)
    result = _run(script, {"PATH": "/usr/bin:/bin", "KUBEBUILDER_ASSETS": str(assets)})
    assert result.returncode != 0
    assert f"KUBEBUILDER_ASSETS={assets} has no executable 'etcd'" in result.stderr


def test_complete_assets_directory_is_printed(tmp_path: Path) -> None:
    script = _copy_of_hack(tmp_path)
    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("kube-apiserver", "etcd"):
        (assets / name).write_text("#!/bin/sh\n")
        (assets / name).chmod(0o755)
    result = _run(script, {"PATH": "/usr/bin:/bin", "KUBEBUILDER_ASSETS": str(assets)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(assets)


def test_missing_debian_package_without_root_names_the_package() -> None:
    script = (REPO / "hack" / "install-packages.sh").read_text()
    # The script comes on stdin: user nobody may not be able to read a checkout under a private directory.
    result = subprocess.run(
        [
            "setpriv",
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "bash",
            "-s",
            "--",
            "git",
            "no-such-package-kpack",
        ],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "missing Debian packages: no-such-package-kpack" in result.stderr
    assert "apt-get install -y no-such-package-kpack" in result.stderr
    assert "git" not in result.stderr.split("missing Debian packages:")[1].split("\n")[0]


def test_installed_packages_need_nothing() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "install-packages.sh"), "git"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
