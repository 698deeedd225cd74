"""Registering the webhooks with an apiserver ourselves: for local mode and tests, where no manifests did it.

In a cluster the manifests create the webhook configurations and CRD conversion stanzas (pointing at the Service)
and the server only injects its CA bundle. Out of cluster (`--local`), the server creates them pointing at its own
`https://127.0.0.1:<port>` and removes the admission configurations again on exit: left behind, a failurePolicy-Fail
webhook nobody serves would refuse every write of the kinds it covers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import structlog

from kpack_core.runtime import errors
from kpack_core.runtime.client import Client, PatchType
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, Resource
from kpack_webhooks.handlers import KindInfo
from kpack_webhooks.registration import (
    DEFAULTING_WEBHOOK,
    JSON,
    MUTATING_WEBHOOK_CONFIGURATIONS,
    VALIDATING_WEBHOOK_CONFIGURATIONS,
    VALIDATION_WEBHOOK,
    Target,
    conversion,
    mutating_webhook_configuration,
    validating_webhook_configuration,
)

log = structlog.get_logger(__name__)


async def apply(client: Client, resource: Resource, body: JSON) -> JSON:
    """Create a cluster-scoped object, or replace the existing one's content (at the resourceVersion read)."""
    name = body["metadata"]["name"]
    for _ in range(5):
        try:
            return await client.create(resource, body)
        except errors.AlreadyExistsError:
            pass
        try:
            existing = await client.get(resource, name)
        except errors.NotFoundError:
            continue  # deleted in between: create again
        replacement = {**body, "metadata": {**existing["metadata"], **body["metadata"]}}
        try:
            return await client.update(resource, replacement)
        except (errors.ConflictError, errors.NotFoundError):
            continue
    raise RuntimeError(f"{resource.describe(None, name)}: kept changing while being applied")


class MissingCRDError(Exception):
    """A kind's CRD is not installed, so its conversion cannot be pointed at us."""


async def set_conversion(client: Client, crd_name: str, target: Target, ca_bundle: bytes | None) -> None:
    """Point a CRD's conversion at `/convert` on `target`, replacing any earlier stanza as a whole (a merge patch
    would keep an old `service` next to the new `url`, which the apiserver refuses)."""
    operations = [{"op": "add", "path": "/spec/conversion", "value": conversion(target, ca_bundle)}]
    try:
        await client.patch(CUSTOM_RESOURCE_DEFINITIONS, crd_name, operations, patch_type=PatchType.JSON)
    except errors.NotFoundError as exc:
        raise MissingCRDError(f"CRD {crd_name} is not installed: apply config/crds first") from exc


async def register(
    client: Client,
    kinds: Sequence[KindInfo],
    target: Target,
    ca_bundle: bytes,
    *,
    mutating: str = DEFAULTING_WEBHOOK,
    validating: str = VALIDATION_WEBHOOK,
) -> None:
    """Create or update both admission configurations and the conversion stanza of every converted kind's CRD."""
    if any(info.admit for info in kinds):
        mutating_config = mutating_webhook_configuration(kinds, target, ca_bundle=ca_bundle, name=mutating)
        validating_config = validating_webhook_configuration(kinds, target, ca_bundle=ca_bundle, name=validating)
        await apply(client, MUTATING_WEBHOOK_CONFIGURATIONS, mutating_config)
        await apply(client, VALIDATING_WEBHOOK_CONFIGURATIONS, validating_config)
    for info in kinds:
        if info.convert and len(info.versions) > 1:
            await set_conversion(client, info.crd_name, target, ca_bundle)
    log.info("webhooks registered", target=str(target), kinds=[info.kind for info in kinds])


async def unregister(
    client: Client, *, mutating: str = DEFAULTING_WEBHOOK, validating: str = VALIDATION_WEBHOOK
) -> None:
    """Delete both admission configurations (absent ones are fine). CRD conversion stanzas stay: without a
    converter, reads in a non-storage version fail until a server is back, instead of silently losing fields."""
    for resource, name in (
        (MUTATING_WEBHOOK_CONFIGURATIONS, mutating),
        (VALIDATING_WEBHOOK_CONFIGURATIONS, validating),
    ):
        with contextlib.suppress(errors.NotFoundError):
            await client.delete(resource, name)
    log.info("admission webhooks unregistered", mutating=mutating, validating=validating)
