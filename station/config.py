"""Runtime settings: `/etc/station/station.toml` read with tomllib into strict pydantic models."""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from station.errors import ConfigError
from station.locale import CODES, STAFF_CODES

DEFAULT_CONFIG_PATH = Path("/etc/station/station.toml")
CONFIG_ENV = "STATION_CONFIG"

# Site and station ids become MQTT topic levels and file names: no wildcards, no slashes.
TOPIC_LEVEL = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StationMode(StrEnum):
    EXAM = "exam"  # MA rooming in an exam room
    LOBBY = "lobby"  # patient self check-in tablet


class StationSection(_Strict):
    site: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    station_id: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    mode: StationMode = StationMode.EXAM
    room: str = ""  # shown on screen; the schedule is filtered by it when set
    provider: str = ""


class BrokerSection(_Strict):
    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 8883
    require_tls: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None  # client certificate for mutual TLS
    key_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None  # handed over by systemd (LoadCredential), never inline
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    protocol: Literal["mqttv5", "mqttv311", "auto"] = "auto"
    # End-to-end delivery: a message the practice system has not acknowledged this long
    # after the broker took it is published again (same message id; the pause doubles, up to
    # 30 minutes), and counted as overdue for staff after `ack_overdue_after_s`.
    ack_resend_after_s: Annotated[float, Field(ge=5, le=86400)] = 120.0
    ack_overdue_after_s: Annotated[float, Field(ge=30, le=7 * 86400)] = 900.0

    @model_validator(mode="after")
    def _pairs(self) -> BrokerSection:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        return self


class DisplaySection(_Strict):
    locale: Annotated[str, Field(pattern=r"^[a-z]{2}(_[A-Z]{2})?$")] = "en_US"
    # The screens' language (station.locale LANGUAGES); in the lobby, the one each patient
    # starts in (they can switch). Unset: the locale's language if the station has it, else en.
    language: str = "en"
    weight_unit: Literal["kg", "lb"] = "lb"
    temperature_unit: Literal["C", "F"] = "F"
    height_unit: Literal["cm", "in"] = "in"
    rotation: Literal[0, 90, 180, 270] = 0
    large_text: bool = False

    @model_validator(mode="before")
    @classmethod
    def _language_from_locale(cls, data: Any) -> Any:
        # Files from before `language` existed said it with `locale` ("es_US": Spanish).
        if isinstance(data, dict) and "language" not in data:
            spoken = str(data.get("locale", "en_US"))[:2]
            return {**data, "language": spoken if spoken in CODES else "en"}
        return data

    @field_validator("language")
    @classmethod
    def _known_language(cls, language: str) -> str:
        if language not in CODES:
            raise ValueError(
                f"expected one of {', '.join(CODES)} (the languages in station/locale)"
            )
        return language


class BoundDevice(_Strict):
    id: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    profile: str
    address: Annotated[str, Field(pattern=r"^([0-9A-F]{2}:){5}[0-9A-F]{2}$")] | None = None
    port: str | None = None  # serial: /dev/serial/by-id/... preferred over /dev/ttyUSBn

    @model_validator(mode="after")
    def _one_transport(self) -> BoundDevice:
        if (self.address is None) == (self.port is None):
            raise ValueError("give exactly one of address (Bluetooth LE) or port (serial)")
        return self


class GuardSection(_Strict):
    clock_skew_s: Annotated[float, Field(ge=0, le=3600)] = 120.0
    connect_burst_window_s: Annotated[float, Field(ge=0, le=60)] = 5.0


class SessionSection(_Strict):
    ma_idle_signout_s: Annotated[int, Field(ge=30, le=3600)] = 300
    lobby_idle_warning_s: Annotated[int, Field(ge=10, le=600)] = 60
    lobby_idle_wipe_s: Annotated[int, Field(ge=15, le=900)] = 90

    @model_validator(mode="after")
    def _warn_before_wipe(self) -> SessionSection:
        if self.lobby_idle_warning_s >= self.lobby_idle_wipe_s:
            raise ValueError("lobby_idle_warning_s must be less than lobby_idle_wipe_s")
        return self


class IntakeSection(_Strict):
    """What the lobby kiosk asks after the reason for visit (#18)."""

    questionnaires: bool = True  # the intake questionnaires the rules choose
    # A practice's own folder of Questionnaire files + rules.toml; default the bundled one.
    questionnaire_dir: Path | None = None
    ask_insurance: bool = True  # "has your insurance changed since your last visit?"


class StorageSection(_Strict):
    state_dir: Path = Path("/var/lib/station")
    outbox_key_file: Path | None = None  # AES-GCM key; default <state_dir>/outbox.key


class RecordsSection(_Strict):
    """What the site's EHR needs in the records (FHIR): the station's time zone, since device
    clocks are local wall time without an offset, and the EHR's identifier systems."""

    timezone: str = "UTC"  # IANA name, e.g. America/Chicago
    mrn_system: Annotated[str, Field(pattern=r"^(urn:|https?://)\S+$")] = (
        "urn:rooming-station:mrn"
    )
    appointment_system: Annotated[str, Field(pattern=r"^(urn:|https?://)\S+$")] = (
        "urn:rooming-station:appointment"
    )
    # The EHR's namespace for staff ids (the MA id of a badge/PIN in credentials.toml): the
    # Observation's performer is a logical Practitioner reference by this identifier.
    staff_system: Annotated[str, Field(pattern=r"^(urn:|https?://)\S+$")] = (
        "urn:rooming-station:ma"
    )

    @model_validator(mode="after")
    def _known_zone(self) -> RecordsSection:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {self.timezone!r} is not an IANA time zone (e.g. America/Chicago)"
            ) from None
        return self


