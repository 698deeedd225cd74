"""Stack images: a build image and a run image carrying the labels and config a ClusterStack reads (formats.md §3.1).

Both images get `io.buildpacks.stack.id`, `io.buildpacks.stack.mixins` (a JSON array string) and a non-root `User`.
The build image also gets `CNB_STACK_ID`, `CNB_USER_ID` and `CNB_GROUP_ID` in its `Env`, which kpack parses for the
pod's user and group. Each image has one small base layer whose content differs by role and stack, so build and run
layers have distinct diffIDs (rebase finds the run image's top layer by diffID).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kpack_core.envtest.cnb.image import ImageBuild, assemble_image, json_label
from kpack_core.envtest.cnb.layer import build_layer_async, directory, regular_file
from kpack_core.registry import Reference, RegistryClient

STACK_ID_LABEL = "io.buildpacks.stack.id"
MIXINS_LABEL = "io.buildpacks.stack.mixins"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class StackRole(enum.Enum):
    BUILD = "build"
    RUN = "run"


@dataclass(frozen=True)
class StackImages:
    """Where `push_stack_images` put the two images, by digest."""

    build: Reference
    run: Reference


def mixins_for(role: StackRole, mixins: Sequence[str]) -> list[str]:
    """The mixins one image declares, from the stack's list: unprefixed ones and those prefixed with its own role
    (`build:` mixins are on the build image only, `run:` ones on the run image only)."""
    other = StackRole.RUN if role is StackRole.BUILD else StackRole.BUILD
    return [mixin for mixin in mixins if not mixin.startswith(f"{other.value}:")]


def stack_env(stack_id: str, user_id: int, group_id: int) -> dict[str, str]:
    return {
        "PATH": DEFAULT_PATH,
        "CNB_USER_ID": str(user_id),
        "CNB_GROUP_ID": str(group_id),
        "CNB_STACK_ID": stack_id,
    }


async def stack_image(
    role: StackRole,
    stack_id: str,
    *,
    mixins: Sequence[str] = (),
    user_id: int = 1000,
    group_id: int = 1000,
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> ImageBuild:
    """One stack image declaring exactly `mixins` (not filtered: tests of kpack's mixin rules need wrong images
    too). `env` replaces the default environment (build image: PATH and the CNB_* variables; run image: PATH);
    `labels` are added to the stack labels and may override them."""
    release = f'ID=kpack-py-test\nVARIANT_ID={role.value}\nSTACK_ID="{stack_id}"\n'
    layer = await build_layer_async(
        [
            regular_file("etc/os-release", release),
            directory("home/cnb", uid=user_id, gid=group_id),
        ]
    )
    default_env = stack_env(stack_id, user_id, group_id) if role is StackRole.BUILD else {"PATH": DEFAULT_PATH}
    all_labels = {STACK_ID_LABEL: stack_id, MIXINS_LABEL: json_label(list(mixins)), **(labels or {})}
    return assemble_image(
        [layer],
        labels=all_labels,
        env=default_env if env is None else env,
        user=f"{user_id}:{group_id}",
    )


async def push_stack_images(
    client: RegistryClient,
    build_ref: Reference | str,
    run_ref: Reference | str,
    stack_id: str,
    *,
    mixins: Sequence[str] = (),
    user_id: int = 1000,
    group_id: int = 1000,
) -> StackImages:
    """Pushes a matching build and run image for `stack_id`. `mixins` is the stack's whole list, prefixes
    included (`["curl", "build:git", "run:tzdata"]`); each image gets the ones meant for it."""
    build = await stack_image(
        StackRole.BUILD, stack_id, mixins=mixins_for(StackRole.BUILD, mixins), user_id=user_id, group_id=group_id
    )
    run = await stack_image(
        StackRole.RUN, stack_id, mixins=mixins_for(StackRole.RUN, mixins), user_id=user_id, group_id=group_id
    )
    return StackImages(await build.push(client, build_ref), await run.push(client, run_ref))
