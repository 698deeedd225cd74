"""Finding the control-plane binaries, and the message when they are missing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kpack_core.envtest.binaries import BinariesNotFoundError, find_binaries, find_project_root, read_versions


def _executable(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_kubebuilder_assets_directory_is_used(tmp_path: Path) -> None:
    for name in ("kube-apiserver", "etcd", "kubectl"):
        _executable(tmp_path, name)
    binaries = find_binaries({"KUBEBUILDER_ASSETS": str(tmp_path), "PATH": ""})
    assert binaries.kube_apiserver == tmp_path / "kube-apiserver"
    assert binaries.etcd == tmp_path / "etcd"
    assert binaries.kubectl == tmp_path / "kubectl"


def test_single_test_asset_overrides_the_directory(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    for name in ("kube-apiserver", "etcd"):
        _executable(tmp_path / "assets", name)
    other = _executable(tmp_path, "my-etcd")
    env = {"KUBEBUILDER_ASSETS": str(tmp_path / "assets"), "TEST_ASSET_ETCD": str(other), "PATH": ""}
    binaries = find_binaries(env)
    assert binaries.etcd == other
    assert binaries.kubectl is None


def test_missing_etcd_is_named_with_both_remedies(tmp_path: Path) -> None:
    _executable(tmp_path, "kube-apiserver")
    with pytest.raises(BinariesNotFoundError) as caught:
        find_binaries({"KUBEBUILDER_ASSETS": str(tmp_path), "PATH": ""})
    message = str(caught.value)
    assert "cannot find etcd" in message
    assert "kube-apiserver" not in message.split("\n")[0]
    assert "KUBEBUILDER_ASSETS" in message
    assert "hack/setup-envtest.sh" in message
    assert str(tmp_path) in message


def test_test_asset_that_is_not_executable_is_named(tmp_path: Path) -> None:
    with pytest.raises(BinariesNotFoundError, match=r"TEST_ASSET_KUBE_APISERVER=.*not an executable"):
        find_binaries({"TEST_ASSET_KUBE_APISERVER": str(tmp_path / "nope")})


def test_project_cache_is_found_from_the_pinned_version(tmp_path: Path) -> None:
    (tmp_path / "hack").mkdir()
    (tmp_path / "hack" / "envtest.env").write_text("# pins\nKUBERNETES_VERSION=9.9.9\n")
    cache = tmp_path / ".cache" / "envtest" / "9.9.9"
    cache.mkdir(parents=True)
    for name in ("kube-apiserver", "etcd"):
        _executable(cache, name)
    assert read_versions(tmp_path) == {"KUBERNETES_VERSION": "9.9.9"}
    assert find_project_root(cache) == tmp_path
    assert find_binaries({"PATH": ""}, root=tmp_path).kube_apiserver == cache / "kube-apiserver"


def test_repository_pins_one_kubernetes_version() -> None:
    root = find_project_root(Path(__file__).parent)
    assert root is not None
    version = read_versions(root)["KUBERNETES_VERSION"]
    assert version.count(".") == 2
