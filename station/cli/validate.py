"""`station validate`: run a manually entered reading through validation, print the verdict."""

from __future__ import annotations

import argparse
import math
from typing import Any

from pydantic import ValidationError

from station.cli.common import add_command, fail
from station.models import (
    READING_TYPES,
    VALUE_FIELDS,
    Kind,
    Method,
    TemperatureSite,
)
from station.validation import validate
from station.vitals import CANONICAL_UNIT

EXAMPLES = """\
  station validate blood_pressure systolic_mmhg=185 diastolic_mmhg=95
  station validate pulse_oximetry spo2_percent=88 pulse_rate_bpm=104
  station validate temperature temperature_c=39.7 site=mouth --age 0.2
  station validate body_weight weight_kg=72.5 height_cm=178
prints {"status": "accepted"|"rejected", "reasons": [...], "flags": [{"code", "severity",
"message"}]}; exit 0 accepted (flagged or not), 1 rejected, 2 bad usage."""

MANUAL_KINDS = [k for k in Kind if k != Kind.CUFF_PRESSURE]


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "validate",
        summary="check a manually entered reading and print the verdict as JSON",
        description="Runs a reading typed by hand through the station's validation "
        "(plausibility, clinical flags, device quality) exactly as the rooming screen does. "
        "Values are in canonical units (mmHg, /min, %, °C, kg, cm).",
        examples=EXAMPLES,
    )
    parser.add_argument("kind", metavar="KIND", help="one of: " + ", ".join(MANUAL_KINDS))
    parser.add_argument(
        "values",
        metavar="FIELD=VALUE",
        nargs="+",
        help="value fields of that kind, e.g. systolic_mmhg=120",
    )
    parser.add_argument(
        "--age",
        type=float,
        metavar="YEARS",
        help="patient's age in years (children get paediatric limits); default: adult",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        kind = Kind(args.kind)
    except ValueError:
        return fail(f"unknown kind {args.kind!r}; expected one of: {', '.join(MANUAL_KINDS)}")
    if kind == Kind.CUFF_PRESSURE:
        return fail("cuff_pressure is a live gauge value, not a reading to validate")
    if args.age is not None and not (0 <= args.age <= 130):
        return fail(f"--age {args.age:g} is not an age: expected 0–130 years")
    allowed = VALUE_FIELDS[kind] + (("site",) if kind == Kind.TEMPERATURE else ())
    fields: dict[str, object] = dict.fromkeys(VALUE_FIELDS[kind][:1])
    for item in args.values:
        name, sep, text = item.partition("=")
        if not sep or not text:
            return fail(f"{item!r} is not FIELD=VALUE (e.g. {VALUE_FIELDS[kind][0]}=120)")
        if name not in allowed:
            return fail(f"unknown field {name!r} for {kind}; expected one of: {', '.join(allowed)}")
        if name == "site":
            try:
                fields[name] = TemperatureSite(text)
            except ValueError:
                sites = ", ".join(TemperatureSite)
                return fail(f"site {text!r} is not a temperature site; expected one of: {sites}")
            continue
        try:
            value = float(text)
        except ValueError:
            return fail(f"{name}={text!r} is not a number")
        if not math.isfinite(value):
            return fail(f"{name}={text!r} is not a finite number")
        fields[name] = value
    try:
        reading = READING_TYPES[kind](
            unit_as_sent=CANONICAL_UNIT[kind],
            codec="manual",
            codec_version="1",
            method=Method.MANUAL,
            **fields,
        )
    except ValidationError as exc:  # pragma: no cover - the checks above cover the fields
        return fail(str(exc))
    verdict = validate(reading, age_years=args.age)  # type: ignore[arg-type]
    print(verdict.model_dump_json())
    return 0 if verdict.accepted else 1
