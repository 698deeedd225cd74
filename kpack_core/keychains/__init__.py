"""Keychains built from Kubernetes objects: registry credentials (kpack's `pkg/dockercreds` and k8schain) and git
credentials (kpack's `pkg/git`) from a service account's secrets, and the docker `config.json` a build gets.

`ServiceAccountKeychain` and `ServiceAccountGitKeychain` are what reconcilers use; they read through a
`SecretReader` (`ClientReader` on the live API, `CacheReader` on an informer cache). The parsing (`secrets`) and
matching (`matching`) underneath are pure functions.
"""

from kpack_core.keychains.dockerconfig import DockerCredentials, encode_auth
from kpack_core.keychains.errors import SecretFormatError
from kpack_core.keychains.git import ServiceAccountGitKeychain, git_domain_matches, git_transport
from kpack_core.keychains.matching import DOCKER_HUB_KEY, Keyring, kpack_key_matches
from kpack_core.keychains.multi import MultiKeychain
from kpack_core.keychains.reader import CacheReader, ClientReader, SecretReader
from kpack_core.keychains.secrets import decode_auth, kpack_docker_credentials, parse_docker_config
from kpack_core.keychains.service_account import (
    PullSecretsKeychain,
    ServiceAccountKeychain,
    ServiceAccountSecretsKeychain,
    service_account_docker_config,
)
from kpack_core.keychains.volume import CREDENTIAL_PROVIDER_SECRET_PATH, VolumeKeychain, read_docker_config_dir

__all__ = [
    "CREDENTIAL_PROVIDER_SECRET_PATH",
    "DOCKER_HUB_KEY",
    "CacheReader",
    "ClientReader",
    "DockerCredentials",
    "Keyring",
    "MultiKeychain",
    "PullSecretsKeychain",
    "SecretFormatError",
    "SecretReader",
    "ServiceAccountGitKeychain",
    "ServiceAccountKeychain",
    "ServiceAccountSecretsKeychain",
    "VolumeKeychain",
    "decode_auth",
    "encode_auth",
    "git_domain_matches",
    "git_transport",
    "kpack_docker_credentials",
    "kpack_key_matches",
    "parse_docker_config",
    "read_docker_config_dir",
    "service_account_docker_config",
]
