"""Health and readiness endpoints with controller-runtime's behaviour, and the watch-health check.

Named checks are aggregated at `/healthz` and `/readyz`: 200 `ok`, or 500 with one `[+]name ok` / `[-]name failed:
reason` line per check; `?verbose` lists the checks on success too, `?exclude=<name>` skips one, and each check is
also served alone at `/<endpoint>/<name>`. No checks registered means ok.

`watch_health` is the check kopf users wished for ("the operator stopped reacting"): it fails while an informer's
list/watch has kept failing, or the apiserver has been silent to it, for longer than a threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web

from kpack_core.runtime.clock import Clock
from kpack_core.runtime.informer import Informer

Check = Callable[[], str | None]
"""A health check: None when healthy, else the reason it is not."""


class Checks:
    """An ordered set of named checks served under one endpoint."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        if name in self._checks:
            raise ValueError(f"a {self.endpoint} check named {name!r} already exists")
        self._checks[name] = check

    def run(self, exclude: Iterable[str] = ()) -> list[tuple[str, str | None]]:
        excluded = set(exclude)
        results = []
        for name, check in self._checks.items():
            if name in excluded:
                continue
            try:
                results.append((name, check()))
            except Exception as exc:  # a broken check reports, it does not break the endpoint
                results.append((name, f"check raised {type(exc).__name__}: {exc}"))
        return results

    def routes(self) -> list[web.RouteDef]:
        return [web.get(f"/{self.endpoint}", self._all), web.get(f"/{self.endpoint}/{{name}}", self._one)]

    async def _all(self, request: web.Request) -> web.Response:
        results = self.run(request.query.getall("exclude", []))
        failed = any(reason is not None for _, reason in results)
        if not failed and "verbose" not in request.query:
            return web.Response(text="ok")
        lines = [f"[+]{name} ok" if reason is None else f"[-]{name} failed: {reason}" for name, reason in results]
        verdict = f"{self.endpoint} check failed" if failed else f"{self.endpoint} check passed"
        return web.Response(text="\n".join([*lines, verdict]) + "\n", status=500 if failed else 200)

    async def _one(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        check = self._checks.get(name)
        if check is None:
            return web.Response(text=f"no {self.endpoint} check named {name!r}\n", status=404)
        try:
            reason = check()
        except Exception as exc:
            reason = f"check raised {type(exc).__name__}: {exc}"
        if reason is None:
            return web.Response(text="ok")
        return web.Response(text=f"[-]{name} failed: {reason}\n", status=500)


def watch_health(informers: Callable[[], Iterable[Informer]], threshold: float, clock: Clock) -> Check:
    """Fails while any informer's watch has been broken, or heard nothing, for more than `threshold` seconds."""

    def check() -> str | None:
        now = clock.now()
        problems = []
        for informer in informers():
            if not informer.running:
                problems.append(f"informer for {informer.name} is not running")
            elif informer.failing_since is not None and now - informer.failing_since > threshold:
                problems.append(
                    f"list/watch of {informer.name} failing for {now - informer.failing_since:.0f} s: "
                    f"{informer.last_error}"
                )
            elif now - informer.last_activity > threshold:
                problems.append(f"watch of {informer.name} silent for {now - informer.last_activity:.0f} s")
        return "; ".join(problems) or None

    return check


def caches_synced(informers: Callable[[], Iterable[Informer]]) -> Check:
    """Fails until every informer has synced its first list."""

    def check() -> str | None:
        waiting = [informer.name for informer in informers() if not informer.has_synced]
        return f"caches not synced: {', '.join(waiting)}" if waiting else None

    return check
