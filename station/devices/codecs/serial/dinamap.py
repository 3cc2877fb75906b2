"""GE DINAMAP host communications (ASCII): NIBP status and pulse-rate replies.

What is known, and from where. GE publishes the *Host Communications Reference Manual* 2010566
Rev. E for the DINAMAP ProCare and PRO 100-400 monitors ("Native Pro host comms revision 00" and
"DINAMAP Compact host comms revision 01"); only its table of contents could be read here
(docs/devices.md, "GE DINAMAP"). The facts this codec relies on come from an independent,
public program that drove a DINAMAP PRO 200 over RS-232 for a research study: tnez/TK-BP
(University of Kentucky, 2010), files TKBPController.h / TKBPController.m /
TKDinamapBPController.m:

* A command is ASCII text beginning with a space, two checksum characters, and CR:
  ` NC0!E` starts an NIBP determination, ` ND!5` cancels it, ` NA!2` reads the NIBP status,
  ` RC!8` reads the pulse rate. The checksum (TKDinamapBPController.m,
  `prepareStringForDinamap:`) adds `c - 0x20 + 1` over the characters, subtracting 0xFFF when
  the sum passes 0xFFF, and sends `0x20 + (sum >> 6)` then `0x20 + (sum & 0x3F)`; the four
  command constants in TKBPController.h carry exactly those checksums (tests hold them).
* The NIBP status reply is read at fixed character offsets: status at 3 (1 = a valid result,
  above 2 = the determination failed), a time counter at 6-9 that drops when a new
  determination completes, systolic 10-12, diastolic 13-15, mean 16-18 (mmHg); a reply under 20
  characters is not a reading. The pulse-rate reply carries the rate at 4-6.

What is NOT known from a public source, and how the codec stays safe anyway: the meaning of
characters 4-5 of the status reply, whether replies carry a checksum (the manual's Appendix D,
"Messages with checksums", could not be read), the SpO2 and temperature commands, the line
settings. So: every field the codec reads must be digits where a number is expected or the
reply is reported as damaged; characters it does not interpret stay in the raw bytes; the first
status reply after the station connects is a baseline, never a reading (it may be a previous
patient's result); a result is taken only when the time counter drops, as TK-BP does; and
values pass the same plausibility checks as every reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from station.devices.codecs.base import StreamCodec, StreamEvent
from station.devices.codecs.serial._stream import NEED, Bad, Frame, FramedDecoder, Scan, Skip
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.models import BloodPressure
from station.units import Unit
from station.validation import with_plausibility_flag

VERSION = "1"
CR = 0x0D
SPACE = 0x20
MAX_LINE = 64
STATUS_MIN_LEN = 19  # " NA", status, 2 characters, counter (4), sys, dia, MAP (3 each)
PULSE_MIN_LEN = 7  # " RC", 1 character, rate (3)
STATUS_VALID = 1
STATUS_FAILED_ABOVE = 2


def checksum(text: bytes) -> bytes:
    """The two checksum characters of a host message (TK-BP, `prepareStringForDinamap:`)."""
    total = 0
    for byte in text:
        total += byte - SPACE + 1
        if total > 0xFFF:
            total -= 0xFFF
    return bytes([SPACE + (total >> 6), SPACE + (total & 0x3F)])


def command(text: bytes) -> bytes:
    """A host command: its text, its checksum, CR."""
    return text + checksum(text) + b"\r"


START_DETERMINATION = command(b" NC0")
CANCEL_DETERMINATION = command(b" ND")
READ_NIBP_STATUS = command(b" NA")
READ_PULSE_RATE = command(b" RC")


def _digits(text: bytes, start: int, count: int, field: str) -> int | str:
    """The number at `start`, or why it is not one (a problem for the damage report)."""
    part = text[start : start + count]
    if len(part) == count and part.isdigit():
        return int(part)
    return f"{field} is {part.decode('ascii', 'replace')!r}"


class DinamapDecoder(FramedDecoder):
    name: ClassVar[str] = "serial:dinamap-host"
    version: ClassVar[str] = VERSION

    def __init__(self) -> None:
        super().__init__()
        self._counter: int | None = None  # the time counter of the last status reply
        self._status: int | None = None
        self._pending: tuple[BloodPressure, bytes] | None = None  # waiting for its pulse rate

    # -- framing: ` XY...` up to CR ------------------------------------------------------------

    def _scan(self, buf: bytearray) -> Scan:
        if buf[0] != SPACE:
            at = buf.find(b" ")
            return Skip(len(buf) if at < 0 else at)
        if len(buf) < 3:
            return NEED
        if not (0x41 <= buf[1] <= 0x5A and 0x41 <= buf[2] <= 0x5A):
            return Skip(1)  # a space inside noise, not a reply
        end = buf.find(b"\r", 0, MAX_LINE)
        if end < 0:
            if len(buf) >= MAX_LINE:
                return Bad(MAX_LINE, f"no CR within {MAX_LINE} bytes", "a reply ending in CR")
            return NEED
        return Frame(end + 1)

    # -- replies -------------------------------------------------------------------------------

    def _decode(self, raw: bytes) -> Sequence[StreamEvent]:
        text = raw[:-1]
        if text[:3] == b" NA":
            return self._status_reply(raw, text)
        if text[:3] == b" RC":
            return self._pulse_reply(raw, text)
        return [
            DeviceEvent(
                codec=self.name,
                code=DeviceEventCode.REPLY,
                detail=f"reply {text[1:3].decode('ascii')}",
                raw_hex=raw.hex(),
            )
        ]

    def _status_reply(self, raw: bytes, text: bytes) -> list[StreamEvent]:
        expected = (
            "' NA', status digit, 2 characters, a 4-digit time counter, then systolic, "
            "diastolic and mean as 3 digits each, CR"
        )
        if len(text) < STATUS_MIN_LEN:
            return [self.bad(f"NIBP status reply of {len(text)} characters", raw, expected)]
        status = _digits(text, 3, 1, "status")
        counter = _digits(text, 6, 4, "time counter")
        for value in (status, counter):
            if isinstance(value, str):
                return [self.bad(value, raw, expected)]
        assert isinstance(status, int) and isinstance(counter, int)
        out: list[StreamEvent] = self._flush_pending()
        previous, previous_status = self._counter, self._status
        self._counter, self._status = counter, status
        if previous is None:
            # Connected mid-way: whatever the monitor holds may be a previous patient's.
            return [*out, self._event(DeviceEventCode.REPLY, "baseline status, not taken", raw)]
        if counter >= previous:
            if status > STATUS_FAILED_ABOVE and status != previous_status:
                detail = f"NIBP determination failed (status {status})"
                return [*out, self._event(DeviceEventCode.DEVICE_ERROR, detail, raw)]
            return out
        # The time counter dropped: a determination has ended.
        if status != STATUS_VALID:
            detail = f"NIBP determination ended without a result (status {status})"
            return [*out, self._event(DeviceEventCode.DEVICE_ERROR, detail, raw)]
        values = [
            _digits(text, 10, 3, "systolic"),
            _digits(text, 13, 3, "diastolic"),
            _digits(text, 16, 3, "mean"),
        ]
        for value in values:
            if isinstance(value, str):
                return [*out, self.bad(value, raw, expected)]
        systolic, diastolic, mean = (float(v) for v in values)
        reading = BloodPressure(
            systolic_mmhg=systolic,
            diastolic_mmhg=diastolic,
            mean_arterial_mmhg=mean,
            unit_as_sent=Unit.MMHG,
            codec=self.name,
            codec_version=self.version,
            raw_hex=raw.hex(),
        )
        self._pending = (reading, raw)
        out.append(self._event(DeviceEventCode.MEASUREMENT_COMPLETE, "NIBP result", raw))
        return out

    def _pulse_reply(self, raw: bytes, text: bytes) -> list[StreamEvent]:
        if len(text) < PULSE_MIN_LEN:
            return [
                self.bad(
                    f"pulse-rate reply of {len(text)} characters",
                    raw,
                    "' RC', 1 character, the rate as 3 digits, CR",
                )
            ]
        rate = _digits(text, 4, 3, "pulse rate")
        if isinstance(rate, str):
            return [*self._flush_pending(), self.bad(rate, raw, "the rate as 3 digits")]
        if self._pending is None:
            return [self._event(DeviceEventCode.REPLY, "pulse rate with no result waiting", raw)]
        reading, status_raw = self._pending
        self._pending = None
        # One determination, one reading: the status reply and the pulse-rate reply it needed,
        # both kept byte for byte.
        combined = reading.model_copy(
            update={"pulse_rate_bpm": float(rate), "raw_hex": (status_raw + raw).hex()}
        )
        return [with_plausibility_flag(BloodPressure.model_validate(combined.model_dump()))]

    def _flush_pending(self) -> list[StreamEvent]:
        """A result whose pulse-rate reply never came: the pressures alone, never dropped."""
        if self._pending is None:
            return []
        reading, _ = self._pending
        self._pending = None
        return [with_plausibility_flag(reading)]

    def _event(self, code: DeviceEventCode, detail: str, raw: bytes) -> DeviceEvent:
        return DeviceEvent(codec=self.name, code=code, detail=detail, raw_hex=raw.hex())


CODECS = [
    StreamCodec(
        DinamapDecoder.name,
        VERSION,
        "GE DINAMAP host communications (ASCII): NIBP status and pulse rate",
        DinamapDecoder,
    )
]
