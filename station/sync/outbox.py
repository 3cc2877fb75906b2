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
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from station.errors import StationError

log = logging.getLogger(__name__)

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random per message (2^32 messages is far away)
# Disk space held back so that recording PUBACKs and acks never needs new space: a delivery
# commit appends a few 4 kB pages to the WAL, which SQLite reuses after each checkpoint.
RESERVE_BYTES = 4 * 1024 * 1024
RESERVE_RETRY_S = 5.0  # how often a refused `put` looks whether space has come back
_KEY_CHECK = b"rooming-station outbox key check"

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
-- A row is queued until its message_id is here (the broker's PUBACK); its payload is kept
-- until the practice system's ack, then `purge` overwrites and removes it.
CREATE TABLE IF NOT EXISTS delivery (
    message_id TEXT PRIMARY KEY,
    delivered_at TEXT NOT NULL,      -- the broker's first PUBACK
    acknowledged_at TEXT             -- the practice system's ack
);
-- Rows that cannot be read: kept, not sent, reported and exportable.
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    reason TEXT NOT NULL,
    quarantined_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""
# Columns added after the first release; an older database gets them when opened.
_MIGRATIONS = (
    ("delivery", "sent_count", "INTEGER NOT NULL DEFAULT 1"),
    ("delivery", "last_sent_at", "TEXT"),
    ("delivery", "rejected_at", "TEXT"),
    ("delivery", "reject_reason", "TEXT"),
)


class _AlreadyDeliveredError(Exception):
    """Raised inside `put`'s transaction to roll it back."""


class OutboxError(StationError):
    """The outbox cannot do its job: full disk, corrupt file, unreadable key. Never ignored."""


class DeliveryState(StrEnum):
    QUEUED = "queued"  # on this station, not yet taken by the broker
    DELIVERED = "delivered"  # the broker has it (PUBACK); not yet filed by the practice system
    RECEIVED = "received"  # the practice system acknowledged it ("received by the practice")
    REJECTED = "rejected"  # the practice system could not file it (its reason is kept)
    QUARANTINED = "quarantined"  # unreadable on this station: kept, not sent, see export
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Pending:
    seq: int
    message_id: UUID
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True)
class AckPolicy:
    """When a delivered message the practice has not acknowledged is sent again, and when it
    is raised to staff. The pause doubles after each resend, up to `max_pause_s`."""

    resend_after_s: float = 120.0
    max_pause_s: float = 1800.0
    overdue_after_s: float = 900.0

    def pause_s(self, sent_count: int) -> float:
        return float(min(self.resend_after_s * 2 ** max(0, sent_count - 1), self.max_pause_s))


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    oldest_enqueued_at: datetime | None
    delivered_awaiting_ack: int
    purge_backlog: int = 0  # acknowledged rows whose encrypted payload is not yet overwritten
    quarantined: int = 0
    rejected: int = 0
    # Delivered, not acknowledged for longer than the policy's overdue_after_s.
    unacknowledged_overdue: int = 0
    oldest_unacknowledged_at: datetime | None = None
    reserve_in_use: bool = False  # the disk is full: the space reserve has been given up

    def oldest_age_s(self, now: datetime) -> float | None:
        if self.oldest_enqueued_at is None:
            return None
        return max(0.0, (now - self.oldest_enqueued_at).total_seconds())

    def oldest_unacknowledged_age_s(self, now: datetime) -> float | None:
        if self.oldest_unacknowledged_at is None:
            return None
        return max(0.0, (now - self.oldest_unacknowledged_at).total_seconds())


@dataclass(frozen=True)
class ExportRow:
    """One row for IT recovery: its state, and the payload when it can be read."""

    seq: int
    message_id: str
    topic: str
    state: DeliveryState
    payload: bytes | None
    problem: str = ""
    ciphertext: bytes = b""


def _check_key_file(path: Path) -> bytes:
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


def load_or_create_key(path: Path) -> bytes:
    """The per-station AES key: created 0600 on first use, refused if others can read it.

    Created whole or not at all: written and synced under a temporary name, then linked to
    its name (which fails if another process made it first). A station killed half-way never
    leaves a short key behind, which would stop it at every start."""
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(AESGCM.generate_key(bit_length=KEY_BYTES * 8))
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    return _check_key_file(path)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _stamp(raw: bytes | None) -> datetime | None:
    """A stored time stamp; None when absent or unreadable (a damaged row is not a crash)."""
    try:
        return datetime.fromisoformat(raw.decode()) if raw else None
    except (UnicodeDecodeError, ValueError):
        return None


