"""What the ClusterStack and ClusterStore reconcilers share: credentials, reading images, failures, status.

Both resolve images a cluster-scoped object names into status, the same way:

- **Credentials.** `spec.serviceAccountRef` set: kpack's keychain for that namespace and account
  (`ServiceAccountKeychain`). Unlike kpack (and unlike the keychain itself, which treats them as "no
  credentials"), a referenced ServiceAccount that does not exist, or a secret it lists that does not exist, is a
  failure with its own reason: pulling anonymously instead would only fail later with a less helpful 401. Not set:
  the keychain without a namespace (volume credentials only).
- **Reading.** `read_image` fetches manifest and config, and turns every way that can fail into an `ImageReadError`
  whose reason says what kind of failure it was and whose message names the image (role and reference as written).
- **Failures are retried, not permanent** (kpack made them permanent, so a stack pushed a minute after its
  ClusterStack stayed broken until the next 10 h resync). The reconciler writes Ready=False with the reason and
  message, then raises: the controller retries with its per-key exponential backoff, capped at the poll interval
  (`retry_rate_limiter`), so a fixed image or secret is noticed within one poll interval at most, and a broken
  object costs a handful of requests a minute, not a storm. Only an invalid spec (`InvalidSpecError`) is terminal:
  retrying cannot fix it, and editing the spec reconciles again.
- **Polling.** A successful reconcile asks to be reconciled again after the poll interval (default 5 minutes), so a
  tag re-pointed in the registry shows up in status without any change to the object.

This module lives in the `stack` package because the stack was written first; nothing in it is stack-specific.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypedDict, TypeVar

import aiohttp
import structlog
from pydantic import ValidationError

from kpack_controllers.registry_clients import RegistryClientFactory, manager_registry_clients
from kpack_controllers.status import READY, condition, condition_status, previous_conditions, write_status
from kpack_core.apis.errors import FieldError, describe, from_pydantic
from kpack_core.keychains import ClientReader, SecretFormatError, SecretReader, ServiceAccountKeychain
from kpack_core.keychains.reader import image_pull_secret_names, secret_names
from kpack_core.registry import (
    DeniedError,
    ImageConfig,
    ImageManifest,
    InvalidReferenceError,
    NotFoundError,
    RegistryClient,
    RegistryError,
    TransientError,
    UnauthorizedError,
    parse_reference,
)
from kpack_core.runtime.client import Client
from kpack_core.runtime.clock import REAL_CLOCK, Clock
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.events import NORMAL, WARNING, EventRecorder
from kpack_core.runtime.informer import Informer
from kpack_core.runtime.manager import Manager
from kpack_core.runtime.predicate import GenerationChanged
from kpack_core.runtime.ratelimiter import BucketRateLimiter, ItemExponentialFailureRateLimiter, MaxOfRateLimiter
from kpack_core.runtime.reconcile import ReportedError, Request, Result, TerminalError
from kpack_core.runtime.resource import Resource

log = structlog.get_logger(__name__)

JSON = dict[str, Any]
T = TypeVar("T")

DEFAULT_POLL_INTERVAL: Final = 300.0
"""Seconds between re-reads of a Ready object's images, to notice a tag that moved (5 minutes)."""
WORKERS: Final = 2
"""Concurrent reconciles per controller, as kpack."""
EVENT_COMPONENT: Final = "kpack-controller"
"""The `reportingComponent` of the Events the controllers record."""
MAX_RETRY_DELAY: Final = 1000.0
"""client-go's cap on the per-key backoff; the poll interval caps it further when shorter."""

# Condition reasons. Each names a kind of failure a user acts on differently.
INVALID_SPEC: Final = "InvalidSpec"
SERVICE_ACCOUNT_NOT_FOUND: Final = "ServiceAccountNotFound"
SECRET_NOT_FOUND: Final = "SecretNotFound"
INVALID_SECRET: Final = "InvalidSecret"
INVALID_IMAGE_REFERENCE: Final = "InvalidImageReference"
IMAGE_NOT_FOUND: Final = "ImageNotFound"
UNAUTHORIZED: Final = "Unauthorized"
ACCESS_DENIED: Final = "AccessDenied"
REGISTRY_UNAVAILABLE: Final = "RegistryUnavailable"
REGISTRY_ERROR: Final = "RegistryError"
INVALID_IMAGE: Final = "InvalidImage"


