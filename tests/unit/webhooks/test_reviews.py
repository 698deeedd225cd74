"""ConversionReview and AdmissionReview handling with the toy Widget registry: what each request is answered with."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest

from kpack_webhooks import reviews
from kpack_webhooks.handlers import KindInfo, Registry
from tests.unit.webhooks import toy
from tests.unit.webhooks.rfc6902 import apply


def conversion_review(objects: list[Any], desired: str = toy.V2, uid: Any = "uid-1", **top: Any) -> bytes:
    review = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", **top}
    review["request"] = {"uid": uid, "desiredAPIVersion": desired, "objects": objects}
    return orjson.dumps(review)


def admission_review(
    obj: Any, *, operation: str = "CREATE", old: Any = None, uid: str = "uid-2", **extra: Any
) -> bytes:
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": toy.GROUP, "version": "v1", "kind": toy.KIND},
        "resource": {"group": toy.GROUP, "version": "v1", "resource": toy.PLURAL},
        "operation": operation,
        "object": obj,
        "oldObject": old,
        **extra,
    }
    return orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})


def answer(reply: reviews.Reply, kind: str) -> dict[str, Any]:
    assert reply.status == 200
    body = orjson.loads(reply.body)
    assert body["kind"] == kind
    assert set(body) == {"apiVersion", "kind", "response"}
    response: dict[str, Any] = body["response"]
    return response


def converted(reply: reviews.Reply) -> dict[str, Any]:
    return answer(reply, "ConversionReview")


def admitted(reply: reviews.Reply) -> dict[str, Any]:
    return answer(reply, "AdmissionReview")


# -- conversion -------------------------------------------------------------------------------------------------


def test_conversion_echoes_the_uid_and_keeps_the_order() -> None:
    objects = [toy.widget(f"w{i}", size=i + 1) for i in range(5)]
    objects[2] = toy.widget("w2", api_version=toy.V2, dimension=3)  # already in the desired version: passed through
    response = converted(reviews.convert(conversion_review(objects), toy.registry()))
    assert response["uid"] == "uid-1"
    assert response["result"] == {"status": "Success"}
    names = [obj["metadata"]["name"] for obj in response["convertedObjects"]]
    assert names == ["w0", "w1", "w2", "w3", "w4"]
    assert [obj["apiVersion"] for obj in response["convertedObjects"]] == [toy.V2] * 5
    assert [obj["spec"] for obj in response["convertedObjects"]] == [{"dimension": i + 1} for i in range(5)]


def test_conversion_back_is_lossless() -> None:
    original = toy.widget("w", size=7, color="red")
    there = converted(reviews.convert(conversion_review([original]), toy.registry()))["convertedObjects"]
    back = converted(reviews.convert(conversion_review(there, desired=toy.V1), toy.registry()))["convertedObjects"]
    assert back == [original]


def test_an_empty_or_missing_object_list_converts_to_nothing() -> None:
    assert converted(reviews.convert(conversion_review([]), toy.registry()))["convertedObjects"] == []
    body = orjson.loads(conversion_review([]))
    del body["request"]["objects"]
    assert converted(reviews.convert(orjson.dumps(body), toy.registry()))["result"]["status"] == "Success"


def failure(reply: reviews.Reply) -> str:
    response = converted(reply)
    assert response["uid"] == "uid-1"
    assert response["result"]["status"] == "Failure"
    assert response["convertedObjects"] == []
    message: str = response["result"]["message"]
    assert reply.problem == message
    return message


def test_a_conversion_error_fails_the_review_naming_the_object() -> None:
    objects = [toy.widget("fine", size=1), toy.widget("broken", namespace="ns", size=1, unconvertible=True)]
    message = failure(reviews.convert(conversion_review(objects), toy.registry()))
    assert message == (
        f"converting Widget ns/broken from {toy.V1} to {toy.V2}: spec.unconvertible: this widget cannot be converted"
    )


def test_a_desired_version_that_is_not_served_fails() -> None:
    message = failure(
        reviews.convert(conversion_review([toy.widget("w", size=1)], desired=f"{toy.GROUP}/v9"), toy.registry())
    )
    assert message == f"converting Widget default/w to {toy.GROUP}/v9: not a served version of Widget (served: v1, v2)"


def test_a_source_version_that_is_not_served_fails() -> None:
    message = failure(
        reviews.convert(conversion_review([toy.widget("w", api_version=f"{toy.GROUP}/v0")]), toy.registry())
    )
    assert "from webhooks.test.kpack.io/v0: not a served version of Widget" in message


def test_a_kind_we_do_not_own_fails() -> None:
    gadget = {"apiVersion": "other.io/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    message = failure(reviews.convert(conversion_review([gadget], desired="other.io/v2"), toy.registry()))
    assert message == "Gadget g: kind Gadget.other.io is not converted by this webhook"


def test_a_kind_registered_without_conversion_fails() -> None:
    registry = Registry()
    registry.register(KindInfo(toy.GROUP, toy.KIND, toy.PLURAL, toy.VERSIONS, convert=False), toy.WidgetHandlers())
    message = failure(reviews.convert(conversion_review([toy.widget("w", size=1)]), registry))
    assert "is not converted by this webhook" in message


@pytest.mark.parametrize(
    ("request_patch", "expected"),
    [
        ({"desiredAPIVersion": "v1"}, "request.desiredAPIVersion 'v1' is not a group/version"),
        ({"desiredAPIVersion": 3}, "request.desiredAPIVersion 3 is not a group/version"),
        ({"objects": {"a": 1}}, "request.objects is a JSON dict, not an array"),
        ({"objects": [1]}, "request.objects[0] is a JSON int, not an object"),
        ({"objects": [{"metadata": {"name": "x"}}]}, "request.objects[0] (<no kind> x) has no apiVersion or kind"),
    ],
)
def test_malformed_requests_fail_with_a_reason(request_patch: dict[str, Any], expected: str) -> None:
    body = orjson.loads(conversion_review([toy.widget("w", size=1)]))
    body["request"].update(request_patch)
    assert failure(reviews.convert(orjson.dumps(body), toy.registry())) == expected


def test_the_wrong_review_type_fails_but_is_answered() -> None:
    body = conversion_review([toy.widget("w", size=1)], apiVersion="apiextensions.k8s.io/v1beta1")
    message = failure(reviews.convert(body, toy.registry()))
    assert message == (
        "expected a apiextensions.k8s.io/v1 ConversionReview, "
        "got apiVersion 'apiextensions.k8s.io/v1beta1' kind 'ConversionReview'"
    )


def test_a_crashing_converter_is_a_failure_and_reported() -> None:
    reply = reviews.convert(conversion_review([toy.widget("w", crash=True)]), toy.registry())
    message = failure(reply)
    assert message.endswith("internal error: RuntimeError: the toy converter crashed")
    assert len(reply.crashes) == 1
    assert isinstance(reply.crashes[0], RuntimeError)


class _Rogue(toy.WidgetHandlers):
    def __init__(self, change: str) -> None:
        super().__init__()
        self.change = change

    def convert(self, obj: dict[str, Any], desired_api_version: str) -> dict[str, Any]:
        result = super().convert(obj, desired_api_version)
        if self.change == "kind":
            result["kind"] = "Gizmo"
        elif self.change == "name":
            result["metadata"]["name"] = "renamed"
        elif self.change == "apiVersion":
            result["apiVersion"] = toy.V1
        elif self.change == "not-json":
            result["spec"]["when"] = object()
        return result


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("kind", "the converter changed kind to 'Gizmo'"),
        ("name", "the converter changed metadata.name, metadata.namespace or metadata.uid"),
        ("apiVersion", f"the converter returned apiVersion '{toy.V1}'"),
        ("not-json", "a converter returned something that is not JSON"),
    ],
)
def test_converter_output_is_checked(change: str, expected: str) -> None:
    message = failure(reviews.convert(conversion_review([toy.widget("w", size=1)]), toy.registry(_Rogue(change))))
    assert expected in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "the request body is not JSON"),
        (b"{nope", "the request body is not JSON"),
        (b"[1, 2]", "the request body is a JSON list, not an object"),
        (
            b'{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"}',
            "the ConversionReview has no request",
        ),
        (b'{"request": {"objects": []}}', "the ConversionReview has no request.uid"),
        (b'{"request": {"uid": 7}}', "the ConversionReview has no request.uid"),
        (b'{"request": {"uid": ""}}', "the ConversionReview has no request.uid"),
        (b'{"a":' * 300 + b"1" + b"}" * 300, "nests arrays and objects deeper than 254 levels"),
        (b"[" * 5000 + b"]" * 5000, "the request body is not JSON"),
    ],
)
def test_unanswerable_bodies_are_bad_requests(body: bytes, expected: str) -> None:
    reply = reviews.convert(body, toy.registry())
    assert reply.status == 400
    status = orjson.loads(reply.body)
    assert status["kind"] == "Status"
    assert status["code"] == 400
    assert status["reason"] == "BadRequest"
    assert expected in status["message"]


def test_a_review_at_the_depth_limit_is_accepted() -> None:
    deep: Any = 1
    for _ in range(reviews.MAX_DEPTH - 5):  # review, request, objects, object, spec take five levels
        deep = {"d": deep}
    reply = reviews.convert(conversion_review([toy.widget("w", size=1, deep=deep)]), toy.registry())
    assert converted(reply)["result"]["status"] == "Success"
    deeper = orjson.loads(conversion_review([toy.widget("w", size=1)]))
    deeper["request"]["objects"][0]["spec"]["deep"] = {"d": deep}
    reply = reviews.convert(json.dumps(deeper).encode(), toy.registry())  # orjson would refuse to write it
    assert reply.status == 400
    assert reply.problem == "the request body nests arrays and objects deeper than 254 levels"


# -- defaulting -------------------------------------------------------------------------------------------------


def patch_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["patchType"] == "JSONPatch"
    operations: list[dict[str, Any]] = orjson.loads(base64.b64decode(response["patch"]))
    return operations


def test_defaulting_answers_with_a_patch_that_applies() -> None:
    obj = toy.widget("w", size=1)
    response = admitted(reviews.default(admission_review(obj), toy.registry()))
    assert response["uid"] == "uid-2"
    assert response["allowed"] is True
    operations = patch_of(response)
    assert operations == [{"op": "add", "path": "/spec/color", "value": "blue"}]
    assert apply(obj, operations) == {**obj, "spec": {"size": 1, "color": "blue"}}


def test_defaulting_an_object_without_spec_adds_it_whole() -> None:
    obj = {"apiVersion": toy.V1, "kind": toy.KIND, "metadata": {"name": "w", "namespace": "default"}}
    operations = patch_of(admitted(reviews.default(admission_review(obj), toy.registry())))
    assert apply(obj, operations)["spec"] == {"color": "blue"}


def test_nothing_to_default_means_no_patch() -> None:
    response = admitted(reviews.default(admission_review(toy.widget("w", size=1, color="red")), toy.registry()))
    assert response == {"uid": "uid-2", "allowed": True}


def test_defaulting_passes_the_operation() -> None:
    handlers = toy.WidgetHandlers()
    old = toy.widget("w", size=1, color="blue")
    reviews.default(admission_review(toy.widget("w", size=2), operation="UPDATE", old=old), toy.registry(handlers))
    assert handlers.calls == [("default", "UPDATE")]


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
@pytest.mark.parametrize("review", [reviews.default, reviews.validate])
def test_delete_and_connect_are_allowed_untouched(operation: str, review: Any) -> None:
    handlers = toy.WidgetHandlers()
    response = admitted(
        review(admission_review(None, operation=operation, old=toy.widget("w")), toy.registry(handlers))
    )
    assert response == {"uid": "uid-2", "allowed": True}
    assert handlers.calls == []


def denial(reply: reviews.Reply) -> dict[str, Any]:
    response = admitted(reply)
    assert response["uid"] == "uid-2"
    assert response["allowed"] is False
    assert "patch" not in response
    status: dict[str, Any] = response["status"]
    assert status["status"] == "Failure"
    assert reply.problem == status["message"]
    return status


def test_a_crashing_defaulter_denies_with_500() -> None:
    reply = reviews.default(admission_review(toy.widget("w", crash=True)), toy.registry())
    status = denial(reply)
    assert status["code"] == 500
    assert status["reason"] == "InternalError"
    assert status["message"] == "defaulting Widget default/w: internal error: RuntimeError: the toy defaulter crashed"
    assert len(reply.crashes) == 1


@pytest.mark.parametrize("review", [reviews.default, reviews.validate])
def test_a_kind_we_do_not_own_is_denied(review: Any) -> None:
    body = orjson.loads(admission_review(toy.widget("w", size=1)))
    body["request"]["kind"] = {"group": "apps", "version": "v1", "kind": "Deployment"}
    status = denial(review(orjson.dumps(body), toy.registry()))
    assert status["code"] == 400
    assert status["message"] == "Deployment default/w: kind Deployment.apps is not admitted by this webhook"


def test_the_kind_comes_from_the_object_when_the_request_names_none() -> None:
    body = orjson.loads(admission_review(toy.widget("w", size=1)))
    del body["request"]["kind"]
    assert admitted(reviews.default(orjson.dumps(body), toy.registry()))["allowed"] is True


@pytest.mark.parametrize(
    ("request_patch", "expected"),
    [
        ({"operation": "PATCH"}, "request.operation 'PATCH' is not one of CREATE, UPDATE, DELETE, CONNECT"),
        ({"object": None}, "the CREATE request has no object"),
        ({"object": [1]}, "the CREATE request has no object"),
    ],
)
@pytest.mark.parametrize("review", [reviews.default, reviews.validate])
def test_malformed_admission_requests_are_denied(request_patch: dict[str, Any], expected: str, review: Any) -> None:
    body = orjson.loads(admission_review(toy.widget("w", size=1)))
    body["request"].update(request_patch)
    status = denial(review(orjson.dumps(body), toy.registry()))
    assert status["code"] == 400
    assert status["message"] == expected


def test_the_wrong_admission_review_version_is_denied() -> None:
    body = orjson.loads(admission_review(toy.widget("w", size=1)))
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    status = denial(reviews.validate(orjson.dumps(body), toy.registry()))
    assert status["message"].startswith("expected a admission.k8s.io/v1 AdmissionReview")


def test_admission_without_uid_is_a_bad_request() -> None:
    body = orjson.loads(admission_review(toy.widget("w", size=1)))
    del body["request"]["uid"]
    reply = reviews.validate(orjson.dumps(body), toy.registry())
    assert reply.status == 400
    assert orjson.loads(reply.body)["message"] == "the AdmissionReview has no request.uid"


# -- validation -------------------------------------------------------------------------------------------------


def test_a_valid_object_is_allowed() -> None:
    response = admitted(reviews.validate(admission_review(toy.widget("w", size=1)), toy.registry()))
    assert response == {"uid": "uid-2", "allowed": True}


def test_every_violation_is_listed_with_422() -> None:
    status = denial(
        reviews.validate(admission_review(toy.widget("w", namespace="ns", size=0, color="pink")), toy.registry())
    )
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    assert status["message"] == (
        "Widget ns/w is invalid: spec.size: must be a positive integer, got 0; "
        "spec.color: must be one of red, green, blue, got 'pink'"
    )
    assert status["details"]["kind"] == toy.KIND
    assert status["details"]["name"] == "w"
    assert [cause["message"] for cause in status["details"]["causes"]] == [
        "spec.size: must be a positive integer, got 0",
        "spec.color: must be one of red, green, blue, got 'pink'",
    ]


def test_validation_on_update_sees_the_old_object() -> None:
    old = toy.widget("w", size=1, color="red")
    status = denial(
        reviews.validate(
            admission_review(toy.widget("w", size=1, color="blue"), operation="UPDATE", old=old), toy.registry()
        )
    )
    assert status["message"] == "Widget default/w is invalid: spec.color: immutable"


def test_a_generated_name_is_named_as_such() -> None:
    obj = toy.widget("", size=0)
    obj["metadata"] = {"generateName": "w-", "namespace": "ns"}
    assert denial(reviews.validate(admission_review(obj), toy.registry()))["message"].startswith(
        "Widget ns/w-<generated> is invalid"
    )


def test_a_crashing_validator_denies_with_500() -> None:
    reply = reviews.validate(admission_review(toy.widget("w", crash=True)), toy.registry())
    assert denial(reply)["code"] == 500
    assert isinstance(reply.crashes[0], RuntimeError)


class _Unprintable:
    def __str__(self) -> str:
        raise ValueError("no")


class _OddValidator(toy.WidgetHandlers):
    def validate(
        self, obj: dict[str, Any], old: dict[str, Any] | None, *, operation: str, username: str | None = None
    ) -> list[str]:
        return [_Unprintable()]  # type: ignore[list-item]


def test_a_validator_returning_odd_messages_is_survived() -> None:
    status = denial(reviews.validate(admission_review(toy.widget("w", size=1)), toy.registry(_OddValidator())))
    assert status["message"] == "Widget default/w is invalid: <unprintable _Unprintable>"
