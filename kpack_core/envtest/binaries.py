"""Where envtest finds kube-apiserver, etcd and kubectl.

Looked up in this order, as controller-runtime's envtest does:
1. `TEST_ASSET_KUBE_APISERVER`, `TEST_ASSET_ETCD`, `TEST_ASSET_KUBECTL` (one binary each);
2. `KUBEBUILDER_ASSETS`, a directory holding `kube-apiserver` and `etcd` (and optionally `kubectl`);
3. `.cache/envtest/<KUBERNETES_VERSION>/` of the kpack-py checkout, built by `hack/setup-envtest.sh`.
kubectl may also come from `PATH`; it is only needed by tests and people, not by the control plane.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

VERSIONS_FILE = Path("hack") / "envtest.env"


class BinariesNotFoundError(RuntimeError):
    """A control-plane binary is missing; the message says which and how to provide it."""


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path
    kubectl: Path | None


def find_project_root(start: Path | None = None) -> Path | None:
    """The nearest directory at or above `start` (default: the working directory) with hack/envtest.env."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / VERSIONS_FILE).is_file():
            return directory
    # An editable install keeps the package inside the checkout; find it from there too.
    package_root = Path(__file__).resolve().parents[2]
    if (package_root / VERSIONS_FILE).is_file():
        return package_root
    return None


def read_versions(root: Path) -> dict[str, str]:
    """The KEY=VALUE pins of hack/envtest.env."""
    versions: dict[str, str] = {}
    for line in (root / VERSIONS_FILE).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            versions[key.strip()] = value.strip()
    return versions


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _how_to_provide(missing: list[str]) -> str:
    return (
        f"envtest cannot find {', '.join(missing)}. Provide the binaries in one of two ways:\n"
        "  - set KUBEBUILDER_ASSETS to a directory holding kube-apiserver and etcd (and kubectl), or\n"
        "  - install Go and run hack/setup-envtest.sh (make test does), which builds them into "
        ".cache/envtest/<version>/."
    )


def find_binaries(env: dict[str, str] | None = None, root: Path | None = None) -> Binaries:
    """Locates the binaries or raises `BinariesNotFoundError` naming each one missing."""
    env = dict(os.environ) if env is None else env
    candidates: dict[str, Path | None] = {"kube-apiserver": None, "etcd": None, "kubectl": None}
    for name, variable in (
        ("kube-apiserver", "TEST_ASSET_KUBE_APISERVER"),
        ("etcd", "TEST_ASSET_ETCD"),
        ("kubectl", "TEST_ASSET_KUBECTL"),
    ):
        if env.get(variable):
            path = Path(env[variable])
            if not _executable(path):
                raise BinariesNotFoundError(f"{variable}={path} is not an executable file")
            candidates[name] = path

    directories: list[tuple[str, Path]] = []
    if env.get("KUBEBUILDER_ASSETS"):
        directories.append(("KUBEBUILDER_ASSETS", Path(env["KUBEBUILDER_ASSETS"])))
    else:
        project = root or find_project_root()
        if project is not None:
            version = read_versions(project).get("KUBERNETES_VERSION", "")
            directories.append(("the envtest cache", project / ".cache" / "envtest" / version))

    for _, directory in directories:
        for name in candidates:
            if candidates[name] is None and _executable(directory / name):
                candidates[name] = directory / name
    if candidates["kubectl"] is None and (on_path := shutil.which("kubectl", path=env.get("PATH"))):
        candidates["kubectl"] = Path(on_path)

    missing = [name for name in ("kube-apiserver", "etcd") if candidates[name] is None]
    if missing:
        searched = ", ".join(f"{label} ({path})" for label, path in directories) or "nowhere"
        raise BinariesNotFoundError(f"{_how_to_provide(missing)}\nSearched: {searched}.")
    apiserver, etcd = candidates["kube-apiserver"], candidates["etcd"]
    assert apiserver is not None
    assert etcd is not None
    return Binaries(kube_apiserver=apiserver, etcd=etcd, kubectl=candidates["kubectl"])
