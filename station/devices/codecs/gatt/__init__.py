"""Bluetooth LE GATT health-profile codecs."""

from __future__ import annotations

from station.devices.codecs.base import CodecSpec

CODECS: list[CodecSpec] = []
