"""GE DINAMAP host communications (ASCII): NIBP, pulse rate, SpO2 and temperature.

GE's *Host Communications Reference Manual* 2010566 Rev. E (DINAMAP ProCare / PRO 100-400,
Carescape V100) could not be read here beyond its table of contents (docs/devices.md,
"GE DINAMAP"). The facts below come from two independent public programs that talk to these
monitors:

* tnez/TK-BP (University of Kentucky, 2010; drove a DINAMAP PRO 200): TKBPController.h gives
  the command strings with their checksums — ` NC0!E` start an NIBP determination, ` ND!5`
  cancel, ` NA!2` read the NIBP status, ` RC!8` read the heart rate — and the NIBP reply's
  offsets; TKDinamapBPController.m gives the checksum rule (`prepareStringForDinamap:`): add
  `c - 0x20 + 1` per character, subtract 0xFFF when the sum passes 0xFFF, send
  `0x20 + (sum >> 6)` and `0x20 + (sum & 0x3F)`; TKBPController.m takes a result only when the
  time counter drops (a new determination) and only with status 1.
* A C# EMR integration for the Carescape V100 (namespace `Emr.Devices.GeV100`, class
  `GeV100SerialConn`; public source, repository name not recoverable here) that quotes the
  manual's reply definitions with their requirement ids, and sends ` OA!3`, ` RA!6`, ` TC!:`
  (whose checksums the rule above reproduces) at 9600 8N1:
  - `uNAabcddddeeefffggg` [HC_009]: a status (0 busy, 1 done OK, 2 not used, 3 failed,
    4 pump-up timeout, 6 total-time timeout, 7 one-pressure timeout, 8 overpressure or excess
    air in the cuff, 9 unknown), b adult/neonate, c normal/stat, dddd seconds since the last
    determination (0-5400), eee systolic, fff diastolic, ggg mean;
  - `uOAabbbcdd` [HC_020]: a channel status (0 standby, 1 operate OK, 3 no data — ProCare:
    includes sensor off —, 6 sensor unplugged), bbb SpO2, c signal strength 0-9, dd averaging;
  - `uRAabbb` [HC_023]: a the rate's source (2 pulse oximeter, 3 NIBP), bbb the rate;
  - `uTCabcdddddeeeef` [HC_028]: a status (0 last determination OK / idle, 1 in progress,
    2 timeout, 3 loss of tissue contact or out of range, 4 aborted / probe unplugged or bad),
    b mode (0 predictive, 1 monitor), c a new-determination counter character (' ' to '~',
    incremented at each start, wrapping), ddddd seconds since the last determination (99999:
    none, or older than 99990 s), eeee the temperature in tenths of degrees F, f the bedside
    display's unit (0 F, 1 C).
  `u` is the unit identifier: a space in every program seen.

Not known from a public source: whether replies end with the two checksum characters commands
carry (Appendix D of the manual, unread), the alarm flags, the temperature site. So every field
the codec reads must be digits where a number is expected, or the reply is reported as damaged
with its bytes; what it does not interpret stays in the raw bytes; the first status of each
parameter after the station connects is a baseline, never a reading (it may be the previous
patient's); and every value passes the plausibility checks every reading does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from station.devices.codecs.base import StreamCodec, StreamEvent
from station.devices.codecs.serial._stream import NEED, Bad, Frame, FramedDecoder, Scan, Skip
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.models import BloodPressure, Flag, PulseOximetry, Temperature
from station.units import Unit, fahrenheit_to_celsius
from station.validation import with_plausibility_flag

VERSION = "2"
CR = 0x0D
SPACE = 0x20
MAX_LINE = 64
NIBP_MIN_LEN = 19  # " NA" a b c dddd eee fff ggg
RATE_MIN_LEN = 7  # " RA" a bbb (TK-BP's " RC": rate at the same offsets)
SPO2_MIN_LEN = 10  # " OA" a bbb c dd
TEMP_MIN_LEN = 16  # " TC" a b c ddddd eeee f

NIBP_DONE_OK = 1
NIBP_STATUS = {
    0: "busy",
    1: "done OK",
    2: "not used",
    3: "determination failed",
    4: "pump-up timeout",
    6: "total time timeout",
    7: "one-pressure timeout",
    8: "overpressure or excess air in the cuff",
    9: "unknown NIBP status",
}
NIBP_NO_RECENT = 9999  # "dddd" when there is no recent determination
SPO2_STATUS = {0: "standby", 1: "operate OK", 3: "no data", 6: "sensor unplugged"}
SPO2_OK = 1
SPO2_SENSOR_OFF = {3: Flag.SENSOR_UNCONNECTED_TO_USER, 6: Flag.SENSOR_DISCONNECTED}
RATE_FROM_OXIMETER, RATE_FROM_NIBP = 2, 3
TEMP_OK = 0
TEMP_STATUS = {
    0: "last determination OK",
    1: "determination in progress",
    2: "determination timeout",
    3: "loss of tissue contact, or temperature out of range",
    4: "determination aborted, probe unplugged or bad probe",
}
TEMP_NONE = 99999


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
READ_HEART_RATE = command(b" RC")  # TK-BP's, after an NIBP determination
READ_PULSE_RATE = command(b" RA")  # the V100 program's: the rate with its source
READ_SPO2 = command(b" OA")
READ_TEMPERATURE = command(b" TC")


def _digits(text: bytes, start: int, count: int, field: str) -> int | str:
    """The number at `start`, or why it is not one (a problem for the damage report)."""
    part = text[start : start + count]
    if len(part) == count and part.isdigit():
        return int(part)
    return f"{field} is {part.decode('ascii', 'replace')!r}, expected {count} digit(s)"


class DinamapDecoder(FramedDecoder):
    name: ClassVar[str] = "serial:dinamap-host"
    version: ClassVar[str] = VERSION

    def __init__(self) -> None:
        super().__init__()
        self._nibp_counter: int | None = None  # "dddd" of the last NIBP status
        self._nibp_status: int | None = None
        self._pending: tuple[BloodPressure, bytes] | None = None  # waiting for its rate
        self._oximeter_rate: tuple[int, bytes] | None = None  # RA from the oximeter, for OA
        self._spo2_status: int | None = None
        self._temp_counter: int | None = None  # "c" of the last temperature status
        self._temp_status: int | None = None

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
        kind = text[1:3]
        if kind == b"NA":
            return self._nibp(raw, text)
        if kind in (b"RA", b"RC"):
            return self._rate(raw, text)
        if kind == b"OA":
            return self._spo2(raw, text)
        if kind == b"TC":
            return self._temperature(raw, text)
        return [self._event(DeviceEventCode.REPLY, f"reply {kind.decode('ascii')}", raw)]

    def _fields(
        self, raw: bytes, text: bytes, minimum: int, expected: str, *fields: tuple[int, int, str]
    ) -> list[int] | StreamEvent:
        if len(text) < minimum:
            return self.bad(
                f"{text[1:3].decode('ascii')} reply of {len(text)} characters", raw, expected
            )
        values: list[int] = []
        for start, count, name in fields:
            value = _digits(text, start, count, name)
            if isinstance(value, str):
                return self.bad(value, raw, expected)
            values.append(value)
        return values

    def _nibp(self, raw: bytes, text: bytes) -> list[StreamEvent]:
        expected = (
            "' NA', status, 2 digits, 4-digit seconds, then systolic, diastolic and mean "
            "(3 digits each), CR"
        )
        got = self._fields(
            raw,
            text,
            NIBP_MIN_LEN,
            expected,
            (3, 1, "status"),
            (6, 4, "time since last determination"),
        )
        if not isinstance(got, list):
            return [got]
        status, counter = got
        out: list[StreamEvent] = self._flush_pending()
        previous, previous_status = self._nibp_counter, self._nibp_status
        self._nibp_counter, self._nibp_status = counter, status
        if previous is None:
            # Connected mid-way: whatever the monitor holds may be a previous patient's.
            return [*out, self._event(DeviceEventCode.REPLY, "NIBP baseline, not taken", raw)]
        failed = status not in (0, NIBP_DONE_OK)
        if failed and status != previous_status:
            what = NIBP_STATUS.get(status, f"status {status}")
            return [*out, self._event(DeviceEventCode.DEVICE_ERROR, f"NIBP: {what}", raw)]
        if counter >= previous or status != NIBP_DONE_OK or counter == NIBP_NO_RECENT:
            return out
        # The time since the last determination dropped, done OK: a new result.
        got = self._fields(
            raw,
            text,
            NIBP_MIN_LEN,
            expected,
            (10, 3, "systolic"),
            (13, 3, "diastolic"),
            (16, 3, "mean"),
        )
        if not isinstance(got, list):
            return [*out, got]
        systolic, diastolic, mean = (float(v) for v in got)
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

    def _rate(self, raw: bytes, text: bytes) -> list[StreamEvent]:
        expected = "' RA' or ' RC', the source digit, the rate as 3 digits, CR"
        got = self._fields(raw, text, RATE_MIN_LEN, expected, (4, 3, "rate"))
        if not isinstance(got, list):
            return [*self._flush_pending(), got]
        [rate] = got
        # TK-BP's RC is asked right after an NIBP result; RA says where its rate comes from.
        source = text[3:4]
        if text[1:3] == b"RA" and source == str(RATE_FROM_OXIMETER).encode("ascii"):
            self._oximeter_rate = (rate, raw)
            return []
        if self._pending is None:
            if text[1:3] == b"RA":
                return []  # the polled rate, with no NIBP result waiting for it
            return [self._event(DeviceEventCode.REPLY, "rate with no NIBP result waiting", raw)]
        reading, status_raw = self._pending
        self._pending = None
        # One determination, one reading: the status reply and the rate reply it needed,
        # both kept byte for byte.
        combined = reading.model_dump() | {
            "pulse_rate_bpm": float(rate),
            "raw_hex": (status_raw + raw).hex(),
        }
        return [with_plausibility_flag(BloodPressure.model_validate(combined))]

    def _spo2(self, raw: bytes, text: bytes) -> list[StreamEvent]:
        expected = "' OA', status, SpO2 (3 digits), signal strength, 2 digits, CR"
        got = self._fields(raw, text, SPO2_MIN_LEN, expected, (3, 1, "status"))
        if not isinstance(got, list):
            return [got]
        [status] = got
        rate, self._oximeter_rate = self._oximeter_rate, None
        previous, self._spo2_status = self._spo2_status, status
        if status in SPO2_SENSOR_OFF:
            return [
                PulseOximetry(
                    spo2_percent=None,
                    unit_as_sent=Unit.PERCENT,
                    flags=(SPO2_SENSOR_OFF[status],),
                    codec=self.name,
                    codec_version=self.version,
                    raw_hex=raw.hex(),
                )
            ]
        if status != SPO2_OK:
            if status == previous:
                return []
            what = SPO2_STATUS.get(status, f"status {status}")
            return [self._event(DeviceEventCode.REPLY, f"SpO2: {what}", raw)]
        got = self._fields(raw, text, SPO2_MIN_LEN, expected, (4, 3, "SpO2"))
        if not isinstance(got, list):
            return [got]
        [spo2] = got
        # The oximeter's rate, asked just before in the poll cycle, travels with it.
        used = b"" if rate is None else rate[1]
        reading = PulseOximetry(
            spo2_percent=float(spo2),
            pulse_rate_bpm=None if rate is None else float(rate[0]),
            unit_as_sent=Unit.PERCENT,
            codec=self.name,
            codec_version=self.version,
            raw_hex=(used + raw).hex(),
        )
        return [with_plausibility_flag(reading)]

    def _temperature(self, raw: bytes, text: bytes) -> list[StreamEvent]:
        expected = (
            "' TC', status, mode, a counter character, 5-digit seconds, the temperature in "
            "tenths of degrees F (4 digits), the display unit digit, CR"
        )
        got = self._fields(raw, text, TEMP_MIN_LEN, expected, (3, 1, "status"), (6, 5, "seconds"))
        if not isinstance(got, list):
            return [got]
        status, seconds = got
        counter = text[5]  # moves on when a determination starts
        previous_status, self._temp_status = self._temp_status, status
        if self._temp_counter is None:
            # Connected mid-way: the monitor's last temperature may be a previous patient's,
            # and so may a determination already running.
            self._temp_counter = counter
            return [self._event(DeviceEventCode.REPLY, "temperature baseline, not taken", raw)]
        if status not in (TEMP_OK, 1):
            if status == previous_status:
                return []
            what = TEMP_STATUS.get(status, f"status {status}")
            return [self._event(DeviceEventCode.DEVICE_ERROR, f"temperature: {what}", raw)]
        if status != TEMP_OK or seconds == TEMP_NONE or counter == self._temp_counter:
            return []
        got = self._fields(raw, text, TEMP_MIN_LEN, expected, (11, 4, "temperature"))
        if not isinstance(got, list):
            return [got]
        self._temp_counter = counter  # this determination is taken, once
        [tenths_f] = got
        reading = Temperature(
            temperature_c=round(fahrenheit_to_celsius(tenths_f / 10), 2),
            unit_as_sent=Unit.FAHRENHEIT,
            codec=self.name,
            codec_version=self.version,
            raw_hex=raw.hex(),
        )
        return [with_plausibility_flag(reading)]

    def _flush_pending(self) -> list[StreamEvent]:
        """A result whose rate reply never came: the pressures alone, never dropped."""
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
        "GE DINAMAP host communications (ASCII): NIBP, pulse rate, SpO2, temperature",
        DinamapDecoder,
    )
]
