"""`station schemas write|check`: the JSON Schemas integrators read, generated from the models."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from station import schemas
from station.cli.common import add_command, fail

EXAMPLES = """\
  station schemas write          # regenerate docs/schemas/*.schema.json from the models
  station schemas check          # exit 1 if the checked-in schemas differ from the models"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "schemas",
        summary="write or check the JSON Schemas in docs/schemas/",
        description="The JSON Schemas of the reading, the verdict, the settings and the MQTT "
        "payloads are generated from the pydantic models, never written by hand.",
        examples=EXAMPLES,
    )
    parser.add_argument("action", choices=["write", "check"])
    parser.add_argument("--dir", type=Path, default=schemas.SCHEMA_DIR, metavar="DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "write":
        for path in schemas.write_all(args.dir):
            print(path)
        return 0
    stale = schemas.stale(args.dir)
    if stale:
        return fail(f"schemas out of date: {', '.join(stale)}; run `station schemas write`", 1)
    print(f"{args.dir}: schemas match the models")
    return 0
