"""The ClusterStack reconciler against in-memory fakes: status written, failures written then retried, last good
fields kept or cleared, invalid specs terminal, credentials checked, Events on Ready transitions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kpack_controllers.resolving import (
    IMAGE_NOT_FOUND,
    INVALID_SPEC,
    REGISTRY_UNAVAILABLE,
    SECRET_NOT_FOUND,
    SERVICE_ACCOUNT_NOT_FOUND,
    CredentialsError,
    ImageContentError,
    ImageReadError,
)
from kpack_controllers.stack.reconciler import ClusterStackReconciler, kept_fields
from kpack_controllers.stack.rules import INVALID_MIXINS, STACK_ID_MISMATCH
from kpack_core.envtest.cnb import StackRole, stack_image
from kpack_core.registry import TransientError
from kpack_core.runtime.clock import FakeClock
from kpack_core.runtime.reconcile import Request, Result, TerminalError
from tests.unit.controllers.fakes import FakeClient, FakeInformer, FakeRecorder, FakeRegistry, FakeSecrets

BUILD = "reg.example/stacks/build:1"
RUN = "reg.example/stacks/run:1"
POLL = 42.0


def stack(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "ClusterStack",
        "metadata": {"name": "base", "generation": 3, "uid": "u-1"},
        "spec": spec if spec is not None else {"id": "s", "buildImage": {"image": BUILD}, "runImage": {"image": RUN}},
    }
    if status is not None:
        obj["status"] = status
    return obj


class Harness:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.informer = FakeInformer(obj)
        self.client = FakeClient(self.informer)
        self.registry = FakeRegistry()
        self.secrets = FakeSecrets()
        self.recorder = FakeRecorder()
        self.reconciler = ClusterStackReconciler(
            self.client,  # type: ignore[arg-type]
            self.informer,  # type: ignore[arg-type]
            self.secrets,
            registry_client=self.registry.factory,  # type: ignore[arg-type]
            poll_interval=POLL,
            clock=FakeClock(),
            recorder=self.recorder,  # type: ignore[arg-type]
        )

    @property
    def obj(self) -> dict[str, Any]:
        return self.informer.objects["base"]

    async def push(
        self, stack_id: str = "s", mixins: tuple[list[str], list[str]] = ([], []), **kw: Any
    ) -> tuple[str, str]:
        build = await stack_image(StackRole.BUILD, stack_id, mixins=mixins[0], **kw)
        run = await stack_image(StackRole.RUN, stack_id, mixins=mixins[1])
        return self.registry.put(BUILD, build), self.registry.put(RUN, run)

    async def reconcile(self) -> Result:
        return await self.reconciler.reconcile(Request(None, "base"))


async def test_a_valid_stack_becomes_ready_with_resolved_fields_and_polls() -> None:
    h = Harness(stack())
    build, run = await h.push(mixins=(["a", "build:git"], ["a", "run:tz"]), user_id=1001, group_id=1002)
    assert await h.reconcile() == Result(requeue_after=POLL)
    status = h.obj["status"]
    assert status["observedGeneration"] == 3
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [("Ready", "True")]
    assert "reason" not in status["conditions"][0]
    assert {k: v for k, v in status.items() if k not in ("conditions", "observedGeneration")} == {
        "id": "s",
        "buildImage": {"latestImage": build, "image": BUILD},
        "runImage": {"latestImage": run, "image": RUN},
        "mixins": ["a", "build:git", "run:tz"],
        "userId": 1001,
        "groupId": 1002,
    }
    assert build.startswith("reg.example/stacks/build@sha256:")
    assert h.recorder.events == [("Normal", "Ready", "ClusterStack is ready")]
    # the same again writes nothing and records nothing
    assert await h.reconcile() == Result(requeue_after=POLL)
    assert len(h.client.status_updates) == 1
    assert len(h.recorder.events) == 1
    assert h.registry.closed == 2  # one client per reconcile, always closed


async def test_no_mixins_leaves_the_field_out() -> None:
    h = Harness(stack())
    await h.push()
    await h.reconcile()
    assert "mixins" not in h.obj["status"]


async def test_a_missing_image_is_written_then_raised_for_a_retry() -> None:
    h = Harness(stack())
    with pytest.raises(ImageReadError) as raised:
        await h.reconcile()
    assert raised.value.reason == IMAGE_NOT_FOUND
    ready = h.obj["status"]["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", IMAGE_NOT_FOUND)
    assert ready["message"].startswith(f"build image {BUILD}: image not found: ")
    assert h.recorder.events == [("Warning", IMAGE_NOT_FOUND, ready["message"])]
    # it recovers by itself once the images exist
    await h.push()
    assert await h.reconcile() == Result(requeue_after=POLL)
    assert h.obj["status"]["conditions"][0]["status"] == "True"


async def test_the_first_failing_image_in_spec_order_is_named() -> None:
    h = Harness(stack())
    h.registry.fail[BUILD] = TransientError(BUILD, "ping failed: connection refused")
    h.registry.fail[RUN] = TransientError(RUN, "ping failed: connection refused")
    with pytest.raises(ImageReadError):
        await h.reconcile()
    ready = h.obj["status"]["conditions"][0]
    assert ready["reason"] == REGISTRY_UNAVAILABLE
    assert ready["message"] == f"build image {BUILD}: registry unavailable: ping failed: connection refused"


async def test_failures_keep_the_last_good_fields_while_the_spec_names_the_same_images() -> None:
    h = Harness(stack())
    await h.push()
    await h.reconcile()
    good = copy.deepcopy(h.obj["status"])
    await h.push(stack_id="other")  # the tags move to images of another stack
    with pytest.raises(ImageContentError) as raised:
        await h.reconcile()
    assert raised.value.reason == STACK_ID_MISMATCH
    status = h.obj["status"]
    assert status["conditions"][0]["status"] == "False"
    for field in ("id", "buildImage", "runImage", "userId", "groupId"):
        assert status[field] == good[field]


async def test_failures_clear_the_fields_when_the_spec_names_other_images() -> None:
    h = Harness(stack())
    await h.push()
    await h.reconcile()
    moved = h.obj
    moved["spec"]["runImage"]["image"] = "reg.example/stacks/run:2"
    moved["metadata"]["generation"] = 4
    with pytest.raises(ImageReadError):
        await h.reconcile()
    status = h.obj["status"]
    assert set(status) == {"observedGeneration", "conditions"}
    assert status["observedGeneration"] == 4
    assert "run image reg.example/stacks/run:2: image not found" in status["conditions"][0]["message"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, {}),
        ({"id": "s", "buildImage": {"image": BUILD}, "runImage": {"image": RUN}, "userId": 1}, "all"),
        ({"id": "t", "buildImage": {"image": BUILD}, "runImage": {"image": RUN}, "userId": 1}, {}),
        ({"id": "s", "buildImage": {"image": "x"}, "runImage": {"image": RUN}, "userId": 1}, {}),
    ],
)
def test_kept_fields(status: dict[str, Any] | None, expected: Any) -> None:
    obj = stack(status={**(status or {}), "conditions": [], "observedGeneration": 1})
    kept = kept_fields(obj)
    assert kept == (status if expected == "all" else expected)


async def test_bad_mixins_are_named() -> None:
    h = Harness(stack())
    await h.push(mixins=(["a"], []))
    with pytest.raises(ImageContentError):
        await h.reconcile()
    ready = h.obj["status"]["conditions"][0]
    assert ready["reason"] == INVALID_MIXINS
    assert ready["message"] == f"run image {RUN} lacks mixin(s) of build image {BUILD}: a"


async def test_an_invalid_spec_is_terminal() -> None:
    h = Harness(stack(spec={"id": "s", "buildImage": {"image": BUILD}, "runImage": {"image": "Not A Reference"}}))
    with pytest.raises(TerminalError):
        await h.reconcile()
    ready = h.obj["status"]["conditions"][0]
    assert ready["reason"] == INVALID_SPEC
    assert "spec.runImage.image" in ready["message"]
    assert h.registry.keychains == []  # nothing was read


async def test_an_unknown_spec_field_is_terminal_too() -> None:
    h = Harness(stack(spec={"id": "s", "buildImage": {"image": BUILD}, "runImage": {"image": RUN}, "nope": 1}))
    with pytest.raises(TerminalError):
        await h.reconcile()
    assert "spec.nope" in h.obj["status"]["conditions"][0]["message"]


def with_account(obj: dict[str, Any]) -> dict[str, Any]:
    obj["spec"]["serviceAccountRef"] = {"namespace": "team", "name": "puller"}
    return obj


async def test_a_missing_service_account_is_a_retried_failure() -> None:
    h = Harness(with_account(stack()))
    await h.push()
    with pytest.raises(CredentialsError) as raised:
        await h.reconcile()
    assert raised.value.reason == SERVICE_ACCOUNT_NOT_FOUND
    assert raised.value.message == "service account team/puller (spec.serviceAccountRef) not found"
    assert h.obj["status"]["conditions"][0]["message"] == raised.value.message


async def test_a_missing_secret_of_the_service_account_is_a_retried_failure() -> None:
    h = Harness(with_account(stack()))
    await h.push()
    h.secrets.add_account("team", "puller", ["there", "gone"], pull_secrets=["pull-gone"])
    h.secrets.add_docker_secret("team", "there", "reg.example", "u", "p")
    with pytest.raises(CredentialsError) as raised:
        await h.reconcile()
    assert raised.value.reason == SECRET_NOT_FOUND
    assert raised.value.message == "secret(s) team/gone, team/pull-gone of service account team/puller not found"
    h.secrets.add_docker_secret("team", "gone", "other.example", "u", "p")
    h.secrets.add_docker_secret("team", "pull-gone", "other.example", "u", "p")
    assert await h.reconcile() == Result(requeue_after=POLL)
    keychain = h.registry.keychains[-1]
    assert (keychain.namespace, keychain.service_account) == ("team", "puller")


async def test_without_a_service_account_ref_the_keychain_has_no_namespace() -> None:
    h = Harness(stack())
    await h.push()
    await h.reconcile()
    assert h.registry.keychains[-1].namespace == ""
    assert h.secrets.reads == []


async def test_a_deleted_stack_is_done() -> None:
    h = Harness(stack())
    assert await h.reconciler.reconcile(Request(None, "gone")) == Result()
    assert h.client.status_updates == []
