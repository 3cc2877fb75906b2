"""Teach the log redactor a schedule, then scrub log lines: 100 / 300 / 1,000 / 3,000 appointments.

For each size prints the station's time to remember the schedule (`remember_schedule`, what the
MQTT worker does when a schedule arrives) and to redact 2,000 log lines, beside two baselines
run in the same process on the same data:
- `str.replace`: a plain loop over every remembered spelling per line (no word boundaries, no
  case folding: the least a scrubber can do), the ratio station / baseline;
- the old redactor (issue 13 item 11: one regex over every remembered value, recompiled at each
  value), kept below verbatim in its remember/redact core; run at 100 appointments only (it
  grows with the square of the schedule: 300 appointments blocked the MQTT worker 7.8 s),
  or at every size up to --old-max.

  .venv/bin/python bench/redactor.py [--old-max 300]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from station.app.wiring import appointment_values, remember_schedule  # noqa: E402
from station.logs import MIN_TOKEN_CHARS, Redacted, Redactor, date_spellings  # noqa: E402
from station.sync.contract import Appointment, PatientIdentifiers, SchedulePayload  # noqa: E402

SIZES = (100, 300, 1000, 3000)
LINES = 2000
AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def schedule(size: int, seed: int) -> SchedulePayload:
    """Obviously fake patients: ZZTEST family names, TEST MRNs, made-up reasons."""
    rng = random.Random(seed)
    given = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India"]
    reasons = ["knee pain", "follow-up visit", "cough for two weeks", "annual physical", ""]
    appointments = tuple(
        Appointment(
            appointment_id=f"APT-TEST-{seed}-{i:05d}",
            patient=PatientIdentifiers(
                mrn=f"TEST{seed}{i:06d}",
                family_name=f"ZZTEST{rng.randrange(10**6):06d}",
                given_name=rng.choice(given),
                birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(25000)),
            ),
            starts_at=AT + timedelta(minutes=5 * i),
            reason=rng.choice(reasons),
            room="Exam 3",
        )
        for i in range(size)
    )
    return SchedulePayload(
        message_id=uuid.uuid4(), site="clinic-north", station_id="exam-3", sent_at=AT,
        schedule_date=AT.date(), appointments=appointments,
    )  # fmt: skip


def log_lines(payload: SchedulePayload, seed: int) -> list[str]:
    """What a station logs: mostly operational lines, a few carrying a patient by mistake."""
    rng = random.Random(seed)
    operational = [
        "published message_id=3f2a1b6c-1234-4abc-8def-123456789012 depth=3 qos=1",
        "reading accepted: kind=blood_pressure device=cuff systolic_mmhg=120.0 flags=[]",
        "MQTT broker.clinic.example:8883: cannot connect: TLS: the broker's certificate was "
        "not accepted (Hostname mismatch, certificate is not valid for 'broker.clinic.example'.)",
        "frame from oximeter: SN=0000056661 SPO2=098% BPM=097 PI=03.60% ALARM=0000 EXC=000800",
        "outbox depth=12 oldest_age_s=340.5",
    ]
    lines = []
    for i in range(LINES):
        if i % 10 == 0:
            p = rng.choice(payload.appointments).patient
            lines.append(f"oops: picked {p.given_name} {p.family_name} mrn {p.mrn} by mistake")
        else:
            lines.append(rng.choice(operational))
    return lines


def spellings(payload: SchedulePayload) -> list[str]:
    out: list[str] = []
    for appointment in payload.appointments:
        for kind, values in appointment_values(appointment):
            for value in values:
                if value is None:
                    continue
                if isinstance(value, date):
                    out.extend(date_spellings(value))
                    continue
                out.append(str(value))
                if kind is Redacted.NAME:
                    out += [t for t in re.split(r"[\s,]+", str(value)) if len(t) >= MIN_TOKEN_CHARS]
    return sorted(set(out), key=len, reverse=True)


class OldRedactor:
    """The remember/redact core this replaced (station/logs.py before issue 13 item 11)."""

    def __init__(self) -> None:
        self._known: dict[str, Redacted] = {}
        self._known_re: re.Pattern[str] | None = None

    def remember(self, kind: Redacted, *values: str | date | None) -> None:
        for value in values:
            if value is None:
                continue
            if isinstance(value, date):
                found: list[str] = list(date_spellings(value))
            else:
                text = " ".join(str(value).split())
                found = [text]
                if kind is Redacted.NAME:
                    found += [t for t in re.split(r"[\s,]+", text) if len(t) >= MIN_TOKEN_CHARS]
            for s in found:
                if s:
                    self._known[s.casefold()] = kind
        alternatives = [
            r"\s+".join(re.escape(part) for part in value.split())
            for value in sorted(self._known, key=len, reverse=True)
        ]
        self._known_re = re.compile(
            r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE
        )

    def redact(self, text: str) -> str:
        known_re, known = self._known_re, self._known
        if known_re is None:
            return text
        return known_re.sub(
            lambda m: f"[redacted:{known.get(' '.join(m.group(0).split()).casefold(), 'value')}]",
            text,
        )


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old-max", type=int, default=100,
                        help="run the old redactor up to this many appointments (default 100)")
    args = parser.parse_args()
    print(f"{'appts':>6} {'remember s':>11} {'redact s':>9} {'per line us':>11} "
          f"{'str.replace s':>13} {'ratio':>6} {'old remember s':>15} {'old redact s':>12}")
    for size in SIZES:
        payload = schedule(size, seed=size)
        lines = log_lines(payload, seed=size)
        redactor = Redactor()
        remember_s = timed(lambda: remember_schedule(redactor, payload))  # noqa: B023
        out: list[str] = []
        redact_s = timed(lambda: out.extend(redactor.redact(line) for line in lines))  # noqa: B023
        assert not any(p.patient.mrn in line for p in payload.appointments for line in out[::10])
        words = spellings(payload)

        def replace_all() -> None:
            for line in lines:  # noqa: B023
                for word in words:  # noqa: B023
                    line = line.replace(word, "[redacted]")  # noqa: PLW2901

        baseline_s = timed(replace_all)
        old = "-"
        old_redact = "-"
        if size <= args.old_max:
            legacy = OldRedactor()

            def teach() -> None:
                for appointment in payload.appointments:  # noqa: B023
                    for kind, values in appointment_values(appointment):
                        legacy.remember(kind, *values)  # noqa: B023

            old = f"{timed(teach):.3f}"
            old_redact = f"{timed(lambda: [legacy.redact(line) for line in lines]):.3f}"  # noqa: B023
        ours = remember_s + redact_s
        print(f"{size:>6} {remember_s:>11.4f} {redact_s:>9.4f} {1e6 * redact_s / LINES:>11.1f} "
              f"{baseline_s:>13.4f} {ours / baseline_s:>6.3f} {old:>15} {old_redact:>12}")
    print(f"ratio = (remember + redact) / str.replace over {LINES} lines, same data, same run; "
          "below 1 is faster than the plain loop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
