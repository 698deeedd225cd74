"""Encrypted cosign key files: round trips for both labels and every accepted scrypt N, and each way a key is refused.

The documents are built here field by field (scrypt from hashlib, secretbox from PyNaCl) rather than with the code
under test, so a mistake in the writer cannot hide the same mistake in the reader.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import nacl.secret
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kpack_core.cosign import (
    COSIGN_LABEL,
    SIGSTORE_LABEL,
    CorruptKeyError,
    WrongPasswordError,
    decrypt_private_key,
    decrypt_private_key_async,
    encrypt_private_key,
    encrypt_private_key_async,
    generate_key_pair,
    generate_key_pair_async,
    keyfile,
    load_public_key,
    verify_signature,
)

SOURCE = "secret ns/signing cosign.key"
PASSWORD = b"correct horse battery staple"


def _pkcs8(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _document(plaintext: bytes, password: bytes, *, n: int = 32768, r: int = 8, p: int = 1) -> dict[str, Any]:
    """A key document made independently of kpack_core: hashlib's scrypt, PyNaCl's secretbox."""
    salt, nonce = os.urandom(32), os.urandom(24)
    key = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=512 * 1024 * 1024)
    ciphertext = nacl.secret.SecretBox(key).encrypt(plaintext, nonce).ciphertext
    return {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }


def _pem(document: Any, label: str = COSIGN_LABEL) -> bytes:
    body = base64.encodebytes(json.dumps(document).encode()).decode()  # 76-column lines: any wrapping is valid PEM
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


@pytest.fixture(scope="module")
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def sealed_document(p256: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return _document(_pkcs8(p256), PASSWORD)


@pytest.mark.parametrize("label", [COSIGN_LABEL, SIGSTORE_LABEL])
@pytest.mark.parametrize("n", [32768, 65536, 131072])
def test_reads_independently_made_keys_for_both_labels_and_every_accepted_n(
    p256: ec.EllipticCurvePrivateKey, label: str, n: int
) -> None:
    pem = _pem(_document(_pkcs8(p256), PASSWORD, n=n), label)

    loaded = decrypt_private_key(pem, PASSWORD, SOURCE)

    assert loaded.private_key.private_numbers() == p256.private_numbers()
    assert loaded.source == SOURCE


@pytest.mark.parametrize("label", [COSIGN_LABEL, SIGSTORE_LABEL])
@pytest.mark.parametrize("n", [32768, 65536, 131072])
def test_written_keys_load_back(p256: ec.EllipticCurvePrivateKey, label: str, n: int) -> None:
    pem = encrypt_private_key(p256, PASSWORD, label=label, n=n)

    assert pem.startswith(f"-----BEGIN {label}-----\n".encode())
    assert decrypt_private_key(pem, PASSWORD, SOURCE).private_key.private_numbers() == p256.private_numbers()


def test_generated_pair_is_what_every_cosign_reads() -> None:
    pair = generate_key_pair(PASSWORD)

    lines = pair.private_pem.decode().splitlines()
    assert lines[0] == "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----"
    assert lines[-1] == "-----END ENCRYPTED COSIGN PRIVATE KEY-----"
    assert all(len(line) <= 64 for line in lines[1:-1])
    document = json.loads(base64.b64decode("".join(lines[1:-1])))
    assert document["kdf"]["name"] == "scrypt"
    assert document["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert len(base64.b64decode(document["kdf"]["salt"])) == 32
    assert document["cipher"]["name"] == "nacl/secretbox"
    # Opened by hand: scrypt + secretbox give the 138-byte PKCS#8 DER Go writes for P-256 (`30 81 87 02 01 00`).
    salt, nonce = (base64.b64decode(document["kdf"]["salt"]), base64.b64decode(document["cipher"]["nonce"]))
    box_key = hashlib.scrypt(PASSWORD, salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=256 * 1024 * 1024)
    plaintext = nacl.secret.SecretBox(box_key).decrypt(base64.b64decode(document["ciphertext"]), nonce)
    assert len(plaintext) == 138
    assert plaintext.startswith(bytes.fromhex("308187020100"))
    # The public half is SPKI PEM and matches the private key.
    public = load_public_key(pair.public_pem, "cosign.pub")
    private = serialization.load_der_private_key(plaintext, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert public.public_numbers() == private.public_key().public_numbers()


def test_signatures_verify_with_the_public_key_and_only_over_the_signed_bytes() -> None:
    key = decrypt_private_key(generate_key_pair(b"").private_pem, b"", SOURCE)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()

    signature = key.sign(b"payload")

    assert base64.b64decode(signature)[0] == 0x30  # ASN.1 DER SEQUENCE, not raw r||s
    assert verify_signature(key.public_key, b"payload", signature)
    assert not verify_signature(key.public_key, b"payload!", signature)
    assert not verify_signature(other, b"payload", signature)
    assert not verify_signature(key.public_key, b"payload", "not base64!")


def test_key_repr_shows_no_secret() -> None:
    pair = generate_key_pair(PASSWORD)
    key = decrypt_private_key(pair.private_pem, PASSWORD, SOURCE)

    assert "PRIVATE" not in repr(pair)
    assert repr(key) == f"SigningKey(source={SOURCE!r})"


@pytest.mark.parametrize("given", [b"wrong", b"", PASSWORD + b"\n", b" " + PASSWORD])
def test_wrong_password_is_its_own_error_and_passwords_are_not_trimmed(
    sealed_document: dict[str, Any], given: bytes
) -> None:
    with pytest.raises(WrongPasswordError) as caught:
        decrypt_private_key(_pem(sealed_document), given, SOURCE)

    assert caught.value.source == SOURCE
    assert str(caught.value).startswith(f"{SOURCE}: ")
    assert PASSWORD.decode() not in str(caught.value)


def test_empty_password_is_a_password() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = _pem(_document(_pkcs8(key), b""))

    assert decrypt_private_key(pem, b"", SOURCE).private_key.private_numbers() == key.private_numbers()
    with pytest.raises(WrongPasswordError):
        decrypt_private_key(pem, b"\n", SOURCE)


def _edited(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    edited: dict[str, Any] = json.loads(json.dumps(document))
    target = edited
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return edited


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("kdf", "name"), "pbkdf2", "unsupported kdf 'pbkdf2'"),
        (("kdf",), _DELETE, "kdf is not a JSON object"),
        (("kdf", "params", "N"), 16384, "unsupported scrypt parameters N=16384 r=8 p=1"),
        (("kdf", "params", "N"), 262144, "unsupported scrypt parameters N=262144"),
        (("kdf", "params", "r"), 16, "N=32768 r=16 p=1"),
        (("kdf", "params", "p"), 2, "N=32768 r=8 p=2"),
        (("kdf", "params", "N"), "32768", "kdf.params.N is not an integer"),
        (("kdf", "params", "N"), 32768.0, "kdf.params.N is not an integer"),
        (("kdf", "params", "r"), True, "kdf.params.r is not an integer"),
        (("kdf", "params"), [], "kdf.params is not a JSON object"),
        (("kdf", "salt"), "%%%", "kdf.salt is not valid base64"),
        (("cipher", "name"), "aes-256-gcm", "unsupported cipher 'aes-256-gcm'"),
        (("cipher", "nonce"), base64.b64encode(b"x" * 12).decode(), "cipher.nonce is 12 bytes, 24 expected"),
        (("cipher", "nonce"), base64.b64encode(b"x" * 32).decode(), "cipher.nonce is 32 bytes, 24 expected"),
        (("cipher", "nonce"), 42, "cipher.nonce is not a base64 string"),
        (("ciphertext",), "not base64", "ciphertext is not valid base64"),
        (("ciphertext",), base64.b64encode(b"short").decode(), "ciphertext is 5 bytes, shorter than its 16-byte tag"),
    ],
)
def test_bad_document_fields_are_corrupt_keys_naming_the_field(
    sealed_document: dict[str, Any], path: tuple[str, ...], value: Any, message: str
) -> None:
    with pytest.raises(CorruptKeyError) as caught:
        decrypt_private_key(_pem(_edited(sealed_document, path, value)), PASSWORD, SOURCE)

    assert str(caught.value).startswith(f"{SOURCE}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"", "no PEM block found"),
        (b"just some text", "no PEM block found"),
        (
            b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            "unsupported PEM type 'EC PRIVATE KEY'",
        ),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "unsupported PEM type 'PRIVATE KEY'"),
        (
            b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n!!!!\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n",
            "the PEM body is not valid base64",
        ),
        (
            b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            "no PEM block found",
        ),
        (_pem("a string"), "the key document is not a JSON object"),
        (
            b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"
            + base64.b64encode(b"{not json")
            + b"\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n",
            "the PEM body is not a JSON document",
        ),
    ],
)
def test_bad_pem_or_json_is_a_corrupt_key(pem: bytes, message: str) -> None:
    with pytest.raises(CorruptKeyError) as caught:
        decrypt_private_key(pem, PASSWORD, SOURCE)

    assert message in str(caught.value)
    assert caught.value.source == SOURCE


def test_text_around_the_pem_block_is_ignored_like_go(sealed_document: dict[str, Any]) -> None:
    pem = b"written by cosign\n" + _pem(sealed_document, SIGSTORE_LABEL) + b"trailing\n"

    decrypt_private_key(pem, PASSWORD, SOURCE)


def test_sec1_inside_the_box_is_refused_like_cosign(p256: ec.EllipticCurvePrivateKey) -> None:
    sec1 = p256.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    assert sec1[0] == 0x30
    assert sec1[2:5] == bytes.fromhex("020101")

    with pytest.raises(CorruptKeyError, match="not PKCS#8"):
        decrypt_private_key(_pem(_document(sec1, PASSWORD, n=65536)), PASSWORD, SOURCE)


@pytest.mark.parametrize(
    ("key", "what"),
    [
        (ec.generate_private_key(ec.SECP384R1()), "an EC secp384r1 key"),
        (rsa.generate_private_key(public_exponent=65537, key_size=1024), "RSAPrivateKey key"),
        (ed25519.Ed25519PrivateKey.generate(), "Ed25519PrivateKey key"),
    ],
)
def test_keys_other_than_p256_are_refused(key: Any, what: str) -> None:
    with pytest.raises(CorruptKeyError) as caught:
        decrypt_private_key(_pem(_document(_pkcs8(key), PASSWORD)), PASSWORD, SOURCE)

    assert what in str(caught.value)
    assert "only ECDSA P-256" in str(caught.value)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"not DER at all",
        bytes.fromhex("3003020100"),  # a SEQUENCE holding only a version
        bytes.fromhex("30060201003001ff"),  # truncated algorithm SEQUENCE
        bytes.fromhex("3008020100300004000000"),  # PKCS#8 shape, trailing garbage outside the SEQUENCE
        bytes.fromhex("300602010030000400"),  # PKCS#8 shape, empty algorithm and key
    ],
)
def test_plaintext_that_is_no_private_key_is_corrupt(plaintext: bytes) -> None:
    with pytest.raises(CorruptKeyError, match="the decrypted key is not"):
        decrypt_private_key(_pem(_document(plaintext, PASSWORD)), PASSWORD, SOURCE)


def test_writer_refuses_other_curves_labels_and_n(p256: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(ValueError, match="only ECDSA P-256"):
        encrypt_private_key(ec.generate_private_key(ec.SECP384R1()), PASSWORD)
    with pytest.raises(ValueError, match="unsupported PEM label"):
        encrypt_private_key(p256, PASSWORD, label="PRIVATE KEY")
    with pytest.raises(ValueError, match="unsupported scrypt N"):
        encrypt_private_key(p256, PASSWORD, n=1024)


@pytest.mark.parametrize(
    "pem",
    [
        b"garbage",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    ],
)
def test_public_key_that_is_not_spki_pem_is_refused(pem: bytes) -> None:
    with pytest.raises(CorruptKeyError, match=r"cosign\.pub: not a PEM 'PUBLIC KEY'"):
        load_public_key(pem, "cosign.pub")


def test_public_key_of_another_curve_is_refused() -> None:
    pem = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    with pytest.raises(CorruptKeyError, match="not an ECDSA P-256 key"):
        load_public_key(pem, "cosign.pub")


async def test_async_helpers_give_the_same_keys(p256: ec.EllipticCurvePrivateKey) -> None:
    pem = await encrypt_private_key_async(p256, PASSWORD, label=SIGSTORE_LABEL)
    pair = await generate_key_pair_async(b"")

    assert (await decrypt_private_key_async(pem, PASSWORD, SOURCE)).private_key.private_numbers() == (
        p256.private_numbers()
    )
    loaded = await decrypt_private_key_async(pair.private_pem, b"", SOURCE)
    assert loaded.public_pem() == pair.public_pem


async def test_async_load_reports_the_same_errors() -> None:
    pair = generate_key_pair(PASSWORD)

    with pytest.raises(WrongPasswordError):
        await decrypt_private_key_async(pair.private_pem, b"nope", SOURCE)
    with pytest.raises(CorruptKeyError):
        await decrypt_private_key_async(b"garbage", PASSWORD, SOURCE)


def test_sealed_key_repr_hides_the_ciphertext(sealed_document: dict[str, Any]) -> None:
    sealed = keyfile.parse_sealed_key(_pem(sealed_document), SOURCE)

    assert sealed.ciphertext.hex() not in repr(sealed)
    assert sealed.n == 32768
