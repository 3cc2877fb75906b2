"""The durable outbox: every message committed to SQLite before the MA is told "saved", and
kept until the practice system has filed it.

SQLite in WAL mode with synchronous=FULL, one transaction per message, so a power cut or a
SIGKILL loses nothing that `put` returned for. A message leaves the send queue when the
broker's PUBACK arrives (`delivered`: a small row in `delivery`, committed with FULL sync),
but its encrypted payload stays until the practice system's `ack` (`acknowledged`): delivery
is end to end. A delivered message the practice has not acknowledged is offered again, with
the same message_id and a growing pause (`due_for_resend`), and counted as overdue for staff
after a while (`stats`). A `rejected` ack is recorded with its reason and never resent.
Acknowledged payloads are overwritten later, in batches, with secure_delete on (`purge`).

Payloads are encrypted at rest with AES-GCM (an SD card can walk out of an exam room); the
topic and the message id are bound to the ciphertext as associated data, and a key check in
the database proves the key file belongs to it. Nothing is lost silently:
- a row that cannot be read (bit flip, foreign key, undecodable topic) is quarantined — kept,
  reported with its seq and id, exportable — and the rest keeps flowing;
- an empty database file next to its key, a missing key for a database that has one, or a
  key file that does not belong to the database is refused loudly, and every file is kept;
- a full disk: a reserve file next to the database is given up so that recording PUBACKs
  and acks (which lets the queue shrink) never needs new space; new messages are refused
  with what is full, and the reserve comes back by itself when space returns.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from station.sync.outbox_parts import (
    _MIGRATIONS,
    NONCE_BYTES,
    RESERVE_BYTES,
    RESERVE_RETRY_S,
    SCHEMA,
    AckPolicy,
    DeliveryState,
    ExportRow,
    OutboxError,
    OutboxStats,
    Pending,
    SpaceReserve,
    is_full,
    load_or_create_key,
    open_key,
    stamp,
)

__all__ = [
    "AckPolicy",
    "DeliveryState",
    "ExportRow",
    "Outbox",
    "OutboxError",
    "OutboxStats",
    "Pending",
    "load_or_create_key",
]

log = logging.getLogger(__name__)

class _AlreadyDeliveredError(Exception):
    """Raised inside `put`'s transaction to roll it back."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """Thread-safe: the UI thread puts, the MQTT threads read and delete on PUBACK.

    Two connections to the one file: writes (put, delivered, ack) go through one, reads of
    the queue (pending, stats) through the other, so reading the next window never waits
    behind the fsync of a commit (WAL readers see the last committed state).
    """

    def __init__(
        self,
        db_path: Path,
        key_path: Path,
        *,
        clock: Callable[[], datetime] = _utc_now,
        ack_policy: AckPolicy | None = None,
        reserve_bytes: int = RESERVE_BYTES,
        reserve_retry_s: float = RESERVE_RETRY_S,
    ) -> None:
        self._path = db_path
        self._clock = clock
        self.ack_policy = ack_policy or AckPolicy()
        self.reserve = SpaceReserve(db_path, reserve_bytes, reserve_retry_s)
        self._closed = False
        self._lock = threading.Lock()  # the write connection
        self._read_lock = threading.Lock()  # the read connection
        if db_path.exists() and db_path.stat().st_size == 0 and key_path.exists():
            raise OutboxError(
                f"outbox {db_path} is an empty file (0 bytes) but its key {key_path} exists: "
                "the queue was truncated (a failing SD card, or a copy gone wrong). Nothing is "
                "touched: restore the file from a backup, or move both files aside to start "
                "an empty outbox"
            )
        try:
            self._db = sqlite3.connect(
                db_path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # Delivered payloads are overwritten, not just unlinked (Debian builds SQLite
            # this way; said here so the station does not depend on the build).
            self._db.execute("PRAGMA secure_delete=ON")
            (check,) = self._db.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise OutboxError(f"outbox {db_path} is corrupt: {check}; see `station outbox "
                                  "export` to recover what is readable")
            self._db.executescript(SCHEMA)
            self._migrate()
            self._aead = AESGCM(open_key(self._db, key_path, db_path))
            self._reader = sqlite3.connect(
                db_path, isolation_level=None, check_same_thread=False, timeout=30
            )
            # No mmap on the reader, on purpose: a media read error on a mapped page kills the
            # process (SIGBUS, and on a failing SD card a restart loop) where a plain read
            # raises OutboxError that the station reports; mapped pages would also count
            # against the kiosk's memory. It cost about 7 us of CPU per row while draining.
        except sqlite3.DatabaseError as exc:
            raise OutboxError(
                f"outbox {db_path} cannot be opened ({exc}); it is not touched — move it "
                "aside for IT and restart"
            ) from exc
        except OutboxError:
            self._db.close()
            raise
        self.reserve.make()
        self._release_quarantine()

    # ---- opening ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        for table, column, kind in _MIGRATIONS:
            columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._closed = True
            self._reader.close()
            self._db.close()

    def _require_open(self) -> None:
        """A call after `close` (a screen redrawing while the station stops) is an
        OutboxError the caller reports, never sqlite's ProgrammingError."""
        if self._closed:
            raise OutboxError(f"outbox {self._path} is closed (the station is stopping)")

    # ---- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    # SQLite has already rolled back after some errors (SQLITE_FULL).
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if is_full(exc):
                    raise OutboxError(self.reserve.full_message(self._path, action)) from exc
                raise OutboxError(f"outbox {self._path}: cannot {action}: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                raise OutboxError(
                    f"outbox {self._path}: database error while trying to {action}: {exc}"
                ) from exc

    def _essential(self, action: str, work: Callable[[sqlite3.Connection], int]) -> int:
        """A record that lets the queue shrink (PUBACK, ack, quarantine): on a full disk the
        reserve is given up and it is tried once more."""
        try:
            with self._transaction(action) as db:
                return work(db)
        except OutboxError as exc:
            if not is_full(exc.__cause__ or exc) or not self.reserve.give_up(action):
                raise
        with self._transaction(action) as db:
            return work(db)

    # ---- the queue -------------------------------------------------------------------------

    def put(self, message_id: UUID, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Commit one message (durable when this returns). A repeated message_id is refused,
        queued or already delivered (it is the practice system's idempotency key)."""
        self._require_open()
        if not self.reserve.back():
            raise OutboxError(self.reserve.full_message(self._path, "queue a message"))
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, payload, self._aad(message_id, topic))
        try:
            with self._transaction("queue a message") as db:
                if db.execute("SELECT 1 FROM delivery WHERE message_id = ?",
                              (str(message_id),)).fetchone():
                    raise _AlreadyDeliveredError
                db.execute(
                    "INSERT INTO outbox (message_id, topic, retain, enqueued_at, nonce, "
                    "ciphertext) VALUES (?, ?, ?, ?, ?, ?)",
                    (str(message_id), topic, int(retain), self._clock().isoformat(), nonce,
                     ciphertext),
                )
        except _AlreadyDeliveredError:
            raise OutboxError(f"message {message_id} was already delivered; a new "
                              "submission needs a new message id") from None
        except OutboxError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise OutboxError(f"message {message_id} is already queued") from exc
            if is_full(exc.__cause__ or exc):
                self.reserve.give_up("queue a message")
            raise

    def pending(self, limit: int = 100, *, after_seq: int = 0) -> list[Pending]:
        """The oldest undelivered messages in send order, decrypted."""
        return [Pending(seq, UUID(message_id), topic, payload, retain)
                for seq, message_id, topic, payload, retain in self.window(limit, after_seq)]

    def window(self, limit: int, after_seq: int) -> list[tuple[int, str, str, bytes, bool]]:
        """`pending` for the sending loop: (seq, message id as stored text, topic, payload,
        retain). The text is what `delivered` stores, so the hot path builds no UUIDs. A row
        that cannot be read is quarantined and skipped: one bad row never stops the rest."""
        self._require_open()
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT seq, CAST(message_id AS BLOB), CAST(topic AS BLOB), retain, "
                "CAST(nonce AS BLOB), CAST(ciphertext AS BLOB) FROM outbox WHERE seq > ? "
                "AND NOT EXISTS (SELECT 1 FROM delivery WHERE delivery.message_id = "
                "outbox.message_id) AND NOT EXISTS (SELECT 1 FROM quarantine WHERE "
                "quarantine.seq = outbox.seq) ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return self._readable(rows)

    def _readable(self, rows: list[tuple[int, bytes, bytes, int, bytes, bytes]],
                  ) -> list[tuple[int, str, str, bytes, bool]]:
        out = []
        decrypt = self._aead.decrypt
        for seq, raw_id, raw_topic, retain, nonce, ciphertext in rows:
            try:
                message_id, topic = raw_id.decode(), raw_topic.decode()
                # The stored text is str(UUID) already (put wrote it), so no re-formatting.
                payload = decrypt(nonce, ciphertext, b"%s|%s" % (raw_id, raw_topic))
            except (UnicodeDecodeError, InvalidTag, TypeError, ValueError) as exc:
                self._quarantine(seq, raw_id, exc)
                continue
            out.append((seq, message_id, topic, payload, bool(retain)))
        return out

    def _quarantine(self, seq: int, raw_id: bytes | None, exc: Exception) -> None:
        if isinstance(exc, InvalidTag):
            reason = ("does not decrypt with this station's key (damaged on disk, or written "
                      "with another key)")
        elif isinstance(exc, UnicodeDecodeError):
            reason = "its message id or topic is not UTF-8 text (damaged on disk)"
        else:
            reason = f"unreadable ({type(exc).__name__})"
        self._essential("quarantine an unreadable row", lambda db: db.execute(
            "INSERT OR IGNORE INTO quarantine (seq, reason, quarantined_at) VALUES (?, ?, ?)",
            (seq, reason, self._clock().isoformat()),
        ).rowcount)
        shown = (raw_id or b"").decode(errors="replace")
        log.error("outbox row %d (message %s) quarantined: %s; it is kept and listed by "
                  "`station outbox export`; the other messages go on", seq, shown, reason)

    def _release_quarantine(self) -> None:
        """At open: a quarantined row that reads now (its key was restored) goes back."""
        rows = self._db.execute(
            "SELECT o.seq, CAST(o.message_id AS BLOB), CAST(o.topic AS BLOB), "
            "CAST(o.nonce AS BLOB), CAST(o.ciphertext AS BLOB) FROM outbox o "
            "JOIN quarantine q ON q.seq = o.seq"
        ).fetchall()
        for seq, raw_id, raw_topic, nonce, ciphertext in rows:
            try:
                raw_id.decode(), raw_topic.decode()
                self._aead.decrypt(nonce, ciphertext, b"%s|%s" % (raw_id, raw_topic))
            except (UnicodeDecodeError, InvalidTag, TypeError, ValueError):
                continue
            with self._transaction("release a quarantined row") as db:
                db.execute("DELETE FROM quarantine WHERE seq = ?", (seq,))
            log.warning("outbox row %d reads again; back in the queue", seq)

    def delivered(self, *message_ids: UUID | str) -> None:
        """The broker's PUBACKs: these leave the send queue (never read by `pending` again),
        in one transaction (one fsync for a window of PUBACKs, not one each). Their payloads
        stay until the practice's ack. Ids as UUIDs, or as the text `window` gave."""
        self._require_open()
        now = self._clock().isoformat()
        rows = [(mid if isinstance(mid, str) else str(mid), now, now) for mid in message_ids]
        self._essential("record a delivery", lambda db: db.executemany(
            "INSERT OR IGNORE INTO delivery (message_id, delivered_at, last_sent_at) "
            "VALUES (?, ?, ?)",
            rows,
        ).rowcount)

    def purge(self, limit: int = 64) -> int:
        """Overwrite and remove up to `limit` rows the practice acknowledged (oldest first), in
        one transaction; returns how many. Small batches: `put` waits while this commits."""
        self._require_open()
        return self._essential("purge acknowledged messages", lambda db: db.execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE EXISTS "
            "(SELECT 1 FROM delivery WHERE delivery.message_id = outbox.message_id "
            "AND delivery.acknowledged_at IS NOT NULL) ORDER BY seq LIMIT ?)",
            (limit,),
        ).rowcount)

    # ---- the practice system's answer ------------------------------------------------------------

    def acknowledged(self, message_id: UUID) -> bool:
        """The practice system's ack; False if this station never delivered that message."""
        self._require_open()
        return bool(self._essential("record an ack", lambda db: self._ack(db, message_id)))

    def _ack(self, db: sqlite3.Connection, message_id: UUID) -> int:
        now = self._clock().isoformat()
        cursor = db.execute(
            "UPDATE delivery SET acknowledged_at = ? WHERE message_id = ? "
            "AND acknowledged_at IS NULL",
            (now, str(message_id)),
        )
        if cursor.rowcount:
            return 1
        if db.execute("SELECT 1 FROM delivery WHERE message_id = ?",
                      (str(message_id),)).fetchone():
            return 1
        # The practice system's ack can overtake the record of the broker's PUBACK (the
        # committer batches those). An ack for a message still queued here proves the
        # broker delivered it: record both now, so the ack is not lost and the message
        # is not sent again; the late PUBACK's INSERT OR IGNORE then changes nothing.
        if db.execute("SELECT 1 FROM outbox WHERE message_id = ?",
                      (str(message_id),)).fetchone() is None:
            return 0
        db.execute(
            "INSERT INTO delivery (message_id, delivered_at, last_sent_at, acknowledged_at) "
            "VALUES (?, ?, ?, ?)",
            (str(message_id), now, now, now),
        )
        return 1

    def rejected(self, message_id: UUID, reason: str) -> bool:
        """The practice system could not file it: never resent, kept with the practice's
        reason for the MA's screen and for export. False if this station never sent it."""
        self._require_open()
        now = self._clock().isoformat()

        def record(db: sqlite3.Connection) -> int:
            if db.execute("SELECT 1 FROM outbox WHERE message_id = ?",
                          (str(message_id),)).fetchone() is None:
                return 0
            db.execute(
                "INSERT OR IGNORE INTO delivery (message_id, delivered_at, last_sent_at) "
                "VALUES (?, ?, ?)", (str(message_id), now, now),
            )
            return db.execute(
                "UPDATE delivery SET rejected_at = ?, reject_reason = ? WHERE message_id = ? "
                "AND acknowledged_at IS NULL", (now, reason, str(message_id)),
            ).rowcount

        return bool(self._essential("record a rejection", record))

    def rejection(self, message_id: UUID) -> str | None:
        """The practice system's reason, for a rejected message."""
        self._require_open()
        with self._lock:
            row = self._db.execute(
                "SELECT reject_reason FROM delivery WHERE message_id = ? AND rejected_at IS NOT "
                "NULL", (str(message_id),),
            ).fetchone()
        return None if row is None else str(row[0] or "")

    def due_for_resend(self, limit: int = 100) -> list[tuple[int, str, str, bytes, bool]]:
        """Delivered messages the practice has not acknowledged (nor rejected) whose pause
        is over, oldest first, as `window` rows: sent again with the same message id."""
        self._require_open()
        now = self._clock()
        with self._read_lock:
            waiting = self._reader.execute(
                "SELECT d.message_id, d.sent_count, COALESCE(d.last_sent_at, d.delivered_at) "
                "FROM delivery d JOIN outbox o ON o.message_id = d.message_id WHERE "
                "d.acknowledged_at IS NULL AND d.rejected_at IS NULL AND NOT EXISTS (SELECT 1 "
                "FROM quarantine q WHERE q.seq = o.seq) ORDER BY o.seq"
            ).fetchall()
            due = [
                mid for mid, count, last in waiting
                if now - datetime.fromisoformat(last)
                >= timedelta(seconds=self.ack_policy.pause_s(count))
            ][:limit]
            if not due:
                return []
            marks = ",".join("?" * len(due))
            rows = self._reader.execute(
                "SELECT seq, CAST(message_id AS BLOB), CAST(topic AS BLOB), retain, "  # noqa: S608
                "CAST(nonce AS BLOB), CAST(ciphertext AS BLOB) FROM outbox "
                f"WHERE message_id IN ({marks}) ORDER BY seq",  # only "?" marks
                due,
            ).fetchall()
        return self._readable(rows)

    def resent(self, *message_ids: str) -> None:
        """These were published again: the next pause starts now and is longer."""
        self._require_open()
        now = self._clock().isoformat()
        with self._transaction("record a resend") as db:
            db.executemany(
                "UPDATE delivery SET sent_count = sent_count + 1, last_sent_at = ? "
                "WHERE message_id = ?",
                [(now, mid) for mid in message_ids],
            )

    # ---- reading the state -----------------------------------------------------------------

    def state(self, message_id: UUID) -> DeliveryState:
        self._require_open()
        with self._lock:
            row = self._db.execute(
                "SELECT acknowledged_at, rejected_at FROM delivery WHERE message_id = ?",
                (str(message_id),),
            ).fetchone()
            queued = self._db.execute(
                "SELECT q.seq IS NOT NULL FROM outbox o LEFT JOIN quarantine q ON q.seq = o.seq "
                "WHERE o.message_id = ?", (str(message_id),),
            ).fetchone()
        if row is None:
            if queued is None:
                return DeliveryState.UNKNOWN
            return DeliveryState.QUARANTINED if queued[0] else DeliveryState.QUEUED
        if row[0]:
            return DeliveryState.RECEIVED
        if row[1]:
            return DeliveryState.REJECTED
        return DeliveryState.DELIVERED

    def stats(self) -> OutboxStats:
        self._require_open()
        overdue_before = (
            self._clock() - timedelta(seconds=self.ack_policy.overdue_after_s)
        ).isoformat()
        with self._read_lock:
            self._reader.execute("BEGIN")  # one snapshot for every count
            try:
                depth, oldest = self._reader.execute(
                    "SELECT COUNT(*), CAST(MIN(enqueued_at) AS BLOB) FROM outbox WHERE NOT EXISTS "
                    "(SELECT 1 FROM delivery WHERE delivery.message_id = outbox.message_id) "
                    "AND NOT EXISTS (SELECT 1 FROM quarantine WHERE quarantine.seq = outbox.seq)"
                ).fetchone()
                (quarantined,) = self._reader.execute(
                    "SELECT COUNT(*) FROM quarantine").fetchone()
                awaiting, first, overdue, rejected = self._reader.execute(
                    "SELECT COALESCE(SUM(rejected_at IS NULL), 0), "
                    "CAST(MIN(CASE WHEN rejected_at IS NULL THEN delivered_at END) AS BLOB), "
                    "COALESCE(SUM(rejected_at IS NULL AND delivered_at <= ?), 0), "
                    "COALESCE(SUM(rejected_at IS NOT NULL), 0) "
                    "FROM delivery WHERE acknowledged_at IS NULL", (overdue_before,),
                ).fetchone()
                (backlog,) = self._reader.execute(
                    "SELECT COUNT(*) FROM outbox JOIN delivery ON delivery.message_id = "
                    "outbox.message_id WHERE delivery.acknowledged_at IS NOT NULL"
                ).fetchone()
            finally:
                self._reader.execute("COMMIT")
        return OutboxStats(
            depth=depth,
            oldest_enqueued_at=stamp(oldest),
            delivered_awaiting_ack=awaiting,
            purge_backlog=backlog,
            quarantined=quarantined,
            rejected=rejected,
            unacknowledged_overdue=overdue,
            oldest_unacknowledged_at=stamp(first),
            reserve_in_use=self.reserve.in_use,
        )

    def export(self) -> Iterator[ExportRow]:
        """Every row still held, in send order, for IT: readable ones decrypted, unreadable
        ones with their ciphertext and what is wrong with them."""
        self._require_open()
        after = 0
        while True:
            with self._read_lock:
                rows = self._reader.execute(
                    "SELECT o.seq, CAST(o.message_id AS BLOB), CAST(o.topic AS BLOB), "
                    "CAST(o.nonce AS BLOB), CAST(o.ciphertext AS BLOB), d.acknowledged_at, "
                    "d.rejected_at, d.message_id, q.reason "
                    "FROM outbox o LEFT JOIN delivery d ON d.message_id = o.message_id "
                    "LEFT JOIN quarantine q ON q.seq = o.seq WHERE o.seq > ? ORDER BY o.seq "
                    "LIMIT 200", (after,),
                ).fetchall()
            if not rows:
                return
            for seq, raw_id, raw_topic, nonce, ciphertext, acked, rejected, known, bad in rows:
                after = seq
                message_id = raw_id.decode(errors="replace")
                topic = raw_topic.decode(errors="replace")
                state = (DeliveryState.QUARANTINED if bad else DeliveryState.RECEIVED if acked
                         else DeliveryState.REJECTED if rejected
                         else DeliveryState.DELIVERED if known else DeliveryState.QUEUED)
                try:
                    payload: bytes | None = self._aead.decrypt(
                        nonce, ciphertext, b"%s|%s" % (raw_id, raw_topic))
                    problem = ""
                except (InvalidTag, TypeError, ValueError):
                    payload = None
                    problem = bad or "does not decrypt with this station's key"
                yield ExportRow(seq, message_id, topic, state, payload, problem,
                                b"" if payload is not None else bytes(ciphertext))

    def next_status_sequence(self) -> int:
        """A number larger than any this outbox gave before (across restarts and clock
        jumps): the status messages' order for consumers."""
        self._require_open()
        def bump(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT value FROM meta WHERE key = 'status_sequence'").fetchone()
            value = int(row[0]) + 1 if row else 1
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('status_sequence', ?)",
                       (value,))
            return value
        return self._essential("number a status message", bump)

    @staticmethod
    def _aad(message_id: UUID, topic: str) -> bytes:
        return f"{message_id}|{topic}".encode()
