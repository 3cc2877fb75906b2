"""The PIN lockout: a per-role count of wrong tries with growing waits, kept across restarts.

Every PIN path of a station (the exam sign-in keypad and its badge reader, the lobby's staff
PIN field, the biomed PIN wherever it is typed, `station audit export`) goes through one
`PinLockout`. Each role has its own count, so a patient guessing MA PINs never locks biomed
staff out. The policy (docs/deploy-pi.md):

- five wrong tries in a row are free (a mistyped PIN is not an attack);
- each wrong try after that locks the role: 30 s for the MA and staff keypads, 300 s for
  biomed, doubled at every further wrong try, up to an hour;
- a right PIN clears the count; a try while locked is refused without being checked;
- a try is counted (and stored) before the PIN is checked, so killing or restarting the station
  mid-check, or between tries, gains nothing: the count lives in the state directory.

Pure: time comes from the clock passed in; storage is a `LockoutStore` handed in (the
composition root's is a file in the state directory, station.app.lockout_store).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from station.audit import UNKNOWN, AuditAction, AuditTrail

T = TypeVar("T")


class Role(StrEnum):
    MA = "ma"  # the exam station's sign-in keypad and badge reader
    STAFF = "staff"  # the lobby kiosk's staff PIN
    BIOMED = "biomed"  # the biomed PIN, on either keypad, and `station audit export`


@dataclass(frozen=True)
class LockoutPolicy:
    """Wrong tries allowed in a row, then a wait that doubles at every further wrong try."""

    free_tries: int = 5
    first_wait_s: float = 30.0
    max_wait_s: float = 3600.0

    def wait_s(self, failures: int) -> float:
        """How long the role waits after its `failures`-th wrong try in a row."""
        if failures < self.free_tries:
            return 0.0
        doublings = min(failures - self.free_tries, 32)  # 2**32 * 30 s is far past the cap
        return float(min(self.first_wait_s * 2**doublings, self.max_wait_s))


# Biomed reaches bindings, settings and the audit export: a longer first wait (it was five
# minutes before this policy, and a technician rarely mistypes twice).
POLICIES: Mapping[Role, LockoutPolicy] = {
    Role.MA: LockoutPolicy(),
    Role.STAFF: LockoutPolicy(),
    Role.BIOMED: LockoutPolicy(first_wait_s=300.0),
}


class RoleState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    failures: int = 0  # wrong tries in a row (a try being checked counts already)
    locked_until: datetime | None = None


class LockoutStore(Protocol):
    """Where the counts live between tries and across restarts."""

    def load(self) -> dict[Role, RoleState]: ...

    def save(self, states: Mapping[Role, RoleState]) -> None: ...


class MemoryLockoutStore:
    """For a workflow made without a station (tests, `station ui`'s demo)."""

    def __init__(self) -> None:
        self.states: dict[Role, RoleState] = {}

    def load(self) -> dict[Role, RoleState]:
        return dict(self.states)

    def save(self, states: Mapping[Role, RoleState]) -> None:
        self.states = dict(states)


class PinLockout:
    """The station's wrong-PIN counts per role; `try_pin` is the only way a PIN is checked."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        store: LockoutStore | None = None,
        *,
        audit: AuditTrail | None = None,
        policies: Mapping[Role, LockoutPolicy] = POLICIES,
    ) -> None:
        self._clock = clock
        self._store = store or MemoryLockoutStore()
        self.audit = audit if audit is not None else AuditTrail()
        self._policies = dict(policies)
        self._states = self._store.load()

    def state(self, role: Role) -> RoleState:
        # Read again each time: `station credentials unlock` and `station audit export` (other
        # processes) share the counts with the running station.
        self._states = self._store.load()
        return self._states.get(role, RoleState())

    def wait_s(self, role: Role) -> int:
        """Whole seconds until `role` may try again (rounded up); 0 when it may now."""
        until = self.state(role).locked_until
        if until is None:
            return 0
        left = (until - self._clock()).total_seconds()
        if left <= 0:
            return 0
        whole = int(left)
        return whole if whole == left else whole + 1

    def _set(self, role: Role, state: RoleState) -> None:
        self._states = {**self._states, role: state}
        self._store.save(self._states)

    def try_pin(self, role: Role, check: Callable[[], T | None], *, keypad: str = "") -> T | None:
        """`check()`'s answer if `role` may try now and it is right; None otherwise.

        A locked role is refused without `check` being called. Otherwise the try is counted
        and stored first, then checked: right clears the count, wrong may lock the role (both
        recorded in the audit, with the role, never what was typed)."""
        if self.wait_s(role):
            return None
        before = self.state(role)
        counted = RoleState(failures=before.failures + 1, locked_until=before.locked_until)
        self._set(role, counted)
        answer = check()
        if answer is not None:
            self._set(role, RoleState())
            return answer
        now = self._clock()
        where = f"role={role.value}" + (f" keypad={keypad}" if keypad else "")
        self.audit.record(now, UNKNOWN, AuditAction.SIGN_IN_FAILED,
                          detail=f"{where} try={counted.failures}")
        wait = self._policies.get(role, LockoutPolicy()).wait_s(counted.failures)
        if wait > 0:
            self._set(role, RoleState(failures=counted.failures,
                                      locked_until=now + timedelta(seconds=wait)))
            self.audit.record(now, UNKNOWN, AuditAction.LOCKED_OUT,
                              detail=f"{where} wait_s={wait:g}")
        return None

    def clear(self, role: Role) -> None:
        """An administrator's reset (`station credentials unlock`)."""
        self._set(role, RoleState())


def plain_matcher(secret: str) -> Callable[[str], bool]:
    """A PIN compared in constant time (tests and the demo; the station hashes, see
    station.app.credentials)."""
    import hmac

    def matches(typed: str) -> bool:
        return hmac.compare_digest(typed.encode(), secret.encode())

    return matches


def plain_ma_matcher(table: Mapping[str, str]) -> Callable[[str], str | None]:
    """Badge id or PIN -> MA id from a plain table (tests and the demo), every entry compared
    in constant time so the time taken does not say which one nearly matched."""
    import hmac

    entries = [(k.encode(), v) for k, v in table.items()]

    def match(typed: str) -> str | None:
        raw, found = typed.encode(), None
        for key, ma_id in entries:
            if hmac.compare_digest(raw, key) and found is None:
                found = ma_id
        return found

    return match
