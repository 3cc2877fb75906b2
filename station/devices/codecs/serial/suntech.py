"""SunTech Advantage OEM NIBP module replies: `3E LEN DATA… CHK` (9600 8N1, host polls)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from station.devices.codecs.base import StreamCodec, StreamEvent
from station.devices.codecs.serial._stream import NEED, Frame, FramedDecoder, Scan, Skip
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.models import BloodPressure, CuffPressure, Flag
from station.units import Unit
from station.validation import with_plausibility_flag

VERSION = "1"
START_REPLY = 0x3E
START_COMMAND = 0x3A
MIN_LEN, MAX_LEN = 4, 64
STATUS_LEN, CUFF_LEN, BP_LEN = 0x04, 0x05, 0x18

STATUS_CODES: dict[str, DeviceEventCode] = {
    "O": DeviceEventCode.ACK,
    "K": DeviceEventCode.MEASUREMENT_COMPLETE,
    "B": DeviceEventCode.BUSY,
    "A": DeviceEventCode.ABORTED,
    "S": DeviceEventCode.SLEEPING,
    "E": DeviceEventCode.DEVICE_ERROR,
}
# BP data error byte: why the module could not measure. Any error: the values are not a BP.
ERROR_FLAGS: dict[int, tuple[Flag, ...]] = {
    1: (Flag.POOR_SIGNAL,),  # weak signal
    2: (Flag.ERRATIC_SIGNAL,),  # erratic signal (movement)
    3: (),  # retries exceeded
    4: (),  # measurement time exceeded
    85: (Flag.EQUIPMENT_MALFUNCTION,),  # pneumatic blockage
    87: (Flag.EQUIPMENT_MALFUNCTION,),  # inflation timeout (leak, cuff not fitted)
    89: (Flag.EQUIPMENT_MALFUNCTION,),  # over-inflation
    90: (Flag.EQUIPMENT_MALFUNCTION,),  # power
}


def checksum(data: bytes | bytearray) -> int:
    """0x100 minus the sum of the bytes mod 256 (so every byte of a frame sums to 0)."""
    return (0x100 - (sum(data) & 0xFF)) & 0xFF


def command(*body: int) -> bytes:
    """A host command: `3A`, the body, and its checksum."""
    frame = bytes([START_COMMAND, *body])
    return frame + bytes([checksum(frame)])


START_ADULT_BP = command(0x20)
ABORT = command(0x79, 0x01, 0x00)
GET_BP_DATA = command(0x79, 0x03, 0x00)
GET_CUFF_PRESSURE = command(0x79, 0x05, 0x00)


class SuntechDecoder(FramedDecoder):
    name: ClassVar[str] = "serial:suntech-advantage"
    version: ClassVar[str] = VERSION

    def _valid_at(self, buf: bytearray, start: int) -> bool | None:
        if buf[start] != START_REPLY:
            return False
        if len(buf) < start + 2:
            return None
        length = buf[start + 1]
        if not MIN_LEN <= length <= MAX_LEN:
            return False
        if len(buf) < start + length:
            return None
        return checksum(buf[start : start + length - 1]) == buf[start + length - 1]

    def _scan(self, buf: bytearray) -> Scan:
        if buf[0] != START_REPLY:
            return Skip(1)
        if len(buf) < 2:
            return NEED
        length = buf[1]
        if not MIN_LEN <= length <= MAX_LEN:
            return Skip(1)  # 0x3E inside noise, not a frame start
        # A whole frame that passes its checksum is taken as it is: the module answers a poll
        # and then waits, so nothing may depend on bytes after it.
        if len(buf) >= length and checksum(buf[: length - 1]) == buf[length - 1]:
            return Frame(length)
        # A stray 0x3E and a length-like byte must not hold back the frames after them (up to
        # 64 bytes, several polls): a valid frame starting inside the claim ends it.
        inside = self._frame_inside(buf, length)
        if inside is not None:
            return inside
        if len(buf) < length:
            return NEED
        expected = checksum(buf[: length - 1])
        if expected != buf[length - 1]:
            return self._resync_or_bad(
                buf,
                length,
                f"checksum {buf[length - 1]:02x} does not match",
                f"{expected:02x} (0x100 minus the sum of the preceding bytes)",
            )
        return Frame(length)

    def _decode(self, raw: bytes) -> Sequence[StreamEvent]:
        length = raw[1]
        if length == STATUS_LEN:
            char = chr(raw[2])
            code = STATUS_CODES.get(char)
            if code is None:
                return [self.bad(f"status {char!r} unknown", raw, "one of O K B A S E")]
            return [DeviceEvent(codec=self.name, code=code, detail=char, raw_hex=raw.hex())]
        if length == CUFF_LEN:
            pressure = int.from_bytes(raw[2:4], "little")
            return [
                CuffPressure(
                    cuff_pressure_mmhg=float(pressure),
                    unit_as_sent=Unit.MMHG,
                    codec=self.name,
                    codec_version=self.version,
                    raw_hex=raw.hex(),
                )
            ]
        if length == BP_LEN:
            return [self._bp(raw)]
        return [
            DeviceEvent(
                codec=self.name,
                code=DeviceEventCode.REPLY,
                detail=f"reply of {length} bytes",
                raw_hex=raw.hex(),
            )
        ]

    def _bp(self, raw: bytes) -> StreamEvent:
        def u16(offset: int) -> int:
            return int.from_bytes(raw[offset : offset + 2], "little")

        systolic, diastolic = u16(2), u16(4)
        heart_rate, mean = u16(16), u16(18)
        error = raw[20]
        flags: tuple[Flag, ...] = ()
        if error:
            known = ERROR_FLAGS.get(error)
            flags = (Flag.MEASUREMENT_UNSUCCESSFUL, *(known or (Flag.EQUIPMENT_MALFUNCTION,)))
        reading = BloodPressure(
            # With an error byte set the numbers are not a measurement: null, never values.
            systolic_mmhg=None if error else float(systolic),
            diastolic_mmhg=None if error else float(diastolic),
            mean_arterial_mmhg=None if error else float(mean),
            pulse_rate_bpm=None if error else float(heart_rate),
            unit_as_sent=Unit.MMHG,
            flags=flags,
            codec=self.name,
            codec_version=self.version,
            raw_hex=raw.hex(),
        )
        return with_plausibility_flag(reading)


CODECS = [
    StreamCodec(
        SuntechDecoder.name,
        VERSION,
        "SunTech Advantage OEM NIBP module: status, cuff pressure and BP data",
        SuntechDecoder,
    )
]
