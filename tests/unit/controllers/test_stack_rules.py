"""The ClusterStack rules on build and run images: stack ids, user and group, mixins (spec §1.4), by table."""

from __future__ import annotations

import json

import pytest

from kpack_controllers.resolving import ImageContentError
from kpack_controllers.stack.rules import (
    INVALID_BUILD_IMAGE,
    INVALID_MIXINS,
    MIXINS_LABEL,
    STACK_ID_LABEL,
    STACK_ID_MISMATCH,
    StackDetails,
    StackImage,
    check_stack_ids,
    env_value,
    stack_mixins,
    user_and_group,
    validate_stack,
)

BUILD = "reg.example/stacks/build:1"
RUN = "reg.example/stacks/run:1"
ENV = ("PATH=/bin", "CNB_USER_ID=1000", "CNB_GROUP_ID=2000")


def build_image(stack_id: str | None = "s", mixins: list[str] | None = None, env: tuple[str, ...] = ENV) -> StackImage:
    labels = {} if stack_id is None else {STACK_ID_LABEL: stack_id}
    if mixins is not None:
        labels[MIXINS_LABEL] = json.dumps(mixins)
    return StackImage(BUILD, labels, env)


def run_image(stack_id: str | None = "s", mixins: list[str] | None = None) -> StackImage:
    labels = {} if stack_id is None else {STACK_ID_LABEL: stack_id}
    if mixins is not None:
        labels[MIXINS_LABEL] = json.dumps(mixins)
    return StackImage(RUN, labels)


@pytest.mark.parametrize(
    ("build_id", "run_id", "shown"),
    [
        (
            "other",
            "s",
            "build image reg.example/stacks/build:1 has 'other', run image reg.example/stacks/run:1 has 's'",
        ),
        (
            "s",
            "other",
            "build image reg.example/stacks/build:1 has 's', run image reg.example/stacks/run:1 has 'other'",
        ),
        (None, "s", "build image reg.example/stacks/build:1 has none, run image reg.example/stacks/run:1 has 's'"),
        ("a", None, "has 'a', run image reg.example/stacks/run:1 has none"),
    ],
)
def test_stack_id_mismatch_names_both_images_and_their_ids(
    build_id: str | None, run_id: str | None, shown: str
) -> None:
    with pytest.raises(ImageContentError) as raised:
        check_stack_ids("s", build_image(build_id), run_image(run_id))
    assert raised.value.reason == STACK_ID_MISMATCH
    assert "expected stack id 's'" in raised.value.message
    assert shown in raised.value.message


def test_matching_stack_ids_pass() -> None:
    check_stack_ids("s", build_image("s"), run_image("s"))


@pytest.mark.parametrize(
    ("env", "name", "expected"),
    [
        (["A=1"], "A", "1"),
        (["A=1", "A=2"], "A", "2"),  # the last definition wins
        (["A=x=y"], "A", "x=y"),  # kpack took only "x"
        (["A="], "A", ""),
        (["AB=1", "A"], "A", None),  # no "=": not a definition
        ([], "A", None),
    ],
)
def test_env_value(env: list[str], name: str, expected: str | None) -> None:
    assert env_value(env, name) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (ENV, (1000, 2000)),
        (("CNB_USER_ID= 7 ", "CNB_GROUP_ID=0"), (7, 0)),
        (("CNB_GROUP_ID=1",), "env CNB_USER_ID is not set"),
        (("CNB_USER_ID=1",), "env CNB_GROUP_ID is not set"),
        (("CNB_USER_ID=root", "CNB_GROUP_ID=1"), "env CNB_USER_ID='root' is not an integer"),
        (("CNB_USER_ID=1", "CNB_GROUP_ID=1.5"), "env CNB_GROUP_ID='1.5' is not an integer"),
    ],
)
def test_user_and_group(env: tuple[str, ...], expected: tuple[int, int] | str) -> None:
    if isinstance(expected, tuple):
        assert user_and_group(build_image(env=env)) == expected
        return
    with pytest.raises(ImageContentError) as raised:
        user_and_group(build_image(env=env))
    assert raised.value.reason == INVALID_BUILD_IMAGE
    assert raised.value.message == f"build image {BUILD}: {expected}"


@pytest.mark.parametrize(
    ("build", "run", "expected"),
    [
        (None, None, []),
        ([], [], []),
        (["a", "build:git"], ["a", "run:tz"], ["a", "build:git", "run:tz"]),
        # order: unprefixed build mixins, then build:, then run: — whatever order the labels have
        (["build:x", "b", "a"], ["run:y", "a", "b"], ["b", "a", "build:x", "run:y"]),
        (["a"], ["a", "extra"], ["a"]),  # unprefixed run-only mixins are not the stack's
        (["build:only"], None, ["build:only"]),
    ],
)
def test_stack_mixins(build: list[str] | None, run: list[str] | None, expected: list[str]) -> None:
    assert stack_mixins(build_image(mixins=build), run_image(mixins=run)) == expected


@pytest.mark.parametrize(
    ("build", "run", "message"),
    [
        (["run:tz"], [], f"build image {BUILD} declares run-only mixin(s): run:tz"),
        ([], ["a", "build:git", "build:make"], f"run image {RUN} declares build-only mixin(s): build:git, build:make"),
        (["a", "b", "c"], ["b"], f"run image {RUN} lacks mixin(s) of build image {BUILD}: a, c"),
        (["a"], None, f"run image {RUN} lacks mixin(s) of build image {BUILD}: a"),
    ],
)
def test_mixin_rules(build: list[str] | None, run: list[str] | None, message: str) -> None:
    with pytest.raises(ImageContentError) as raised:
        stack_mixins(build_image(mixins=build), run_image(mixins=run))
    assert raised.value.reason == INVALID_MIXINS
    assert raised.value.message == message


@pytest.mark.parametrize(
    ("label", "role", "reference"),
    [("not json", "build", BUILD), ('{"a": 1}', "run", RUN), ('["a", 1]', "build", BUILD)],
)
def test_mixins_label_must_be_a_json_array_of_strings(label: str, role: str, reference: str) -> None:
    images = {"build": build_image(), "run": run_image()}
    broken = images[role]
    images[role] = StackImage(broken.reference, {**broken.labels, MIXINS_LABEL: label}, broken.env)
    with pytest.raises(ImageContentError) as raised:
        stack_mixins(images["build"], images["run"])
    assert raised.value.reason == INVALID_MIXINS
    assert raised.value.message == f"{role} image {reference}: label {MIXINS_LABEL} is not a JSON array of strings"


def test_validate_stack_checks_ids_first_then_env_then_mixins() -> None:
    no_env_wrong_id = build_image("other", mixins=["run:x"], env=())
    with pytest.raises(ImageContentError) as raised:
        validate_stack("s", no_env_wrong_id, run_image())
    assert raised.value.reason == STACK_ID_MISMATCH
    with pytest.raises(ImageContentError) as raised:
        validate_stack("s", build_image(mixins=["run:x"], env=()), run_image())
    assert raised.value.reason == INVALID_BUILD_IMAGE
    with pytest.raises(ImageContentError) as raised:
        validate_stack("s", build_image(mixins=["run:x"]), run_image())
    assert raised.value.reason == INVALID_MIXINS
    assert validate_stack("s", build_image(mixins=["a"]), run_image(mixins=["a"])) == StackDetails(["a"], 1000, 2000)
