"""The field diagnostics bundle: versions, config without secrets, device states, recent errors and
outbox depth, in one tar.gz a biomed tech can send in — and nothing about patients.

The bundle takes its facts from providers (plain callables) so it works before, and without, the
device links and the outbox: the running station writes a `HealthSnapshot` to its state directory
and `station diagnostics` reads it back; a test or another tool passes its own providers. Every
text that could carry patient data (error lines, device details) goes through the `Redactor`.
"""

from __future__ import annotations

import io
import json
import platform
import re
import tarfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from station import __version__
from station.config import Settings
from station.errors import ConfigError
from station.logs import Redactor

BUNDLE_SCHEMA = "station-diagnostics/1"
HEALTH_FILE = "health.json"  # in the state directory, written by the running station
# Per-key removal, not a pattern: a new secret key in Settings must be added here on purpose.
SECRET_KEYS: frozenset[tuple[str, str]] = frozenset(
    {
        ("broker", "username"),
        ("broker", "password_file"),
        ("broker", "key_file"),
        ("storage", "outbox_key_file"),
    }
)
REMOVED = "[removed]"
PACKAGES = ("rooming-station", "pyserial", "bleak", "dbus-fast", "kivy", "paho-mqtt", "pydantic")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeviceState(_Strict):
    """One bound device as the link sees it; `state` is the link's own word (connected, ...)."""

    id: str
    profile: str
    transport: Literal["ble", "serial"]
    state: str
    detail: str = ""
    last_frame_age_s: Annotated[float, Field(ge=0)] | None = None
    frames_rejected: Annotated[int, Field(ge=0)] = 0
    battery_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    firmware_revision: str | None = None


class OutboxDepth(_Strict):
    pending: Annotated[int, Field(ge=0)]
    oldest_pending_age_s: Annotated[float, Field(ge=0)] | None = None
    # Delivered, not yet filed by the practice system (and how many for too long).
    awaiting_ack: Annotated[int, Field(ge=0)] = 0
    awaiting_ack_overdue: Annotated[int, Field(ge=0)] = 0
    rejected: Annotated[int, Field(ge=0)] = 0
    quarantined: Annotated[int, Field(ge=0)] = 0
    disk_full: bool = False
    broker_problem: str = ""  # e.g. the broker refuses this station's messages

    def warnings(self) -> list[str]:
        """What staff must act on, in words (no patient data: counts and the broker's say)."""
        out = []
        if self.broker_problem:
            out.append(self.broker_problem)
        if self.disk_full:
            out.append("the disk is full: new messages cannot be saved until space is freed")
        if self.awaiting_ack_overdue:
            out.append(f"{self.awaiting_ack_overdue} messages sent but not acknowledged by the "
                       "practice system in time (sent again; is its gateway running?)")
        if self.rejected:
            out.append(f"{self.rejected} messages rejected by the practice system")
        if self.quarantined:
            out.append(f"{self.quarantined} unreadable messages set aside (kept): "
                       "`station outbox export` for IT")
        return out


class HealthSnapshot(_Strict):
    """What the running station reports about itself, for `station diagnostics` to read."""

    taken_at: datetime
    devices: list[DeviceState] = []
    outbox: OutboxDepth | None = None
    # What staff must know that is not a device or the outbox, e.g. "Stored configuration
    # 1a2b3c4d not applied (...): running on the settings file alone". No patient data.
    warnings: list[str] = []


DeviceStates = Callable[[], Sequence[DeviceState]]
OutboxDepthProvider = Callable[[], OutboxDepth | None]
RecentErrorsProvider = Callable[[], Sequence[str]]


