"""The native `/convert` fast path (`kpack_webhooks._native`, built from native/) against the Python path it stands
in for: byte for byte the same answer wherever it answers, on every kind's generated objects (with stray fields and
odd values put anywhere, and every shape of metadata), on toy kinds with models nesting themselves; it answers
exactly where the compiled plan does; and it leaves every other review (malformed, a conversion up, an object the
exact path converts, what it does not read the way Python does) to the Python path, which answers it as before."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kpack_core.apis import conversion as conversion_module
from kpack_core.apis.base import HUB_VERSION, V1ALPHA1
from kpack_core.apis.conversion import ANNOTATION, KindConversion, Move
from kpack_core.apis.kinds import REGISTRY
from kpack_webhooks import kinds, reviews
from kpack_webhooks._native import ReviewConverter
from kpack_webhooks.fastconvert import review_converter
from kpack_webhooks.handlers import JSON, KindInfo, Registry
from tests.model_strategies import FREE_JSON, TEXT, for_model
from tests.unit.apis.test_conversion_mechanics import THING, NewSpec, NewStatus
from tests.unit.apis.test_conversion_plan import DEEP, nested, with_strays

V1, V2 = "kpack.io/v1alpha1", "kpack.io/v1alpha2"
STALE = orjson.dumps({"set": [[["spec", "stale"], 1]]}).decode()

# Every shape of metadata the conversion treats apart: annotations absent, empty, null, holding others, holding a
# stale copy of the conversion annotation; metadata absent.
METADATA = st.sampled_from(
    [
        {"name": "n", "namespace": "ns", "uid": "u"},
        {"name": "n", "annotations": {}},
        {"name": "n", "annotations": None},
        {"name": "n", "labels": {"a": "b"}, "annotations": {"a": "b", "x/y": "z"}},
        {"name": "n", "annotations": {ANNOTATION: STALE, "a": "b"}},
        {"name": "n", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {".": {}}}}]},
        None,
    ]
)


def review(objects: list[Any], desired: str = V1, uid: Any = "uid-1") -> bytes:
    request = {"uid": uid, "desiredAPIVersion": desired, "objects": objects}
    return orjson.dumps({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": request})


def python_answer(body: bytes, registry: Registry) -> reviews.Reply:
    """What the Python path answers (the registry without its native converter)."""
    native, registry.review_converter = registry.review_converter, None
    try:
        return reviews.convert(body, registry)
    finally:
        registry.review_converter = native


def same(a: reviews.Reply, b: reviews.Reply) -> bool:
    """The same reply (crashes compared by type: exceptions are equal only to themselves)."""
    return a[:4] == b[:4] and [type(c) for c in a.crashes] == [type(c) for c in b.crashes]


KPACK = kinds.registry()


class ToyHandlers:
    """Converts toy kinds with `conversion.convert`, as the kpack handlers convert the kpack kinds."""

    def __init__(self, conversions: dict[str, KindConversion]) -> None:
        self.conversions = conversions

    def convert(self, obj: JSON, desired_api_version: str) -> JSON:
        return conversion_module.convert(obj, desired_api_version, self.conversions)

    def default(self, obj: JSON, *, operation: str) -> JSON:
        return obj

    def validate(self, obj: JSON, old: JSON | None, *, operation: str, username: str | None = None) -> list[str]:
        return []


def toy_registry(*conversions: KindConversion) -> Registry:
    registry = Registry()
    handlers = ToyHandlers({c.kind: c for c in conversions})
    pairs = []
    for conversion in conversions:
        info = KindInfo("kpack.io", conversion.kind, conversion.kind.lower() + "s", (V1ALPHA1, HUB_VERSION))
        registry.register(info, handlers)
        pairs.append((info, conversion))
    registry.review_converter = review_converter(pairs)
    return registry


TOYS = toy_registry(THING, DEEP)


def assert_same_answer(body: bytes, registry: Registry, *, answered: bool | None = None) -> bytes | None:
    """The native answer is the Python path's, byte for byte; `answered`: whether the native path must answer."""
    assert registry.review_converter is not None
    native = registry.review_converter(body)
    expected = python_answer(body, registry)
    if native is not None:
        assert expected.status == 200
        assert native == expected.body
    if answered is not None:
        assert (native is not None) == answered, expected.body
    return native


def plan_answers(obj: dict[str, Any], conversion: KindConversion) -> bool:
    plan = conversion.down_plan
    assert plan is not None
    return plan.run(copy.deepcopy(obj)) is not None


