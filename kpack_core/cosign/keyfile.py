"""The sealed container of a cosign private key: PEM around JSON, scrypt key derivation, NaCl secretbox.

formats.md §1.7. This module knows the container only, not what is inside it (`keys` checks the PKCS#8 plaintext).
Reading is as strict as cosign's decoder: only kdf `scrypt` with N in {2^15, 2^16, 2^17}, r=8, p=1 (a bound on the
work an attacker-supplied key file can make us do), only cipher `nacl/secretbox`, only 24-byte nonces. Writing uses
the COSIGN label and N=2^15, which every cosign release since v1.0 reads. scrypt is deliberately slow (~100 ms to
~0.5 s): callers on the event loop use the `*_async` functions of `keys`, which run this in a thread.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.secret
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from kpack_core.cosign.errors import CorruptKeyError, WrongPasswordError

COSIGN_LABEL = "ENCRYPTED COSIGN PRIVATE KEY"
"""Written by cosign v1.x and v2.0, read by every release: what we write."""
SIGSTORE_LABEL = "ENCRYPTED SIGSTORE PRIVATE KEY"
"""Written by cosign v2.1 and later."""
LABELS = (COSIGN_LABEL, SIGSTORE_LABEL)

KDF_NAME = "scrypt"
CIPHER_NAME = "nacl/secretbox"
SCRYPT_N = 32768
"""N we write: the only value cosign before v2.2 accepts."""
ACCEPTED_SCRYPT_N = frozenset({32768, 65536, 131072})
SCRYPT_R = 8
SCRYPT_P = 1
KEY_LENGTH = 32
SALT_LENGTH = 32
NONCE_LENGTH = nacl.secret.SecretBox.NONCE_SIZE  # 24
TAG_LENGTH = nacl.secret.SecretBox.MACBYTES  # 16

_PEM_BLOCK = re.compile(rb"-----BEGIN ([^-\r\n]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


@dataclass(frozen=True)
class SealedKey:
    """The parsed (still encrypted) key document; `label` is its PEM type."""

    label: str
    n: int
    r: int
    p: int
    salt: bytes
    nonce: bytes
    ciphertext: bytes = field(repr=False)


def _b64(value: Any, what: str, source: str) -> bytes:
    # Go encodes []byte as standard base64 with padding, and decodes nothing else.
    if not isinstance(value, str):
        raise CorruptKeyError(source, f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CorruptKeyError(source, f"{what} is not valid base64") from exc


def _object(value: Any, what: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CorruptKeyError(source, f"{what} is not a JSON object")
    return value


def _integer(value: Any, what: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CorruptKeyError(source, f"{what} is not an integer")
    return value


def _pem_body(pem: bytes, source: str) -> tuple[str, bytes]:
    """The label and decoded body of the first PEM block, like Go's pem.Decode (text around it is ignored)."""
    match = _PEM_BLOCK.search(pem)
    if match is None:
        raise CorruptKeyError(source, "no PEM block found")
    label = match.group(1).decode("ascii", "replace")
    if label not in LABELS:
        raise CorruptKeyError(source, f"unsupported PEM type {label!r} (expected one of {', '.join(LABELS)})")
    try:
        body = base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CorruptKeyError(source, "the PEM body is not valid base64") from exc
    return label, body


def parse_sealed_key(pem: bytes, source: str) -> SealedKey:
    """Parses and checks the key document without decrypting it; `CorruptKeyError` names `source` and the fault."""
    label, body = _pem_body(pem, source)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptKeyError(source, "the PEM body is not a JSON document") from exc
    document = _object(document, "the key document", source)
    kdf = _object(document.get("kdf"), "kdf", source)
    if kdf.get("name") != KDF_NAME:
        raise CorruptKeyError(source, f"unsupported kdf {kdf.get('name')!r} (only {KDF_NAME!r})")
    params = _object(kdf.get("params"), "kdf.params", source)
    n = _integer(params.get("N"), "kdf.params.N", source)
    r = _integer(params.get("r"), "kdf.params.r", source)
    p = _integer(params.get("p"), "kdf.params.p", source)
    if n not in ACCEPTED_SCRYPT_N or r != SCRYPT_R or p != SCRYPT_P:
        accepted = "/".join(str(value) for value in sorted(ACCEPTED_SCRYPT_N))
        raise CorruptKeyError(
            source, f"unsupported scrypt parameters N={n} r={r} p={p} (accepted: N={accepted}, r=8, p=1)"
        )
    cipher = _object(document.get("cipher"), "cipher", source)
    if cipher.get("name") != CIPHER_NAME:
        raise CorruptKeyError(source, f"unsupported cipher {cipher.get('name')!r} (only {CIPHER_NAME!r})")
    nonce = _b64(cipher.get("nonce"), "cipher.nonce", source)
    if len(nonce) != NONCE_LENGTH:
        raise CorruptKeyError(source, f"cipher.nonce is {len(nonce)} bytes, {NONCE_LENGTH} expected")
    ciphertext = _b64(document.get("ciphertext"), "ciphertext", source)
    if len(ciphertext) < TAG_LENGTH:
        raise CorruptKeyError(source, f"ciphertext is {len(ciphertext)} bytes, shorter than its {TAG_LENGTH}-byte tag")
    salt = _b64(kdf.get("salt"), "kdf.salt", source)
    return SealedKey(label, n, r, p, salt, nonce, ciphertext)


def _derive(password: bytes, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=KEY_LENGTH, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(password)


def open_sealed_key(sealed: SealedKey, password: bytes, source: str) -> bytes:
    """The plaintext (CPU heavy: scrypt). The password is used byte for byte, as cosign does: no trimming."""
    key = _derive(password, sealed.salt, sealed.n)
    try:
        return nacl.secret.SecretBox(key).decrypt(sealed.ciphertext, sealed.nonce)
    except nacl.exceptions.CryptoError as exc:
        # Authentication failed: almost always the password; an altered ciphertext looks exactly the same.
        raise WrongPasswordError(
            source, "the password does not decrypt the key (wrong password, or the encrypted key was altered)"
        ) from exc


def seal(plaintext: bytes, password: bytes, *, label: str = COSIGN_LABEL, n: int = SCRYPT_N) -> bytes:
    """The PEM key document holding `plaintext` (CPU heavy: scrypt), with a fresh random salt and nonce."""
    if label not in LABELS:
        raise ValueError(f"unsupported PEM label {label!r}")
    if n not in ACCEPTED_SCRYPT_N:
        raise ValueError(f"unsupported scrypt N={n}")
    salt = os.urandom(SALT_LENGTH)
    nonce = os.urandom(NONCE_LENGTH)
    ciphertext = nacl.secret.SecretBox(_derive(password, salt, n)).encrypt(plaintext, nonce).ciphertext
    document = {
        "kdf": {
            "name": KDF_NAME,
            "params": {"N": n, "r": SCRYPT_R, "p": SCRYPT_P},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": CIPHER_NAME, "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    body = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode()
