"""One Bluetooth LE scan through bleak: what is in range and which firmware profiles match it
(`station devices scan` and the biomed screen's "Scan")."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from station.devices.profiles import FirmwareProfile, match_profiles


class SeenBle(BaseModel):
    """A device that advertised during the scan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    name: str  # the advertised local name, "?" when it sent none
    rssi: int  # dBm
    profiles: tuple[str, ...]  # matching firmware profiles, model-specific first


def ble_device_id(address: str) -> str:
    """The device id a scanned, not yet bound device gets (topic-level safe, stable)."""
    return "ble-" + address.replace(":", "").lower()


async def scan_ble(profiles: Iterable[FirmwareProfile], seconds: float) -> tuple[SeenBle, ...]:
    """Listen for `seconds`; only adverts of services some profile knows are kept. Raises
    bleak's BleakError or OSError when there is no Bluetooth to scan with."""
    from bleak import BleakScanner

    known = [p for p in profiles if p.ble is not None]
    uuids = sorted({str(u) for p in known if p.ble is not None for u in p.ble.match.service_uuids})
    found = await BleakScanner.discover(seconds, service_uuids=uuids, return_adv=True)
    seen = []
    for device, adv in found.values():
        name = adv.local_name or device.name or "?"
        matched = match_profiles(known, adv.service_uuids, name, adv.manufacturer_data)
        seen.append(SeenBle(address=device.address, name=name, rssi=adv.rssi,
                            profiles=tuple(matched)))  # fmt: skip
    return tuple(sorted(seen, key=lambda s: s.address))
