"""Masimo Rad-8 / Radical-7 "ASCII 1" serial output: one text line a second (9600 8N1, CR LF)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from station.devices.codecs.base import StreamCodec, StreamEvent
from station.devices.codecs.serial._stream import LineDecoder
from station.models import Flag, PulseOximetry
from station.units import Unit
from station.validation import with_plausibility_flag

VERSION = "2"

# The fixed head of a record: `MM/dd/yy HH:mm:ss`, then KEY=value fields separated by spaces.
HEAD = re.compile(rb"(\d\d)/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)((?: [A-Z0-9]+=\S*)+)\s*$")
# Rad-8 records carry `PI=03.60%`, a 4-digit ALARM and a 6-digit EXC; Radical-7 (rainbow)
# records carry `PI=00.55` without "%", a 6-digit ALARM, a 7-digit EXC and an extra EXC1
# (captured line quoted in remkolems/masimo-datacapture masimo-capture.py,
# `_parse_rad7_color_serial_1`). The bit meanings are the same whatever the width.
FIELD_FORMATS: dict[str, re.Pattern[str]] = {
    "SN": re.compile(r"\S+"),
    "SPO2": re.compile(r"(?:\d{1,3}|-+)%"),
    "BPM": re.compile(r"\d{1,3}|-+"),
    "PI": re.compile(r"(?:\d{1,2}\.\d{1,2}|-+\.?-*)%?"),
    "ALARM": re.compile(r"[0-9A-Fa-f]{4}|[0-9A-Fa-f]{6}"),
    "EXC": re.compile(r"[0-9A-Fa-f]{6,7}"),
}
OPTIONAL_FORMATS: dict[str, re.Pattern[str]] = {"EXC1": re.compile(r"[0-9A-Fa-f]{8}")}
EXPECTED_FIELDS = (
    "SN=… SPO2=nnn% BPM=nnn PI=nn.nn[%] … ALARM=hhhh[hh] EXC=hhhhhh[h] [EXC1=hhhhhhhh]"
    " ('-' = not available)"
)

ALARM_BITS: dict[int, Flag] = {
    0x0001: Flag.SPO2_HIGH_ALARM,
    0x0002: Flag.SPO2_LOW_ALARM,
    0x0004: Flag.PULSE_HIGH_ALARM,
    0x0008: Flag.PULSE_LOW_ALARM,
    0x0010: Flag.ALARM_ACTIVE,
    0x0020: Flag.ALARM_SILENCED,
    0x0040: Flag.LOW_BATTERY,
}
NORMAL_SET_OPERATION = 0x000800
EXCEPTION_BITS: dict[int, Flag] = {
    0x000001: Flag.SENSOR_DISCONNECTED,  # no sensor
    0x000002: Flag.SENSOR_MALFUNCTION,  # defective sensor
    0x000004: Flag.LOW_PERFUSION,
    0x000008: Flag.PULSE_SEARCH,
    0x000010: Flag.INTERFERENCE,
    0x000020: Flag.SENSOR_UNCONNECTED_TO_USER,  # sensor off the patient
    0x000040: Flag.AMBIENT_LIGHT,
    0x000080: Flag.UNKNOWN_SENSOR,
    0x000400: Flag.LOW_SIGNAL_IQ,
    0x020000: Flag.CALIBRATION_ONGOING,
    0x040000: Flag.SENSOR_LIFE_EXPIRED,
}
KNOWN_EXCEPTIONS = NORMAL_SET_OPERATION | sum(EXCEPTION_BITS)


def _number(text: str) -> float | None:
    value = text.rstrip("%")
    return None if "-" in value else float(value)


class MasimoAsciiDecoder(LineDecoder):
    name: ClassVar[str] = "serial:masimo-ascii"
    version: ClassVar[str] = VERSION

    def _decode_line(self, raw: bytes, text: bytes) -> Sequence[StreamEvent]:
        out: list[StreamEvent] = []
        match = None
        # Noise before a record: find where the record starts and report the rest.
        for found in re.finditer(rb"\d\d/\d\d/\d\d ", text):
            match = HEAD.match(text, found.start())
            if match:
                break
        if match is None:
            return [
                self.bad("not a Masimo ASCII 1 record", raw, f"MM/dd/yy HH:mm:ss {EXPECTED_FIELDS}")
            ]
        if match.start():
            out.append(
                self.bad(
                    f"{match.start()} byte(s) before a record skipped (noise or a cut record)",
                    text[: match.start()],
                )
            )
            raw = raw[match.start() :]
        fields: dict[str, str] = {}
        for item in match.group(7).decode("ascii", "replace").split():
            key, _, value = item.partition("=")
            fields[key] = value
        for key, pattern in FIELD_FORMATS.items():
            if key not in fields:
                return [*out, self.bad(f"field {key}= missing", raw, EXPECTED_FIELDS)]
            if not pattern.fullmatch(fields[key]):
                return [
                    *out,
                    self.bad(f"field {key}={fields[key]!r} malformed", raw, EXPECTED_FIELDS),
                ]
        for key, pattern in OPTIONAL_FORMATS.items():
            if key in fields and not pattern.fullmatch(fields[key]):
                return [
                    *out,
                    self.bad(f"field {key}={fields[key]!r} malformed", raw, EXPECTED_FIELDS),
                ]
        month, day, year, hour, minute, second = (int(g) for g in match.groups()[:6])
        try:
            measured_at = datetime(2000 + year, month, day, hour, minute, second)
        except ValueError:
            return [*out, self.bad("impossible date or time", raw, "MM/dd/yy HH:mm:ss")]
        alarm, exception = int(fields["ALARM"], 16), int(fields["EXC"], 16)
        flags = {flag for bit, flag in ALARM_BITS.items() if alarm & bit}
        flags |= {flag for bit, flag in EXCEPTION_BITS.items() if exception & bit}
        # EXC1's bits are not published: any of them set is something the device is unhappy
        # about that this codec cannot name.
        if exception & ~KNOWN_EXCEPTIONS or int(fields.get("EXC1", "0"), 16):
            # An exception this codec does not know: the device is unhappy about something.
            flags.add(Flag.QUESTIONABLE)
        reading = PulseOximetry(
            spo2_percent=_number(fields["SPO2"]),
            pulse_rate_bpm=_number(fields["BPM"]),
            perfusion_index_percent=_number(fields["PI"]),
            measured_at=measured_at,
            unit_as_sent=Unit.PERCENT,
            flags=tuple(flags),
            codec=self.name,
            codec_version=self.version,
            raw_hex=raw.hex(),
        )
        out.append(with_plausibility_flag(reading))
        return out


CODECS = [
    StreamCodec(
        MasimoAsciiDecoder.name,
        VERSION,
        "Masimo Rad-8 / Radical-7 ASCII 1 text records (SpO2, BPM, PI, alarm, exception)",
        MasimoAsciiDecoder,
    )
]
