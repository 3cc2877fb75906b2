"""Welch Allyn SureTemp Plus OEM thermometer module: `03 02 10`-framed packets (9600 8N1, polled).

A packet is preamble `03 02 10`, command u16 (high byte first), type (`01` command, `02` good
response, `03` NAK), data size u16 (LOW byte first), the data, and a checksum byte that makes
every byte of the packet sum to 0 mod 256. The host polls command 941C ("send temperature
record"); the module answers with the 19-byte TEMP record (floats are IEEE-754 little-endian,
as the manufacturer's own example shows: `76 AF 99 43` = 307.370789 K).

Only a FINAL state yields a Temperature reading, and only once per measurement: the module
keeps answering "final" on every poll until the probe goes back in its well, and a rooming wants
one value per measurement. Predicting and monitor records are `TemperatureProgress` (a live
value for the tile, never a vital sign); other state changes are `ThermometerStatus`; the error
state and NAKs are `DeviceEvent`s.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from enum import StrEnum
from typing import ClassVar

from pydantic import ConfigDict

from station.devices.codecs.base import StreamCodec, StreamEvent
from station.devices.codecs.serial._stream import NEED, Frame, FramedDecoder, Scan, Skip
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.models import Flag, Temperature, TemperatureSite
from station.units import Unit, kelvin_to_celsius
from station.validation import with_plausibility_flag

VERSION = "1"
PREAMBLE = b"\x03\x02\x10"
HEADER_LEN = 8  # preamble 3, command 2, type 1, size 2
TYPE_COMMAND, TYPE_RESPONSE, TYPE_NAK = 0x01, 0x02, 0x03
# The longest documented response is the software version (127 characters + NUL); anything
# claiming more is a preamble-shaped run inside noise, not a packet.
MAX_DATA = 160
CMD_TEMPERATURE_RECORD = 0x941C
CMD_ENABLE_ASYNC = 0x9434
TEMP_RECORD = struct.Struct("<ffIBBBHBB")  # 19 bytes (document p. 36 / p. 63)
# The 33-byte TEMP record (p. 35, example p. 64): a uint16 heater count and a uint16 sample
# counter where the 19-byte record has a uint32 counter, then after the probe type: probe
# resistance, ambient temperature (K), PTB resistance (float32 each) and battery (uint16,
# hundredths of a volt). Same state, algorithm and probe codes.
TEMP_RECORD_33 = struct.Struct("<ffHHBBBHBBfffH")
TEMP_RECORD_SIZES = (TEMP_RECORD.size, TEMP_RECORD_33.size)
# float32 carries ~0.00003 K at body temperature and the module resolves 0.1 °F: two decimals
# of °C keep every real digit and drop float32 noise (309.95 K -> 36.80001220703125 °C).
CELSIUS_DIGITS = 2


class SureTempState(StrEnum):
    """The TEMP record's "SureTemp state" byte (document p. 36)."""

    IDLE = "idle"
    NOT_READY = "not_ready"
    READY = "ready"
    PREDICT = "predict"
    PREDICT_DISPLAY = "predict_display"
    PREDICT_POSITION = "predict_position"
    FINAL = "final"
    FINAL_POSITION = "final_position"
    FINAL_OVER_TEMP = "final_over_temp"
    FINAL_OVER_TEMP_POSITION = "final_over_temp_position"
    FINAL_UNDER_TEMP = "final_under_temp"
    FINAL_UNDER_TEMP_POSITION = "final_under_temp_position"
    MONITOR = "monitor"  # "no predict (monitor mode)"
    END = "end"  # "end normal status"
    ERROR = "error"


STATE_CODES: dict[int, SureTempState] = {
    **{i: s for i, s in enumerate(list(SureTempState)[:14])},
    20: SureTempState.ERROR,
}
PREDICTING = frozenset(
    {SureTempState.PREDICT, SureTempState.PREDICT_DISPLAY, SureTempState.PREDICT_POSITION}
)
# Final states -> the flags the reading carries. "Over/under temp": the module says the value is
# beyond what its algorithm measures -> outside_device_range (validation rejects it, "use another
# device"). "Position": the module doubts the probe's placement -> questionable ("retake?").
FINAL_FLAGS: dict[SureTempState, tuple[Flag, ...]] = {
    SureTempState.FINAL: (),
    SureTempState.FINAL_POSITION: (Flag.QUESTIONABLE,),
    SureTempState.FINAL_OVER_TEMP: (Flag.OUTSIDE_DEVICE_RANGE,),
    SureTempState.FINAL_OVER_TEMP_POSITION: (Flag.OUTSIDE_DEVICE_RANGE, Flag.QUESTIONABLE),
    SureTempState.FINAL_UNDER_TEMP: (Flag.OUTSIDE_DEVICE_RANGE,),
    SureTempState.FINAL_UNDER_TEMP_POSITION: (Flag.OUTSIDE_DEVICE_RANGE, Flag.QUESTIONABLE),
}
# Algorithm byte: 0 oral, 1 rectal, 2 pediatric axillary, 3 cal key, 4 adult axillary.
ALGORITHM_SITES: dict[int, TemperatureSite | None] = {
    0: TemperatureSite.MOUTH,
    1: TemperatureSite.RECTUM,
    2: TemperatureSite.ARMPIT,
    3: None,
    4: TemperatureSite.ARMPIT,
}
ALGORITHM_CAL_KEY = 3
# Physical probe type: 0 oral/axillary (blue), 1 cal key, 2 rectal (red), 3 no probe.
PROBE_CAL_KEY, PROBE_RECTAL = 1, 2


