"""Serial stream codecs, sans-I/O: Nonin #2/#7/#8, Masimo ASCII, SMA, MT-SICS, SunTech, SureTemp,
Health o meter ESC, GE DINAMAP host communications."""

from __future__ import annotations

from station.devices.codecs.base import CodecSpec
from station.devices.codecs.serial import (
    dinamap,
    healthometer,
    masimo,
    mt_sics,
    nonin,
    sma,
    suntech,
    suretemp,
)

CODECS: list[CodecSpec] = [
    *nonin.CODECS,
    *masimo.CODECS,
    *sma.CODECS,
    *mt_sics.CODECS,
    *suntech.CODECS,
    *suretemp.CODECS,
    *healthometer.CODECS,
    *dinamap.CODECS,
]
