"""The durable outbox: every message committed to SQLite before the MA is told "saved".

SQLite in WAL mode with synchronous=FULL, one transaction per message, so a power cut or a
SIGKILL loses nothing that `put` returned for. A message leaves the queue only when the
broker's PUBACK arrives (`delivered`: a small row in `delivery`, committed with FULL sync,
marks it); its encrypted row is purged later, in batches, with secure_delete on (`purge`),
so the costly overwrite of 15 kB rows is off the sending path. The practice system's `ack`
is recorded separately (`acknowledged`). Payloads are encrypted at rest with AES-GCM (an SD
card can walk out of an exam room); the topic and the message id are bound to the
ciphertext as associated data. A full disk or a corrupt file raises `OutboxError` with what
happened; nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from station.errors import StationError

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random per message (2^32 messages is far away)


SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the send order
    message_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    enqueued_at TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL
);
-- Lets `stats` count the queue without reading the 15 kB rows' table pages.
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (message_id, enqueued_at);
-- A row is queued until its message_id is here; then `purge` overwrites and removes it.
CREATE TABLE IF NOT EXISTS delivery (
    message_id TEXT PRIMARY KEY,
    delivered_at TEXT NOT NULL,      -- the broker's PUBACK
    acknowledged_at TEXT             -- the practice system's ack
);
"""


class _AlreadyDeliveredError(Exception):
    """Raised inside `put`'s transaction to roll it back."""


class OutboxError(StationError):
    """The outbox cannot do its job: full disk, corrupt file, unreadable key. Never ignored."""


class DeliveryState(StrEnum):
    QUEUED = "queued"  # on this station, not yet taken by the broker
    DELIVERED = "delivered"  # the broker has it (PUBACK); not yet filed by the practice system
    RECEIVED = "received"  # the practice system acknowledged it ("received by the practice")
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Pending:
    seq: int
    message_id: UUID
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    oldest_enqueued_at: datetime | None
    delivered_awaiting_ack: int
    purge_backlog: int = 0  # delivered rows whose encrypted payload is not yet overwritten

    def oldest_age_s(self, now: datetime) -> float | None:
        if self.oldest_enqueued_at is None:
            return None
        return max(0.0, (now - self.oldest_enqueued_at).total_seconds())