@pytest.mark.parametrize("kind", sorted(REGISTRY))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_kind_converts_down_as_the_python_path_does(kind: str, data: st.DataObject) -> None:
    body = data.draw(for_model(REGISTRY[kind].versions[HUB_VERSION].model), label="body")
    metadata = data.draw(METADATA, label="metadata")
    obj = with_strays(data, {"apiVersion": V2, "kind": kind, **body})
    if metadata is not None:
        obj["metadata"] = copy.deepcopy(metadata)
    response = orjson.loads(python_answer(review([obj]), KPACK).body)["response"]
    if response["result"]["status"] != "Success":  # a stray replaced its kind or apiVersion
        assert_same_answer(review([obj]), KPACK, answered=False)
        return
    old = response["convertedObjects"][0]
    # Several objects in one review: a second one converted, and one already in the desired version.
    objects = data.draw(st.sampled_from([[obj], [obj, obj], [old, obj], [obj, old]]), label="objects")
    answered = plan_answers(obj, REGISTRY[kind].conversion)
    event(f"the native path answers: {answered}")
    assert_same_answer(review(objects), KPACK, answered=answered)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), spec=for_model(NewSpec), status=for_model(NewStatus), metadata=METADATA)
def test_a_toy_kind_converts_down_as_the_python_path_does(
    data: st.DataObject, spec: dict[str, Any], status: dict[str, Any], metadata: dict[str, Any] | None
) -> None:
    obj = with_strays(data, {"apiVersion": V2, "kind": "Thing", "spec": spec, "status": status})
    if metadata is not None:
        obj["metadata"] = copy.deepcopy(metadata)
    succeeds = python_answer(review([obj]), TOYS).problem is None
    assert_same_answer(review([obj]), TOYS, answered=succeeds and plan_answers(obj, THING))


@pytest.mark.parametrize("levels", [0, 3, 9])
@pytest.mark.parametrize("stray", [False, True])
def test_a_model_nesting_itself_converts_as_the_python_path_does(levels: int, stray: bool) -> None:
    obj = {"apiVersion": V2, "kind": "DeepThing", "metadata": {"name": "d"}, "spec": {"deep": nested(levels, stray)}}
    assert_same_answer(review([obj]), TOYS, answered=plan_answers(obj, DEEP))


def test_what_is_lost_travels_in_the_annotation_and_unchanged_values_keep_their_bytes() -> None:
    obj = {
        "apiVersion": V2,
        "kind": "Thing",
        "metadata": {"name": "n", "labels": {"a": "b"}},
        "spec": {"tag": "t", "serviceAccountName": "sa", "additionalTags": ["x"], "env": [{"name": "A"}]},
        "status": {"latestImage": "i", "latestCacheImage": "c"},
    }
    body = review([obj])
    # Unchanged values are copied as received: the spacing inside `labels` survives (the Python path re-encodes).
    spaced = body.replace(b'{"a":"b"}', b'{ "a" : "b" }')
    answer = TOYS.review_converter(spaced) if TOYS.review_converter else None
    assert answer is not None
    assert b'"labels":{ "a" : "b" }' in answer
    converted = orjson.loads(answer)["response"]["convertedObjects"][0]
    assert converted["apiVersion"] == V1
    assert converted["spec"] == {"tag": "t", "env": [{"name": "A"}], "serviceAccount": "sa"}
    carried = orjson.loads(converted["metadata"]["annotations"][ANNOTATION])
    assert carried == {
        "set": [[["spec", "additionalTags"], ["x"]], [["status", "latestCacheImage"], "c"]],
        "createdAnnotations": True,
    }
    assert orjson.loads(answer) == orjson.loads(python_answer(body, TOYS).body)


@given(key=TEXT, value=TEXT)
@settings(max_examples=200, deadline=None)
def test_keys_and_strings_with_escapes_are_read_and_written_back(key: str, value: str) -> None:
    obj = {"apiVersion": V2, "kind": "Thing", "metadata": {"name": value, "annotations": {key: value}}}
    obj["spec"] = {"tag": value, key: {key: value}, "cache": {key: value, "size": value}}
    assert_same_answer(review([obj], uid=value or "u"), TOYS, answered=plan_answers(obj, THING))


