"""The history cache's bounds, without git: which repositories eviction deletes, and the limit's own check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kpack_core.source.history import HistoryCache, _evict


def repositories(directory: Path, count: int) -> list[Path]:
    """`count` repository directories, the first the least recently used."""
    paths = []
    for index in range(count):
        path = directory / f"{index:02d}.git"
        path.mkdir(parents=True)
        os.utime(path, (1_000_000 + index, 1_000_000 + index))
        paths.append(path)
    return paths


def test_the_least_recently_used_beyond_the_limit_go(tmp_path: Path) -> None:
    paths = repositories(tmp_path, 5)
    (tmp_path / "not-a-repository").mkdir()

    assert _evict(tmp_path, 3, held=set()) == paths[:2]
    assert sorted(tmp_path.glob("*.git")) == paths[2:]
    assert (tmp_path / "not-a-repository").is_dir()
    assert _evict(tmp_path, 3, held=set()) == []


def test_held_repositories_are_skipped_not_counted_twice(tmp_path: Path) -> None:
    paths = repositories(tmp_path, 5)

    assert _evict(tmp_path, 3, held={paths[0]}) == paths[1:3]
    assert sorted(tmp_path.glob("*.git")) == [paths[0], *paths[3:]]


def test_only_held_repositories_left_over_stay(tmp_path: Path) -> None:
    paths = repositories(tmp_path, 3)

    assert _evict(tmp_path, 1, held=set(paths[:2])) == [paths[2]]
    assert sorted(tmp_path.glob("*.git")) == paths[:2]


def test_a_missing_directory_evicts_nothing(tmp_path: Path) -> None:
    assert _evict(tmp_path / "absent", 1, held=set()) == []


def test_the_limit_is_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_repositories must be at least 1, got 0"):
        HistoryCache(tmp_path, max_repositories=0)
