"""`station diagnostics`: a support bundle: versions, config sans secrets, devices, errors."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from station.cli.common import add_command, fail
from station.config import Settings, config_path, load_settings
from station.diagnostics import (
    HEALTH_FILE,
    DeviceState,
    HealthSnapshot,
    OutboxDepth,
    build_bundle,
    bundle_file_name,
    read_health_snapshot,
    versions,
)
from station.errors import ConfigError
from station.logs import Redactor

EXAMPLES = """\
  sudo station diagnostics                          # ./station-diagnostics-<station>-<time>.tar.gz
  sudo station diagnostics --output /tmp/exam-3.tar.gz
  station diagnostics --config ./station.toml --no-journal --output -  > bundle.tar.gz"""

JOURNAL_LINES = 200


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "diagnostics",
        summary="write a support bundle (no patient data) for field troubleshooting",
        description="Collects versions, the settings with secrets removed, device states and "
        "outbox depth (from the running station's health snapshot in the state directory), and "
        "the station's recent warnings and errors from the journal, redacted. Nothing about "
        "patients goes in; error lines pass the same redaction as the logs.",
        examples=EXAMPLES,
    )
    parser.add_argument("--output", metavar="FILE", help="where to write the tar.gz ('-': stdout)")
    parser.add_argument("--config", metavar="FILE", help="default: " + str(config_path()))
    parser.add_argument(
        "--health", metavar="FILE", help=f"health snapshot (default: <state_dir>/{HEALTH_FILE})"
    )
    parser.add_argument(
        "--no-journal", action="store_true", help="do not read recent errors from journalctl"
    )
    parser.set_defaults(func=run)


def journal_errors() -> list[str]:
    """The station's last warnings and errors; the journal's own timestamp is kept."""
    if shutil.which("journalctl") is None:
        return ["(no journalctl on this machine)"]
    result = subprocess.run(
        ["journalctl", "--unit=station.service", "--priority=warning", f"--lines={JOURNAL_LINES}",
         "--output=json", "--no-pager", "--quiet"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    lines = []
    for raw in result.stdout.splitlines():
        try:
            entry = json.loads(raw)
            stamp = datetime.fromtimestamp(int(entry["__REALTIME_TIMESTAMP"]) / 1e6, UTC)
            message = entry.get("MESSAGE", "")
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(message, list):  # journald sends non-UTF-8 messages as byte arrays
            message = bytes(message).decode("utf-8", "replace")
        lines.append(f"{stamp:%Y-%m-%dT%H:%M:%SZ} p{entry.get('PRIORITY', '?')} {message}")
    return lines


def run(args: argparse.Namespace) -> int:
    settings: Settings | ConfigError
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        settings = exc  # a broken config is a finding for the bundle, not a reason to stop
    state_dir = settings.storage.state_dir if isinstance(settings, Settings) else None
    health_path = (
        Path(args.health)
        if args.health
        else (state_dir / HEALTH_FILE if state_dir is not None else None)
    )
    try:
        snapshot: HealthSnapshot | None = (
            read_health_snapshot(health_path) if health_path is not None else None
        )
    except ConfigError as exc:
        return fail(exc.describe())

    def devices() -> Sequence[DeviceState]:
        return [] if snapshot is None else snapshot.devices

    def outbox() -> OutboxDepth | None:
        return None if snapshot is None else snapshot.outbox

    def errors() -> Sequence[str]:
        return [] if args.no_journal else journal_errors()

    now = datetime.now(UTC)
    output = args.output
    if output is None:
        who = settings.station.station_id if isinstance(settings, Settings) else "unknown"
        output = bundle_file_name(who, now)
    common: dict[str, Any] = {
        "created_at": now, "versions": versions(), "settings": settings, "devices": devices,
        "outbox": outbox, "recent_errors": errors, "redactor": Redactor(),
    }  # fmt: skip
    if output == "-":
        summary = build_bundle(sys.stdout.buffer, name="-", **common)
    else:
        try:
            with open(output, "xb") as out:
                summary = build_bundle(out, name=output, **common)
        except FileExistsError:
            return fail(f"{output} exists; give another --output")
        except OSError as exc:
            return fail(f"cannot write {output}: {exc.strerror}")
    print(
        f"wrote {summary.path}: config {'OK' if summary.config_ok else 'INVALID'}, "
        f"{summary.devices} device(s){'' if snapshot else ' (station not reporting)'}, "
        f"{summary.recent_errors} recent error line(s), outbox "
        f"{'unknown' if summary.outbox_pending is None else f'{summary.outbox_pending} pending'}",
        file=sys.stderr,
    )
    return 0