def test_a_review_without_objects_is_answered_with_none() -> None:
    request: dict[str, Any] = {"uid": "u", "desiredAPIVersion": V1}
    for objects in ([], None, "absent"):
        if objects != "absent":
            request["objects"] = objects
        body = orjson.dumps({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": request})
        answer = assert_same_answer(body, KPACK, answered=True)
        assert answer is not None
        assert orjson.loads(answer)["response"]["convertedObjects"] == []


IMAGE = {
    "apiVersion": V2,
    "kind": "Image",
    "metadata": {"name": "app", "namespace": "ns"},
    "spec": {"tag": "r/app", "additionalTags": ["r/app:1"]},
}


def deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("why", "body"),
    [
        ("not JSON", b"{"),
        ("not UTF-8", b'{"a":"\xff"}'),
        ("trailing bytes", review([IMAGE]) + b" x"),
        ("a control character in a string", review([IMAGE]).replace(b"r/app:1", b"r/app\x01")),
        ("a lone surrogate", review([IMAGE]).replace(b"r/app:1", b"\\ud800")),
        ("an invalid escape", review([IMAGE]).replace(b"r/app:1", b"\\q")),
        ("a JSON array", b"[]"),
        ("another review type", review([IMAGE]).replace(b"ConversionReview", b"AdmissionReview")),
        ("no request", b'{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview"}'),
        ("no uid", review([IMAGE]).replace(b'"uid":"uid-1",', b"")),
        ("an empty uid", review([IMAGE], uid="")),
        ("a uid that is not a string", review([IMAGE], uid=7)),
        ("a desired version without a group", review([IMAGE], desired="v1alpha1")),
        ("a desired version not served", review([IMAGE], desired="kpack.io/v9")),
        ("objects not an array", review([IMAGE]).replace(b'"objects":[', b'"objects":{"a":[').replace(b"]}}", b"]}}}")),
        ("an object that is not an object", review([IMAGE, 3])),
        ("an object without a kind", review([{**IMAGE, "kind": ""}])),
        ("a kind not of ours", review([{**IMAGE, "kind": "Pod"}])),
        ("a group not of ours", review([{**IMAGE, "apiVersion": "apps/v1"}])),
        ("a conversion up", review([{**IMAGE, "apiVersion": V1}], desired=V2)),
        ("an object the exact path converts", review([{**IMAGE, "spec": {"tag": "t", "cacheSize": "2G"}}])),
        ("a key given twice", review([IMAGE]).replace(b'"tag":"r/app"', b'"tag":"r/app","tag":"again"')),
        ("nesting deeper than the native reader goes", review([{**IMAGE, "status": {"x": deep(140)}}])),
        ("annotations that are not an object", review([{**IMAGE, "metadata": {"name": "a", "annotations": []}}])),
        ("metadata that is not an object", review([{**IMAGE, "metadata": "m"}])),
        ("the same, nothing lost", review([{**IMAGE, "metadata": "m", "spec": {"tag": "t"}}])),
        ("annotations that are a string", review([{**IMAGE, "metadata": {"annotations": "a"}, "spec": {"tag": "t"}}])),
    ],
)
def test_what_the_native_path_leaves_is_answered_by_the_python_path(why: str, body: bytes) -> None:
    assert KPACK.review_converter is not None
    assert KPACK.review_converter(body) is None, why
    assert same(reviews.convert(body, KPACK), python_answer(body, KPACK))


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ([IMAGE, {**IMAGE, "kind": "Pod"}], "kind Pod.kpack.io is not converted by this webhook"),
        ([{**IMAGE, "metadata": {"name": "a", "annotations": []}}], "metadata.annotations is a JSON array, not an"),
        ([{**IMAGE, "metadata": "m"}], "metadata is a JSON string, not an object"),
    ],
)
def test_a_failing_object_fails_the_whole_review_with_the_python_paths_message(
    objects: list[Any], message: str
) -> None:
    reply = reviews.convert(review(objects), KPACK)
    result = orjson.loads(reply.body)["response"]["result"]
    assert result["status"] == "Failure"
    assert message in result["message"]
    assert reply.crashes == ()


def test_kinds_without_a_plan_or_not_converted_are_passed_through_only() -> None:
    through_metadata = KindConversion(
        "Thing", THING.hub_model, THING.old_model, (Move(("metadata", "a"), ("spec", "b")),)
    )
    assert through_metadata.down_plan is None
    info = KindInfo("kpack.io", "Thing", "things", (V1ALPHA1, HUB_VERSION))
    converter = review_converter([(info, through_metadata)])
    obj = {"apiVersion": V2, "kind": "Thing", "metadata": {"name": "n"}, "spec": {"tag": "t"}}
    assert converter(review([obj])) is None
    passed = converter(review([obj], desired=V2))
    assert passed is not None
    assert orjson.loads(passed)["response"]["convertedObjects"] == [obj]
    not_converted = KindInfo("kpack.io", "Thing", "things", (V1ALPHA1, HUB_VERSION), convert=False)
    assert review_converter([(not_converted, THING)])(review([obj], desired=V2)) is None


