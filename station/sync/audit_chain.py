"""The audit trail's hash chain: sealing a record onto the chain, and checking a chain.

Pure: values in, values out. A record's `hash` is SHA-256 over its canonical JSON without the
`hash` field (keys sorted, no whitespace, UTF-8: RFC 8785 for a record whose only number is
the integer `sequence`); `prev_hash` is the hash of the record before it, 64 zeros for the
first. `verify_chain` reads records as plain JSON objects, so it checks the station's own
store, an export, or the practice system's copy alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from station.audit import AuditEvent
from station.sync.contract import AuditPayload

GENESIS_HASH = "0" * 64


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes the hash covers: the record without `hash`, keys sorted, compact, UTF-8."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def seal(
    event: AuditEvent,
    *,
    sequence: int,
    prev_hash: str,
    message_id: UUID,
    site: str,
    station_id: str,
    sent_at: datetime,
) -> AuditPayload:
    """`event` as the chain's record number `sequence`, after the record hashed `prev_hash`."""
    at = event.at if event.at.tzinfo is not None else event.at.astimezone()
    draft = AuditPayload(
        message_id=message_id,
        site=site,
        station_id=station_id,
        sent_at=sent_at,
        sequence=sequence,
        at=at,
        actor=event.actor,
        action=event.action,
        appointment_id=event.appointment_id,
        mrn=event.mrn,
        related_message_id=event.related_message_id,
        detail=event.detail,
        prev_hash=prev_hash,
        hash=GENESIS_HASH,  # replaced below: the hash covers everything else
    )
    body = draft.model_dump(mode="json", by_alias=True)
    return draft.model_copy(update={"hash": record_hash(body)})


def verify_chain(
    records: Iterable[Mapping[str, Any]], *, first_sequence: int = 1,
    first_prev_hash: str = GENESIS_HASH,
) -> list[str]:
    """What is wrong with a chain of records in order (empty: it holds).

    Checks each record's own hash (an edited record), that sequences run on without a gap
    (a removed one) and that each `prev_hash` names the record before (a removed, inserted or
    reordered one). A part of the chain is checked from `first_sequence` / `first_prev_hash`.
    """
    problems: list[str] = []
    expected_seq, expected_prev = first_sequence, first_prev_hash
    for record in records:
        seq = record.get("sequence")
        if not isinstance(seq, int):
            problems.append(f"a record without a sequence number (after {expected_seq - 1})")
            continue
        if record.get("hash") != record_hash(record):
            problems.append(f"record {seq}: its content does not match its hash (edited)")
        if seq != expected_seq:
            if seq > expected_seq:
                missing = f"{expected_seq}" if seq == expected_seq + 1 else (
                    f"{expected_seq}-{seq - 1}")
                problems.append(f"record(s) {missing} missing before record {seq} (removed)")
            else:
                problems.append(f"record {seq} out of order or repeated (expected {expected_seq})")
        if record.get("prev_hash") != expected_prev:
            problems.append(
                f"record {seq}: prev_hash does not match the record before it "
                "(a record was removed, inserted or edited)"
            )
        expected_seq = seq + 1
        hashed = record.get("hash")
        expected_prev = hashed if isinstance(hashed, str) else ""
    return problems