def write_health_snapshot(path: Path, snapshot: HealthSnapshot) -> None:
    """Atomically replace the snapshot (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(snapshot.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)


def read_health_snapshot(path: Path) -> HealthSnapshot | None:
    """None when the station has not reported (not running, or an older build)."""
    try:
        return HealthSnapshot.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValidationError as exc:
        raise ConfigError(
            str(path), [f"not a health snapshot: {exc.error_count()} problem(s)"]
        ) from exc


def versions() -> dict[str, str]:
    """The software on this station, for the bundle's versions.json."""
    found = {"station": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["kernel"] = platform.release()
    found["machine"] = platform.machine()
    try:
        release = Path("/etc/os-release").read_text(encoding="utf-8")
        fields = dict(line.split("=", 1) for line in release.splitlines() if "=" in line)
        found["os"] = fields.get("PRETTY_NAME", "").strip('"')
    except OSError:
        found["os"] = "unknown"
    return found


def bundle_file_name(station_id: str, created_at: datetime) -> str:
    return f"station-diagnostics-{station_id}-{created_at:%Y%m%dT%H%M%SZ}.tar.gz"


def settings_without_secrets(settings: Settings) -> dict[str, Any]:
    data = settings.model_dump(mode="json")
    for section, key in SECRET_KEYS:
        if data.get(section, {}).get(key) is not None:
            data[section][key] = REMOVED
    return data


class BundleSummary(_Strict):
    path: str
    members: list[str]
    devices: int
    recent_errors: int
    outbox_pending: int | None
    config_ok: bool


def build_bundle(
    out: IO[bytes],
    *,
    created_at: datetime,
    versions: Mapping[str, str],
    settings: Settings | ConfigError,
    devices: DeviceStates,
    outbox: OutboxDepthProvider,
    recent_errors: RecentErrorsProvider,
    redactor: Redactor,
    name: str = "<stream>",
) -> BundleSummary:
    """Write the tar.gz to `out`. Providers that fail are recorded in the bundle, not raised:
    a half-broken station is exactly when the bundle is needed."""
    problems: list[str] = []

    def call(what: str, provider: Callable[[], Any], fallback: Any) -> Any:
        try:
            return provider()
        except Exception as exc:  # any provider failure is a finding for the bundle, not a crash
            problems.append(redactor.redact(f"{what}: {type(exc).__name__}: {exc}"))
            return fallback

    device_list: Sequence[DeviceState] = call("device states", devices, [])
    depth: OutboxDepth | None = call("outbox depth", outbox, None)
    errors: Sequence[str] = call("recent errors", recent_errors, [])

    if isinstance(settings, ConfigError):
        config: dict[str, Any] = {
            "ok": False,
            "path": settings.path,
            "problems": [redactor.redact(p) for p in settings.problems],
        }
    else:
        config = {"ok": True, "settings": settings_without_secrets(settings)}
    device_rows = [
        d.model_copy(update={"detail": redactor.redact(d.detail)}).model_dump(mode="json")
        for d in device_list
    ]
    members: dict[str, bytes] = {
        "manifest.json": _json(
            {
                "schema": BUNDLE_SCHEMA,
                "created_at": created_at.isoformat(),
                "problems": problems,
                "warnings": [] if depth is None else depth.warnings(),
                "contains": "versions, configuration without secrets, device states, recent "
                "errors (redacted), outbox depth; no patient data",
            }
        ),
        "versions.json": _json(dict(versions)),
        "config.json": _json(config),
        "devices.json": _json(device_rows),
        "outbox.json": _json(None if depth is None else depth.model_dump(mode="json")),
        "errors.log": "".join(_error_line(line, redactor) + "\n" for line in errors).encode(),
    }
    mtime = created_at.timestamp()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for member, payload in members.items():
            info = tarfile.TarInfo(f"station-diagnostics/{member}")
            info.size = len(payload)
            info.mtime = int(mtime)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(payload))
    return BundleSummary(
        path=name,
        members=list(members),
        devices=len(device_rows),
        recent_errors=len(errors),
        outbox_pending=None if depth is None else depth.pending,
        config_ok=not isinstance(settings, ConfigError),
    )


# The journal's own time stamp leads each error line; it is not patient data and the redactor
# would take it for a date, so it is split off first and only the message is redacted.
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")


def _error_line(line: str, redactor: Redactor) -> str:
    line = line.rstrip("\n")
    stamp = _STAMP.match(line)
    head = stamp.group(0) if stamp else ""
    return head + redactor.redact(line[len(head) :])


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
