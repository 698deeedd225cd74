"""One measurement of `bench_informer_memory`, run as a fresh interpreter so variants cannot contaminate each other.

    python informer_memory_probe.py --variant informer|dict --kubeconfig PATH --resource '[group, version, plural,
        kind]' --namespace NS --page-size N --expected N --watch-probe-object NAME [--tracemalloc] [--diagnose]

Imports everything and warms up (a client, one small list), collects garbage, trims the C heap and reads its RSS;
then loads every object of the resource through a real paginated list and watch — `informer`: our `Informer` (its
`Store` keeps compact JSON bytes plus the default indexes); `dict`: a plain cache doing the same list (same page size)
and watch but keeping the parsed dict of every object — and proves the watch open by patching one object and waiting
for the change to arrive through it. Then it collects garbage, trims the heap again and reads RSS again. It prints
one line `PROBE-RESULT <json>` on stdout; everything else goes to stderr.

The result's `details` split the growth per object: Python-level accounting of what the cache holds, the growth of
glibc's in-use heap, and the remaining anonymous growth (mostly pymalloc arenas). For investigation only (not used by
the benchmark): `--diagnose` prints RSS by mapping and glibc/pymalloc statistics before and after the load;
`--tracemalloc` prints the largest allocation sites still alive after the load (tracing inflates RSS itself).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from kpack_core.runtime.client import Client, WatchEvent
from kpack_core.runtime.informer import Informer, InformerOptions
from kpack_core.runtime.resource import Resource
from kpack_core.runtime.store import JSON, object_key

RESULT_PREFIX = "PROBE-RESULT "
WATCH_PROBE_ANNOTATION = "bench.kpack.io/watch-probe"

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: no malloc_trim
    _LIBC = None


def trim_heap() -> None:
    """Return free C-heap memory to the OS (glibc `malloc_trim(0)`).

    Called before both readings in both variants: the transient memory of the list pages is freed by then, but glibc
    keeps freed chunks mapped; trimming makes the readings count what the cache keeps, not what the load left free.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def memory() -> tuple[int, int]:
    """(RSS, anonymous RSS) in bytes, from /proc/self/status."""
    values: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values.get("RssAnon", 0)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_stats() -> dict[str, int]:
    """glibc's view (mallinfo2, all arenas): heap bytes from the system, mmapped blocks, in use and free heap bytes,
    and `allocated` = in use + mmapped."""
    if _LIBC is None or not hasattr(_LIBC, "mallinfo2"):
        return {}
    _LIBC.mallinfo2.restype = _MallInfo2
    info = _LIBC.mallinfo2()
    return {
        "heap": info.arena,
        "mmapped": info.hblkhd,
        "in_use": info.uordblks,
        "free": info.fordblks,
        "allocated": info.uordblks + info.hblkhd,
    }


def mappings() -> dict[str, int]:
    """RSS by kind of mapping (/proc/self/smaps): the brk heap, 1 MiB anonymous maps (pymalloc's arenas), other
    anonymous maps (glibc thread arenas, large mmapped blocks), files."""
    totals: dict[str, int] = {"heap": 0, "anon-1MiB": 0, "anon-other": 0, "file": 0}
    kind = "file"
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                path = fields[5] if len(fields) > 5 else ""
                if path == "[heap]":
                    kind = "heap"
                elif path and not path.startswith("["):
                    kind = "file"
                else:
                    kind = "anon-1MiB" if end - start == 2**20 else "anon-other"
            elif fields[0] == "Rss:":
                totals[kind] += int(fields[1]) * 1024
    return totals


def diagnose(label: str) -> None:
    """--diagnose: where RSS is, by mapping and by allocator, on stderr."""
    rss = {k: f"{v / 2**20:.1f}" for k, v in mappings().items()}
    glibc = {k: f"{v / 2**20:.1f}" for k, v in malloc_stats().items() if k != "allocated"}
    print(f"[{label}] RSS MiB by mapping {rss}; glibc malloc MiB {glibc}", file=sys.stderr, flush=True)
    sys._debugmallocstats()


def settle() -> tuple[int, int]:
    gc.collect()
    trim_heap()
    return memory()


def deep_size(obj: Any) -> int:
    """Bytes of Python objects reachable through dicts and lists (each object counted once)."""
    seen: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


