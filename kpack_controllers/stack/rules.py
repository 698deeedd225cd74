"""The ClusterStack rules on a build and a run image (spec §1.4, formats §3.1), as pure functions.

- Both images carry `io.buildpacks.stack.id` equal to the stack id.
- The build image's `CNB_USER_ID` and `CNB_GROUP_ID` are integers: the user and group builds run as.
- Mixins (`io.buildpacks.stack.mixins`, a JSON array of strings; absent means none): the build image has no
  `run:` mixin, the run image no `build:` mixin, and every unprefixed build mixin is also on the run image. The
  stack's mixins are the unprefixed build mixins, then the `build:` ones, then the `run:` ones.

Every failure is an `ImageContentError` whose message names the image(s) at fault by reference, with what was found.
kpack's env lookup split `KEY=value` on every `=` and took the second piece; here the value is everything after the
first `=`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from kpack_controllers.resolving import ImageContentError

STACK_ID_LABEL: Final = "io.buildpacks.stack.id"
MIXINS_LABEL: Final = "io.buildpacks.stack.mixins"
USER_ID_ENV: Final = "CNB_USER_ID"
GROUP_ID_ENV: Final = "CNB_GROUP_ID"
BUILD_PREFIX: Final = "build:"
RUN_PREFIX: Final = "run:"

# Condition reasons of the stack rules.
STACK_ID_MISMATCH: Final = "StackIdMismatch"
INVALID_MIXINS: Final = "InvalidMixins"
INVALID_BUILD_IMAGE: Final = "InvalidBuildImage"


@dataclass(frozen=True)
class StackImage:
    """What the rules look at in one image: its reference as written, labels and config `Env`."""

    reference: str
    labels: Mapping[str, str]
    env: Sequence[str] = ()


@dataclass(frozen=True)
class StackDetails:
    """What the rules derive from a valid pair of images."""

    mixins: list[str]
    user_id: int
    group_id: int


def check_stack_ids(stack_id: str, build: StackImage, run: StackImage) -> None:
    """Both images must declare `stack_id`; the message names both images and the ids they carry."""
    build_id = build.labels.get(STACK_ID_LABEL)
    run_id = run.labels.get(STACK_ID_LABEL)
    if build_id == stack_id and run_id == stack_id:
        return

    def shown(value: str | None) -> str:
        return "none" if value is None else repr(value)

    raise ImageContentError(
        STACK_ID_MISMATCH,
        f"invalid stack images: expected stack id {stack_id!r}; build image {build.reference} has "
        f"{shown(build_id)}, run image {run.reference} has {shown(run_id)} (label {STACK_ID_LABEL})",
    )


def env_value(env: Sequence[str], name: str) -> str | None:
    """The value of `name` in a config `Env` list (the last definition wins, as in Docker); None when absent."""
    found = None
    for item in env:
        key, separator, value = item.partition("=")
        if separator and key == name:
            found = value
    return found


def user_and_group(build: StackImage) -> tuple[int, int]:
    """`CNB_USER_ID` and `CNB_GROUP_ID` of the build image, as integers."""
    ids = []
    for name in (USER_ID_ENV, GROUP_ID_ENV):
        value = env_value(build.env, name)
        if value is None:
            raise ImageContentError(INVALID_BUILD_IMAGE, f"build image {build.reference}: env {name} is not set")
        try:
            ids.append(int(value.strip()))
        except ValueError:
            raise ImageContentError(
                INVALID_BUILD_IMAGE, f"build image {build.reference}: env {name}={value!r} is not an integer"
            ) from None
    return ids[0], ids[1]


def image_mixins(image: StackImage, role: str) -> list[str]:
    """The mixins an image declares; `role` ("build" or "run") names it in messages."""
    text = image.labels.get(MIXINS_LABEL)
    if text is None:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ImageContentError(
            INVALID_MIXINS, f"{role} image {image.reference}: label {MIXINS_LABEL} is not a JSON array of strings"
        )
    return list(value)


def stack_mixins(build: StackImage, run: StackImage) -> list[str]:
    """The stack's mixins from both images, by the rules in the module docstring."""
    build_mixins = image_mixins(build, "build")
    run_mixins = image_mixins(run, "run")
    wrong_on_build = [m for m in build_mixins if m.startswith(RUN_PREFIX)]
    if wrong_on_build:
        raise ImageContentError(
            INVALID_MIXINS,
            f"build image {build.reference} declares run-only mixin(s): {', '.join(wrong_on_build)}",
        )
    wrong_on_run = [m for m in run_mixins if m.startswith(BUILD_PREFIX)]
    if wrong_on_run:
        raise ImageContentError(
            INVALID_MIXINS,
            f"run image {run.reference} declares build-only mixin(s): {', '.join(wrong_on_run)}",
        )
    common = [m for m in build_mixins if not m.startswith(BUILD_PREFIX)]
    missing = [m for m in common if m not in run_mixins]
    if missing:
        raise ImageContentError(
            INVALID_MIXINS,
            f"run image {run.reference} lacks mixin(s) of build image {build.reference}: {', '.join(missing)}",
        )
    build_only = [m for m in build_mixins if m.startswith(BUILD_PREFIX)]
    run_only = [m for m in run_mixins if m.startswith(RUN_PREFIX)]
    return [*common, *build_only, *run_only]


def validate_stack(stack_id: str, build: StackImage, run: StackImage) -> StackDetails:
    """Every rule, in kpack's order: stack ids, then user and group, then mixins."""
    check_stack_ids(stack_id, build, run)
    user_id, group_id = user_and_group(build)
    return StackDetails(stack_mixins(build, run), user_id, group_id)
