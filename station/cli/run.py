"""`station run`: the station for real, from its settings file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from station.cli.common import add_command
from station.config import config_path, load_settings
from station.errors import ConfigError

EXAMPLES = """\
  station run                                  # what station.service runs on the Pi
  STATION_CONFIG=./station.toml station run"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "run",
        summary="run the station from its settings file (what the Pi's service runs)",
        description="Reads the settings, refuses to start on a bad file, then runs the station "
        "in the mode the file names (exam or lobby).",
        examples=EXAMPLES,
    )
    parser.add_argument("--config", metavar="FILE", help="default: " + str(config_path()))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.devices.profiles import check_settings

    try:
        settings = load_settings(args.config)
        check_settings(settings, str(config_path(args.config)))  # as `station config check`
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        print("station: refusing to start with a bad settings file", file=sys.stderr)
        return 2
    from station import app

    return app.run_station(settings, config_path(args.config))
