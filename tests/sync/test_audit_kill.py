"""#17: the audit trail survives the same SIGKILL trials as vitals, against real Mosquitto:
every record the station committed arrives (none lost, none out of the chain), and the
chain on the station verifies afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.sync.audit_store import AuditStore
from tests.fixtures.broker import Broker
from tests.sync.consumer import Consumer
from tests.sync.station_zygote import kill_trials

pytestmark = [pytest.mark.broker, pytest.mark.slow]
TRIALS = 40


def test_every_committed_audit_record_arrives_despite_sigkill_at_random_points(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    consumer = Consumer(mosquitto_broker, "rooming/v1/clinic-north/exam-3/audit")
    accepted = kill_trials(tmp_path, mosquitto_broker.host, mosquitto_broker.port,
                           trials=TRIALS, seed=20261124, kind="audit")
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
