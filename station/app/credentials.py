"""Who may sign in on this station: credentials.toml, kept out of station.toml, hashes only.

PINs and badge ids are stored as Argon2id hashes (RFC 9106), each with its own salt, written by
`station credentials` (station.cli.credentials); `station run` refuses a file that still holds
one in plain text, saying how to convert it. A typed PIN is checked against every hash (never
stopping at the first match), so the time taken does not say which entry nearly matched.

The file:

    staff_pin_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."
    biomed_pin_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."

    [[ma_hash]]
    id = "ma-0042"        # the MA id that goes into the record and the audit
    kind = "pin"          # or "badge"
    hash = "$argon2id$v=19$m=19456,t=2,p=1$..."

The plain fields (`ma`, `staff_pin`, `biomed_pin`) exist for tests and `station ui`'s demo,
which build credentials in memory; a file holding them is refused.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from station.config import TomlError, describe_validation_error, parse_toml
from station.errors import ConfigError
from station.lockout import plain_ma_matcher, plain_matcher
from station.secret_files import write_secret_file
from station.submission import IDENTIFIER

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials.toml"  # beside station.toml; readable by the service user only

# OWASP Password Storage Cheat Sheet, Argon2id: "a minimum configuration of 19 MiB of memory,
# an iteration count of 2, and 1 degree of parallelism" — about 40 ms a check on this
# machine; a station checks every MA entry at each sign-in, so the cost is kept at that floor.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
ARGON2ID = r"^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
MIN_PIN_DIGITS = 6  # docs/deploy-pi.md: 6+ digits for MA, staff and biomed PINs
MIN_BADGE_CHARS = 6
_BADGE = re.compile(r"^[\x21-\x7e]+$")  # what a badge reader types: printable ASCII, no spaces

Hash = Annotated[str, Field(pattern=ARGON2ID)]


class HashedMa(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(pattern=IDENTIFIER)]
    kind: Literal["pin", "badge"]
    hash: Hash


class Credentials(BaseModel):
    """Who may sign in: kept out of station.toml so the settings can be shared and diffed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # In memory only (tests, the demo): badge id or PIN -> MA id.
    ma: dict[str, str] = {}
    staff_pin: str | None = None  # the lobby kiosk's way out
    biomed_pin: str | None = None
    # What a credentials.toml holds.
    ma_hash: tuple[HashedMa, ...] = ()
    staff_pin_hash: Hash | None = None
    biomed_pin_hash: Hash | None = None

    def plain_fields(self) -> list[str]:
        """The fields holding a PIN or badge id in plain text."""
        out = [f"[ma]: {len(self.ma)} badge/PIN entries"] if self.ma else []
        out += [name for name in ("staff_pin", "biomed_pin") if getattr(self, name) is not None]
        return out

    def ma_matcher(self) -> Callable[[str], str | None] | None:
        """Typed badge id or PIN -> MA id; None when no MA may sign in here."""
        if self.ma:
            return plain_ma_matcher(self.ma)
        if not self.ma_hash:
            return None
        entries = self.ma_hash

        def match(typed: str) -> str | None:
            found = None
            for entry in entries:  # every one, whatever matched
                if verify(entry.hash, typed) and found is None:
                    found = entry.id
            return found

        return match

    def staff_matcher(self) -> Callable[[str], bool] | None:
        return _matcher(self.staff_pin, self.staff_pin_hash)

    def biomed_matcher(self) -> Callable[[str], bool] | None:
        return _matcher(self.biomed_pin, self.biomed_pin_hash)


def _matcher(plain: str | None, hashed: str | None) -> Callable[[str], bool] | None:
    if plain is not None:
        return plain_matcher(plain)
    if hashed is None:
        return None
    return lambda typed: verify(hashed, typed)


def hash_secret(secret: str) -> str:
    """A salted Argon2id hash of a PIN or badge id (a new random salt each call)."""
    return HASHER.hash(secret)


def verify(hashed: str, typed: str) -> bool:
    try:
        return HASHER.verify(hashed, typed)
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError):
        log.error("a credentials hash cannot be checked; that entry never matches")
        return False


def pin_problem(pin: str) -> str | None:
    """Why `pin` is not allowed as a PIN (None: it is)."""
    if not pin.isascii() or not pin.isdigit():
        return "a PIN is digits only"
    if len(pin) < MIN_PIN_DIGITS:
        return f"a PIN has at least {MIN_PIN_DIGITS} digits; got {len(pin)}"
    if len(set(pin)) == 1 or pin in "01234567890" or pin in "98765432109":
        return "a PIN is not one digit repeated or a run like 123456"
    return None