def retry_rate_limiter(poll_interval: float, clock: Clock = REAL_CLOCK) -> MaxOfRateLimiter:
    """client-go's default controller limiter (5 ms doubling per failure, 10 qps / burst 100 overall) with the
    per-key delay capped at `poll_interval`: a failing object is looked at no less often than a healthy one."""
    cap = min(MAX_RETRY_DELAY, poll_interval) if poll_interval > 0 else MAX_RETRY_DELAY
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base=0.005, max_delay=cap),
        BucketRateLimiter(qps=10.0, burst=100, clock=clock),
    )


# -- errors ---------------------------------------------------------------------------------------------------------


class ResolveError(ReportedError):
    """Resolving failed. `reason` is the Ready condition's reason, `message` (also `str()`) names what is at fault."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class InvalidSpecError(ResolveError):
    """The spec breaks the kind's rules (normally refused by the webhook); terminal until the spec changes."""

    def __init__(self, kind: str, errors: Sequence[FieldError]) -> None:
        super().__init__(INVALID_SPEC, f"invalid {kind} spec: {describe(errors)}")
        self.errors = list(errors)


def checked_spec(kind: str, obj: JSON, parse: Callable[[JSON], T], validate: Callable[[T, str], list[FieldError]]) -> T:
    """The object's spec parsed by `parse` (a model's `from_json`) and checked by `validate` (the kind's
    `validate_spec`); `InvalidSpecError` names every violation with its path."""
    try:
        spec = parse(obj.get("spec") or {})
    except ValidationError as exc:
        raise InvalidSpecError(kind, from_pydantic(exc, "spec")) from None
    errors = validate(spec, "spec")
    if errors:
        raise InvalidSpecError(kind, errors)
    return spec


class CredentialsError(ResolveError):
    """The referenced ServiceAccount, or a secret it lists, is missing or unreadable."""


class ImageReadError(ResolveError):
    """An image could not be read from its registry (not found, unauthorized, unreachable, malformed)."""


class ImageContentError(ResolveError):
    """An image was read but is not what the object needs (wrong stack id, bad mixins, missing labels...)."""


# -- credentials ----------------------------------------------------------------------------------------------------


class MemoReader:
    """A `SecretReader` that reads each object once: the check and the keychain then see the same secrets, and a
    reconcile costs one GET per object at most."""

    def __init__(self, reader: SecretReader) -> None:
        self.reader = reader
        self._secrets: dict[tuple[str, str], JSON | None] = {}
        self._accounts: dict[tuple[str, str], JSON | None] = {}

    async def secret(self, namespace: str, name: str) -> JSON | None:
        key = (namespace, name)
        if key not in self._secrets:
            self._secrets[key] = await self.reader.secret(namespace, name)
        return self._secrets[key]

    async def service_account(self, namespace: str, name: str) -> JSON | None:
        key = (namespace, name)
        if key not in self._accounts:
            self._accounts[key] = await self.reader.service_account(namespace, name)
        return self._accounts[key]


async def keychain_for(reader: SecretReader, service_account_ref: JSON | None) -> ServiceAccountKeychain:
    """The keychain for `spec.serviceAccountRef` (see module docstring); raises `CredentialsError` naming a missing
    ServiceAccount or secret."""
    memo = MemoReader(reader)
    if not service_account_ref:
        return ServiceAccountKeychain(memo, "")
    namespace = str(service_account_ref.get("namespace") or "")
    name = str(service_account_ref.get("name") or "")
    account = await memo.service_account(namespace, name)
    if account is None:
        raise CredentialsError(
            SERVICE_ACCOUNT_NOT_FOUND, f"service account {namespace}/{name} (spec.serviceAccountRef) not found"
        )
    listed = dict.fromkeys([*secret_names(account), *image_pull_secret_names(account)])
    missing = [secret for secret in listed if await memo.secret(namespace, secret) is None]
    if missing:
        names = ", ".join(f"{namespace}/{secret}" for secret in missing)
        raise CredentialsError(SECRET_NOT_FOUND, f"secret(s) {names} of service account {namespace}/{name} not found")
    return ServiceAccountKeychain(memo, namespace, name)


