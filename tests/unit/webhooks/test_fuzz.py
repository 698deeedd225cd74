"""Fuzzing the three review functions: garbage bytes, random JSON, and reviews with random parts. Whatever comes in,
they return (never raise) either a well-formed review answering the request's uid, or a 400 with a Status."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpack_webhooks import reviews
from kpack_webhooks.handlers import Registry
from tests.unit.webhooks import toy
from tests.unit.webhooks.rfc6902 import apply

REGISTRY = toy.registry()
Review = Callable[[bytes, Registry], reviews.Reply]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
KEYS = st.text(max_size=6) | st.sampled_from(["spec", "size", "dimension", "color", "crash", "metadata", "name", "uid"])
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
SPEC_VALUES = st.integers(-2, 5) | st.sampled_from(["red", "blue", "pink"]) | JSON_VALUES
SPEC_KEYS = st.sampled_from(["size", "dimension", "color", "crash", "unconvertible"])
SPECS = st.dictionaries(SPEC_KEYS, SPEC_VALUES, max_size=4)


def usually(draw: st.DrawFn, odds: int = 9) -> bool:
    """True about `odds` times in `odds + 1`. (Hypothesis favours the ends of ranges and lists, so the one False
    is drawn from the middle.)"""
    return bool(draw(st.sampled_from(range(odds + 1))) != odds // 2)


def mostly(draw: st.DrawFn, usual: st.SearchStrategy[Any], odds: int = 9) -> Any:
    """A value of `usual` `odds` times in `odds + 1`, else any JSON: most reviews get past the first checks."""
    return draw(usual) if usually(draw, odds) else draw(JSON_VALUES)


UIDS = st.sampled_from(["uid-1", "a-b-c"])
API_VERSIONS = st.sampled_from([toy.V1, toy.V2, toy.V1, toy.V2, f"{toy.GROUP}/v9", "v1", "other.io/v1", ""])


@st.composite
def widgets(draw: st.DrawFn) -> Any:
    if usually(draw) == 0:
        return draw(JSON_VALUES)
    metadata = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=5) | JSON_VALUES,
                "namespace": st.text(max_size=5),
                "uid": st.text(max_size=5),
                "generateName": st.text(max_size=3),
            },
        )
    )
    obj = {
        "apiVersion": mostly(draw, API_VERSIONS),
        "kind": mostly(draw, st.sampled_from([toy.KIND, toy.KIND, "Gadget"])),
    }
    obj["metadata"] = metadata if draw(st.booleans()) else draw(JSON_VALUES)
    obj["spec"] = draw(SPECS) if usually(draw, 4) else draw(JSON_VALUES)
    return obj


def _review_shell(draw: st.DrawFn, api_version: str, kind: str) -> dict[str, Any]:
    review: dict[str, Any] = {}
    if usually(draw):
        review["apiVersion"] = api_version
    else:
        review["apiVersion"] = draw(JSON_VALUES)
    review["kind"] = kind if usually(draw) else draw(JSON_VALUES)
    return review


@st.composite
def conversion_reviews(draw: st.DrawFn) -> bytes:
    review = _review_shell(draw, "apiextensions.k8s.io/v1", "ConversionReview")
    request: dict[str, Any] = {"uid": mostly(draw, UIDS), "desiredAPIVersion": mostly(draw, API_VERSIONS)}
    request["objects"] = draw(st.lists(widgets(), max_size=5)) if usually(draw) else draw(JSON_VALUES)
    review["request"] = request if usually(draw, 19) else draw(JSON_VALUES)
    return orjson.dumps(review)


@st.composite
def admission_reviews(draw: st.DrawFn) -> bytes:
    review = _review_shell(draw, "admission.k8s.io/v1", "AdmissionReview")
    operations = st.sampled_from(["CREATE", "UPDATE", "CREATE", "UPDATE", "DELETE", "CONNECT", "PATCH"])
    request: dict[str, Any] = {
        "uid": mostly(draw, UIDS),
        "operation": mostly(draw, operations),
        "object": draw(widgets()),
    }
    if draw(st.booleans()):
        request["oldObject"] = draw(widgets())
    if draw(st.booleans()):
        kinds = st.fixed_dictionaries(
            {"group": st.sampled_from([toy.GROUP, "apps"]), "kind": st.sampled_from([toy.KIND, "X"])}
        )
        request["kind"] = mostly(draw, kinds)
    review["request"] = request if usually(draw, 19) else draw(JSON_VALUES)
    return orjson.dumps(review)


GARBAGE = st.binary(max_size=200) | JSON_VALUES.map(orjson.dumps)


def _request_uid(body: bytes) -> str | None:
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    request = review.get("request") if isinstance(review, dict) else None
    uid = request.get("uid") if isinstance(request, dict) else None
    return uid if isinstance(uid, str) and uid else None


def check(review: Review, body: bytes) -> dict[str, Any] | None:
    """Run `review` on `body` and check the answer's shape; returns the review's response (None for a 400)."""
    reply = review(body, REGISTRY)
    assert reply.status in (200, 400), reply
    answer = orjson.loads(reply.body)
    uid = _request_uid(body)
    if reply.status == 400:
        assert uid is None or answer["message"].startswith("the request body nests")
        assert answer["kind"] == "Status"
        assert answer["code"] == 400
        assert isinstance(answer["message"], str)
        return None
    assert uid is not None
    expected_kind = "ConversionReview" if review is reviews.convert else "AdmissionReview"
    assert answer["kind"] == expected_kind
    assert set(answer) == {"apiVersion", "kind", "response"}
    response: dict[str, Any] = answer["response"]
    assert response["uid"] == uid
    return response


@FUZZ
@given(GARBAGE)
def test_convert_survives_garbage(body: bytes) -> None:
    check(reviews.convert, body)


@FUZZ
@given(GARBAGE)
def test_default_survives_garbage(body: bytes) -> None:
    check(reviews.default, body)


@FUZZ
@given(GARBAGE)
def test_validate_survives_garbage(body: bytes) -> None:
    check(reviews.validate, body)


@FUZZ
@given(conversion_reviews())
def test_convert_answers_every_review(body: bytes) -> None:
    response = check(reviews.convert, body)
    if response is None:
        return
    status = response["result"]["status"]
    assert status in ("Success", "Failure")
    if status == "Success":
        objects = orjson.loads(body)["request"].get("objects") or []
        assert len(response["convertedObjects"]) == len(objects)
        desired = orjson.loads(body)["request"]["desiredAPIVersion"]
        assert all(obj["apiVersion"] == desired for obj in response["convertedObjects"])
    else:
        assert isinstance(response["result"]["message"], str)
        assert response["result"]["message"]


@FUZZ
@given(admission_reviews())
def test_default_answers_every_review(body: bytes) -> None:
    response = check(reviews.default, body)
    if response is None or "patch" not in response:
        return
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    obj = orjson.loads(body)["request"]["object"]
    patched = apply(obj, orjson.loads(base64.b64decode(response["patch"])))
    assert "color" in patched["spec"]


@FUZZ
@given(admission_reviews())
def test_validate_answers_every_review(body: bytes) -> None:
    response = check(reviews.validate, body)
    if response is None:
        return
    assert isinstance(response["allowed"], bool)
    if not response["allowed"]:
        assert response["status"]["code"] in (400, 422, 500)
        assert response["status"]["message"]
