"""The audit trail at rest and `station audit verify|export`: an edited, removed or re-chained
record is found; a record committed but never queued (a crash in between) is queued at the next
start; the export needs the biomed PIN and counts wrong ones against biomed's lockout.

The chain rule is docs/mqtt.md's (SHA-256 over RFC 8785 canonical JSON without `hash`); the
edits below are what someone with the SD card could do to the SQLite file.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from station.app.credentials import Credentials, hash_secret, write_credentials
from station.audit import AuditAction, AuditEvent
from station.sync.audit_store import AUDIT_FILE, AuditStore, verify_file

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SITE, STATION = "test-clinic", "exam-2"
BIOMED_PIN = "735160"


def event(n: int, mrn: str = "TEST300001") -> AuditEvent:
    return AuditEvent(at=T0 + timedelta(minutes=n), actor="ma-0042",
                      action=AuditAction.PATIENT_OPENED, mrn=mrn,
                      appointment_id=f"APT-TEST-{n:04d}")


def store(state: Path, queue: object = None) -> AuditStore:
    return AuditStore(state / AUDIT_FILE, state / "outbox.key", site=SITE, station_id=STATION,
                      queue=queue)  # type: ignore[arg-type]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    trail = store(directory)
    trail.append([event(n) for n in range(1, 6)])
    trail.close()
    return directory


def sql(state: Path, statement: str, *args: object) -> None:
    db = sqlite3.connect(state / AUDIT_FILE)
    db.execute(statement, args)
    db.commit()
    db.close()


def test_an_untouched_trail_verifies_and_survives_a_restart(state: Path) -> None:
    trail = store(state)
    trail.append([event(6)])  # after a "restart": the chain goes on from the stored head
    records = [r for r in trail.records() if isinstance(r, dict)]
    assert [r["sequence"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[5]["prev_hash"] == records[4]["hash"]
    assert trail.verify() == []
    trail.close()


def test_an_edited_record_is_found(state: Path) -> None:
    db = sqlite3.connect(state / AUDIT_FILE)
    (ciphertext,) = db.execute("SELECT ciphertext FROM audit WHERE seq = 3").fetchone()
    db.close()
    flipped = bytes([ciphertext[0] ^ 1]) + bytes(ciphertext[1:])
    sql(state, "UPDATE audit SET ciphertext = ? WHERE seq = 3", flipped)
    trail = store(state)
    assert trail.verify() == [
        "record 3: cannot be decrypted or read (edited or damaged at rest)"]
    trail.close()


@pytest.mark.parametrize(("seq", "expected"), [
    (3, ["record(s) 3 missing before record 4 (removed)",
         "record 4: prev_hash does not match the record before it (a record was removed, "
         "inserted or edited)"]),
    (5, ["record(s) 5 missing at the end (removed): the chain's head says 5 records"]),
])
def test_a_removed_record_is_found(state: Path, seq: int, expected: list[str]) -> None:
    sql(state, "DELETE FROM audit WHERE seq = ?", seq)
    trail = store(state)
    assert trail.verify() == expected
    trail.close()


def test_station_audit_verify_exits_1_on_a_removed_record(state: Path, tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\nsite = "{SITE}"\nstation_id = "{STATION}"\n\n'
                      f'[storage]\nstate_dir = "{state}"\n')
    ok = subprocess.run([sys.executable, "-m", "station", "audit", "verify", "--config",
                         str(config)], capture_output=True, text=True, timeout=60, check=False)
    assert (ok.returncode, ok.stdout) == (
        0, f"{state / AUDIT_FILE}: 5 record(s): the chain verifies\n")
    sql(state, "DELETE FROM audit WHERE seq = 2")
    bad = subprocess.run([sys.executable, "-m", "station", "audit", "verify", "--config",
                          str(config)], capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1
    assert "station: audit: record(s) 2 missing before record 3 (removed)" in bad.stderr


def test_a_copy_with_an_edited_record_is_found_even_when_rehashed(state: Path) -> None:
    trail = store(state)
    records = [r for r in trail.records() if isinstance(r, dict)]
    trail.close()
    lines = [json.dumps(r) for r in records]
    assert verify_file(lines) == []
    edited = dict(records[1], mrn="TEST399999")
    assert verify_file([lines[0], json.dumps(edited), *lines[2:]]) == [
        "record 2: its content does not match its hash (edited)"]
    # Re-hashing the edited record (SHA-256 is public) breaks the link to the next one.
    from hashlib import sha256

    body = {k: v for k, v in edited.items() if k != "hash"}
    edited["hash"] = sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                            .encode()).hexdigest()
    assert verify_file([lines[0], json.dumps(edited), *lines[2:]]) == [
        "record 3: prev_hash does not match the record before it (a record was removed, "
        "inserted or edited)"]


def test_a_record_committed_but_never_queued_is_queued_at_the_next_start(state: Path) -> None:
    # The fixture's records were committed with no outbox behind them (as by a crash between
    # the commit and the hand-over, or by `station audit export`).
    queued: list[tuple[UUID, bytes]] = []
    trail = store(state, queue=lambda mid, body: queued.append((mid, body)))
    assert trail.requeue() == 5
    assert [json.loads(body)["sequence"] for _, body in queued] == [1, 2, 3, 4, 5]
    assert trail.requeue() == 0  # each handed over once
    trail.close()


def test_the_export_needs_the_biomed_pin_and_filters_by_patient_and_time(
    state: Path, tmp_path: Path
) -> None:
    trail = store(state)
    trail.append([event(7, mrn="TEST300077")])
    trail.close()
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\nsite = "{SITE}"\nstation_id = "{STATION}"\n\n'
                      f'[storage]\nstate_dir = "{state}"\n')
    write_credentials(tmp_path / "credentials.toml",
                      Credentials(biomed_pin_hash=hash_secret(BIOMED_PIN)))
    command = [sys.executable, "-m", "station", "audit", "export", "--config", str(config),
               "--since", "2026-03-02T09:03:00+00:00", "--patient", "TEST300001"]
    wrong = subprocess.run(command, input="111111\n", capture_output=True, text=True,
                           timeout=60, check=False)
    assert (wrong.returncode, wrong.stdout) == (1, "")
    assert wrong.stderr == "station: biomed PIN not accepted\n"
    right = subprocess.run(command, input=f"{BIOMED_PIN}\n", capture_output=True, text=True,
                           timeout=60, check=False)
    assert right.returncode == 0, right.stderr
    exported = [json.loads(line) for line in right.stdout.splitlines()]
    assert [(r["sequence"], r["mrn"]) for r in exported] == [
        (3, "TEST300001"), (4, "TEST300001"), (5, "TEST300001")]
    trail = store(state)
    actions = [r["action"] for r in trail.records() if isinstance(r, dict)]
    assert actions[6:] == ["sign_in_failed", "audit_exported"]
    assert trail.verify() == []
    trail.close()
