"""The sd_notify client and the watchdog, against a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.sdnotify import Notifier, Watchdog, socket_address, watchdog_interval_s


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_sends_one_datagram_with_pid_and_status(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": path})
    assert notifier.ready("rooming   exam-3\nidle") is True
    assert received(sock) == ["READY=1", f"MAINPID={os.getpid()}", "STATUS=rooming exam-3 idle"]
    assert notifier.stopping() is True
    assert received(sock) == ["STOPPING=1"]
    assert notifier.extend_timeout(2.5) is True
    assert received(sock) == ["EXTEND_TIMEOUT_USEC=2500000"]
    assert (notifier.sent, notifier.failed) == (3, 0)


def test_abstract_namespace_socket() -> None:
    name = f"station-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": "@" + name})
        assert notifier.address == "\0" + name
        assert notifier.watchdog() is True
        assert received(sock) == ["WATCHDOG=1"]


def test_no_socket_is_a_quiet_no_op() -> None:
    for env in (
        {},
        {"NOTIFY_SOCKET": ""},
        {"NOTIFY_SOCKET": "relative/path"},
        {"NOTIFY_SOCKET": "@"},
    ):
        notifier = Notifier.from_environment(env)
        assert notifier.enabled is False
        assert notifier.ready() is False


def test_unreachable_socket_counts_a_failure_and_does_not_raise(tmp_path: Path) -> None:
    notifier = Notifier(socket_address(str(tmp_path / "nobody-listens")))
    assert notifier.watchdog() is False
    assert (notifier.sent, notifier.failed) == (0, 1)


def test_a_line_with_a_newline_is_refused(notify_socket: tuple[socket.socket, str]) -> None:
    _, path = notify_socket
    with pytest.raises(ValueError, match="one KEY=value line"):
        Notifier(path).notify("STATUS=a\nREADY=1")


def test_watchdog_interval_from_environment() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "20000000"}) == 20.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "41"}, pid=41) == 3.0
    # The variables were inherited by a child: the watchdog is the parent's, not ours.
    assert watchdog_interval_s({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "41"}, pid=42) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval_s({}) is None


def test_watchdog_pings_at_half_the_interval(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    dog = Watchdog(Notifier(path), interval_s=10.0)
    assert dog.feed_every_s == 5.0
    pinged = [now for now in (100.0, 101.0, 104.9, 105.0, 109.0, 110.0, 111.0) if dog.tick(now)]
    assert pinged == [100.0, 105.0, 110.0]
    assert [received(sock) for _ in pinged] == [["WATCHDOG=1"]] * 3


def test_watchdog_without_systemd_never_pings() -> None:
    assert Watchdog(Notifier(None), interval_s=10.0).tick(0.0) is False
    dog = Watchdog.from_environment(Notifier("/run/x"), {})
    assert (dog.enabled, dog.tick(0.0)) == (False, False)
    with pytest.raises(ValueError, match="positive"):
        Watchdog(Notifier(None), interval_s=0)
