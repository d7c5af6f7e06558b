"""Logging: JSON lines on stderr (and `--log-file`), with every registered secret redacted.

Every module logs through `logger` here (`from sidecar.logs import logger`, then `bind` fields), never through
loguru directly. Importing loguru costs ~16 ms, an eighth of a cold start, so the process answers its first
requests before loading it: `configure_logging` only records where lines go, records logged meanwhile are kept in
order, and `load_loguru` (run by the warm-up in a worker thread, and at exit) imports loguru, adds the sinks and
writes the kept records with the time they were logged.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sidecar.redaction import redact

LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
KEPT_RECORDS_MAX = 10_000  # records kept before loguru loads (it loads within seconds; this only bounds a flood)
_NAME_KEY = "logger_name"  # the logging module's name, taken where the call was made
_LOGGED_AT_KEY = "logged_at"  # the time a kept record was logged (its loguru record is made later)


@dataclass(frozen=True)
class _Kept:
    level: str
    message: str
    args: tuple[Any, ...]
    extra: dict[str, Any]
    exception: BaseException | None


@dataclass
class _Sinks:
    level: str = "INFO"
    streams: list[TextIO] = field(default_factory=list)
    loguru: Any = None  # loguru's logger once loaded
    kept: list[_Kept] = field(default_factory=list)
    dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_sinks = _Sinks()


class Logger:
    """The part of loguru's logger we use (`bind`, `opt(exception=)`, the level methods), kept or forwarded."""

    __slots__ = ("_extra", "_exception")

    def __init__(self, extra: dict[str, Any] | None = None, exception: BaseException | None = None) -> None:
        self._extra = extra or {}
        self._exception = exception

    def bind(self, **fields: Any) -> Logger:
        return Logger({**self._extra, **fields}, self._exception)

    def opt(self, *, exception: BaseException | None = None) -> Logger:
        return Logger(self._extra, exception)

    def trace(self, message: str, *args: Any) -> None:
        self._log("TRACE", message, args)

    def debug(self, message: str, *args: Any) -> None:
        self._log("DEBUG", message, args)

    def info(self, message: str, *args: Any) -> None:
        self._log("INFO", message, args)

    def warning(self, message: str, *args: Any) -> None:
        self._log("WARNING", message, args)

    def error(self, message: str, *args: Any) -> None:
        self._log("ERROR", message, args)

    def exception(self, message: str, *args: Any) -> None:
        """`error` with the exception being handled."""
        Logger(self._extra, sys.exc_info()[1])._log("ERROR", message, args)

    def log(self, level: str | int, message: str, *args: Any) -> None:
        self._log(level if isinstance(level, str) else logging.getLevelName(level), message, args)

    def _log(self, level: str, message: str, args: tuple[Any, ...], depth: int = 2) -> None:
        extra = self._extra if _NAME_KEY in self._extra else {
            _NAME_KEY: sys._getframe(depth).f_globals.get("__name__", "?"), **self._extra
        }
        loaded = _sinks.loguru
        if loaded is None:
            with _sinks.lock:
                loaded = _sinks.loguru
                if loaded is None:
                    _keep(level, message, args, extra, self._exception)
                    return
        _write(loaded, level, message, args, extra, self._exception)


logger = Logger()


def _keep(level: str, message: str, args: tuple[Any, ...], extra: dict[str, Any], exc: BaseException | None) -> None:
    if LEVELS.get(level, 0) < LEVELS.get(_sinks.level, 0):
        return
    if len(_sinks.kept) >= KEPT_RECORDS_MAX:
        _sinks.dropped += 1
        return
    at = datetime.now(UTC).astimezone()
    _sinks.kept.append(_Kept(level, message, args, {**extra, _LOGGED_AT_KEY: at}, exc))


def _write(
    loaded: Any, level: str, message: str, args: tuple[Any, ...], extra: dict[str, Any], exc: BaseException | None
) -> None:
    bound = loaded.bind(**extra)
    if exc is not None:
        bound = bound.opt(exception=exc)
    bound.log(level if level in LEVELS else "INFO", message, *args)


