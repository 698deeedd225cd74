"""cosign signing: key files, the simple-signing payload, signing and verifying images in their registries.

Keys (`keys`, `keyfile`): `decrypt_private_key[_async]` opens an encrypted cosign key file (PEM `ENCRYPTED COSIGN
PRIVATE KEY` or `ENCRYPTED SIGSTORE PRIVATE KEY`: scrypt + NaCl secretbox around PKCS#8 P-256) into a `SigningKey`;
`generate_key_pair[_async]` and `encrypt_private_key[_async]` write files every cosign reads; `load_public_key` reads
`cosign.pub`. Failures are `WrongPasswordError` or `CorruptKeyError`, naming the key's source.

Signing (`signer`): `sign_image(client, key, image, annotations=..., signature_repository=..., docker_media_types=...)`
resolves a tag once (a digest is used as given), signs the payload (`payload.build_payload`) and appends the
signature to `<sigrepo>:sha256-<hex>.sig`, returning a `SignResult`. `verify_image` is our own verifier.

Settings (`settings`): `cosign_secret_from_object` / `cosign_secret_from_data` turn a Kubernetes cosign secret
(`cosign.key`, optional `cosign.password`, annotations `kpack.io/cosign.repository` and
`kpack.io/cosign.docker-media-types`) into a `CosignSecret`; `parse_docker_media_types` reads that annotation with
Go `ParseBool` rules.
"""

from kpack_core.cosign.errors import (
    CorruptKeyError,
    CosignError,
    CosignKeyError,
    InvalidCosignSecretError,
    InvalidSettingError,
    SigningError,
    VerificationError,
    WrongPasswordError,
)
from kpack_core.cosign.keyfile import COSIGN_LABEL, SIGSTORE_LABEL
from kpack_core.cosign.keys import (
    KeyPair,
    SigningKey,
    decrypt_private_key,
    decrypt_private_key_async,
    encrypt_private_key,
    encrypt_private_key_async,
    generate_key_pair,
    generate_key_pair_async,
    load_public_key,
    public_key_pem,
    verify_signature,
)
from kpack_core.cosign.payload import MEDIA_TYPE as PAYLOAD_MEDIA_TYPE
from kpack_core.cosign.payload import PAYLOAD_TYPE, SimpleSigning, build_payload, parse_payload
from kpack_core.cosign.settings import (
    DOCKER_MEDIA_TYPES_ANNOTATION,
    KEY_FIELD,
    PASSWORD_FIELD,
    REPOSITORY_ANNOTATION,
    CosignSecret,
    cosign_secret_from_data,
    cosign_secret_from_object,
    is_cosign_secret,
    parse_bool,
    parse_docker_media_types,
    parse_signature_repository,
)
from kpack_core.cosign.sigimage import SIGNATURE_ANNOTATION, signature_reference, signature_tag
from kpack_core.cosign.signer import SignResult, sign_image
from kpack_core.cosign.verify import VerifiedSignature, verify_image

__all__ = [
    "COSIGN_LABEL",
    "DOCKER_MEDIA_TYPES_ANNOTATION",
    "KEY_FIELD",
    "PASSWORD_FIELD",
    "PAYLOAD_MEDIA_TYPE",
    "PAYLOAD_TYPE",
    "REPOSITORY_ANNOTATION",
    "SIGNATURE_ANNOTATION",
    "SIGSTORE_LABEL",
    "CorruptKeyError",
    "CosignError",
    "CosignKeyError",
    "CosignSecret",
    "InvalidCosignSecretError",
    "InvalidSettingError",
    "KeyPair",
    "SignResult",
    "SigningError",
    "SigningKey",
    "SimpleSigning",
    "VerificationError",
    "VerifiedSignature",
    "WrongPasswordError",
    "build_payload",
    "cosign_secret_from_data",
    "cosign_secret_from_object",
    "decrypt_private_key",
    "decrypt_private_key_async",
    "encrypt_private_key",
    "encrypt_private_key_async",
    "generate_key_pair",
    "generate_key_pair_async",
    "is_cosign_secret",
    "load_public_key",
    "parse_bool",
    "parse_docker_media_types",
    "parse_payload",
    "parse_signature_repository",
    "public_key_pem",
    "sign_image",
    "signature_reference",
    "signature_tag",
    "verify_image",
    "verify_signature",
]
