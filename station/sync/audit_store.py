"""The station's audit trail at rest: append-only, hash-chained, encrypted, and queued for the
`audit` topic through the durable outbox.

SQLite (WAL, synchronous=FULL) beside the outbox, each record AES-GCM encrypted with the
station's outbox key (its sequence and message id bound as associated data). Appending takes
the chain's head inside one `BEGIN IMMEDIATE` transaction, so two processes (the station and
`station audit export`) never fork the chain; the head (last sequence and hash) is kept in its
own row, so removing the newest records is detected too. A record is committed here first,
then handed to the outbox (`queue`), then marked queued: a crash in between leaves it unqueued,
and `requeue` (at every start) hands it over again — the outbox refuses nothing twice, so the
practice system gets every record at least once, deduplicated by its message_id.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from station.audit import AuditAction, AuditEvent
from station.errors import StationError
from station.sync.audit_chain import GENESIS_HASH, record_hash, seal, verify_chain
from station.sync.contract import AuditPayload, to_json
from station.sync.outbox import load_or_create_key
from station.sync.outbox_parts import NONCE_BYTES

AUDIT_FILE = "audit.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,            -- the record's sequence: 1, 2, 3... no gaps
    message_id TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,                 -- the record's hash (no patient data)
    related TEXT,                       -- a submission's message id, on its `saved` record
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,           -- the record's wire JSON, AES-GCM
    queued INTEGER NOT NULL DEFAULT 0   -- handed to the outbox
);
CREATE INDEX IF NOT EXISTS audit_related ON audit (related);
CREATE INDEX IF NOT EXISTS audit_unqueued ON audit (queued) WHERE queued = 0;
-- Which actions are on record for which related message (a submission is "sent" once).
CREATE TABLE IF NOT EXISTS said (
    related TEXT NOT NULL,
    action TEXT NOT NULL,
    PRIMARY KEY (related, action)
);
CREATE TABLE IF NOT EXISTS head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
"""


class AuditError(StationError):
    """The audit trail cannot be written or read. Never ignored."""


