"""Nonin pulse-oximeter serial data formats #2, #7 and #8 (9600 8N1, streaming).

Layouts follow Nonin's "Model 9560 Bluetooth Specification" (stored with an independent parser
in mattjlewis/NoninPulseOx, "Nonin 9560 Bluetooth Specification.pdf"), pp. 8–17 as printed:
#2 pp. 8–11, #7 pp. 12–15, #8 pp. 16–17. The same formats are those of the OEM III / Xpod.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from station.devices.codecs.base import StreamCodec, StreamEvent
from station.devices.codecs.serial._stream import NEED, Bad, Frame, FramedDecoder, Scan, Skip
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.models import Flag, PulseOximetry
from station.units import Unit
from station.validation import with_plausibility_flag

VERSION = "2"

# "Missing data" values of the float bytes: never numbers.
HR_MISSING = 511
SPO2_MISSING = 127

FRAMES_PER_PACKET = 25
FRAME_LEN = 5
# Float-byte index of each value in a packet (spec p. 8 / p. 12). HR, SpO2 (frames 1–3) are
# "formatted for recording purposes" and kept "for legacy purposes"; the -D values are
# "formatted for display purposes ... the most reliable readings possible during periods of
# artifact" (p. 10 / pp. 14–15): the reading is made of the display values.
IDX_HR_MSB, IDX_HR_LSB, IDX_SPO2, IDX_REVISION, IDX_STAT2 = 0, 1, 2, 3, 7
IDX_SPO2_D, IDX_HR_D_MSB, IDX_HR_D_LSB = 8, 19, 20

# Status byte of formats #2 and #7 (bit 7 is always 1; p. 9 / p. 13).
STATUS_ALWAYS = 0x80
STATUS_BITS: tuple[tuple[int, Flag], ...] = (
    (0x40, Flag.SENSOR_DISCONNECTED),  # SNSD (OEM III; "reserved" on the 9560)
    (0x20, Flag.ARTIFACT),  # ARTF
    (0x10, Flag.OUT_OF_TRACK),  # OOT
    (0x08, Flag.SENSOR_ALARM),  # SNSA: "unusable data ... set when the finger is removed"
)
SYNC_BIT = 0x01
PERFUSION_MASK = 0x06
# Perfusion bits 2–1 (RPRF, GPRF): 01 green (good), 10 red (low), 11 yellow (marginal).
PERFUSION_FLAGS: dict[int, Flag] = {0x04: Flag.LOW_PERFUSION, 0x06: Flag.MARGINAL_PERFUSION}
# STAT2 of formats #2 and #7 (float byte of frame 8, p. 10 / p. 14): bit 0 LOW BAT.
STAT2_LOW_BATTERY = 0x01


def heart_rate(msb: int, lsb: int) -> int:
    """HR of #2 and #7: MSB bits 1–0 are HR bits 8–7, LSB bits 6–0 are HR bits 6–0 (p. 11 /
    p. 15). Never a 16-bit join: 130 /min is `01 02`, not 258; missing is `03 7F` = 511."""
    return ((msb & 0x03) << 7) | (lsb & 0x7F)


def status_flags(status: int) -> set[Flag]:
    flags = {flag for bit, flag in STATUS_BITS if status & bit}
    perfusion = PERFUSION_FLAGS.get(status & PERFUSION_MASK)
    if perfusion is not None:
        flags.add(perfusion)
    return flags


def checksum(frame: bytes | bytearray) -> int:
    return sum(frame[:4]) & 0xFF


class _PacketDecoder(FramedDecoder):
    """Formats #2 and #7: 5-byte frames, 25 frames a packet, the first marked by SYNC.

    A reading is emitted when the packet's display values (SpO2-D in frame 9, HR-D in frames
    20–21) have arrived intact and in place; its flags are the status bits of every frame of
    the packet up to then, plus STAT2's low battery (frame 8). After noise or a damaged frame
    the place of the next frame is not known, so frames are ignored until the next SYNC.
    """

    def __init__(self) -> None:
        super().__init__()
        # Index of the next frame in its packet; None after noise or damage, until a SYNC.
        self._next_index: int | None = None
        self._packet: list[bytes] = []
        self._revision: int | None = None

    # Format-specific parts -----------------------------------------------------------------
    def _looks_like_start(self, buf: bytearray, start: int) -> bool:
        raise NotImplementedError

    def _status(self, frame: bytes) -> int:
        raise NotImplementedError

    # Framing ---------------------------------------------------------------------------------
    def _valid_at(self, buf: bytearray, start: int) -> bool | None:
        if len(buf) < start + FRAME_LEN:
            return None
        return self._looks_like_start(buf, start) and (
            checksum(buf[start : start + 4]) == buf[start + 4]
        )

    def _scan(self, buf: bytearray) -> Scan:
        if len(buf) < 2:
            return NEED
        if not self._looks_like_start(buf, 0):
            return Skip(1)
        if len(buf) < FRAME_LEN:
            return NEED
        if checksum(buf) != buf[4]:
            return self._resync_or_bad(
                buf,
                FRAME_LEN,
                f"checksum {buf[4]:02x} does not match",
                f"{checksum(buf):02x}, the sum of the first four bytes mod 256",
            )
        return Frame(FRAME_LEN)

    # Decoding --------------------------------------------------------------------------------
    def _on_damage(self) -> None:
        # Noise or a damaged frame: the next frame's place in its packet is not known. Frames
        # are never placed by counting bytes across damage (5 noise bytes would shift them).
        self._next_index = None

    def _decode(self, raw: bytes) -> Sequence[StreamEvent]:
        status = self._status(raw)
        index: int | None
        if status & SYNC_BIT:
            index = 0
            self._packet = []
        elif self._next_index is not None and self._next_index < FRAMES_PER_PACKET:
            index = self._next_index
        else:
            index = None
        if index is None:
            self._next_index = None
            return []
        self._next_index = index + 1
        self._packet.append(raw)
        return self._on_frame(index, raw)

    def _on_frame(self, index: int, raw: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if index == IDX_HR_D_LSB:
            out.append(self._reading(self._packet[: IDX_HR_D_LSB + 1]))
        elif index == IDX_REVISION:
            revision = raw[3]
            if revision != self._revision:
                self._revision = revision
                out.append(
                    DeviceEvent(
                        codec=self.name,
                        code=DeviceEventCode.FIRMWARE_REVISION,
                        detail=str(revision),
                        raw_hex=raw.hex(),
                    )
                )
        return out

    def _reading(self, frames: list[bytes]) -> PulseOximetry:
        flags: set[Flag] = set()
        if frames[IDX_STAT2][3] & STAT2_LOW_BATTERY:
            flags.add(Flag.LOW_BATTERY)
        for frame in frames:
            flags |= status_flags(self._status(frame))
        hr = heart_rate(frames[IDX_HR_D_MSB][3], frames[IDX_HR_D_LSB][3])
        spo2 = frames[IDX_SPO2_D][3] & 0x7F
        reading = PulseOximetry(
            spo2_percent=None if spo2 == SPO2_MISSING else float(spo2),
            pulse_rate_bpm=None if hr == HR_MISSING else float(hr),
            unit_as_sent=Unit.PERCENT,
            flags=tuple(flags),
            codec=self.name,
            codec_version=self.version,
            raw_hex=b"".join(frames).hex(),
        )
        result = with_plausibility_flag(reading)
        assert isinstance(result, PulseOximetry)
        return result


class Nonin2Decoder(_PacketDecoder):
    """Format #2: `01, status, pleth, float, checksum`."""

    name: ClassVar[str] = "serial:nonin-2"
    version: ClassVar[str] = VERSION

    def _looks_like_start(self, buf: bytearray, start: int) -> bool:
        return buf[start] == 0x01 and bool(buf[start + 1] & STATUS_ALWAYS)

    def _status(self, frame: bytes) -> int:
        return frame[1]


