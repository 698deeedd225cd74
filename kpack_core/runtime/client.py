"""The one place that talks to the apiserver: generic REST access by `Resource`, raw JSON dicts in and out.

kubernetes-asyncio provides the configuration (kubeconfig or in-cluster), credentials (including token refresh and
exec plugins) and its TLS-configured aiohttp session; requests and responses are ours, parsed with orjson, so no
generated model objects are built on hot paths. Transient failures (no answer, 429 with Retry-After, 500/502/503/504)
are retried with tenacity — exponential backoff with jitter, bounded; every other failure is raised at once as a
typed error from `errors`. Every HTTP round trip is counted in `rest_client_requests_total{code,method,host}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from kpack_core.retry import RetryPolicy as RetryPolicy  # re-exported: callers build a Client's policy from here
from kpack_core.retry import Transient, parse_retry_after, retried
from kpack_core.runtime import errors
from kpack_core.runtime.metrics import REST_CLIENT_REQUESTS
from kpack_core.runtime.resource import Resource

JSON = dict[str, Any]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class PatchType(Enum):
    """Patch flavours the apiserver accepts, by content type."""

    MERGE = "application/merge-patch+json"
    JSON = "application/json-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


@dataclass(frozen=True)
class ObjectList:
    """One complete (all pages) list: the items and the resourceVersion the list was served at."""

    items: list[JSON]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    """One watch event: `type` is ADDED, MODIFIED, DELETED or BOOKMARK; `object` the decoded object."""

    type: str
    object: JSON
    raw: bytes = field(repr=False, default=b"")


class Client:
    """Generic, raw-JSON access to any resource. Use `async with` or `close()`.

    Conflicts (409), not-found (404), gone (410) and the other API failures are raised as `errors.ApiError`
    subclasses; transport failures that outlast the retries as `errors.TransportError`.
    """

    def __init__(self, api_client: k8s_client.ApiClient, *, retry: RetryPolicy | None = None) -> None:
        self._api = api_client
        self._session: aiohttp.ClientSession = api_client.rest_client.pool_manager
        self.base_url = str(api_client.configuration.host).rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.retry = retry or RetryPolicy()

    @classmethod
    async def from_kubeconfig(cls, path: str | None = None, *, retry: RetryPolicy | None = None) -> Client:
        """A client for the kubeconfig at `path` (default: $KUBECONFIG or ~/.kube/config)."""
        api = await k8s_config.new_client_from_config(config_file=path)
        return cls(api, retry=retry)

    @classmethod
    def in_cluster(cls, *, retry: RetryPolicy | None = None) -> Client:
        """A client from the pod's service account (KUBERNETES_SERVICE_HOST and the mounted token)."""
        configuration = k8s_client.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return cls(k8s_client.ApiClient(configuration), retry=retry)

    async def close(self) -> None:
        await self._api.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing -----------------------------------------------------------------------------------------------

    async def _headers(self, content_type: str | None) -> dict[str, str]:
        headers: dict[str, str] = {"Accept": "application/json"}
        headers.update(self._api.default_headers)
        if content_type:
            headers["Content-Type"] = content_type
        await self._api.update_params_for_auth(headers, [], ["BearerToken"])
        return headers

    def _count(self, code: str, method: str) -> None:
        REST_CLIENT_REQUESTS.labels(code=code, method=method, host=self.host).inc()

    async def _once(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes | None,
        content_type: str | None,
        target: str,
    ) -> Any:
        url = self.base_url + path + ("?" + urlencode(query) if query else "")
        headers = await self._headers(content_type if body is not None else None)
        try:
            async with self._session.request(method, url, data=body, headers=headers) as response:
                data = await response.read()
                self._count(str(response.status), method)
                status, retry_after = response.status, parse_retry_after(response.headers)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            self._count("<error>", method)
            # No chained cause: the message already carries the aiohttp failure's repr, and callers have always
            # been handed the TransportError alone.
            raise Transient(errors.TransportError(f"{target}: {method} {path}: {exc!r}")) from None
        decoded: Any
        try:
            decoded = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            decoded = data
        if 200 <= status < 300:
            return decoded
        error = errors.api_error(status, decoded, target, retry_after)
        if status in RETRYABLE_STATUSES:
            raise Transient(error, retry_after)
        raise error

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        target: str = "",
    ) -> Any:
        """One API call with the retry policy; returns the decoded JSON answer (None for an empty body)."""
        payload = None if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
        # Not full jitter: this client has always waited at least half the backoff ceiling between attempts.
        return await retried(
            self.retry,
            lambda: self._once(method, path, query or {}, payload, content_type, target or path),
            jitter_floor=0.5,
        )

    # -- verbs --------------------------------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> JSON:
        result: JSON = await self.request(
            "GET", resource.path(namespace, name), target=resource.describe(namespace, name)
        )
        return result

    async def list_pages(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        limit: int = 500,
    ) -> AsyncIterator[tuple[list[JSON], str]]:
        """Yield each page of a paginated list as (items, list resourceVersion), following `continue` tokens.

        Paging bounds the memory of a large list to one page of JSON at a time. Mind that a paginated list with a
        `resource_version` but no `resource_version_match` is served at exactly that version; pass
        `resource_version_match="NotOlderThan"` for "at least as fresh as".
        """
        query: dict[str, str] = {"limit": str(limit)}
        if resource_version_match:
            query["resourceVersionMatch"] = resource_version_match
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if resource_version is not None:
            query["resourceVersion"] = resource_version
        target = resource.describe(namespace)
        while True:
            page: JSON = await self.request("GET", resource.path(namespace), query=query, target=target)
            metadata = page.get("metadata") or {}
            items = page.get("items") or []
            del page  # hold one page at a time: the next request must not find the last one still alive
            yield items, str(metadata.get("resourceVersion", ""))
            del items
            token = metadata.get("continue")
            if not token:
                return
            query = {k: v for k, v in query.items() if k not in ("resourceVersion", "resourceVersionMatch")}
            query["continue"] = token

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        limit: int = 500,
    ) -> ObjectList:
        """Every object (all pages) and the resourceVersion of the list."""
        items: list[JSON] = []
        version = ""
        async for page, page_version in self.list_pages(
            resource,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            limit=limit,
        ):
            items.extend(page)
            version = page_version
        return ObjectList(items, version)

    async def create(self, resource: Resource, body: JSON, namespace: str | None = None) -> JSON:
        namespace = namespace or (body.get("metadata") or {}).get("namespace")
        name = (body.get("metadata") or {}).get("name") or (body.get("metadata") or {}).get("generateName", "")
        result: JSON = await self.request(
            "POST", resource.path(namespace), body=body, target=resource.describe(namespace, name)
        )
        return result

    async def update(self, resource: Resource, body: JSON, *, subresource: str | None = None) -> JSON:
        """PUT the object; its `metadata.resourceVersion` makes it fail with ConflictError if the object moved on."""
        metadata = body.get("metadata") or {}
        namespace, name = metadata.get("namespace"), metadata.get("name", "")
        result: JSON = await self.request(
            "PUT",
            resource.path(namespace, name, subresource),
            body=body,
            target=resource.describe(namespace, name),
        )
        return result

    async def update_status(self, resource: Resource, body: JSON) -> JSON:
        """PUT the status subresource (only `status` changes; spec and metadata in `body` are ignored)."""
        return await self.update(resource, body, subresource="status")

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = PatchType.MERGE,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> JSON:
        """Patch an object. Server-side apply (`PatchType.APPLY`) needs `field_manager`."""
        query: dict[str, str] = {}
        if field_manager:
            query["fieldManager"] = field_manager
        if patch_type is PatchType.APPLY:
            if not field_manager:
                raise ValueError(f"{resource.describe(namespace, name)}: server-side apply needs a field_manager")
            if force:
                query["force"] = "true"
        result: JSON = await self.request(
            "PATCH",
            resource.path(namespace, name, subresource),
            query=query,
            body=patch,
            content_type=patch_type.value,
            target=resource.describe(namespace, name),
        )
        return result

    async def delete(
        self,
        resource: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        uid: str | None = None,
    ) -> JSON:
        """Delete an object (optionally only if it still has `uid`); returns the apiserver's answer."""
        options: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if uid:
            options["preconditions"] = {"uid": uid}
        result: JSON = await self.request(
            "DELETE", resource.path(namespace, name), body=options, target=resource.describe(namespace, name)
        )
        return result

    @asynccontextmanager
    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        inactivity_timeout: float = 70.0,
        connect_timeout: float = 10.0,
    ) -> AsyncIterator[AsyncIterator[WatchEvent]]:
        """Open a watch from `resource_version` with bookmarks; yields an iterator of events.

        The iterator ends when the server closes the stream (its `timeoutSeconds`); it raises `GoneError` when the
        resourceVersion has expired, `WatchStalledError` when nothing (not even a bookmark) arrived for
        `inactivity_timeout` seconds, and the typed API error for any other ERROR event. Nothing here is retried:
        a watcher loops anyway (re-watching from its last resourceVersion) and keeps its own backoff.
        """
        query = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": resource_version}
        if timeout_seconds is not None:
            query["timeoutSeconds"] = str(timeout_seconds)
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        target = resource.describe(namespace)
        url = self.base_url + resource.path(namespace) + "?" + urlencode(query)
        # sock_read also bounds the wait for the response headers: a request swallowed by a dead connection must
        # not hang the watcher before the stream's own inactivity check even starts.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, connect=connect_timeout, sock_read=inactivity_timeout
        )
        response = await self._open_stream(url, timeout, target, inactivity_timeout)
        try:
            yield self._events(response, inactivity_timeout, target)
        finally:
            response.release()

    async def _open_stream(
        self, url: str, limits: aiohttp.ClientTimeout, target: str, inactivity_timeout: float
    ) -> aiohttp.ClientResponse:
        headers = await self._headers(None)
        try:
            response = await self._session.get(url, headers=headers, timeout=limits)
        except TimeoutError as exc:
            self._count("<error>", "GET")
            raise errors.WatchStalledError(
                f"{target}: watch got no answer within {inactivity_timeout:g} s: {exc!r}"
            ) from exc
        except aiohttp.ClientConnectionError as exc:
            self._count("<error>", "GET")
            raise errors.TransportError(f"{target}: watch: {exc!r}") from exc
        self._count(str(response.status), "GET")
        if response.status == 200:
            return response
        data = await response.read()
        response.release()
        try:
            decoded: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            decoded = data
        raise errors.api_error(response.status, decoded, target, parse_retry_after(response.headers))

    async def _events(
        self, response: aiohttp.ClientResponse, inactivity_timeout: float, target: str
    ) -> AsyncIterator[WatchEvent]:
        content = response.content
        while True:
            try:
                async with asyncio.timeout(inactivity_timeout):
                    line = await content.readline()
            except TimeoutError:
                raise errors.WatchStalledError(
                    f"{target}: watch delivered nothing for {inactivity_timeout:g} s"
                ) from None
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                raise errors.TransportError(f"{target}: watch stream broke: {exc!r}") from exc
            if not line:
                return
            if line == b"\n":
                continue
            event = orjson.loads(line)
            kind = event.get("type", "")
            obj = event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 500)
                raise errors.api_error(code, obj, target)
            yield WatchEvent(kind, obj, line)
