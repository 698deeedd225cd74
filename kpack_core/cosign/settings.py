"""Signing settings from a Kubernetes cosign secret: pure data in, a `CosignSecret` or a typed error out.

A cosign secret is one whose data has a non-empty `cosign.key` (kpack-controllers.md §2.6, §3.2). `cosign.password`
is optional (missing means empty) and used byte for byte. Two annotations tune where and how the signature is
written: `kpack.io/cosign.repository` (kpack set `COSIGN_REPOSITORY` from it) and `kpack.io/cosign.docker-media-types`
(kpack set `COSIGN_DOCKER_MEDIA_TYPES`; Go `strconv.ParseBool` truthiness). Nothing here reads Kubernetes: the
controllers pass the secret's JSON object or its decoded data, the build pod its mounted files.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kpack_core.cosign.errors import InvalidCosignSecretError, InvalidSettingError
from kpack_core.cosign.keys import SigningKey, decrypt_private_key_async
from kpack_core.registry.errors import InvalidReferenceError
from kpack_core.registry.reference import parse_reference

KEY_FIELD = "cosign.key"
PASSWORD_FIELD = "cosign.password"
PUBLIC_KEY_FIELD = "cosign.pub"
REPOSITORY_ANNOTATION = "kpack.io/cosign.repository"
DOCKER_MEDIA_TYPES_ANNOTATION = "kpack.io/cosign.docker-media-types"

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(value: str, setting: str) -> bool:
    """Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`; anything else (including
    the empty string and surrounding spaces) raises `InvalidSettingError` naming `setting`."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    shown = value if len(value) <= 40 else value[:40] + "..."
    raise InvalidSettingError(setting, f"{shown!r} is not a boolean (use true/false, 1/0, t/f)")


def parse_docker_media_types(value: str | None, setting: str = DOCKER_MEDIA_TYPES_ANNOTATION) -> bool:
    """The `kpack.io/cosign.docker-media-types` annotation: absent means OCI media types (False)."""
    return False if value is None else parse_bool(value, setting)


def parse_signature_repository(value: str | None, setting: str = REPOSITORY_ANNOTATION) -> str | None:
    """The `kpack.io/cosign.repository` annotation as a canonical repository name (`registry/path`); None when
    absent. Like cosign's `COSIGN_REPOSITORY`, it names a repository: a tag or digest is refused."""
    if value is None:
        return None
    if "@" in value or ":" in value.rpartition("/")[2]:
        raise InvalidSettingError(setting, f"{value!r} must be a repository, without a tag or digest")
    try:
        return parse_reference(value).name
    except InvalidReferenceError as exc:
        raise InvalidSettingError(setting, exc.problem) from exc


@dataclass(frozen=True)
class CosignSecret:
    """What one cosign secret contributes to signing. `secret` is `namespace/name`; key and password never print."""

    secret: str
    key_pem: bytes = field(repr=False)
    password: bytes = field(repr=False)
    signature_repository: str | None = None
    docker_media_types: bool = False

    @property
    def key_source(self) -> str:
        """How messages name the key: `secret ns/name cosign.key`."""
        return f"secret {self.secret} {KEY_FIELD}"

    async def load_key(self) -> SigningKey:
        """The decrypted key (scrypt in a worker thread); `WrongPasswordError` or `CorruptKeyError` naming it."""
        return await decrypt_private_key_async(self.key_pem, self.password, self.key_source)


def is_cosign_secret(data: Mapping[str, Any]) -> bool:
    """Whether a secret's data (decoded or base64, either way) makes it a cosign secret: a non-empty `cosign.key`."""
    return bool(data.get(KEY_FIELD))


def cosign_secret_from_data(
    secret: str, data: Mapping[str, bytes], annotations: Mapping[str, str] | None = None
) -> CosignSecret:
    """The settings of secret `secret` (`namespace/name`) from its decoded data and its annotations."""
    annotations = annotations or {}
    key_pem = data.get(KEY_FIELD)
    if not key_pem:
        raise InvalidCosignSecretError(secret, KEY_FIELD, "missing or empty")
    try:
        repository = parse_signature_repository(annotations.get(REPOSITORY_ANNOTATION))
        docker_media_types = parse_docker_media_types(annotations.get(DOCKER_MEDIA_TYPES_ANNOTATION))
    except InvalidSettingError as exc:
        raise InvalidCosignSecretError(secret, f"annotation {exc.setting}", exc.problem) from exc
    return CosignSecret(
        secret=secret,
        key_pem=bytes(key_pem),
        password=bytes(data.get(PASSWORD_FIELD) or b""),
        signature_repository=repository,
        docker_media_types=docker_media_types,
    )


def _decode(secret: str, key: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise InvalidCosignSecretError(secret, f"data.{key}", "not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCosignSecretError(secret, f"data.{key}", "not valid base64") from exc


def cosign_secret_from_object(obj: Mapping[str, Any]) -> CosignSecret:
    """The settings of a Secret as the API server returns it (JSON object; `data` values base64-encoded)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        raise InvalidCosignSecretError("(unnamed)", "metadata.name", "missing")
    secret = f"{metadata.get('namespace') or ''}/{metadata['name']}"
    raw_data = obj.get("data")
    raw_data = {} if raw_data is None else raw_data
    if not isinstance(raw_data, Mapping):
        raise InvalidCosignSecretError(secret, "data", "not an object")
    data = {key: _decode(secret, key, raw_data[key]) for key in (KEY_FIELD, PASSWORD_FIELD) if key in raw_data}
    annotations = metadata.get("annotations")
    annotations = {} if annotations is None else annotations
    if not isinstance(annotations, Mapping):
        raise InvalidCosignSecretError(secret, "metadata.annotations", "not an object")
    return cosign_secret_from_data(secret, data, annotations)