class _JsonSink:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, message: Any) -> None:
        record = message.record
        extra = record["extra"]
        at = extra.get(_LOGGED_AT_KEY) or record["time"]
        entry: dict[str, Any] = {
            "ts": at.isoformat(timespec="milliseconds"),
            "level": record["level"].name.lower(),
            "logger": extra.get(_NAME_KEY, record["name"]),
            "msg": record["message"],
        }
        # Bound fields sit at the top level, so `{provider, statusCode, ...}` can be read off the line directly.
        for key, value in extra.items():
            if key not in (_NAME_KEY, _LOGGED_AT_KEY) and key not in entry:
                entry[key] = value
        if record["exception"] is not None:
            exc_type, exc_value, trace = record["exception"]
            entry["exc"] = exc_type.__name__ if exc_type else None
            # Code locations only: frames, never local values (diagnose=False) nor the exception's text.
            entry["trace"] = "".join(traceback.format_tb(trace)) if trace else None
        line = redact(json.dumps(entry, default=str, ensure_ascii=False))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class _InterceptHandler(logging.Handler):
    """Send stdlib logging (jsonrpcserver, httpx2, the SDKs) through our logger."""

    def emit(self, record: logging.LogRecord) -> None:
        # Exception text of a library may carry request details: keep only the class name.
        exc = record.exc_info[1] if record.exc_info else None
        msg = record.getMessage()
        if exc is not None:
            msg = f"{msg} ({type(exc).__name__})"
        level = record.levelname if record.levelname in LEVELS else "INFO"
        # Braces in a library's message are text, not a format: no args, so loguru leaves it as it is.
        logger.bind(**{_NAME_KEY: record.name}).log(level, msg)


def configure_logging(level: str, log_file: Path | None, stream: TextIO | None = None) -> None:
    """Where lines go and from which level. Cheap: loguru itself loads later (`load_loguru`)."""
    _sinks.level = level.upper()
    _sinks.streams = [stream or sys.stderr]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        _sinks.streams.append(open(log_file, "a", encoding="utf-8"))  # kept open for the life of the process
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "anthropic", "peewee"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # peewee would log SQL with its parameters (message text); jsonrpcserver the raw exception.
    # Both are silenced: dispatch logs its own safe record.
    logging.getLogger("jsonrpcserver").setLevel(logging.CRITICAL)


def load_loguru() -> None:
    """Import loguru, add the sinks, write what was kept. Idempotent and thread-safe; the caller decides when
    (the warm-up's worker thread, or exit). Until it has run, nothing is written."""
    if _sinks.loguru is not None:
        return
    loguru_logger = _import_loguru()

    with _sinks.lock:
        if _sinks.loguru is not None:
            return
        loguru_logger.remove()
        for stream in _sinks.streams:
            loguru_logger.add(
                _JsonSink(stream), level=_sinks.level, format="{message}", backtrace=False, diagnose=False
            )
        # Still under the lock: a record logged now waits, so the kept ones are written first, in order.
        for kept in _sinks.kept:
            _write(loguru_logger, kept.level, kept.message, kept.args, kept.extra, kept.exception)
        if _sinks.dropped:
            loguru_logger.bind(**{_NAME_KEY: __name__}).warning(
                "{} log records before start-up ended were dropped", _sinks.dropped
            )
        _sinks.kept.clear()
        _sinks.loguru = loguru_logger


def _import_loguru() -> Any:
    # loguru adds a default stderr sink at import unless LOGURU_AUTOINIT=false (its documented switch, read only
    # there); ours replace it at once, and adding one costs ~6 ms. The switch is not left for child processes.
    set_here = "LOGURU_AUTOINIT" not in os.environ
    if set_here:
        os.environ["LOGURU_AUTOINIT"] = "false"
    try:
        from loguru import logger as loguru_logger
    finally:
        if set_here:
            os.environ.pop("LOGURU_AUTOINIT", None)
    return loguru_logger
