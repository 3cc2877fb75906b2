"""Firmware profiles: one TOML file per device model, read into strict pydantic models and checked.

A profile says how to recognise a device (BLE advertisement or USB identity), how to talk to it
(line settings, codecs, polling), how it behaves (clock, stored readings, bonding) and what its
manufacturer says it can measure. Biomed staff add a device by adding a file, not code.

API for the links and the device manager:
- `load_profiles()` -> `{id: FirmwareProfile}` from `profile_dirs()`; raises ConfigError.
- `load_profile(path)` / `find_profile(id_or_path)` -> one profile; raises ConfigError.
- `check_profile_files(paths)` -> the ConfigErrors of every bad file (nothing raised).
- `binding_problems(devices, profiles)` / `check_settings(settings, source)` -> every bound
  device's profile exists and speaks its transport (what `station config check` and a pushed
  config are held to).
- `FirmwareProfile.device_ranges()` -> what `station.validation.validate(device_ranges=...)` takes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from station.capture import CAPTURE_KINDS, CaptureOverrides, Delivery
from station.config import (
    BoundDevice,
    Settings,
    TomlError,
    describe_validation_error,
    parse_toml,
)
from station.devices.codecs.base import CodecSpec, FrameCodec, FrameResult
from station.devices.codecs.quirks import CodecQuirks, QuirkName
from station.devices.codecs.serial.events import DeviceEventCode
from station.errors import ConfigError
from station.models import VALUE_FIELDS, Kind

# The profiles shipped with the station, and where a site adds its own.
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "firmware_profiles"
SITE_DIR = Path("/etc/station/firmware_profiles")
DIRS_ENV = "STATION_PROFILE_DIRS"  # os.pathsep-separated; replaces the default list

PROFILE_ID = r"^[a-z0-9][a-z0-9-]{1,63}$"
HEX_BYTES = r"^\s*[0-9A-Fa-f]{2}(\s*[0-9A-Fa-f]{2})*\s*$"
CODEC_NAME = r"^(ble|serial):[a-z0-9-]+$"
# Device kinds (what a device measures); the hand-entered kinds never come from a profile.
DEVICE_KINDS = (
    Kind.BLOOD_PRESSURE,
    Kind.CUFF_PRESSURE,
    Kind.PULSE_OXIMETRY,
    Kind.TEMPERATURE,
    Kind.BODY_WEIGHT,
)

HexBytes = Annotated[str, Field(pattern=HEX_BYTES)]
CodecName = Annotated[str, Field(pattern=CODEC_NAME)]


def hex_bytes(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def uuid128(uuid: str) -> str:
    """A GATT UUID as BlueZ spells it: "2A35" or "0x2a35" -> "00002a35-0000-1000-8000-…"."""
    text = uuid.strip().lower().removeprefix("0x")
    return f"0000{text}-0000-1000-8000-00805f9b34fb" if len(text) == 4 else text


def _gatt_uuid(text: str) -> str:
    full = uuid128(text)
    try:
        UUID(full)
    except ValueError:
        raise ValueError(
            'not a GATT UUID; expected 4 hex digits ("2a35") or a 128-bit UUID'
        ) from None
    return full


GattUuid = Annotated[str, AfterValidator(_gatt_uuid)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Transport(StrEnum):
    BLE = "ble"
    SERIAL = "serial"


class Parity(StrEnum):
    NONE = "none"
    EVEN = "even"
    ODD = "odd"
    MARK = "mark"
    SPACE = "space"


class FlowControl(StrEnum):
    NONE = "none"
    RTSCTS = "rtscts"
    XONXOFF = "xonxoff"


class LineSettings(_Strict):
    baud: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
    data_bits: Literal[7, 8] = 8
    parity: Parity = Parity.NONE
    stop_bits: Literal[1, 2] = 1
    flow_control: FlowControl = FlowControl.NONE


class UsbId(_Strict):
    """USB vendor and product id as `lsusb` prints them (4 lower-case hex digits each)."""

    vendor_id: Annotated[str, Field(pattern=r"^[0-9a-f]{4}$")]
    product_id: Annotated[str, Field(pattern=r"^[0-9a-f]{4}$")]
    note: str = ""  # e.g. "FTDI RS-232 adapter": the id of the adapter, not the device


class Poll(_Strict):
    """For request/response protocols: what to send, and how often. A multi-parameter monitor
    answers one parameter per command: `also_hex` lists the others, polled in turn, so each
    command goes out once per `interval_s` (evenly spaced, never all in one write)."""

    command_hex: HexBytes
    interval_s: Annotated[float, Field(ge=0.05, le=3600)]
    also_hex: Annotated[list[HexBytes], Field(max_length=8)] = []

    @property
    def command(self) -> bytes:
        return hex_bytes(self.command_hex)

    @property
    def cycle(self) -> list[bytes]:
        """Every polled command, in the order they go out."""
        return [self.command, *(hex_bytes(text) for text in self.also_hex)]


class SerialSection(_Strict):
    line: LineSettings
    usb: list[UsbId] = []
    by_id_pattern: str | None = None  # glob on /dev/serial/by-id names, e.g. "usb-FTDI_*"
    init_hex: list[HexBytes] = []  # sent once after opening (e.g. select a data format)
    poll: Poll | None = None
    # Sent when the device says something: e.g. SunTech "measurement complete" -> get BP data.
    on_event: dict[DeviceEventCode, HexBytes] = {}
    # Named commands other parts may send (start, abort, zero ...).
    commands: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], HexBytes] = {}

    @model_validator(mode="after")
    def _recognisable(self) -> SerialSection:
        if not self.usb and not self.by_id_pattern:
            raise ValueError(
                "serial: give usb (vendor_id/product_id) or by_id_pattern, or both, so the "
                "station can find the port after a replug"
            )
        return self

    @property
    def init_commands(self) -> list[bytes]:
        return [hex_bytes(text) for text in self.init_hex]

    def event_reply(self, code: DeviceEventCode) -> bytes | None:
        text = self.on_event.get(code)
        return None if text is None else hex_bytes(text)

    def command(self, name: str) -> bytes:
        try:
            return hex_bytes(self.commands[name])
        except KeyError:
            known = ", ".join(sorted(self.commands)) or "none"
            raise KeyError(f"no command {name!r}; this profile has: {known}") from None


class BleMatch(_Strict):
    service_uuids: list[UUID] = []
    name_pattern: str | None = None  # a regular expression on the advertised local name
    manufacturer_id: Annotated[int, Field(ge=0, le=0xFFFF)] | None = None

    @field_validator("name_pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return pattern

    @model_validator(mode="after")
    def _something(self) -> BleMatch:
        if not self.service_uuids and not self.name_pattern and self.manufacturer_id is None:
            raise ValueError("match: give service_uuids, name_pattern or manufacturer_id")
        return self

    def accepts(
        self, service_uuids: Iterable[str], name: str | None, manufacturer_ids: Iterable[int] = ()
    ) -> bool:
        """Whether an advert passes every rule this profile gives (rules not given pass)."""
        if self.service_uuids:
            wanted = {str(u) for u in self.service_uuids}
            if not wanted & {uuid128(u) for u in service_uuids}:
                return False
        if self.name_pattern is not None and not re.search(self.name_pattern, name or ""):
            return False
        return self.manufacturer_id is None or self.manufacturer_id in set(manufacturer_ids)


class ClockWrite(StrEnum):
    """Which clock characteristic the station writes, and when."""

    NONE = "none"
    DATE_TIME = "date_time"  # Date Time 0x2A08, right after connecting (A&D)
    CURRENT_TIME = "current_time"  # Current Time 0x2A2B, right after connecting
    # Current Time 0x2A2B, after the device's first Current Time notification (Omron)
    CURRENT_TIME_AFTER_NOTIFY = "current_time_after_notify"


class BleSection(_Strict):
    match: BleMatch
    # characteristic UUID (0x2A35 as "2a35", or 128-bit) -> codec; subscribed on connect
    measurements: Annotated[dict[GattUuid, CodecName], Field(min_length=1)]
    # characteristic UUID -> codec; read once on connect (e.g. Blood Pressure Feature 0x2A49)
    features: dict[GattUuid, CodecName] = {}
    clock: ClockWrite = ClockWrite.NONE
    racp: bool = False  # subscribe to Record Access Control Point 0x2A52 when the device has it


class Behaviour(_Strict):
    sends_stored_on_connect: bool = False  # dumps earlier readings at connect (safety guard!)
    needs_bonding: bool = False  # Bluetooth: bond (pair) before reading
    passkey: bool = False  # Bluetooth: bonding asks for the passkey the device shows
    # Bluetooth: StartNotify instead of AcquireNotify, so a device that sends before the
    # descriptor write completes loses nothing (bleak 2.x defaults to AcquireNotify).
    use_start_notify: bool = True
    # How readings arrive: "spot" (one per measurement, passed on as it is) or "streaming"
    # (a reading a second or a poll while measuring: one spot value is captured per episode,
    # see station.capture). Every shipped profile says which.
    delivery: Delivery = Delivery.SPOT
    # Streaming devices: codecs whose readings are spot measurements all the same (PLX
    # Spot-check 0x2A5E on an oximeter that also streams PLX Continuous 0x2A5F).
    spot_codecs: list[CodecName] = []
    # Streaming devices: thresholds that replace station.capture's defaults for this model.
    capture: CaptureOverrides | None = None


class MeasurementRange(_Strict):
    low: float
    high: float
    accuracy: str = ""  # as the manufacturer states it, e.g. "±3 mmHg"

    @model_validator(mode="after")
    def _ordered(self) -> MeasurementRange:
        if self.low >= self.high:
            raise ValueError(f"low {self.low:g} must be below high {self.high:g}")
        return self


class KnownIssue(_Strict):
    """Something about a model biomed staff should know (free text, not used by the code)."""

    firmware: str  # which firmware versions, as the manufacturer names them ("all", "< 2.1")
    note: str


class FirmwareProfile(_Strict):
    id: Annotated[str, Field(pattern=PROFILE_ID)]
    vendor: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)]
    kinds: Annotated[list[Kind], Field(min_length=1)]
    transport: Transport
    codecs: Annotated[list[CodecName], Field(min_length=1)]
    source: str = ""  # the manufacturer's document (and revision) the profile follows
    serial: SerialSection | None = None
    ble: BleSection | None = None
    behaviour: Behaviour = Behaviour()
    ranges: dict[str, MeasurementRange] = {}  # value field -> manufacturer's stated range
    # Decoding quirks by codec: how this model breaks the layout (station.devices.codecs.quirks)
    quirks: dict[CodecName, CodecQuirks] = {}
    known_issues: list[KnownIssue] = []
    notes: str = ""

    @model_validator(mode="before")
    @classmethod
    def _legacy_quirk_notes(cls, data: Any) -> Any:
        """Before decoding quirks, `[[quirks]]` held free-text notes: still read, as issues."""
        if isinstance(data, dict) and isinstance(data.get("quirks"), list):
            data = dict(data)
            data["known_issues"] = [*data.get("known_issues", []), *data.pop("quirks")]
        return data

    @field_validator("kinds")
    @classmethod
    def _device_kinds(cls, kinds: list[Kind]) -> list[Kind]:
        for kind in kinds:
            if kind not in DEVICE_KINDS:
                allowed = ", ".join(k.value for k in DEVICE_KINDS)
                raise ValueError(f"{kind.value!r} is entered by hand; expected one of {allowed}")
        return kinds

    @model_validator(mode="after")
    def _consistent(self) -> FirmwareProfile:
        from station.devices.codecs.registry import all_codecs

        problems: list[str] = []
        wanted = self.transport.value
        section = self.serial if self.transport == Transport.SERIAL else self.ble
        other = "ble" if self.transport == Transport.SERIAL else "serial"
        if section is None:
            problems.append(f"{wanted}: missing: a {wanted} profile needs a [{wanted}] table")
        if getattr(self, other) is not None:
            problems.append(f"{other}: not allowed in a {wanted} profile")
        registered = all_codecs()
        for i, name in enumerate(self.codecs):
            if not name.startswith(f"{wanted}:"):
                problems.append(f"codecs[{i}]: {name!r} is not a {wanted} codec")
            elif name not in registered:
                known = ", ".join(n for n in registered if n.startswith(wanted))
                problems.append(f"codecs[{i}]: unknown codec {name!r}; expected one of {known}")
        problems.extend(self._ble_problems())
        problems.extend(self._delivery_problems())
        problems.extend(self._quirk_problems(registered))
        fields = {f for kind in self.kinds for f in VALUE_FIELDS[kind]}
        for name in self.ranges:
            if name not in fields:
                problems.append(
                    f"ranges.{name}: not a value of this profile's kinds; expected one of "
                    + ", ".join(sorted(fields))
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _ble_problems(self) -> list[str]:
        problems: list[str] = []
        b = self.behaviour
        if self.ble is None:
            for key in ("needs_bonding", "passkey"):
                if getattr(b, key):
                    problems.append(
                        f"behaviour.{key}: Bluetooth only; remove it from a serial profile"
                    )
            return problems
        if b.passkey and not b.needs_bonding:
            problems.append(
                "behaviour.passkey: the passkey is asked while bonding; set needs_bonding = true"
            )
        for table in ("measurements", "features"):
            for uuid, codec in getattr(self.ble, table).items():
                if codec not in self.codecs:
                    problems.append(
                        f"ble.{table}.{_short(uuid)}: codec {codec!r} is not in codecs; "
                        "add it there"
                    )
        return problems

    def _delivery_problems(self) -> list[str]:
        b = self.behaviour
        problems: list[str] = []
        if b.delivery is Delivery.STREAMING:
            if not CAPTURE_KINDS & set(self.kinds):
                captured = " and ".join(sorted(k.value for k in CAPTURE_KINDS))
                problems.append(
                    f"behaviour.delivery: 'streaming' is captured for {captured} only; this "
                    "profile measures " + ", ".join(k.value for k in self.kinds) + " (use 'spot')"
                )
            for i, codec in enumerate(b.spot_codecs):
                if codec not in self.codecs:
                    problems.append(
                        f"behaviour.spot_codecs[{i}]: codec {codec!r} is not in codecs; add it "
                        "there"
                    )
            return problems
        for key in ("spot_codecs", "capture"):
            if getattr(b, key):
                problems.append(
                    f"behaviour.{key}: only for delivery = 'streaming'; this profile is 'spot'"
                )
        return problems

    def _quirk_problems(self, registered: Mapping[str, CodecSpec]) -> list[str]:
        problems: list[str] = []
        with_quirks = sorted(
            name
            for name, spec in registered.items()
            if isinstance(spec, FrameCodec) and spec.quirk_support is not None
        )
        for codec, quirks in self.quirks.items():
            key = f'quirks."{codec}"'
            spec = registered.get(codec)
            if codec not in self.codecs:
                problems.append(f"{key}: codec {codec!r} is not in codecs; add it there")
            elif not isinstance(spec, FrameCodec) or spec.quirk_support is None:
                problems.append(
                    f"{key}: {codec} decodes strictly and takes no quirks; codecs that take "
                    "quirks: " + ", ".join(with_quirks)
                )
            else:
                problems.extend(spec.quirk_support.problems(codec, quirks))
        return problems

    def decoder(self, codec: str) -> Callable[[bytes], FrameResult]:
        """How this model's frames of `codec` are decoded: strict, or under its quirks."""
        from station.devices.codecs.registry import get_codec

        spec = get_codec(codec)
        if not isinstance(spec, FrameCodec):
            raise TypeError(f"{codec} is not a frame codec; GATT values are whole frames")
        return spec.decoder(self.quirks.get(codec))

    @property
    def pairs(self) -> bool:
        """Bluetooth: the station bonds with the device (just works, or with a passkey)."""
        return self.behaviour.needs_bonding or self.behaviour.passkey

    def device_ranges(self) -> dict[str, tuple[float, float]]:
        """The manufacturer's stated ranges, as `validate(device_ranges=...)` takes them."""
        return {name: (r.low, r.high) for name, r in self.ranges.items()}


