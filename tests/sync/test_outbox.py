"""The outbox: order, durability, encryption at rest, loud failures (real SQLite files)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from station.sync.outbox import DeliveryState, Outbox, OutboxError, Pending, load_or_create_key

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def open_box(tmp_path: Path, clock: Clock | None = None) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite3", tmp_path / "outbox.key", clock=clock or Clock())


def test_messages_come_out_in_order_and_leave_only_when_delivered(tmp_path: Path) -> None:
    clock = Clock()
    box = open_box(tmp_path, clock)
    ids = [uuid.UUID(int=i + 1) for i in range(3)]
    for i, mid in enumerate(ids):
        box.put(mid, "rooming/v1/s/e/vitals", f"body {i}".encode())
        clock.now += timedelta(seconds=10)
    assert box.pending() == [
        Pending(1, ids[0], "rooming/v1/s/e/vitals", b"body 0", False),
        Pending(2, ids[1], "rooming/v1/s/e/vitals", b"body 1", False),
        Pending(3, ids[2], "rooming/v1/s/e/vitals", b"body 2", False),
    ]
    stats = box.stats()
    assert (stats.depth, stats.oldest_enqueued_at) == (3, T0)
    assert stats.oldest_age_s(T0 + timedelta(minutes=5)) == 300.0
    box.delivered(ids[0])
    assert [p.message_id for p in box.pending()] == ids[1:]
    assert box.state(ids[0]) == DeliveryState.DELIVERED
    assert box.state(ids[1]) == DeliveryState.QUEUED
    assert box.acknowledged(ids[0]) is True
    assert box.state(ids[0]) == DeliveryState.RECEIVED
    assert box.acknowledged(uuid.UUID(int=99)) is False
    assert box.state(uuid.UUID(int=99)) == DeliveryState.UNKNOWN
    box.close()


def test_an_ack_that_overtakes_the_puback_record_is_kept_and_the_message_not_resent(
    tmp_path: Path,
) -> None:
    # Regression: the practice system's ack arrived before the committer had recorded the
    # broker's PUBACK; the ack was dropped ("did not deliver") and the MA never saw "received".
    box = open_box(tmp_path)
    first, second = uuid.UUID(int=1), uuid.UUID(int=2)
    box.put(first, "rooming/v1/s/e/vitals", b"one")
    box.put(second, "rooming/v1/s/e/vitals", b"two")
    assert box.acknowledged(first) is True
    assert box.state(first) == DeliveryState.RECEIVED
    assert [p.message_id for p in box.pending()] == [second]  # not sent again
    box.delivered(first)  # the late PUBACK record changes nothing
    assert box.state(first) == DeliveryState.RECEIVED
    assert box.stats().delivered_awaiting_ack == 0
    box.close()


def test_queued_messages_survive_reopening(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    box.put(uuid.UUID(int=1), "t", b"kept")
    box.close()  # (the SIGKILL trials in test_kill.py do this the hard way)
    again = open_box(tmp_path)
    assert [p.payload for p in again.pending()] == [b"kept"]
    again.close()


def test_a_repeated_message_id_is_refused(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    box.put(uuid.UUID(int=1), "t", b"one")
    with pytest.raises(OutboxError, match="already queued"):
        box.put(uuid.UUID(int=1), "t", b"two")
    assert [p.payload for p in box.pending()] == [b"one"]
    box.close()


def test_payloads_are_encrypted_at_rest(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    box.put(uuid.UUID(int=1), "t", b'{"family_name":"ZZTEST","mrn":"TEST100001"}')
    box.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("outbox.sqlite3*"))
    assert b"ZZTEST" not in raw and b"TEST100001" not in raw
    assert (tmp_path / "outbox.key").stat().st_mode & 0o777 == 0o600


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "outbox.key"
    load_or_create_key(key)
    key.chmod(0o644)
    with pytest.raises(OutboxError, match=r"mode 644; expected 600 .* chmod 600"):
        load_or_create_key(key)


def test_a_different_key_cannot_read_the_queue_and_nothing_is_deleted(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    box.put(uuid.UUID(int=1), "t", b"secret")
    box.close()
    (tmp_path / "outbox.key").unlink()
    other = open_box(tmp_path)  # a new key is made; the old rows do not decrypt
    with pytest.raises(OutboxError, match="does not decrypt with this station's key"):
        other.pending()
    assert other.stats().depth == 1
    other.close()


def test_a_corrupt_database_is_reported_loudly(tmp_path: Path) -> None:
    (tmp_path / "outbox.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxError, match=r"cannot be opened .* it is not touched"):
        open_box(tmp_path)
    assert (tmp_path / "outbox.sqlite3").read_bytes() == b"this is not a database" * 100


def test_a_full_disk_is_reported_and_loses_nothing_already_queued(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    box.put(uuid.UUID(int=1), "t", b"first")
    # A real full disk cannot be made here without root mounts; SQLite's own page limit
    # produces the very same SQLITE_FULL error at the same place.
    (pages,) = box._db.execute("PRAGMA page_count").fetchone()
    box._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(OutboxError, match="disk full while trying to queue a message; nothing "
                                          "was lost"):
        box.put(uuid.UUID(int=2), "t", b"x" * 100_000)
    assert [p.payload for p in box.pending()] == [b"first"]
    box.close()
    db = sqlite3.connect(tmp_path / "outbox.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_delivered_rows_leave_the_queue_at_once_and_are_overwritten_by_purge(
    tmp_path: Path,
) -> None:
    box = open_box(tmp_path)
    ids = [uuid.UUID(int=i + 1) for i in range(5)]
    for i, mid in enumerate(ids):
        box.put(mid, "t", f"body {i}".encode())
    (secret,) = box._db.execute(
        "SELECT ciphertext FROM outbox WHERE message_id = ?", (str(ids[1]),)
    ).fetchone()
    box.delivered(ids[1], ids[3])  # PUBACKs can come for any rows in the window
    assert [p.message_id for p in box.pending()] == [ids[0], ids[2], ids[4]]
    assert [p.message_id for p in box.pending(after_seq=1)] == [ids[2], ids[4]]
    stats = box.stats()
    assert (stats.depth, stats.purge_backlog, stats.delivered_awaiting_ack) == (3, 2, 2)
    assert [box.state(m) for m in ids] == [
        DeliveryState.QUEUED, DeliveryState.DELIVERED, DeliveryState.QUEUED,
        DeliveryState.DELIVERED, DeliveryState.QUEUED]
    assert box.purge(1) == 1
    assert box.purge(64) == 1
    assert box.purge(64) == 0
    assert box.stats().purge_backlog == 0
    # Purged means gone: only the undelivered rows remain, and a delivered message keeps
    # its state.
    rows = box._db.execute("SELECT message_id FROM outbox ORDER BY seq").fetchall()
    assert rows == [(str(ids[0]),), (str(ids[2]),), (str(ids[4]),)]
    assert box.state(ids[1]) == DeliveryState.DELIVERED
    box.close()  # the last connection checkpoints the WAL into the file and removes it
    raw = (tmp_path / "outbox.sqlite3").read_bytes()
    assert secret[:64] not in raw  # overwritten (secure_delete), not just unlinked


def test_a_delivered_message_id_cannot_be_queued_again(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    box.put(uuid.UUID(int=1), "t", b"one")
    box.delivered(uuid.UUID(int=1))
    box.purge()
    with pytest.raises(OutboxError, match="already delivered; a new submission needs a new "
                                          "message id"):
        box.put(uuid.UUID(int=1), "t", b"again")
    assert box.pending() == []
    assert box.stats().depth == 0
    box.close()


def test_the_sending_window_gives_ids_as_stored_text_and_takes_them_back(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    ids = [uuid.UUID(int=i + 1) for i in range(4)]
    for i, mid in enumerate(ids):
        box.put(mid, "rooming/v1/s/e/vitals", f"body {i}".encode(), retain=i == 3)
    assert box.window(2, 1) == [
        (2, "00000000-0000-0000-0000-000000000002", "rooming/v1/s/e/vitals", b"body 1", False),
        (3, "00000000-0000-0000-0000-000000000003", "rooming/v1/s/e/vitals", b"body 2", False),
    ]
    box.delivered("00000000-0000-0000-0000-000000000002", ids[2])  # text and UUID alike
    assert box.window(10, 0) == [
        (1, "00000000-0000-0000-0000-000000000001", "rooming/v1/s/e/vitals", b"body 0", False),
        (4, "00000000-0000-0000-0000-000000000004", "rooming/v1/s/e/vitals", b"body 3", True),
    ]
    assert [box.state(m) for m in ids] == [
        DeliveryState.QUEUED, DeliveryState.DELIVERED, DeliveryState.DELIVERED,
        DeliveryState.QUEUED,
    ]