def checksum(data: bytes | bytearray) -> int:
    """The byte that makes the whole packet sum to 0 mod 256."""
    return (0x100 - (sum(data) & 0xFF)) & 0xFF


def packet(command: int, packet_type: int, data: bytes = b"") -> bytes:
    """A whole packet: preamble, command (high byte first), type, size (low byte first), data."""
    body = PREAMBLE + command.to_bytes(2, "big") + bytes([packet_type])
    body += len(data).to_bytes(2, "little") + data
    return body + bytes([checksum(body)])


GET_TEMPERATURE_RECORD = packet(CMD_TEMPERATURE_RECORD, TYPE_COMMAND)  # 03 02 10 94 1C 01 00 00 3A


class TemperatureProgress(DeviceEvent):
    """A predicting (or monitor-mode) record: the probe's current temperature, for the live
    tile. Never a vital sign: the prediction is not done. A `DeviceEvent` (code `busy`: the
    module is measuring) so every consumer of serial events knows what to do with it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    code: DeviceEventCode = DeviceEventCode.BUSY
    state: SureTempState
    probe_temperature_c: float | None


class ThermometerStatus(DeviceEvent):
    """The module's state changed (idle, not ready, ready, end): reported once per change,
    as a `DeviceEvent` of code `reply` carrying the state."""

    code: DeviceEventCode = DeviceEventCode.REPLY
    state: SureTempState


def _celsius(kelvin: float) -> float | None:
    if not math.isfinite(kelvin) or kelvin <= 0.0:
        return None
    return round(kelvin_to_celsius(kelvin), CELSIUS_DIGITS)


def site_for(algorithm: int, probe_type: int) -> TemperatureSite | None:
    """The algorithm names the site; failing that, a rectal (red) probe means rectal. An
    oral/axillary probe alone cannot say which of the two: None."""
    if algorithm in ALGORITHM_SITES:
        return ALGORITHM_SITES[algorithm]
    return TemperatureSite.RECTUM if probe_type == PROBE_RECTAL else None


class SureTempDecoder(FramedDecoder):
    name: ClassVar[str] = "serial:suretemp-plus"
    version: ClassVar[str] = VERSION

    def __init__(self) -> None:
        super().__init__()
        self._state: SureTempState | None = None
        self._error: int = 0
        # The final record already turned into a reading (its temperature bytes), so repeated
        # polls of the same final give no second reading; cleared by any non-final state.
        self._final_sent: bytes | None = None
        # Whether this decoder saw the module predicting since the last final it reported. A
        # final without its prediction (the station connected, or reconnected, while the
        # probe showed a final) may be an earlier patient's: flagged from_storage, so the
        # wrong-patient guard trays it for the MA instead of adding it to the rooming.
        self._predicted = False

    def _header_problem(self, buf: bytearray, start: int) -> bool | None:
        """Whether a plausible header starts at `start` (None: too few bytes to say)."""
        for i, byte in enumerate(PREAMBLE):
            if len(buf) <= start + i:
                return None
            if buf[start + i] != byte:
                return False
        if len(buf) < start + HEADER_LEN:
            return None
        if buf[start + 5] not in (TYPE_COMMAND, TYPE_RESPONSE, TYPE_NAK):
            return False
        return int.from_bytes(buf[start + 6 : start + 8], "little") <= MAX_DATA

    def _valid_at(self, buf: bytearray, start: int) -> bool | None:
        header = self._header_problem(buf, start)
        if not header:
            return header
        end = start + HEADER_LEN + int.from_bytes(buf[start + 6 : start + 8], "little") + 1
        if len(buf) < end:
            return None
        return sum(buf[start:end]) & 0xFF == 0

    def _scan(self, buf: bytearray) -> Scan:
        header = self._header_problem(buf, 0)
        if header is None:
            return NEED
        if not header:
            return Skip(1)
        length = HEADER_LEN + int.from_bytes(buf[6:8], "little") + 1
        inside = self._frame_inside(buf, length, "packet")
        if inside is not None:
            return inside
        if len(buf) < length:
            return NEED
        if sum(buf[:length]) & 0xFF:
            expected = checksum(buf[: length - 1])
            return self._resync_or_bad(
                buf,
                length,
                f"checksum {buf[length - 1]:02x} does not match",
                f"{expected:02x} (every byte of the packet summing to 0 mod 256)",
            )
        return Frame(length)

    def _decode(self, raw: bytes) -> Sequence[StreamEvent]:
        command = int.from_bytes(raw[3:5], "big")
        packet_type = raw[5]
        data = raw[HEADER_LEN:-1]
        if packet_type == TYPE_NAK:
            detail = f"command {command:04X} refused"
            if len(data) >= 2:  # NAK data layout not confirmed by the document: kept raw too
                detail += f" (error code {int.from_bytes(data[:2], 'little')})"
            return [
                DeviceEvent(
                    codec=self.name, code=DeviceEventCode.NAK, detail=detail, raw_hex=raw.hex()
                )
            ]
        if packet_type == TYPE_COMMAND:
            return [
                DeviceEvent(
                    codec=self.name,
                    code=DeviceEventCode.REPLY,
                    detail=f"a host command ({command:04X}) on the device's line",
                    raw_hex=raw.hex(),
                )
            ]
        if command == CMD_TEMPERATURE_RECORD:
            if len(data) not in TEMP_RECORD_SIZES:
                return [
                    self.bad(
                        f"temperature record of {len(data)} data bytes",
                        raw,
                        f"{TEMP_RECORD.size} or {TEMP_RECORD_33.size} data bytes (command 941C)",
                    )
                ]
            return self._record(raw, data)
        if not data:
            return [
                DeviceEvent(
                    codec=self.name,
                    code=DeviceEventCode.ACK,
                    detail=f"{command:04X}",
                    raw_hex=raw.hex(),
                )
            ]
        return [
            DeviceEvent(
                codec=self.name,
                code=DeviceEventCode.REPLY,
                detail=f"reply to {command:04X}: {len(data)} data bytes",
                raw_hex=raw.hex(),
            )
        ]

    def _record(self, raw: bytes, data: bytes) -> Sequence[StreamEvent]:
        if len(data) == TEMP_RECORD.size:
            final_k, probe_k, _samples, _method, algorithm, state_code, error, _active, probe = (
                TEMP_RECORD.unpack(data)
            )
        else:
            final_k, probe_k, _heater, _samples, _method, algorithm, state_code, error = (
                TEMP_RECORD_33.unpack(data)[:8]
            )
            probe = TEMP_RECORD_33.unpack(data)[9]
        state = STATE_CODES.get(state_code)
        if state is None:
            return [self.bad(f"SureTemp state {state_code} unknown", raw, "0–13 or 20")]
        previous, self._state = self._state, state
        if state in FINAL_FLAGS:
            return self._final(
                raw, data, state=state, final_k=final_k, algorithm=algorithm, probe=probe
            )
        self._final_sent = None
        if state is SureTempState.ERROR:
            changed = previous is not SureTempState.ERROR or error != self._error
            self._error = error
            if not changed:
                return []
            return [
                DeviceEvent(
                    codec=self.name,
                    code=DeviceEventCode.DEVICE_ERROR,
                    detail=f"SureTemp error code {error}",
                    raw_hex=raw.hex(),
                )
            ]
        self._error = 0
        if state in PREDICTING:
            self._predicted = True
        if state in PREDICTING or state is SureTempState.MONITOR:
            return [
                TemperatureProgress(
                    codec=self.name,
                    detail=state.value,
                    state=state,
                    probe_temperature_c=_celsius(probe_k),
                    raw_hex=raw.hex(),
                )
            ]
        if state is previous:
            return []
        return [
            ThermometerStatus(codec=self.name, detail=state.value, state=state, raw_hex=raw.hex())
        ]

    def _final(
        self,
        raw: bytes,
        data: bytes,
        *,
        state: SureTempState,
        final_k: float,
        algorithm: int,
        probe: int,
    ) -> Sequence[StreamEvent]:
        key = data[:4] + bytes([algorithm, probe])
        if key == self._final_sent:
            return []  # the same final, polled again while the probe is still out
        celsius = _celsius(final_k)
        if celsius is None:
            return [
                self.bad(
                    f"final temperature {final_k!r} K is not a temperature",
                    raw,
                    "a positive, finite float32 in kelvin",
                )
            ]
        self._final_sent = key
        flags = FINAL_FLAGS[state]
        if algorithm == ALGORITHM_CAL_KEY or probe == PROBE_CAL_KEY:
            flags = (*flags, Flag.TESTING_DATA)  # the calibration key, not a patient
        if not self._predicted:
            flags = (*flags, Flag.FROM_STORAGE)
        self._predicted = False
        reading = Temperature(
            temperature_c=celsius,
            site=site_for(algorithm, probe),
            unit_as_sent=Unit.KELVIN,
            flags=flags,
            codec=self.name,
            codec_version=self.version,
            raw_hex=raw.hex(),
        )
        return [with_plausibility_flag(reading)]


CODECS = [
    StreamCodec(
        SureTempDecoder.name,
        VERSION,
        "Welch Allyn SureTemp Plus OEM module: polled temperature record (941C), one final each",
        SureTempDecoder,
    )
]
