"""`Resource`: which collection of the API an operation addresses (group, version, plural, scope).

The client is generic over resources, built-in or custom; the few built-in ones the runtime itself uses are
named here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource type as the REST API names it: `group` is "" for the core group."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """`apiVersion` of its objects: `v1` for the core group, else `<group>/<version>`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_kind(self) -> str:
        """`Kind.group` (or just `Kind` for the core group), how owner references and errors name it."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of the collection (no name) or of one object (and its subresource)."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            prefix += f"/namespaces/{quote(namespace, safe='')}"
        elif self.namespaced and name is not None:
            raise ValueError(f"{self.group_kind} is namespaced: a namespace is needed to address {name!r}")
        path = f"{prefix}/{self.plural}"
        if name is not None:
            if not name:
                raise ValueError(f"{self.group_kind}: empty object name")
            path += f"/{quote(name, safe='')}"
            if subresource:
                path += f"/{subresource}"
        return path

    def describe(self, namespace: str | None = None, name: str | None = None) -> str:
        """Human-readable target for errors and logs, e.g. `ConfigMap default/settings`."""
        if name is None:
            return f"{self.plural}.{self.group}" if self.group else self.plural
        return f"{self.group_kind} {namespace}/{name}" if self.namespaced and namespace else f"{self.group_kind} {name}"


NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
PODS = Resource("", "v1", "pods", "Pod")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
EVENTS = Resource("", "v1", "events", "Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
CUSTOM_RESOURCE_DEFINITIONS = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False
)
