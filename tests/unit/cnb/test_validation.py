"""Stack support, mixins and API checks of a builder's buildpacks (spec §1.3.1 step 6)."""

from __future__ import annotations

from typing import Any

import pytest

from kpack_core.cnb import (
    MissingMixinsError,
    StackNotSupportedError,
    StoreIndex,
    UnsupportedBuildpackApiError,
    UnsupportedPlatformApiError,
)
from kpack_core.cnb.metadata import ApiSet, BuildpackLayer, LifecycleMetadata
from kpack_core.cnb.validation import missing_mixins, validate_builder

from .helpers import BIONIC, lifecycle, store_buildpack

MIXINS = ("ca-certificates", "build:git", "run:tzdata")


def _layer(api: str = "0.4", stacks: list[dict[str, Any]] | None = None, **kwargs: Any) -> BuildpackLayer:
    return StoreIndex("s", [store_buildpack("bp", "1.0.0", api=api, stacks=stacks, **kwargs)]).find("bp")


def test_a_buildpack_declaring_the_stack_with_present_mixins_is_valid() -> None:
    layer = _layer(stacks=[{"id": "other"}, {"id": BIONIC, "mixins": ["ca-certificates", "build:git"]}])

    validate_builder([layer], lifecycle(), BIONIC, MIXINS)


def test_a_buildpack_without_the_stack_is_refused_naming_both() -> None:
    with pytest.raises(StackNotSupportedError, match=r"buildpack bp@1\.0\.0 does not support stack io.buildpacks"):
        validate_builder([_layer(stacks=[{"id": "io.other"}])], lifecycle(), BIONIC, MIXINS)


@pytest.mark.parametrize(("api", "allowed"), [("0.4", False), ("0.5", True), ("0.6", True)])
def test_the_any_stack_needs_buildpack_api_0_5(api: str, allowed: bool) -> None:
    layer = _layer(api=api, stacks=[{"id": "*"}])
    if allowed:
        validate_builder([layer], lifecycle(), BIONIC, MIXINS)
    else:
        with pytest.raises(StackNotSupportedError):
            validate_builder([layer], lifecycle(), BIONIC, MIXINS)


def test_missing_mixins_are_listed() -> None:
    layer = _layer(stacks=[{"id": BIONIC, "mixins": ["curl", "build:git", "run:libxml"]}])

    with pytest.raises(MissingMixinsError, match=r"stack missing mixin\(s\): curl, run:libxml") as raised:
        validate_builder([layer], lifecycle(), BIONIC, MIXINS)
    assert raised.value.missing == ("curl", "run:libxml")


def test_the_first_matching_stack_entry_decides() -> None:
    layer = _layer(stacks=[{"id": BIONIC, "mixins": ["curl"]}, {"id": BIONIC}])

    with pytest.raises(MissingMixinsError):
        validate_builder([layer], lifecycle(), BIONIC, MIXINS)


def test_a_prefixed_requirement_is_met_by_the_unprefixed_mixin() -> None:
    assert missing_mixins(["build:ca-certificates", "run:ca-certificates", "ca-certificates"], MIXINS) == []
    assert missing_mixins(["git", "tzdata", "build:tzdata", "weird:git"], MIXINS) == [
        "git",
        "tzdata",
        "build:tzdata",
        "weird:git",
    ]


def test_a_buildpack_api_the_lifecycle_does_not_run_is_refused() -> None:
    with pytest.raises(
        UnsupportedBuildpackApiError, match=r"bp@1\.0\.0 uses buildpack API 0\.7, which lifecycle 0\.11\.4"
    ):
        validate_builder([_layer(api="0.7")], lifecycle(), BIONIC, MIXINS)


def test_deprecated_buildpack_apis_still_count() -> None:
    old = LifecycleMetadata("0.9.0", ApiSet(("0.2",), ("0.3",)), ApiSet((), ("0.3",)))
    validate_builder([_layer(api="0.2")], old, BIONIC, MIXINS)


def test_meta_buildpacks_are_not_checked_against_the_stack() -> None:
    meta = StoreIndex("s", [store_buildpack("m", "1.0.0", api="9.9", order=[{"group": [{"id": "x"}]}])]).find("m")

    validate_builder([meta], lifecycle(), BIONIC, MIXINS)


def test_a_lifecycle_without_a_known_platform_api_is_refused() -> None:
    with pytest.raises(UnsupportedPlatformApiError, match=r"lifecycle 0\.11\.4: 0\.2, 0\.7; expecting one of: 0\.3"):
        validate_builder([], lifecycle(platform=("0.2", "0.7")), BIONIC, MIXINS)