def _is_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)


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
        self._reserve = db_path.with_name(db_path.name + ".reserve")
        self._reserve_bytes = reserve_bytes
        self._reserve_retry_s = reserve_retry_s
        self._reserve_checked_at = -reserve_retry_s
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
            self._aead = AESGCM(self._open_key(key_path))
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
        self._make_reserve()
        self._release_quarantine()

    # ---- opening ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        for table, column, kind in _MIGRATIONS:
            columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _open_key(self, key_path: Path) -> bytes:
        """The key, created only for an outbox that has never had one; it must prove it is
        this outbox's key (the check value written when the key was made)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
        (rows,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        if not key_path.exists() and (row is not None or rows):
            raise OutboxError(
                f"outbox key {key_path} is missing, but the outbox {self._path} was made with "
                f"a key and holds {rows} messages: a new key could not read them. Restore the "
                "key file from the station's backup; nothing is touched meanwhile (to give the "
                "queue up, move both files aside for IT)"
            )
        key = load_or_create_key(key_path)
        aead = AESGCM(key)
        if row is None:
            nonce = os.urandom(NONCE_BYTES)
            check = nonce + aead.encrypt(nonce, _KEY_CHECK, None)
            self._db.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?)", (check,))
            return key
        check = bytes(row[0])
        try:
            aead.decrypt(check[:NONCE_BYTES], check[NONCE_BYTES:], None)
        except InvalidTag:
            raise OutboxError(
                f"outbox key {key_path} is not the key of {self._path} (its check value does "
                "not decrypt): the key file was replaced. Restore the station's own key; "
                "nothing is touched meanwhile"
            ) from None
        return key

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

    # ---- the space reserve -----------------------------------------------------------------

    def _make_reserve(self) -> bool:
        """Hold `reserve_bytes` of disk for recording deliveries; False when there is no room."""
        if self._reserve_bytes <= 0:
            return True
        try:
            if self._reserve.exists() and self._reserve.stat().st_size >= self._reserve_bytes:
                return True
            fd = os.open(self._reserve, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self._reserve_bytes)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                self._reserve.unlink()
            return False
        return True

    def _give_up_reserve(self, action: str) -> bool:
        if not self._reserve.exists():
            return False
        with contextlib.suppress(OSError):
            self._reserve.unlink()
        log.error(
            "outbox %s: disk full while trying to %s; the space reserve is given up so PUBACKs "
            "and acks are still recorded. New messages cannot be saved until space is freed "
            "on this file system",
            self._path.parent,
            action,
        )
        return True

    @property
    def reserve_in_use(self) -> bool:
        return self._reserve_bytes > 0 and not self._reserve.exists()

    def _space_back(self) -> None:
        """Before saving a new message: if the reserve was given up, take it back when the
        disk has room again (looked at every few seconds, not on every put)."""
        if not self.reserve_in_use:
            return
        now = time.monotonic()
        if now - self._reserve_checked_at < self._reserve_retry_s:
            raise OutboxError(self._full_message("queue a message"))
        self._reserve_checked_at = now
        if not self._make_reserve():
            raise OutboxError(self._full_message("queue a message"))
        log.warning("outbox %s: disk space is back; the space reserve is restored",
                    self._path.parent)

    def _full_message(self, action: str) -> str:
        return (
            f"outbox {self._path}: disk full while trying to {action} (the file system of "
            f"{self._path.parent} has no space left); nothing was lost, and nothing new can be "
            f"saved until at least {self._reserve_bytes // (1024 * 1024) or 1} MB is freed there"
        )

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
                if _is_full(exc):
                    raise OutboxError(self._full_message(action)) from exc
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
            if not _is_full(exc.__cause__ or exc) or not self._give_up_reserve(action):
                raise
        with self._transaction(action) as db:
            return work(db)

    # ---- the queue -------------------------------------------------------------------------

    def put(self, message_id: UUID, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Commit one message (durable when this returns). A repeated message_id is refused,
        queued or already delivered (it is the practice system's idempotency key)."""
        self._require_open()
        self._space_back()
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
            if _is_full(exc.__cause__ or exc):
                self._give_up_reserve("queue a message")
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
            oldest_enqueued_at=_stamp(oldest),
            delivered_awaiting_ack=awaiting,
            purge_backlog=backlog,
            quarantined=quarantined,
            rejected=rejected,
            unacknowledged_overdue=overdue,
            oldest_unacknowledged_at=_stamp(first),
            reserve_in_use=self.reserve_in_use,
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
