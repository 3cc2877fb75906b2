"""A station process for the audit SIGKILL trials (tests/sync/test_audit_kill.py).

`python -m tests.sync.audit_zygote DIR HOST PORT`: for each `go` on stdin it forks a child
that opens the outbox and the audit store as `station run` does (queued through the outbox,
records committed but never queued handed over again at start) and keeps recording audit
events until killed; each record's message id goes to DIR/accepted.log only after `append`
returned. `drain` forks a child that records nothing and exits when the outbox is empty.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from station.audit import AuditAction, AuditEvent
from station.config import BrokerSection
from station.sync.audit_store import AuditStore
from station.sync.contract import Channel
from station.sync.mqtt import MqttLink
from station.sync.outbox import DeliveryState, Outbox


def station(directory: Path, host: str, port: int, *, produce: bool) -> None:
    outbox = Outbox(directory / "outbox.sqlite3", directory / "outbox.key")
    link = MqttLink(BrokerSection(host=host, port=port, require_tls=False), site="clinic-north",
                    station_id="exam-3", outbox=outbox, reconnect_min_s=0, reconnect_max_s=1)
    audit = AuditStore(
        directory / "audit.sqlite3", directory / "outbox.key", site="clinic-north",
        station_id="exam-3",
        queue=lambda mid, body: link.submit(Channel.AUDIT, body, mid),
        queued_already=lambda mid: outbox.state(mid) is not DeliveryState.UNKNOWN,
    )
    audit.requeue()
    link.start()
    if not produce:
        while outbox.stats().depth:
            time.sleep(0.02)
        link.stop()
        os._exit(0)
    log = os.open(directory / "accepted.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    rng = random.Random(os.getpid())
    while True:
        event = AuditEvent(at=datetime.now(UTC), actor="MA042", action=AuditAction.READING_ATTACHED,
                           appointment_id="APT-TEST-0001", mrn="TEST100001", detail="cuff")
        (record,) = audit.append([event])
        os.write(log, f"{record.message_id}\n".encode())
        time.sleep(rng.random() * 0.004)


def main() -> None:
    directory, host, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for line in sys.stdin:
        command = line.strip()
        pid = os.fork()
        if pid == 0:
            station(directory, host, port, produce=command == "go")
        print(pid, flush=True)
        if command == "drain":
            os.waitpid(pid, 0)
            print("drained", flush=True)
        else:
            while True:
                try:
                    done, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if done == 0:
                    break


if __name__ == "__main__":
    main()
