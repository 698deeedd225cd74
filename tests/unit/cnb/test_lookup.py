"""Buildpack lookup in a store status and order resolution (spec §1.3.2, §1.3.1 steps 4-5)."""

from __future__ import annotations

import pytest

from kpack_core.apis.buildpacks import OrderEntry
from kpack_core.cnb import (
    BuildpackCycleError,
    BuildpackNotFoundError,
    InvalidBuildpackVersionError,
    InvalidStoreBuildpackError,
    OrderRef,
    StoreIndex,
    order_from_entries,
    resolve_order,
    sort_layers,
)
from kpack_core.cnb.semver import parse_version

from .helpers import store_buildpack

STORE = "default"


def _index(*entries: object) -> StoreIndex:
    return StoreIndex(STORE, list(entries))  # type: ignore[arg-type]


def test_an_exact_version_is_found_and_the_first_duplicate_wins() -> None:
    first = store_buildpack("a", "1.0.0", image="r.io/one:1")
    second = store_buildpack("a", "1.0.0", image="r.io/two:1")
    index = _index(store_buildpack("a", "2.0.0"), first, second)

    found = index.find("a", "1.0.0")

    assert (found.key, found.store_image) == ("a@1.0.0", "r.io/one:1")


def test_without_a_version_the_highest_semver_wins() -> None:
    index = _index(
        store_buildpack("a", "1.10.0"),
        store_buildpack("a", "1.9.3"),
        store_buildpack("a", "2.0.0-rc.1"),
        store_buildpack("a", "v1.2"),
    )

    assert index.find("a").version == "2.0.0-rc.1"
    assert _index(store_buildpack("a", "1.9.0"), store_buildpack("a", "1.10.0")).find("a").version == "1.10.0"
    # a release outranks its pre-releases
    assert _index(store_buildpack("a", "2.0.0-rc.1"), store_buildpack("a", "2.0.0")).find("a").version == "2.0.0"


def test_a_non_semver_candidate_makes_the_highest_version_an_error() -> None:
    index = _index(store_buildpack("a", "1.0.0"), store_buildpack("a", "latest"))

    with pytest.raises(InvalidBuildpackVersionError, match=r"'a' in ClusterStore default: version 'latest'"):
        index.find("a")
    assert index.find("a", "1.0.0").version == "1.0.0"  # an exact version still works


def test_a_missing_id_or_version_is_named() -> None:
    index = _index(store_buildpack("a", "1.0.0"))

    with pytest.raises(BuildpackNotFoundError, match=r"could not find buildpack with id 'b' in ClusterStore default"):
        index.find("b")
    with pytest.raises(BuildpackNotFoundError, match=r"could not find buildpack a@9\.9\.9 in ClusterStore default"):
        index.find("a", "9.9.9")


def test_a_store_entry_without_its_layer_is_an_error_naming_the_fields() -> None:
    entry = store_buildpack("a", "1.0.0").model_copy(update={"digest": None, "size": None})

    with pytest.raises(InvalidStoreBuildpackError, match=r"default: buildpack a@1\.0\.0: no digest, size"):
        _index(entry).find("a")


def test_meta_buildpacks_bring_their_children_recursively_deduplicated() -> None:
    index = _index(
        store_buildpack(
            "meta",
            "1.0.0",
            size=10,
            order=[{"group": [{"id": "inner-meta"}, {"id": "shared", "version": "1.0.0", "optional": True}]}],
        ),
        store_buildpack("inner-meta", "2.0.0", size=20, order=[{"group": [{"id": "leaf"}, {"id": "shared"}]}]),
        store_buildpack("leaf", "0.1.0", size=300),
        store_buildpack("leaf", "0.2.0", size=310),
        store_buildpack("shared", "1.0.0", size=50),
        store_buildpack("other", "1.0.0", size=50),
    )
    order = order_from_entries(
        [
            OrderEntry.from_json({"group": [{"id": "meta"}]}),
            OrderEntry.from_json({"group": [{"id": "shared", "optional": True}, {"id": "other"}]}),
        ]
    )

    resolved = resolve_order(order, index)

    assert resolved.order == (
        (OrderRef("meta", "1.0.0"),),
        (OrderRef("shared", "1.0.0", optional=True), OrderRef("other", "1.0.0")),
    )
    # largest first; equal sizes by id@version descending; shared@1.0.0 once although three paths reach it
    assert [layer.key for layer in resolved.layers] == [
        "leaf@0.2.0",
        "shared@1.0.0",
        "other@1.0.0",
        "inner-meta@2.0.0",
        "meta@1.0.0",
    ]


def test_a_missing_child_of_a_meta_buildpack_is_named() -> None:
    index = _index(store_buildpack("meta", "1.0.0", order=[{"group": [{"id": "gone", "version": "3.0.0"}]}]))

    with pytest.raises(
        BuildpackNotFoundError, match=r"'gone' in ClusterStore default \(in the order of meta-buildpack meta@1\.0\.0\)"
    ):
        resolve_order(((OrderRef("meta"),),), index)
    index = _index(
        store_buildpack("meta", "1.0.0", order=[{"group": [{"id": "gone", "version": "3.0.0"}]}]),
        store_buildpack("gone", "1.0.0"),
    )
    with pytest.raises(BuildpackNotFoundError, match=r"gone@3\.0\.0 in ClusterStore default \(in the order"):
        resolve_order(((OrderRef("meta"),),), index)


def test_a_meta_buildpack_cycle_is_an_error_not_a_recursion_crash() -> None:
    index = _index(
        store_buildpack("a", "1.0.0", order=[{"group": [{"id": "b"}]}]),
        store_buildpack("b", "1.0.0", order=[{"group": [{"id": "a"}]}]),
    )

    with pytest.raises(BuildpackCycleError, match=r"a@1\.0\.0 -> b@1\.0\.0 -> a@1\.0\.0"):
        resolve_order(((OrderRef("a"),),), index)


def test_layers_sort_by_size_then_key_descending() -> None:
    index = _index(
        store_buildpack("x", "1.0.0", size=5),
        store_buildpack("y", "1.0.0", size=5),
        store_buildpack("y", "2.0.0", size=5),
        store_buildpack("z", "1.0.0", size=9),
    )
    layers = [index.find("x"), index.find("y", "1.0.0"), index.find("y", "2.0.0"), index.find("z")]

    assert [layer.key for layer in sort_layers(layers)] == ["z@1.0.0", "y@2.0.0", "y@1.0.0", "x@1.0.0"]


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0", "1.0.1"),
        ("1.0.0-alpha", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-2", "1.0.0-10"),
        ("1.0.0-10", "1.0.0-a"),
        ("0.9", "1"),
        ("v1.2.3", "1.2.4+build"),
    ],
)
def test_semver_precedence(lower: str, higher: str) -> None:
    low, high = parse_version(lower), parse_version(higher)
    assert low is not None
    assert high is not None
    assert low < high
    assert not high < low


@pytest.mark.parametrize("text", ["", "latest", "1.2.3.4", "01.2.3", "1.2.3-", "abc1.0"])
def test_non_semver_texts(text: str) -> None:
    assert parse_version(text) is None
