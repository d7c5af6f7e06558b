"""Logging: JSON lines on stderr (and `--log-file`), with every registered secret redacted.

Configured once by `configure_logging`; elsewhere, `from loguru import logger` and bind fields.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, TextIO

from loguru import logger

from sidecar.redaction import redact


class _JsonSink:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, message: Any) -> None:
        record = message.record
        entry: dict[str, Any] = {
            "ts": record["time"].isoformat(timespec="milliseconds"),
            "level": record["level"].name.lower(),
            "logger": record["extra"].get("logger_name", record["name"]),
            "msg": record["message"],
        }
        # Bound fields sit at the top level, so `{provider, statusCode, ...}` can be read off the line directly.
        for key, value in record["extra"].items():
            if key != "logger_name" and key not in entry:
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
    """Send stdlib logging (jsonrpcserver, httpx2, the SDKs) through loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        # Exception text of a library may carry request details: keep only the class name.
        exc = record.exc_info[1] if record.exc_info else None
        msg = record.getMessage()
        if exc is not None:
            msg = f"{msg} ({type(exc).__name__})"
        logger.bind(logger_name=record.name).log(level, msg)


def configure_logging(level: str, log_file: Path | None, stream: TextIO | None = None) -> None:
    logger.remove()
    sink_level = level.upper()
    logger.add(_JsonSink(stream or sys.stderr), level=sink_level, format="{message}", backtrace=False, diagnose=False)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(log_file, "a", encoding="utf-8")  # kept open for the life of the process
        logger.add(_JsonSink(handle), level=sink_level, format="{message}", backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "anthropic", "peewee"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # peewee would log SQL with its parameters (message text); jsonrpcserver the raw exception.
    # Both are silenced: dispatch logs its own safe record.
    logging.getLogger("jsonrpcserver").setLevel(logging.CRITICAL)
