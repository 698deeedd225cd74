"""Event handlers (object, owner and mapped requests), `QueueingHandler`, and the predicates that filter events before
a handler sees them — pure functions of the event's objects, checked without an informer or a server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from kpack_core.runtime.handler import (
    ForObject,
    ForOwner,
    FromMap,
    QueueingHandler,
    for_object,
    for_owner,
    from_map,
    request_for,
)
from kpack_core.runtime.informer import DeletedFinalStateUnknown
from kpack_core.runtime.predicate import (
    AnnotationsChanged,
    Filter,
    GenerationChanged,
    LabelsChanged,
    Not,
    Predicate,
    ResourceVersionChanged,
    any_of,
    has_labels,
)
from kpack_core.runtime.reconcile import Request

JSON = dict[str, Any]


def obj(
    name: str,
    namespace: str | None = "ns",
    *,
    generation: int | None = None,
    resource_version: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    owners: list[JSON] | None = None,
) -> JSON:
    metadata: JSON = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if generation is not None:
        metadata["generation"] = generation
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    if labels is not None:
        metadata["labels"] = labels
    if annotations is not None:
        metadata["annotations"] = annotations
    if owners is not None:
        metadata["ownerReferences"] = owners
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata}


def ref(api_version: str, kind: str, name: str, *, controller: bool | None = None) -> JSON:
    reference: JSON = {"apiVersion": api_version, "kind": kind, "name": name, "uid": f"uid-{name}"}
    if controller is not None:
        reference["controller"] = controller
    return reference


class RecordingQueue:
    """An `Enqueuer` that records every add (duplicates included: dedup is the real queue's job)."""

    def __init__(self) -> None:
        self.added: list[Request] = []

    def add(self, item: Request) -> None:
        self.added.append(item)


class RecordingPredicate:
    """A predicate with a fixed answer that records the objects it was asked about."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.seen: list[tuple[str, tuple[JSON, ...]]] = []

    def create(self, obj: JSON) -> bool:
        self.seen.append(("create", (obj,)))
        return self.answer

    def update(self, old: JSON, new: JSON) -> bool:
        self.seen.append(("update", (old, new)))
        return self.answer

    def delete(self, obj: JSON) -> bool:
        self.seen.append(("delete", (obj,)))
        return self.answer


# -- ForObject -------------------------------------------------------------------------------------------------------


def test_for_object_enqueues_the_object_itself() -> None:
    handler = for_object()
    assert isinstance(handler, ForObject)
    a = obj("a", "ns")
    assert list(handler.map_create(a)) == [Request("ns", "a")]
    assert list(handler.map_delete(a)) == [Request("ns", "a")]


def test_for_object_update_enqueues_the_new_object_only() -> None:
    old, new = obj("a", "ns", generation=1), obj("a", "ns", generation=2)
    assert list(for_object().map_update(old, new)) == [Request("ns", "a")]
    # Even if the two differ in name (they never do in an informer), the new object wins.
    assert list(for_object().map_update(obj("old"), obj("new"))) == [Request("ns", "new")]


def test_request_for_a_cluster_scoped_object_has_no_namespace() -> None:
    assert request_for(obj("c", None)) == Request(None, "c")
    assert request_for(obj("c", "")) == Request(None, "c")
    assert str(Request(None, "c")) == "c"
    assert str(Request("ns", "a")) == "ns/a"


# -- ForOwner --------------------------------------------------------------------------------------------------------


def test_for_owner_matches_group_and_kind_and_ignores_the_version() -> None:
    handler = for_owner("kpack.io", "Build")
    assert isinstance(handler, ForOwner)
    for api_version in ("kpack.io/v1alpha1", "kpack.io/v1alpha2", "kpack.io/v9"):
        child = obj("pod", "ns", owners=[ref(api_version, "Build", "b1", controller=True)])
        assert list(handler.map_create(child)) == [Request("ns", "b1")], api_version


@pytest.mark.parametrize(
    "owner",
    [
        ref("other.io/v1alpha2", "Build", "b1", controller=True),  # other group
        ref("kpack.io/v1alpha2", "Image", "b1", controller=True),  # other kind
        ref("kpack.io/v1alpha2", "build", "b1", controller=True),  # kinds are case-sensitive
        ref("v1", "Build", "b1", controller=True),  # the core group is not kpack.io
        ref("kpack.io/v1alpha2", "Build", "", controller=True),  # no name
    ],
)
def test_for_owner_ignores_refs_of_other_kinds(owner: JSON) -> None:
    assert list(for_owner("kpack.io", "Build").map_create(obj("pod", "ns", owners=[owner]))) == []


def test_for_owner_of_a_core_kind_matches_the_empty_group_only() -> None:
    handler = for_owner("", "ConfigMap")
    core = obj("x", "ns", owners=[ref("v1", "ConfigMap", "cm", controller=True)])
    apps = obj("x", "ns", owners=[ref("apps/v1", "ConfigMap", "cm", controller=True)])
    assert list(handler.map_create(core)) == [Request("ns", "cm")]
    assert list(handler.map_create(apps)) == []


def test_for_owner_counts_only_the_controller_ref_by_default() -> None:
    child = obj(
        "pod",
        "ns",
        owners=[
            ref("kpack.io/v1alpha2", "Build", "plain"),
            ref("kpack.io/v1alpha2", "Build", "not-controller", controller=False),
            ref("kpack.io/v1alpha2", "Build", "the-controller", controller=True),
        ],
    )
    assert list(for_owner("kpack.io", "Build").map_create(child)) == [Request("ns", "the-controller")]
    all_refs = for_owner("kpack.io", "Build", only_controller=False)
    assert list(all_refs.map_create(child)) == [
        Request("ns", "plain"),
        Request("ns", "not-controller"),
        Request("ns", "the-controller"),
    ]


def test_for_owner_of_a_cluster_scoped_owner_enqueues_without_namespace() -> None:
    child = obj("builder", "ns", owners=[ref("kpack.io/v1alpha2", "ClusterStack", "stack", controller=True)])
    handler = for_owner("kpack.io", "ClusterStack", owner_namespaced=False)
    assert list(handler.map_create(child)) == [Request(None, "stack")]
    assert list(handler.map_delete(child)) == [Request(None, "stack")]


def test_for_owner_uses_the_namespace_of_the_child() -> None:
    child = obj("pod", "team-a", owners=[ref("kpack.io/v1alpha2", "Build", "b", controller=True)])
    assert list(for_owner("kpack.io", "Build").map_delete(child)) == [Request("team-a", "b")]


def test_for_owner_without_owner_references_enqueues_nothing() -> None:
    handler = for_owner("kpack.io", "Build")
    assert list(handler.map_create(obj("pod"))) == []
    assert list(handler.map_create({"metadata": {"name": "x", "ownerReferences": None}})) == []
    assert list(handler.map_create({})) == []


def test_for_owner_update_enqueues_the_owners_of_old_and_new_once_each() -> None:
    handler = for_owner("kpack.io", "Build")
    old = obj("pod", owners=[ref("kpack.io/v1alpha2", "Build", "first", controller=True)])
    new = obj("pod", owners=[ref("kpack.io/v1alpha2", "Build", "second", controller=True)])
    assert list(handler.map_update(old, new)) == [Request("ns", "first"), Request("ns", "second")]
    assert list(handler.map_update(old, old)) == [Request("ns", "first")]
    assert list(handler.map_update(obj("pod"), new)) == [Request("ns", "second")]  # adopted
    assert list(handler.map_update(old, obj("pod"))) == [Request("ns", "first")]  # orphaned


# -- FromMap ---------------------------------------------------------------------------------------------------------


def test_from_map_enqueues_what_the_function_returns() -> None:
    calls: list[JSON] = []

    def referencing(o: JSON) -> Iterable[Request]:
        calls.append(o)
        stack = o["metadata"].get("labels", {}).get("stack", "")
        return [Request(None, f"builder-of-{stack}"), Request("ns", "shared")]

    handler = from_map(referencing)
    assert isinstance(handler, FromMap)
    a, b = obj("a", labels={"stack": "a"}), obj("a", labels={"stack": "b"})
    assert list(handler.map_create(a)) == [Request(None, "builder-of-a"), Request("ns", "shared")]
    assert list(handler.map_delete(b)) == [Request(None, "builder-of-b"), Request("ns", "shared")]
    calls.clear()
    assert list(handler.map_update(a, b)) == [
        Request(None, "builder-of-a"),
        Request("ns", "shared"),
        Request(None, "builder-of-b"),
    ]
    assert calls == [a, b]
    calls.clear()
    assert list(handler.map_update(a, a)) == [Request(None, "builder-of-a"), Request("ns", "shared")]
    assert calls == [a]  # a resync (old is new) maps once


def test_from_map_returning_nothing_enqueues_nothing() -> None:
    queue = RecordingQueue()
    handler = QueueingHandler(queue, from_map(lambda o: []))
    handler.on_add(obj("a"), False)
    handler.on_update(obj("a"), obj("a"))
    handler.on_delete(obj("a"))
    assert queue.added == []


# -- QueueingHandler -------------------------------------------------------------------------------------------------


def test_queueing_handler_without_predicates_enqueues_every_event() -> None:
    queue = RecordingQueue()
    handler = QueueingHandler(queue, for_object())
    handler.on_add(obj("a"), True)
    handler.on_add(obj("b"), False)
    handler.on_update(obj("c"), obj("c"))
    handler.on_delete(obj("d"))
    assert queue.added == [Request("ns", n) for n in "abcd"]


@pytest.mark.parametrize(
    ("first", "second", "passes"), [(True, True, True), (True, False, False), (False, True, False)]
)
def test_queueing_handler_requires_every_predicate(first: bool, second: bool, passes: bool) -> None:
    queue = RecordingQueue()
    handler = QueueingHandler(queue, for_object(), [RecordingPredicate(first), RecordingPredicate(second)])
    handler.on_add(obj("a"), False)
    handler.on_update(obj("b"), obj("b"))
    handler.on_delete(obj("c"))
    expected = [Request("ns", "a"), Request("ns", "b"), Request("ns", "c")] if passes else []
    assert queue.added == expected


def test_queueing_handler_passes_each_predicate_the_events_objects() -> None:
    queue = RecordingQueue()
    predicate = RecordingPredicate(True)
    handler = QueueingHandler(queue, for_object(), [predicate])
    created, old, new, deleted = obj("a"), obj("b", generation=1), obj("b", generation=2), obj("c")
    handler.on_add(created, False)
    handler.on_update(old, new)
    handler.on_delete(deleted)
    assert predicate.seen == [("create", (created,)), ("update", (old, new)), ("delete", (deleted,))]


def test_queueing_handler_unwraps_deleted_final_state_unknown() -> None:
    queue = RecordingQueue()
    predicate = RecordingPredicate(True)
    last_known = obj("gone", "ns", owners=[ref("kpack.io/v1alpha2", "Build", "b", controller=True)])
    QueueingHandler(queue, for_object(), [predicate]).on_delete(DeletedFinalStateUnknown("ns/gone", last_known))
    QueueingHandler(queue, for_owner("kpack.io", "Build")).on_delete(DeletedFinalStateUnknown("ns/gone", last_known))
    assert predicate.seen == [("delete", (last_known,))]
    assert queue.added == [Request("ns", "gone"), Request("ns", "b")]


def test_queueing_handler_filters_a_deleted_final_state_unknown_on_its_object() -> None:
    queue = RecordingQueue()
    handler = QueueingHandler(queue, for_object(), [has_labels(app="kpack")])
    handler.on_delete(DeletedFinalStateUnknown("ns/a", obj("a", labels={"app": "other"})))
    handler.on_delete(DeletedFinalStateUnknown("ns/b", obj("b", labels={"app": "kpack"})))
    assert queue.added == [Request("ns", "b")]


def test_queueing_handler_enqueues_every_request_of_the_mapper() -> None:
    queue = RecordingQueue()
    child = obj(
        "pod",
        owners=[ref("kpack.io/v1alpha2", "Build", "x"), ref("kpack.io/v1alpha2", "Build", "y", controller=True)],
    )
    QueueingHandler(queue, for_owner("kpack.io", "Build", only_controller=False)).on_add(child, False)
    assert queue.added == [Request("ns", "x"), Request("ns", "y")]


# -- predicates ------------------------------------------------------------------------------------------------------

CHANGE_PREDICATES: list[Predicate] = [
    GenerationChanged(),
    ResourceVersionChanged(),
    LabelsChanged(),
    AnnotationsChanged(),
]


@pytest.mark.parametrize("predicate", CHANGE_PREDICATES, ids=lambda p: type(p).__name__)
def test_change_predicates_let_creates_and_deletes_through(predicate: Predicate) -> None:
    assert predicate.create(obj("a")) is True
    assert predicate.delete(obj("a")) is True


@pytest.mark.parametrize("predicate", CHANGE_PREDICATES, ids=lambda p: type(p).__name__)
def test_change_predicates_drop_resyncs(predicate: Predicate) -> None:
    same = obj("a", generation=3, resource_version="7", labels={"a": "1"}, annotations={"b": "2"})
    assert predicate.update(same, same) is False


def test_generation_changed() -> None:
    predicate = GenerationChanged()
    assert predicate.update(obj("a", generation=1), obj("a", generation=2)) is True
    # Status, label, annotation and finalizer writes do not bump the generation: all hidden.
    assert not predicate.update(obj("a", generation=1), obj("a", generation=1, resource_version="2"))
    assert not predicate.update(obj("a", generation=1), obj("a", generation=1, labels={"new": "label"}))
    assert not predicate.update(obj("a", generation=1), obj("a", generation=1, annotations={"new": "x"}))
    assert predicate.update(obj("a"), obj("a", generation=1)) is True  # from no generation to one
    assert predicate.update(obj("a"), obj("a")) is False


def test_resource_version_changed() -> None:
    predicate = ResourceVersionChanged()
    assert predicate.update(obj("a", resource_version="5"), obj("a", resource_version="6")) is True
    assert predicate.update(obj("a", resource_version="5"), obj("a", resource_version="5")) is False
    assert predicate.update(obj("a"), obj("a")) is False


def test_labels_changed() -> None:
    predicate = LabelsChanged()
    assert predicate.update(obj("a", labels={"a": "1"}), obj("a", labels={"a": "2"})) is True
    assert predicate.update(obj("a", labels={"a": "1"}), obj("a", labels={"a": "1", "b": "2"})) is True
    assert predicate.update(obj("a", labels={"a": "1"}), obj("a")) is True
    assert predicate.update(obj("a", labels={"a": "1"}), obj("a", labels={"a": "1"}, generation=2)) is False
    assert predicate.update(obj("a"), obj("a", labels={})) is False  # missing and empty are the same
    assert predicate.update(obj("a", annotations={"x": "1"}), obj("a", annotations={"x": "2"})) is False


def test_annotations_changed() -> None:
    predicate = AnnotationsChanged()
    assert predicate.update(obj("a", annotations={"a": "1"}), obj("a", annotations={"a": "2"})) is True
    assert predicate.update(obj("a"), obj("a", annotations={"a": "1"})) is True
    assert predicate.update(obj("a", annotations={}), obj("a")) is False
    assert predicate.update(obj("a", labels={"x": "1"}), obj("a", labels={"x": "2"})) is False


def test_filter_judges_the_object_and_for_updates_the_new_one() -> None:
    predicate = Filter(lambda o: o["metadata"]["name"].startswith("keep"))
    assert predicate.create(obj("keep-1")) is True
    assert predicate.create(obj("drop-1")) is False
    assert predicate.delete(obj("keep-1")) is True
    assert predicate.delete(obj("drop-1")) is False
    assert predicate.update(obj("drop-old"), obj("keep-new")) is True
    assert predicate.update(obj("keep-old"), obj("drop-new")) is False


def test_has_labels_needs_every_label_value() -> None:
    predicate = has_labels(app="kpack", tier="build")
    assert predicate.create(obj("a", labels={"app": "kpack", "tier": "build", "extra": "ok"})) is True
    assert predicate.create(obj("a", labels={"app": "kpack"})) is False
    assert predicate.create(obj("a", labels={"app": "kpack", "tier": "web"})) is False
    assert predicate.create(obj("a")) is False
    assert predicate.delete(obj("a", labels={"app": "kpack", "tier": "build"})) is True
    assert predicate.update(obj("a"), obj("a", labels={"app": "kpack", "tier": "build"})) is True
    assert predicate.update(obj("a", labels={"app": "kpack", "tier": "build"}), obj("a")) is False
    assert has_labels().create(obj("a")) is True  # no requirement


def test_any_of_passes_when_any_predicate_passes() -> None:
    predicate = any_of(GenerationChanged(), LabelsChanged())
    assert predicate.update(obj("a", generation=1), obj("a", generation=2)) is True
    assert predicate.update(obj("a", generation=1), obj("a", generation=1, labels={"x": "y"})) is True
    assert predicate.update(obj("a", generation=1), obj("a", generation=1, annotations={"x": "y"})) is False
    assert predicate.create(obj("a")) is True
    either = any_of(has_labels(a="1"), has_labels(b="2"))
    assert either.create(obj("x", labels={"b": "2"})) is True
    assert either.delete(obj("x", labels={"a": "1"})) is True
    assert either.delete(obj("x", labels={"c": "3"})) is False


def test_any_of_nothing_passes_nothing() -> None:
    predicate = any_of()
    assert predicate.create(obj("a")) is False
    assert predicate.update(obj("a"), obj("b")) is False
    assert predicate.delete(obj("a")) is False


def test_not_inverts_every_event_kind() -> None:
    predicate = Not(GenerationChanged())
    assert predicate.create(obj("a")) is False
    assert predicate.delete(obj("a")) is False
    assert predicate.update(obj("a", generation=1), obj("a", generation=1)) is True
    assert predicate.update(obj("a", generation=1), obj("a", generation=2)) is False
    unlabelled = Not(has_labels(skip="true"))
    assert unlabelled.create(obj("a")) is True
    assert unlabelled.create(obj("a", labels={"skip": "true"})) is False
    assert unlabelled.update(obj("a"), obj("a", labels={"skip": "true"})) is False


def test_predicates_compose_with_a_queueing_handler() -> None:
    """A spec change or a label change of a labelled object, but never a resync."""
    queue = RecordingQueue()
    handler = QueueingHandler(
        queue,
        for_object(),
        [has_labels(app="kpack"), any_of(GenerationChanged(), LabelsChanged()), ResourceVersionChanged()],
    )
    base = obj("a", generation=1, resource_version="1", labels={"app": "kpack"})
    handler.on_update(base, base)  # resync
    handler.on_update(base, obj("a", generation=1, resource_version="2", labels={"app": "kpack"}))  # status only
    handler.on_update(base, obj("a", generation=2, resource_version="3", labels={"app": "kpack"}))  # spec
    handler.on_update(base, obj("a", generation=1, resource_version="4", labels={"app": "kpack", "x": "1"}))
    handler.on_update(base, obj("a", generation=2, resource_version="5", labels={"app": "other"}))  # filtered out
    handler.on_add(obj("b", labels={"app": "kpack"}), True)
    handler.on_add(obj("c"), True)
    assert queue.added == [Request("ns", "a"), Request("ns", "a"), Request("ns", "b")]
