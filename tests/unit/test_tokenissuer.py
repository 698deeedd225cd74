"""The registry token issuer: scopes parsed as the registry writes them, JWTs the registry can verify."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kpack_core.envtest.certs import CertificateAuthority
from kpack_core.envtest.tokenissuer import TokenIssuer, parse_scope


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("repository:app:pull", ("repository", "app", ["pull"])),
        ("repository:team/app:pull,push", ("repository", "team/app", ["pull", "push"])),
        ("registry:catalog:*", ("registry", "catalog", ["*"])),
        ("repository:app", None),
        ("", None),
    ],
)
def test_parse_scope(scope: str, expected: tuple[str, str, list[str]] | None) -> None:
    assert parse_scope(scope) == expected


def test_token_is_an_rs256_jwt_with_x5c_and_access() -> None:
    ca = CertificateAuthority()
    issuer = TokenIssuer(signer=ca.issue_serving(["signer"], rsa_key=True), service="svc")
    token = issuer.sign("alice", [{"type": "repository", "name": "app", "actions": ["pull"]}])
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(_b64decode(header_b64))
    claims = json.loads(_b64decode(claims_b64))
    assert header["alg"] == "RS256"
    assert claims["aud"] == "svc"
    assert claims["sub"] == "alice"
    assert claims["access"] == [{"type": "repository", "name": "app", "actions": ["pull"]}]
    assert claims["exp"] > claims["nbf"]
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_pem))
    key = leaf.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(_b64decode(signature_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())


def test_signer_must_be_rsa() -> None:
    ca = CertificateAuthority()
    with pytest.raises(TypeError, match="RSA"):
        TokenIssuer(signer=ca.issue_serving(["signer"]), service="svc")
