"""Configuration pushed by the practice system: kept in the state directory, applied at the
next start (never mid-rooming: devices and guard windows change only on a restart)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from station.config import Settings, describe_validation_error
from station.errors import ConfigError
from station.sync.contract import (
    ConfigPayload,
    StationConfigPush,
)

log = logging.getLogger(__name__)

PUSHED_CONFIG_FILE = "pushed-config.json"  # the last `config` the practice system pushed


class PushedConfig(BaseModel):
    """The last accepted `config` push, kept in the state directory: applied at start-up
    (never mid-rooming: devices and guard windows change only on a restart)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str
    received_at: datetime
    settings: StationConfigPush


def read_pushed_config(state_dir: Path) -> PushedConfig | None:
    path = state_dir / PUSHED_CONFIG_FILE
    try:
        return PushedConfig.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValidationError as exc:
        raise ConfigError(str(path), describe_validation_error(exc)) from exc


def write_pushed_config(state_dir: Path, pushed: PushedConfig) -> None:
    path = state_dir / PUSHED_CONFIG_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(pushed.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)  # a reader (the next start) never sees half a file


def apply_pushed(settings: Settings, push: StationConfigPush) -> Settings:
    """The pushed sections replace the file's; what the push leaves out stays."""
    changes: dict[str, Any] = {}
    if push.display is not None:
        changes["display"] = push.display
    if push.devices is not None:
        changes["devices"] = list(push.devices)
    if push.guard is not None:
        changes["guard"] = push.guard
    return settings.model_copy(update=changes)


def describe_push(push: StationConfigPush) -> str:
    parts = [name for name in ("display", "devices", "guard") if getattr(push, name) is not None]
    return ", ".join(parts) or "no settings"


class PushedConfigInbox:
    """Receives the practice system's `config` pushes (MQTT thread): stores a new one for the
    next start, never hot-applies it (devices and guard windows must not change mid-rooming),
    and words a notice for the biomed screen. The retained copy comes again on every connect;
    the one already applied is no news."""

    def __init__(
        self,
        state_dir: Path,
        clock: Callable[[], datetime],
        applied: PushedConfig | None,
        redraw: Callable[[], None],
    ) -> None:
        self._state_dir = state_dir
        self._clock = clock
        self.applied = applied
        self._redraw = redraw
        self.notice = ""  # a str swap from the MQTT thread, read by biomed
        self.last_id = ""  # the last accepted push seen, applied or not

    def receive(self, payload: ConfigPayload) -> None:
        """Validated by the sync layer before it gets here."""
        message_id = str(payload.message_id)
        self.last_id = message_id
        if self.applied is not None and self.applied.message_id == message_id:
            return
        received = self._clock()
        try:
            write_pushed_config(
                self._state_dir,
                PushedConfig(
                    message_id=message_id, received_at=received, settings=payload.settings
                ),
            )
        except OSError as exc:
            log.error("pushed config %s not stored: %s", message_id, exc.strerror)
            self.notice = (
                f"New configuration {message_id[:8]} could not be stored "
                f"({exc.strerror}): not applied"
            )
        else:
            log.warning("config %s stored; it applies when the station restarts", message_id)
            self.notice = (
                f"New configuration received {received:%H:%M} "
                f"({describe_push(payload.settings)}): applies on restart"
            )
        self._redraw()  # the biomed settings
