"""A manager process for the leader-election tests: run two of these on one Lease and kill or stop them.

Its controller reconciles every ConfigMap of a namespace and asks to be requeued at once, so the leader reconciles
continuously; each reconcile appends `start <identity> <time>` and `end <identity> <time>` to a shared log file
(O_APPEND writes of one line are atomic), which lets the test prove that two leaders never overlapped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from kpack_core.runtime.client import Client
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.informer import InformerOptions
from kpack_core.runtime.leaderelection import LeaderElectionConfig
from kpack_core.runtime.log import configure_logging
from kpack_core.runtime.manager import Manager, ManagerOptions
from kpack_core.runtime.reconcile import Request, Result
from kpack_core.runtime.resource import CONFIGMAPS


class LoggingReconciler:
    def __init__(self, identity: str, log_path: str, duration: float) -> None:
        self.identity = identity
        self.fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.duration = duration

    def write(self, what: str) -> None:
        os.write(self.fd, f"{what} {self.identity} {time.time():.6f}\n".encode())

    async def reconcile(self, request: Request) -> Result:
        self.write("start")
        await asyncio.sleep(self.duration)
        self.write("end")
        return Result(requeue_after=0.05)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--lease-duration", type=float, default=4.0)
    parser.add_argument("--renew-deadline", type=float, default=3.0)
    parser.add_argument("--retry-period", type=float, default=0.5)
    parser.add_argument("--reconcile-seconds", type=float, default=0.1)
    args = parser.parse_args()
    configure_logging(json=True)
    client = await Client.from_kubeconfig(args.kubeconfig)
    election = LeaderElectionConfig(
        name="lease-test",
        namespace=args.namespace,
        identity=args.identity,
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
    )
    options = ManagerOptions(
        metrics_bind_address=None,
        leader_election=election,
        graceful_shutdown_timeout=10.0,
        informer=InformerOptions(backoff_initial=0.1, backoff_max=1.0),
    )
    manager = Manager(client, options)
    reconciler = LoggingReconciler(args.identity, args.log, args.reconcile_seconds)
    controller = Controller("lease-test", reconciler)
    controller.watch_for(manager.cache.informer(CONFIGMAPS, namespace=args.namespace))
    manager.add_controller(controller)
    manager.install_signal_handlers()
    try:
        return await manager.run()
    finally:
        reconciler.write("exit")
        await client.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
