"""`station demo`: the station on simulated devices and obviously fake patients."""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from datetime import datetime
from typing import Any

from station.cli.common import add_command, fail
from station.demo import demo_patients, room_patient

EXAMPLES = """\
  station demo --headless                  # room fake patients forever, print what is sent
  station demo --headless --patients 3     # room three fake patients end to end, then exit
  station demo --headless --patients 1 --seed 7"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "demo",
        summary="run the station on simulated devices and fake patients",
        description="Rooms obviously fake patients (ZZTEST) with simulated devices through the "
        "real validation and prints each reading as it would be sent. Simulated readings are "
        "marked mode=demo.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no screen: print each reading as a JSON line (what it does without a display)",
    )
    parser.add_argument(
        "--broker", metavar="URL", help="publish to this MQTT broker, e.g. mqtt://localhost:1883"
    )
    parser.add_argument(
        "--patients",
        type=int,
        metavar="N",
        help="room N patients end to end and exit (default: until Ctrl-C)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="pause between patients when running forever (default 2)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.patients is not None and args.patients < 1:
        return fail(f"--patients {args.patients} must be at least 1")
    if args.broker:
        return fail("--broker needs the sync layer, which this build does not have yet")
    if not args.headless:
        from station.cli import ui

        if ui.has_display():
            return ui.open_ui("exam")  # the exam screens on simulated devices (issue 7)
        print(ui.HOW_TO_VIEW + "\nstation: running headless instead", file=sys.stderr)
    rng = random.Random(args.seed)  # noqa: S311 - simulated vitals, not secrets
    count = args.patients
    patients = itertools.count() if count is None else range(count)
    for index in patients:
        patient = demo_patients(index + 1, rng)[index]
        now = datetime.now().replace(microsecond=0)
        print(
            f"# rooming {patient.family}, {patient.given} ({patient.appointment_id})",
            file=sys.stderr,
        )
        for reading, verdict in room_patient(patient, rng, now):
            line = {
                "appointment_id": patient.appointment_id,
                "reading": reading.model_dump(mode="json"),
                "verdict": verdict.model_dump(mode="json"),
            }
            print(json.dumps(line), flush=True)
        if count is None:
            time.sleep(args.interval)
    return 0
