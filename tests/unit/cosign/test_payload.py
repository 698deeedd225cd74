"""The simple-signing payload: exact bytes as Go's json.Marshal writes them, and parsing of the claims."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpack_core.cosign import PAYLOAD_TYPE, build_payload, parse_payload
from kpack_core.cosign.payload import go_json
from kpack_core.registry import parse_reference

DIGEST = "sha256:" + "0123456789abcdef" * 4


def _expected(reference: str, optional: str) -> bytes:
    return (
        '{"critical":{"identity":{"docker-reference":"' + reference + '"},'
        '"image":{"docker-manifest-digest":"' + DIGEST + '"},'
        '"type":"cosign container image signature"},"optional":' + optional + "}"
    ).encode()


@pytest.mark.parametrize(
    ("image", "reference"),
    [
        ("busybox", "index.docker.io/library/busybox"),
        ("docker.io/busybox:1.36", "index.docker.io/library/busybox"),
        ("paketo/builder:base", "index.docker.io/paketo/builder"),
        ("gcr.io/proj/app:v1", "gcr.io/proj/app"),
        (f"localhost:5000/foo@{'sha256:' + 'f' * 64}", "localhost:5000/foo"),
        (f"127.0.0.1:41234/team/app:v1@{'sha256:' + 'e' * 64}", "127.0.0.1:41234/team/app"),
    ],
)
def test_no_annotations_writes_optional_null_and_the_canonical_repository(image: str, reference: str) -> None:
    assert build_payload(parse_reference(image), DIGEST) == _expected(reference, "null")
    assert build_payload(parse_reference(image), DIGEST, {}) == _expected(reference, "null")


def test_annotations_are_sorted_and_escaped_like_go() -> None:
    annotations = {
        "buildTimestamp": "20210901.101500",
        "buildNumber": "12",
        "html": "<a href='x'>&amp;</a>",
        "quote": 'say "hi"\\',
        "controls": "tab\there\nline\rcr\bbs\fff\x01\x1f\x7f",
        "unicode": "héllo ✓ \u2028\u2029 😀",
        "Upper": "sorted before lowercase",
    }

    payload = build_payload(parse_reference("gcr.io/proj/app"), DIGEST, annotations)

    assert payload == _expected(
        "gcr.io/proj/app",
        "{"
        '"Upper":"sorted before lowercase",'
        '"buildNumber":"12",'
        '"buildTimestamp":"20210901.101500",'
        '"controls":"tab\\there\\nline\\rcr\\bbs\\fff\\u0001\\u001f\x7f",'
        '"html":"\\u003ca href=\'x\'\\u003e\\u0026amp;\\u003c/a\\u003e",'
        '"quote":"say \\"hi\\"\\\\",'
        '"unicode":"h\u00e9llo \u2713 \\u2028\\u2029 \U0001f600"'
        "}",
    )
    assert json.loads(payload)["optional"] == annotations


def test_lone_surrogates_become_the_replacement_character() -> None:
    payload = build_payload(parse_reference("gcr.io/a"), DIGEST, {"k\ud800": "v\udfff"})

    assert json.loads(payload)["optional"] == {"k\ufffd": "v\ufffd"}


def test_go_json_escapes_only_inside_strings() -> None:
    assert (
        go_json({"a<": [1, None, True, "&"], "b": {"c": ">"}})
        == b'{"a\\u003c":[1,null,true,"\\u0026"],"b":{"c":"\\u003e"}}'
    )


@given(st.dictionaries(st.text(), st.text(), max_size=5))
def test_payload_round_trips_through_any_json_parser(annotations: dict[str, str]) -> None:
    payload = build_payload(parse_reference("gcr.io/proj/app"), DIGEST, annotations)

    decoded = json.loads(payload)
    assert decoded["critical"]["image"]["docker-manifest-digest"] == DIGEST
    assert decoded["critical"]["type"] == PAYLOAD_TYPE
    assert decoded["optional"] == (annotations or None)  # hypothesis text has no lone surrogates
    assert list(decoded["optional"] or ()) == sorted(annotations)
    assert b"<" not in payload
    assert b">" not in payload
    assert b"&" not in payload


def test_parse_payload_reads_the_claims() -> None:
    claims = parse_payload(build_payload(parse_reference("gcr.io/proj/app"), DIGEST, {"a": "b"}))

    assert claims.manifest_digest == DIGEST
    assert claims.docker_reference == "gcr.io/proj/app"
    assert claims.type == PAYLOAD_TYPE
    assert claims.optional == {"a": "b"}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"{", "not JSON"),
        (b"[]", "no 'critical' object"),
        (b'{"critical":"x"}', "no 'critical' object"),
        (b'{"critical":{}}', "no critical.image.docker-manifest-digest"),
        (b'{"critical":{"image":{"docker-manifest-digest":5}}}', "no critical.image.docker-manifest-digest"),
        (b'{"critical":{"image":{"docker-manifest-digest":"sha256:x"}},"optional":[1]}', "neither an object nor null"),
    ],
)
def test_parse_payload_names_what_is_missing(payload: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_payload(payload)


def test_parse_payload_tolerates_missing_identity_and_type() -> None:
    claims = parse_payload(b'{"critical":{"image":{"docker-manifest-digest":"sha256:1"}}}')

    assert (claims.docker_reference, claims.type, claims.optional) == ("", "", None)
