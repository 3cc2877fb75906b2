"""Health o meter Professional Pro Plus scales: the "PC communication protocol" (ESC protocol).

Every packet is a run of fields, each an ESC (0x1B) followed by one letter and its parameters,
ending with the end-of-packet field `ESC E`. A reading, sent by the scale when it has weighed a
patient, looks like the manual's example (Pro Plus 1100KL/2650KL/2700KL Operation Manual,
"PC Communication Protocol", p. 33):

    <ESC>R<ESC>I1234567890<ESC>W200.00<ESC>Nm<ESC>...<ESC>E

R reading; I patient ID (10 characters); W weight `nnn.nn`; H height `nnn.nn`; T tare being
tared out `nnn.nn`; B BMI `nnn.n`; N units (`m` metric, `c` "constitutional", i.e. US customary);
D date and time; E end of packet. The power-status reply is `<ESC>O<ESC>E` (on), `<ESC>F<ESC>E`
(off) or `<ESC>L<ESC>E` (low power), and a settings request `<ESC>QAHT` is answered
`<ESC>PAHT=10<ESC>E` (same page). There is no checksum: a packet must match that layout field
by field or it is reported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from station.devices.codecs.base import StreamCodec, StreamEvent
from station.devices.codecs.serial._stream import NEED, Bad, Frame, FramedDecoder, Scan, Skip
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.models import BodyWeight, Flag
from station.units import Unit, inch_to_cm, lb_to_kg
from station.validation import with_plausibility_flag

VERSION = "1"
ESC = 0x1B
END = b"\x1bE"
# The longest documented packet is a reading with every field: R, I (10), W, H, T (7 each),
# B (6), N (2), D (12), E, each with its ESC: under 70 bytes. Anything longer without an end
# of packet is damage, not a packet.
MAX_PACKET = 96
# Letters that open a packet the scale sends: reading, power on / off / low power, the answer to
# a settings request (P). Anything else after an ESC at the start of a packet is noise.
PACKET_STARTS = frozenset(b"ROFLP")
POWER = {b"O": "power on", b"F": "power off", b"L": "low power"}
# Field letters of a reading (p. 33) and the form of their parameters.
NUMBER = re.compile(r"\d{1,3}(?:\.\d{1,2})?")  # Wnnn.nn, Hnnn.nn, Tnnn.nn, Bnnn.n
READING_FIELDS = frozenset("IWHTBND")
UNITS = {"m": (Unit.KG, Unit.CM), "c": (Unit.LB, Unit.INCH)}
EXPECTED = "<ESC>R<ESC>I<id><ESC>W<nnn.nn>[<ESC>H..][<ESC>T..][<ESC>B..]<ESC>N<m|c><ESC>E"


def reading_packet(
    weight: str,
    units: str = "m",
    *,
    patient_id: str | None = None,
    height: str | None = None,
    tare: str | None = None,
    bmi: str | None = None,
) -> bytes:
    """A reading packet in the order of the manual's example (I, W, H, T, B, N)."""
    fields = [b"R"]
    if patient_id is not None:
        fields.append(b"I" + patient_id.encode("ascii"))
    fields.append(b"W" + weight.encode("ascii"))
    for letter, value in ((b"H", height), (b"T", tare), (b"B", bmi)):
        if value is not None:
            fields.append(letter + value.encode("ascii"))
    fields += [b"N" + units.encode("ascii"), b"E"]
    return b"".join(b"\x1b" + field for field in fields)


