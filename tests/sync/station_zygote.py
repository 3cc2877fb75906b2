"""A station process for the SIGKILL trials: imports once, then forks one station per trial.

Started by tests/sync/test_kill.py and test_audit_kill.py as
`python -m tests.sync.station_zygote DIR HOST PORT [vitals|audit]`. For each line `go` on
stdin it forks a child that opens the outbox and the MQTT link (and, for `audit`, the audit
store as `station run` does: queued through the outbox, records committed but never queued
handed over again at start) and keeps submitting until it is killed; the child appends each
message id to DIR/accepted.log only after the submit returned (committed). `drain` forks a
child that submits nothing and exits when the outbox is empty. The zygote prints each
child's pid.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from station.audit import AuditAction, AuditEvent
from station.config import BrokerSection
from station.sync.audit_store import AuditStore
from station.sync.contract import Channel
from station.sync.mqtt import MqttLink
from station.sync.outbox import DeliveryState, Outbox


def station(directory: Path, host: str, port: int, *, produce: bool, kind: str) -> None:
    outbox = Outbox(directory / "outbox.sqlite3", directory / "outbox.key")
    link = MqttLink(BrokerSection(host=host, port=port, require_tls=False), site="clinic-north",
                    station_id="exam-3", outbox=outbox, reconnect_min_s=0, reconnect_max_s=1)
    submit_one: Callable[[], str]
    if kind == "audit":
        audit = AuditStore(
            directory / "audit.sqlite3", directory / "outbox.key", site="clinic-north",
            station_id="exam-3",
            queue=lambda mid, body: link.submit(Channel.AUDIT, body, mid),
            queued_already=lambda mid: outbox.state(mid) is not DeliveryState.UNKNOWN,
        )
        audit.requeue()

        def submit_one() -> str:
            event = AuditEvent(at=datetime.now(UTC), actor="MA042",
                               action=AuditAction.READING_ATTACHED,
                               appointment_id="APT-TEST-0001", mrn="TEST100001", detail="cuff")
            (record,) = audit.append([event])
            return str(record.message_id)
    else:
        def submit_one() -> str:
            mid = uuid.uuid4()
            link.submit(Channel.VITALS, json.dumps({"message_id": str(mid)}).encode(), mid)
            return str(mid)
    link.start()
    if not produce:
        while outbox.stats().depth:
            time.sleep(0.02)
        link.stop()
        os._exit(0)
    log = os.open(directory / "accepted.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    rng = random.Random(os.getpid())
    while True:
        os.write(log, f"{submit_one()}\n".encode())
        time.sleep(rng.random() * 0.004)


def main() -> None:
    directory, host, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    kind = sys.argv[4] if len(sys.argv) > 4 else "vitals"
    for line in sys.stdin:
        command = line.strip()
        pid = os.fork()
        if pid == 0:
            station(directory, host, port, produce=command == "go", kind=kind)
        print(pid, flush=True)
        if command == "drain":
            os.waitpid(pid, 0)
            print("drained", flush=True)
        else:
            # Reap killed children so they do not pile up as zombies.
            while True:
                try:
                    done, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if done == 0:
                    break


def kill_trials(directory: Path, host: str, port: int, *, trials: int, seed: int,
                kind: str = "vitals") -> set[str]:
    """Run the zygote: `trials` stations each SIGKILLed at a random point in its first 0.3 s,
    then a draining one. Returns the message ids the stations said were committed."""
    import signal
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    zygote = subprocess.Popen(
        [sys.executable, "-m", "tests.sync.station_zygote", str(directory), host, str(port),
         kind],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=repo,
        stderr=subprocess.DEVNULL,  # station log lines (ids and counts only) are not checked
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    rng = random.Random(seed)
    try:
        for _ in range(trials):
            zygote.stdin.write("go\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            # Anywhere from "still opening the database" to "deep in a publish burst".
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(pid, signal.SIGKILL)
        zygote.stdin.write("drain\n")
        zygote.stdin.flush()
        zygote.stdout.readline()
        assert zygote.stdout.readline().strip() == "drained"
    finally:
        zygote.stdin.close()
        zygote.wait(10)
        zygote.stdout.close()
    return set((directory / "accepted.log").read_text().split())


if __name__ == "__main__":
    main()
