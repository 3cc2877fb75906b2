"""`station outbox status|drain|export`: the durable outbox for biomed and IT."""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from station.cli.common import add_command, fail
from station.config import Settings, config_path, load_settings
from station.errors import ConfigError, StationError

EXAMPLES = """\
  station outbox status                 # queue depth, oldest undelivered, awaiting ack
  station outbox drain --timeout 120    # connect, send everything queued, exit 0 when empty
  station outbox export > queued.jsonl  # decrypted rows as JSON lines, for IT recovery"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "outbox",
        summary="show, drain or export the queue of messages not yet taken by the broker",
        description="The outbox holds every vitals/check-in/alert message until the broker "
        "confirms it (PUBACK). `export` prints patient data: run it only to hand a queue to "
        "IT, and keep the output as confidential as the chart.",
        examples=EXAMPLES,
    )
    parser.add_argument("action", choices=["status", "drain", "export"])
    parser.add_argument("--config", metavar="FILE", help="default: " + str(config_path()))
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="drain: give up after this long (exit 1), default 60")
    parser.set_defaults(func=run)


def _paths(settings: Settings) -> tuple[Path, Path]:
    state = settings.storage.state_dir
    return state / "outbox.sqlite3", settings.storage.outbox_key_file or state / "outbox.key"


def run(args: argparse.Namespace) -> int:
    from station.sync.outbox import Outbox

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        return 2
    db_path, key_path = _paths(settings)
    if not db_path.exists():
        return fail(f"no outbox at {db_path} (has the station run yet?)")
    try:
        outbox = Outbox(db_path, key_path)
    except StationError as exc:
        return fail(str(exc))
    try:
        if args.action == "status":
            stats = outbox.stats()
            age = stats.oldest_age_s(datetime.now(UTC))
            print(json.dumps({
                "queued": stats.depth,
                "oldest_undelivered_age_s": None if age is None else round(age, 1),
                "delivered_awaiting_ack": stats.delivered_awaiting_ack,
            }))
            return 0
        if args.action == "export":
            after = 0
            while rows := outbox.pending(500, after_seq=after):
                for row in rows:
                    print(json.dumps({
                        "seq": row.seq, "message_id": str(row.message_id), "topic": row.topic,
                        "retain": row.retain,
                        "payload_base64": base64.b64encode(row.payload).decode(),
                    }))
                    after = row.seq
            return 0
        return _drain(settings, outbox, args.timeout)
    except StationError as exc:
        return fail(str(exc))
    finally:
        outbox.close()


def _drain(settings: Settings, outbox: Any, timeout_s: float) -> int:
    from station.sync.mqtt import MqttLink

    link = MqttLink(settings.broker, site=settings.station.site,
                    station_id=settings.station.station_id, outbox=outbox)
    start = outbox.stats().depth
    link.start()
    deadline = time.monotonic() + timeout_s
    try:
        while outbox.stats().depth and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        link.stop()
    left = outbox.stats().depth
    print(json.dumps({"sent": start - left, "queued": left}))
    return 0 if left == 0 else 1
