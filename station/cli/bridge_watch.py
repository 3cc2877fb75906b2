"""`station bridge-watch run|sample`: the heartbeat watchdog of a clinic's bridge to the center."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from station.cli.common import add_command
from station.errors import ConfigError

DEFAULT_CONFIG = Path("/etc/station/bridge-watch.toml")
EXAMPLES = """\
  station bridge-watch sample > /etc/station/bridge-watch.toml    # then edit site, hosts
  station bridge-watch run --config /etc/station/bridge-watch.toml
  station bridge-watch run --config ./bridge-watch.toml --once-json   # one round, as JSON"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "bridge-watch",
        summary="watch a clinic broker's bridge to the center; restart the broker if it hangs",
        description="Runs on a clinic's server beside its Mosquitto. Publishes a heartbeat "
        "through the clinic broker's bridge and one straight to the central broker, and "
        "watches what arrives at the center. Nothing through the bridge for stall_after_s "
        "while the center answers is a hung bridge (Mosquitto 2.0.11, "
        "eclipse-mosquitto/mosquitto#2207): it logs an error, publishes the state retained "
        "at the center and runs restart_command. A center that does not answer is only "
        "reported. See docs/deploy-practice.md.",
        examples=EXAMPLES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_p = actions.add_parser("run", help="run the watchdog (rooming-bridge-watch.service)")
    run_p.add_argument(
        "--config", metavar="FILE", default=str(DEFAULT_CONFIG), help=f"default: {DEFAULT_CONFIG}"
    )
    run_p.add_argument(
        "--once-json",
        action="store_true",
        help="wait stall_after_s, print the verdict as JSON and exit "
        "(0 healthy, 1 not); never restarts anything",
    )
    run_p.set_defaults(func=run)
    sample = actions.add_parser("sample", help="print a commented sample bridge-watch.toml")
    sample.set_defaults(func=_sample)


def _sample(args: argparse.Namespace) -> int:
    from station.gateway.bridge_watch import SAMPLE_BRIDGE_WATCH_CONFIG

    print(SAMPLE_BRIDGE_WATCH_CONFIG, end="")
    return 0


def run(args: argparse.Namespace) -> int:
    import logging

    from station.gateway.bridge_watch import (
        HEALTHY,
        BridgeWatch,
        Verdict,
        describe,
        load_bridge_watch_settings,
    )
    from station.sdnotify import Notifier

    try:
        settings = load_bridge_watch_settings(Path(args.config))
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        print(
            "station: refusing to start the bridge watch with a bad settings file", file=sys.stderr
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.once_json:
        watch = BridgeWatch(settings, restart=lambda command: "not run (--once-json)")
        watch.start()
        threading.Event().wait(settings.stall_after_s + settings.interval_s)
        watch.stop()
        print(json.dumps(describe(watch.verdict)))
        return 0 if watch.verdict.state in HEALTHY else 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    notifier = Notifier.from_environment()

    def say(verdict: Verdict) -> None:
        age = verdict.bridge_age_s
        notifier.status(
            f"bridge {verdict.state.value}"
            + ("" if age is None else f", last heartbeat {age:.0f} s ago")
        )

    watch = BridgeWatch(settings, on_verdict=say)
    watch.start()
    notifier.ready("watching")
    print(
        f"station bridge-watch: watching site {settings.site} "
        f"(clinic {settings.clinic.host}:{settings.clinic.port} -> center "
        f"{settings.center.host}:{settings.center.port})",
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(min(5.0, settings.interval_s)):
        notifier.watchdog()
    watch.stop()
    return 0