# -- reading images -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRead:
    """One image as read: the reference as written, where it resolved to (`<repository>@<digest>`, kpack's
    identifier), its manifest and its config."""

    reference: str
    latest_image: str
    manifest: ImageManifest
    config: ImageConfig

    @property
    def labels(self) -> dict[str, str]:
        return self.config.labels

    @property
    def env(self) -> list[str]:
        """The config's `Env` (`NAME=value` strings)."""
        config = self.config.raw.get("config") or {}
        env = config.get("Env") if isinstance(config, dict) else None
        return [item for item in env if isinstance(item, str)] if isinstance(env, list) else []


def _detail(exc: BaseException) -> str:
    """The error's text without the reference a `RegistryError` starts with (the caller names the image)."""
    text = str(exc)
    if isinstance(exc, RegistryError) and text.startswith(f"{exc.reference}: "):
        return text[len(exc.reference) + 2 :]
    return text or type(exc).__name__


def read_failure(exc: Exception, what: str, reference: str) -> ResolveError:
    """The typed failure for `exc`, raised while reading `what` (e.g. "build image") at `reference`."""
    table: tuple[tuple[type[Exception] | tuple[type[Exception], ...], str, str], ...] = (
        (InvalidReferenceError, INVALID_IMAGE_REFERENCE, "invalid reference"),
        (NotFoundError, IMAGE_NOT_FOUND, "image not found"),
        (UnauthorizedError, UNAUTHORIZED, "unauthorized"),
        (DeniedError, ACCESS_DENIED, "access denied"),
        ((TransientError, aiohttp.ClientError, TimeoutError, OSError), REGISTRY_UNAVAILABLE, "registry unavailable"),
        (RegistryError, REGISTRY_ERROR, "registry error"),
        (ValueError, INVALID_IMAGE, "not a readable image"),
    )
    if isinstance(exc, SecretFormatError):
        # The keychain reads secrets lazily, on the first request; its message names the secret, never its data.
        return CredentialsError(INVALID_SECRET, f"{what} {reference}: unusable credentials: {exc}")
    for types, reason, summary in table:
        if isinstance(exc, types):
            return ImageReadError(reason, f"{what} {reference}: {summary}: {_detail(exc)}")
    raise exc


async def read_image(registry: RegistryClient, reference: str, what: str) -> ImageRead:
    """Manifest and config of the image at `reference` (for an index: its linux/amd64 image, as kpack); any failure
    becomes a `ResolveError` naming `what` and `reference`."""
    try:
        ref = parse_reference(reference)
        raw = await registry.resolve_image(ref)
        manifest = raw.image()
        config = ImageConfig.from_bytes(await registry.get_blob(ref, manifest.config.digest))
    except (SecretFormatError, InvalidReferenceError, RegistryError, aiohttp.ClientError, OSError, ValueError) as exc:
        raise read_failure(exc, what, reference) from exc
    return ImageRead(reference, f"{ref.name}@{raw.digest}", manifest, config)


