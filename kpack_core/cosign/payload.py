"""The signed "simple signing" payload: built byte for byte as cosign's Go `json.Marshal` writes it, and parsed.

formats.md §1.2. Verification hashes whatever bytes are stored, so exact bytes matter only for dedupe against a
payload cosign wrote: compact JSON, the critical keys in struct order (identity, image, type), `optional` keys sorted,
`"optional":null` without annotations, and Go's escaping of `<`, `>`, `&`, U+2028 and U+2029 inside strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kpack_core.registry.reference import Reference

PAYLOAD_TYPE = "cosign container image signature"
MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"

# Go's encoder escapes these inside strings (HTML safety and JavaScript line terminators); Python leaves them raw.
# They cannot occur outside strings in JSON text, so replacing them in the encoded text is exact.
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPE_TABLE = str.maketrans(_GO_ESCAPES)
_SURROGATE = re.compile("[\ud800-\udfff]")


def go_json(value: Any) -> bytes:
    """`value` encoded like Go's `json.Marshal` of the same data (dict order is kept: sort maps before calling).

    Python's control-character escapes (`\\n`, `\\t`, `\\b`, `\\f`, `\\r`, `\\u00XX` lowercase) equal Go's since
    Go 1.22. Strings must be valid Unicode (see `_valid_utf8`)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.translate(_GO_ESCAPE_TABLE).encode("utf-8")


def _valid_utf8(text: str) -> str:
    """Lone surrogates (possible in Python, impossible in Go strings) become U+FFFD, as Go's decoder makes them."""
    return _SURROGATE.sub("\ufffd", text)


def build_payload(image: Reference, digest: str, annotations: Mapping[str, str] | None = None) -> bytes:
    """The payload signing `digest` of `image`'s repository (`docker-reference` is the canonical repository name,
    `index.docker.io/library/...` on Docker Hub; never a tag or digest), with `annotations` as `optional`."""
    optional: dict[str, str] | None = None
    if annotations:
        optional = {_valid_utf8(key): _valid_utf8(annotations[key]) for key in sorted(annotations)}
    document = {
        "critical": {
            "identity": {"docker-reference": image.name},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": optional,
    }
    return go_json(document)


@dataclass(frozen=True)
class SimpleSigning:
    """The claims of a parsed payload that verification looks at (formats.md §1.6)."""

    docker_reference: str
    manifest_digest: str
    type: str
    optional: dict[str, Any] | None


def parse_payload(payload: bytes) -> SimpleSigning:
    """The claims of a payload; `ValueError` saying what is missing when it is not a simple-signing document."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError("the payload is not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("critical"), dict):
        raise ValueError("the payload has no 'critical' object")
    critical = document["critical"]
    image = critical.get("image")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str):
        raise ValueError("the payload has no critical.image.docker-manifest-digest")
    identity = critical.get("identity")
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    optional = document.get("optional")
    if optional is not None and not isinstance(optional, dict):
        raise ValueError("the payload's 'optional' is neither an object nor null")
    return SimpleSigning(
        docker_reference=reference if isinstance(reference, str) else "",
        manifest_digest=digest,
        type=critical.get("type") if isinstance(critical.get("type"), str) else "",
        optional=optional,
    )
