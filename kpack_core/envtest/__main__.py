"""`python -m kpack_core.envtest up|down|serve --dir DIR`: a local control plane for people and scripts.

`up` starts `serve` as a background process in its own session, waits until the control plane, registry and git
server are ready, prints the env file and returns. `down` stops that process, which stops its servers, and then
makes sure nothing of its process group is left. `serve` runs in the foreground until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kpack_core.envtest.environment import Environment
from kpack_core.envtest.process import tail

PID_FILE = "envtest.pid"
READY_FILE = "ready"
LOG_FILE = "envtest.log"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _read_pid(directory: Path) -> int | None:
    try:
        return int((directory / PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


async def _serve(directory: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Environment(directory) as environment:
        (directory / READY_FILE).write_text(environment.env_path.read_text())
        print(f"envtest: ready; {environment.env_path}", flush=True)
        await stop.wait()
        (directory / READY_FILE).unlink(missing_ok=True)
    print("envtest: stopped", flush=True)


def serve(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / PID_FILE).write_text(f"{os.getpid()}\n")
    try:
        asyncio.run(_serve(directory))
    finally:
        (directory / PID_FILE).unlink(missing_ok=True)
        (directory / READY_FILE).unlink(missing_ok=True)
    return 0


def up(directory: Path, timeout: float) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    pid = _read_pid(directory)
    if pid is not None and _alive(pid):
        print(f"envtest: already running in {directory} (pid {pid}); run 'down' first", file=sys.stderr)
        return 1
    (directory / READY_FILE).unlink(missing_ok=True)
    log_path = directory / LOG_FILE
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kpack_core.envtest", "serve", "--dir", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not (directory / READY_FILE).exists():
        if process.poll() is not None:
            print(
                f"envtest: failed to start (exit {process.returncode}); {log_path} ends:\n{tail(log_path, 60)}",
                file=sys.stderr,
            )
            return 1
        if time.monotonic() > deadline:
            _stop_group(process.pid, grace=10)
            print(
                f"envtest: not ready within {timeout:.0f} s; {log_path} ends:\n{tail(log_path, 60)}",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.2)
    print((directory / "env").read_text(), end="")
    return 0


def _stop_group(pid: int, grace: float) -> None:
    """SIGTERM the serve process, wait `grace` seconds, then SIGKILL whatever is left of its group."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while (_alive(pid) or _group_alive(pid)) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def down(directory: Path, grace: float) -> int:
    pid = _read_pid(directory)
    if pid is None or not _alive(pid):
        print(f"envtest: nothing running in {directory}")
        return 0
    _stop_group(pid, grace)
    print("envtest: stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kpack_core.envtest", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "start everything in the background and wait until ready"),
        ("down", "stop what 'up' started"),
        ("serve", "run everything in the foreground until SIGTERM"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--dir", required=True, type=Path, help="state directory (kubeconfig, env, data)")
        command.add_argument("--timeout", type=float, default=180.0, help="seconds to wait (up, down)")
    args = parser.parse_args(argv)
    directory: Path = args.dir.resolve()
    if args.command == "up":
        return up(directory, args.timeout)
    if args.command == "down":
        return down(directory, args.timeout)
    return serve(directory)


if __name__ == "__main__":
    sys.exit(main())
