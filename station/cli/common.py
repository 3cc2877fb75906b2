"""Helpers the subcommands share: help formatting and error output."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_command(
    sub: Any, name: str, *, summary: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with worked examples."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def fail(message: str, code: int = 2) -> int:
    print(f"station: {message}", file=sys.stderr)
    return code
