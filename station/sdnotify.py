"""A small sd_notify client (READY, STATUS, STOPPING, WATCHDOG) and the watchdog the loop feeds.

The protocol is one datagram of newline-separated `KEY=value` lines sent to the AF_UNIX socket
named by $NOTIFY_SOCKET (a leading '@' means Linux's abstract namespace). Hand-written rather than
the `sdnotify` package: that one is unmaintained since 2017, and the protocol is twenty lines.
Sending never raises: a station that cannot reach systemd must keep rooming patients.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"

# systemd recommends pinging at half the WatchdogSec interval so one late tick is not fatal.
FEED_FRACTION = 0.5


def socket_address(name: str) -> str:
    """$NOTIFY_SOCKET -> the address `sendto` takes ('@x' is the abstract name '\\0x')."""
    if name.startswith("@"):
        return "\0" + name[1:]
    return name


@dataclass
class Notifier:
    """Sends notifications to systemd; without an address it does nothing (not under systemd)."""

    address: str | None
    sent: int = field(default=0, init=False)  # datagrams delivered; for diagnostics
    failed: int = field(default=0, init=False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Notifier:
        name = (os.environ if env is None else env).get(NOTIFY_SOCKET_ENV, "")
        # Only absolute paths and abstract names are valid; anything else is not systemd's.
        if name.startswith(("/", "@")) and len(name) > 1:
            return cls(socket_address(name))
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send `KEY=value` lines in one datagram; False when there is no socket or it failed."""
        if self.address is None or not assignments:
            return False
        for line in assignments:
            if "=" not in line or "\n" in line:
                raise ValueError(
                    f"a notification is one KEY=value line without newlines; got {line!r}"
                )
        payload = "\n".join(assignments).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, self.address)
        except OSError:
            self.failed += 1
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> bool:
        lines = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            lines.append(f"STATUS={_one_line(status)}")
        return self.notify(*lines)

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start-up time (e.g. while BlueZ comes up) instead of being killed."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={round(seconds * 1_000_000)}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def watchdog_interval_s(
    env: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """WatchdogSec as systemd passed it, or None when no watchdog applies to this process."""
    env = os.environ if env is None else env
    raw = env.get(WATCHDOG_USEC_ENV, "")
    if not raw.isdigit() or int(raw) == 0:
        return None
    owner = env.get(WATCHDOG_PID_ENV, "")
    # WATCHDOG_PID names the process systemd watches; a child that inherited the variable is not it.
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(raw) / 1_000_000


class Watchdog:
    """Fed by the main loop with the current monotonic time; pings systemd often enough.

    The feeding must come from the loop whose health it vouches for (the Kivy clock on the
    kiosk), never from a helper thread: a hung UI with a cheerful thread would defeat it.
    """

    def __init__(self, notifier: Notifier, interval_s: float | None) -> None:
        if interval_s is not None and interval_s <= 0:
            raise ValueError(f"watchdog interval must be positive seconds; got {interval_s}")
        self.notifier = notifier
        self.interval_s = interval_s
        self._last_fed_s: float | None = None

    @classmethod
    def from_environment(cls, notifier: Notifier, env: Mapping[str, str] | None = None) -> Watchdog:
        return cls(notifier, watchdog_interval_s(env))

    @property
    def enabled(self) -> bool:
        return self.interval_s is not None and self.notifier.enabled

    @property
    def feed_every_s(self) -> float | None:
        """How often the main loop should call `tick` (systemd's recommended half interval)."""
        return None if self.interval_s is None else self.interval_s * FEED_FRACTION

    def tick(self, now_s: float) -> bool:
        """Call from the main loop; pings when half the interval has passed. True if it pinged."""
        if not self.enabled or self.feed_every_s is None:
            return False
        if self._last_fed_s is not None and now_s - self._last_fed_s < self.feed_every_s:
            return False
        if self.notifier.watchdog():
            self._last_fed_s = now_s
            return True
        return False
