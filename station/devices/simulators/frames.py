"""Pure frame builders: what each simulated device sends, byte for byte (the codecs' mirror)."""

from __future__ import annotations

import struct
from datetime import datetime

from station.devices.codecs.serial import dinamap, nonin, suntech, suretemp

NONIN_GREEN = 0x02  # perfusion bits 2–1 = 01: good pulse signal
NONIN_RED = 0x04
NONIN_ARTIFACT = 0x20
NONIN_SENSOR_DISCONNECT = 0x40
NONIN_OUT_OF_TRACK = 0x10


def _nonin_floats(hr: int | None, spo2: int | None, revision: int) -> list[int]:
    heart = nonin.HR_MISSING if hr is None else hr
    sat = nonin.SPO2_MISSING if spo2 is None else spo2
    floats = [0] * nonin.FRAMES_PER_PACKET
    # #2 and #7 alike: MSB carries HR bits 8–7, LSB bits 6–0 (9560 specification pp. 11, 15).
    msb, lsb = (heart >> 7) & 0x03, heart & 0x7F
    for hi, lo in ((0, 1), (13, 14), (19, 20), (21, 22)):  # HR, E-HR, HR-D, E-HR-D
        floats[hi], floats[lo] = msb, lsb
    for index in (2, 8, 9, 10, 15, 16):  # SpO2 and its display / fast / beat / extended forms
        floats[index] = sat
    floats[3] = revision
    return floats


def nonin2_packet(
    hr: int | None, spo2: int | None, status: int = NONIN_GREEN, revision: int = 0x30
) -> bytes:
    """25 frames of format #2: `01, status, pleth, float, checksum`; SYNC on the first."""
    out = bytearray()
    for index, value in enumerate(_nonin_floats(hr, spo2, revision)):
        frame = bytes([0x01, 0x80 | status | (nonin.SYNC_BIT if index == 0 else 0), 0x40, value])
        out += frame + bytes([nonin.checksum(frame)])
    return bytes(out)


def nonin7_packet(
    hr: int | None,
    spo2: int | None,
    status: int = NONIN_GREEN,
    revision: int = 0x30,
    stat2: int = 0,
) -> bytes:
    """25 frames of format #7: `status, pleth MSB, pleth LSB, float, checksum`."""
    floats = _nonin_floats(hr, spo2, revision)
    floats[nonin.IDX_STAT2] = stat2
    out = bytearray()
    for index, value in enumerate(floats):
        frame = bytes([0x80 | status | (nonin.SYNC_BIT if index == 0 else 0), 0x12, 0x34, value])
        out += frame + bytes([nonin.checksum(frame)])
    return bytes(out)


def nonin8_frame(hr: int | None, spo2: int | None, status: int = 0, stat2: int = 0) -> bytes:
    """Format #8: status (bits 1–0 = HR bits 8–7), HR LSB, SpO2, STAT2."""
    heart = nonin.HR_MISSING if hr is None else hr
    sat = nonin.SPO2_MISSING if spo2 is None else spo2
    return bytes([0x80 | status | (heart >> 7) & 0x03, heart & 0x7F, sat, stat2])


def masimo_line(
    at: datetime,
    spo2: int | None,
    bpm: int | None,
    pi: float | None,
    *,
    alarm: int = 0,
    exception: int = 0x000800,
    serial_number: str = "0000056661",
) -> bytes:
    spo2_text = "---" if spo2 is None else f"{spo2:03d}"
    bpm_text = "---" if bpm is None else f"{bpm:03d}"
    pi_text = "--.--" if pi is None else f"{pi:05.2f}"
    line = (
        f"{at:%m/%d/%y %H:%M:%S} SN={serial_number} SPO2={spo2_text}% BPM={bpm_text} "
        f"PI={pi_text}% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- "
        f"ALARM={alarm:04X} EXC={exception:06X}"
    )
    return line.encode("ascii") + b"\r\n"


