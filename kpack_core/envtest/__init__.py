"""envtest: real etcd + kube-apiserver, a Docker distribution registry and a git server on loopback.

The kpack-py counterpart of controller-runtime's envtest, self-sufficient offline: binaries come from
`KUBEBUILDER_ASSETS` or are built by `hack/setup-envtest.sh` (see `binaries`). Tests use the pytest plugin
(`kpack_core.envtest.pytest_plugin`); people and `make run` use `python -m kpack_core.envtest up|down`.
"""

from kpack_core.envtest.binaries import Binaries, BinariesNotFoundError, find_binaries
from kpack_core.envtest.certs import CertificateAuthority, KeyPair
from kpack_core.envtest.controlplane import ControlPlane, ControlPlaneError
from kpack_core.envtest.environment import Environment
from kpack_core.envtest.gitserver import GitError, GitRepository, GitServer
from kpack_core.envtest.kubelet import ContainerState, Kubelet, Running, Terminated, Waiting
from kpack_core.envtest.process import PortInUseError, ServerError
from kpack_core.envtest.registry import Registry, RegistryAuth, RegistryError

__all__ = [
    "Binaries",
    "BinariesNotFoundError",
    "CertificateAuthority",
    "ContainerState",
    "ControlPlane",
    "ControlPlaneError",
    "Environment",
    "GitError",
    "GitRepository",
    "GitServer",
    "KeyPair",
    "Kubelet",
    "PortInUseError",
    "Registry",
    "RegistryAuth",
    "RegistryError",
    "Running",
    "ServerError",
    "Terminated",
    "Waiting",
    "find_binaries",
]
