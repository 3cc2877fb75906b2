"""A station on a file system that fills up, for tests/sync/test_full_disk.py.

Run as `python -m tests.sync.full_disk_scenario DIR HOST PORT` inside a private mount
namespace (`unshare --mount`, mapped to root when not root): it mounts a 6 MB tmpfs on DIR,
so the disk really is full (ENOSPC from the kernel, not a simulated error), queues 20
messages, fills the rest of the disk, and then tries what a station does. Prints one JSON
object with what happened.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path

from station.config import BrokerSection
from station.sync.contract import Channel, topic
from station.sync.mqtt import MqttLink
from station.sync.outbox import Outbox, OutboxError


class Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage() + (" [traceback]" if record.exc_info else ""))


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def main() -> None:
    directory, host, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(directory)],
                   check=True)
    counted = Count()
    logging.getLogger().addHandler(counted)
    result: dict[str, object] = {}
    box = Outbox(directory / "outbox.sqlite3", directory / "outbox.key",
                 reserve_bytes=1024 * 1024, reserve_retry_s=0)
    ids = [uuid.uuid4() for _ in range(20)]
    for mid in ids:
        box.put(mid, topic("clinic-north", "exam-3", Channel.VITALS),
                json.dumps({"message_id": str(mid), "pad": "x" * 2000}).encode())
    filler = fill(directory)
    try:
        box.put(uuid.uuid4(), topic("clinic-north", "exam-3", Channel.VITALS), b"x" * 50_000)
        result["put_when_full"] = "saved"
    except OutboxError as exc:
        result["put_when_full"] = str(exc)
    link = MqttLink(BrokerSection(host=host, port=port, require_tls=False),
                    site="clinic-north", station_id="exam-3", outbox=box)
    link.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and box.stats().delivered_awaiting_ack < len(ids):
        time.sleep(0.05)
    time.sleep(2)  # long enough for a retry loop to show itself in the log
    stats = box.stats()
    result["delivered_recorded"] = stats.delivered_awaiting_ack
    result["queued"] = stats.depth
    result["disk_full_reported"] = stats.reserve_in_use
    result["log_while_full"] = list(counted.lines)
    filler.unlink()
    later = uuid.uuid4()
    try:
        link.submit(Channel.VITALS, json.dumps({"message_id": str(later)}).encode(), later)
        result["put_after_space_returned"] = "saved"
    except OutboxError as exc:
        result["put_after_space_returned"] = str(exc)
    result["later_id"] = str(later)
    result["sent_ids"] = [str(m) for m in ids]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and box.stats().depth:
        time.sleep(0.05)
    result["reserve_back"] = (directory / "outbox.sqlite3.reserve").exists()
    result["disk_full_after"] = box.stats().reserve_in_use
    link.stop()
    box.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
