"""A fake BlueZ on a private D-Bus, so real bleak runs against simulated devices (tests, demo)."""

from __future__ import annotations

from station.devices.simulators.fakebluez.bus import PrivateBus
from station.devices.simulators.fakebluez.service import (
    ADAPTER_PATH,
    FakeBlueZ,
    FakeCharacteristic,
    FakePeripheral,
    FakeService,
    GattError,
    full_uuid,
)

__all__ = [
    "ADAPTER_PATH",
    "FakeBlueZ",
    "FakeCharacteristic",
    "FakePeripheral",
    "FakeService",
    "GattError",
    "PrivateBus",
    "full_uuid",
]
