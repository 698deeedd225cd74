"""The kinds the kpack webhooks serve: every kpack.io kind of `kpack_core.apis.kinds`, converted losslessly
through the v1alpha2 hub (reviews of reads through v1alpha1 answered by the native fast path, `fastconvert`),
defaulted and validated in both versions.

Whether the cluster has a default StorageClass (the Image cache-volume rules depend on it) is asked of a callable,
in the server a `storageclasses.DefaultStorageClass` watching StorageClasses.
"""

from __future__ import annotations

from collections.abc import Callable

from kpack_core.apis import errors as api_errors
from kpack_core.apis.base import GROUP, JSON
from kpack_core.apis.conversion import ConversionError as ApiConversionError
from kpack_core.apis.kinds import CONVERSIONS, KINDS, convert_object, default_object, validate_object
from kpack_webhooks.fastconvert import review_converter
from kpack_webhooks.handlers import ConversionError, KindInfo, Registry


class KpackKindHandlers:
    """Conversion, defaulting and validation of the kpack.io kinds, by their JSON."""

    def __init__(self, has_default_storage_class: Callable[[], bool] = lambda: False) -> None:
        self.has_default_storage_class = has_default_storage_class

    def convert(self, obj: JSON, desired_api_version: str) -> JSON:
        try:
            return convert_object(obj, desired_api_version)
        except ApiConversionError as exc:
            raise ConversionError(str(exc)) from exc

    def default(self, obj: JSON, *, operation: str) -> JSON:
        try:
            defaulted = default_object(obj, has_default_storage_class=self.has_default_storage_class())
        except api_errors.ValidationFailed:
            return obj  # unparseable: nothing to default; validation names every problem
        # Defaulting must not drop what the model does not know: keep metadata verbatim.
        defaulted["metadata"] = obj.get("metadata", {})
        return defaulted

    def validate(self, obj: JSON, old: JSON | None, *, operation: str, username: str | None = None) -> list[str]:
        found = validate_object(
            obj,
            old if operation == "UPDATE" else None,
            username=username,
            has_default_storage_class=self.has_default_storage_class(),
        )
        return [str(error).replace("\n", " ") for error in found]


def registry(has_default_storage_class: Callable[[], bool] = lambda: False) -> Registry:
    """A new registry holding every kind served by `python -m kpack_webhooks`."""
    kinds = Registry()
    handlers = KpackKindHandlers(has_default_storage_class)
    for info in KINDS:
        kinds.register(KindInfo(GROUP, info.kind, info.plural, tuple(info.models)), handlers)
    kinds.review_converter = review_converter((entry.info, CONVERSIONS[entry.info.kind]) for entry in kinds)
    return kinds
