"""`station credentials add-ma|set-pin|remove|list|convert|unlock`: who may sign in, hashed."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from station.cli.common import add_command, fail
from station.config import config_path
from station.errors import ConfigError

EXAMPLES = """\
  station credentials add-ma ma-0042            # asks for the MA's PIN twice (never shown)
  station credentials add-ma ma-0042 --badge    # asks for a swipe of the MA's badge
  station credentials set-pin staff             # the lobby kiosk's staff PIN
  station credentials set-pin biomed
  station credentials remove ma-0042
  station credentials list                      # ids and kinds only
  station credentials convert                   # a plain-text file rewritten as hashes
  station credentials unlock ma                 # clear the MA keypad's lockout
  echo 482913 | station credentials add-ma ma-0042   # scripted: one line per secret"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "credentials",
        summary="add, change or remove MA badges/PINs and the staff and biomed PINs (hashed)",
        description="Writes credentials.toml (beside station.toml, or $STATION_CREDENTIALS) "
        "with every PIN and badge id as a salted Argon2id hash, mode 0600, whole or not at "
        "all. Secrets are asked for without echo (twice on a terminal); on a pipe, one line "
        "each. PINs: digits only, at least 6, not one digit repeated or a run; badge ids: at "
        "least 6 characters. `station run` refuses a file with a PIN in plain text: "
        "`convert` rewrites it.",
        examples=EXAMPLES,
    )
    parser.add_argument("action",
                        choices=["add-ma", "set-pin", "remove", "list", "convert", "unlock"])
    parser.add_argument("name", nargs="?", metavar="ID|ROLE",
                        help="add-ma/remove: the MA id; set-pin: staff or biomed; "
                        "unlock: ma, staff or biomed")
    parser.add_argument("--badge", action="store_true", help="add-ma: a badge, not a PIN")
    parser.add_argument("--file", metavar="FILE", help="the credentials file (default: "
                        "credentials.toml beside the settings file)")
    parser.add_argument("--config", metavar="FILE", help="default: " + str(config_path()))
    parser.set_defaults(func=run)


def _path(args: argparse.Namespace) -> Path:
    from station.app.credentials import credentials_path

    if args.file:
        return Path(args.file)
    return credentials_path(config_path(args.config))


