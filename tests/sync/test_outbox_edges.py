"""The outbox at its edges (#13), on real SQLite files: a damaged row is quarantined and the
rest flows, an emptied file or a lost key is refused with the evidence kept, a delivered
message waits for the practice's ack and is offered again on a doubling pause, a rejection
is final, status messages are numbered across restarts."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from station.sync.outbox import AckPolicy, DeliveryState, Outbox, OutboxError

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TOPIC = "rooming/v1/clinic-north/exam-3/vitals"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def open_box(tmp_path: Path, clock: Clock | None = None, policy: AckPolicy | None = None) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite3", tmp_path / "outbox.key", clock=clock or Clock(),
                  ack_policy=policy)


def queue(box: Outbox, count: int) -> list[uuid.UUID]:
    ids = [uuid.UUID(int=i + 1) for i in range(count)]
    for i, mid in enumerate(ids):
        box.put(mid, TOPIC, f"body {i}".encode())
    return ids


def flip_a_bit(path: Path, message_id: uuid.UUID) -> None:
    """What a failing SD card does to one row, written behind the station's back."""
    db = sqlite3.connect(path)
    (ciphertext,) = db.execute("SELECT ciphertext FROM outbox WHERE message_id = ?",
                               (str(message_id),)).fetchone()
    damaged = bytes([ciphertext[0] ^ 0x01]) + ciphertext[1:]
    db.execute("UPDATE outbox SET ciphertext = ? WHERE message_id = ?", (damaged, str(message_id)))
    db.commit()
    db.close()


