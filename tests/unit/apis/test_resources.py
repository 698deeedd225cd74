"""The kpack resources agree with the kinds table (plural, scope) the CRDs are generated from."""

from __future__ import annotations

from kpack_core.apis.kinds import KINDS
from kpack_core.apis.resources import ALL


def test_resources_match_the_kinds_table() -> None:
    by_kind = {info.kind: info for info in KINDS}
    assert sorted(r.kind for r in ALL) == sorted(by_kind)
    for resource in ALL:
        info = by_kind[resource.kind]
        assert (resource.plural, resource.namespaced, resource.version) == (info.plural, info.namespaced, "v1alpha2")
