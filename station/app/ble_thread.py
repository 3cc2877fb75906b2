"""Runs the station's one Bluetooth link on its own asyncio loop, in its own thread."""

from __future__ import annotations

import asyncio
import logging
import threading

from station.devices.ble_link import BleLink

log = logging.getLogger(__name__)


class BleThread:
    """`start(link)` runs the link until `stop()`; both are safe to call when idle."""

    def __init__(self) -> None:
        self._link: BleLink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, link: BleLink) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            ready.set()
            try:
                loop.run_until_complete(link.run())
            except Exception:
                log.exception("Bluetooth link stopped")
            finally:
                loop.close()

        self._link = link
        self._thread = threading.Thread(target=run, name="ble-link", daemon=True)
        self._thread.start()
        ready.wait(5)

    def stop(self) -> None:
        if self._link is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._link.stop)
            if self._thread is not None:
                self._thread.join(5)
        self._link = self._loop = self._thread = None
