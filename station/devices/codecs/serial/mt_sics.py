"""Mettler-Toledo MT-SICS level 0 scale replies (`S`, `SI`, `Z`, errors), CR LF lines."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from station.devices.codecs.base import BadFrame, StreamCodec, StreamEvent
from station.devices.codecs.serial._stream import LineDecoder
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.models import BodyWeight, Flag
from station.units import Unit, lb_to_kg
from station.validation import with_plausibility_flag

VERSION = "1"
WEIGHT_REPLY = re.compile(r"(S|SI) ([SD]) +([-+]?\d+(?:\.\d+)?) +(\S+)")
STATUS_REPLY = re.compile(r"(S|SI) ([I+-])")
ZERO_REPLY = re.compile(r"Z ([AI+-])")
ERRORS = {
    "ES": DeviceEventCode.SYNTAX_ERROR,
    "ET": DeviceEventCode.TRANSMISSION_ERROR,
    "EL": DeviceEventCode.LOGICAL_ERROR,
}
UNITS: dict[str, Unit] = {"kg": Unit.KG, "lb": Unit.LB}
EXPECTED = "'S S <weight> <unit>', 'S D …', 'S I', 'S +', 'S -', 'Z A', ES, ET or EL"
NOT_REPLY = "not an MT-SICS level 0 reply"
# The first letters of every reply: where a record starts after noise.
START = re.compile(r"(?:SI? |Z |E[STL]$)")


def poll_command(command: str = "S") -> bytes:
    return command.encode("ascii") + b"\r\n"


class MtSicsDecoder(LineDecoder):
    name: ClassVar[str] = "serial:mt-sics"
    version: ClassVar[str] = VERSION
    max_line = 80

    def _decode_line(self, raw: bytes, text: bytes) -> Sequence[StreamEvent]:
        # latin-1 maps byte for byte, so a character offset is a byte offset into `raw`.
        line = text.decode("latin-1")
        # A reply may follow noise or a reply cut short without its line end: try each place
        # a reply can start and take the first that parses; what comes before is reported.
        for found in START.finditer(line):
            at = found.start()
            events = self._reply(raw[at:], line[at:].strip(" "))
            if events and not (isinstance(events[0], BadFrame) and events[0].problem == NOT_REPLY):
                if not at:
                    return events
                skipped = self.bad(
                    f"{at} byte(s) before a reply skipped (noise or a reply cut short)", raw[:at]
                )
                return [skipped, *events]
        return [self.bad(NOT_REPLY, raw, EXPECTED)]

    def _reply(self, raw: bytes, line: str) -> list[StreamEvent]:
        if match := WEIGHT_REPLY.fullmatch(line):
            stability, value_text, unit_text = match.group(2), match.group(3), match.group(4)
            unit = UNITS.get(unit_text)
            if unit is None:
                return [
                    self.bad(
                        f"unit {unit_text!r} not supported",
                        raw,
                        "kg or lb (set the scale to kg or lb)",
                    )
                ]
            value = float(value_text)
            reading = BodyWeight(
                weight_kg=lb_to_kg(value) if unit == Unit.LB else value,
                unit_as_sent=unit,
                flags=(Flag.IN_MOTION,) if stability == "D" else (),
                codec=self.name,
                codec_version=self.version,
                raw_hex=raw.hex(),
            )
            return [with_plausibility_flag(reading)]
        if match := STATUS_REPLY.fullmatch(line):
            state = match.group(2)
            if state == "I":
                return [
                    DeviceEvent(
                        codec=self.name, code=DeviceEventCode.NOT_EXECUTABLE, raw_hex=raw.hex()
                    )
                ]
            # Over- or underload: no weight is sent; the unit is not known, kg is recorded.
            flag = Flag.OVER_RANGE if state == "+" else Flag.UNDER_RANGE
            return [
                BodyWeight(
                    weight_kg=None,
                    unit_as_sent=Unit.KG,
                    flags=(flag,),
                    codec=self.name,
                    codec_version=self.version,
                    raw_hex=raw.hex(),
                )
            ]
        if match := ZERO_REPLY.fullmatch(line):
            code = (
                DeviceEventCode.ZERO_DONE
                if match.group(1) == "A"
                else (DeviceEventCode.ZERO_FAILED)
            )
            return [DeviceEvent(codec=self.name, code=code, detail=line, raw_hex=raw.hex())]
        if line in ERRORS:
            return [DeviceEvent(codec=self.name, code=ERRORS[line], raw_hex=raw.hex())]
        return [self.bad(NOT_REPLY, raw, EXPECTED)]


CODECS = [
    StreamCodec(
        MtSicsDecoder.name,
        VERSION,
        "Mettler-Toledo MT-SICS level 0 replies: stable/dynamic weight, overload",
        MtSicsDecoder,
    )
]