def load_or_create_key(path: Path) -> bytes:
    """The per-station AES key: created 0600 on first use, refused if others can read it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as handle:
            handle.write(AESGCM.generate_key(bit_length=KEY_BYTES * 8))
            handle.flush()
            os.fsync(handle.fileno())
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise OutboxError(
            f"outbox key {path} has mode {mode:o}; expected 600 (readable by the service "
            "user only). Fix with: chmod 600 " + str(path)
        )
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise OutboxError(f"outbox key {path} is {len(key)} bytes; expected {KEY_BYTES}")
    return key


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
    ) -> None:
        self._path = db_path
        self._clock = clock
        self._aead = AESGCM(load_or_create_key(key_path))
        self._lock = threading.Lock()  # the write connection
        self._read_lock = threading.Lock()  # the read connection
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

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._reader.close()
            self._db.close()

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
                if "full" in str(exc):
                    raise OutboxError(
                        f"outbox {self._path}: disk full while trying to {action}; nothing "
                        "was lost, but nothing new can be saved until space is freed"
                    ) from exc
                raise OutboxError(f"outbox {self._path}: cannot {action}: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                raise OutboxError(
                    f"outbox {self._path}: database error while trying to {action}: {exc}"
                ) from exc

    def put(self, message_id: UUID, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Commit one message (durable when this returns). A repeated message_id is refused,
        queued or already delivered (it is the practice system's idempotency key)."""
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
            raise

    def pending(self, limit: int = 100, *, after_seq: int = 0) -> list[Pending]:
        """The oldest undelivered messages in send order, decrypted."""
        return [Pending(seq, UUID(message_id), topic, payload, retain)
                for seq, message_id, topic, payload, retain in self.window(limit, after_seq)]

    def window(self, limit: int, after_seq: int) -> list[tuple[int, str, str, bytes, bool]]:
        """`pending` for the sending loop: (seq, message id as stored text, topic, payload,
        retain). The text is what `delivered` stores, so the hot path builds no UUIDs."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT seq, message_id, topic, retain, nonce, ciphertext FROM outbox "
                "WHERE seq > ? AND NOT EXISTS (SELECT 1 FROM delivery WHERE "
                "delivery.message_id = outbox.message_id) ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        out = []
        decrypt = self._aead.decrypt
        for seq, message_id, topic, retain, nonce, ciphertext in rows:
            try:
                # The stored text is str(UUID) already (put wrote it), so no re-formatting.
                payload = decrypt(nonce, ciphertext, f"{message_id}|{topic}".encode())
            except InvalidTag as exc:
                raise OutboxError(
                    f"outbox row {seq} (message {message_id}) does not decrypt with this "
                    "station's key: wrong key file or a tampered database; the row is kept"
                ) from exc
            out.append((seq, message_id, topic, payload, bool(retain)))
        return out

    def delivered(self, *message_ids: UUID | str) -> None:
        """The broker's PUBACKs: these leave the queue (never read by `pending` again), in
        one transaction (one fsync for a window of PUBACKs, not one each). Their rows are
        overwritten later by `purge`. Ids as UUIDs, or as the text `window` gave."""
        now = self._clock().isoformat()
        with self._transaction("record a delivery") as db:
            db.executemany(
                "INSERT OR IGNORE INTO delivery (message_id, delivered_at) VALUES (?, ?)",
                [(mid if isinstance(mid, str) else str(mid), now) for mid in message_ids],
            )

    def purge(self, limit: int = 64) -> int:
        """Overwrite and remove up to `limit` delivered rows (oldest first), in one
        transaction; returns how many. Small batches: `put` waits while this commits."""
        with self._transaction("purge delivered messages") as db:
            cursor = db.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE EXISTS "
                "(SELECT 1 FROM delivery WHERE delivery.message_id = outbox.message_id) "
                "ORDER BY seq LIMIT ?)",
                (limit,),
            )
            return cursor.rowcount

    def acknowledged(self, message_id: UUID) -> bool:
        """The practice system's ack; False if this station never delivered that message."""
        with self._transaction("record an ack") as db:
            cursor = db.execute(
                "UPDATE delivery SET acknowledged_at = ? WHERE message_id = ? "
                "AND acknowledged_at IS NULL",
                (self._clock().isoformat(), str(message_id)),
            )
            if cursor.rowcount:
                return True
            known = db.execute(
                "SELECT 1 FROM delivery WHERE message_id = ?", (str(message_id),)
            ).fetchone()
            if known is not None:
                return True
            # The practice system's ack can overtake the record of the broker's PUBACK (the
            # committer batches those). An ack for a message still queued here proves the
            # broker delivered it: record both now, so the ack is not lost and the message
            # is not sent again; the late PUBACK's INSERT OR IGNORE then changes nothing.
            queued = db.execute(
                "SELECT 1 FROM outbox WHERE message_id = ?", (str(message_id),)
            ).fetchone()
            if queued is None:
                return False
            now = self._clock().isoformat()
            db.execute(
                "INSERT INTO delivery (message_id, delivered_at, acknowledged_at) "
                "VALUES (?, ?, ?)",
                (str(message_id), now, now),
            )
            return True

    def state(self, message_id: UUID) -> DeliveryState:
        with self._lock:
            row = self._db.execute(
                "SELECT acknowledged_at FROM delivery WHERE message_id = ?", (str(message_id),)
            ).fetchone()
            queued = row is None and self._db.execute(
                "SELECT 1 FROM outbox WHERE message_id = ?", (str(message_id),)
            ).fetchone()
        if queued:
            return DeliveryState.QUEUED
        if row is None:
            return DeliveryState.UNKNOWN
        return DeliveryState.RECEIVED if row[0] else DeliveryState.DELIVERED

    def stats(self) -> OutboxStats:
        with self._read_lock:
            self._reader.execute("BEGIN")  # one snapshot for both counts
            try:
                depth, oldest = self._reader.execute(
                    "SELECT COUNT(*), MIN(enqueued_at) FROM outbox WHERE NOT EXISTS "
                    "(SELECT 1 FROM delivery WHERE delivery.message_id = outbox.message_id)"
                ).fetchone()
                (rows,) = self._reader.execute("SELECT COUNT(*) FROM outbox").fetchone()
                (awaiting,) = self._reader.execute(
                    "SELECT COUNT(*) FROM delivery WHERE acknowledged_at IS NULL"
                ).fetchone()
            finally:
                self._reader.execute("COMMIT")
        return OutboxStats(
            depth=depth,
            oldest_enqueued_at=datetime.fromisoformat(oldest) if oldest else None,
            delivered_awaiting_ack=awaiting,
            purge_backlog=rows - depth,
        )

    @staticmethod
    def _aad(message_id: UUID, topic: str) -> bytes:
        return f"{message_id}|{topic}".encode()
