"""The compiled conversion down (`downplan`) against the algorithm it unrolls: moving with `_moved`, keeping with
`keep_known`, and refusing objects whose losses are next to a move. Same answer (key order included), same refusals,
on every kind's generated objects with stray fields and odd values put anywhere, and `down` answers byte for byte
what its exact path answers; plus the plans that do not compile and what only the generated code has (nested models
unrolled to a depth, a model nesting itself).

(Round trips are checked on valid objects by `test_conversion_kinds`: with strays, a hub object can hold what no
stored object does, like v1alpha1's `cacheName` next to an empty `cache`, whose round trip was never exact.)"""

from __future__ import annotations

import copy
import linecache
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpack_core.apis import conversion as conversion_module
from kpack_core.apis import downplan
from kpack_core.apis.base import HUB_VERSION, V1ALPHA1, ApiModel, KubeObjectModel
from kpack_core.apis.conversion import KindConversion, Move, down, up
from kpack_core.apis.kinds import REGISTRY
from kpack_core.apis.shapes import Path, keep_known
from tests.model_strategies import FREE_JSON, for_model
from tests.unit.apis.test_conversion_mechanics import THING, NewSpec, NewStatus, hub

# Names near the moves of every kind and of the toy one, and names the models use: strays with these names land
# on move sources and targets, next to them, and on fields the models know.
STRAY_NAMES = [
    "serviceAccount", "serviceAccountName", "cacheSize", "cacheName", "cache", "volume", "size",
    "persistentVolumeClaimName", "bindings", "cnbBindings", "build", "additionalTags", "spec", "status", "tag",
    "env", "conditions", "source", "git", "builder", "kind", "name", "registry", "x",
]  # fmt: skip
STRAY_VALUES = FREE_JSON | st.just({}) | st.fixed_dictionaries({}, optional={k: FREE_JSON for k in STRAY_NAMES[:10]})


def reference(body: dict[str, Any], conversion: KindConversion) -> tuple[dict[str, Any], list[Any]] | None:
    """What the plan must answer, the slow way: `body` is a hub object without `metadata`."""
    for move in conversion.moves:
        node: Any = body
        for key in move.old:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            return None
    dropped: list[tuple[Path, Any]] = []
    old = keep_known(conversion_module._moved(body, conversion.down_moves), conversion.old_model, dropped)
    for path, _ in dropped:
        for move in conversion.moves:
            if any(path[: len(end)] == end[: len(path)] for end in (move.hub, move.old)):
                return None
    return old, dropped


