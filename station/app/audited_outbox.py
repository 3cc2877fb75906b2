"""The durable outbox, telling the audit trail when a message was delivered or resent.

The sync layer records PUBACKs (`delivered`) and resends (`resent`) in the outbox on its MQTT
threads; this subclass passes the ids on, after they are committed, to the composition root,
which audits the ones that are submissions (`submission_sent`, `submission_resent`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

from station.audit import AuditAction
from station.sync.outbox import Outbox

log = logging.getLogger(__name__)

Watcher = Callable[[AuditAction, tuple[str, ...]], None]


class AuditedOutbox(Outbox):
    _watcher: Watcher | None = None

    def watch(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def _tell(self, action: AuditAction, message_ids: tuple[str, ...]) -> None:
        if self._watcher is None or not message_ids:
            return
        try:
            self._watcher(action, message_ids)
        except Exception:
            # The delivery is recorded whatever happens here; the audit store says why it
            # failed (a full disk is reported by the outbox too).
            log.exception("audit of %d delivered/resent message(s) failed", len(message_ids))

    def delivered(self, *message_ids: UUID | str) -> None:
        super().delivered(*message_ids)
        self._tell(AuditAction.SUBMISSION_SENT, tuple(str(m) for m in message_ids))

    def resent(self, *message_ids: str) -> None:
        super().resent(*message_ids)
        self._tell(AuditAction.SUBMISSION_RESENT, tuple(message_ids))
