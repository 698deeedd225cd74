"""configure_logging: JSON and key=value output, the format choice, redaction of secrets, the reconcile keys, stdlib
logging through the same renderer, and calling it twice."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog

from kpack_core.runtime.log import REDACTED, bind_reconcile, configure_logging, is_secret_key


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """configure_logging changes process-wide state: put the root logger and structlog back afterwards."""
    monkeypatch.delenv("KPACK_LOG_FORMAT", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    kubernetes_level = logging.getLogger("kubernetes_asyncio").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("kubernetes_asyncio").setLevel(kubernetes_level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_is_one_object_per_line_with_the_fixed_keys_first() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    structlog.get_logger("kpack.test").info("image resolved", image="team/app", attempt=2)

    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert list(entry)[:4] == ["timestamp", "level", "logger", "event"]
    assert entry | {"timestamp": None} == {
        "timestamp": None,
        "level": "info",
        "logger": "kpack.test",
        "event": "image resolved",
        "image": "team/app",
        "attempt": 2,
    }
    assert entry["timestamp"].endswith("Z")
    stamp = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0)


def test_text_is_key_value_lines() -> None:
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    structlog.get_logger("kpack.test").warning("build failed", build="app-build-1", ok=False)

    [line] = stream.getvalue().splitlines()
    assert line.startswith("timestamp=")
    assert ' level=warning logger=kpack.test event="build failed" build=app-build-1 ok=false' in line


def test_exceptions_are_rendered_on_the_same_line() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    try:
        raise RuntimeError("it broke")
    except RuntimeError:
        structlog.get_logger("kpack.test").exception("reconcile failed")

    [entry] = json_lines(stream)
    assert entry["level"] == "error"
    assert "RuntimeError: it broke" in entry["exception"]


@pytest.mark.parametrize(
    ("env", "stream", "expect_json"),
    [
        ("json", Terminal(), True),
        ("text", io.StringIO(), False),
        ("TEXT", io.StringIO(), False),
        (None, Terminal(), False),
        (None, io.StringIO(), True),
    ],
)
def test_format_follows_the_environment_then_the_terminal(
    monkeypatch: pytest.MonkeyPatch, env: str | None, stream: io.StringIO, expect_json: bool
) -> None:
    if env is not None:
        monkeypatch.setenv("KPACK_LOG_FORMAT", env)
    configure_logging(stream=stream)
    structlog.get_logger("kpack.test").info("hello")

    assert stream.getvalue().startswith("{") is expect_json


def test_explicit_format_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPACK_LOG_FORMAT", "text")
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    structlog.get_logger("kpack.test").info("hello")

    assert json_lines(stream)[0]["event"] == "hello"


def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging(level="verbose", stream=io.StringIO())
    monkeypatch.setenv("KPACK_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError, match="KPACK_LOG_FORMAT"):
        configure_logging(stream=io.StringIO())


def test_level_filters_structlog_and_stdlib_alike() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="warning", stream=stream)
    structlog.get_logger("kpack.test").info("not shown")
    logging.getLogger("aiohttp.client").info("not shown either")
    structlog.get_logger("kpack.test").warning("shown")

    assert [e["event"] for e in json_lines(stream)] == ["shown"]


# -- redaction ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "bearer_token",
        "accessToken",
        "password",
        "secret",
        "client_secret",
        "authorization",
        "Authorization",
        "privateKey",
        "ssh-privatekey",
        ".dockerconfigjson",
        ".dockercfg",
        "tls.key",
        "client-key-data",
        "apiKey",
        "credentials",
        "auth",
    ],
)
def test_secret_looking_keys_are_redacted_at_any_depth(key: str) -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    headers = {key: "s3cr3t-value", "Accept": "application/json"}
    structlog.get_logger("kpack.test").info("request", **{key: "s3cr3t-value"}, headers=headers, items=[headers])

    [entry] = json_lines(stream)
    assert "s3cr3t-value" not in stream.getvalue()
    assert entry[key] == REDACTED
    assert entry["headers"] == {key: REDACTED, "Accept": "application/json"}
    assert entry["items"] == [{key: REDACTED, "Accept": "application/json"}]
    assert headers[key] == "s3cr3t-value"  # the logged object itself is untouched


@pytest.mark.parametrize("key", ["secretName", "secret_ref", "secretRef", "tokenPath", "serviceAccountName", "reason"])
def test_keys_that_name_or_locate_a_secret_are_kept(key: str) -> None:
    assert not is_secret_key(key)


def test_secret_objects_show_their_keys_but_not_their_values() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "registry-creds"},
        "type": "kubernetes.io/basic-auth",
        "data": {"username": "dXNlcg==", "GITHUB_PAT": "Z2hwX3NlY3JldA=="},
        "stringData": {"notes": "plain s3cr3t"},
    }
    structlog.get_logger("kpack.test").info("loaded", obj=secret)

    [entry] = json_lines(stream)
    assert entry["obj"]["data"] == {"username": REDACTED, "GITHUB_PAT": REDACTED}
    assert entry["obj"]["stringData"] == {"notes": REDACTED}
    assert entry["obj"]["metadata"] == {"name": "registry-creds"}


def test_credentials_inside_strings_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    log = structlog.get_logger("kpack.test")
    log.info("GET failed: Authorization: Bearer eyJhbGciOi.payload.sig rejected")
    log.info("clone", url="https://user:ghp_s3cr3t@github.com/org/repo.git")
    log.info("auth header", header="Basic dXNlcjpwYXNz")
    try:
        raise ConnectionError("with headers {'Authorization': 'Bearer tok3n'}")
    except ConnectionError:
        log.exception("request failed")

    output = stream.getvalue()
    for secret in ("eyJhbGciOi", "ghp_s3cr3t", "dXNlcjpwYXNz", "tok3n"):
        assert secret not in output
    assert "https://user:[REDACTED]@github.com/org/repo.git" in output
    assert "Bearer [REDACTED]" in output


# -- reconcile binding ----------------------------------------------------------------------------------------------


async def test_bind_reconcile_puts_the_controller_runtime_keys_on_every_line() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    log = structlog.get_logger("kpack.test")

    async def child() -> None:
        log.info("in a task started by the reconcile")

    with bind_reconcile("image-controller", "team", "app", "7f0c"):
        log.info("reconciling")
        logging.getLogger("aiohttp.client").info("stdlib line")
        await asyncio.create_task(child())
        with bind_reconcile("image-controller", "team", "other", "8a1d"):
            log.info("nested")
        log.info("restored")
    log.info("outside")

    entries = json_lines(stream)
    keys = ("controller", "namespace", "name", "reconcileID")
    bound = [tuple(e.get(k) for k in keys) for e in entries]
    this = ("image-controller", "team", "app", "7f0c")
    assert bound == [this, this, this, ("image-controller", "team", "other", "8a1d"), this, (None,) * 4]


# -- stdlib and idempotence -----------------------------------------------------------------------------------------


def test_stdlib_logging_goes_through_the_same_renderer() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    logging.getLogger("aiohttp.client").warning("retrying %s", "GET /api", extra={"password": "hunter2"})

    [entry] = json_lines(stream)
    assert entry["logger"] == "aiohttp.client"
    assert entry["level"] == "warning"
    assert entry["event"] == "retrying GET /api"
    assert entry["password"] == REDACTED
    assert entry["timestamp"].endswith("Z")


def test_kubernetes_asyncio_never_logs_response_bodies() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="debug", stream=stream)
    logging.getLogger("kubernetes_asyncio.client.rest").debug("response body: %s", '{"data": {"x": "s3cr3t"}}')
    structlog.get_logger("kpack.test").debug("debug is on")

    assert [e["event"] for e in json_lines(stream)] == ["debug is on"]


def test_configuring_twice_neither_duplicates_lines_nor_keeps_the_old_format() -> None:
    first, second = io.StringIO(), io.StringIO()
    log = structlog.get_logger("kpack.test")
    configure_logging(json=True, stream=first)
    log.info("one")
    configure_logging(json=False, stream=second)
    configure_logging(json=False, stream=second)
    log.info("two")
    logging.getLogger("aiohttp").info("three")

    assert [e["event"] for e in json_lines(first)] == ["one"]
    lines = second.getvalue().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("timestamp=") for line in lines)
    ours = [h for h in logging.getLogger().handlers if h.get_name() == "kpack-structlog"]
    assert len(ours) == 1
