"""What the running station reports about itself: device states, outbox depth, health.json
and the support bundle — never patient data."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from station.config import Settings
from station.devices.manager import DeviceManager
from station.diagnostics import DeviceState as HealthDevice
from station.diagnostics import (
    HealthSnapshot,
    OutboxDepth,
    build_bundle,
    bundle_file_name,
    versions,
)
from station.logs import RecentErrors, Redactor
from station.sync.outbox import Outbox

DIAGNOSTICS_DIR = "diagnostics"  # bundles exported from the biomed screen, in the state dir


class StationHealth:
    """Reads the running parts; `manager` is asked each time (biomed rebinding replaces it)."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        manager: Callable[[], DeviceManager | None],
        redactor: Redactor,
        recent_errors: RecentErrors | None,
        *,
        broker_problem: Callable[[], str] = str,
        warnings: Callable[[], list[str]] = list,
    ) -> None:
        """`warnings`: what staff should know that is not a device or the outbox (a stored
        pushed config set aside at start); into health.json."""
        self._settings = settings
        self._broker_problem = broker_problem
        self._outbox = outbox
        self._manager = manager
        self._redactor = redactor
        self._recent = recent_errors
        self._warnings = warnings

    def device_states(self) -> list[HealthDevice]:
        """Bound devices as the diagnostics bundle and health.json report them."""
        manager = self._manager()
        if manager is None:
            return []
        now_s = time.monotonic()  # the links stamp frames with this clock
        return [
            HealthDevice(
                id=status.device_id,
                profile=status.profile,
                transport="ble" if status.address else "serial",
                state=status.state.value,
                detail=status.last_error or "",
                last_frame_age_s=None
                if status.last_frame_monotonic_s is None
                else round(max(0.0, now_s - status.last_frame_monotonic_s), 1),
                frames_rejected=status.frames_rejected,
                battery_percent=status.battery_percent,
                firmware_revision=status.firmware_revision,
            )
            for status in manager.status()
        ]

    def outbox_depth(self) -> OutboxDepth:
        stats = self._outbox.stats()
        return OutboxDepth(
            pending=stats.depth,
            oldest_pending_age_s=stats.oldest_age_s(datetime.now(UTC)),
            awaiting_ack=stats.delivered_awaiting_ack,
            awaiting_ack_overdue=stats.unacknowledged_overdue,
            rejected=stats.rejected,
            quarantined=stats.quarantined,
            disk_full=stats.reserve_in_use,
            broker_problem=self._broker_problem(),
        )

    def snapshot(self) -> HealthSnapshot:
        return HealthSnapshot(
            taken_at=datetime.now(UTC),
            devices=self.device_states(),
            outbox=self.outbox_depth(),
            warnings=self._warnings(),
        )

    def export_diagnostics(self) -> Path:
        """The support bundle (station.diagnostics.build_bundle, as `station diagnostics`),
        from the running services, into <state_dir>/diagnostics/."""
        now = datetime.now(UTC)
        folder = self._settings.storage.state_dir / DIAGNOSTICS_DIR
        folder.mkdir(exist_ok=True)
        path = folder / bundle_file_name(self._settings.station.station_id, now)
        recent = self._recent
        with open(path, "xb") as out:
            build_bundle(
                out,
                created_at=now,
                versions=versions(),
                settings=self._settings,
                devices=self.device_states,
                outbox=self.outbox_depth,
                recent_errors=lambda: [] if recent is None else list(recent.lines),
                redactor=self._redactor,
                name=str(path),
            )
        return path
