"""Configuration pushed by the practice system: checked as fully as the local settings file
before it is accepted, kept in the state directory, applied at the next start (never
mid-rooming: devices and guard windows change only on a restart). A stored push that no longer
passes at start is set aside for the last good one (or the local file alone), with a warning:
a push can never put the station in a restart loop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from station.config import Settings, describe_validation_error
from station.devices.profiles import FirmwareProfile, binding_problems, load_profiles
from station.errors import ConfigError
from station.sync.contract import (
    ConfigPayload,
    StationConfigPush,
)

log = logging.getLogger(__name__)

PUSHED_CONFIG_FILE = "pushed-config.json"  # the last `config` the practice system pushed
# The push the station last started with: what it falls back to when a newer stored push no
# longer passes (the profiles changed, the local file changed, the file was damaged).
LAST_GOOD_FILE = "pushed-config.last-good.json"

Profiles = Callable[[], Mapping[str, FirmwareProfile]]


class PushedConfig(BaseModel):
    """The last accepted `config` push, kept in the state directory: applied at start-up
    (never mid-rooming: devices and guard windows change only on a restart)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str
    received_at: datetime
    settings: StationConfigPush


def read_pushed_config(state_dir: Path, name: str = PUSHED_CONFIG_FILE) -> PushedConfig | None:
    """None when nothing was stored; ConfigError (naming the file) when it is unreadable,
    not JSON, nested too deeply or not a push."""
    path = state_dir / name
    try:
        return PushedConfig.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    except ValidationError as exc:
        # Without the values: a damaged file can be megabytes of one value.
        problems = [p.split("; got ")[0] for p in describe_validation_error(exc)]
        raise ConfigError(str(path), problems) from exc


def write_pushed_config(
    state_dir: Path, pushed: PushedConfig, name: str = PUSHED_CONFIG_FILE
) -> None:
    path = state_dir / name
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(pushed.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)  # a reader (the next start) never sees half a file


def apply_pushed(settings: Settings, push: StationConfigPush) -> Settings:
    """The pushed sections replace the file's; what the push leaves out stays. Not checked
    here: `check_push` says whether the result is a configuration the station can run."""
    changes: dict[str, Any] = {}
    if push.display is not None:
        changes["display"] = push.display
    if push.devices is not None:
        changes["devices"] = list(push.devices)
    if push.guard is not None:
        changes["guard"] = push.guard
    return settings.model_copy(update=changes)


def check_push(local: Settings, push: StationConfigPush, profiles: Profiles) -> list[str]:
    """Every problem of the local settings with this push applied, as `station config check`
    would find them in a file: the whole settings model again (model_copy checks nothing:
    unique device ids, one transport each) and every device's profile installed and of its
    transport. Keys are the push's (`settings.devices[0].profile`); [] when it can run.
    `profiles` is asked only when there are devices; a broken profile file is a problem."""
    merged = apply_pushed(local, push)
    try:
        merged = Settings.model_validate(merged.model_dump())
    except ValidationError as exc:
        return [_push_key(p) for p in describe_validation_error(exc)]
    if not merged.devices:
        return []
    try:
        known = profiles()
    except ConfigError as exc:
        return [f"firmware profiles unreadable: {exc}"]
    return [_push_key(p) for p in binding_problems(merged.devices, known)]


def _push_key(problem: str) -> str:
    if problem.startswith("(top level)"):
        return "settings" + problem.removeprefix("(top level)")
    return "settings." + problem


def describe_push(push: StationConfigPush) -> str:
    parts = [name for name in ("display", "devices", "guard") if getattr(push, name) is not None]
    return ", ".join(parts) or "no settings"


@dataclass(frozen=True)
class StartConfig:
    """What the station starts with: the settings, the push applied (if any), and a warning
    ("" when none) saying which stored push was set aside and why."""

    settings: Settings
    applied: PushedConfig | None
    warning: str = ""
    stored_id: str = ""  # the message id in pushed-config.json ("" none or unreadable)


def settings_at_start(local: Settings, state_dir: Path, profiles: Profiles) -> StartConfig:
    """The local settings with the stored push applied, if it still passes `check_push`;
    otherwise the last good push (the one the station last started with), otherwise the local
    file alone — with a warning for the log, health.json and the biomed screen. The set-aside
    file stays where it is (evidence; the retained push is checked again on connect)."""
    try:
        pushed = read_pushed_config(state_dir)
    except ConfigError as exc:
        reason = "; ".join(exc.problems)
        stored_name, stored_id = "(unreadable)", ""
    else:
        if pushed is None:
            return StartConfig(local, None)
        problems = _problems_at_start(local, pushed, profiles)
        if not problems:
            try:
                last_good = read_pushed_config(state_dir, LAST_GOOD_FILE)
            except ConfigError:
                last_good = None
            if last_good != pushed:
                try:
                    write_pushed_config(state_dir, pushed, LAST_GOOD_FILE)
                except OSError as exc:  # only the fallback is lost; this start is fine
                    log.warning("last good configuration not kept: %s", exc.strerror)
            return StartConfig(
                apply_pushed(local, pushed.settings), pushed, stored_id=pushed.message_id
            )
        reason = "; ".join(problems)
        stored_name = pushed.message_id[:8]
        stored_id = pushed.message_id
    fallback = _last_good(local, state_dir, profiles)
    instead = (
        f"the last good configuration {fallback.message_id[:8]}"
        if fallback is not None
        else "the settings file alone"
    )
    warning = f"Stored configuration {stored_name} not applied ({reason}): running on {instead}"
    log.warning("%s", warning)
    settings = local if fallback is None else apply_pushed(local, fallback.settings)
    return StartConfig(settings, fallback, warning, stored_id=stored_id)


