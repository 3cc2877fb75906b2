"""Who may sign in on this station: credentials.toml, kept out of station.toml."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from station.config import TomlError, describe_validation_error, parse_toml
from station.errors import ConfigError

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials.toml"  # beside station.toml; readable by the service user only


class Credentials(BaseModel):
    """Who may sign in: kept out of station.toml so the settings can be shared and diffed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ma: dict[str, str] = {}  # badge id or PIN -> MA id (the id goes into the record, never a log)
    staff_pin: str | None = None  # the lobby kiosk's way out
    biomed_pin: str | None = None


def load_credentials(path: Path) -> Credentials:
    try:
        data = parse_toml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            str(path),
            [
                "file not found: the station needs the MA badges/PINs ([ma]) and the lobby "
                "staff_pin; see docs/configuration.md"
            ],
        ) from None
    except (OSError, UnicodeDecodeError, TomlError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from exc
    try:
        return Credentials.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), describe_validation_error(exc)) from exc


def credentials_path(config_file: Path | None) -> Path:
    explicit = os.environ.get("STATION_CREDENTIALS")
    if explicit:
        return Path(explicit)
    base = config_file.parent if config_file is not None else Path("/etc/station")
    return base / CREDENTIALS_FILE
