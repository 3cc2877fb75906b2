"""`station simulate PROFILE`: a serial device on a pseudo-terminal, until Ctrl-C."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from station.cli.common import add_command, fail
from station.errors import ConfigError

EXAMPLES = """\
  station simulate nonin-xpod-3012lp                 # prints the pty path, e.g. /dev/pts/7
  station simulate sma-scale --scenario motion
  station simulate masimo-rad-8 --port /tmp/rad8     # a symlink to the pty at a fixed path
  station simulate suntech-advantage --scenario noise --seed 7
Scenarios: normal, noise (garbage between frames), unplug (the port vanishes and comes back),
motion, sensor_off, baud_mismatch (the bytes a receiver at the wrong baud would see)."""


def register(sub: Any) -> None:
    from station.devices.simulators.serial import SCENARIOS

    parser = add_command(
        sub,
        "simulate",
        summary="pretend to be a serial device on a pseudo-terminal",
        description="Opens a pseudo-terminal and behaves like the device of a serial firmware "
        "profile (streaming, or answering polls), printing the port path, so the demo, the "
        "tests and a biomed bench can use a device that is not there.",
        examples=EXAMPLES,
    )
    parser.add_argument("profile", metavar="PROFILE", help="profile id or path to its .toml")
    parser.add_argument(
        "--port",
        default="auto",
        help="auto (print the new pty path) or a path where a symlink to the pty is made",
    )
    parser.add_argument("--scenario", choices=SCENARIOS, default="normal")
    parser.add_argument("--seed", type=int, default=1, help="seed for noise and values")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.devices.profiles import find_profile
    from station.devices.simulators.serial import simulator_for

    try:
        profile = find_profile(args.profile)
    except ConfigError as exc:
        return fail(exc.describe())
    try:
        simulator = simulator_for(
            profile,
            scenario=args.scenario,
            seed=args.seed,
            link_path=None if args.port == "auto" else args.port,
        )
    except ValueError as exc:
        return fail(str(exc))
    simulator.start()
    print(simulator.port, flush=True)
    stop = threading.Event()
    try:
        stop.wait()
    finally:
        simulator.stop()
    return 0
