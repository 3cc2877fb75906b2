"""#17: the audit trail survives the same SIGKILL trials as vitals, against real Mosquitto:
every record the station committed arrives (none lost, none out of the chain), and the
chain on the station verifies afterwards."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from station.sync.audit_store import AuditStore
from tests.fixtures.broker import REPO, Broker
from tests.sync.consumer import Consumer

pytestmark = [pytest.mark.broker, pytest.mark.slow]
TRIALS = 40


def test_every_committed_audit_record_arrives_despite_sigkill_at_random_points(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    consumer = Consumer(mosquitto_broker, "rooming/v1/clinic-north/exam-3/audit")
    zygote = subprocess.Popen(
        [sys.executable, "-m", "tests.sync.audit_zygote", str(tmp_path),
         mosquitto_broker.host, str(mosquitto_broker.port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    rng = random.Random(20261124)
    try:
        for _ in range(TRIALS):
            zygote.stdin.write("go\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
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
    accepted = set((tmp_path / "accepted.log").read_text().split())
    try:
        assert len(accepted) > TRIALS
        assert consumer.wait_for(accepted, 20) == set()
        # Every record the chain holds arrived — also those committed in the instant before
        # a kill, before their id reached accepted.log (queued again at the next start).
        store = AuditStore(tmp_path / "audit.sqlite3", tmp_path / "outbox.key",
                           site="clinic-north", station_id="exam-3")
        try:
            assert store.verify() == []
            records = [r for r in store.records() if isinstance(r, dict)]
        finally:
            store.close()
        assert [r["sequence"] for r in records] == list(range(1, len(records) + 1))
        assert {str(r["message_id"]) for r in records} <= consumer.distinct()
        # What arrived is what the chain holds (same hash), not a re-made record.
        assert all(consumer.bodies[str(r["message_id"])]["hash"] == r["hash"] for r in records)
    finally:
        consumer.close()
