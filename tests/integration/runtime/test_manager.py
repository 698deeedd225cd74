"""The manager on a real apiserver: leader election across processes (SIGKILL failover, SIGTERM drain with lease
release), the /metrics page, and /healthz and /readyz."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kpack_core.envtest import ControlPlane
from kpack_core.runtime.client import Client
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.informer import InformerOptions
from kpack_core.runtime.leaderelection import LeaderElectionConfig
from kpack_core.runtime.manager import Manager, ManagerOptions
from kpack_core.runtime.reconcile import Request, Result
from kpack_core.runtime.resource import CONFIGMAPS, EVENTS, LEASES, Resource
from tests.integration.runtime.conftest import kubeconfig_via
from tests.integration.runtime.proxy import FaultyProxy

ROOT = Path(__file__).resolve().parents[3]
LEASE_DURATION, RETRY_PERIOD = 4.0, 0.5


class Program:
    """One lease_program process."""

    def __init__(self, process: asyncio.subprocess.Process, identity: str) -> None:
        self.process = process
        self.identity = identity


def read_log(path: Path) -> list[tuple[str, str, float]]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        what, identity, at = line.split()
        entries.append((what, identity, float(at)))
    return entries


async def wait_until(predicate: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)


def assert_no_overlap(entries: list[tuple[str, str, float]]) -> None:
    """Between any two identities' reconciles, one's last `end` precedes the other's first `start`."""
    active: dict[str, float] = {}
    for what, identity, at in sorted(entries, key=lambda e: e[2]):
        if what == "start":
            others = [i for i in active if i != identity]
            assert not others, f"{identity} started reconciling at {at} while {others} were reconciling"
            active[identity] = at
        elif what == "end":
            active.pop(identity, None)


async def spawn(control_plane: ControlPlane, namespace: str, log_path: Path, identity: str, tmp_path: Path,
                reconcile_seconds: float = 0.1) -> Program:  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.runtime.lease_program",
        "--kubeconfig", str(control_plane.kubeconfig_path), "--namespace", namespace,
        "--identity", identity, "--log", str(log_path),
        "--lease-duration", str(LEASE_DURATION), "--renew-deadline", "3", "--retry-period", str(RETRY_PERIOD),
        "--reconcile-seconds", str(reconcile_seconds),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=(tmp_path / f"{identity}.err").open("wb"),
    )  # fmt: skip
    return Program(process, identity)


def starts(entries: list[tuple[str, str, float]], identity: str) -> list[float]:
    return [at for what, who, at in entries if what == "start" and who == identity]


async def test_sigkill_of_the_leader_fails_over_without_overlap(
    control_plane: ControlPlane, client: Client, namespace: str, tmp_path: Path
) -> None:
    await client.create(CONFIGMAPS, {"metadata": {"name": "work", "namespace": namespace}})
    log_path = tmp_path / "shared.log"
    first = await spawn(control_plane, namespace, log_path, "first", tmp_path)
    try:
        await wait_until(lambda: starts(read_log(log_path), "first"), 60, "the first manager to lead")
        second = await spawn(control_plane, namespace, log_path, "second", tmp_path)
        try:
            await asyncio.sleep(LEASE_DURATION + 2)  # the standby is up and watching, and must not lead
            assert starts(read_log(log_path), "second") == []
            first.process.send_signal(signal.SIGKILL)
            killed_at = time.time()
            await first.process.wait()
            await wait_until(lambda: starts(read_log(log_path), "second"), 30, "the standby to take over")
            entries = read_log(log_path)
            takeover = starts(entries, "second")[0] - killed_at
            # Lease duration from the standby's last observation of a renewal, plus up to one jittered retry period.
            assert takeover <= LEASE_DURATION + RETRY_PERIOD * 1.2 + 1.0, f"took over after {takeover:.2f} s"
            # The killed leader's reconcile in flight ended with the process.
            assert_no_overlap([*entries, ("end", "first", killed_at)])
            lease = await client.get(LEASES, "lease-test", namespace)
            assert lease["spec"]["holderIdentity"] == "second"
            assert lease["spec"]["leaseTransitions"] >= 1
        finally:
            second.process.kill()
            await second.process.wait()
    finally:
        if first.process.returncode is None:
            first.process.kill()
            await first.process.wait()


