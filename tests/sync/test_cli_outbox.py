"""`station outbox status|drain|export` against a real outbox file and a real Mosquitto."""

from __future__ import annotations

import base64
import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from station.cli import main
from station.sync.outbox import Outbox
from tests.fixtures.broker import Broker
from tests.sync.consumer import Consumer


def config(tmp_path: Path, broker: Broker) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(f"""
[station]
site = "clinic-north"
station_id = "exam-3"
[broker]
host = "{broker.host}"
port = {broker.port}
require_tls = false
[storage]
state_dir = "{tmp_path}"
""")
    return path


@pytest.mark.broker
def test_status_export_and_drain(tmp_path: Path, mosquitto_broker: Broker,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    box = Outbox(tmp_path / "outbox.sqlite3", tmp_path / "outbox.key")
    ids = [uuid.UUID(int=i + 1) for i in range(3)]
    for mid in ids:
        box.put(mid, "rooming/v1/clinic-north/exam-3/vitals",
                json.dumps({"message_id": str(mid)}).encode())
    box.close()
    cfg = str(config(tmp_path, mosquitto_broker))

    assert main(["outbox", "status", "--config", cfg]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["queued"], status["delivered_awaiting_ack"]) == (3, 0)

    assert main(["outbox", "export", "--config", cfg]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["seq"], r["message_id"], base64.b64decode(r["payload_base64"])) for r in rows] == [
        (i + 1, str(mid), json.dumps({"message_id": str(mid)}).encode())
        for i, mid in enumerate(ids)]

    consumer = Consumer(mosquitto_broker)
    try:
        assert main(["outbox", "drain", "--config", cfg, "--timeout", "20"]) == 0
        assert json.loads(capsys.readouterr().out) == {"sent": 3, "queued": 0}
        assert consumer.wait_for({str(m) for m in ids}, 10) == set()
    finally:
        consumer.close()
    assert main(["outbox", "status", "--config", cfg]) == 0
    assert json.loads(capsys.readouterr().out)["queued"] == 0


def test_status_without_an_outbox_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          mosquitto_broker: Broker) -> None:
    cfg = str(config(tmp_path, mosquitto_broker))
    assert main(["outbox", "status", "--config", cfg]) == 2
    assert f"no outbox at {tmp_path}/outbox.sqlite3" in capsys.readouterr().err


def test_status_and_export_with_a_damaged_row_and_an_overdue_ack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mosquitto_broker: Broker
) -> None:
    # Regression (#13): with one bit-flipped row, `station outbox export` (which the error
    # pointed to) printed 0 rows and exit 2; a topic that is not UTF-8 made it crash.
    old = datetime.now(UTC) - timedelta(hours=2)
    box = Outbox(tmp_path / "outbox.sqlite3", tmp_path / "outbox.key", clock=lambda: old)
    ids = [uuid.UUID(int=i + 1) for i in range(4)]
    for mid in ids:
        box.put(mid, "rooming/v1/clinic-north/exam-3/vitals",
                json.dumps({"message_id": str(mid)}).encode())
    box.delivered(ids[3])  # two hours ago, never acknowledged by the practice
    box.close()
    db = sqlite3.connect(tmp_path / "outbox.sqlite3")
    db.execute("UPDATE outbox SET ciphertext = X'00' || ciphertext WHERE message_id = ?",
               (str(ids[1]),))
    db.execute("UPDATE outbox SET topic = CAST(X'726f6f6dff' AS TEXT) WHERE message_id = ?",
               (str(ids[2]),))
    db.commit()
    db.close()
    cfg = str(config(tmp_path, mosquitto_broker))

    assert main(["outbox", "export", "--config", cfg]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["message_id"], r["state"]) for r in rows] == [
        (str(ids[0]), "queued"), (str(ids[1]), "queued"), (str(ids[2]), "queued"),
        (str(ids[3]), "delivered")]
    assert base64.b64decode(rows[0]["payload_base64"]) == json.dumps(
        {"message_id": str(ids[0])}).encode()
    for damaged in rows[1:3]:
        assert "payload_base64" not in damaged
        assert damaged["problem"] == "does not decrypt with this station's key"
        assert damaged["ciphertext_base64"]

    assert main(["outbox", "status", "--config", cfg]) == 0
    captured = capsys.readouterr()
    status = json.loads(captured.out)
    # Reading the queue sets the two damaged rows aside; the others are counted.
    assert (status["queued"], status["delivered_awaiting_ack"], status["awaiting_ack_overdue"],
            status["quarantined"]) == (3, 1, 1, 0)
    assert "not acknowledged by the practice system for over 900 s" in captured.err
