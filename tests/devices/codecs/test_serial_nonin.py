"""Nonin serial data formats #2, #7 and #8 against Nonin's own specification.

Source: Nonin "Model 9560 Bluetooth Specification", stored in mattjlewis/NoninPulseOx as
"Nonin 9560 Bluetooth Specification.pdf" (page numbers as printed): #2 pp. 8–11, #7 pp. 12–15,
#8 pp. 16–17. Packets are built here, in the test, from the spec's float-byte map (p. 8 / p. 12):
frame 1 HR MSB, 2 HR LSB, 3 SpO2, 4 SREV, 8 STAT2, 9 SpO2-D, 20 HR-D MSB, 21 HR-D LSB.
"""

from __future__ import annotations

from station.devices.codecs.base import BadFrame
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.devices.codecs.serial.nonin import Nonin2Decoder, Nonin7Decoder, Nonin8Decoder
from station.models import Flag, PulseOximetry
from station.units import Unit

# 0-based float-byte index of each value (frame number - 1).
HR_MSB, HR_LSB, SPO2, SREV, STAT2, SPO2_D, HR_D_MSB, HR_D_LSB = 0, 1, 2, 3, 7, 8, 19, 20


def floats(**at: int) -> list[int]:
    values = [0] * 25
    values[SREV] = 0x30
    for name, value in at.items():
        values[globals()[name.upper()]] = value
    return values


def packet7(values: list[int], status: int = 0x80) -> bytes:
    """#7 frame: STATUS, PLETH MSB, PLETH LSB, float, CHK = sum of bytes 1–4 mod 256 (p. 15)."""
    out = b""
    for i, value in enumerate(values):
        frame = bytes([status | (1 if i == 0 else 0), 0x12, 0x34, value])
        out += frame + bytes([sum(frame) & 0xFF])
    return out


def packet2(values: list[int], status: int = 0x80) -> bytes:
    """#2 frame: 01, STATUS, PLETH, float, CHK (p. 11)."""
    out = b""
    for i, value in enumerate(values):
        frame = bytes([0x01, status | (1 if i == 0 else 0), 0x40, value])
        out += frame + bytes([sum(frame) & 0xFF])
    return out


def readings(events: list[object]) -> list[PulseOximetry]:
    return [e for e in events if isinstance(e, PulseOximetry)]


def test_nonin7_pulse_rate_130_is_9_bit_not_258() -> None:
    # p. 15 "HR Format": MSB bits 1–0 = HR8, HR7; LSB bits 6–0 = HR6..HR0. 130 = MSB 01, LSB 02
    # (a 16-bit join would read 0x0102 = 258).
    data = packet7(floats(hr_msb=1, hr_lsb=2, spo2=95, hr_d_msb=1, hr_d_lsb=2, spo2_d=95))
    [reading] = readings(Nonin7Decoder().feed(data))
    assert (reading.pulse_rate_bpm, reading.spo2_percent) == (130.0, 95.0)


def test_nonin7_missing_pulse_rate_511_is_null_not_895() -> None:
    # p. 14: "For missing data, the HR equals 511 and the SpO2 equals 127": MSB 03, LSB 7F
    # (0x037F = 895 as 16 bits).
    data = packet7(floats(hr_msb=3, hr_lsb=0x7F, spo2=127, hr_d_msb=3, hr_d_lsb=0x7F, spo2_d=127))
    [reading] = readings(Nonin7Decoder().feed(data))
    assert (reading.pulse_rate_bpm, reading.spo2_percent) == (None, None)


def test_nonin7_reading_is_the_display_values_not_the_recording_values() -> None:
    # pp. 14–15: the recording values "are formatted with the missing data values during periods
    # of sustained artifact"; the display values "provide the most reliable reading possible
    # during periods of artifact". Recording HR/SpO2 missing, display 72 / 97: 72 / 97.
    data = packet7(floats(hr_msb=3, hr_lsb=0x7F, spo2=127, hr_d_msb=0, hr_d_lsb=72, spo2_d=97))
    events = Nonin7Decoder().feed(data)
    assert events == [
        DeviceEvent(
            codec="serial:nonin-7",
            code=DeviceEventCode.FIRMWARE_REVISION,
            detail="48",
            raw_hex=data[15:20].hex(),
        ),
        PulseOximetry(
            spo2_percent=97.0,
            pulse_rate_bpm=72.0,
            unit_as_sent=Unit.PERCENT,
            codec="serial:nonin-7",
            codec_version="2",
            raw_hex=data[: 21 * 5].hex(),
        ),
    ]