class DictCache:
    """The baseline: what a plain cache does — parsed objects by key, no indexes — over the same list and watch."""

    def __init__(self, client: Client, resource: Resource, namespace: str | None, page_size: int) -> None:
        self.client, self.resource, self.namespace, self.page_size = client, resource, namespace, page_size
        self.items: dict[str, JSON] = {}
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def wait_for_sync(self, within: float) -> None:
        """Wait for the list to be in; raise what the list raised, or TimeoutError after `within` seconds."""
        assert self._task is not None, "start() first"
        synced = asyncio.create_task(self.synced.wait())
        try:
            await asyncio.wait({self._task, synced}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            synced.cancel()
        if self._task.done():
            self._task.result()  # raises the failure
            raise RuntimeError("the dict cache stopped before syncing")
        if not self.synced.is_set():
            raise TimeoutError(f"the dict cache did not sync within {within:g} s")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        version = ""
        async for page, page_version in self.client.list_pages(self.resource, self.namespace, limit=self.page_size):
            version = page_version
            for obj in page:
                self.items[object_key(obj)] = obj
        self.synced.set()
        while True:
            async with self.client.watch(
                self.resource, self.namespace, resource_version=version, timeout_seconds=600
            ) as events:
                async for event in events:
                    self._apply(event)
                    version = str((event.object.get("metadata") or {}).get("resourceVersion") or version)

    def _apply(self, event: WatchEvent) -> None:
        if event.type in ("ADDED", "MODIFIED"):
            self.items[object_key(event.object)] = event.object
        elif event.type == "DELETED":
            self.items.pop(object_key(event.object), None)

    def get(self, name: str, namespace: str | None) -> JSON | None:
        return self.items.get(f"{namespace}/{name}" if namespace else name)

    def details(self) -> dict[str, int]:
        """Python-level accounting, bytes per object (the `details` of the result)."""
        return {"Python objects (getsizeof, deep)": round(deep_size(self.items) / max(1, len(self.items)))}


def informer_details(informer: Informer) -> dict[str, int]:
    """Where the informer's memory is by Python-level accounting, bytes per object. Reads the store's private
    attributes (diagnostics only), and reports nothing of what it cannot find should they change."""
    store = informer.store
    count = max(1, len(store))
    details: dict[str, int] = {}
    items = getattr(store, "_items", None)
    if isinstance(items, dict):
        details["stored bytes objects (getsizeof)"] = round(sum(map(sys.getsizeof, items.values())) / count)
        details["keys and their dict"] = round((sum(map(sys.getsizeof, items)) + sys.getsizeof(items)) / count)
    indices = getattr(store, "_indices", None)
    if isinstance(indices, dict):
        for name, values in indices.items():
            size = sys.getsizeof(values) + sum(sys.getsizeof(v) + sys.getsizeof(k) for v, k in values.items())
            details[f"index {name}"] = round(size / count)
    return details


async def wait_until(predicate: Callable[[], bool], within: float, what: str) -> None:
    """Poll `predicate` every 50 ms; TimeoutError naming `what` after `within` seconds."""
    for _ in range(int(within / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no {what} within {within:g} s")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    group, version, plural, kind = json.loads(args.resource)
    resource = Resource(group, version, plural, kind)
    namespace: str = args.namespace
    client = await Client.from_kubeconfig(args.kubeconfig)
    try:
        # Warm-up: TLS session, aiohttp, orjson and the code paths of a list, before the first reading.
        await client.request("GET", resource.path(namespace), query={"limit": "1"})
        await client.get(resource, args.watch_probe_object, namespace)
        rss_before, anon_before = settle()
        malloc_before = malloc_stats()
        if args.diagnose:
            diagnose("before")
        if args.tracemalloc:
            tracemalloc.start(12)
        started = time.monotonic()

        cache: Informer | DictCache
        if args.variant == "informer":
            cache = Informer(client, resource, namespace=namespace, options=InformerOptions(page_size=args.page_size))
            cache.start()
            await cache.wait_for_sync(300)
        else:
            cache = DictCache(client, resource, namespace, args.page_size)
            cache.start()
            await cache.wait_for_sync(300)

        # Prove the watch open: a change made after the list must arrive through it.
        marker = f"{args.variant}-{os.getpid()}-{time.time_ns()}"
        await client.patch(
            resource,
            args.watch_probe_object,
            {"metadata": {"annotations": {WATCH_PROBE_ANNOTATION: marker}}},
            namespace=namespace,
        )

        def seen() -> bool:
            obj = cache.get(args.watch_probe_object, namespace)
            return obj is not None and (obj["metadata"].get("annotations") or {}).get(WATCH_PROBE_ANNOTATION) == marker

        await wait_until(seen, 60, "probe patch through the watch")
        load_seconds = time.monotonic() - started

        if args.tracemalloc:
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
            for stat in snapshot.statistics("traceback")[:8]:
                print(f"{stat.size / 2**20:.1f} MiB in {stat.count} blocks", file=sys.stderr)
                for line in stat.traceback.format()[-8:]:
                    print("   ", line, file=sys.stderr)
        rss_after, anon_after = settle()
        malloc_after = malloc_stats()
        if args.diagnose:
            diagnose("after")

        if isinstance(cache, Informer):
            objects = len(cache.store)
            json_bytes = cache.store.size_bytes
            details = informer_details(cache)
        else:
            objects = len(cache.items)
            json_bytes = sum(len(orjson.dumps(obj)) for obj in cache.items.values())
            details = cache.details()
        if malloc_before and malloc_after:
            # Anonymous growth split into the C heap (glibc: big blocks such as stored JSON, large dict tables) and
            # the rest, which is mostly pymalloc arenas (objects of at most 512 bytes, and the free pools an arena
            # keeps while any block in it lives).
            malloc_growth = malloc_after["allocated"] - malloc_before["allocated"]
            details["C heap growth (glibc in use)"] = round(malloc_growth / max(1, objects))
            details["other anonymous growth (pymalloc arenas)"] = round(
                (anon_after - anon_before - malloc_growth) / max(1, objects)
            )
        await cache.stop()
    finally:
        await client.close()
    return {
        "variant": args.variant,
        "objects": objects,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "anon_before": anon_before,
        "anon_after": anon_after,
        "json_bytes": json_bytes,
        "load_seconds": round(load_seconds, 2),
        "details": details,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=["informer", "dict"], required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--resource", required=True, help="JSON list: [group, version, plural, kind]")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--watch-probe-object", required=True)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--diagnose", action="store_true", help="print RSS by mapping and allocator stats")
    return parser.parse_args(argv)


if __name__ == "__main__":
    # Logs go to stderr so stdout carries only the result line.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    arguments = parse_args()
    result = asyncio.run(main(arguments))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    sys.exit(0 if result["objects"] == arguments.expected else 1)
