"""The serial link: one device on one serial port, read with pyserial into a stream decoder.

    link = SerialLink(profile, on_event)       # on_event(Reading | BadFrame | event | LinkStatus)
    link.start(); ...; link.send_command("start"); ...; link.stop()

The link finds the port by stable identity (an explicit path such as /dev/serial/by-id/...,
the profile's by-id glob, or its USB vendor:product via serial.tools.list_ports), applies the
profile's line settings, sends its init commands, polls when the protocol needs it, answers
device events the profile lists (e.g. SunTech "measurement complete" -> get BP data), and feeds
every byte to the codec's stream decoder. When the port goes away (unplug) it reports
`disconnected` and reopens with exponential backoff. A stream of nothing but damaged frames is
reported once as `garbled` (usually a wrong baud rate or parity).

`on_event` runs on the link's thread: hand readings over to the UI loop, never touch widgets.
Transport exceptions are caught here, at the edge, and reported as `SerialLinkError` (chained).
"""

from __future__ import annotations

import fnmatch
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import serial
from pydantic import BaseModel, ConfigDict
from serial.tools import list_ports

from station.devices.codecs.base import BadFrame, StreamCodec, StreamEvent
from station.devices.codecs.registry import get_codec
from station.devices.codecs.serial.events import DeviceEvent
from station.devices.profiles import FirmwareProfile, FlowControl, LineSettings, Parity
from station.errors import StationError
from station.models import AnyReading, Mode

log = logging.getLogger(__name__)

BY_ID_DIR = Path("/dev/serial/by-id")
# Damaged frames in a row, with no good one since connecting, before the line is called garbled.
GARBLED_AFTER = 12

PARITY = {
    Parity.NONE: serial.PARITY_NONE,
    Parity.EVEN: serial.PARITY_EVEN,
    Parity.ODD: serial.PARITY_ODD,
    Parity.MARK: serial.PARITY_MARK,
    Parity.SPACE: serial.PARITY_SPACE,
}


class SerialLinkError(StationError):
    """The port could not be found, opened, read or written; the cause is chained."""


