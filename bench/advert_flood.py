"""A rogue Bluetooth device floods the station with adverts from random addresses.

Feeds 200,000 adverts (bleak's own BLEDevice / AdvertisementData objects, a new random
address each) to the station's BLE link and prints the memory the link keeps (tracemalloc)
and its time per advert, beside a baseline in the same run: the same adverts kept in a
plain, unbounded map (what the link did before: 200,000 adverts took RSS 37 -> 290 MB).
Target: the link's memory stays flat (a few hundred addresses), whatever the flood.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bleak.backends.device import BLEDevice  # noqa: E402
from bleak.backends.scanner import AdvertisementData  # noqa: E402

from station.config import BoundDevice  # noqa: E402
from station.devices.ble_link import SEEN_CAP, BleLink, Seen  # noqa: E402

COUNT = 200_000
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def adverts(count: int) -> list[tuple[BLEDevice, AdvertisementData]]:
    out = []
    for i in range(count):
        address = f"02:00:{i >> 24 & 0xFF:02X}:{i >> 16 & 0xFF:02X}:{i >> 8 & 0xFF:02X}:" \
                  f"{i & 0xFF:02X}"
        out.append((BLEDevice(address, "rogue", None),
                    AdvertisementData("rogue", {}, {}, [], None, -40, ())))
    return out


def kept_bytes(fill: object) -> tuple[int, float]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    kept = fill()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return after - before, elapsed


def main() -> None:
    flood = adverts(COUNT)
    binding = BoundDevice(id="cuff", profile="generic-ble-blood-pressure",
                          address="AA:BB:CC:DD:EE:01")

    def station() -> object:
        link = BleLink([binding], lambda event: None, clock=lambda: NOW)
        for device, adv in flood:
            link._on_advert(device, adv)
        return link

    def unbounded() -> object:
        seen: dict[str, Seen] = {}
        for device, adv in flood:
            seen[device.address] = Seen(address=device.address, name=adv.local_name,
                                        rssi=adv.rssi, service_uuids=(), profiles=(),
                                        bound_id=None)
        return seen

    link_bytes, link_s = kept_bytes(station)
    base_bytes, base_s = kept_bytes(unbounded)
    print(f"{COUNT:,} adverts from random addresses")
    print(f"station link : keeps {link_bytes / 1e6:7.2f} MB ({SEEN_CAP} addresses at most), "
          f"{link_s / COUNT * 1e6:.1f} us per advert")
    print(f"unbounded map: keeps {base_bytes / 1e6:7.2f} MB, {base_s / COUNT * 1e6:.1f} us per "
          "advert (baseline, same run)")
    print(f"ratio (memory kept, station / baseline): {link_bytes / base_bytes:.4f}")


if __name__ == "__main__":
    main()