class HealthOMeterDecoder(FramedDecoder):
    name: ClassVar[str] = "serial:healthometer-esc"
    version: ClassVar[str] = VERSION

    def _scan(self, buf: bytearray) -> Scan:
        if buf[0] != ESC:
            at = buf.find(b"\x1b")
            return Skip(len(buf) if at < 0 else at)
        if len(buf) < 2:
            return NEED
        if buf[1] not in PACKET_STARTS:
            return Skip(1)  # the middle of a packet whose start was lost
        end = buf.find(END, 1, MAX_PACKET)
        # A new reading before this packet ended: this one was cut short.
        restart = buf.find(b"\x1bR", 1, MAX_PACKET if end < 0 else end)
        if restart > 0:
            return Bad(restart, "packet cut short by the next reading (no <ESC>E)", EXPECTED)
        if end >= 0:
            return Frame(end + len(END))
        if len(buf) >= MAX_PACKET:
            return Bad(MAX_PACKET, f"no end of packet (<ESC>E) within {MAX_PACKET} bytes", EXPECTED)
        return NEED

    def _decode(self, raw: bytes) -> Sequence[StreamEvent]:
        fields = raw[:-2].split(b"\x1b")[1:]  # drop the end-of-packet field
        head = fields[0]
        if head in POWER and len(fields) == 1:
            return [self._event(DeviceEventCode.REPLY, POWER[head], raw)]
        if head[:1] == b"P" and len(fields) == 1:
            # A settings answer (`PAHT=10`): shown to biomed as it came, never a measurement.
            text = head[1:].decode("ascii", "replace")
            return [self._event(DeviceEventCode.REPLY, f"setting {text}", raw)]
        if head != b"R":
            return [self.bad(f"packet {head[:8]!r} not understood", raw, EXPECTED)]
        return self._reading(fields[1:], raw)

    def _reading(self, fields: list[bytes], raw: bytes) -> Sequence[StreamEvent]:
        values: dict[str, str] = {}
        for field in fields:
            text = field.decode("ascii", "replace")
            letter, value = text[:1], text[1:]
            if letter not in READING_FIELDS:
                return [self.bad(f"field {letter!r} unknown in a reading", raw, EXPECTED)]
            if letter in values:
                return [self.bad(f"field {letter!r} twice in one reading", raw, EXPECTED)]
            values[letter] = value
        if "W" not in values:
            return [self.bad("reading without a weight (W)", raw, EXPECTED)]
        units = UNITS.get(values.get("N", ""))
        if units is None:
            problem = f"units {values['N']!r} unknown" if "N" in values else "no units field (N)"
            return [
                self.bad(problem, raw, "N followed by m (metric) or c (constitutional: lb, in)")
            ]
        if len(values.get("I", "")) > 10:
            return [self.bad("patient ID longer than 10 characters", raw, EXPECTED)]
        numbers: dict[str, float | None] = {}
        for letter in "WHTB":
            number = values.get(letter)
            if number is None:
                numbers[letter] = None
                continue
            if not NUMBER.fullmatch(number.strip()):
                return [self.bad(f"{letter} value {number!r} malformed", raw, "nnn.nn")]
            numbers[letter] = float(number)
        weight_unit, height_unit = units
        weight = float(values["W"])  # present and well formed: checked above
        height = numbers["H"]
        flags: set[Flag] = set()
        if numbers["T"]:
            # "the TARE weight that the scale is taring out": the weight sent is net of it.
            flags.add(Flag.NET_WEIGHT)
        reading = BodyWeight(
            weight_kg=lb_to_kg(weight) if weight_unit == Unit.LB else weight,
            height_cm=None
            if height is None or height == 0
            else (inch_to_cm(height) if height_unit == Unit.INCH else height),
            bmi_kg_m2=numbers["B"] or None,
            unit_as_sent=weight_unit,
            flags=tuple(flags),
            codec=self.name,
            codec_version=self.version,
            raw_hex=raw.hex(),
        )
        return [with_plausibility_flag(reading)]

    def _event(self, code: DeviceEventCode, detail: str, raw: bytes) -> DeviceEvent:
        return DeviceEvent(codec=self.name, code=code, detail=detail, raw_hex=raw.hex())


CODECS = [
    StreamCodec(
        HealthOMeterDecoder.name,
        VERSION,
        "Health o meter Pro Plus ESC protocol: weight, height, BMI readings sent by the scale",
        HealthOMeterDecoder,
    )
]
