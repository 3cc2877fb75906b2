"""`station audit verify|export`: check the hash chain; hand records to an investigation."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from station.cli.common import add_command, fail
from station.config import Settings, config_path, load_settings
from station.errors import ConfigError, StationError

EXAMPLES = """\
  station audit verify                           # the station's own trail: every record there?
  station audit verify --file copy.jsonl         # an export, or the practice system's copy
  station audit export --since 2026-03-02 --patient TEST100042 > case.jsonl
                                                 # asks for the biomed PIN first"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "audit",
        summary="verify the audit trail's hash chain, or export records (biomed PIN)",
        description="The audit trail records who did what to which chart (sign-ins, patients "
        "opened, readings, submissions, biomed actions), each record carrying the hash of the "
        "one before. `verify` reports an edited, removed or inserted record (exit 1). `export` "
        "prints the records as JSON lines, filtered by time and patient, after the biomed PIN "
        "(asked without echo; counted by the biomed lockout); the export is itself audited. "
        "The output holds patient references: keep it as confidential as the chart.",
        examples=EXAMPLES,
    )
    parser.add_argument("action", choices=["verify", "export"])
    parser.add_argument("--file", metavar="JSONL", help="verify: a copy of the chain instead")
    parser.add_argument("--since", metavar="WHEN",
                        help="export: from this date or ISO 8601 time (station's zone if none)")
    parser.add_argument("--patient", metavar="MRN|APPOINTMENT",
                        help="export: only records about this MRN or appointment id")
    parser.add_argument("--config", metavar="FILE", help="default: " + str(config_path()))
    parser.add_argument("--credentials", metavar="FILE",
                        help="export: the credentials file (default: beside the settings)")
    parser.set_defaults(func=run)


def open_store(settings: Settings) -> Any:
    """The station's audit store, without the MQTT link: what this process records is queued
    by the station at its next start."""
    from station.sync.audit_store import AUDIT_FILE, AuditStore

    state = settings.storage.state_dir
    path = state / AUDIT_FILE
    if not path.exists():
        raise StationError(f"no audit trail at {path} (has the station run yet?)")
    key = settings.storage.outbox_key_file or state / "outbox.key"
    return AuditStore(path, key, site=settings.station.site,
                      station_id=settings.station.station_id)


def run(args: argparse.Namespace) -> int:
    if args.action == "verify" and args.file:
        from station.sync.audit_store import verify_file

        try:
            lines = Path(args.file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            return fail(f"{args.file}: cannot read ({exc.strerror})")
        return _report(verify_file(lines), f"{args.file}: {len(lines)} record(s)")
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        return 2
    try:
        store = open_store(settings)
    except StationError as exc:
        return fail(str(exc))
    try:
        if args.action == "verify":
            count = sum(1 for _ in store.records())
            return _report(store.verify(), f"{store.path}: {count} record(s)")
        return _export(args, settings, store)
    finally:
        store.close()


def _report(problems: list[str], what: str) -> int:
    if problems:
        for problem in problems:
            print(f"station: audit: {problem}", file=sys.stderr)
        print(f"{what}: the chain does NOT verify ({len(problems)} problem(s))")
        return 1
    print(f"{what}: the chain verifies")
    return 0


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.astimezone()


def _export(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    from station.app.credentials import credentials_path, load_credentials
    from station.app.lockout_store import LOCKOUT_FILE, FileLockoutStore
    from station.app.wiring import local_now
    from station.audit import BIOMED, AuditAction, AuditTrail
    from station.cli.credentials import ask_secret
    from station.lockout import PinLockout, Role

    try:
        since = _since(args.since)
    except ValueError:
        return fail(f"--since {args.since!r}: expected a date (2026-03-02) or an ISO 8601 time")
    path = Path(args.credentials) if args.credentials else credentials_path(
        config_path(args.config))
    try:
        matcher = load_credentials(path).biomed_matcher()
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        return 2
    if matcher is None:
        return fail(f"{path}: no biomed PIN set (`station credentials set-pin biomed`)")
    trail = AuditTrail()
    lockout = PinLockout(local_now,
                         FileLockoutStore(settings.storage.state_dir / LOCKOUT_FILE), audit=trail)
    wait = lockout.wait_s(Role.BIOMED)
    if wait:
        return fail(f"too many wrong biomed PINs: try again in {wait} s", 1)
    try:
        pin = ask_secret("biomed PIN")
    except ValueError as exc:
        return fail(str(exc))
    ok = lockout.try_pin(Role.BIOMED, lambda: matcher(pin) or None, keypad="cli")
    if not ok:
        store.append(trail.take())
        wait = lockout.wait_s(Role.BIOMED)
        return fail("biomed PIN not accepted" + (f": try again in {wait} s" if wait else ""), 1)
    records = list(store.export(since=since, patient=args.patient))
    for record in records:
        sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    trail.record(local_now(), BIOMED, AuditAction.AUDIT_EXPORTED,
                 appointment_id=None, detail=f"{len(records)} record(s)"
                 + (f" since {since.isoformat()}" if since else "")
                 + (f" about {args.patient}" if args.patient else ""))
    store.append(trail.take())
    print(f"station: {len(records)} audit record(s) exported", file=sys.stderr)
    return 0
