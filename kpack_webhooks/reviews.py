"""ConversionReview and AdmissionReview handling: request body in, HTTP status and response body out, no I/O.

One function per endpoint (`convert`, `default`, `validate`), each taking the raw body and the `Registry`, and each
total: whatever the body, it returns a `Reply` and never raises. Which answer, when:

* The body is not a JSON object (or is nested deeper than `MAX_DEPTH`), or has no `request.uid`: HTTP 400 with a
  `metav1.Status` JSON body saying why. Without a uid there is nothing a review could answer (the apiserver checks
  `response.uid` against its request), and 400 is what controller-runtime answers for an undecodable review.
* Anything else wrong, including the review's own `apiVersion`/`kind`, gets HTTP 200 and a failed review echoing the
  uid, so the apiserver shows our message to its client: a ConversionReview with `result.status: Failure` and a
  message naming the object (kind, namespace/name) and the problem; an AdmissionReview with `allowed: false` and a
  `status` (code 400 for a malformed request, 422 `Invalid` for violations, 500 when a handler crashed).
* A conversion converts every object in request order, or fails as a whole on the first object that cannot be: the
  apiserver fails the whole client request anyway. Objects already in the desired version are passed through. A
  ConversionReview the registry's `review_converter` answers (the native fast path, `fastconvert`) gets its answer,
  which is the one these rules give; whatever it leaves (None) is answered here.
* Defaulting answers with an RFC 6902 `JSONPatch` (base64) from the object received to the defaulted one, or no
  patch when nothing changed. DELETE and CONNECT requests are allowed untouched by both admission endpoints.

Handler exceptions other than `ConversionError` are caught, turned into a failure naming the object, and returned in
`Reply.crashes` for the server to log and count (controller-runtime's panics counters).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from kpack_webhooks.handlers import JSON, ConversionError, Entry, Registry
from kpack_webhooks.jsonpatch import diff

CONVERSION_API_VERSION = "apiextensions.k8s.io/v1"
CONVERSION_KIND = "ConversionReview"
ADMISSION_API_VERSION = "admission.k8s.io/v1"
ADMISSION_KIND = "AdmissionReview"

MAX_DEPTH = 254
"""Deepest nesting of arrays and objects accepted in a review (the review itself takes three levels): what orjson
serialises (it parses up to 1024). Answers embed objects as deep as requests do, so every accepted review can be
answered; Kubernetes objects are far shallower, and handlers and the patch diff stay clear of Python's recursion
limit."""

_NOT_OPENING = bytes(byte for byte in range(256) if byte not in b"{[")

ADMITTED_OPERATIONS = ("CREATE", "UPDATE")
PASSED_OPERATIONS = ("DELETE", "CONNECT")


class Reply(NamedTuple):
    """What to answer: HTTP status and JSON body, plus what the server logs and counts. (A named tuple: as
    immutable as a frozen dataclass, and made in a quarter of the time, once per request.)"""

    status: int
    body: bytes
    uid: str = ""
    problem: str | None = None
    """Why the review failed, was denied or was refused (None when it succeeded); also in the body."""
    crashes: tuple[BaseException, ...] = ()
    """Unexpected handler exceptions (bugs), for the log and the panics counter."""


class _BadRequest(Exception):
    """The body cannot be answered with a review: HTTP 400."""


class _Failed(Exception):
    """The review is answered, as failed (conversion) or denied (admission)."""

    def __init__(
        self,
        message: str,
        code: int = 400,
        reason: str = "BadRequest",
        crash: BaseException | None = None,
        details: JSON | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.crash = crash
        self.details = details


# -- shared plumbing ----------------------------------------------------------------------------------------------


def _parse(body: bytes) -> JSON:
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _BadRequest(f"the request body is not JSON: {exc}") from None
    if not isinstance(review, dict):
        raise _BadRequest(f"the request body is a JSON {type(review).__name__}, not an object")
    # Nesting can only exceed the limit with more opening brackets than that: counting them spares most reviews the
    # check. (Counted as what is left once every other byte is deleted: one pass instead of a `count` per bracket.)
    # The check itself is orjson serialising the review (in C, 5x faster than a walk in Python), which fails
    # exactly beyond MAX_DEPTH levels; parsed JSON has nothing else it could fail on.
    if len(body.translate(None, _NOT_OPENING)) > MAX_DEPTH:
        try:
            orjson.dumps(review)
        except TypeError:
            raise _BadRequest(f"the request body nests arrays and objects deeper than {MAX_DEPTH} levels") from None
    return review


def _uid(review: JSON, what: str) -> str:
    request = review.get("request")
    if not isinstance(request, dict):
        raise _BadRequest(f"the {what} has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise _BadRequest(f"the {what} has no request.uid")
    return uid


def _bad_request(message: str) -> Reply:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "BadRequest",
        "code": 400,
    }
    return Reply(400, orjson.dumps(status), problem=message)


def _check_review_type(review: JSON, api_version: str, kind: str) -> None:
    got_api_version, got_kind = review.get("apiVersion"), review.get("kind")
    if got_api_version != api_version or got_kind != kind:
        raise _Failed(f"expected a {api_version} {kind}, got apiVersion {got_api_version!r} kind {got_kind!r}")


def describe(obj: JSON, kind: str | None = None) -> str:
    """How messages name an object: `Kind namespace/name` (`Kind name` when cluster-scoped)."""
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not isinstance(name, str) or not name:
        generate = metadata.get("generateName")
        name = f"{generate}<generated>" if isinstance(generate, str) and generate else "<unnamed>"
    kind = kind if kind is not None else obj.get("kind") if isinstance(obj.get("kind"), str) else "<no kind>"
    return f"{kind} {namespace}/{name}" if isinstance(namespace, str) and namespace else f"{kind} {name}"


def _text(value: object) -> str:
    """`str(value)`, even for a value whose `__str__` is broken (handlers are other people's code)."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _crash_message(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {_text(exc)}"


def _last_resort(exc: Exception) -> Reply:
    """A bug in this module: HTTP 500 with a Status, never a traceback; the exception goes to the log."""
    message = f"internal error in the webhook: {type(exc).__name__}"
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    return Reply(500, orjson.dumps({**status, "reason": "InternalError", "code": 500}), problem=message, crashes=(exc,))


# -- /convert -----------------------------------------------------------------------------------------------------


def convert(body: bytes, registry: Registry) -> Reply:
    """Answer a ConversionReview (see the module docstring)."""
    try:
        native = registry.review_converter
        if native is not None:
            answer = native(body)
            if answer is not None:
                return Reply(200, answer)
        return _convert(body, registry)
    except Exception as exc:
        return _last_resort(exc)


def _convert(body: bytes, registry: Registry) -> Reply:
    try:
        review = _parse(body)
        uid = _uid(review, CONVERSION_KIND)
    except _BadRequest as exc:
        return _bad_request(str(exc))
    try:
        _check_review_type(review, CONVERSION_API_VERSION, CONVERSION_KIND)
        converted = _convert_objects(review["request"], registry)
        response: JSON = {"uid": uid, "result": {"status": "Success"}, "convertedObjects": converted}
        try:
            data = orjson.dumps({"apiVersion": CONVERSION_API_VERSION, "kind": CONVERSION_KIND, "response": response})
        except TypeError as exc:
            raise _Failed(f"a converter returned something that is not JSON: {_text(exc)}", crash=exc) from None
        return Reply(200, data, uid)
    except _Failed as failed:
        result = {"status": "Failure", "message": failed.message}
        response = {"uid": uid, "result": result, "convertedObjects": []}
        data = orjson.dumps({"apiVersion": CONVERSION_API_VERSION, "kind": CONVERSION_KIND, "response": response})
        return Reply(200, data, uid, failed.message, (failed.crash,) if failed.crash else ())


def _convert_objects(request: JSON, registry: Registry) -> list[JSON]:
    desired = request.get("desiredAPIVersion")
    if not isinstance(desired, str) or "/" not in desired:
        raise _Failed(f"request.desiredAPIVersion {desired!r} is not a group/version")
    objects = request.get("objects")
    if objects is None:
        return []
    if not isinstance(objects, list):
        raise _Failed(f"request.objects is a JSON {type(objects).__name__}, not an array")
    converted = []
    for index, obj in enumerate(objects):  # a loop, not a comprehension: one function call less per review
        converted.append(_convert_one(index, obj, desired, registry))
    return converted


def _convert_one(index: int, obj: Any, desired: str, registry: Registry) -> JSON:
    # The hot path of every conversion, run once per object: messages naming the object are only built on failure,
    # and the answer's checks are inlined for the common case (`_converted_problem` says what is wrong otherwise).
    if not isinstance(obj, dict):
        raise _Failed(f"request.objects[{index}] is a JSON {type(obj).__name__}, not an object")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        raise _Failed(f"request.objects[{index}] ({describe(obj)}) has no apiVersion or kind")
    group = api_version.rpartition("/")[0]
    entry = registry.lookup(group, kind)
    if entry is None or not entry.info.convert:
        raise _Failed(f"{describe(obj)}: kind {kind}.{group or 'core'} is not converted by this webhook")
    served = entry.info.api_versions
    if desired not in served or api_version not in served:
        versions = ", ".join(entry.info.versions)
        if desired not in served:
            message = f"converting {describe(obj)} to {desired}: not a served version of {kind} (served: {versions})"
        else:
            message = (
                f"converting {describe(obj)} from {api_version}: not a served version of {kind} (served: {versions})"
            )
        raise _Failed(message)
    if api_version == desired:
        return obj
    metadata = obj.get("metadata")
    identity = (
        (metadata.get("name"), metadata.get("namespace"), metadata.get("uid"))
        if isinstance(metadata, dict)
        else _NO_IDENTITY
    )
    try:
        converted = entry.handlers.convert(obj, desired)
    except ConversionError as exc:
        raise _Failed(f"converting {_named(kind, identity)} from {api_version} to {desired}: {_text(exc)}") from None
    except Exception as exc:
        message = f"converting {_named(kind, identity)} from {api_version} to {desired}: {_crash_message(exc)}"
        raise _Failed(message, crash=exc) from None
    if isinstance(converted, dict) and converted.get("apiVersion") == desired and converted.get("kind") == kind:
        metadata = converted.get("metadata")
        if isinstance(metadata, dict):
            if (metadata.get("name"), metadata.get("namespace"), metadata.get("uid")) == identity:
                return converted
        elif identity == _NO_IDENTITY:
            return converted
    problem = _converted_problem(converted, desired, kind, identity)
    raise _Failed(f"converting {_named(kind, identity)} from {api_version} to {desired}: the converter {problem}")


_NO_IDENTITY = (None, None, None)


def _named(kind: str, identity: tuple[Any, Any, Any]) -> str:
    """`describe` of an object from its identity (taken before a handler could change the object)."""
    name, namespace, _ = identity
    return describe({"kind": kind, "metadata": {"name": name, "namespace": namespace}})


def _converted_problem(converted: Any, desired: str, kind: str, identity: tuple[Any, Any, Any]) -> str:
    """What is wrong with a converter's answer (`_convert_one` found something)."""
    if not isinstance(converted, dict):
        return f"returned a {type(converted).__name__}, not an object"
    if converted.get("apiVersion") != desired:
        return f"returned apiVersion {converted.get('apiVersion')!r}"
    if converted.get("kind") != kind:
        return f"changed kind to {converted.get('kind')!r}"
    return "changed metadata.name, metadata.namespace or metadata.uid"


# -- /default and /validate ---------------------------------------------------------------------------------------


def default(body: bytes, registry: Registry) -> Reply:
    """Answer a defaulting AdmissionReview: allowed, with a JSONPatch when the defaults changed the object."""
    try:
        return _admit(body, registry, _default)
    except Exception as exc:
        return _last_resort(exc)


def validate(body: bytes, registry: Registry) -> Reply:
    """Answer a validating AdmissionReview: allowed, or denied (422 Invalid) listing every violation."""
    try:
        return _admit(body, registry, _validate)
    except Exception as exc:
        return _last_resort(exc)


@dataclass(frozen=True, slots=True)
class _Admission:
    """One CREATE/UPDATE admission request, checked and resolved to its kind's handlers."""

    operation: str
    entry: Entry
    obj: JSON
    old: JSON | None
    subject: str
    username: str | None


def _admit(body: bytes, registry: Registry, decide: Callable[[_Admission], JSON]) -> Reply:
    try:
        review = _parse(body)
        uid = _uid(review, ADMISSION_KIND)
    except _BadRequest as exc:
        return _bad_request(str(exc))
    try:
        _check_review_type(review, ADMISSION_API_VERSION, ADMISSION_KIND)
        request: JSON = review["request"]
        operation = request.get("operation")
        if operation in PASSED_OPERATIONS:
            return _admission_reply(uid, {"uid": uid, "allowed": True})
        admission = _resolve(request, operation, registry)
        return _admission_reply(uid, {"uid": uid, **decide(admission)})
    except _Failed as failed:
        status: JSON = {"status": "Failure", "code": failed.code, "reason": failed.reason, "message": failed.message}
        if failed.details:
            status["details"] = failed.details
        reply = _admission_reply(uid, {"uid": uid, "allowed": False, "status": status})
        return Reply(reply.status, reply.body, uid, failed.message, (failed.crash,) if failed.crash else ())


def _admission_reply(uid: str, response: JSON) -> Reply:
    data = orjson.dumps({"apiVersion": ADMISSION_API_VERSION, "kind": ADMISSION_KIND, "response": response})
    denied = response.get("status")
    return Reply(200, data, uid, denied.get("message") if isinstance(denied, dict) else None)


def _resolve(request: JSON, operation: Any, registry: Registry) -> _Admission:
    if operation not in ADMITTED_OPERATIONS:
        raise _Failed(f"request.operation {operation!r} is not one of CREATE, UPDATE, DELETE, CONNECT")
    obj = request.get("object")
    if not isinstance(obj, dict):
        raise _Failed(f"the {operation} request has no object")
    old = request.get("oldObject")
    old = old if isinstance(old, dict) else None
    group, kind = _request_kind(request, obj)
    namespace = request.get("namespace")
    metadata = obj.get("metadata")
    if isinstance(namespace, str) and namespace and isinstance(metadata, dict) and not metadata.get("namespace"):
        # A create through a namespaced URL need not repeat the namespace in the object; rules comparing
        # against the object's own namespace (a cosign key's) must still see it. The patch never includes it:
        # `_default` diffs against this same object.
        metadata["namespace"] = namespace
    subject = describe(obj, kind)
    entry = registry.lookup(group, kind)
    if entry is None or not entry.info.admit:
        raise _Failed(f"{subject}: kind {kind}.{group or 'core'} is not admitted by this webhook")
    user = request.get("userInfo")
    username = user.get("username") if isinstance(user, dict) else None
    return _Admission(operation, entry, obj, old, subject, username if isinstance(username, str) else None)


def _request_kind(request: JSON, obj: JSON) -> tuple[str, str]:
    """(group, kind) from `request.kind`, else from the object's own apiVersion/kind."""
    gvk = request.get("kind")
    if isinstance(gvk, dict) and isinstance(gvk.get("kind"), str) and isinstance(gvk.get("group", ""), str):
        return str(gvk.get("group", "")), str(gvk["kind"])
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if isinstance(api_version, str) and isinstance(kind, str):
        return api_version.rpartition("/")[0], kind
    raise _Failed("the request names no kind (request.kind, object.apiVersion/kind)")


def _default(admission: _Admission) -> JSON:
    # The handler owns what it is given and may change it in place: it gets a copy, the original is the baseline
    # of the patch. An orjson round trip is the fastest deep copy of plain JSON (and the input is known to be JSON).
    working = orjson.loads(orjson.dumps(admission.obj))
    try:
        defaulted = admission.entry.handlers.default(working, operation=admission.operation)
    except Exception as exc:
        raise _Failed(f"defaulting {admission.subject}: {_crash_message(exc)}", 500, "InternalError", exc) from None
    if not isinstance(defaulted, dict):
        message = f"defaulting {admission.subject}: the defaulter returned a {type(defaulted).__name__}, not an object"
        raise _Failed(message, 500, "InternalError")
    operations = diff(admission.obj, defaulted)
    if not operations:
        return {"allowed": True}
    try:
        patch = orjson.dumps(operations)
    except TypeError as exc:
        message = f"defaulting {admission.subject}: the defaulter returned something that is not JSON: {_text(exc)}"
        raise _Failed(message, 500, "InternalError", exc) from None
    return {"allowed": True, "patchType": "JSONPatch", "patch": base64.b64encode(patch).decode()}


def _validate(admission: _Admission) -> JSON:
    try:
        messages = admission.entry.handlers.validate(
            admission.obj, admission.old, operation=admission.operation, username=admission.username
        )
    except Exception as exc:
        raise _Failed(f"validating {admission.subject}: {_crash_message(exc)}", 500, "InternalError", exc) from None
    if not isinstance(messages, list | tuple):
        message = f"validating {admission.subject}: the validator returned a {type(messages).__name__}, not a list"
        raise _Failed(message, 500, "InternalError")
    if not messages:
        return {"allowed": True}
    violations = [_text(message) for message in messages]
    message = f"{admission.subject} is invalid: {'; '.join(violations)}"
    metadata = admission.obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    details: JSON = {
        "group": admission.entry.info.group,
        "kind": admission.entry.info.kind,
        "causes": [{"reason": "FieldValueInvalid", "message": violation} for violation in violations],
    }
    if isinstance(name, str) and name:
        details["name"] = name
    raise _Failed(message, 422, "Invalid", details=details)
