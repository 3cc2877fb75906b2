"""Serial-protocol stream codecs (sans-I/O)."""

from __future__ import annotations

from station.devices.codecs.base import CodecSpec

CODECS: list[CodecSpec] = []
