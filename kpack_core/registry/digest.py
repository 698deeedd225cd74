"""Content digests: `sha256:<hex>` over the exact bytes, hashed off the event loop when the blob is large."""

from __future__ import annotations

import asyncio
import hashlib

THREAD_THRESHOLD = 4 * 1024 * 1024
"""Blobs at least this large are hashed in a worker thread so the event loop keeps serving other tasks."""


def sha256_digest(data: bytes) -> str:
    """`sha256:<64 hex>` of `data` (synchronous; for small payloads such as manifests and configs)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def compute_digest(data: bytes) -> str:
    """`sha256:<64 hex>` of `data`; hashlib releases the GIL on large buffers, so a thread really runs in parallel."""
    if len(data) >= THREAD_THRESHOLD:
        return await asyncio.to_thread(sha256_digest, data)
    return sha256_digest(data)
