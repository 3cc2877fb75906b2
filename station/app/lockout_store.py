"""The PIN lockout's counts in the state directory (`lockout.json`), so a restart clears none.

Written whole or not at all (a temporary file synced, renamed, the directory synced) before a
PIN is checked (station.lockout counts a try first). No PIN, badge id or person in it: a role,
its count of wrong tries in a row, and until when it waits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from station.lockout import POLICIES, Role, RoleState

log = logging.getLogger(__name__)

LOCKOUT_FILE = "lockout.json"


class FileLockoutStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[Role, RoleState]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {
                Role(name): RoleState(
                    failures=int(state["failures"]),
                    locked_until=None
                    if state.get("locked_until") is None
                    else datetime.fromisoformat(state["locked_until"]),
                )
                for name, state in raw["roles"].items()
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Unreadable: fail closed. Every role starts one wrong try short of a lockout,
            # so damaging the file never buys an attacker fresh tries.
            log.error("PIN lockout file %s unreadable (%s); every keypad starts at its last "
                      "free try", self.path, type(exc).__name__)
            return {role: RoleState(failures=POLICIES[role].free_tries - 1) for role in Role}

    def save(self, states: Mapping[Role, RoleState]) -> None:
        body = {
            "version": 1,
            "roles": {
                role.value: {
                    "failures": state.failures,
                    "locked_until": None
                    if state.locked_until is None
                    else state.locked_until.isoformat(),
                }
                for role, state in sorted(states.items())
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
