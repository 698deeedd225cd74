"""Matching revisions against advertised refs: rule order, peeled tags, sha shapes."""

from __future__ import annotations

import pytest

from kpack_core.source import GitSourceType
from kpack_core.source.refs import (
    AdvertisedRef,
    LsRemoteParseError,
    advertised_commit,
    candidate_ref_names,
    is_full_sha,
    is_short_sha,
    match_revision,
    parse_ls_remote,
)

A = "a" * 40
B = "b" * 40
C = "c" * 40
T = "d" * 40

LS_REMOTE = f"""{A}\tHEAD
{A}\trefs/heads/main
{B}\trefs/heads/release
{C}\trefs/heads/v2
{T}\trefs/tags/v1
{B}\trefs/tags/v1^{{}}
{A}\trefs/tags/v2
{C}\trefs/pull/7/head
{B}\trefs/remotes/upstream/HEAD
{C}\trefs/remotes/upstream/main
"""


@pytest.fixture
def refs() -> dict[str, AdvertisedRef]:
    return parse_ls_remote(LS_REMOTE)


def test_parse_folds_peeled_lines_into_their_tag(refs: dict[str, AdvertisedRef]) -> None:
    assert refs["refs/tags/v1"] == AdvertisedRef("refs/tags/v1", T, B)
    assert refs["refs/tags/v1"].commit == B
    assert refs["refs/tags/v2"].commit == A
    assert "refs/tags/v1^{}" not in refs
    assert list(refs)[:3] == ["HEAD", "refs/heads/main", "refs/heads/release"]


@pytest.mark.parametrize("line", ["nonsense", f"{A} refs/heads/main", f"{A[:39]}\trefs/heads/x", f"{A}\t"])
def test_parse_rejects_lines_that_are_not_oid_tab_ref(line: str) -> None:
    with pytest.raises(LsRemoteParseError, match="unexpected ls-remote line"):
        parse_ls_remote(line)


def test_parse_ignores_blank_lines() -> None:
    assert parse_ls_remote("\n\n") == {}


def test_candidate_names_follow_git_rule_order() -> None:
    assert candidate_ref_names("x") == [
        "x",
        "refs/x",
        "refs/tags/x",
        "refs/heads/x",
        "refs/remotes/x",
        "refs/remotes/x/HEAD",
    ]


@pytest.mark.parametrize(
    ("revision", "name", "commit", "kind"),
    [
        ("main", "refs/heads/main", A, GitSourceType.BRANCH),
        ("release", "refs/heads/release", B, GitSourceType.BRANCH),
        ("v1", "refs/tags/v1", B, GitSourceType.TAG),
        # A tag and a branch of the same name: the tag rule comes first (git's order; kpack's loop picked the branch).
        ("v2", "refs/tags/v2", A, GitSourceType.TAG),
        ("refs/heads/v2", "refs/heads/v2", C, GitSourceType.BRANCH),
        ("heads/release", "refs/heads/release", B, GitSourceType.BRANCH),
        ("HEAD", "HEAD", A, GitSourceType.BRANCH),
        ("refs/pull/7/head", "refs/pull/7/head", C, GitSourceType.UNKNOWN),
        ("pull/7/head", "refs/pull/7/head", C, GitSourceType.UNKNOWN),
        ("upstream/main", "refs/remotes/upstream/main", C, GitSourceType.UNKNOWN),
        ("upstream", "refs/remotes/upstream/HEAD", B, GitSourceType.UNKNOWN),
    ],
)
def test_match_revision(
    refs: dict[str, AdvertisedRef], revision: str, name: str, commit: str, kind: GitSourceType
) -> None:
    ref = match_revision(refs, revision)
    assert ref is not None
    assert (ref.name, ref.commit, ref.type) == (name, commit, kind)


@pytest.mark.parametrize("revision", ["missing", "main2", "tags", A, "heads"])
def test_no_match(refs: dict[str, AdvertisedRef], revision: str) -> None:
    assert match_revision(refs, revision) is None


def test_advertised_commit_checks_ids_and_peeled_ids(refs: dict[str, AdvertisedRef]) -> None:
    assert advertised_commit(refs.values(), B)
    assert advertised_commit(refs.values(), T)
    assert not advertised_commit(refs.values(), "e" * 40)


@pytest.mark.parametrize(
    ("text", "full", "short"),
    [
        ("a" * 40, True, False),
        ("0123456789abcdef" * 4, True, False),
        ("a" * 39, False, True),
        ("abcd", False, True),
        ("abc", False, False),
        ("ABCDEF1", False, True),
        ("A" * 40, False, False),
        ("g" * 7, False, False),
        ("a" * 63, False, True),
        ("a" * 41, False, True),
        ("a" * 65, False, False),
        ("main", False, False),
    ],
)
def test_sha_shapes(text: str, full: bool, short: bool) -> None:
    assert is_full_sha(text) is full
    assert is_short_sha(text) is short


def test_pollable_types() -> None:
    assert {kind for kind in GitSourceType if kind.pollable} == {GitSourceType.BRANCH, GitSourceType.TAG}