class Settings(_Strict):
    station: StationSection
    records: RecordsSection = RecordsSection()
    broker: BrokerSection = BrokerSection()
    display: DisplaySection = DisplaySection()
    devices: list[BoundDevice] = []
    guard: GuardSection = GuardSection()
    session: SessionSection = SessionSection()
    intake: IntakeSection = IntakeSection()
    storage: StorageSection = StorageSection()

    @model_validator(mode="after")
    def _unique_devices(self) -> Settings:
        ids = [d.id for d in self.devices]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"device ids must be unique; repeated: {', '.join(dupes)}")
        language = self.display.language
        if self.station.mode is StationMode.EXAM and language not in STAFF_CODES:
            raise ValueError(
                f"display.language {language!r} has patient (lobby) screens only: an exam "
                f"station needs one of {', '.join(STAFF_CODES)}"
            )
        return self


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def _key(loc: tuple[int | str, ...]) -> str:
    """`('devices', 0, 'port')` -> `[devices][0].port`-style key a person can find in the file."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item.startswith(("function-after", "function-before")):
            continue
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def describe_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        key = _key(tuple(err["loc"]))
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (a typo?); see docs/configuration.md for the keys"
        elif err["type"] == "string_pattern_mismatch":
            pattern = err.get("ctx", {}).get("pattern", "")
            message = f"got {err['input']!r}, expected {_explain_pattern(pattern)}"
        elif err["type"] == "missing":
            message = "missing: this key is required"
        elif "input" in err and not isinstance(err["input"], dict):
            message = f"{message}; got {err['input']!r}"
        problems.append(f"{key}: {message}")
    return problems


def _explain_pattern(pattern: str) -> str:
    known = {
        TOPIC_LEVEL: "letters, digits, '-', '_' or '.', starting with a letter or digit "
        "(at most 64; it becomes an MQTT topic level)",
        r"^([0-9A-F]{2}:){5}[0-9A-F]{2}$": "a Bluetooth address like AA:BB:CC:DD:EE:FF "
        "(upper case)",
        r"^[a-z]{2}(_[A-Z]{2})?$": "a locale like en_US or es_US",
    }
    return known.get(pattern, f"text matching {pattern}")


def parse_settings(data: dict[str, Any], source: str) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe_validation_error(exc)) from exc


class TomlError(ValueError):
    """A file that is not TOML the station can read; the text says what is wrong."""


# Python's tomllib parses arrays and inline tables recursively: a file nested a few hundred
# levels deep ("a = [[[[...") exhausts the stack; a settings or profile file needs a few levels.
NESTED_TOO_DEEPLY = (
    "arrays or inline tables nested too deeply for the parser (hundreds of levels, "
    "e.g. a = [[[[...); a settings or profile file needs only a few"
)


def parse_toml(text: str) -> dict[str, Any]:
    """tomllib.loads, with every failure (a syntax error or nesting too deep for the parser's
    recursion) raised as TomlError("not valid TOML: ...") instead of a traceback."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlError(f"not valid TOML: {exc}") from exc
    except RecursionError:
        raise TomlError(f"not valid TOML: {NESTED_TOO_DEEPLY}") from None


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and check the settings file; any problem raises ConfigError naming file and key."""
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(file), ["file not found (set STATION_CONFIG or pass a path)"]
        ) from None
    except (PermissionError, IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(str(file), [f"cannot read: {exc}"]) from exc
    try:
        data = parse_toml(text)
    except TomlError as exc:
        raise ConfigError(str(file), [str(exc)]) from exc
    return parse_settings(data, str(file))


SAMPLE_CONFIG = """\
# /etc/station/station.toml — one file per station. `station config check` checks it.
[station]
site = "clinic-north"       # MQTT topic level: rooming/v1/{site}/{station_id}/...
station_id = "exam-3"
mode = "exam"               # exam (MA rooming) | lobby (patient self check-in)
room = "Exam 3"

[broker]
host = "broker.clinic.example"
port = 8883
require_tls = true
ca_file = "/etc/station/tls/ca.crt"
cert_file = "/etc/station/tls/station.crt"
key_file = "/etc/station/tls/station.key"

[records]                   # what the practice's EHR needs in the FHIR records
timezone = "America/Chicago"                      # device clocks are local wall time
mrn_system = "urn:oid:2.16.840.1.113883.3.999.1"  # the EHR's MRN namespace (an example)
appointment_system = "urn:oid:2.16.840.1.113883.3.999.2"
staff_system = "urn:oid:2.16.840.1.113883.3.999.3"

[display]
locale = "en_US"
language = "en"             # en | es | vi (vi: lobby stations only); station/locale
weight_unit = "lb"          # shown in lb, stored in kg
temperature_unit = "F"      # shown in °F, stored in °C
height_unit = "in"

[[devices]]
id = "cuff"
profile = "and-ua-651ble"
address = "AA:BB:CC:DD:EE:01"

[[devices]]
id = "oximeter"
profile = "nonin-xpod-3012lp"
port = "/dev/serial/by-id/usb-Nonin_Medical_Xpod-if00-port0"
"""