class LinkState(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # not found, unplugged, or failed: retrying with backoff
    GARBLED = "garbled"  # connected, but nothing decodes: check baud rate and parity
    STOPPED = "stopped"


class LinkStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event: Literal["link_status"] = "link_status"
    profile_id: str
    state: LinkState
    port: str = ""
    detail: str = ""


LinkEvent = StreamEvent | LinkStatus
EventCallback = Callable[[LinkEvent], None]
PortLister = Callable[[], Iterable[Any]]


def serial_kwargs(line: LineSettings) -> dict[str, Any]:
    """The profile's line settings as pyserial keyword arguments."""
    return {
        "baudrate": line.baud,
        "bytesize": line.data_bits,
        "parity": PARITY[line.parity],
        "stopbits": line.stop_bits,
        "rtscts": line.flow_control == FlowControl.RTSCTS,
        "xonxoff": line.flow_control == FlowControl.XONXOFF,
    }


def find_port(
    profile: FirmwareProfile,
    explicit: str | None = None,
    *,
    by_id_dir: Path = BY_ID_DIR,
    list_ports_fn: PortLister = list_ports.comports,
) -> str:
    """The port of a profile's device: explicit path, else by-id glob, else USB vendor:product."""
    section = profile.serial
    if section is None:
        raise SerialLinkError(f"{profile.id} is not a serial profile")
    if explicit:
        if Path(explicit).exists():
            return explicit
        raise SerialLinkError(f"{explicit}: no such port (unplugged?)")
    looked: list[str] = []
    if section.by_id_pattern:
        looked.append(f"{by_id_dir}/{section.by_id_pattern}")
        if by_id_dir.is_dir():
            names = sorted(p.name for p in by_id_dir.iterdir())
            for name in fnmatch.filter(names, section.by_id_pattern):
                return str(by_id_dir / name)
    if section.usb:
        wanted = {(int(u.vendor_id, 16), int(u.product_id, 16)) for u in section.usb}
        looked.append("USB " + ", ".join(f"{u.vendor_id}:{u.product_id}" for u in section.usb))
        for info in sorted(list_ports_fn(), key=lambda p: str(p.device)):
            if (info.vid, info.pid) in wanted:
                return str(info.device)
    raise SerialLinkError(f"no port found for {profile.id}: looked for {'; '.join(looked)}")


class PortSeen(BaseModel):
    """A serial port that is plugged in, with the serial profiles that would match it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str  # the stable /dev/serial/by-id name when there is one, else the device node
    device: str  # what it points at, e.g. /dev/ttyUSB0
    usb: str | None = None  # "vendor:product" as lsusb prints it
    description: str = ""
    profiles: tuple[str, ...] = ()


def _literal_length(pattern: str) -> int:
    return sum(1 for ch in pattern if ch not in "*?[]")


def scan_ports(
    profiles: Iterable[FirmwareProfile],
    *,
    by_id_dir: Path = BY_ID_DIR,
    list_ports_fn: PortLister = list_ports.comports,
) -> list[PortSeen]:
    """Plugged-in serial ports (by-id names first, then USB ports without one) and, for each,
    the serial profiles whose by-id glob or USB vendor:product match, most specific first."""
    serial_profiles = [p for p in profiles if p.serial is not None]
    usb_info: dict[str, Any] = {}
    for info in list_ports_fn():
        if info.vid is not None:
            usb_info[str(Path(info.device).resolve())] = info
    entries: list[tuple[str, str]] = []
    if by_id_dir.is_dir():
        for link in sorted(by_id_dir.iterdir()):
            if link.exists():  # a dangling name: the device was just unplugged
                entries.append((str(link), str(link.resolve())))
    named = {device for _, device in entries}
    entries.extend((device, device) for device in sorted(usb_info) if device not in named)
    seen: list[PortSeen] = []
    for path, device in entries:
        info = usb_info.get(device)
        vid_pid = None if info is None else f"{info.vid:04x}:{info.pid:04x}"
        scored: list[tuple[int, str]] = []
        for profile in serial_profiles:
            section = profile.serial
            assert section is not None
            pattern = section.by_id_pattern
            in_by_id = path.startswith(f"{by_id_dir}/")
            if pattern and in_by_id and fnmatch.fnmatch(Path(path).name, pattern):
                scored.append((_literal_length(pattern), profile.id))
                continue
            if vid_pid and any(f"{u.vendor_id}:{u.product_id}" == vid_pid for u in section.usb):
                scored.append((0, profile.id))
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        seen.append(
            PortSeen(
                path=path,
                device=device,
                usb=vid_pid,
                description="" if info is None else str(info.description or ""),
                profiles=tuple(pid for _, pid in scored),
            )
        )
    return seen


def open_port(port: str, line: LineSettings, *, read_timeout_s: float = 0.02) -> serial.Serial:
    try:
        return serial.Serial(port, timeout=read_timeout_s, write_timeout=1.0, **serial_kwargs(line))
    except (serial.SerialException, OSError, ValueError) as exc:
        raise SerialLinkError(f"{port}: cannot open: {exc}") from exc


class SerialLink:
    """Reads one serial device in a background thread; see the module docstring."""

    def __init__(
        self,
        profile: FirmwareProfile,
        on_event: EventCallback,
        *,
        port: str | None = None,
        by_id_dir: Path = BY_ID_DIR,
        list_ports_fn: PortLister = list_ports.comports,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        read_timeout_s: float = 0.02,
        reading_mode: Mode = Mode.REAL,
    ) -> None:
        """`reading_mode` DEMO or TEST marks every reading (a simulator is not a patient)."""
        if profile.serial is None:
            raise ValueError(f"{profile.id} is not a serial profile")
        spec = get_codec(profile.codecs[0])
        if not isinstance(spec, StreamCodec):
            raise ValueError(f"{profile.codecs[0]} is not a stream codec")
        self.profile = profile
        self._section = profile.serial
        self._codec = spec
        self._on_event = on_event
        self._explicit_port = port
        self._by_id_dir = by_id_dir
        self._list_ports = list_ports_fn
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._read_timeout_s = read_timeout_s
        self._reading_mode = reading_mode
        self._outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = LinkState.STOPPED
        self._serial: serial.Serial | None = None
        self.port = ""  # the port in use, once found

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def line_settings(self) -> dict[str, Any]:
        """What pyserial has applied to the open port (empty when not connected)."""
        port = self._serial
        return {} if port is None else dict(port.get_settings())

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"serial-link-{self.profile.id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def send(self, data: bytes) -> None:
        """Queue bytes for the device (thread-safe); written as soon as the port is open."""
        self._outbox.put(bytes(data))

    def send_command(self, name: str) -> None:
        """Send one of the profile's named commands (e.g. "start"); KeyError names the known."""
        self.send(self._section.command(name))

    # The thread ------------------------------------------------------------------------------
    def _emit(self, event: LinkEvent) -> None:
        try:
            self._on_event(event)
        except Exception as exc:  # a bad callback must not stop the link
            log.error(
                "serial link %s: event callback raised %s", self.profile.id, type(exc).__name__
            )

    def _status(self, state: LinkState, detail: str = "") -> None:
        if state == self._state and state != LinkState.DISCONNECTED:
            return
        self._state = state
        self._emit(
            LinkStatus(profile_id=self.profile.id, state=state, port=self.port, detail=detail)
        )

    def _run(self) -> None:
        backoff, backoff_max = self._backoff
        delay = backoff
        last_error = ""
        while not self._stop.is_set():
            try:
                self.port = find_port(
                    self.profile,
                    self._explicit_port,
                    by_id_dir=self._by_id_dir,
                    list_ports_fn=self._list_ports,
                )
                self._serial = open_port(
                    self.port, self._section.line, read_timeout_s=self._read_timeout_s
                )
            except SerialLinkError as exc:
                if str(exc) != last_error:  # report each new reason once, not every retry
                    last_error = str(exc)
                    self._status(LinkState.DISCONNECTED, str(exc))
                self._stop.wait(delay)
                delay = min(delay * 2, backoff_max)
                continue
            delay, last_error = backoff, ""
            try:
                self._status(LinkState.CONNECTED)
                self._session(self._serial)
            except SerialLinkError as exc:
                last_error = str(exc)
                self._status(LinkState.DISCONNECTED, str(exc))
                self._stop.wait(delay)
            finally:
                port, self._serial = self._serial, None
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    log.debug("serial link %s: close failed after unplug", self.profile.id)
        self._status(LinkState.STOPPED)

    def _write(self, port: serial.Serial, data: bytes) -> None:
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise SerialLinkError(f"{self.port}: write failed: {exc}") from exc

    def _marked(self, event: StreamEvent) -> StreamEvent:
        if self._reading_mode != Mode.REAL and isinstance(event, AnyReading):
            return event.model_copy(update={"mode": self._reading_mode})
        return event

    def _session(self, port: serial.Serial) -> None:
        """One connection, from open to unplug (SerialLinkError) or stop."""
        decoder = self._codec.new_decoder()
        for command in self._section.init_commands:
            self._write(port, command)
        poll = self._section.poll
        cycle = [] if poll is None else poll.cycle
        next_poll, turn = time.monotonic(), 0
        bad_in_a_row = 0
        good_seen = False
        while not self._stop.is_set():
            while not self._outbox.empty():
                self._write(port, self._outbox.get_nowait())
            if poll is not None and time.monotonic() >= next_poll:
                self._write(port, cycle[turn])
                turn = (turn + 1) % len(cycle)
                next_poll = max(next_poll + poll.interval_s / len(cycle), time.monotonic())
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise SerialLinkError(f"{self.port}: read failed (unplugged?): {exc}") from exc
            if not data:
                continue
            for event in decoder.feed(data):
                if isinstance(event, BadFrame):
                    bad_in_a_row += 1
                    if bad_in_a_row >= GARBLED_AFTER and not good_seen:
                        self._status(
                            LinkState.GARBLED,
                            f"{bad_in_a_row} damaged frames and no valid one: check the baud "
                            f"rate ({self._section.line.baud}), parity and data bits on the "
                            "device against the profile",
                        )
                else:
                    bad_in_a_row, good_seen = 0, True
                    if self._state == LinkState.GARBLED:
                        self._status(LinkState.CONNECTED)
                self._emit(self._marked(event))
                if isinstance(event, DeviceEvent):
                    reply = self._section.event_reply(event.code)
                    if reply is not None:
                        self._write(port, reply)