def _short(uuid: str) -> str:
    """00002a35-0000-1000-8000-00805f9b34fb -> 2a35; vendor UUIDs stay whole."""
    return uuid[4:8] if uuid.endswith("-0000-1000-8000-00805f9b34fb") else uuid


def match_profiles(
    profiles: Iterable[FirmwareProfile],
    service_uuids: Iterable[str],
    name: str | None,
    manufacturer_ids: Iterable[int] = (),
) -> list[str]:
    """Ids of the BLE profiles whose match rules accept this advert, model-specific first."""
    uuids, makers = list(service_uuids), list(manufacturer_ids)
    found = [p for p in profiles if p.ble is not None and p.ble.match.accepts(uuids, name, makers)]
    found.sort(key=lambda p: (p.ble is None or p.ble.match.name_pattern is None, p.id))
    return [p.id for p in found]


# Loading ------------------------------------------------------------------------------------


def profile_dirs() -> list[Path]:
    """Where profiles are read from: $STATION_PROFILE_DIRS, else the bundled and site dirs."""
    override = os.environ.get(DIRS_ENV)
    if override:
        return [Path(p) for p in override.split(os.pathsep) if p]
    return [BUNDLED_DIR, SITE_DIR]


def _problems(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for described in describe_validation_error(exc):
        line = described.replace("docs/configuration.md", "docs/devices.md").replace(
            f"text matching {PROFILE_ID}",
            "lower-case letters, digits and '-' (2–64 characters), the same as the file name",
        )
        # Model-level checks name their own keys, one per line: "(top level): Value error, k: m".
        if match := re.match(r"quirks\.((?:ble|serial):[a-z0-9-]+)(\.[a-z_]+)?: ", line):
            codec, name = match.group(1), (match.group(2) or "")[1:]
            line = f'quirks."{codec}"' + line[len(f"quirks.{codec}") :]
            if name and line.endswith("unknown key (a typo?); see docs/devices.md for the keys"):
                line = (
                    f'quirks."{codec}".{name}: unknown quirk {name!r}; expected one of '
                    + ", ".join(QuirkName)
                    + " (and source: where the deviation is documented)"
                )
        head, _, rest = line.partition(": Value error, ")
        if rest and head == "(top level)":
            problems.extend(rest.split("\n"))
        else:
            problems.append(line.replace("Value error, ", ""))
    return problems


def parse_profile(data: dict[str, Any], source: str, *, stem: str | None = None) -> FirmwareProfile:
    try:
        profile = FirmwareProfile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from exc
    if stem is not None and profile.id != stem:
        raise ConfigError(source, [f"id: {profile.id!r} must match the file name {stem!r}.toml"])
    return profile


def load_profile(path: str | os.PathLike[str]) -> FirmwareProfile:
    file = Path(path)
    try:
        data = parse_toml(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(file), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(file), [f"cannot read: {exc}"]) from exc
    except TomlError as exc:
        raise ConfigError(str(file), [str(exc)]) from exc
    return parse_profile(data, str(file), stem=file.stem)


def profile_files(dirs: Iterable[Path] | None = None) -> list[Path]:
    files: list[Path] = []
    for directory in profile_dirs() if dirs is None else dirs:
        if directory.is_dir():
            files.extend(sorted(directory.glob("*.toml")))
    return files


def check_profile_files(paths: Iterable[Path]) -> list[ConfigError]:
    """Every problem of every file (and ids given twice); raises nothing."""
    errors: list[ConfigError] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            profile = load_profile(path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if profile.id in seen:
            errors.append(
                ConfigError(str(path), [f"id: {profile.id!r} also in {seen[profile.id]}"])
            )
        seen[profile.id] = path
    return errors


def load_profiles(dirs: Iterable[Path] | None = None) -> dict[str, FirmwareProfile]:
    """All profiles by id; the first bad file raises ConfigError (file and key named)."""
    files = profile_files(dirs)
    errors = check_profile_files(files)
    if errors:
        raise errors[0]
    return {p.id: p for p in (load_profile(f) for f in files)}


def find_profile(id_or_path: str, dirs: Iterable[Path] | None = None) -> FirmwareProfile:
    if id_or_path.endswith(".toml") or os.sep in id_or_path:
        return load_profile(id_or_path)
    for path in profile_files(dirs):
        if path.stem == id_or_path:
            return load_profile(path)
    known = ", ".join(p.stem for p in profile_files(dirs)) or "none"
    raise ConfigError(id_or_path, [f"no profile with this id; known profiles: {known}"])


# Settings against profiles ---------------------------------------------------------------------


def binding_problems(
    devices: Iterable[BoundDevice], profiles: Mapping[str, FirmwareProfile], *, key: str = "devices"
) -> list[str]:
    """Every bound device whose profile is not installed, or is for the other transport
    (a serial profile bound by Bluetooth address, a BLE profile bound to a port): the station
    could not start its link. Problems name the key (`devices[1].profile`) and the choices."""
    problems: list[str] = []
    for i, device in enumerate(devices):
        profile = profiles.get(device.profile)
        if profile is None:
            known = ", ".join(sorted(profiles)) or "none installed"
            problems.append(
                f"{key}[{i}].profile: no firmware profile {device.profile!r} (device "
                f"{device.id!r}); expected one of: {known}"
            )
        elif device.port is not None and profile.transport != Transport.SERIAL:
            problems.append(
                f"{key}[{i}].port: profile {profile.id!r} is a Bluetooth LE device (device "
                f"{device.id!r}): bind it by address, not port"
            )
        elif device.address is not None and profile.transport != Transport.BLE:
            problems.append(
                f"{key}[{i}].address: profile {profile.id!r} is a serial device (device "
                f"{device.id!r}): bind it by port, not address"
            )
    return problems


def check_settings(
    settings: Settings, source: str, profiles: Mapping[str, FirmwareProfile] | None = None
) -> None:
    """The settings' [[devices]] against the installed profiles (`profile_dirs()` unless
    given); raises ConfigError(source, problems). A broken profile file raises its own, but
    only when a device needs the profiles (a lobby tablet without devices does not)."""
    if not settings.devices:
        return
    known = load_profiles() if profiles is None else profiles
    problems = binding_problems(settings.devices, known)
    if problems:
        raise ConfigError(source, problems)