def dicts_in(obj: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(obj, dict):
        found.append(obj)
        obj = list(obj.values())
    if isinstance(obj, list):
        for value in obj:
            found += dicts_in(value)
    return found


def with_strays(data: st.DataObject, obj: dict[str, Any]) -> dict[str, Any]:
    for _ in range(data.draw(st.integers(0, 4), label="strays")):
        places = [obj, *(d for key, value in obj.items() if key != "metadata" for d in dicts_in(value))]
        place = data.draw(st.sampled_from(places))
        place[data.draw(st.sampled_from(STRAY_NAMES))] = copy.deepcopy(data.draw(STRAY_VALUES))
    return obj


def assert_plan_agrees(obj: dict[str, Any], conversion: KindConversion) -> None:
    plan = conversion.down_plan
    assert plan is not None
    snapshot = copy.deepcopy(obj)
    answer = plan.run(obj)
    assert obj == snapshot, "the plan changed its input"
    expected = reference({k: v for k, v in obj.items() if k != "metadata"}, conversion)
    if expected is None:
        assert answer is None
        return
    assert answer is not None
    assert orjson.dumps(answer[0]) == orjson.dumps(expected[0])  # key order included
    assert answer[1] == expected[1]


@pytest.mark.parametrize("kind", sorted(REGISTRY))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_plan_answers_as_moving_and_keeping_do(kind: str, data: st.DataObject) -> None:
    body = data.draw(for_model(REGISTRY[kind].versions[HUB_VERSION].model), label="body")
    obj = with_strays(data, {"apiVersion": "kpack.io/v1alpha2", "kind": kind, "metadata": {"name": "n"}, **body})
    conversion = REGISTRY[kind].conversion
    assert_plan_agrees(obj, conversion)
    old = down(obj, conversion, V1ALPHA1)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(conversion_module, "_down_quick", lambda hub, conversion: None)
        assert orjson.dumps(down(obj, conversion, V1ALPHA1)) == orjson.dumps(old)


@settings(max_examples=500, deadline=None)
@given(data=st.data(), spec=for_model(NewSpec), status=for_model(NewStatus))
def test_the_toy_plan_answers_as_moving_and_keeping_do(
    data: st.DataObject, spec: dict[str, Any], status: dict[str, Any]
) -> None:
    assert_plan_agrees(with_strays(data, hub(spec, status=status)), THING)


def test_a_dict_that_is_not_plain_json_on_a_move_path_takes_the_exact_path() -> None:
    class Odd(dict[str, Any]):
        pass

    obj = hub(Odd({"tag": "x", "serviceAccountName": "sa"}))
    assert THING.down_plan is not None
    assert THING.down_plan.run(obj) is None
    assert up(down(obj, THING, V1ALPHA1), THING) == obj


@pytest.mark.parametrize(
    "moves",
    [
        (Move(("spec", "a"), ("spec", "b")), Move(("spec", "a", "c"), ("spec", "d"))),  # one inside another
        (Move(("spec", "a"), ("spec", "b")), Move(("spec", "c"), ("spec", "b"))),  # the same target twice
        (Move(("metadata", "a"), ("spec", "b")),),  # through metadata
    ],
)
def test_moves_that_do_not_compile_leave_every_object_to_the_exact_path(moves: tuple[Move, ...]) -> None:
    conversion = KindConversion("Thing", THING.hub_model, THING.old_model, moves)
    assert conversion.down_plan is None
    assert conversion_module._down_quick(hub({"tag": "x", "a": {"c": 1}}), conversion) is None


class Leaf(ApiModel):
    name: str | None = None


class Deep(ApiModel):
    leaf: Leaf | None = None
    deep: Deep | None = None
    items: list[Deep] | None = None


class DeepSpec(ApiModel):
    deep: Deep | None = None


class DeepThing(KubeObjectModel):
    spec: DeepSpec | None = None


DEEP = KindConversion("DeepThing", DeepThing, DeepThing, (Move(("spec", "deep", "leaf"), ("spec", "leaf")),))


def nested(levels: int, stray: bool) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": {"name": "x", **({"stray": 1} if stray else {})}}
    for _ in range(levels):
        node = {"deep": node, "items": [{"leaf": {"name": "y"}}]}
    return node


@pytest.mark.parametrize("levels", [0, downplan.INLINE_DEPTH - 2, downplan.INLINE_DEPTH + 3])
@pytest.mark.parametrize("stray", [False, True])
def test_models_deeper_than_the_unrolled_code_and_a_model_nesting_itself(levels: int, stray: bool) -> None:
    obj = {"apiVersion": "kpack.io/v1alpha2", "kind": "DeepThing", "metadata": {"name": "d"}}
    obj["spec"] = {"deep": nested(levels, stray)}
    assert_plan_agrees(obj, DEEP)
    plan = DEEP.down_plan
    assert plan is not None
    assert "keep(" in plan.source  # the recursive model is walked by `keep` past the unrolled depth


def test_the_generated_source_is_shown_in_tracebacks() -> None:
    plan = REGISTRY["Image"].conversion.down_plan
    assert plan is not None
    assert plan.source.startswith("def run(hub):")
    with pytest.raises(AttributeError) as raised:
        plan.run(None)  # type: ignore[arg-type]
    entry = raised.traceback[-1]
    assert entry.path == "<down plan of kpack_core.apis.v1alpha1.image.Image>"
    shown = linecache.getline(str(entry.path), entry.lineno + 1)
    assert shown.strip() == plan.source.splitlines()[entry.lineno].strip()


def test_what_keep_known_drops_comes_in_the_objects_order() -> None:
    class Inner(ApiModel):
        a: str | None = None

    class Outer(ApiModel):
        inner: Inner | None = None
        items: list[Inner] | None = None

    obj = {"z": 1, "inner": {"y": 2, "a": "x", "b": 3}, "items": [{"c": 4}], "m": 5}
    dropped: list[tuple[Path, Any]] = [((), "earlier")]
    kept = keep_known(obj, Outer, dropped, ("spec",))
    assert kept == {"inner": {"a": "x"}, "items": [{}]}
    assert [path for path, _ in dropped] == [
        (), ("spec", "z"), ("spec", "inner", "y"), ("spec", "inner", "b"), ("spec", "items"), ("spec", "m"),
    ]  # fmt: skip