def test_one_damaged_row_is_quarantined_and_every_other_row_still_goes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression (#13): one bit-flipped row made every read of the window fail, so 0 of 30
    # old and 0 of 5 new submissions were delivered while the new ones read "saved".
    box = open_box(tmp_path)
    ids = queue(box, 30)
    flip_a_bit(tmp_path / "outbox.sqlite3", ids[4])
    window = box.window(100, 0)
    assert [row[1] for row in window] == [str(m) for m in ids if m != ids[4]]
    later = uuid.UUID(int=100)
    box.put(later, TOPIC, b"new")
    assert box.window(100, window[-1][0])[0][1] == str(later)
    stats = box.stats()
    assert (stats.depth, stats.quarantined) == (30, 1)  # 29 old + 1 new queued, 1 held aside
    assert box.state(ids[4]) == DeliveryState.QUARANTINED
    assert "outbox row 5 (message 00000000-0000-0000-0000-000000000005) quarantined" in caplog.text
    # Kept, and listed for IT with what is wrong with it.
    exported = {row.message_id: row for row in box.export()}
    assert exported[str(ids[4])].payload is None
    assert exported[str(ids[4])].state == DeliveryState.QUARANTINED
    assert "does not decrypt" in exported[str(ids[4])].problem
    assert exported[str(ids[5])].payload == b"body 5"
    box.close()


def test_a_row_whose_topic_is_not_text_is_quarantined_and_export_does_not_crash(
    tmp_path: Path,
) -> None:
    # Regression (#13): a topic that is not UTF-8 made `station outbox export` crash with a raw
    # sqlite3.OperationalError ("Could not decode to UTF-8 column 'topic'").
    box = open_box(tmp_path)
    ids = queue(box, 3)
    db = sqlite3.connect(tmp_path / "outbox.sqlite3")
    db.execute("UPDATE outbox SET topic = CAST(X'726f6f6dff' AS TEXT) WHERE message_id = ?",
               (str(ids[1]),))
    db.commit()
    db.close()
    assert [row[1] for row in box.window(10, 0)] == [str(ids[0]), str(ids[2])]
    rows = list(box.export())
    assert [r.state for r in rows] == [DeliveryState.QUEUED, DeliveryState.QUARANTINED,
                                       DeliveryState.QUEUED]
    assert rows[1].topic == "room\ufffd"
    box.close()


def test_a_quarantined_row_goes_back_when_it_reads_again(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    ids = queue(box, 2)
    path = tmp_path / "outbox.sqlite3"
    flip_a_bit(path, ids[0])
    assert [r[1] for r in box.window(10, 0)] == [str(ids[1])]
    box.close()
    flip_a_bit(path, ids[0])  # the same bit back: the row is whole again
    again = open_box(tmp_path)
    assert [r[1] for r in again.window(10, 0)] == [str(ids[0]), str(ids[1])]
    assert again.stats().quarantined == 0
    again.close()


def test_an_emptied_outbox_file_next_to_its_key_is_refused_and_kept(tmp_path: Path) -> None:
    # Regression (#13): a zero-length outbox file beside an existing key reported
    # {"queued": 0} and exit 0 — 20 queued messages gone without a word.
    box = open_box(tmp_path)
    queue(box, 20)
    box.close()
    (tmp_path / "outbox.sqlite3").write_bytes(b"")
    with pytest.raises(OutboxError, match=r"is an empty file \(0 bytes\) but its key .* exists: "
                                          r"the queue was truncated"):
        open_box(tmp_path)
    assert (tmp_path / "outbox.sqlite3").stat().st_size == 0  # the evidence is not rewritten
    assert (tmp_path / "outbox.key").exists()


def test_a_first_start_killed_before_the_key_was_written_starts_cleanly(tmp_path: Path) -> None:
    # The key is made after the database: an empty database without a key is a first start
    # that did not finish, not a lost queue.
    (tmp_path / "outbox.sqlite3").write_bytes(b"")
    box = open_box(tmp_path)
    assert box.stats().depth == 0
    box.close()


def test_a_delivered_message_is_offered_again_on_a_doubling_pause_until_the_practice_acks(
    tmp_path: Path,
) -> None:
    clock = Clock()
    policy = AckPolicy(resend_after_s=60, max_pause_s=200, overdue_after_s=300)
    box = open_box(tmp_path, clock, policy)
    (mid,) = queue(box, 1)
    box.delivered(mid)
    assert box.window(10, 0) == []  # out of the send queue at its PUBACK
    clock.now += timedelta(seconds=59)
    assert box.due_for_resend() == []
    clock.now += timedelta(seconds=1)
    due = box.due_for_resend()
    assert [(r[1], r[3]) for r in due] == [(str(mid), b"body 0")]  # same id, same bytes
    box.resent(str(mid))
    clock.now += timedelta(seconds=119)  # the second pause is twice the first
    assert box.due_for_resend() == []
    clock.now += timedelta(seconds=1)
    assert len(box.due_for_resend()) == 1
    box.resent(str(mid))
    clock.now += timedelta(seconds=199)  # capped at max_pause_s, not 240
    assert box.due_for_resend() == []
    clock.now += timedelta(seconds=1)
    assert len(box.due_for_resend()) == 1
    stats = box.stats()
    assert (stats.delivered_awaiting_ack, stats.unacknowledged_overdue) == (1, 1)
    assert stats.oldest_unacknowledged_age_s(clock.now) == 60 + 120 + 200
    assert box.acknowledged(mid)
    assert box.due_for_resend() == []
    assert box.stats().delivered_awaiting_ack == 0
    assert box.purge() == 1  # only now is the payload overwritten
    box.close()


def test_a_rejected_message_is_never_offered_again_and_keeps_the_reason(tmp_path: Path) -> None:
    clock = Clock()
    box = open_box(tmp_path, clock, AckPolicy(resend_after_s=10))
    first, second = queue(box, 2)
    box.delivered(first, second)
    assert box.rejected(first, "no open encounter for this appointment")
    assert not box.rejected(uuid.UUID(int=99), "never sent here")
    clock.now += timedelta(hours=1)
    assert [r[1] for r in box.due_for_resend()] == [str(second)]
    assert box.state(first) == DeliveryState.REJECTED
    assert box.rejection(first) == "no open encounter for this appointment"
    assert box.purge() == 0  # kept for the MA and for export
    stats = box.stats()
    assert (stats.rejected, stats.delivered_awaiting_ack) == (1, 1)
    box.close()


def test_status_sequence_grows_across_restarts_whatever_the_clock_says(tmp_path: Path) -> None:
    clock = Clock()
    box = open_box(tmp_path, clock)
    first = [box.next_status_sequence() for _ in range(3)]
    box.close()
    clock.now -= timedelta(days=365)  # a Pi without a real-time clock boots in the past
    again = open_box(tmp_path, clock)
    assert first == [1, 2, 3]
    assert again.next_status_sequence() == 4
    again.close()


def test_an_outbox_from_the_previous_release_is_upgraded_in_place(tmp_path: Path) -> None:
    # The delivery table had three columns; a station updated with messages awaiting ack
    # keeps them (and they become resendable).
    path = tmp_path / "outbox.sqlite3"
    box = open_box(tmp_path)
    (mid,) = queue(box, 1)
    box.close()
    db = sqlite3.connect(path)
    db.executescript(
        "DROP TABLE delivery; CREATE TABLE delivery (message_id TEXT PRIMARY KEY, "
        f"delivered_at TEXT NOT NULL, acknowledged_at TEXT); INSERT INTO delivery VALUES "
        f"('{mid}', '{T0.isoformat()}', NULL);"
    )
    db.close()
    clock = Clock()
    clock.now += timedelta(hours=1)
    again = open_box(tmp_path, clock)
    assert again.state(mid) == DeliveryState.DELIVERED
    assert [r[1] for r in again.due_for_resend()] == [str(mid)]
    again.close()


def test_a_closed_outbox_says_so_instead_of_a_database_error(tmp_path: Path) -> None:
    # A screen redrawing while the station stops asked a closed outbox and got sqlite's
    # ProgrammingError ("Cannot operate on a closed database"), which no screen catches.
    box = open_box(tmp_path)
    (mid,) = queue(box, 1)
    box.close()
    for call in (box.stats, lambda: box.state(mid), lambda: box.put(uuid.UUID(int=9), TOPIC, b"")):
        with pytest.raises(OutboxError, match="is closed"):
            call()
