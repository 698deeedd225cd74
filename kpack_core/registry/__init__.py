"""OCI distribution client: references, manifests and indexes, blobs and mounts, anonymous/basic/bearer auth.

`RegistryClient` is the entry point (`RegistryClients` makes clients sharing a session, tokens and blob
locations); `parse_reference` turns text into a normalised `Reference`; credentials come
from a `Keychain` (`StaticKeychain` here; the Kubernetes-secret keychains are in `kpack_core.keychains`).
"""

from kpack_core.registry.auth import ANONYMOUS, Challenge, Credentials, Keychain, StaticKeychain, parse_challenges
from kpack_core.registry.client import BlobPush, RegistryClient
from kpack_core.registry.digest import compute_digest, sha256_digest
from kpack_core.registry.errors import (
    BlobUnknownError,
    DeniedError,
    DigestMismatchError,
    InvalidReferenceError,
    ManifestUnknownError,
    NameUnknownError,
    NotFoundError,
    RegistryError,
    TransientError,
    UnauthorizedError,
)
from kpack_core.registry.locations import BlobLocations
from kpack_core.registry.manifest import Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform, RawManifest
from kpack_core.registry.pool import RegistryClients
from kpack_core.registry.reference import Reference, parse_reference
from kpack_core.registry.transport import RegistryOptions
from kpack_core.retry import RetryPolicy

__all__ = [
    "ANONYMOUS",
    "BlobLocations",
    "BlobPush",
    "BlobUnknownError",
    "Challenge",
    "Credentials",
    "DeniedError",
    "Descriptor",
    "DigestMismatchError",
    "ImageConfig",
    "ImageIndex",
    "ImageManifest",
    "InvalidReferenceError",
    "Keychain",
    "ManifestUnknownError",
    "NameUnknownError",
    "NotFoundError",
    "Platform",
    "RawManifest",
    "Reference",
    "RegistryClient",
    "RegistryClients",
    "RegistryError",
    "RegistryOptions",
    "RetryPolicy",
    "StaticKeychain",
    "TransientError",
    "UnauthorizedError",
    "compute_digest",
    "parse_challenges",
    "parse_reference",
    "sha256_digest",
]
