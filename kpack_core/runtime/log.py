"""The logging set-up of every kpack process: structlog and the stdlib `logging` through one renderer.

Production writes one JSON object per line (`timestamp` ISO 8601 UTC, `level`, `logger`, `event`, then the bound
keys); a terminal gets logfmt `key=value` lines. Libraries that log through the stdlib (aiohttp,
kubernetes_asyncio) come out in the same format with the same context. A redaction step runs last on every line,
so values under secret-looking keys (tokens, passwords, docker configs, private keys) and credentials embedded in
strings never reach the output. `bind_reconcile` gives every line of a reconcile the keys controller-runtime uses.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LOG_FORMAT_ENV = "KPACK_LOG_FORMAT"
REDACTED = "[REDACTED]"

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_LEVELS |= {"warn": logging.WARNING, "critical": logging.CRITICAL}

# Keys are compared lower-cased with everything but letters and digits removed, so `privateKey`, `private_key`,
# `ssh-privatekey` and `.dockerconfigjson` all normalise to something matched here.
_SECRET_MARKERS = (
    "token",
    "password",
    "passwd",
    "passphrase",
    "secret",
    "authorization",
    "privatekey",
    "apikey",
    "credential",
    "dockerconfigjson",
    "dockercfg",
    "cookie",
    "tlskey",
    "clientkey",
)
_SECRET_KEYS = frozenset({"auth", "auths"})  # docker config: base64 `user:password` per registry
# ...but a key that names, counts or locates a secret is not one: `secretName`, `secretRef`, `tokenPath`.
_HARMLESS_SUFFIXES = ("name", "names", "ref", "refs", "namespace", "kind", "type", "count", "path", "file", "url")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_URL_PASSWORD = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/@:\s]*:)[^/@\s]+@")
_MAX_DEPTH = 16

_HANDLER_NAME = "kpack-structlog"


def is_secret_key(key: str) -> bool:
    """Whether values logged under `key` are to be redacted."""
    normalised = re.sub(r"[^a-z0-9]", "", key.lower())
    if normalised in _SECRET_KEYS:
        return True
    if not any(marker in normalised for marker in _SECRET_MARKERS):
        return False
    return not normalised.endswith(_HARMLESS_SUFFIXES)


def _redact_string(value: str) -> str:
    if "://" in value:
        value = _URL_PASSWORD.sub(rf"\1{REDACTED}@", value)
    return _BEARER.sub(rf"\1 {REDACTED}", value)


def _redact(value: Any, depth: int) -> Any:
    """A copy of `value` with secrets replaced; the logged objects themselves (often cache entries) are untouched."""
    if depth > _MAX_DEPTH:
        return "[TOO DEEP]"  # unseen is unsafe: what lies below cannot be checked, so it is not shown
    if isinstance(value, str):
        return _redact_string(value)
    if isinstance(value, Mapping):
        secret_kind = value.get("kind") == "Secret"
        redacted: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and (is_secret_key(key) or (secret_kind and key in ("data", "stringData"))):
                redacted[key] = _mask(item)
            else:
                redacted[key] = _redact(item, depth + 1)
        return redacted
    if isinstance(value, list | tuple):
        return [_redact(item, depth + 1) for item in value]
    return value


def _mask(value: Any) -> Any:
    # A Secret's data keeps its keys (which entries exist is useful and harmless), never its values.
    if isinstance(value, Mapping):
        return {key: REDACTED for key in value}
    return REDACTED if value not in (None, "") else value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: replace the values of secret-looking keys (at any depth), the data of Secret objects,
    and credentials inside strings (`Bearer …`, `Basic …`, `https://user:password@`)."""
    return {key: _mask(value) if is_secret_key(key) else _redact(value, 0) for key, value in event_dict.items()}


_LEADING_KEYS = ("timestamp", "level", "logger", "event")


def _json_dumps(event_dict: EventDict, **_: Any) -> str:
    # The fixed keys first, so a human scanning raw lines finds them at once; `default=str` renders anything else.
    ordered = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return orjson.dumps(ordered, default=str).decode()


def _choose_json(json: bool | None, stream: TextIO) -> bool:
    if json is not None:
        return json
    configured = os.environ.get(LOG_FORMAT_ENV, "").strip().lower()
    if configured in ("json", "text"):
        return configured == "json"
    if configured:
        raise ValueError(f"{LOG_FORMAT_ENV}={configured!r}: expected json or text")
    return not (hasattr(stream, "isatty") and stream.isatty())


def _shared_processors() -> list[Processor]:
    """What both structlog and stdlib records go through before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(*, json: bool | None = None, level: str = "info", stream: TextIO | None = None) -> None:
    """Set up structlog and the stdlib root logger to write to `stream` (default: stderr).

    `json=None` picks JSON unless `$KPACK_LOG_FORMAT` says `text` or the stream is a terminal. Calling it again
    replaces the previous set-up (no duplicated lines); handlers installed by others are left alone.
    """
    numeric = _LEVELS.get(level.strip().lower())
    if numeric is None:
        raise ValueError(f"log level {level!r}: expected one of {', '.join(sorted(_LEVELS))}")
    stream = sys.stderr if stream is None else stream
    renderer: Processor
    if _choose_json(json, stream):
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)
    else:
        renderer = structlog.processors.LogfmtRenderer(
            key_order=list(_LEADING_KEYS), drop_missing=True, bool_as_flag=False
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # before redaction: tracebacks quote headers and URLs too
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # kubernetes_asyncio logs whole response bodies (Secrets included) at debug level: never let them through.
    logging.getLogger("kubernetes_asyncio").setLevel(max(numeric, logging.INFO))

    # The rendering lives in the stdlib handler, so structlog's own chain is the same whatever the format. Loggers
    # are not cached on first use: one used before this call (at import, say) would keep structlog's default
    # set-up (plain lines on stdout, no redaction) for the life of the process.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


@contextmanager
def bind_reconcile(controller: str, namespace: str, name: str, reconcile_id: str) -> Iterator[None]:
    """Every log line inside the block (this task and tasks it starts) carries `controller`, `namespace`, `name`
    and `reconcileID`, the keys controller-runtime logs a reconcile with. Earlier bindings are restored after."""
    with structlog.contextvars.bound_contextvars(
        controller=controller, namespace=namespace, name=name, reconcileID=reconcile_id
    ):
        yield
