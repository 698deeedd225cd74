"""What the webhook server dispatches to: per kind, a converter, a defaulter and a validator, in a `Registry`.

The server knows nothing of any API model. Each served kind registers a `KindInfo` (its group, kind, plural and
versions, and whether it is converted and admitted by us) with a `KindHandlers` implementation; the review plumbing
(`reviews`) looks the kind up by (group, kind), calls the handler with plain JSON dicts and turns what comes back
(a converted object, a defaulted object, a list of violations, a `ConversionError`) into the review answer. The same
`KindInfo` list drives the webhook configurations and CRD conversion stanzas (`registration`), so what is served and
what is registered cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

JSON = dict[str, Any]


class ConversionError(Exception):
    """A handler cannot convert an object; the message (naming the field at fault) reaches the API client."""


class KindHandlers(Protocol):
    """Conversion, defaulting and validation of one (group, kind). Objects are plain JSON dicts the handler owns:
    it may change and return the one it was given."""

    def convert(self, obj: JSON, desired_api_version: str) -> JSON:
        """`obj` (in any served version other than the desired one) as `desired_api_version` (`group/version`).

        Raise `ConversionError` for an object that cannot be converted. `kind` and `metadata` name, namespace and
        uid must survive: the apiserver refuses converted objects that change them (the server checks it first).
        """
        ...

    def default(self, obj: JSON, *, operation: str) -> JSON:
        """The object with its defaults filled in; `operation` is CREATE or UPDATE. The server computes the JSON
        patch from the difference."""
        ...

    def validate(self, obj: JSON, old: JSON | None, *, operation: str, username: str | None = None) -> list[str]:
        """Every violation, each message naming its field path (`spec.tag: missing field(s)`); empty when valid.

        `old` is the stored object on UPDATE (for immutability checks), None on CREATE; `username` is the
        requesting user (some fields may be set by the controller only).
        """
        ...


@dataclass(frozen=True, slots=True)
class KindInfo:
    """A kind served by the webhooks, as the API and the webhook configurations name it."""

    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]
    """Every served version; a conversion may be asked for from and to any of them."""
    convert: bool = True
    """Its CRD converts through `/convert` (strategy Webhook). False: strategy None, the apiserver only rewrites
    `apiVersion`, and `/convert` refuses the kind."""
    admit: bool = True
    """Its CREATE and UPDATE requests (resource and `/status`) go through `/default` and `/validate`."""

    api_versions: frozenset[str] = field(init=False, repr=False, compare=False)
    """`group/version` of every served version (derived; looked up for every converted object)."""

    def __post_init__(self) -> None:
        if not self.versions:
            raise ValueError(f"{self.kind}.{self.group}: a kind needs at least one version")
        object.__setattr__(self, "api_versions", frozenset(f"{self.group}/{version}" for version in self.versions))

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


@dataclass(frozen=True, slots=True)
class Entry:
    """A registered kind and its handlers."""

    info: KindInfo
    handlers: KindHandlers


class Registry:
    """(group, kind) → `Entry`. Filled once at start-up, then only read (by the request handlers)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Entry] = {}
        self.review_converter: Callable[[bytes], bytes | None] | None = None
        """Answers a whole ConversionReview from its body, or None to leave it to the handlers (set by whoever
        fills the registry: `kpack_webhooks.kinds` sets the native converter, `kpack_webhooks.fastconvert`)."""

    def register(self, info: KindInfo, handlers: KindHandlers) -> None:
        key = (info.group, info.kind)
        if key in self._entries:
            raise ValueError(f"{info.kind}.{info.group} is registered twice")
        self._entries[key] = Entry(info, handlers)

    def lookup(self, group: str, kind: str) -> Entry | None:
        return self._entries.get((group, kind))

    def kinds(self) -> list[KindInfo]:
        """Every registered kind, in registration order."""
        return [entry.info for entry in self._entries.values()]

    def groups(self) -> list[str]:
        """Every group with a registered kind, in registration order."""
        return list(dict.fromkeys(entry.info.group for entry in self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))