def sma_reply(
    weight: float | None,
    unit: str = "kg",
    *,
    status: str = " ",
    motion: str = " ",
    gross_net: str = "G",
    weight_range: str = "1",
    decimals: int = 1,
    prefix: str = "",
) -> bytes:
    """An SMA reply; `prefix="W01,"` gives the Detecto 758C's form (owner's manual p. 32)."""
    weight_text = "-" * 10 if weight is None else f"{weight:10.{decimals}f}"
    body = f"{prefix}{status}{weight_range}{gross_net}{motion} {weight_text}{unit:<3}"
    return b"\n" + body.encode("ascii") + b"\r"


def mt_sics_reply(weight: float | None, unit: str = "kg", *, stable: bool = True) -> bytes:
    if weight is None:
        return b"S +\r\n"
    return f"S {'S' if stable else 'D'} {weight:10.2f} {unit}".encode("ascii") + b"\r\n"


def _suntech_reply(*body: int) -> bytes:
    frame = bytes([suntech.START_REPLY, len(body) + 3, *body])
    return frame + bytes([suntech.checksum(frame)])


def suntech_status(char: str) -> bytes:
    return _suntech_reply(ord(char))


def suntech_cuff(pressure_mmhg: int) -> bytes:
    return _suntech_reply(*pressure_mmhg.to_bytes(2, "little"))


def suntech_bp(systolic: int, diastolic: int, heart_rate: int, mean: int, error: int = 0) -> bytes:
    def u16(value: int) -> bytes:
        return value.to_bytes(2, "little")

    body = u16(systolic) + u16(diastolic) + bytes([0, 0]) + bytes(8)
    body += u16(heart_rate) + u16(mean) + bytes([error, 0, 0])
    return _suntech_reply(*body)


def suretemp_record(
    state: int,
    *,
    final_k: float = 0.0,
    probe_k: float = 295.15,
    samples: int = 0,
    method: int = 0,
    algorithm: int = 0,
    error: int = 0,
    active: int = 1,
    probe_type: int = 0,
) -> bytes:
    """A SureTemp Plus 941C response: the 19-byte TEMP record (floats little-endian, kelvin)."""
    data = struct.pack(
        "<ffIBBBHBB", final_k, probe_k, samples, method, algorithm, state, error, active, probe_type
    )
    return suretemp.packet(suretemp.CMD_TEMPERATURE_RECORD, suretemp.TYPE_RESPONSE, data)


def suretemp_nak(command: int, error: int | None = None) -> bytes:
    data = b"" if error is None else error.to_bytes(2, "little")
    return suretemp.packet(command, suretemp.TYPE_NAK, data)


def _dinamap(text: str) -> bytes:
    """A DINAMAP reply: its text, then the checksum characters commands carry, then CR (the
    public sources do not say whether replies carry them; the codec reads neither way)."""
    data = text.encode("ascii")
    return data + dinamap.checksum(data) + b"\r"


def dinamap_status(
    status: int, seconds: int, systolic: int = 0, diastolic: int = 0, mean: int = 0
) -> bytes:
    """`uNAabcddddeeefffggg`: status, adult (1), normal mode (0), seconds, sys, dia, mean."""
    return _dinamap(f" NA{status}10{seconds:04d}{systolic:03d}{diastolic:03d}{mean:03d}")


def dinamap_rate(rate: int, *, source: int, letter: str = "A") -> bytes:
    """`uRAabbb` (or TK-BP's `uRC`): the rate's source (2 oximeter, 3 NIBP), the rate."""
    return _dinamap(f" R{letter}{source}{rate:03d}")


def dinamap_spo2(status: int, spo2: int) -> bytes:
    """`uOAabbbcdd`: channel status, SpO2, signal strength 7, averaging 08."""
    return _dinamap(f" OA{status}{spo2:03d}708")


def dinamap_temperature(status: int, counter: int, seconds: int | None, tenths_f: int) -> bytes:
    """`uTCabcdddddeeeef`: status, predictive mode, the counter character, seconds since the
    last determination (99999: none), tenths of degrees F, display in F."""
    shown = 99999 if seconds is None else min(seconds, 99990)
    return _dinamap(f" TC{status}0{chr(counter)}{shown:05d}{tenths_f:04d}0")
