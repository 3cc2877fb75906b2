"""The composition root: wires the concrete adapters (links, outbox, MQTT, UI) together."""

from __future__ import annotations

import sys

from station.config import Settings


def run_station(settings: Settings) -> int:
    # The device links (issue 5), the sync side (issue 6) and the screens (issue 7) are wired
    # here as they land. Until then the real station cannot run; say so instead of pretending.
    print(  # noqa: T201 - the CLI reports to the terminal before a logger exists
        f"station: settings OK for {settings.station.site}/{settings.station.station_id}, "
        "but this build has no device links, MQTT client or screens wired into `station run` "
        "yet; use `station demo` to see the pipeline on simulated devices",
        file=sys.stderr,
    )
    return 3
