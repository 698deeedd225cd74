"""What the stack and store reconcilers share: failure classification, ordered concurrency, retry backoff capped at
the poll interval, and status/Event publishing only on change."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from kpack_controllers.resolving import (
    ACCESS_DENIED,
    IMAGE_NOT_FOUND,
    INVALID_IMAGE,
    INVALID_IMAGE_REFERENCE,
    INVALID_SECRET,
    MAX_RETRY_DELAY,
    REGISTRY_ERROR,
    REGISTRY_UNAVAILABLE,
    UNAUTHORIZED,
    CredentialsError,
    ImageReadError,
    ResolveError,
    first_failure_in_order,
    publish,
    read_failure,
    read_image,
    retry_rate_limiter,
)
from kpack_core.apis.resources import CLUSTER_STACKS
from kpack_core.keychains import SecretFormatError
from kpack_core.registry import (
    DeniedError,
    DigestMismatchError,
    InvalidReferenceError,
    ManifestUnknownError,
    NameUnknownError,
    TransientError,
    UnauthorizedError,
)
from kpack_core.runtime.clock import FakeClock
from tests.unit.controllers.fakes import FakeClient, FakeInformer, FakeRecorder, FakeRegistry

REF = "reg.example/app:1"
NORMALISED = "reg.example/app:1"


@pytest.mark.parametrize(
    ("exc", "reason", "message"),
    [
        (InvalidReferenceError("Bad", "invalid repository"), INVALID_IMAGE_REFERENCE,
         "invalid reference: invalid image reference 'Bad': invalid repository"),
        (ManifestUnknownError(NORMALISED, "get manifest failed with HTTP 404"), IMAGE_NOT_FOUND,
         "image not found: get manifest failed with HTTP 404"),
        (NameUnknownError(NORMALISED, "NAME_UNKNOWN"), IMAGE_NOT_FOUND, "image not found: NAME_UNKNOWN"),
        (UnauthorizedError(NORMALISED, "get manifest failed with HTTP 401 (no credentials)"), UNAUTHORIZED,
         "unauthorized: get manifest failed with HTTP 401 (no credentials)"),
        (DeniedError(NORMALISED, "DENIED"), ACCESS_DENIED, "access denied: DENIED"),
        (TransientError(NORMALISED, "ping failed"), REGISTRY_UNAVAILABLE, "registry unavailable: ping failed"),
        (aiohttp.ClientConnectionError("refused"), REGISTRY_UNAVAILABLE, "registry unavailable: refused"),
        (TimeoutError(), REGISTRY_UNAVAILABLE, "registry unavailable: TimeoutError"),
        (DigestMismatchError(NORMALISED, "hashes to x"), REGISTRY_ERROR, "registry error: hashes to x"),
        (ValueError("not JSON"), INVALID_IMAGE, "not a readable image: not JSON"),
    ],
)  # fmt: skip
def test_read_failures_are_classified_and_name_the_image(exc: Exception, reason: str, message: str) -> None:
    failure = read_failure(exc, "run image", REF)
    assert isinstance(failure, ImageReadError)
    assert failure.reason == reason
    assert failure.message == f"run image {REF}: {message}"


def test_an_unreadable_secret_is_a_credentials_failure() -> None:
    failure = read_failure(SecretFormatError("secret team/creds", ".dockerconfigjson", "not JSON"), "store image", REF)
    assert isinstance(failure, CredentialsError)
    assert failure.reason == INVALID_SECRET
    assert (
        failure.message
        == f"store image {REF}: unusable credentials: secret team/creds: key '.dockerconfigjson': not JSON"
    )


def test_anything_else_is_not_swallowed() -> None:
    with pytest.raises(KeyError):
        read_failure(KeyError("bug"), "run image", REF)


async def test_read_image_turns_registry_errors_into_resolve_errors() -> None:
    registry = FakeRegistry()
    with pytest.raises(ImageReadError) as raised:
        await read_image(registry, REF, "build image")  # type: ignore[arg-type]
    assert raised.value.reason == IMAGE_NOT_FOUND
    with pytest.raises(ImageReadError) as raised:
        await read_image(registry, "UPPER/case", "build image")  # type: ignore[arg-type]
    assert raised.value.reason == INVALID_IMAGE_REFERENCE


async def test_first_failure_in_spec_order_wins_not_the_first_to_finish() -> None:
    async def fail(after: float, name: str) -> int:
        await asyncio.sleep(after)
        raise ResolveError("R", name)

    async def ok(value: int) -> int:
        return value

    with pytest.raises(ResolveError, match="slow"):
        await first_failure_in_order([ok(1), fail(0.05, "slow"), fail(0, "fast")])
    assert await first_failure_in_order([ok(1), ok(2)]) == [1, 2]


@pytest.mark.parametrize(
    ("poll", "cap"), [(300.0, 300.0), (5000.0, MAX_RETRY_DELAY), (2.0, 2.0), (0.0, MAX_RETRY_DELAY)]
)
def test_retry_backoff_grows_exponentially_and_is_capped_by_the_poll_interval(poll: float, cap: float) -> None:
    limiter = retry_rate_limiter(poll, FakeClock())
    delays = [limiter.when("key") for _ in range(40)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert max(delays) == cap
    assert delays[-1] == cap
    limiter.forget("key")
    assert limiter.when("key") == 0.005


def obj_with(conditions: list[dict[str, Any]] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": "ClusterStack", "metadata": {"name": "base"}}
    if conditions is not None:
        obj["status"] = {"conditions": conditions}
    return obj


def ready(status: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    out = {"type": "Ready", "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


@pytest.mark.parametrize(
    ("before", "after", "events"),
    [
        (None, ready("True"), [("Normal", "Ready", "ClusterStack is ready")]),
        ([ready("True")], ready("True"), []),
        ([ready("True")], ready("False", "ImageNotFound", "m"), [("Warning", "ImageNotFound", "m")]),
        ([ready("False", "ImageNotFound", "m")], ready("False", "ImageNotFound", "m2"), []),  # written, same reason
        (
            [ready("False", "ImageNotFound", "m")],
            ready("False", "Unauthorized", "u"),
            [("Warning", "Unauthorized", "u")],
        ),
        ([ready("False", "X", "m")], ready("True"), [("Normal", "Ready", "ClusterStack is ready")]),
    ],
)
async def test_publish_writes_changes_and_records_ready_transitions(
    before: list[dict[str, Any]] | None, after: dict[str, Any], events: list[tuple[str, str, str]]
) -> None:
    obj = obj_with(before)
    informer = FakeInformer(obj)
    client = FakeClient(informer)
    recorder = FakeRecorder()
    status = {"conditions": [after]}
    await publish(client, CLUSTER_STACKS, obj, status, recorder)  # type: ignore[arg-type]
    assert recorder.events == events
    assert client.status_updates == ([] if obj.get("status") == status else [status])