def _last_good(local: Settings, state_dir: Path, profiles: Profiles) -> PushedConfig | None:
    try:
        last_good = read_pushed_config(state_dir, LAST_GOOD_FILE)
    except ConfigError as exc:
        log.warning("last good configuration not usable: %s", "; ".join(exc.problems))
        return None
    if last_good is None:
        return None
    problems = _problems_at_start(local, last_good, profiles)
    if problems:
        log.warning(
            "last good configuration %s not usable either: %s",
            last_good.message_id[:8],
            "; ".join(problems),
        )
        return None
    return last_good


def _problems_at_start(local: Settings, pushed: PushedConfig, profiles: Profiles) -> list[str]:
    return check_push(local, pushed.settings, profiles)


def installed_profiles(given: Mapping[str, FirmwareProfile] | None) -> Profiles:
    """The profiles a push is checked against: the ones given (tests), else the installed
    ones read at each check (biomed may have added a file since the start)."""
    if given is not None:
        fixed = dict(given)
        return lambda: fixed
    return load_profiles


class PushedConfigInbox:
    """Receives the practice system's `config` pushes (MQTT thread): checks a new one against
    the local settings file and the installed profiles (`check`, which the router calls
    first: a refused push is reported on the status topic), stores an accepted one for the
    next start, never hot-applies it (devices and guard windows must not change mid-rooming),
    and words a notice for the biomed screen. The retained copy comes again on every connect;
    the one already applied is no news."""

    def __init__(
        self,
        state_dir: Path,
        clock: Callable[[], datetime],
        applied: PushedConfig | None,
        redraw: Callable[[], None],
        *,
        local: Settings | None = None,
        profiles: Profiles = load_profiles,
        notice: str = "",
        stored_id: str = "",
    ) -> None:
        """`local` is the settings file as read (before any push); without it a push is
        stored unchecked (the old behaviour, for callers that only read pushes)."""
        self._state_dir = state_dir
        self._clock = clock
        self.applied = applied
        self._redraw = redraw
        self._local = local
        self._profiles = profiles
        self._stored_id = stored_id  # what pushed-config.json holds
        self.notice = notice  # a str swap from the MQTT thread, read by biomed
        self.last_id = ""  # the last accepted push seen, applied or not

    def check(self, payload: ConfigPayload) -> list[str]:
        """Every reason this push cannot run on this station ([] to accept it). A refusal
        replaces the biomed notice; the router reports it on the status topic."""
        if self._local is None:
            return []
        problems = check_push(self._local, payload.settings, self._profiles)
        if problems:
            self.notice = (
                f"Configuration {str(payload.message_id)[:8]} refused: {'; '.join(problems)}"
            )
            self._redraw()
        return problems

    def receive(self, payload: ConfigPayload) -> None:
        """Checked (contract by the sync layer, `check` by the router) before it gets here."""
        message_id = str(payload.message_id)
        self.last_id = message_id
        if self.applied is not None and self.applied.message_id == message_id:
            if self._stored_id != message_id:
                # Running on the last good push (a newer stored one was set aside) and the
                # practice system pushes that one again: store it, so the next start is clean.
                self._store(self.applied, quiet=True)
            return
        received = self._clock()
        pushed = PushedConfig(
            message_id=message_id, received_at=received, settings=payload.settings
        )
        if self._store(pushed, quiet=False):
            log.warning("config %s stored; it applies when the station restarts", message_id)
            self.notice = (
                f"New configuration received {received:%H:%M} "
                f"({describe_push(payload.settings)}): applies on restart"
            )
        self._redraw()  # the biomed settings

    def _store(self, pushed: PushedConfig, *, quiet: bool) -> bool:
        message_id = pushed.message_id
        try:
            write_pushed_config(self._state_dir, pushed)
        except OSError as exc:
            log.error("pushed config %s not stored: %s", message_id, exc.strerror)
            if not quiet:
                self.notice = (
                    f"New configuration {message_id[:8]} could not be stored "
                    f"({exc.strerror}): not applied"
                )
            return False
        self._stored_id = message_id
        return True