@dataclass(frozen=True)
class Subject:
    """Whom a submission was about: from its `submission_saved` record."""

    appointment_id: str | None
    mrn: str | None
    actor: str


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditStore:
    """Thread-safe: the UI thread appends the workflows' events, the MQTT threads the
    deliveries'."""

    def __init__(
        self,
        db_path: Path,
        key_path: Path,
        *,
        site: str,
        station_id: str,
        queue: Callable[[UUID, bytes], None] | None = None,
        queued_already: Callable[[UUID], bool] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = db_path
        self._site, self._station_id = site, station_id
        self._queue = queue
        self._queued_already = queued_already or (lambda _mid: False)
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False,
                                       timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise AuditError(f"audit trail {db_path} cannot be opened ({exc}); it is not "
                             "touched — keep it for the privacy officer and restart") from exc
        self._aead = AESGCM(load_or_create_key(key_path))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _aad(seq: int, message_id: str) -> bytes:
        return f"audit {seq} {message_id}".encode()

    # ---- writing ---------------------------------------------------------------------------

    def append(self, events: Iterable[AuditEvent]) -> list[AuditPayload]:
        """Each event as the chain's next record: committed, then queued for `audit`."""
        sealed = []
        for event in events:
            record = self._commit(event)
            sealed.append(record)
            self._hand_over(record.sequence, record.message_id, to_json(record))
        return sealed

    def _commit(self, event: AuditEvent) -> AuditPayload:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute("SELECT seq, hash FROM head").fetchone()
                    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS_HASH)
                    record = seal(event, sequence=seq, prev_hash=prev, message_id=uuid4(),
                                  site=self._site, station_id=self._station_id,
                                  sent_at=self._clock())
                    mid = str(record.message_id)
                    nonce = os.urandom(NONCE_BYTES)
                    body = to_json(record)
                    related = (str(event.related_message_id)
                               if event.action is AuditAction.SUBMISSION_SAVED
                               and event.related_message_id else None)
                    self._db.execute(
                        "INSERT INTO audit (seq, message_id, hash, related, nonce, ciphertext) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (seq, mid, record.hash, related, nonce,
                         self._aead.encrypt(nonce, body, self._aad(seq, mid))),
                    )
                    if event.related_message_id is not None:
                        self._db.execute("INSERT OR IGNORE INTO said (related, action) "
                                         "VALUES (?, ?)",
                                         (str(event.related_message_id), event.action.value))
                    self._db.execute("INSERT OR REPLACE INTO head (one, seq, hash) "
                                     "VALUES (1, ?, ?)", (seq, record.hash))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                raise AuditError(f"audit record not written ({exc})") from exc
            return record

    def _hand_over(self, seq: int, message_id: UUID, body: bytes) -> None:
        if self._queue is None:
            return  # a process without the MQTT link (`station audit`): the station queues it
        if not self._queued_already(message_id):
            self._queue(message_id, body)
        with self._lock:
            self._db.execute("UPDATE audit SET queued = 1 WHERE seq = ?", (seq,))

    def requeue(self) -> int:
        """Records committed but never handed to the outbox (a crash in between, or written
        by `station audit export`): handed over now, in order. Returns how many."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, message_id, nonce, ciphertext FROM audit WHERE queued = 0 "
                "ORDER BY seq").fetchall()
        for seq, mid, nonce, ciphertext in rows:
            body = self._aead.decrypt(bytes(nonce), bytes(ciphertext), self._aad(seq, mid))
            self._hand_over(seq, UUID(mid), body)
        return len(rows)

    def subject(self, message_id: UUID | str) -> Subject | None:
        """Whom the submission `message_id` was about; None if it is no audited submission."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, message_id, nonce, ciphertext FROM audit WHERE related = ? "
                "ORDER BY seq LIMIT 1", (str(message_id),)).fetchone()
        if row is None:
            return None
        record = self._decrypt(*row)
        if isinstance(record, str):
            return None
        return Subject(record.get("appointment_id"), record.get("mrn"), str(record["actor"]))

    def is_own(self, message_id: UUID | str) -> bool:
        """Whether `message_id` is one of this trail's records (their deliveries are not
        audited: that would never end)."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM audit WHERE message_id = ?",
                                    (str(message_id),)).fetchone() is not None

    def has(self, action: AuditAction, related: UUID | str) -> bool:
        """Whether a record of `action` about message `related` exists (sent is said once)."""
        with self._lock:
            return self._db.execute(
                "SELECT 1 FROM said WHERE related = ? AND action = ?",
                (str(related), action.value)).fetchone() is not None

    # ---- reading ---------------------------------------------------------------------------

    def _decrypt(self, seq: int, mid: str, nonce: bytes, ciphertext: bytes) -> dict[str, Any] | str:
        try:
            body = self._aead.decrypt(bytes(nonce), bytes(ciphertext), self._aad(seq, mid))
            record = json.loads(body)
        except (InvalidTag, ValueError):
            return f"record {seq}: cannot be decrypted or read (edited or damaged at rest)"
        if not isinstance(record, dict):
            return f"record {seq}: not a record"
        return record

    def records(self) -> Iterator[dict[str, Any] | str]:
        """Every record in order, decrypted; a problem text for one that cannot be read."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, message_id, nonce, ciphertext FROM audit ORDER BY seq").fetchall()
        for row in rows:
            yield self._decrypt(*row)

    def verify(self) -> list[str]:
        """What is wrong with the stored chain (empty: every record is there and unedited)."""
        readable: list[dict[str, Any]] = []
        problems: list[str] = []
        with self._lock:  # one consistent view: the rows and the head together
            rows = self._db.execute(
                "SELECT seq, message_id, nonce, ciphertext, hash FROM audit ORDER BY seq"
            ).fetchall()
            head = self._db.execute("SELECT seq, hash FROM head").fetchone()
        stubs: set[int] = set()
        for seq, mid, nonce, ciphertext, stored_hash in rows:
            decrypted = self._decrypt(seq, mid, nonce, ciphertext)
            if isinstance(decrypted, str):
                # Unreadable: said once; its stored hash stands in for it in the chain, so the
                # records around it are still checked.
                problems.append(decrypted)
                stubs.add(seq)
                readable.append({"sequence": seq, "hash": stored_hash, "prev_hash": None})
                continue
            if stored_hash != decrypted.get("hash") or (
                decrypted.get("hash") != record_hash(decrypted)
            ):
                problems.append(f"record {seq}: its content does not match its hash (edited)")
            readable.append(decrypted)
        problems += [
            p for p in verify_chain(readable)
            if "(edited)" not in p and not any(p.startswith(f"record {s}:") for s in stubs)
        ]
        last = readable[-1] if readable else None
        if head is not None and (last is None or last.get("sequence") != head[0]):
            seq = None if last is None else last.get("sequence")
            after = seq if isinstance(seq, int) else 0
            gone = f"{after + 1}" if after + 1 == head[0] else f"{after + 1}-{head[0]}"
            problems.append(f"record(s) {gone} missing at the end (removed): the chain's head "
                            f"says {head[0]} records")
        elif head is not None and last is not None and last.get("hash") != head[1]:
            problems.append(f"record {head[0]}: not the record the chain's head names (replaced)")
        elif head is None and readable:
            problems.append("the chain's head is missing (removed)")
        return sorted(set(problems), key=problems.index)

    def export(self, *, since: datetime | None = None,
               patient: str | None = None) -> Iterator[dict[str, Any]]:
        """Readable records at or after `since` about `patient` (an MRN or appointment id)."""
        for record in self.records():
            if isinstance(record, str):
                continue
            if since is not None and datetime.fromisoformat(str(record["at"])) < since:
                continue
            if patient is not None and patient not in (record.get("mrn"),
                                                       record.get("appointment_id")):
                continue
            yield record


def verify_file(lines: Iterable[str]) -> list[str]:
    """`station audit verify FILE`: a JSON-lines copy of the chain (an export of every record,
    or the practice system's copy), starting wherever the first record says."""
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
                continue
        problems.append(f"line {number}: not a JSON record")
    def order(record: dict[str, Any]) -> int:
        seq = record.get("sequence")
        return seq if isinstance(seq, int) else 0

    records.sort(key=order)
    if records:
        first = records[0]
        seq = first.get("sequence")
        start = seq if isinstance(seq, int) else 1
        prev = first.get("prev_hash") if start > 1 else GENESIS_HASH
        problems += verify_chain(records, first_sequence=start,
                                 first_prev_hash=prev if isinstance(prev, str) else GENESIS_HASH)
    return problems
