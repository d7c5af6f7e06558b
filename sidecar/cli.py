"""Command line → settings → run. `chat-sidecar [options]` serves stdio; `chat-sidecar demo` runs the demo."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sidecar import __version__
from sidecar.settings import Settings, default_data_dir


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="chat-sidecar", description="Multi-agent chat backend: JSON-RPC 2.0 on stdio")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the database lives (default: user data dir)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    parser.add_argument("--log-file", type=Path, default=None, help="also write JSON log lines here")
    parser.add_argument("--secret-store", choices=["keyring", "memory"], default="keyring")
    parser.add_argument("--version", action="version", version=f"chat-sidecar {__version__}")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="spawn a sidecar and show agents answering in parallel")
    demo.add_argument("--message", default=None, help="the first user message")
    demo.add_argument("--sidecar", default=None, help="command that starts the sidecar (default: this Python)")
    demo.add_argument("--mode", choices=["manual", "auto"], default="manual",
                      help="manual: two turns answered in parallel; auto: the agents converse until they are done")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=(args.data_dir or default_data_dir()).expanduser().resolve(),
        log_level=args.log_level,
        log_file=args.log_file,
        secret_store=args.secret_store,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "demo":
        from sidecar.demo import run_demo

        sys.exit(run_demo(args))
    serve_stdio(settings_from(args))


def serve_stdio(settings: Settings) -> None:
    # The start-up imports create ~30,000 long-lived objects and no garbage worth a collection: without this
    # the collector runs ~80 times over them (~20 ms, ~7 % of the start). Re-enabled below, before serving.
    gc.disable()
    from sidecar.transport.stdio import protect_stdout

    protocol_fd = protect_stdout()  # first: nothing imported after this can write to the wire
    import anyio

    from sidecar.app import serve
    from sidecar.logs import configure_logging, load_loguru, logger
    from storage.migrations import SchemaTooNewError

    configure_logging(settings.log_level, settings.log_file)  # loguru itself loads after the first answers
    # What start-up built lives as long as the process: park it out of the collector's sight for good (its
    # ~1,700 unreachable import-time objects are kept; a collection to find them would cost ~20 ms).
    gc.freeze()
    gc.enable()
    code = 0
    try:
        anyio.run(serve, settings, 0, protocol_fd)
    except KeyboardInterrupt:
        pass
    except SchemaTooNewError as exc:  # our own message, safe to log: the client can tell the user why
        logger.bind(reason=str(exc)).error("cannot open the database")
        code = 1
    except BaseException:
        logger.exception("fatal error")
        code = 1
    load_loguru()  # a process that ended before its warm-up still writes what it logged
    sys.stderr.flush()
    # Skip interpreter teardown: SDK clients and idle worker threads would only slow the exit.
    os._exit(code)
