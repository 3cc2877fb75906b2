"""The gateway's durable store: dedupe by message_id, the ordered queues to the EHR, the outcomes.

A message is stored (and committed) before the broker gets its PUBACK, so a gateway killed at
any point loses nothing: what it had not stored, the broker sends again; what it had stored,
it sends after a restart. A message_id seen before is never queued twice. Only one process
sends at a time (a lease row), in arrival order per lane, so one patient's messages reach the
EHR in the order the broker delivered them, even with several replicas on one store. Alerts
have a lane of their own (`Lane.ALERT`) so they never wait behind the chart queue.

A station message that becomes several downstream messages (vitals with an allergy review:
an ORU^R01 and an ADT^A60) records how many have been accepted (`parts_done`), so a restart
sends the rest, never the accepted ones again.

`GatewayStore` is the interface; `SqliteGatewayStore` keeps it in one file (replicas on one
host share it, WAL mode), `PostgresGatewayStore` in one PostgreSQL database that replicas on
several hosts share (psycopg 3, the `gateway` extra). `open_store` picks by the settings.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from station.gateway.config import GatewayStore as GatewayStoreSettings


class RowState(StrEnum):
    QUEUED = "queued"  # waiting to go to the EHR (or being sent)
    FILED = "filed"  # the EHR answered AA (or nothing was to be sent): ack "received"
    REJECTED = "rejected"  # the EHR answered AE/AR, or it could not be turned into HL7


class Lane(StrEnum):
    CHART = "chart"  # vitals and check-ins, in arrival order
    ALERT = "alert"  # critical-value and screening alerts, help requests: ahead of the chart


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
    lane: Lane = Lane.CHART
    parts_done: int = 0  # downstream messages of this one already accepted


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
    def offer(self, message_id: str, topic: str, body: bytes, now: float,
              lane: Lane = Lane.CHART) -> Offered: ...
    def next_queued(self, lane: Lane | None = None) -> Row | None: ...
    def attempt_failed(self, seq: int, error: str, now: float) -> None: ...
    def part_done(self, seq: int, parts_done: int) -> None: ...
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
    done_at REAL,
    lane TEXT NOT NULL DEFAULT 'chart',
    parts_done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS inbox_queued ON inbox (state, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Columns added after the first release: an older file gets them at open.
ADDED_COLUMNS = (("lane", "TEXT NOT NULL DEFAULT 'chart'"),
                 ("parts_done", "INTEGER NOT NULL DEFAULT 0"))
COLUMNS = "seq, message_id, topic, body, state, reason, attempts, lane, parts_done"


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
            have = {row[1] for row in self._db.execute("PRAGMA table_info(inbox)")}
            for name, declaration in ADDED_COLUMNS:
                if name not in have:
                    self._db.execute(f"ALTER TABLE inbox ADD COLUMN {name} {declaration}")

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

    def offer(self, message_id: str, topic: str, body: bytes, now: float,
              lane: Lane = Lane.CHART) -> Offered:
        with self._transaction() as db:
            row = db.execute("SELECT state FROM inbox WHERE message_id = ?",
                             (message_id,)).fetchone()
            if row is not None:
                if row[0] != RowState.QUEUED:
                    # Sent again: the station may have missed our ack; publish it once more.
                    db.execute("UPDATE inbox SET ack_published = 0 WHERE message_id = ?",
                               (message_id,))
                return Offered.DUPLICATE
            db.execute("INSERT INTO inbox (message_id, topic, body, received_at, lane) "
                       "VALUES (?, ?, ?, ?, ?)", (message_id, topic, body, now, lane.value))
            return Offered.NEW

    def next_queued(self, lane: Lane | None = None) -> Row | None:
        with self._lock:
            if lane is None:
                row = self._db.execute(
                    f"SELECT {COLUMNS} FROM inbox WHERE state = 'queued' "  # noqa: S608
                    "ORDER BY seq LIMIT 1").fetchone()
            else:
                row = self._db.execute(
                    f"SELECT {COLUMNS} FROM inbox WHERE state = 'queued' "  # noqa: S608
                    "AND lane = ? ORDER BY seq LIMIT 1", (lane.value,)).fetchone()
        return _row(row) if row else None

    def part_done(self, seq: int, parts_done: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE inbox SET parts_done = ? WHERE seq = ?", (parts_done, seq))

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
                f"SELECT {COLUMNS} FROM inbox "  # noqa: S608
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


def _row(row: tuple[Any, ...]) -> Row:
    return Row(seq=row[0], message_id=row[1], topic=row[2], body=bytes(row[3]),
               state=RowState(row[4]), reason=row[5], attempts=row[6], lane=Lane(row[7]),
               parts_done=row[8])


PG_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS gateway_inbox (
        seq BIGSERIAL PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        body BYTEA NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued',
        reason TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        ack_published BOOLEAN NOT NULL DEFAULT FALSE,
        done_at DOUBLE PRECISION,
        lane TEXT NOT NULL DEFAULT 'chart',
        parts_done INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS gateway_inbox_queued ON gateway_inbox (state, lane, seq)",
    "CREATE TABLE IF NOT EXISTS gateway_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
# pg_advisory_xact_lock key: replicas starting together create the tables one at a time
# (concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's catalogue).
SCHEMA_LOCK = 0x524F4F4D  # "ROOM"


class PostgresGatewayStore:
    """The same store in one PostgreSQL database, for replicas on several hosts.

    Dedupe is the UNIQUE message_id (INSERT ... ON CONFLICT DO NOTHING); the send lease one
    row updated only by its holder or once it expired, in one statement. Each replica holds
    one connection (autocommit; each method one transaction); a connection that broke is
    opened again on the next call, and the call that saw it break raises, so paho's PUBACK
    is not sent and the sender retries.
    """

    def __init__(self, dsn: str, *, connect_timeout_s: float = 10.0) -> None:
        import psycopg  # the gateway extra; only a PostgreSQL store needs it

        self._psycopg = psycopg
        self._dsn = dsn
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._conn: Any = None
        with self._lock, self._connection().transaction():
            conn = self._connection()
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in PG_SCHEMA:
                conn.execute(statement)

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self._psycopg.connect(self._dsn, autocommit=True,
                                               connect_timeout=int(self._connect_timeout_s))
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    yield conn
            except self._psycopg.OperationalError:
                conn.close()  # broken: the next call connects again
                raise

    def offer(self, message_id: str, topic: str, body: bytes, now: float,
              lane: Lane = Lane.CHART) -> Offered:
        with self._transaction() as db:
            inserted = db.execute(
                "INSERT INTO gateway_inbox (message_id, topic, body, received_at, lane) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING RETURNING seq",
                (message_id, topic, body, now, lane.value)).fetchone()
            if inserted is not None:
                return Offered.NEW
            # Sent again: the station may have missed our ack; publish it once more.
            db.execute("UPDATE gateway_inbox SET ack_published = FALSE "
                       "WHERE message_id = %s AND state != 'queued'", (message_id,))
            return Offered.DUPLICATE

    def next_queued(self, lane: Lane | None = None) -> Row | None:
        with self._transaction() as db:
            if lane is None:
                row = db.execute(f"SELECT {COLUMNS} FROM gateway_inbox "  # noqa: S608
                                 "WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
            else:
                row = db.execute(f"SELECT {COLUMNS} FROM gateway_inbox "  # noqa: S608
                                 "WHERE state = 'queued' AND lane = %s ORDER BY seq LIMIT 1",
                                 (lane.value,)).fetchone()
        return _row(row) if row else None

    def part_done(self, seq: int, parts_done: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE gateway_inbox SET parts_done = %s WHERE seq = %s",
                       (parts_done, seq))

    def attempt_failed(self, seq: int, error: str, now: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE gateway_inbox SET attempts = attempts + 1 WHERE seq = %s", (seq,))
            for key, value in (("last_error", error), ("last_error_at", repr(now))):
                db.execute("INSERT INTO gateway_meta VALUES (%s, %s) ON CONFLICT (key) "
                           "DO UPDATE SET value = EXCLUDED.value", (key, value))

    def finish(self, seq: int, state: RowState, reason: str, now: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE gateway_inbox SET state = %s, reason = %s, done_at = %s, "
                       "attempts = attempts + 1, ack_published = FALSE WHERE seq = %s",
                       (state.value, reason, now, seq))

    def acks_to_publish(self, limit: int = 100) -> list[Row]:
        with self._transaction() as db:
            rows = db.execute(f"SELECT {COLUMNS} FROM gateway_inbox "  # noqa: S608
                              "WHERE state != 'queued' AND NOT ack_published "
                              "ORDER BY seq LIMIT %s", (limit,)).fetchall()
        return [_row(r) for r in rows]

    def ack_published(self, seq: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE gateway_inbox SET ack_published = TRUE WHERE seq = %s", (seq,))

    def acquire_lease(self, holder: str, now: float, ttl_s: float) -> bool:
        with self._transaction() as db:
            got = db.execute(
                "INSERT INTO gateway_meta VALUES ('sender', %s) ON CONFLICT (key) DO UPDATE "
                "SET value = EXCLUDED.value "
                "WHERE split_part(gateway_meta.value, ' ', 1) = %s "
                "OR split_part(gateway_meta.value, ' ', 2)::double precision <= %s "
                "RETURNING key", (f"{holder} {now + ttl_s!r}", holder, now)).fetchone()
        return got is not None

    def release_lease(self, holder: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM gateway_meta WHERE key = 'sender' "
                       "AND split_part(value, ' ', 1) = %s", (holder,))

    def stats(self) -> GatewayStats:
        with self._transaction() as db:
            counts = dict(db.execute(
                "SELECT state, COUNT(*) FROM gateway_inbox GROUP BY state").fetchall())
            unpublished = db.execute(
                "SELECT COUNT(*) FROM gateway_inbox WHERE state != 'queued' "
                "AND NOT ack_published").fetchone()[0]
            head = db.execute("SELECT received_at, attempts FROM gateway_inbox "
                              "WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
            meta = dict(db.execute("SELECT key, value FROM gateway_meta").fetchall())
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
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def open_store(settings: GatewayStoreSettings) -> GatewayStore:
    """The store the settings name: the SQLite file, or the shared PostgreSQL database."""
    if settings.kind == "postgresql":
        return PostgresGatewayStore(settings.dsn)
    return SqliteGatewayStore(settings.path)