async def first_failure_in_order(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run the calls concurrently and return their results in order; when some fail, raise the failure of the
    first in order (not the first to finish), so the status message does not flap between runs."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if not isinstance(result, BaseException)]


# -- status ---------------------------------------------------------------------------------------------------------


def wall_now(clock: Clock) -> Callable[[], datetime.datetime]:
    return lambda: datetime.datetime.fromtimestamp(clock.wall(), datetime.UTC)


def ready_condition(obj: JSON, failure: ResolveError | None, clock: Clock) -> JSON:
    """Ready=True (no reason, as kpack) or Ready=False with the failure's reason and message."""
    previous = previous_conditions(obj)
    if failure is None:
        return condition(READY, True, previous=previous, now=wall_now(clock))
    return condition(
        READY, False, previous=previous, reason=failure.reason, message=failure.message, now=wall_now(clock)
    )


def generation(obj: JSON) -> int:
    value = (obj.get("metadata") or {}).get("generation")
    return value if isinstance(value, int) else 0


def _ready_of(status: JSON) -> tuple[str | None, str | None]:
    for found in status.get("conditions") or ():
        if found.get("type") == READY:
            return found.get("status"), found.get("reason")
    return None, None


async def publish(
    client: Client, resource: Resource, obj: JSON, status: JSON, recorder: EventRecorder | None = None
) -> None:
    """Write `status` if it changed; when Ready changed (status or reason), say so in a log line and an Event."""
    before = (condition_status(obj, READY), _ready_of(obj.get("status") or {})[1])
    written = await write_status(client, resource, obj, status)
    after = _ready_of(status)
    if not written or before == after:
        return
    message = next((c.get("message", "") for c in status.get("conditions") or () if c.get("type") == READY), "")
    if after[0] == "True":
        log.info("ready")
        if recorder is not None:
            recorder.event(obj, NORMAL, "Ready", f"{resource.kind} is ready")
    else:
        log.warning("not ready", reason=after[1], message=message)
        if recorder is not None:
            recorder.event(obj, WARNING, after[1] or "NotReady", message or f"{resource.kind} is not ready")


class ImageResolvingReconciler:
    """What ClusterStack and ClusterStore reconcilers share: read the object from the informer, `resolve` its
    status fields from images, publish them with Ready=True and look again after `poll_interval`; on a
    `ResolveError`, publish Ready=False naming the cause with the fields `kept` says still hold, then raise (a
    retry with backoff; an invalid spec is terminal: only an edit helps). Subclasses set `resource` and
    implement `resolve` and `kept`."""

    resource: Resource

    def __init__(
        self,
        client: Client,
        objects: Informer,
        secrets: SecretReader,
        *,
        registry_client: RegistryClientFactory = RegistryClient,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        clock: Clock = REAL_CLOCK,
        recorder: EventRecorder | None = None,
    ) -> None:
        self.client = client
        self.objects = objects
        self.secrets = secrets
        self.registry_client = registry_client
        self.poll_interval = poll_interval
        self.clock = clock
        self.recorder = recorder

    async def resolve(self, obj: JSON) -> JSON:
        """The status fields resolved from the images; raises `ResolveError` naming what is at fault."""
        raise NotImplementedError

    def kept(self, obj: JSON) -> JSON:
        """The status fields a failed resolve keeps (those that still describe the spec)."""
        raise NotImplementedError

    async def reconcile(self, request: Request) -> Result:
        obj = self.objects.get(request.name)
        if obj is None:
            return Result()  # deleted: nothing of ours outlives it
        base: JSON = {"observedGeneration": generation(obj)}
        try:
            resolved = await self.resolve(obj)
        except ResolveError as exc:
            status = {**base, "conditions": [ready_condition(obj, exc, self.clock)], **self.kept(obj)}
            await publish(self.client, self.resource, obj, status, self.recorder)
            if isinstance(exc, InvalidSpecError):
                raise TerminalError(str(exc)) from exc
            raise
        status = {**base, "conditions": [ready_condition(obj, None, self.clock)], **resolved}
        await publish(self.client, self.resource, obj, status, self.recorder)
        return Result(requeue_after=self.poll_interval)


class ControllerOptions(TypedDict, total=False):
    """The keyword options of `register_controller`, which each kind's `setup(manager, **options)` passes on."""

    registry_client: RegistryClientFactory | None
    poll_interval: float
    secrets: SecretReader | None
    events: bool
    workers: int


def register_controller(
    manager: Manager,
    reconciler: type[ImageResolvingReconciler],
    name: str,
    *,
    registry_client: RegistryClientFactory | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    secrets: SecretReader | None = None,
    events: bool = True,
    workers: int = WORKERS,
) -> Controller:
    """Register a controller of a cluster-scoped kind resolved from images (ClusterStack, ClusterStore).

    Informer: every object of the reconciler's resource. Watch: each object itself, on create, delete and spec
    (generation) changes; status writes of our own do not wake it. Failures back off per key up to
    `poll_interval`. `registry_client` defaults to the manager's pool (`manager_registry_clients`); `secrets` to
    live reads (`ClientReader`: no cluster-wide secret cache); `events` records a Kubernetes Event when Ready
    changes (through the manager's recorder).
    """
    objects = manager.cache.informer(reconciler.resource)
    controller = Controller(
        name,
        reconciler(
            manager.client,
            objects,
            secrets if secrets is not None else ClientReader(manager.client),
            registry_client=registry_client or manager_registry_clients(manager),
            poll_interval=poll_interval,
            clock=manager.clock,
            recorder=manager.event_recorder(EVENT_COMPONENT) if events else None,
        ),
        max_concurrent_reconciles=workers,
        rate_limiter=retry_rate_limiter(poll_interval, manager.clock),
        clock=manager.clock,
    )
    controller.watch_for(objects, GenerationChanged())
    manager.add_controller(controller)
    return controller
