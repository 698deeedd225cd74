"""Blob source resolution: the archive URL is checked, not fetched (kpack 0.4.0 made no network access here).

A blob is never polled and never changes its resolution; the build pod downloads it. The URL must be absolute
http or https with a host: the build pod fetches it with an HTTP client, and anything else would fail there, later
and less clearly.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from kpack_core.source.errors import InvalidSourceError
from kpack_core.source.resolved import ResolvedBlob
from kpack_core.source.urls import redact_url

BLOB_URL_FIELD = "spec.source.blob.url"
"""The spec field a blob URL comes from, named in validation errors."""


def resolve_blob(url: str, sub_path: str | None = None, *, field: str = BLOB_URL_FIELD) -> ResolvedBlob:
    """The blob source, once its URL is a usable http(s) URL; else `InvalidSourceError` naming `field`."""
    shown = redact_url(url)
    if not url or url != url.strip() or any(ord(char) < 0x21 or char == "\x7f" for char in url):
        raise InvalidSourceError(field, shown, "empty, or contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise InvalidSourceError(field, shown, str(exc)) from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidSourceError(field, shown, "only http and https URLs can be downloaded")
    if not parts.hostname:
        raise InvalidSourceError(field, shown, "no host")
    return ResolvedBlob(url=url, sub_path=sub_path)
