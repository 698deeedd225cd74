"""`BlobLocations`: newest location first, bounded per digest and in digests, forgetting, and one placer per blob."""

from __future__ import annotations

import asyncio

import pytest

from kpack_core.registry import BlobLocations

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def test_newest_location_comes_first_and_repeats_move_to_the_front() -> None:
    locations = BlobLocations()
    locations.remember("r.io", "a", D1)
    locations.remember("r.io", "b", D1)
    locations.remember("r.io", "a", D1)
    assert locations.repositories("r.io", D1) == ["a", "b"]
    assert locations.repositories("other.io", D1) == []  # per registry
    assert locations.repositories("r.io", D2) == []


def test_locations_per_digest_are_capped() -> None:
    locations = BlobLocations(per_digest=2)
    for repository in ("a", "b", "c"):
        locations.remember("r.io", repository, D1)
    assert locations.repositories("r.io", D1) == ["c", "b"]


def test_the_least_recently_used_digest_is_dropped() -> None:
    locations = BlobLocations(max_digests=2)
    locations.remember("r.io", "a", D1)
    locations.remember("r.io", "a", D2)
    assert locations.repositories("r.io", D1) == ["a"]  # D1 used: D2 is now the oldest
    locations.remember("r.io", "a", D3)
    assert (locations.repositories("r.io", D1), locations.repositories("r.io", D2)) == (["a"], [])
    assert len(locations) == 2


def test_forget_removes_one_location_and_the_digest_with_its_last() -> None:
    locations = BlobLocations()
    locations.remember("r.io", "a", D1)
    locations.remember("r.io", "b", D1)
    locations.forget("r.io", "b", D1)
    assert locations.repositories("r.io", D1) == ["a"]
    locations.forget("r.io", "a", D1)
    locations.forget("r.io", "never", D2)  # unknown: nothing to do
    assert len(locations) == 0


@pytest.mark.parametrize("bounds", [{"max_digests": 0}, {"per_digest": 0}])
def test_bounds_must_be_positive(bounds: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BlobLocations(**bounds)


async def test_one_placer_per_registry_and_digest_at_a_time() -> None:
    locations = BlobLocations()
    events: list[str] = []

    async def place(name: str, digest: str) -> None:
        async with locations.exclusive("r.io", digest):
            events.append(f"{name} in")
            await asyncio.sleep(0.01)
            events.append(f"{name} out")

    await asyncio.gather(place("first", D1), place("second", D1), place("other digest", D2))

    assert events.index("first out") < events.index("second in")  # the same blob waits
    assert events.index("other digest in") < events.index("first out")  # another blob does not
    assert locations._locks == {}  # nothing kept once nobody waits


async def test_a_failing_placer_releases_the_blob() -> None:
    locations = BlobLocations()
    with pytest.raises(RuntimeError):
        async with locations.exclusive("r.io", D1):
            raise RuntimeError("upload failed")
    async with asyncio.timeout(1):
        async with locations.exclusive("r.io", D1):
            pass
    assert locations._locks == {}
