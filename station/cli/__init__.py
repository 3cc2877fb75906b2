"""The `station` command: one subcommand module each, registered in COMMAND_MODULES."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from station import __version__

# Each module has `register(subparsers)`; its parser sets `func(args) -> int` (the exit code).
COMMAND_MODULES = (
    "station.cli.run",
    "station.cli.demo",
    "station.cli.ui",
    "station.cli.config_cmd",
    "station.cli.validate",
    "station.cli.decode",
    "station.cli.schemas",
    "station.cli.diagnostics",
    "station.cli.profiles",
    "station.cli.simulate",
    "station.cli.devices",
    "station.cli.outbox",
    "station.cli.credentials",
    "station.cli.audit",
    "station.cli.gateway",
    "station.cli.bridge_watch",
)

EPILOG = """\
exit codes: 0 success, 1 refused (e.g. a rejected reading), 2 bad usage or bad input.
Run `station COMMAND --help` for examples of each command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="station",
        description="Clinic rooming station: reads vital-sign devices, checks every reading, "
        "and sends vitals and the chief complaint to the practice system over MQTT.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"station {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `station decode ... | head` closes the pipe early; that is not an error.
        sys.stderr.close()
        return 0
    return code


if __name__ == "__main__":
    raise SystemExit(main())
