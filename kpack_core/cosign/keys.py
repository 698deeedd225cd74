"""cosign key pairs: load and write encrypted private keys, load public keys, sign and check payload signatures.

Only ECDSA P-256 keys, which is all kpack uses (formats.md §1.3). The plaintext inside a sealed key must be PKCS#8,
as Go's `ParsePKCS8PrivateKey` demands: a SEC1 `EC PRIVATE KEY` inside the box is refused, because cosign refuses
it and a key we accept but cosign does not would be a trap. The `*_async` functions run scrypt in a worker thread
so the event loop keeps serving; the synchronous ones are for threads and scripts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kpack_core.cosign import keyfile
from kpack_core.cosign.errors import CorruptKeyError

_SEQUENCE = 0x30
_INTEGER = 0x02


@dataclass(frozen=True)
class SigningKey:
    """A loaded P-256 private key; `source` names where it came from, for messages. Never printed."""

    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    source: str

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def public_pem(self) -> bytes:
        """The public key as cosign writes `cosign.pub`: PEM `PUBLIC KEY` around the SubjectPublicKeyInfo."""
        return public_key_pem(self.public_key)

    def sign(self, payload: bytes) -> str:
        """ECDSA-P256-SHA256 over the raw payload: base64 (standard, padded) of the ASN.1 DER signature."""
        der = self.private_key.sign(payload, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(der).decode("ascii")


@dataclass(frozen=True)
class KeyPair:
    """A freshly generated key pair, as the files `cosign generate-key-pair` writes."""

    private_pem: bytes = field(repr=False)
    public_pem: bytes


def public_key_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_signature(key: ec.EllipticCurvePublicKey, payload: bytes, signature_b64: str) -> bool:
    """Whether `signature_b64` (base64 DER, as stored in the layer annotation) signs `payload` with `key`."""
    try:
        der = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(der, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _der_element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `offset`; ValueError when truncated."""
    if offset + 2 > len(data):
        raise ValueError("truncated")
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated")
    return tag, start, start + length


def _is_pkcs8(der: bytes) -> bool:
    """PrivateKeyInfo is SEQUENCE { INTEGER version, SEQUENCE algorithm, ... }; SEC1's ECPrivateKey has an OCTET
    STRING where the algorithm SEQUENCE would be. Only the shape is checked here; the parser checks the rest."""
    try:
        tag, start, end = _der_element(der, 0)
        if tag != _SEQUENCE or end != len(der):
            return False
        tag, _, version_end = _der_element(der, start)
        if tag != _INTEGER:
            return False
        tag, _, _ = _der_element(der, version_end)
    except ValueError:
        return False
    return tag == _SEQUENCE


def _p256_from_pkcs8(plaintext: bytes, source: str) -> ec.EllipticCurvePrivateKey:
    if not _is_pkcs8(plaintext):
        raise CorruptKeyError(source, "the decrypted key is not PKCS#8 (cosign refuses SEC1 'EC PRIVATE KEY' inside)")
    try:
        key = serialization.load_der_private_key(plaintext, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CorruptKeyError(source, "the decrypted key is not a valid PKCS#8 private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        what = f"an EC {key.curve.name}" if isinstance(key, ec.EllipticCurvePrivateKey) else type(key).__name__
        raise CorruptKeyError(source, f"the decrypted key is {what} key; only ECDSA P-256 keys are supported")
    return key


def decrypt_private_key(pem: bytes, password: bytes, source: str) -> SigningKey:
    """Opens an encrypted cosign key file (either PEM label). Blocks for the scrypt: prefer the async variant.

    Raises `WrongPasswordError` when the password does not open it, `CorruptKeyError` for anything else; both
    name `source` (e.g. `secret ns/name cosign.key`) and never the password or key bytes."""
    sealed = keyfile.parse_sealed_key(pem, source)
    plaintext = keyfile.open_sealed_key(sealed, password, source)
    return SigningKey(_p256_from_pkcs8(plaintext, source), source)


async def decrypt_private_key_async(pem: bytes, password: bytes, source: str) -> SigningKey:
    """`decrypt_private_key` in a worker thread; the cheap format checks fail before any scrypt work is queued."""
    keyfile.parse_sealed_key(pem, source)
    return await asyncio.to_thread(decrypt_private_key, pem, password, source)


def encrypt_private_key(
    key: ec.EllipticCurvePrivateKey, password: bytes, *, label: str = keyfile.COSIGN_LABEL, n: int = keyfile.SCRYPT_N
) -> bytes:
    """The encrypted key file for `key` (PKCS#8 inside). Defaults are what every cosign release reads."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"only ECDSA P-256 keys are supported, not {key.curve.name}")
    plaintext = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return keyfile.seal(plaintext, password, label=label, n=n)


async def encrypt_private_key_async(
    key: ec.EllipticCurvePrivateKey, password: bytes, *, label: str = keyfile.COSIGN_LABEL, n: int = keyfile.SCRYPT_N
) -> bytes:
    return await asyncio.to_thread(encrypt_private_key, key, password, label=label, n=n)


def generate_key_pair(password: bytes, *, label: str = keyfile.COSIGN_LABEL, n: int = keyfile.SCRYPT_N) -> KeyPair:
    """A new P-256 key pair, as `cosign generate-key-pair` would write it (COSIGN label, N=32768 by default)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(encrypt_private_key(key, password, label=label, n=n), public_key_pem(key.public_key()))


async def generate_key_pair_async(
    password: bytes, *, label: str = keyfile.COSIGN_LABEL, n: int = keyfile.SCRYPT_N
) -> KeyPair:
    return await asyncio.to_thread(generate_key_pair, password, label=label, n=n)


def load_public_key(pem: bytes, source: str) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as in `cosign.pub`."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CorruptKeyError(source, "not a PEM 'PUBLIC KEY' (SubjectPublicKeyInfo)") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CorruptKeyError(source, "the public key is not an ECDSA P-256 key")
    return key
