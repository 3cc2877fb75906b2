"""The gateway's durable store: dedupe by message_id, the ordered queue to the EHR, the outcomes.

A message is stored (and committed) before the broker gets its PUBACK, so a gateway killed at
any point loses nothing: what it had not stored, the broker sends again; what it had stored,
it sends after a restart. A message_id seen before is never queued twice. Only one process
sends at a time (a lease row), in arrival order, so one patient's messages reach the EHR in
the order the broker delivered them, even with several replicas on one store.

`GatewayStore` is the interface; `SqliteGatewayStore` the implementation (one file; replicas
on one host share it, WAL mode). A PostgreSQL store for replicas on several hosts would
implement the same methods; it is not written yet (docs/deploy-practice.md).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol


class RowState(StrEnum):
    QUEUED = "queued"  # waiting to go to the EHR (or being sent)
    FILED = "filed"  # the EHR answered AA (or nothing was to be sent): ack "received"
    REJECTED = "rejected"  # the EHR answered AE/AR, or it could not be turned into HL7


class Offered(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Row:
    seq: int
    message_id: str
    topic: str
    body: bytes
    state: RowState
    reason: str
    attempts: int


@dataclass(frozen=True)
class GatewayStats:
    queued: int
    filed: int
    rejected: int
    acks_unpublished: int
    oldest_queued_received_at: float | None  # epoch seconds
    head_attempts: int  # how often the message at the head has been tried
    last_error: str
    last_error_at: float | None
    sender: str  # which replica holds the send lease ("" none)

    def lag_s(self, now: float) -> float | None:
        """How long the oldest message still queued has waited (None: nothing queued)."""
        if self.oldest_queued_received_at is None:
            return None
        return max(0.0, now - self.oldest_queued_received_at)


class GatewayStore(Protocol):
    def offer(self, message_id: str, topic: str, body: bytes, now: float) -> Offered: ...
    def next_queued(self) -> Row | None: ...
    def attempt_failed(self, seq: int, error: str, now: float) -> None: ...
    def finish(self, seq: int, state: RowState, reason: str, now: float) -> None: ...
    def acks_to_publish(self, limit: int = 100) -> list[Row]: ...
    def ack_published(self, seq: int) -> None: ...
    def acquire_lease(self, holder: str, now: float, ttl_s: float) -> bool: ...
    def release_lease(self, holder: str) -> None: ...
    def stats(self) -> GatewayStats: ...
    def close(self) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    reason TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    ack_published INTEGER NOT NULL DEFAULT 0,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS inbox_queued ON inbox (state, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqliteGatewayStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # The paho thread offers, the sender thread reads: one connection behind a lock.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # committed = on disk before the PUBACK
        with self._lock:
            self._db.executescript(SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def offer(self, message_id: str, topic: str, body: bytes, now: float) -> Offered:
        with self._transaction() as db:
            row = db.execute("SELECT state FROM inbox WHERE message_id = ?",
                             (message_id,)).fetchone()
            if row is not None:
                if row[0] != RowState.QUEUED:
                    # Sent again: the station may have missed our ack; publish it once more.
                    db.execute("UPDATE inbox SET ack_published = 0 WHERE message_id = ?",
                               (message_id,))
                return Offered.DUPLICATE
            db.execute("INSERT INTO inbox (message_id, topic, body, received_at) "
                       "VALUES (?, ?, ?, ?)", (message_id, topic, body, now))
            return Offered.NEW

    def next_queued(self) -> Row | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, message_id, topic, body, state, reason, attempts FROM inbox "
                "WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
        return _row(row) if row else None

    def attempt_failed(self, seq: int, error: str, now: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE inbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_error', ?)", (error,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_error_at', ?)", (repr(now),))

    def finish(self, seq: int, state: RowState, reason: str, now: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE inbox SET state = ?, reason = ?, done_at = ?, "
                       "attempts = attempts + 1, ack_published = 0 WHERE seq = ?",
                       (state.value, reason, now, seq))

    def acks_to_publish(self, limit: int = 100) -> list[Row]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, message_id, topic, body, state, reason, attempts FROM inbox "
                "WHERE state != 'queued' AND ack_published = 0 ORDER BY seq LIMIT ?",
                (limit,)).fetchall()
        return [_row(r) for r in rows]

    def ack_published(self, seq: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE inbox SET ack_published = 1 WHERE seq = ?", (seq,))

    def acquire_lease(self, holder: str, now: float, ttl_s: float) -> bool:
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'sender'").fetchone()
            if row is not None:
                current, _, expires = row[0].partition(" ")
                if current != holder and float(expires) > now:
                    return False
            db.execute("INSERT OR REPLACE INTO meta VALUES ('sender', ?)",
                       (f"{holder} {now + ttl_s!r}",))
            return True

    def release_lease(self, holder: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM meta WHERE key = 'sender' AND value LIKE ?",
                       (f"{holder} %",))

    def stats(self) -> GatewayStats:
        with self._lock:
            counts = dict(self._db.execute(
                "SELECT state, COUNT(*) FROM inbox GROUP BY state").fetchall())
            unpublished = self._db.execute(
                "SELECT COUNT(*) FROM inbox WHERE state != 'queued' AND ack_published = 0"
            ).fetchone()[0]
            head = self._db.execute(
                "SELECT received_at, attempts FROM inbox WHERE state = 'queued' "
                "ORDER BY seq LIMIT 1").fetchone()
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        return GatewayStats(
            queued=counts.get("queued", 0), filed=counts.get("filed", 0),
            rejected=counts.get("rejected", 0), acks_unpublished=unpublished,
            oldest_queued_received_at=head[0] if head else None,
            head_attempts=head[1] if head else 0,
            last_error=meta.get("last_error", ""),
            last_error_at=float(meta["last_error_at"]) if "last_error_at" in meta else None,
            sender=meta.get("sender", "").partition(" ")[0],
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _row(row: tuple[int, str, str, bytes, str, str, int]) -> Row:
    return Row(seq=row[0], message_id=row[1], topic=row[2], body=bytes(row[3]),
               state=RowState(row[4]), reason=row[5], attempts=row[6])