async def test_sigterm_drains_in_flight_work_and_releases_the_lease(
    control_plane: ControlPlane, client: Client, namespace: str, tmp_path: Path
) -> None:
    await client.create(CONFIGMAPS, {"metadata": {"name": "work", "namespace": namespace}})
    log_path = tmp_path / "shared.log"
    leader = await spawn(control_plane, namespace, log_path, "leader", tmp_path, reconcile_seconds=1.5)
    await wait_until(lambda: starts(read_log(log_path), "leader"), 60, "the leader to reconcile")
    standby = await spawn(control_plane, namespace, log_path, "standby", tmp_path)
    try:
        await asyncio.sleep(3)  # the standby is up, synced and trying to acquire
        seen = len(starts(read_log(log_path), "leader"))
        await wait_until(lambda: len(starts(read_log(log_path), "leader")) > seen, 10, "a fresh reconcile")
        in_flight_since = starts(read_log(log_path), "leader")[-1]
        leader.process.send_signal(signal.SIGTERM)
        terminated_at = time.time()
        assert await asyncio.wait_for(leader.process.wait(), 20) == 0
        entries = read_log(log_path)
        ends = [at for what, who, at in entries if what == "end" and who == "leader"]
        assert ends, "the in-flight reconcile did not finish"
        assert ends[-1] >= terminated_at, "the reconcile running at SIGTERM must finish after it"
        assert ends[-1] - in_flight_since >= 1.4
        assert len(starts(entries, "leader")) == len(ends), "no reconcile may start after SIGTERM and be cut off"
        # Released: the standby leads within about a retry period, not a lease duration.
        await wait_until(lambda: starts(read_log(log_path), "standby"), 10, "the standby to take over")
        takeover = starts(read_log(log_path), "standby")[0] - ends[-1]
        assert takeover < LEASE_DURATION - 1, f"took over after {takeover:.2f} s: the lease was not released"
        assert_no_overlap(read_log(log_path))
    finally:
        for program in (leader, standby):
            if program.process.returncode is None:
                program.process.kill()
                await program.process.wait()


class CountingReconciler:
    def __init__(self) -> None:
        self.calls = 0

    async def reconcile(self, request: Request) -> Result:
        self.calls += 1
        if request.name == "fails":
            raise RuntimeError("on purpose")
        return Result()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_metrics_page_has_the_controller_runtime_series(client: Client, namespace: str) -> None:
    election = LeaderElectionConfig("metrics-lease", namespace, lease_duration=4, renew_deadline=3, retry_period=0.5)
    options = ManagerOptions(
        metrics_bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0", leader_election=election
    )
    manager = Manager(client, options)
    controller = Controller("metrics-test", CountingReconciler(), max_concurrent_reconciles=2)
    controller.watch_for(manager.cache.informer(CONFIGMAPS, namespace=namespace))
    manager.add_controller(controller)
    await client.create(CONFIGMAPS, {"metadata": {"name": "fails", "namespace": namespace}})
    await client.create(CONFIGMAPS, {"metadata": {"name": "works", "namespace": namespace}})
    running = asyncio.create_task(manager.run())
    try:
        await wait_until(lambda: manager.health_port is not None and manager.cache.synced, 30, "sync")
        status, _ = await get(f"http://127.0.0.1:{manager.health_port}/readyz")
        assert status == 200
        await wait_until(lambda: controller.started, 30, "leadership")
        await asyncio.sleep(0.5)
        status, text = await get(f"http://127.0.0.1:{manager.metrics_port}/metrics")
        assert status == 200
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample.labels)
        expected = {
            "controller_runtime_reconcile_total": {"controller", "result"},
            "controller_runtime_reconcile_errors_total": {"controller"},
            "controller_runtime_terminal_reconcile_errors_total": {"controller"},
            "controller_runtime_reconcile_panics_total": {"controller"},
            "controller_runtime_reconcile_time_seconds_bucket": {"controller", "le"},
            "controller_runtime_active_workers": {"controller"},
            "controller_runtime_max_concurrent_reconciles": {"controller"},
            "workqueue_depth": {"name", "controller", "priority"},
            "workqueue_adds_total": {"name", "controller"},
            "workqueue_queue_duration_seconds_bucket": {"name", "controller", "le"},
            "workqueue_work_duration_seconds_bucket": {"name", "controller", "le"},
            "workqueue_unfinished_work_seconds": {"name", "controller"},
            "workqueue_longest_running_processor_seconds": {"name", "controller"},
            "workqueue_retries_total": {"name", "controller"},
            "rest_client_requests_total": {"code", "method", "host"},
            "leader_election_master_status": {"name"},
            "process_resident_memory_bytes": set(),
            "process_cpu_seconds_total": set(),
        }
        for name, labels in expected.items():
            assert name in samples, f"{name} missing from /metrics"
            assert any(set(s) == labels for s in samples[name]), f"{name} labels {samples[name]}"
        ours = [s for s in samples["controller_runtime_reconcile_total"] if s["controller"] == "metrics-test"]
        assert {s["result"] for s in ours} == {"success", "error", "requeue", "requeue_after"}
        assert {"name": "metrics-lease"} in samples["leader_election_master_status"]
        queue = [s for s in samples["workqueue_adds_total"] if s["name"] == "metrics-test"]
        assert queue == [{"name": "metrics-test", "controller": "metrics-test"}]
        histogram = samples["controller_runtime_reconcile_time_seconds_bucket"]
        buckets = [s["le"] for s in histogram if s["controller"] == "metrics-test"]
        assert buckets[0] == "0.005"
        assert buckets[-2:] == ["60.0", "+Inf"]
        assert len(buckets) == 41
    finally:
        manager.stop()
        assert await asyncio.wait_for(running, 30) == 0


