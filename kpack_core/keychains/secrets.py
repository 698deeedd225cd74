"""Reading credentials out of Kubernetes secret objects (raw JSON, as the API client and the cache give them).

formats.md §2.8. `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`, `{"auths": {...}}`), `kubernetes.io/dockercfg`
(`.dockercfg`, the same map without the `auths` wrapper), and `kubernetes.io/basic-auth` annotated `kpack.io/docker`
(the annotation is the registry). An entry's `auth` (base64 of `user:password`, padded or not, split at the first
colon) overrides its `username` and `password`; `identitytoken` and `registrytoken` are kept.

Everything here is pure. Malformed data raises `SecretFormatError` naming the secret and the key; values are never
quoted, and the decoding errors that could carry them are not chained.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from kpack_core.keychains.dockerconfig import DockerCredentials
from kpack_core.keychains.errors import SecretFormatError, describe_key
from kpack_core.registry.auth import Credentials

DOCKER_CONFIG_JSON_TYPE = "kubernetes.io/dockerconfigjson"
DOCKERCFG_TYPE = "kubernetes.io/dockercfg"
BASIC_AUTH_TYPE = "kubernetes.io/basic-auth"
SSH_AUTH_TYPE = "kubernetes.io/ssh-auth"

DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson"
DOCKERCFG_KEY = ".dockercfg"
USERNAME_KEY = "username"
PASSWORD_KEY = "password"
SSH_PRIVATE_KEY_KEY = "ssh-privatekey"

DOCKER_ANNOTATION = "kpack.io/docker"
"""On a basic-auth secret: the registry (docker config key) its username and password are for."""
GIT_ANNOTATION = "kpack.io/git"
"""On a basic-auth or ssh-auth secret: the git host (`host`, `https://host`, `http://host`, `git@host`) it is for."""

_ENTRY_FIELDS = ("username", "password", "auth", "email", "identitytoken", "registrytoken")


# --- the secret object -----------------------------------------------------------------------------------------


def _b64decode(text: str) -> bytes:
    """Padded standard base64, strictly (Go's `StdEncoding`); ValueError without quoting `text`."""
    try:
        if len(text) % 4:
            raise binascii.Error("length is not a multiple of 4")
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not valid base64") from None


def secret_source(secret: Mapping[str, Any]) -> str:
    """`secret <namespace>/<name>`: how errors and credentials name a secret."""
    metadata = secret.get("metadata") or {}
    return f"secret {metadata.get('namespace', '')}/{metadata.get('name', '')}"


def secret_name(secret: Mapping[str, Any]) -> str:
    return str((secret.get("metadata") or {}).get("name", ""))


def secret_type(secret: Mapping[str, Any]) -> str:
    return str(secret.get("type") or "")


def annotation(secret: Mapping[str, Any], key: str) -> str:
    """The annotation's value, or "" when absent."""
    value = ((secret.get("metadata") or {}).get("annotations") or {}).get(key)
    return value if isinstance(value, str) else ""


def secret_data(secret: Mapping[str, Any], key: str) -> bytes | None:
    """The decoded value of data `key` (base64 in `.data`; plain in `stringData`, which only hand-made objects
    carry), or None when the secret has no such key."""
    string_data = secret.get("stringData") or {}
    if isinstance(string_data, Mapping) and isinstance(string_data.get(key), str):
        return str(string_data[key]).encode()
    encoded = (secret.get("data") or {}).get(key)
    if encoded is None:
        return None
    if not isinstance(encoded, str):
        raise SecretFormatError(secret_source(secret), key, "data value is not a string")
    try:
        return _b64decode(encoded)
    except ValueError:
        raise SecretFormatError(secret_source(secret), key, "data value is not valid base64") from None


def secret_text(secret: Mapping[str, Any], key: str) -> str:
    """Data `key` as UTF-8 text; "" when absent."""
    data = secret_data(secret, key)
    if data is None:
        return ""
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise SecretFormatError(secret_source(secret), key, "value is not UTF-8 text") from None


# --- docker config entries -------------------------------------------------------------------------------------


def decode_auth(value: str) -> tuple[str, str]:
    """Username and password of a docker config `auth` field: base64 of `user:password`, split at the first colon.

    Padded and unpadded base64 are both accepted (a value ending in `=` is read as padded, as ggcr does).
    ValueError, with a message that quotes nothing of the value, when it is not that.
    """
    text = value.strip()
    if not text.endswith("="):
        text += "=" * (-len(text) % 4)
    try:
        decoded = _b64decode(text).decode()
    except ValueError:  # UnicodeDecodeError is one too
        raise ValueError("not valid base64 of UTF-8 text") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise ValueError("must be base64 of username:password (no colon found)")
    return username, password


def _entry_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The known fields of an entry. Go's JSON decoder matches field names case-insensitively, preferring an exact
    match, so `Username` is read too."""
    fields: dict[str, Any] = {}
    for name, value in raw.items():
        lowered = name.lower()
        if lowered in _ENTRY_FIELDS and (name == lowered or lowered not in raw):
            fields[lowered] = value
    return fields


def parse_entry(server: str, raw: Any, source: str, key: str) -> Credentials:
    """One docker config entry (`{"username", "password", "auth", "email", "identitytoken", "registrytoken"}`)."""
    entry = f"entry {describe_key(server)!r}"
    if not isinstance(raw, Mapping):
        raise SecretFormatError(source, key, f"{entry} is not a JSON object")
    fields = _entry_fields(raw)
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise SecretFormatError(source, key, f"{entry}: field {name!r} is not a string")
    text = {name: fields.get(name) or "" for name in _ENTRY_FIELDS}
    username, password = text["username"], text["password"]
    if text["auth"]:
        try:
            username, password = decode_auth(text["auth"])
        except ValueError as exc:
            raise SecretFormatError(source, key, f"{entry}: field 'auth': {exc}") from None
    return Credentials(username, password, text["identitytoken"], text["registrytoken"])


def parse_docker_config(data: bytes, source: str, key: str, *, wrapped: bool) -> DockerCredentials:
    """The entries of a docker config document: `{"auths": {...}}` when `wrapped` (`.dockerconfigjson`,
    `config.json`), the bare map otherwise (`.dockercfg`). A document without `auths` has no entries."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SecretFormatError(source, key, f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(document, dict):
        raise SecretFormatError(source, key, "is not a JSON object")
    auths: Any = document.get("auths") if wrapped else document
    if auths is None:
        return DockerCredentials()
    if not isinstance(auths, dict):
        raise SecretFormatError(source, key, "'auths' is not a JSON object")
    return DockerCredentials((server, parse_entry(server, raw, source, key)) for server, raw in auths.items())


# --- per secret type -------------------------------------------------------------------------------------------


def docker_config_credentials(secret: Mapping[str, Any]) -> DockerCredentials | None:
    """The entries of a `kubernetes.io/dockerconfigjson` or `kubernetes.io/dockercfg` secret; None for any other
    type. A docker secret without its key has no entries (the apiserver refuses to store one anyway)."""
    kind = secret_type(secret)
    if kind == DOCKER_CONFIG_JSON_TYPE:
        key, wrapped = DOCKER_CONFIG_JSON_KEY, True
    elif kind == DOCKERCFG_TYPE:
        key, wrapped = DOCKERCFG_KEY, False
    else:
        return None
    data = secret_data(secret, key)
    if not data:
        return DockerCredentials()
    return parse_docker_config(data, secret_source(secret), key, wrapped=wrapped)


def annotated_basic_auth_credentials(secret: Mapping[str, Any]) -> DockerCredentials | None:
    """`{<kpack.io/docker annotation>: username/password}` of a basic-auth secret with that annotation; None for
    any other secret."""
    registry = annotation(secret, DOCKER_ANNOTATION)
    if secret_type(secret) != BASIC_AUTH_TYPE or not registry:
        return None
    credentials = Credentials(secret_text(secret, USERNAME_KEY), secret_text(secret, PASSWORD_KEY))
    return DockerCredentials({registry: credentials})


def kpack_docker_credentials(
    service_account_secrets: Iterable[Mapping[str, Any]], builder_pull_secrets: Iterable[Mapping[str, Any]] = ()
) -> DockerCredentials:
    """kpack's merged credential set, first-wins per key: annotated basic-auth secrets, then dockercfg and
    dockerconfigjson secrets (each group in service account order), then the builder's pull secrets."""
    secrets = list(service_account_secrets)
    merged = DockerCredentials()
    for secret in secrets:
        basic = annotated_basic_auth_credentials(secret)
        if basic is not None:
            merged = merged.merged(basic)
    for secret in [*secrets, *builder_pull_secrets]:
        config = docker_config_credentials(secret)
        if config is not None:
            merged = merged.merged(config)
    return merged
