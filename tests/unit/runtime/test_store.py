"""The informer's `Store`: keys, copies on read, the default and field indexes, index bookkeeping on update and
delete, and a hypothesis test that random put/delete sequences keep every index equal to a brute-force recomputation.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpack_core.runtime.store import (
    ALL_NAMESPACES,
    CONTROLLER_UID_INDEX,
    NAMESPACE_INDEX,
    OWNER_UID_INDEX,
    IndexFunc,
    Store,
    field_indexer,
    index_by_controller_uid,
    index_by_namespace,
    index_by_owner_uid,
    object_key,
    split_key,
)

JSON = dict[str, Any]


def obj(
    name: str,
    namespace: str | None = "ns",
    *,
    owners: list[tuple[str, bool]] | None = None,
    builder: str | None = None,
    labels: dict[str, str] | None = None,
) -> JSON:
    metadata: JSON = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if owners is not None:
        metadata["ownerReferences"] = [
            {"apiVersion": "kpack.io/v1alpha2", "kind": "Build", "name": uid, "uid": uid, "controller": controller}
            for uid, controller in owners
        ]
    if labels is not None:
        metadata["labels"] = labels
    result: JSON = {"apiVersion": "kpack.io/v1alpha2", "kind": "Image", "metadata": metadata}
    if builder is not None:
        result["spec"] = {"builder": builder}
    return result


def builder_of(o: JSON) -> list[str]:
    builder = (o.get("spec") or {}).get("builder")
    return [builder] if builder else []


BUILDER_INDEX = "field:spec.builder"


def put(store: Store, o: JSON) -> JSON | None:
    return store.put(object_key(o), o)


# -- keys ------------------------------------------------------------------------------------------------------------


def test_object_key_and_split_key() -> None:
    assert object_key(obj("a", "ns")) == "ns/a"
    assert object_key(obj("c", None)) == "c"
    assert object_key(obj("c", "")) == "c"
    assert object_key({}) == ""
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("c") == (None, "c")
    for o in (obj("a", "ns"), obj("c", None)):
        namespace, name = split_key(object_key(o))
        assert namespace == o["metadata"].get("namespace")
        assert name == o["metadata"]["name"]


def test_cluster_scoped_objects_are_stored_under_their_name() -> None:
    store = Store()
    stack = obj("stack", None)
    put(store, stack)
    assert store.keys() == ["stack"]
    assert store.get("stack") == stack
    assert "stack" in store
    assert store.index_keys(NAMESPACE_INDEX, "") == []
    assert store._indices[NAMESPACE_INDEX] == {}  # no namespace, no namespace index entry


# -- put / get / delete ----------------------------------------------------------------------------------------------


def test_put_get_and_delete_return_values() -> None:
    store = Store()
    first, second = obj("a", labels={"v": "1"}), obj("a", labels={"v": "2"})
    assert store.put("ns/a", first) is None
    assert store.put("ns/a", second) == first  # the previous object
    assert store.get("ns/a") == second
    assert store.get("ns/missing") is None
    assert len(store) == 1
    assert "ns/a" in store
    assert "ns/missing" not in store
    assert store.delete("ns/a") == second
    assert store.delete("ns/a") is None
    assert store.get("ns/a") is None
    assert len(store) == 0
    assert store.keys() == []


def test_list_keys_and_raw_reads() -> None:
    store = Store()
    a, b = obj("a"), obj("b", "other")
    put(store, a)
    put(store, b)
    assert sorted(store.keys()) == ["ns/a", "other/b"]
    assert sorted(store.list(), key=object_key) == [a, b]
    assert store.get_raw("ns/a") == orjson.dumps(a)
    assert store.get_raw("ns/missing") is None
    assert store.size_bytes == len(orjson.dumps(a)) + len(orjson.dumps(b))
    assert dict(store.iter_items()) == {"ns/a": orjson.dumps(a), "other/b": orjson.dumps(b)}


def test_put_with_raw_stores_those_bytes() -> None:
    store = Store()
    o = obj("a", builder="b1")
    raw = orjson.dumps(o)
    store.put("ns/a", o, raw)
    assert store.get_raw("ns/a") == raw
    assert store.get("ns/a") == o


def test_iter_items_is_safe_against_changes_during_iteration() -> None:
    store = Store()
    for name in "abc":
        put(store, obj(name))
    seen = []
    for key, _raw in store.iter_items():
        seen.append(key)
        store.delete(key)
        put(store, obj(key.split("/")[1] + "-new"))
    assert seen == ["ns/a", "ns/b", "ns/c"]


def test_reads_are_copies() -> None:
    store = Store()
    original = obj("a", owners=[("u1", True)], labels={"app": "x"})
    put(store, original)
    original["metadata"]["labels"]["app"] = "mutated-after-put"  # the caller's dict is not the stored one
    got = store.get("ns/a")
    assert got is not None
    got["metadata"]["labels"]["app"] = "mutated"
    got["metadata"]["ownerReferences"].clear()
    listed = store.list()
    listed[0]["metadata"]["name"] = "renamed"
    indexed = store.by_index(NAMESPACE_INDEX, "ns")
    indexed[0]["metadata"]["labels"]["extra"] = "1"
    previous = store.put("ns/a", obj("a", labels={"app": "y"}))
    assert previous is not None
    assert previous["metadata"]["labels"] == {"app": "x"}
    previous["metadata"]["labels"]["app"] = "mutated"
    assert store.get("ns/a") == obj("a", labels={"app": "y"})
    deleted = store.delete("ns/a")
    assert deleted == obj("a", labels={"app": "y"})
    assert store.get("ns/a") is None
    # Two reads are distinct objects.
    put(store, original)
    assert store.get("ns/a") is not store.get("ns/a")


# -- indexes ---------------------------------------------------------------------------------------------------------


def test_default_indexes() -> None:
    store = Store()
    assert store.index_names() == [NAMESPACE_INDEX, OWNER_UID_INDEX, CONTROLLER_UID_INDEX]
    put(store, obj("a", "ns1", owners=[("u1", True), ("u2", False)]))
    put(store, obj("b", "ns1", owners=[("u2", True)]))
    put(store, obj("c", "ns2"))
    put(store, obj("cluster", None, owners=[("u1", False)]))
    assert store.index_keys(NAMESPACE_INDEX, "ns1") == ["ns1/a", "ns1/b"]
    assert store.index_keys(NAMESPACE_INDEX, "ns2") == ["ns2/c"]
    assert store.index_keys(NAMESPACE_INDEX, "nope") == []
    assert store.index_keys(OWNER_UID_INDEX, "u1") == ["cluster", "ns1/a"]
    assert store.index_keys(OWNER_UID_INDEX, "u2") == ["ns1/a", "ns1/b"]
    assert store.index_keys(CONTROLLER_UID_INDEX, "u1") == ["ns1/a"]
    assert store.index_keys(CONTROLLER_UID_INDEX, "u2") == ["ns1/b"]
    assert [o["metadata"]["name"] for o in store.by_index(OWNER_UID_INDEX, "u2")] == ["a", "b"]


def test_default_index_functions() -> None:
    o = obj("a", "ns", owners=[("u1", True), ("u2", False)])
    o["metadata"]["ownerReferences"].append({"kind": "Build", "name": "no-uid", "controller": True})
    assert index_by_namespace(o) == ["ns"]
    assert index_by_namespace(obj("c", None)) == []
    assert index_by_owner_uid(o) == ["u1", "u2"]
    assert index_by_controller_uid(o) == ["u1"]
    assert index_by_owner_uid({}) == []
    assert index_by_controller_uid({"metadata": {"ownerReferences": None}}) == []


def test_field_indexer_values() -> None:
    index = field_indexer(builder_of)
    assert index(obj("a", "ns", builder="b1")) == ["ns/b1", f"{ALL_NAMESPACES}/b1"]
    assert index(obj("a", "ns")) == []
    many = field_indexer(lambda o: ["x", "y"])
    assert many(obj("a", "team")) == ["team/x", "team/y", "__all_namespaces/x", "__all_namespaces/y"]


def test_field_index_lookups_per_namespace_and_across_namespaces() -> None:
    store = Store()
    store.add_indexer(BUILDER_INDEX, field_indexer(builder_of))
    put(store, obj("a", "ns1", builder="b1"))
    put(store, obj("b", "ns2", builder="b1"))
    put(store, obj("c", "ns1", builder="b2"))
    put(store, obj("cluster", None, builder="b1"))
    assert store.index_keys(BUILDER_INDEX, "ns1/b1") == ["ns1/a"]
    assert store.index_keys(BUILDER_INDEX, "ns2/b1") == ["ns2/b"]
    assert store.index_keys(BUILDER_INDEX, "ns1/b2") == ["ns1/c"]
    assert store.index_keys(BUILDER_INDEX, f"{ALL_NAMESPACES}/b1") == ["cluster", "ns1/a", "ns2/b"]
    assert store.index_keys(BUILDER_INDEX, f"{ALL_NAMESPACES}/b2") == ["ns1/c"]


def test_index_entries_move_on_update() -> None:
    store = Store()
    store.add_indexer(BUILDER_INDEX, field_indexer(builder_of))
    put(store, obj("a", owners=[("u1", True)], builder="b1"))
    put(store, obj("a", owners=[("u2", False)], builder="b2"))
    assert store.index_keys(OWNER_UID_INDEX, "u1") == []
    assert store.index_keys(CONTROLLER_UID_INDEX, "u1") == []
    assert store.index_keys(OWNER_UID_INDEX, "u2") == ["ns/a"]
    assert store.index_keys(CONTROLLER_UID_INDEX, "u2") == []
    assert store.index_keys(BUILDER_INDEX, "ns/b2") == ["ns/a"]
    assert store._indices == {
        NAMESPACE_INDEX: {"ns": {"ns/a"}},
        OWNER_UID_INDEX: {"u2": {"ns/a"}},
        CONTROLLER_UID_INDEX: {},  # no empty set left behind for u1
        BUILDER_INDEX: {"ns/b2": {"ns/a"}, f"{ALL_NAMESPACES}/b2": {"ns/a"}},
    }


def test_an_update_keeps_other_keys_under_a_shared_value() -> None:
    store = Store()
    put(store, obj("a", owners=[("u1", True)]))
    put(store, obj("b", owners=[("u1", True)]))
    put(store, obj("a"))
    assert store.index_keys(OWNER_UID_INDEX, "u1") == ["ns/b"]
    assert store._indices[OWNER_UID_INDEX] == {"u1": {"ns/b"}}


def test_index_entries_vanish_on_delete() -> None:
    store = Store()
    store.add_indexer(BUILDER_INDEX, field_indexer(builder_of))
    put(store, obj("a", "ns1", owners=[("u1", True), ("u2", False)], builder="b1"))
    put(store, obj("b", "ns1", owners=[("u1", True)], builder="b1"))
    put(store, obj("c", "ns2", owners=[("u3", True)], builder="b9"))
    store.delete("ns1/a")
    assert store._indices == {
        NAMESPACE_INDEX: {"ns1": {"ns1/b"}, "ns2": {"ns2/c"}},
        OWNER_UID_INDEX: {"u1": {"ns1/b"}, "u3": {"ns2/c"}},
        CONTROLLER_UID_INDEX: {"u1": {"ns1/b"}, "u3": {"ns2/c"}},
        BUILDER_INDEX: {
            "ns1/b1": {"ns1/b"},
            f"{ALL_NAMESPACES}/b1": {"ns1/b"},
            "ns2/b9": {"ns2/c"},
            f"{ALL_NAMESPACES}/b9": {"ns2/c"},
        },
    }
    store.delete("ns1/b")
    store.delete("ns2/c")
    assert store._indices == {NAMESPACE_INDEX: {}, OWNER_UID_INDEX: {}, CONTROLLER_UID_INDEX: {}, BUILDER_INDEX: {}}
    assert store.index_keys(OWNER_UID_INDEX, "u1") == []


def test_duplicate_index_values_of_one_object_are_indexed_and_unindexed_cleanly() -> None:
    store = Store(indexers={"dup": lambda o: ["v", "v", "w"]})
    store.put("ns/a", obj("a"))
    assert store._indices == {"dup": {"v": {"ns/a"}, "w": {"ns/a"}}}
    store.delete("ns/a")
    assert store._indices == {"dup": {}}


def test_add_indexer_indexes_existing_objects() -> None:
    store = Store()
    put(store, obj("a", builder="b1"))
    put(store, obj("b", builder="b2"))
    put(store, obj("c"))
    store.add_indexer(BUILDER_INDEX, field_indexer(builder_of))
    assert store.index_names()[-1] == BUILDER_INDEX
    assert store.index_keys(BUILDER_INDEX, "ns/b1") == ["ns/a"]
    assert store.index_keys(BUILDER_INDEX, f"{ALL_NAMESPACES}/b2") == ["ns/b"]
    assert sorted(store._indices[BUILDER_INDEX]) == ["__all_namespaces/b1", "__all_namespaces/b2", "ns/b1", "ns/b2"]
    put(store, obj("c", builder="b1"))  # and keeps them up to date afterwards
    assert store.index_keys(BUILDER_INDEX, "ns/b1") == ["ns/a", "ns/c"]


@pytest.mark.parametrize("name", [NAMESPACE_INDEX, OWNER_UID_INDEX, CONTROLLER_UID_INDEX, BUILDER_INDEX])
def test_add_indexer_rejects_a_duplicate_name(name: str) -> None:
    store = Store()
    store.add_indexer(BUILDER_INDEX, field_indexer(builder_of))
    put(store, obj("a", builder="b1"))
    before = {index: {v: set(keys) for v, keys in values.items()} for index, values in store._indices.items()}
    with pytest.raises(ValueError, match=f"an index named '{name}' already exists"):
        store.add_indexer(name, lambda o: ["other"])
    assert store._indices == before  # the existing index is untouched


def test_an_unknown_index_raises_key_error_naming_it() -> None:
    store = Store()
    expected = r"no index named 'field:spec\.nope'; indexes: namespace, owner-uid, controller-uid"
    with pytest.raises(KeyError, match=expected):
        store.index_keys("field:spec.nope", "x")
    with pytest.raises(KeyError, match=r"no index named 'nope'"):
        store.by_index("nope", "x")


def test_custom_indexers_replace_the_defaults() -> None:
    store = Store(indexers={})
    assert store.index_names() == []
    put(store, obj("a"))
    with pytest.raises(KeyError, match="namespace"):
        store.index_keys(NAMESPACE_INDEX, "ns")
    only_builder = Store(indexers={BUILDER_INDEX: field_indexer(builder_of)})
    put(only_builder, obj("a", builder="b"))
    assert only_builder.index_names() == [BUILDER_INDEX]
    assert only_builder.index_keys(BUILDER_INDEX, "ns/b") == ["ns/a"]


# -- invariant under random operations -------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c"])
NAMESPACES = st.sampled_from([None, "ns1", "ns2"])
UIDS = st.sampled_from(["u1", "u2", "u3"])
OBJECTS = st.builds(
    obj,
    NAMES,
    NAMESPACES,
    owners=st.lists(st.tuples(UIDS, st.booleans()), max_size=3),
    builder=st.one_of(st.none(), st.sampled_from(["b1", "b2"])),
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), OBJECTS),
        st.tuples(st.just("delete"), st.builds(lambda n, ns: obj(n, ns), NAMES, NAMESPACES)),
    ),
    max_size=40,
)


def brute_force_indices(store: Store, indexers: dict[str, IndexFunc]) -> dict[str, dict[str, set[str]]]:
    indices: dict[str, dict[str, set[str]]] = {name: {} for name in indexers}
    keys = store.keys()  # a Store is not iterable
    for key in keys:
        stored = store.get(key)
        assert stored is not None
        for name, index in indexers.items():
            for value in index(stored):
                indices[name].setdefault(value, set()).add(key)
    return indices


@settings(max_examples=300, deadline=None)
@given(OPERATIONS)
def test_random_puts_and_deletes_keep_every_index_exact(operations: list[tuple[str, JSON]]) -> None:
    indexers: dict[str, IndexFunc] = {
        NAMESPACE_INDEX: index_by_namespace,
        OWNER_UID_INDEX: index_by_owner_uid,
        CONTROLLER_UID_INDEX: index_by_controller_uid,
        BUILDER_INDEX: field_indexer(builder_of),
    }
    store = Store()
    store.add_indexer(BUILDER_INDEX, indexers[BUILDER_INDEX])
    model: dict[str, JSON] = {}
    for operation, o in operations:
        key = object_key(o)
        if operation == "put":
            assert store.put(key, o) == model.get(key)
            model[key] = o
        else:
            assert store.delete(key) == model.pop(key, None)
        assert store._indices == brute_force_indices(store, indexers)
        assert sorted(store.keys()) == sorted(model)
        for k, expected in model.items():
            assert store.get(k) == expected