async def test_healthz_fails_while_the_watch_is_broken(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    proxy = FaultyProxy("127.0.0.1", control_plane.port)
    path = kubeconfig_via(control_plane, proxy.port, tmp_path / "kubeconfig")
    async with proxy, await Client.from_kubeconfig(str(path)) as client:
        options = ManagerOptions(
            metrics_bind_address=None,
            health_probe_bind_address="127.0.0.1:0",
            watch_health_threshold=1.0,
            informer=InformerOptions(backoff_initial=0.1, backoff_max=0.5),
        )
        manager = Manager(client, options)
        controller = Controller("healthz-test", CountingReconciler())
        controller.watch_for(manager.cache.informer(CONFIGMAPS, namespace=namespace))
        manager.add_controller(controller)
        running = asyncio.create_task(manager.run())
        try:
            await wait_until(lambda: manager.health_port is not None and manager.cache.synced, 30, "sync")
            url = f"http://127.0.0.1:{manager.health_port}"
            assert await get(f"{url}/healthz") == (200, "ok")
            proxy.sever()
            await asyncio.sleep(0.3)
            deadline = time.monotonic() + 30
            while (await get(f"{url}/healthz"))[0] == 200:
                assert time.monotonic() < deadline, "/healthz stayed ok with the watch broken"
                await asyncio.sleep(0.2)
            status, text = await get(f"{url}/healthz?verbose")
            assert status == 500
            assert "[-]watches failed" in text
            assert "configmaps" in text
            assert (await get(f"{url}/healthz/watches"))[0] == 500
            assert (await get(f"{url}/healthz?exclude=watches"))[0] == 200
            proxy.restore()
            deadline = time.monotonic() + 30
            while (await get(f"{url}/healthz"))[0] != 200:
                assert time.monotonic() < deadline, "/healthz did not recover with the watch"
                await asyncio.sleep(0.2)
        finally:
            manager.stop()
            assert await asyncio.wait_for(running, 30) == 0


async def test_a_leader_that_cannot_renew_stops_at_once_and_exits_non_zero(
    control_plane: ControlPlane, client: Client, namespace: str, tmp_path: Path
) -> None:
    proxy = FaultyProxy("127.0.0.1", control_plane.port)
    path = kubeconfig_via(control_plane, proxy.port, tmp_path / "kubeconfig")
    election = LeaderElectionConfig(
        "cut-off", namespace, identity="cut-off-leader", lease_duration=4, renew_deadline=2, retry_period=0.5
    )
    async with proxy, await Client.from_kubeconfig(str(path)) as proxied:
        options = ManagerOptions(metrics_bind_address=None, leader_election=election)
        manager = Manager(proxied, options)
        controller = Controller("cut-off", CountingReconciler())
        controller.watch_for(manager.cache.informer(CONFIGMAPS, namespace=namespace))
        manager.add_controller(controller)
        running = asyncio.create_task(manager.run())
        await wait_until(lambda: controller.started, 30, "leadership")
        proxy.sever()
        severed_at = time.monotonic()
        assert await asyncio.wait_for(running, 30) == 1
        stopped_after = time.monotonic() - severed_at
        # It gives up within the renew deadline (plus a retry period and a request timeout's slack), strictly
        # before the lease could be considered expired by a standby.
        assert stopped_after < election.lease_duration + 2, f"stopped {stopped_after:.1f} s after the cut"
        assert not controller.started
        lease = await client.get(LEASES, "cut-off", namespace)
        assert lease["spec"]["holderIdentity"] == "cut-off-leader", "a lost lease must not be released"


class EventingReconciler:
    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.recorder = manager.event_recorder("eventing-test")

    async def reconcile(self, request: Request) -> Result:
        obj = self.manager.cache.get(CONFIGMAPS, request.name, request.namespace)
        if obj is not None:
            self.recorder.event(obj, "Normal", "Seen", f"reconciled {request}")
        return Result()


async def test_event_recorders_run_with_the_manager(client: Client, namespace: str) -> None:
    manager = Manager(client, ManagerOptions(metrics_bind_address=None))
    controller = Controller("eventing-test", EventingReconciler(manager))
    controller.watch_for(manager.cache.informer(CONFIGMAPS, namespace=namespace))
    manager.add_controller(controller)
    await client.create(CONFIGMAPS, {"metadata": {"name": "noticed", "namespace": namespace}})
    running = asyncio.create_task(manager.run())
    await wait_until(lambda: controller.started, 30, "start")
    await asyncio.sleep(0.5)
    manager.stop()
    assert await asyncio.wait_for(running, 30) == 0
    events = await client.list(EVENTS, namespace)
    seen = [e for e in events.items if e["involvedObject"]["name"] == "noticed"]
    assert [e["reason"] for e in seen] == ["Seen"]
    assert seen[0]["source"]["component"] == "eventing-test"


async def test_shutdown_hooks_run_after_the_controllers_even_when_one_fails(client: Client, namespace: str) -> None:
    manager = Manager(client, ManagerOptions(metrics_bind_address=None))
    controller = Controller("hooked", EventingReconciler(manager))
    controller.watch_for(manager.cache.informer(CONFIGMAPS, namespace=namespace))
    manager.add_controller(controller)
    closed: list[str] = []

    async def broken() -> None:
        closed.append(f"broken, controller running: {controller.started}")
        raise RuntimeError("cannot close")

    async def pool() -> None:
        closed.append("pool")

    manager.on_shutdown(broken)
    manager.on_shutdown(pool)
    running = asyncio.create_task(manager.run())
    await wait_until(lambda: controller.started, 30, "start")
    assert closed == []
    manager.stop()
    assert await asyncio.wait_for(running, 30) == 0  # a failing hook is logged, not fatal
    assert closed == ["broken, controller running: False", "pool"]


async def test_not_ready_until_synced_and_a_cache_that_never_syncs_fails_the_start(
    client: Client, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = Resource("nope.kpack.io", "v1", "nopes", "Nope")
    options = ManagerOptions(
        metrics_bind_address=None,
        health_probe_bind_address="127.0.0.1:0",
        cache_sync_timeout=3,
        informer=InformerOptions(backoff_initial=0.1, backoff_max=0.5),
    )
    manager = Manager(client, options)
    controller = Controller("never-synced", CountingReconciler())
    controller.watch_for(manager.cache.informer(missing, namespace=namespace))
    manager.add_controller(controller)
    running = asyncio.create_task(manager.run())
    await wait_until(lambda: manager.health_port is not None, 10, "the probe server")
    status, text = await get(f"http://127.0.0.1:{manager.health_port}/readyz?verbose")
    assert status == 500
    assert "caches not synced: nopes.nope.kpack.io" in text
    assert await asyncio.wait_for(running, 30) == 1
    assert not controller.started
    assert "did not sync within 3 s" in capsys.readouterr().out
