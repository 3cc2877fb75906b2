"""SMA standard serial scale protocol (SCP-0499): `<LF>W<CR>` polls, 20-byte weight replies
(24 with the Detecto 758C's `W01,` prefix)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from station.devices.codecs.base import StreamCodec, StreamEvent
from station.devices.codecs.serial._stream import NEED, Bad, Frame, FramedDecoder, Scan, Skip
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.models import BodyWeight, Flag
from station.units import Unit, lb_to_kg
from station.validation import with_plausibility_flag

VERSION = "2"
LF, CR = 0x0A, 0x0D
# <LF> s r n m f <10-char weight> <3-char unit> <CR>
REPLY_LEN = 20
# The Detecto / Cardinal 758C puts the text "W01," between the LF and the status character:
# `<lf>W01,<s><r><n><m><f><xxxxxx.xxx><uuu><cr>` (758C Owner's Manual 8555-M210-O1 rev R,
# p. 32, "SMA Standard Format").
PREFIX = re.compile(rb"\nW\d\d,")
MAX_FRAME = REPLY_LEN + len(b"W01,")

STATUS: dict[str, Flag | None] = {
    " ": None,
    "Z": None,  # centre of zero: a valid (near-zero) weight
    "O": Flag.OVER_RANGE,
    "U": Flag.UNDER_RANGE,
    "E": Flag.ZERO_ERROR,
    "I": Flag.ZERO_ERROR,  # initial zero error
    "T": Flag.TARE_ERROR,
    "e": Flag.MEASUREMENT_UNAVAILABLE,  # weight not being displayed (Cardinal 190 manual)
}
# Gross / net / tare; lower case is the high-resolution reply to H.
GROSS_NET = {"G": False, "N": True, "g": False, "n": True}
UNITS: dict[str, Unit] = {"kg": Unit.KG, "lb": Unit.LB}
WEIGHT = re.compile(r" *[-+]? *\d+(?:\.\d+)?|[- ]+")
EXPECTED_REPLY = "<LF> s r n m f <10-char weight> <3-char unit> <CR> (20 bytes)"
SHORT_REPLIES = {
    b"\n?\r": DeviceEventCode.UNKNOWN_COMMAND,
    b"\n!\r": DeviceEventCode.COMMUNICATION_ERROR,
}


def poll_command(command: str = "W") -> bytes:
    """The request for a reply: W weight, H high resolution, Z zero, T tare, ..."""
    return b"\n" + command.encode("ascii") + b"\r"


class SmaDecoder(FramedDecoder):
    name: ClassVar[str] = "serial:sma"
    version: ClassVar[str] = VERSION

    def _scan(self, buf: bytearray) -> Scan:
        if buf[0] != LF:
            lf = buf.find(b"\n")
            return Skip(len(buf) if lf < 0 else lf)
        for i in range(1, min(len(buf), MAX_FRAME)):
            if buf[i] == CR:
                return Frame(i + 1)
            if buf[i] == LF:
                return Bad(
                    i, "truncated frame: a new frame (LF) began before the CR", EXPECTED_REPLY
                )
        if len(buf) >= MAX_FRAME:
            return Bad(MAX_FRAME, f"no CR within {MAX_FRAME} bytes", EXPECTED_REPLY)
        return NEED

    def _decode(self, raw: bytes) -> Sequence[StreamEvent]:
        if raw in SHORT_REPLIES:
            return [DeviceEvent(codec=self.name, code=SHORT_REPLIES[raw], raw_hex=raw.hex())]
        prefix = PREFIX.match(raw)
        body = raw[prefix.end() :] if prefix else raw[1:]
        if len(body) != REPLY_LEN - 1:
            return [self.bad(f"reply is {len(raw)} bytes", raw, EXPECTED_REPLY)]
        text = body[:-1].decode("ascii", "replace")
        status, weight_range, gross_net, motion = text[0], text[1], text[2], text[3]
        weight_text, unit_text = text[5:15], text[15:18].strip()
        if status not in STATUS:
            return [self.bad(f"status {status!r} unknown", raw, "one of ' ZOUEITe'")]
        if not weight_range.isdigit():
            return [self.bad(f"range {weight_range!r} is not a digit", raw, "1–8")]
        if gross_net not in GROSS_NET and gross_net != "T":
            return [self.bad(f"gross/net {gross_net!r} unknown", raw, "G, N, T, g or n")]
        if motion not in " M":
            return [self.bad(f"motion {motion!r} unknown", raw, "M or a space")]
        if not WEIGHT.fullmatch(weight_text):
            return [self.bad(f"weight {weight_text!r} malformed", raw, "a number or dashes")]
        dashed = "-" in weight_text and not any(c.isdigit() for c in weight_text)
        if dashed and not unit_text:
            # Dashes and a blank unit: the reply to a "weight with stability" request (P, Q)
            # when the scale did not settle within its timeout, `<LF> 1n f----------   <CR>`
            # (Fairbanks 51207 rev 1, SMA chapter 5, "Requesting the High-Resolution Weight
            # with Stability"; 51209 rev 2 ch. 6.3.2). No weight, and not a unit problem.
            flag = STATUS[status]
            return [
                DeviceEvent(
                    codec=self.name,
                    code=DeviceEventCode.NO_STABLE_WEIGHT
                    if flag is None
                    else DeviceEventCode.DEVICE_ERROR,
                    detail=(
                        "no stable weight within the scale's timeout (weighing again)"
                        if flag is None
                        else f"no weight: {flag.value.replace('_', ' ')}"
                    ),
                    raw_hex=raw.hex(),
                )
            ]
        unit = UNITS.get(unit_text)
        if unit is None:
            return [
                self.bad(
                    f"unit {unit_text!r} not supported", raw, "kg or lb (set the scale to kg or lb)"
                )
            ]
        value = None if dashed else float(weight_text.replace(" ", ""))
        if gross_net == "T":
            return [
                DeviceEvent(
                    codec=self.name,
                    code=DeviceEventCode.TARE_WEIGHT,
                    detail=f"{weight_text.strip()} {unit_text}",
                    raw_hex=raw.hex(),
                )
            ]
        flags = {flag for flag in (STATUS[status],) if flag is not None}
        if motion == "M":
            flags.add(Flag.IN_MOTION)
        if GROSS_NET[gross_net]:
            flags.add(Flag.NET_WEIGHT)
        weight_kg = None if value is None else (lb_to_kg(value) if unit == Unit.LB else value)
        reading = BodyWeight(
            weight_kg=weight_kg,
            unit_as_sent=unit,
            flags=tuple(flags),
            codec=self.name,
            codec_version=self.version,
            raw_hex=raw.hex(),
        )
        return [with_plausibility_flag(reading)]


CODECS = [
    StreamCodec(
        SmaDecoder.name,
        VERSION,
        "SMA standard scale protocol: weight replies with status, motion, unit",
        SmaDecoder,
    )
]
