"""Typed cosign errors: callers act on the type (wrong password, corrupt key, bad secret, failed push or verify).

Every message names the thing at fault — the key's source label (`secret ns/name cosign.key`), the secret, the
annotation, the image — and never a secret value: no password, no key bytes, no plaintext.
"""

from __future__ import annotations


class CosignError(Exception):
    """Base of every error raised by `kpack_core.cosign`."""


class CosignKeyError(CosignError):
    """A private or public key could not be used; `source` names where the key came from."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class WrongPasswordError(CosignKeyError):
    """The key file is well formed but the password does not open it (the secretbox authentication failed)."""


class CorruptKeyError(CosignKeyError):
    """The key file is not a key cosign would read: bad PEM, JSON, kdf or cipher parameters, or plaintext."""


class InvalidCosignSecretError(CosignError):
    """A cosign secret's data or annotations are unusable; `secret` is `namespace/name`, `field` the key at fault."""

    def __init__(self, secret: str, field: str, problem: str) -> None:
        super().__init__(f"cosign secret {secret}: {field}: {problem}")
        self.secret = secret
        self.field = field
        self.problem = problem


class InvalidSettingError(CosignError):
    """A signing setting (such as `kpack.io/cosign.docker-media-types`) has a value it cannot take."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class SigningError(CosignError):
    """Signing `image` failed; the registry error (if any) is the `__cause__`. No signature tag moved."""

    def __init__(self, image: str, problem: str) -> None:
        super().__init__(f"signing {image}: {problem}")
        self.image = image
        self.problem = problem


class VerificationError(CosignError):
    """No signature of `image` verified with the given key (or there are no signatures at all)."""

    def __init__(self, image: str, problem: str) -> None:
        super().__init__(f"verifying {image}: {problem}")
        self.image = image
        self.problem = problem
