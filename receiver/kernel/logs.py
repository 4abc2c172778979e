"""Structured logging: JSON lines for machines, readable lines on a terminal, for every library's records."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from receiver.kernel import log_output

# Libraries that log every HTTP request at INFO would drown the events that matter.
NOISY = ("httpx", "httpcore", "twilio.http_client")
# Records of these loggers come from a part of a process with a role of its own (RQ's scheduler
# runs in a thread of a worker process).
ROLE_BY_LOGGER = {"rq.scheduler": "scheduler"}

_role = Path(sys.argv[0]).name or "python"
_json: bool | None = None  # None until configured


def configure(level: str = "INFO", fmt: str = "auto", role: str | None = None) -> None:
    """Safe to call more than once (the CLI and the app factory both do); `role` is kept until
    another is given."""
    global _role, _json
    if role is not None:
        _role = role
    _json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    numeric = logging.getLevelName(level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if _json
        # Plain tracebacks: with `rich` installed structlog would print each frame's locals, secrets among them.
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    # In JSON a traceback is one string field; the console renderer lays it out itself.
    tracebacks: list[structlog.typing.Processor] = [structlog.processors.format_exc_info] if _json else []
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_process,
    ]
    structlog.configure(
        processors=[*shared, *tracebacks, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=log_output.line_logger,
        cache_logger_on_first_use=True,
    )
    _route_stdlib(numeric, structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tracebacks, renderer],
    ))
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _route_stdlib(level: int, formatter: logging.Formatter) -> None:
    """Every stdlib record (uvicorn, RQ, redis-py, warnings) through the same renderer and writer."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _LineHandler)]:
        root.removeHandler(handler)
    handler = _LineHandler()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)


class _LineHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted must not kill the code that logged it
            self.handleError(record)
            return
        log_output.write_line(line)


def _add_process(logger: Any, method: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    name = event.setdefault("logger", getattr(logger, "name", "") or "")
    if not _json:
        return event  # on a terminal `up` prefixes each child's lines with its name instead
    event["role"] = next((r for prefix, r in ROLE_BY_LOGGER.items() if name.startswith(prefix)), _role)
    event["pid"] = os.getpid()  # at emit time: a forked child has its own
    return event


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    structlog.get_logger("uncaught").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    structlog.get_logger("uncaught").error(
        "uncaught exception in a thread", thread=args.thread.name if args.thread else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def json_lines() -> bool | None:
    """Whether this process writes JSON lines; None before `configure`."""
    return _json


def role() -> str:
    return _role


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
