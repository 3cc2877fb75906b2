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
  station outbox status                 # queue depth, awaiting the practice's ack, problems
  station outbox drain --timeout 120    # connect, send everything queued, exit 0 when empty
  station outbox export > held.jsonl    # every row still held, as JSON lines, for IT recovery"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "outbox",
        summary="show, drain or export the messages not yet filed by the practice system",
        description="The outbox holds every vitals/check-in/alert message until the practice "
        "system acknowledges it (sent to the broker until its PUBACK, published again while "
        "the practice's ack is overdue). Unreadable rows are quarantined, never deleted. "
        "`export` prints every row still held (state, payload or, for an unreadable row, its "
        "ciphertext and what is wrong) — patient data: run it only to hand a queue to IT, and "
        "keep the output as confidential as the chart.",
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
    from station.sync.outbox import AckPolicy, Outbox

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        return 2
    db_path, key_path = _paths(settings)
    if not db_path.exists():
        return fail(f"no outbox at {db_path} (has the station run yet?)")
    try:
        outbox = Outbox(db_path, key_path, ack_policy=AckPolicy(
            resend_after_s=settings.broker.ack_resend_after_s,
            overdue_after_s=settings.broker.ack_overdue_after_s,
        ))
    except StationError as exc:
        return fail(str(exc))
    try:
        if args.action == "status":
            stats = outbox.stats()
            age = stats.oldest_age_s(datetime.now(UTC))
            now = datetime.now(UTC)
            unacked_age = stats.oldest_unacknowledged_age_s(now)
            print(json.dumps({
                "queued": stats.depth,
                "oldest_undelivered_age_s": None if age is None else round(age, 1),
                "delivered_awaiting_ack": stats.delivered_awaiting_ack,
                "awaiting_ack_overdue": stats.unacknowledged_overdue,
                "oldest_awaiting_ack_age_s": None if unacked_age is None
                else round(unacked_age, 1),
                "rejected": stats.rejected,
                "quarantined": stats.quarantined,
                "disk_full": stats.reserve_in_use,
            }))
            problems = []
            if stats.quarantined:
                problems.append(f"{stats.quarantined} unreadable rows are quarantined (kept): "
                                "see `station outbox export`")
            if stats.unacknowledged_overdue:
                problems.append(f"{stats.unacknowledged_overdue} messages delivered but not "
                                "acknowledged by the practice system for over "
                                f"{settings.broker.ack_overdue_after_s:g} s: is its gateway up?")
            if stats.rejected:
                problems.append(f"{stats.rejected} messages were rejected by the practice "
                                "system: see the biomed screen")
            if stats.reserve_in_use:
                problems.append("the disk is full: nothing new can be saved")
            for problem in problems:
                print("station outbox: " + problem, file=sys.stderr)
            return 0
        if args.action == "export":
            for row in outbox.export():
                line: dict[str, object] = {
                    "seq": row.seq, "message_id": row.message_id, "topic": row.topic,
                    "state": row.state.value,
                }
                if row.payload is not None:
                    line["payload_base64"] = base64.b64encode(row.payload).decode()
                else:
                    line["problem"] = row.problem
                    line["ciphertext_base64"] = base64.b64encode(row.ciphertext).decode()
                print(json.dumps(line))
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
