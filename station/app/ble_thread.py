"""Runs the station's one Bluetooth link (and its pairing agent) on its own asyncio loop, in
its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable

from dbus_fast import DBusError

from station.devices.ble_link import BleLink
from station.devices.pairing import AgentRegistration

log = logging.getLogger(__name__)

AgentFactory = Callable[[], Awaitable[AgentRegistration]]


class BleThread:
    """`start(link, agent=...)` registers the pairing agent, then runs the link until
    `stop()`; both are safe to call when idle."""

    def __init__(self) -> None:
        self._link: BleLink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.agent: AgentRegistration | None = None
        self.agent_problem: str | None = None

    def start(self, link: BleLink, agent: AgentFactory | None = None) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            ready.set()
            try:
                loop.run_until_complete(self._main(link, agent))
            except Exception:
                log.exception("Bluetooth link stopped")
            finally:
                loop.close()

        self._link = link
        self._thread = threading.Thread(target=run, name="ble-link", daemon=True)
        self._thread.start()
        ready.wait(5)

    async def _main(self, link: BleLink, agent: AgentFactory | None) -> None:
        if agent is not None:
            try:
                self.agent = await agent()
                self.agent_problem = None
                log.info(
                    "pairing agent registered (%s): only bound devices may pair",
                    self.agent.capability,
                )
            except (DBusError, RuntimeError, OSError, ValueError) as exc:
                # Devices that bond "just works" may still connect; a passkey device cannot.
                self.agent_problem = f"no pairing agent: {exc}"
                log.warning("%s; a device that asks for a passkey cannot pair", self.agent_problem)
        try:
            await link.run()
        finally:
            registration, self.agent = self.agent, None
            if registration is not None:
                try:
                    await registration.unregister()
                except (DBusError, RuntimeError, OSError) as exc:
                    log.warning("pairing agent not unregistered: %s", exc)
            await _release_bleak()

    def stop(self) -> None:
        if self._link is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._link.stop)
            if self._thread is not None:
                self._thread.join(5)
        self._link = self._loop = self._thread = None


async def _release_bleak() -> None:
    """bleak keeps one D-Bus connection per event loop for ever; this loop is about to close
    (links are restarted on every rebind), so close it and end its watcher tasks."""
    from bleak.backends.bluezdbus import manager

    loop = asyncio.get_running_loop()
    instances = manager._global_instances  # bleak 3: {loop: BlueZManager}
    instance = instances.pop(loop, None)
    bus = None if instance is None else instance._bus
    if bus is not None:
        bus.disconnect()
        with contextlib.suppress(Exception):
            await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