def ask_secret(prompt: str) -> str:
    """Without echo on a terminal (asked twice); one line from a pipe (tests, scripts)."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"{prompt}: ")
        if getpass.getpass(f"{prompt} again: ") != first:
            raise ValueError("the two entries differ; nothing written")
        return first.strip()
    line = sys.stdin.readline()
    if not line:
        raise ValueError(f"{prompt}: nothing on standard input")
    return line.strip()


def run(args: argparse.Namespace) -> int:
    from station.app import credentials as cred

    path = _path(args)
    if args.action == "unlock":
        return _unlock(args)
    try:
        if args.action == "list":
            current = cred.read_credentials(path)
        else:
            current = cred.read_credentials(path) if path.exists() else cred.Credentials()
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        return 2
    if args.action == "list":
        for entry in current.ma_hash:
            print(f"ma {entry.id} ({entry.kind})")
        print(f"staff PIN: {'set' if current.staff_pin_hash else 'not set'}")
        print(f"biomed PIN: {'set' if current.biomed_pin_hash else 'not set'}")
        plain = current.plain_fields()
        if plain:
            print("in plain text (run `station credentials convert`): " + ", ".join(plain))
        return 0
    if args.action == "convert":
        return _convert(path, current)
    if current.plain_fields():
        return fail(f"{path} holds PINs or badge ids in plain text: run `station credentials "
                    f"convert --file {path}` first")
    try:
        if args.action == "add-ma":
            new = _add_ma(current, args.name, badge=args.badge)
        elif args.action == "set-pin":
            new = _set_pin(current, args.name)
        else:
            new = _remove(current, args.name)
    except ValueError as exc:
        return fail(str(exc))
    cred.write_credentials(path, new)
    print(f"{path}: written (hashes only)")
    return 0


def _in_use(current: Any, secret: str, *, but: str = "") -> str | None:
    """Which entry `secret` already opens (a keypad must know whose it is)."""
    from station.app.credentials import verify

    for entry in current.ma_hash:
        if entry.id != but and verify(entry.hash, secret):
            return f"MA {entry.id}"
    for role in ("staff", "biomed"):
        hashed = getattr(current, f"{role}_pin_hash")
        if role != but and hashed and verify(hashed, secret):
            return f"the {role} PIN"
    return None


def _add_ma(current: Any, ma_id: str | None, *, badge: bool) -> Any:
    from pydantic import ValidationError

    from station.app.credentials import HashedMa, badge_problem, hash_secret, pin_problem

    if not ma_id:
        raise ValueError("add-ma needs the MA id, e.g. station credentials add-ma ma-0042")
    if any(e.id == ma_id for e in current.ma_hash):
        raise ValueError(f"{ma_id} is already there: remove it first to change it")
    secret = ask_secret(f"badge of {ma_id} (swipe)" if badge else f"PIN of {ma_id}")
    problem = badge_problem(secret) if badge else pin_problem(secret)
    if problem:
        raise ValueError(f"not accepted: {problem}; nothing written")
    used = _in_use(current, secret)
    if used:
        raise ValueError(f"not accepted: that {'badge' if badge else 'PIN'} is already "
                         f"{used}'s; nothing written")
    try:
        entry = HashedMa(id=ma_id, kind="badge" if badge else "pin", hash=hash_secret(secret))
    except ValidationError:
        raise ValueError(f"MA id {ma_id!r}: letters, digits and . _ : - only, at most 64 "
                         "characters") from None
    return current.model_copy(update={"ma_hash": (*current.ma_hash, entry)})


def _set_pin(current: Any, role: str | None) -> Any:
    from station.app.credentials import hash_secret, pin_problem

    if role not in ("staff", "biomed"):
        raise ValueError("set-pin needs the role: staff or biomed")
    secret = ask_secret(f"{role} PIN")
    problem = pin_problem(secret)
    if problem:
        raise ValueError(f"not accepted: {problem}; nothing written")
    used = _in_use(current, secret, but=role)
    if used:
        raise ValueError(f"not accepted: that PIN is already {used}'s; nothing written")
    return current.model_copy(update={f"{role}_pin_hash": hash_secret(secret)})


def _remove(current: Any, name: str | None) -> Any:
    if name in ("staff", "biomed"):
        return current.model_copy(update={f"{name}_pin_hash": None})
    kept = tuple(e for e in current.ma_hash if e.id != name)
    if len(kept) == len(current.ma_hash):
        raise ValueError(f"no MA {name!r} in the file (see `station credentials list`)")
    return current.model_copy(update={"ma_hash": kept})


def _convert(path: Path, current: Any) -> int:
    from station.app.credentials import (
        Credentials,
        HashedMa,
        badge_problem,
        hash_secret,
        pin_problem,
        write_credentials,
    )

    if not current.plain_fields():
        print(f"{path}: nothing in plain text")
        return 0
    weak: list[str] = []
    entries = list(current.ma_hash)
    for secret, ma_id in current.ma.items():
        kind = "pin" if secret.isdigit() else "badge"
        problem = pin_problem(secret) if kind == "pin" else badge_problem(secret)
        if problem:
            weak.append(f"MA {ma_id}: {problem}")
        entries.append(HashedMa(id=ma_id, kind=kind, hash=hash_secret(secret)))
    update: dict[str, Any] = {"ma_hash": tuple(entries)}
    for role in ("staff", "biomed"):
        plain = getattr(current, f"{role}_pin")
        if plain is not None:
            problem = pin_problem(plain)
            if problem:
                weak.append(f"{role} PIN: {problem}")
            update[f"{role}_pin_hash"] = hash_secret(plain)
    converted = Credentials(
        ma_hash=update["ma_hash"],
        staff_pin_hash=update.get("staff_pin_hash", current.staff_pin_hash),
        biomed_pin_hash=update.get("biomed_pin_hash", current.biomed_pin_hash),
    )
    write_credentials(path, converted)
    print(f"{path}: converted, hashes only")
    for line in weak:
        print(f"station: weak, set a new one: {line}", file=sys.stderr)
    return 0


def _unlock(args: argparse.Namespace) -> int:
    from station.app.lockout_store import LOCKOUT_FILE, FileLockoutStore
    from station.app.wiring import local_now
    from station.config import load_settings
    from station.lockout import PinLockout, Role

    try:
        role = Role(args.name)
    except ValueError:
        return fail("unlock needs the role: ma, staff or biomed")
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        return 2
    PinLockout(local_now, FileLockoutStore(settings.storage.state_dir / LOCKOUT_FILE)).clear(role)
    _audit_offline(settings, role.value)
    print(f"{role.value}: lockout cleared")
    return 0


def _audit_offline(settings: Any, role: str) -> None:
    """Into the audit trail (queued by the station at its next start), if it has one."""
    from station.app.wiring import local_now
    from station.audit import AuditAction, AuditEvent
    from station.cli.audit import open_store
    from station.errors import StationError

    try:
        store = open_store(settings)
    except StationError:
        return  # the station has not run here yet: nothing to clear in its trail either
    try:
        store.append([AuditEvent(at=local_now(), actor="administrator",
                                 action=AuditAction.LOCKOUT_CLEARED, detail=f"role={role}")])
    finally:
        store.close()
