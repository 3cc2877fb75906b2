"""The outbox's parts that are not the queue itself: its schema and values, the station's
key file (created whole, checked against the database) and the disk-space reserve that keeps
deliveries recordable on a full disk. `station.sync.outbox` is the queue; it re-exports what
callers use from here."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from station.errors import StationError
from station.secret_files import write_secret_file

log = logging.getLogger("station.sync.outbox")

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
        write_secret_file(path, AESGCM.generate_key(bit_length=KEY_BYTES * 8), replace=False)
    return _check_key_file(path)


def stamp(raw: bytes | None) -> datetime | None:
    """A stored time stamp; None when absent or unreadable (a damaged row is not a crash)."""
    try:
        return datetime.fromisoformat(raw.decode()) if raw else None
    except (UnicodeDecodeError, ValueError):
        return None


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)




class SpaceReserve:
    """`size` bytes held on the outbox's file system, given up when the disk is full so that
    recording PUBACKs and acks never needs new space; taken back when space returns."""

    def __init__(self, db_path: Path, size: int, retry_s: float) -> None:
        self.path = db_path.with_name(db_path.name + ".reserve")
        self.size = size
        self._retry_s = retry_s
        self._checked_at = -retry_s

    def make(self) -> bool:
        """Hold the space; False when there is no room."""
        if self.size <= 0:
            return True
        try:
            if self.path.exists() and self.path.stat().st_size >= self.size:
                return True
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                self.path.unlink()
            return False
        return True

    def give_up(self, action: str) -> bool:
        """The disk is full: free the space (once). False when it was already given up."""
        if not self.path.exists():
            return False
        with contextlib.suppress(OSError):
            self.path.unlink()
        log.error(
            "outbox %s: disk full while trying to %s; the space reserve is given up so PUBACKs "
            "and acks are still recorded. New messages cannot be saved until space is freed "
            "on this file system",
            self.path.parent,
            action,
        )
        return True

    @property
    def in_use(self) -> bool:
        return self.size > 0 and not self.path.exists()

    def back(self) -> bool:
        """Is the space back (the reserve restored)? Looked at every `retry_s`, not always."""
        if not self.in_use:
            return True
        now = time.monotonic()
        if now - self._checked_at < self._retry_s:
            return False
        self._checked_at = now
        if not self.make():
            return False
        log.warning("outbox %s: disk space is back; the space reserve is restored",
                    self.path.parent)
        return True

    def full_message(self, db_path: Path, action: str) -> str:
        return (
            f"outbox {db_path}: disk full while trying to {action} (the file system of "
            f"{db_path.parent} has no space left); nothing was lost, and nothing new can be "
            f"saved until at least {self.size // (1024 * 1024) or 1} MB is freed there"
        )


def open_key(db: sqlite3.Connection, key_path: Path, db_path: Path) -> bytes:
    """The outbox's key, created only for an outbox that has never had one; it must prove it
    is this outbox's key (the check value written when the key was made)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
    (rows,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
    if not key_path.exists() and (row is not None or rows):
        raise OutboxError(
            f"outbox key {key_path} is missing, but the outbox {db_path} was made with "
            f"a key and holds {rows} messages: a new key could not read them. Restore the "
            "key file from the station's backup; nothing is touched meanwhile (to give the "
            "queue up, move both files aside for IT)"
        )
    key = load_or_create_key(key_path)
    aead = AESGCM(key)
    if row is None:
        nonce = os.urandom(NONCE_BYTES)
        check = nonce + aead.encrypt(nonce, _KEY_CHECK, None)
        db.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?)", (check,))
        return key
    check = bytes(row[0])
    try:
        aead.decrypt(check[:NONCE_BYTES], check[NONCE_BYTES:], None)
    except InvalidTag:
        raise OutboxError(
            f"outbox key {key_path} is not the key of {db_path} (its check value does "
            "not decrypt): the key file was replaced. Restore the station's own key; "
            "nothing is touched meanwhile"
        ) from None
    return key
