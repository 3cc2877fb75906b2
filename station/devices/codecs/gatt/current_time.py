"""Current Time 0x2A2B: read a device's clock, and build the value that sets it."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict

from station.devices.codecs.gatt._frame import FrameReader
from station.devices.codecs.ieee11073 import DATE_TIME_SIZE, UnknownTime, encode_date_time

CODEC: Final = "ble:2a2b"
VERSION: Final = "1.1"
SIZE: Final = DATE_TIME_SIZE + 3  # + day of week, fractions256, adjust reason

ADJUST_MANUAL: Final = 0x01
ADJUST_EXTERNAL_REFERENCE: Final = 0x02
ADJUST_TIME_ZONE: Final = 0x04
ADJUST_DST: Final = 0x08


class CurrentTime(BaseModel):
    """A device's clock as it reported it (local wall-clock time, no zone)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codec: str = CODEC
    codec_version: str = VERSION
    date_time: datetime | None  # None: the device does not know the date
    day_of_week: int | None  # ISO: 1 Monday … 7 Sunday; None = not known (or not credible)
    raw_day_of_week: int  # as sent: 0 unknown, 1–7, or a reserved value 8–255
    # Why a day of week that was sent is reported as unknown (reserved, or not the date's).
    day_of_week_problem: str = ""
    fractions_256: int  # 1/256 s past `date_time`
    manual_time_update: bool
    external_reference_time_update: bool
    time_zone_changed: bool
    dst_changed: bool
    raw_adjust_reason: int
    raw_hex: str


def decode(raw: bytes) -> CurrentTime:
    reader = FrameReader(raw, CODEC)
    date_time = reader.date_time("date time (7 bytes, always present)")
    day_of_week = reader.u8("day of week (always present)")
    fractions = reader.u8("fractions256 (always present)")
    adjust = reader.u8("adjust reason (always present)")
    reader.finish("the Current Time fields")
    # The time is what matters: a wrong or reserved day of week (a firmware that never set
    # it, or counts Sunday as 0/1) makes only the day unknown, as peers do; the frame stays.
    day, problem = day_of_week or None, ""
    if day_of_week > 7:
        day, problem = None, f"day of week {day_of_week} is reserved (expected 0–7)"
    elif date_time is not None and day_of_week and day_of_week != date_time.isoweekday():
        day = None
        problem = (
            f"day of week {day_of_week} does not match {date_time:%Y-%m-%d} "
            f"(expected {date_time.isoweekday()} or 0)"
        )
    return CurrentTime(
        date_time=date_time,
        day_of_week=day,
        raw_day_of_week=day_of_week,
        day_of_week_problem=problem,
        fractions_256=fractions,
        manual_time_update=bool(adjust & ADJUST_MANUAL),
        external_reference_time_update=bool(adjust & ADJUST_EXTERNAL_REFERENCE),
        time_zone_changed=bool(adjust & ADJUST_TIME_ZONE),
        dst_changed=bool(adjust & ADJUST_DST),
        raw_adjust_reason=adjust,
        raw_hex=raw.hex(),
    )


def encode(
    when: datetime | UnknownTime,
    *,
    manual_time_update: bool = False,
    external_reference_time_update: bool = False,
    time_zone_changed: bool = False,
    dst_changed: bool = False,
) -> bytes:
    """The 10-byte value that sets a device clock to `when` (its wall-clock fields)."""
    adjust = (
        (ADJUST_MANUAL if manual_time_update else 0)
        | (ADJUST_EXTERNAL_REFERENCE if external_reference_time_update else 0)
        | (ADJUST_TIME_ZONE if time_zone_changed else 0)
        | (ADJUST_DST if dst_changed else 0)
    )
    if not isinstance(when, datetime):
        return encode_date_time(when) + bytes((0, 0, adjust))
    fractions = when.microsecond * 256 // 1_000_000
    return encode_date_time(when) + bytes((when.isoweekday(), fractions, adjust))
