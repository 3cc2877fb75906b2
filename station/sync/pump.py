"""The outbox pump: keeps a window of queued rows in flight to the broker and records each
PUBACK, so a row leaves the send queue only when the broker has it; a delivered message the
practice system has not acknowledged in time is published again (same message id).

Owned by the link's worker thread, except `on_publish` (paho's thread: one atomic deque
append) and the committer thread, which records PUBACKs in one transaction per batch so the
sending never waits for an fsync. Works against any client with paho's `publish(topic, body,
qos, retain=...) -> info(rc, mid)`, which is how the tests drive it without a broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from station.sync.connection import QOS
from station.sync.outbox import Outbox

log = logging.getLogger("station.sync.mqtt")

COMMIT_BACKLOG_WINDOWS = 4  # PUBACKed-but-not-yet-recorded rows allowed, in windows
COMMIT_GATHER_S = 0.01  # at most this long spent gathering a window of PUBACKs per commit
# Overwriting a delivered 15 kB row costs more than sending it, so it waits until no PUBACK
# has come for this long, and goes in batches small enough not to delay an MA's "saved".
PURGE_AFTER_IDLE_S = 0.2
PURGE_BATCH = 64
# PUBACKs handed to the worker per wake-up (fewer when that is all that is in flight): the
# window refills a batch at a time instead of one slot per PUBACK.
ACK_BATCH = 16
# How often the worker asks the outbox for delivered messages whose ack is overdue.
RESEND_CHECK_S = 1.0
# A PUBACK reason code that means the broker's ACL said no (MQTT 5, 3.2.2.2: 0x87).
NOT_AUTHORIZED = 0x87


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int, *, retain: bool) -> Any: ...


class OutboxPump:
    def __init__(
        self,
        outbox: Outbox,
        window: int,
        *,
        wake: Callable[[], None],
        acks_ready: Callable[[], None],
    ) -> None:
        """`wake` asks the worker to fill the window again; `acks_ready` tells it a batch of
        PUBACKs is waiting (both put an event on the worker's queue)."""
        self._outbox = outbox
        # QoS 1 messages awaiting PUBACK, at most; 100 is what deploy/mosquitto grants
        # (max_inflight_messages, sent as MQTT 5 Receive Maximum). A broker that grants
        # fewer lowers it for that connection (`send_window`): paho does not.
        self.window = window
        self.send_window = window
        self._wake = wake
        self._acks_ready = acks_ready
        # PUBACKs from paho's thread: deque appends and pops are atomic, so no lock; the
        # flag says an "acks ready" event is already on its way to the worker.
        self._acks: deque[tuple[int, ReasonCode]] = deque()
        self._acks_signalled = False
        # Worker-thread state. Message ids as the outbox's stored text (`Outbox.window`):
        # no UUID objects built, hashed or formatted per message on the sending path.
        self._inflight: dict[int, str] = {}  # paho mid -> message id awaiting PUBACK
        self._inflight_ids: set[str] = set()
        self._refused: set[str] = set()  # broker said no (ACL); retried on the next connect
        # PUBACKed, delivery not yet committed: handed to the committer thread, which
        # records them in one transaction per batch while the worker keeps sending.
        # Guarded by `_commit_cond`; not resent meanwhile.
        self._acked: set[str] = set()
        self._to_commit: list[str] = []
        self._commit_cond = threading.Condition()
        self._committer: threading.Thread | None = None
        self._committer_stop = False
        # Rows read from the outbox (in send order) but not yet handed to paho: one read
        # per window of messages instead of one per PUBACK. A cache only; the rows stay in
        # the database until their PUBACK. (seq, message id, topic, payload, retain)
        self._ahead: deque[tuple[int, str, str, bytes, bool]] = deque()
        self._after_seq = 0  # the last seq read into `_ahead`
        self.delivered_count = 0  # PUBACKs recorded, for status and the benchmark
        self.resent_count = 0  # messages published again for want of the practice's ack
        self._resend_checked = 0.0
        # The broker's last refusal of a message (a PUBACK reason code), for staff.
        self.refusal: ReasonCode | None = None
        self._commit_failing = False

    # ---- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._committer_stop = False
        self._committer = threading.Thread(
            target=self._commit_loop, name="mqtt-outbox-commit", daemon=True
        )
        self._committer.start()

    def stop(self, timeout_s: float) -> None:
        """After the worker has stopped (it may have handed over a last batch of PUBACKs)."""
        with self._commit_cond:
            self._committer_stop = True
            self._commit_cond.notify()
        if self._committer is not None:
            self._committer.join(timeout_s)

    def new_connection(self, granted: int | None) -> None:
        """A fresh connection: resend everything still queued that paho does not hold, in a
        window the broker's Receive Maximum allows (one slot kept for status messages)."""
        granted_slots = granted if isinstance(granted, int) else self.window + 1
        self.send_window = max(1, min(self.window, granted_slots - 1))
        self._ahead.clear()
        self._after_seq = 0
        self._refused.clear()

    def forget_client(self) -> None:
        """The client is replaced (protocol fallback): nothing it held is in flight."""
        self._inflight.clear()
        self._inflight_ids.clear()
        self._ahead.clear()
        self._after_seq = 0

    # ---- sending (worker thread) -------------------------------------------------------------

    @property
    def awaiting_puback(self) -> int:
        """Messages handed to the broker whose PUBACK has not come back (len() is atomic)."""
        return len(self._inflight)

    @property
    def idle(self) -> bool:
        return not self._inflight and not self.uncommitted()

    def fill(self, client: Publisher, connected: Callable[[], bool]) -> None:
        # Backpressure: when recording PUBACKs falls behind by more than a few windows, wait
        # for the committer (it wakes this worker) instead of piling up rows the broker has.
        if self.uncommitted() >= COMMIT_BACKLOG_WINDOWS * self.window:
            return
        while connected() and len(self._inflight) < self.send_window:
            if not self._ahead:
                rows = self._outbox.window(self.window, self._after_seq)
                if not rows:
                    self._resend_overdue(client, connected)
                    return
                self._after_seq = rows[-1][0]
                # Skip what is in flight, refused or acked-not-yet-recorded (re-read after a
                # reconnect), once per read under one lock, not per row: a row outside those
                # sets now cannot enter them before this thread publishes it (only its own
                # PUBACK would put it there).
                inflight, refused = self._inflight_ids, self._refused
                with self._commit_cond:
                    acked = self._acked
                    self._ahead.extend(
                        row
                        for row in rows
                        if row[1] not in inflight and row[1] not in refused and row[1] not in acked
                    )
                continue
            row = self._ahead.popleft()
            _, message_id, row_topic, body, retain = row
            info = client.publish(row_topic, body, QOS, retain=retain)
            # NO_CONN still queues it in paho, which sends it on reconnect.
            if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                log.warning(
                    "publish of %s not accepted by paho (rc %s); retried later",
                    message_id,
                    info.rc,
                )
                self._ahead.appendleft(row)  # first in line again: order is kept
                return
            self._inflight[info.mid] = message_id
            self._inflight_ids.add(message_id)

    def _resend_overdue(self, client: Publisher, connected: Callable[[], bool]) -> None:
        """With the queue empty: publish again what the practice system has not acknowledged
        in time (the outbox's AckPolicy), the same bytes under the same message id."""
        now = time.monotonic()
        if now - self._resend_checked < RESEND_CHECK_S:
            return
        self._resend_checked = now
        room = self.send_window - len(self._inflight)
        rows = [r for r in self._outbox.due_for_resend(room) if r[1] not in self._inflight_ids]
        if not rows:
            return
        self._outbox.resent(*(row[1] for row in rows))
        for _, message_id, row_topic, body, retain in rows:
            if not connected():
                return  # stays due: sent at the next connection
            info = client.publish(row_topic, body, QOS, retain=retain)
            if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                return
            self._inflight[info.mid] = message_id
            self._inflight_ids.add(message_id)
            self.resent_count += 1
        log.warning("%d delivered messages not acknowledged by the practice system in time; "
                    "published again", len(rows))

    # ---- PUBACKs -------------------------------------------------------------------------

    def on_publish(self, mid: int, reason_code: ReasonCode) -> None:
        """paho's thread: one append per PUBACK and one wake-up per batch (a Queue.put per
        PUBACK cost more than the sending)."""
        self._acks.append((mid, reason_code))
        if not self._acks_signalled and self.acks_due():
            self._acks_signalled = True
            self._acks_ready()

    def acks_due(self) -> bool:
        """A batch of PUBACKs is waiting, or every row in flight is acked (no more will
        come to fill the batch). Read on both threads; len() of a deque/dict is atomic."""
        return len(self._acks) >= min(ACK_BATCH, len(self._inflight))

    def acks_waiting(self) -> bool:
        return bool(self._acks) and self.acks_due()

    def record_acks(self) -> None:
        """Take every PUBACK waiting; the delivered ones go to the committer."""
        # Clear the flag before draining: a PUBACK appended after this is either drained
        # now or signalled anew (at worst one spare wake-up), never left behind.
        self._acks_signalled = False
        delivered: list[str] = []
        while self._acks:
            mid, reason_code = self._acks.popleft()
            message_id = self._inflight.pop(mid, None)
            if message_id is None:
                continue  # a status or lookup message; nothing queued to remove
            self._inflight_ids.discard(message_id)
            if reason_code.is_failure:
                # Kept in the outbox: a refused message is not a delivered one (ACL, quota).
                self._refused.add(message_id)
                self.refusal = reason_code
                log.error(
                    "broker refused message %s (%s); kept in the outbox", message_id, reason_code
                )
                continue
            delivered.append(message_id)
            self.refusal = None
        if delivered:
            with self._commit_cond:
                self._acked.update(delivered)
                self._to_commit.extend(delivered)
                self._commit_cond.notify()

    def uncommitted(self) -> int:
        with self._commit_cond:
            return len(self._acked)

    # ---- the committer thread ------------------------------------------------------------

    def _commit_loop(self) -> None:
        """Record PUBACKs, everything waiting in one transaction (the longer an fsync takes,
        the more PUBACKs the next one covers). On an outbox error the ids are kept and
        retried; at stop, one last try, then they are left to be resent on the next start
        (at least once, never lost). When no PUBACK has come for a while, it overwrites
        delivered rows (`Outbox.purge`), a small batch at a time."""
        purge_due = True  # rows delivered before a restart are purged too
        purging = False  # purge batches back to back until a PUBACK comes
        while True:
            with self._commit_cond:
                if not self._to_commit and not self._committer_stop:
                    wait_s = None if not purge_due else 0.0 if purging else PURGE_AFTER_IDLE_S
                    self._commit_cond.wait(wait_s)
                if self._committer_stop and not self._to_commit:
                    return
                batch = self._gather()
            if batch:
                if not self._commit(batch):
                    if self._committer_stop:
                        return
                    continue
                purging, purge_due = False, True
                self._wake()  # room for more if the worker held back
                continue
            try:
                purge_due = purging = self._outbox.purge(PURGE_BATCH) == PURGE_BATCH
            except Exception as exc:
                log.error("MQTT outbox: acknowledged rows not purged yet (%s); retrying", exc)
                purging = False
                with self._commit_cond:
                    self._commit_cond.wait(0.5)

    def _gather(self) -> list[str]:
        """With the lock held: while PUBACKs stream in, gather up to a window of them. A
        commit's cost is mostly the index pages it rewrites, so 160 ids in one transaction
        cost half the CPU per id of 40. A short wait: the rows stay queued (and would be
        resent) until this commit, so only the bookkeeping waits."""
        deadline = time.monotonic() + COMMIT_GATHER_S
        while self._to_commit and len(self._to_commit) < self.window and not self._committer_stop:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._commit_cond.wait(left)
        batch, self._to_commit = self._to_commit, []
        return batch

    def _commit(self, batch: list[str]) -> bool:
        try:
            self._outbox.delivered(*batch)
        except Exception as exc:
            # Said once per failure, not every retry (a full disk is a state, not news).
            if not self._commit_failing:
                log.error("MQTT outbox: %d deliveries not recorded yet (%s); retrying every "
                          "0.5 s, they stay queued meanwhile", len(batch), exc)
            self._commit_failing = True
            with self._commit_cond:
                if not self._committer_stop:
                    self._to_commit[:0] = batch
                    self._commit_cond.wait(0.5)
            return False
        if self._commit_failing:
            log.warning("MQTT outbox: deliveries are recorded again")
            self._commit_failing = False
        with self._commit_cond:
            self._acked.difference_update(batch)
        self.delivered_count += len(batch)
        return True
