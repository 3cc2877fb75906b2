"""Resynchronisation regressions from issue 12: noise grouping must not depend on chunking, and a
stray start byte must not hold back the frames after it."""

from __future__ import annotations

from station.devices.codecs.base import BadFrame, StreamEvent
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.devices.codecs.serial.sma import SmaDecoder
from station.devices.codecs.serial.suntech import SuntechDecoder

# SMA reply layout <LF> s r n m f <10-char weight> <3-char unit> <CR> (SMA SCP-0499; the
# Sartorius PR 5220 manual p. EN-130 example "5.025 lb gross, stable").
SMA_REPLY = b"\n 1G       5.025lb \r"


def chunked(
    decoder_type: type[SmaDecoder] | type[SuntechDecoder], data: bytes, size: int
) -> list[StreamEvent]:
    decoder = decoder_type()
    out: list[StreamEvent] = []
    for i in range(0, len(data), size):
        out.extend(decoder.feed(data[i : i + size]))
    return out


def test_sma_noise_reports_do_not_depend_on_how_the_bytes_arrive() -> None:
    data = b"x" * 100 + SMA_REPLY
    whole = SmaDecoder().feed(data)
    for size in (1, 7, 30, 64, 99):
        assert chunked(SmaDecoder, data, size) == whole, size
    noise = [e for e in whole if isinstance(e, BadFrame)]
    # runs are cut every 64 bytes (the decoders' documented run length), wherever chunks end
    assert [len(bytes.fromhex(e.raw_hex)) for e in noise] == [64, 36]


def test_suntech_stray_start_byte_and_length_like_byte_do_not_hold_back_the_next_frame() -> None:
    # 3E 40: a start byte and a "length" of 64, then a status reply 'O' (ack):
    # 3E 04 4F 6F, checksum 0x100 - (0x3E + 0x04 + 0x4F) = 0x6F (project reference, SunTech).
    ack = bytes([0x3E, 0x04, 0x4F, 0x6F])
    data = b"\x3e\x40" + ack
    expected = [
        BadFrame(
            codec="serial:suntech-advantage",
            problem="frame cut short after 2 byte(s) by the next valid frame "
            "(truncated frame, damaged size or noise)",
            expected="a frame as long as its size field says",
            raw_hex="3e40",
        ),
        DeviceEvent(
            codec="serial:suntech-advantage",
            code=DeviceEventCode.ACK,
            detail="O",
            raw_hex=ack.hex(),
        ),
    ]
    # the ACK comes out as soon as its own four bytes are in, not after 64 bytes
    assert SuntechDecoder().feed(data) == expected
    assert chunked(SuntechDecoder, data, 1) == expected