# Answers to the data-format selection command `02 70 02 02 <fmt> 03`, between frames.
FORMAT_REPLIES = {b"\x06": DeviceEventCode.ACK, b"\x15": DeviceEventCode.NAK}


def format_reply(codec: str, raw: bytes) -> DeviceEvent | None:
    code = FORMAT_REPLIES.get(raw)
    return None if code is None else DeviceEvent(codec=codec, code=code, raw_hex=raw.hex())


def select_format_command(data_format: int) -> bytes:
    """STX, op 0x70, length 2, 0x02, the format, ETX."""
    return bytes([0x02, 0x70, 0x02, 0x02, data_format, 0x03])


class Nonin7Decoder(_PacketDecoder):
    """Format #7: `status, pleth MSB, pleth LSB, float, checksum`; the float bytes as in #2."""

    name: ClassVar[str] = "serial:nonin-7"
    version: ClassVar[str] = VERSION

    def _looks_like_start(self, buf: bytearray, start: int) -> bool:
        return bool(buf[start] & STATUS_ALWAYS)

    def _unframed_event(self, raw: bytes) -> StreamEvent | None:
        return format_reply(self.name, raw)

    def _status(self, frame: bytes) -> int:
        return frame[0]


# Format #8 ----------------------------------------------------------------------------------
FMT8_LEN = 4
FMT8_STATUS: tuple[tuple[int, Flag], ...] = (
    (0x40, Flag.SENSOR_DISCONNECTED),
    (0x20, Flag.OUT_OF_TRACK),
    (0x10, Flag.LOW_PERFUSION),
    (0x08, Flag.MARGINAL_PERFUSION),
    (0x04, Flag.ARTIFACT),
)
FMT8_STAT2: tuple[tuple[int, Flag], ...] = (
    # SNSA "sensor alarm: unusable data ... set when the finger is removed" (p. 16): the probe
    # is off the finger, not broken; the same flag as #2/#7's SNSA, never sensor_malfunction.
    (0x08, Flag.SENSOR_ALARM),
    (0x02, Flag.CRITICAL_BATTERY),
    (0x01, Flag.LOW_BATTERY),
)