def badge_problem(badge: str) -> str | None:
    if not _BADGE.match(badge):
        return "a badge id is what the reader types: printable characters, no spaces"
    if len(badge) < MIN_BADGE_CHARS:
        return f"a badge id has at least {MIN_BADGE_CHARS} characters; got {len(badge)}"
    return None


def read_credentials(path: Path) -> Credentials:
    """The file as it stands, plain fields and all (`station credentials` converts them)."""
    try:
        data = parse_toml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            str(path),
            [
                "file not found: the station needs the MA badges/PINs and the lobby staff "
                "PIN; add them with `station credentials add-ma ID` and `station credentials "
                "set-pin staff` (docs/deploy-pi.md, 'Credentials')"
            ],
        ) from None
    except (OSError, UnicodeDecodeError, TomlError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from exc
    try:
        return Credentials.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), describe_validation_error(exc)) from exc


def load_credentials(path: Path) -> Credentials:
    """For `station run`: hashes only; a PIN or badge id in plain text is refused, and so is
    a file others may read (hashes of 6-digit PINs are still worth a brute force)."""
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                str(path),
                [f"mode {mode:o}: readable by others; expected 600 (or 400) — fix with: "
                 f"chmod 600 {path}"],
            )
    credentials = read_credentials(path)
    plain = credentials.plain_fields()
    if plain:
        raise ConfigError(
            str(path),
            [
                f"{field}: stored in plain text; PINs and badge ids must be stored as hashes"
                for field in plain
            ]
            + [
                f"convert the file in place with `station credentials convert --file {path}` "
                "(it replaces each PIN and badge id by its Argon2id hash), or enter them "
                "again with `station credentials add-ma ID` / `station credentials set-pin "
                "staff|biomed`"
            ],
        )
    return credentials


def to_toml(credentials: Credentials) -> str:
    """The hashed file (`station credentials` writes nothing else)."""
    lines = [
        "# Who may sign in on this station. Written by `station credentials`: PINs and badge",
        "# ids are Argon2id hashes, never plain text (docs/deploy-pi.md, 'Credentials').",
    ]
    if credentials.staff_pin_hash:
        lines.append(f'staff_pin_hash = "{credentials.staff_pin_hash}"')
    if credentials.biomed_pin_hash:
        lines.append(f'biomed_pin_hash = "{credentials.biomed_pin_hash}"')
    for entry in credentials.ma_hash:
        lines += ["", "[[ma_hash]]", f'id = "{entry.id}"', f'kind = "{entry.kind}"',
                  f'hash = "{entry.hash}"']
    return "\n".join(lines) + "\n"


def write_credentials(path: Path, credentials: Credentials) -> None:
    """Whole or not at all, mode 0600: a temporary file synced, then renamed over the old."""
    if credentials.plain_fields():
        raise ValueError("refusing to write plain-text credentials")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_secret_file(path, to_toml(credentials).encode("utf-8"), replace=True)


# Under systemd, LoadCredential=station:/etc/station/credentials hands every file of that
# root-only directory to the service as $CREDENTIALS_DIRECTORY/station_<file>.
SYSTEMD_CREDENTIAL = f"station_{CREDENTIALS_FILE}"
CREDENTIALS_DIR = "credentials"  # beside station.toml: the directory LoadCredential= reads


def credentials_path(config_file: Path | None) -> Path:
    """Where the credentials are: $STATION_CREDENTIALS; else, in the service, what systemd
    handed over ($CREDENTIALS_DIRECTORY/station_credentials.toml); else
    `<config dir>/credentials/credentials.toml` when that (root-only, LoadCredential=)
    directory exists, as on a Pi installed by scripts/install-pi; else beside station.toml."""
    explicit = os.environ.get("STATION_CREDENTIALS")
    if explicit:
        return Path(explicit)
    handed = os.environ.get("CREDENTIALS_DIRECTORY")
    if handed and (Path(handed) / SYSTEMD_CREDENTIAL).exists():
        return Path(handed) / SYSTEMD_CREDENTIAL
    base = config_file.parent if config_file is not None else Path("/etc/station")
    if (base / CREDENTIALS_DIR).is_dir():
        return base / CREDENTIALS_DIR / CREDENTIALS_FILE
    return base / CREDENTIALS_FILE