TOP = [("metadata", None, None), ("spec", 1, None)]
SPEC = [("a", None, None), ("b", None, None)]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (("kpack.io/v2", "kpack.io/v1", [(["spec", "a"], ["spec", "b"])], [TOP]), "a field names a shape"),
        (("kpack.io/v2", "kpack.io/v1", [], [[("spec", None, None)]]), "no metadata field"),
        (("kpack.io/v2", "kpack.io/v1", [], [[("metadata", 0, None)]]), "or one with a model"),
        (("kpack.io/v2", "kpack.io/v1", [(["metadata", "a"], ["spec", "b"])], [TOP, SPEC]), "through metadata"),
        (("kpack.io/v2", "kpack.io/v1", [([], ["spec", "b"])], [TOP, SPEC]), "is empty"),
        (("kpack.io/v2", "kpack.io/v1", [(["spec", "a"], ["spec", "a", "c"])], [TOP, SPEC]), "overlap"),
    ],
)
def test_tables_the_native_plan_cannot_run_are_refused_naming_the_kind(plan: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        ReviewConverter(ANNOTATION, [("kpack.io", "Thing", ["kpack.io/v1", "kpack.io/v2"], [plan])])
    assert "Thing.kpack.io kpack.io/v2 -> kpack.io/v1" in str(refused.value)


@given(body=st.binary(max_size=64) | FREE_JSON.map(orjson.dumps))
@settings(max_examples=500, deadline=None)
def test_any_body_is_answered_as_the_python_path_answers_it(body: bytes) -> None:
    native = KPACK.review_converter(body) if KPACK.review_converter else None
    assert native is None or native == python_answer(body, KPACK).body
    assert same(reviews.convert(body, KPACK), reviews.Reply(200, native) if native else python_answer(body, KPACK))


def test_a_native_converter_that_raises_is_answered_as_an_internal_error() -> None:
    def broken(body: bytes) -> bytes | None:
        raise RuntimeError("the native conversion panicked")

    registry = toy_registry(THING)
    registry.review_converter = broken
    reply = reviews.convert(review([]), registry)
    assert reply.status == 500
    assert orjson.loads(reply.body)["message"] == "internal error in the webhook: RuntimeError"
    assert [type(c) for c in reply.crashes] == [RuntimeError]


def mostly(draw: st.DrawFn, usual: st.SearchStrategy[Any]) -> Any:
    """A value of `usual` nine times in ten, else any JSON."""
    return draw(usual) if draw(st.integers(0, 9)) else draw(FREE_JSON)


@st.composite
def kpack_reviews(draw: st.DrawFn) -> bytes:
    """ConversionReviews of kpack objects, each part usually right and sometimes anything."""
    versions = st.sampled_from([V1, V2, V1, V2, "kpack.io/v9", "v1alpha1", ""])
    objects = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(sorted(REGISTRY)))
        body = draw(for_model(REGISTRY[kind].versions[HUB_VERSION].model))
        obj = {"apiVersion": mostly(draw, versions), "kind": mostly(draw, st.just(kind)), **body}
        obj["metadata"] = mostly(draw, METADATA)
        objects.append(obj if draw(st.integers(0, 9)) else draw(FREE_JSON))
    request = {"uid": mostly(draw, st.just("uid-1")), "desiredAPIVersion": mostly(draw, versions)}
    request["objects"] = objects if draw(st.integers(0, 9)) else draw(FREE_JSON)
    review = {"apiVersion": mostly(draw, st.just("apiextensions.k8s.io/v1"))}
    review["kind"] = mostly(draw, st.just("ConversionReview"))
    review["request"] = request if draw(st.integers(0, 19)) else draw(FREE_JSON)
    return orjson.dumps(review)


@given(body=kpack_reviews())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_kpack_reviews_with_anything_anywhere_are_answered_as_the_python_path_answers_them(body: bytes) -> None:
    native = assert_same_answer(body, KPACK)
    event(f"the native path answers: {native is not None}")