def test_nonin7_status_byte_flags_every_frame_up_to_the_reading() -> None:
    # p. 13: bit 4 OOT, bit 3 SNSA; perfusion RPRF=1 GPRF=1 is yellow (marginal).
    data = packet7(floats(hr_d_lsb=80, spo2_d=96), status=0x80 | 0x10 | 0x08 | 0x06)
    [reading] = readings(Nonin7Decoder().feed(data))
    assert reading.flags == (Flag.MARGINAL_PERFUSION, Flag.OUT_OF_TRACK, Flag.SENSOR_ALARM)


def test_nonin2_low_battery_bit_of_stat2_is_reported() -> None:
    # p. 10 "Byte 4: STAT2": bit 0 LOW BAT, "1 = Low Batteries. Replace batteries as soon as
    # possible"; bit 5 SPA (SmartPoint) is not a problem and adds nothing.
    data = packet2(floats(stat2=0x21, hr_d_lsb=72, spo2_d=97))
    [reading] = readings(Nonin2Decoder().feed(data))
    assert reading.flags == (Flag.LOW_BATTERY,)
    [clean] = readings(Nonin2Decoder().feed(packet2(floats(stat2=0x20, hr_d_lsb=72, spo2_d=97))))
    assert clean.flags == ()


def test_nonin2_hr_d_msb_carries_bits_8_and_7() -> None:
    # HR-D 260 = MSB 02 (HR8), LSB 04 (p. 11 "HR Format").
    [reading] = readings(Nonin2Decoder().feed(packet2(floats(hr_d_msb=2, hr_d_lsb=4, spo2_d=90))))
    assert (reading.pulse_rate_bpm, reading.spo2_percent) == (260.0, 90.0)


def test_nonin2_damage_before_the_display_values_costs_that_packet_and_is_reported() -> None:
    data = bytearray(packet2(floats(hr_d_lsb=72, spo2_d=97)))
    data[8 * 5 + 4] ^= 0xFF  # SpO2-D frame's checksum
    events = Nonin2Decoder().feed(bytes(data))
    assert readings(events) == []
    assert [e.raw_hex for e in events if isinstance(e, BadFrame)] == [data[40:45].hex()]


def test_nonin8_sensor_alarm_bit_is_a_sensor_alarm_not_a_malfunction() -> None:
    # p. 16 "Byte 4 Status2": bit 3 SNSA "Sensor Alarm: Device is providing unusable data for
    # analysis (set when the finger is removed)"; p. 17: the last values are reported for 10 s
    # with SNSA set. Finger off, not "change the sensor".
    [reading] = Nonin8Decoder().feed(bytes([0x80, 72, 97, 0x08]))
    assert isinstance(reading, PulseOximetry)
    assert reading.flags == (Flag.SENSOR_ALARM,)
    assert Flag.SENSOR_MALFUNCTION not in reading.flags


def test_nonin8_frame_hr_bits_perfusion_and_low_battery() -> None:
    # p. 16: status bit 4 LPRF, bits 1–0 HR8 HR7; byte 2 HR-D bits 6–0; STAT2 bit 0 LOW BAT.
    # 0x91: low perfusion, HR bit 7 set; HR LSB 0x02 -> 130; SpO2-D 95.
    assert Nonin8Decoder().feed(bytes([0x91, 0x02, 95, 0x01])) == [
        PulseOximetry(
            spo2_percent=95.0,
            pulse_rate_bpm=130.0,
            unit_as_sent=Unit.PERCENT,
            flags=(Flag.LOW_PERFUSION, Flag.LOW_BATTERY),
            codec="serial:nonin-8",
            codec_version="2",
            raw_hex="91025f01",
        )
    ]