class Nonin8Decoder(FramedDecoder):
    """Format #8: 4 bytes once a second: status, HR LSB, SpO2, STAT2. No checksum.

    Only the status byte has bit 7 set, so frames are found by that and by every other byte
    having it clear; a SpO2 byte above 100 (other than 127, missing) is a damaged frame.
    """

    name: ClassVar[str] = "serial:nonin-8"
    version: ClassVar[str] = VERSION

    def _unframed_event(self, raw: bytes) -> StreamEvent | None:
        return format_reply(self.name, raw)

    def _scan(self, buf: bytearray) -> Scan:
        if not buf[0] & 0x80:
            return Skip(1)
        for i in range(1, FMT8_LEN):
            if i >= len(buf):
                return NEED
            if buf[i] & 0x80:
                return Bad(
                    i,
                    f"truncated frame: a status byte (bit 7 set) at byte {i}",
                    "4-byte frames with bit 7 set only in the first byte",
                )
        spo2 = buf[2]
        if spo2 > 100 and spo2 != SPO2_MISSING:
            return Bad(FMT8_LEN, f"SpO2 byte {spo2} out of range", "0–100, or 127 for missing")
        return Frame(FMT8_LEN)

    def _decode(self, raw: bytes) -> Sequence[StreamEvent]:
        status, hr_lsb, spo2, stat2 = raw
        flags = {flag for bit, flag in FMT8_STATUS if status & bit}
        flags |= {flag for bit, flag in FMT8_STAT2 if stat2 & bit}
        hr = ((status & 0x03) << 7) | hr_lsb
        reading = PulseOximetry(
            spo2_percent=None if spo2 == SPO2_MISSING else float(spo2),
            pulse_rate_bpm=None if hr == HR_MISSING else float(hr),
            unit_as_sent=Unit.PERCENT,
            flags=tuple(flags),
            codec=self.name,
            codec_version=self.version,
            raw_hex=raw.hex(),
        )
        return [with_plausibility_flag(reading)]


CODECS = [
    StreamCodec(
        Nonin2Decoder.name,
        VERSION,
        "Nonin data format #2 (OEM III, Xpod): 5-byte frames, 25-frame packets",
        Nonin2Decoder,
    ),
    StreamCodec(
        Nonin7Decoder.name,
        VERSION,
        "Nonin data format #7: 5-byte frames with 16-bit pleth, 25-frame packets",
        Nonin7Decoder,
    ),
    StreamCodec(
        Nonin8Decoder.name, VERSION, "Nonin data format #8: 4 bytes once a second", Nonin8Decoder
    ),
]
