"""`station devices scan|bind|unbind|list|test|log`: biomed's tools for the station's devices."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

from station.cli.common import add_command, fail
from station.config import BoundDevice
from station.errors import ConfigError

EXAMPLES = """\
  station devices scan --seconds 5              # BLE in range + serial plugged in, with profiles
  station devices scan --transport serial       # only the serial ports (no Bluetooth needed)
  station devices bind AA:BB:CC:DD:EE:01 --profile and-ua-651ble --id cuff
  station devices bind /dev/serial/by-id/usb-Nonin-if00 --profile nonin-xpod-3012lp --id ox
  station devices list
  station devices test cuff --seconds 60        # wait for one new reading: decoded + raw
  station devices log cuff                      # raw frames as they arrive (Ctrl-C to stop)
  station devices pair cuff                     # bond a passkey device once (types the passkey)
  station devices records cuff --fetch          # the device's stored records (RACP)
  station devices unbind cuff
The devices are the station's: [[devices]] in its settings file (--config, $STATION_CONFIG,
default /etc/station/station.toml) plus <state_dir>/bindings.json, where state_dir is
--state-dir, $STATION_STATE_DIR, the settings' [storage] state_dir, else /var/lib/station.
Only bound devices are ever read. `station run` reads the bindings when it starts: restart it
after a bind here (a bind on the biomed screen applies at once)."""

# A Bluetooth address, with ':' or '-' between the bytes (AA-BB-CC-DD-EE-08 is one too).
ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
# Hex groups joined by ':' or '-': meant as a Bluetooth address, whatever its length.
ADDRESS_LIKE = re.compile(r"^[0-9A-Fa-f]{1,4}([:-][0-9A-Fa-f]{1,4})+$")
DEFAULT_STATE_DIR = Path("/var/lib/station")


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "devices",
        summary="scan, bind, unbind, list, test and watch vital-sign devices (biomed)",
        description="Binds devices to this station (a cuff in the next room is never read) "
        "and helps troubleshoot them: what is in range, one test reading, the raw frames.",
        examples=EXAMPLES,
    )
    parser.add_argument("--state-dir", type=Path, metavar="DIR", help="where bindings.json lives")
    parser.add_argument(
        "--config", metavar="FILE", help="the station's settings file (as `station run`)"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    scan = actions.add_parser(
        "scan", help="list BLE devices in range and serial ports plugged in, with their profiles"
    )
    scan.add_argument("--seconds", type=float, default=5.0, help="how long to listen (5)")
    scan.add_argument(
        "--transport", choices=("all", "ble", "serial"), default="all", help="what to scan (all)"
    )
    scan.add_argument(
        "--by-id-dir",
        type=Path,
        default=Path("/dev/serial/by-id"),
        metavar="DIR",
        help="where the stable serial names are (/dev/serial/by-id)",
    )
    scan.set_defaults(func=run_scan)
    bind = actions.add_parser("bind", help="bind a device (BLE address or serial port)")
    bind.add_argument("target", metavar="ADDRESS-OR-PORT")
    bind.add_argument("--profile", required=True, metavar="ID", help="device profile id")
    bind.add_argument("--id", dest="device_id", metavar="ID", help="name on this station")
    bind.add_argument(
        "--not-plugged-in",
        action="store_true",
        help="bind a serial port that does not exist yet (the device is not plugged in)",
    )
    bind.add_argument(
        "--scan-seconds",
        type=float,
        default=3.0,
        metavar="S",
        help="listen this long for the device's advert to check the profile (3; 0: skip)",
    )
    bind.set_defaults(func=run_bind)
    unbind = actions.add_parser("unbind", help="unbind by id, address or port")
    unbind.add_argument("target", metavar="ID-ADDRESS-OR-PORT")
    unbind.set_defaults(func=run_unbind)
    lst = actions.add_parser("list", help="list the bound devices")
    lst.set_defaults(func=run_list)
    for name, func, text in (
        ("test", run_test, "wait for one reading; print it decoded and raw"),
        ("log", run_log, "print raw frames as they arrive"),
    ):
        cmd = actions.add_parser(name, help=text)
        cmd.add_argument("device_id", metavar="ID")
        cmd.add_argument("--seconds", type=float, default=60.0, help="give up after (60)")
        cmd.set_defaults(func=func)
    pair = actions.add_parser(
        "pair", help="bond a Bluetooth device once (asks for the passkey it shows)"
    )
    pair.add_argument("device_id", metavar="ID")
    pair.add_argument("--seconds", type=float, default=30.0, help="wait for its advert (30)")
    pair.set_defaults(func=run_pair)
    records = actions.add_parser(
        "records", help="a Bluetooth device's stored records (RACP): count, fetch or clear"
    )
    records.add_argument("device_id", metavar="ID")
    what = records.add_mutually_exclusive_group()
    what.add_argument("--fetch", action="store_true", help="print every stored record")
    what.add_argument("--clear", action="store_true", help="delete every stored record")
    records.add_argument("--seconds", type=float, default=30.0, help="give up after (30)")
    records.set_defaults(func=run_records)


def _settings(args: argparse.Namespace) -> Any:
    """The station's settings as `station run` reads them, or None when there is no file
    (and none was named). ConfigError for a bad one."""
    from station.config import config_path, load_settings

    explicit = getattr(args, "config", None)
    path = config_path(explicit)
    if not explicit and not path.exists():
        return None
    return load_settings(path)


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir:
        return Path(args.state_dir)
    if os.environ.get("STATION_STATE_DIR"):
        return Path(os.environ["STATION_STATE_DIR"])
    settings = _settings(args)
    if settings is not None:
        return Path(settings.storage.state_dir)
    return DEFAULT_STATE_DIR


def _store(args: argparse.Namespace) -> Any:
    from station.devices.bindings import BindingStore

    return BindingStore(_state_dir(args))


def _bound(args: argparse.Namespace) -> tuple[tuple[BoundDevice, str], ...]:
    """Every device the station reads, with where it is bound: the settings' [[devices]]
    win over bindings.json for the same id, exactly as `station run` merges them."""
    settings = _settings(args)
    found: dict[str, tuple[BoundDevice, str]] = {
        d.id: (d, "bindings.json") for d in _store(args).list()
    }
    for device in settings.devices if settings is not None else ():
        found[device.id] = (device, "station.toml")
    return tuple(found[k] for k in sorted(found))


def _address(target: str) -> str | None:
    """AA:BB:CC:DD:EE:FF from a Bluetooth address written with ':' or '-'; else None."""
    return target.upper().replace("-", ":") if ADDRESS.match(target) else None


def _profiles() -> Any:
    from station.devices.profiles import load_profiles

    return load_profiles()


def run_bind(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from station.config import describe_validation_error
    from station.devices.profiles import Transport

    address = _address(args.target)
    is_ble = address is not None
    if not is_ble and ADDRESS_LIKE.match(args.target):
        groups = len(re.split("[:-]", args.target))
        return fail(
            f"{args.target!r} is not a valid Bluetooth address ({groups} groups); expected six "
            "pairs of hex digits, like AA:BB:CC:DD:EE:FF (or AA-BB-CC-DD-EE-FF)"
        )
    if not is_ble and not args.target.startswith("/"):
        return fail(
            f"{args.target!r} is neither a Bluetooth address nor a serial port; expected "
            "AA:BB:CC:DD:EE:FF (or AA-BB-CC-DD-EE-FF) or a path such as "
            "/dev/serial/by-id/usb-...-if00"
        )
    wanted = Transport.BLE if is_ble else Transport.SERIAL
    try:
        profiles = _profiles()
    except ConfigError as exc:
        return fail(str(exc))
    profile = profiles.get(args.profile)
    if profile is None or profile.transport != wanted:
        what = "Bluetooth" if is_ble else "serial"
        known = ", ".join(sorted(p.id for p in profiles.values() if p.transport == wanted))
        return fail(f"unknown {what} profile {args.profile!r}; expected one of: {known}")
    if not is_ble and not args.not_plugged_in and not Path(args.target).exists():
        return fail(
            f"{args.target}: no such serial port (is the device plugged in? `station devices "
            "scan --transport serial` lists the ports there are); to bind it before it is "
            "plugged in, add --not-plugged-in"
        )
    device_id = args.device_id or args.profile
    try:
        device = BoundDevice(
            id=device_id,
            profile=args.profile,
            address=address,
            port=None if is_ble else args.target,
        )
    except ValidationError as exc:
        return fail("; ".join(describe_validation_error(exc)))
    try:
        _store(args).bind(device)
    except (ValueError, ConfigError) as exc:
        return fail(str(exc))
    print(f"bound {device.id}: {address or args.target} ({device.profile})")
    if address is not None and args.scan_seconds > 0:
        _check_advert(address, profile, profiles, args.scan_seconds)
    print(
        "`station run` reads the bindings when it starts: restart it to read this device "
        "(systemctl restart station); a bind on the biomed screen applies at once"
    )
    return 0


def _check_advert(address: str, profile: Any, profiles: Any, seconds: float) -> None:
    """Warn when the device's advert does not match the profile: it would never connect."""
    from bleak import BleakScanner
    from bleak.exc import BleakError

    from station.devices.profiles import match_profiles

    async def find() -> Any:
        found = await BleakScanner.discover(seconds, return_adv=True)
        return next((pair for d, pair in found.items() if d.upper() == address), None)

    try:
        seen = asyncio.run(find())
    except (BleakError, OSError) as exc:
        print(f"note: cannot scan Bluetooth to check the profile ({exc})")
        return
    if seen is None:
        print(f"note: {address} not heard in {seconds:g} s (asleep?): profile not checked")
        return
    device, adv = seen
    name = adv.local_name or device.name
    makers = list(adv.manufacturer_data)
    assert profile.ble is not None
    if profile.ble.match.accepts(adv.service_uuids, name, makers):
        print(f"checked: {address} advertises as {name!r}, which {profile.id} accepts")
        return
    others = match_profiles(profiles.values(), adv.service_uuids, name, makers)
    rule = profile.ble.match
    print(
        f"warning: {address} advertises as {name!r} with services "
        f"{', '.join(adv.service_uuids) or 'none'}, which profile {profile.id} does not accept "
        f"(it expects services {', '.join(str(u) for u in rule.service_uuids) or 'any'}"
        f"{f' and a name matching {rule.name_pattern}' if rule.name_pattern else ''}): the "
        f"station will never connect to it; profiles that match: {', '.join(others) or 'none'}",
        file=sys.stderr,
    )


def run_unbind(args: argparse.Namespace) -> int:
    try:
        device = _store(args).unbind(args.target)
    except (LookupError, ConfigError) as exc:
        return fail(str(exc.args[0]) if isinstance(exc, LookupError) else str(exc))
    print(f"unbound {device.id}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    try:
        devices = _bound(args)
    except ConfigError as exc:
        return fail(str(exc))
    if not devices:
        print("no devices bound; see `station devices bind --help`")
    for d, where in devices:
        print(f"{d.id:<12} {d.profile:<22} {d.address or d.port}  ({where})")
    return 0


def run_scan(args: argparse.Namespace) -> int:
    try:
        profiles = _profiles()
        bindings = [d for d, _where in _bound(args)]
    except ConfigError as exc:
        return fail(str(exc))
    code = 0
    if args.transport in ("all", "ble"):
        code = _scan_ble(args, profiles, {d.address: d.id for d in bindings if d.address})
    if args.transport in ("all", "serial"):
        _scan_serial(args, profiles, {d.port: d.id for d in bindings if d.port})
    return code


def _scan_ble(args: argparse.Namespace, profiles: Any, bound: dict[str, str]) -> int:
    from bleak.exc import BleakError

    from station.devices.ble_scan import scan_ble

    try:
        rows = asyncio.run(scan_ble(profiles.values(), args.seconds))
    except (BleakError, OSError) as exc:
        return fail(f"cannot scan Bluetooth: {exc} (is Bluetooth on and BlueZ running?)")
    for seen in rows:
        status = f"bound as {bound[seen.address]}" if seen.address in bound else "not bound"
        names = ",".join(seen.profiles) or "-"
        print(f"{seen.address}  {seen.rssi:>4} dBm  {seen.name:<18} {names:<34} {status}")
    if not rows:
        print(f"no Bluetooth device found in {args.seconds:g} s")
    return 0


def _scan_serial(args: argparse.Namespace, profiles: Any, bound: dict[str, str]) -> None:
    from station.devices.serial_link import scan_ports

    ports = scan_ports(profiles.values(), by_id_dir=args.by_id_dir)
    for port in ports:
        who = bound.get(port.path) or bound.get(port.device)
        status = f"bound as {who}" if who else "not bound"
        names = ",".join(port.profiles) or "-"
        print(f"{port.path}  {port.usb or '-'}  {names}  {status}")
    if not ports:
        print(f"no serial port plugged in (looked in {args.by_id_dir} and USB serial ports)")


def _one(args: argparse.Namespace) -> BoundDevice | None:
    return next((d for d, _where in _bound(args) if d.id == args.device_id), None)


def _watch(args: argparse.Namespace, *, raw_only: bool) -> int:
    try:
        device = _one(args)
    except ConfigError as exc:
        return fail(str(exc))
    if device is None:
        return fail(f"no device bound as {args.device_id!r}; see `station devices list`")
    try:
        profiles = _profiles()
    except ConfigError as exc:
        return fail(str(exc))
    if device.port is not None:
        return _watch_serial(args, device, profiles, raw_only=raw_only)
    return _watch_ble(args, device, profiles, raw_only=raw_only)


STANDARD_SYSTEM_BUS = (
    "unix:path=/run/dbus/system_bus_socket",
    "unix:path=/var/run/dbus/system_bus_socket",
)


def simulated_by(port: str | None) -> str | None:
    """Why the device on the other end is a simulator, or None. A USB serial device is never a
    pseudo-terminal, and BlueZ is never on a private bus: `station simulate` makes both. Only
    for these console commands (a reading printed here goes nowhere); `station run` marks
    readings by its own mode."""
    if port is not None:
        if os.path.realpath(port).startswith("/dev/pts/"):
            return "a pseudo-terminal is a simulator (station simulate)"
        return None
    bus = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
    if bus and bus not in STANDARD_SYSTEM_BUS:
        return "Bluetooth on a private D-Bus is simulated (station simulate --ble)"
    return None


def _reading_mode(port: str | None) -> Any:
    from station.models import Mode

    why = simulated_by(port)
    if why is None:
        return Mode.REAL
    print(f"# readings marked mode=demo: {why}", file=sys.stderr, flush=True)
    return Mode.DEMO


def _watch_serial(
    args: argparse.Namespace, device: BoundDevice, profiles: Any, *, raw_only: bool
) -> int:
    import threading

    from station.devices.codecs.base import BadFrame
    from station.devices.serial_link import LinkEvent, LinkStatus, SerialLink
    from station.devices.serial_link import LinkState as SerialState
    from station.models import AnyReading

    profile = profiles.get(device.profile)
    if profile is None or profile.serial is None:
        return fail(f"{device.id}: {device.profile!r} is not a serial profile")
    done = threading.Event()

    def on_event(event: LinkEvent) -> None:
        if done.is_set():
            return  # `test` has its reading; the link is being stopped
        if isinstance(event, LinkStatus):
            where = f" {event.port}" if event.state is SerialState.CONNECTED else ""
            detail = f": {event.detail}" if event.detail else ""
            print(f"# {event.state}{where}{detail}", file=sys.stderr, flush=True)
        elif isinstance(event, AnyReading):
            print(f"serial {event.raw_hex}", flush=True)
            if not raw_only:
                print(event.model_dump_json(), flush=True)
                if event.kind != "cuff_pressure":
                    done.set()
        elif isinstance(event, BadFrame):
            print(f"bad {event.raw_hex}  # {event.problem}", flush=True)
        else:
            code = getattr(event, "code", type(event).__name__)
            print(f"event {code} {getattr(event, 'raw_hex', '')}", flush=True)

    mode = _reading_mode(device.port)
    link = SerialLink(profile, on_event, port=device.port, reading_mode=mode)
    link.start()
    try:
        got = done.wait(args.seconds)
    except KeyboardInterrupt:
        got = False
    finally:
        link.stop()
    if raw_only or got:
        return 0
    print(f"station: no reading from {device.id} in {args.seconds:g} s", file=sys.stderr)
    return 1


def _watch_ble(
    args: argparse.Namespace, device: BoundDevice, profiles: Any, *, raw_only: bool
) -> int:
    from datetime import UTC, datetime

    from station.config import GuardSection
    from station.devices.ble_link import (
        BleLink,
        ClockWritten,
        DeviceInfo,
        FrameRejected,
        LinkEvent,
        RawFrame,
        ReadingArrived,
        StateChanged,
    )
    from station.guard import WrongPatientGuard, describe_reasons

    assert device.address is not None
    held = _held_elsewhere(device.address)
    if held:
        return fail(held, code=3)
    settings = _settings(args)
    zone = _zone(settings)
    started = datetime.now(UTC).astimezone(zone)
    # The station's own rules decide whether a reading is new: a test session opens now.
    guard = WrongPatientGuard(
        lambda: datetime.now(UTC).astimezone(zone),
        [device.id],
        settings.guard if settings is not None else GuardSection(),
        zone=zone,
    )
    guard.open_session("test")
    mode = _reading_mode(None)

    async def watch() -> int:
        done = asyncio.Event()
        result = {"code": 1}

        def sink(event: LinkEvent) -> None:
            if isinstance(event, StateChanged):
                detail = f": {event.detail}" if event.detail else ""
                print(f"# {event.state}{detail}", file=sys.stderr, flush=True)
                if event.state == "connected":
                    guard.device_connected(device.id)
            elif isinstance(event, DeviceInfo):
                battery = "?" if event.battery_percent is None else f"{event.battery_percent} %"
                firmware = event.firmware_revision or "?"
                print(f"# battery {battery}, firmware {firmware}", file=sys.stderr, flush=True)
            elif isinstance(event, ClockWritten):
                guard.device_clock_set(device.id)
                print(
                    f"# clock written ({_short(event.characteristic)}): {event.written_hex}",
                    file=sys.stderr,
                    flush=True,
                )
            elif isinstance(event, RawFrame):
                print(f"{_short(event.characteristic)} {event.raw_hex}", flush=True)
            elif isinstance(event, FrameRejected):
                print(f"bad {event.raw_hex}  # {event.problem}", flush=True)
            elif isinstance(event, ReadingArrived) and not raw_only:
                print(event.reading.model_dump_json(), flush=True)
                if event.reading.kind == "cuff_pressure":
                    return
                received = datetime.now(UTC).astimezone(zone)
                reasons = guard.reasons(
                    event.reading, received, clock_trusted=guard.clock_trusted(device.id)
                )
                if reasons:
                    before = guard.measured_before_s(event.reading)
                    print(
                        f"# not a new reading: {describe_reasons(reasons, before)}"
                        + _measured_note(event.reading.measured_at),
                        flush=True,
                    )
                    return  # stored or old: keep waiting for a measurement taken now
                result["code"] = 0
                done.set()

        link = BleLink([device], sink, profiles=profiles, mode=mode)
        runner = asyncio.create_task(link.run())
        try:
            await asyncio.wait_for(done.wait(), args.seconds)
        except TimeoutError:
            if not raw_only:
                print(
                    f"station: no new reading from {device.id} in {args.seconds:g} s "
                    f"(since {started:%H:%M:%S})",
                    file=sys.stderr,
                )
            else:
                result["code"] = 0
        finally:
            link.stop()
            await runner
        return result["code"]

    return asyncio.run(watch())


def _zone(settings: Any) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.records.timezone if settings is not None else "UTC")


def _measured_note(measured: Any) -> str:
    return "" if measured is None else f" (device time {measured.isoformat(sep=' ')})"


def _held_elsewhere(address: str) -> str | None:
    """Words saying the device is connected to another program (`station run`), or None.

    BlueZ says Connected on the device while any client holds it; a device that is connected
    does not advertise, so a test here would only time out."""
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    path_tail = "dev_" + address.replace(":", "_")

    async def ask() -> bool:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path="/",
                    interface="org.freedesktop.DBus.ObjectManager",
                    member="GetManagedObjects",
                )
            )
        finally:
            bus.disconnect()
        if reply is None or reply.message_type is MessageType.ERROR:
            return False
        for path, interfaces in reply.body[0].items():
            if path.endswith(path_tail) and "org.bluez.Device1" in interfaces:
                connected = interfaces["org.bluez.Device1"].get("Connected")
                return bool(connected is not None and connected.value)
        return False

    try:
        connected = asyncio.run(ask())
    except (OSError, ValueError, EOFError):
        return None  # no bus to ask: the link will say what is wrong
    if not connected:
        return None
    return (
        f"{address} is connected to another program on this machine, most likely the running "
        "station (`station run`): stop it first (systemctl stop station), or use Test on the "
        "biomed screen"
    )


def _short(uuid: str) -> str:
    """00002a35-0000-1000-8000-00805f9b34fb -> 2a35; vendor UUIDs stay whole."""
    return uuid[4:8] if uuid.endswith("-0000-1000-8000-00805f9b34fb") else uuid


def run_test(args: argparse.Namespace) -> int:
    return _watch(args, raw_only=False)


def run_log(args: argparse.Namespace) -> int:
    return _watch(args, raw_only=True)


def _ble_device(args: argparse.Namespace) -> tuple[BoundDevice, Any] | int:
    try:
        device = _one(args)
        profiles = _profiles()
    except ConfigError as exc:
        return fail(str(exc))
    if device is None:
        return fail(f"no device bound as {args.device_id!r}; see `station devices list`")
    if device.address is None:
        return fail(f"{device.id} is a serial device ({device.port}); this is for Bluetooth")
    held = _held_elsewhere(device.address)
    if held:
        return fail(held, code=3)
    return device, profiles


def run_pair(args: argparse.Namespace) -> int:
    """Bond once: BlueZ keeps the bond, and `station run` then connects without asking."""
    from bleak import BleakClient, BleakScanner
    from bleak.exc import BleakError

    from station.devices.ble_link import PASSKEY_CONNECT_TIMEOUT_S, describe_connect_error
    from station.devices.pairing import AgentRegistration

    found = _ble_device(args)
    if isinstance(found, int):
        return found
    device = found[0]
    assert device.address is not None
    address = device.address

    async def prompt(asking: str) -> int | None:
        loop = asyncio.get_running_loop()
        question = f"passkey shown on {device.id} ({asking}): "
        typed = await loop.run_in_executor(None, _read_line, question)
        digits = typed.strip()
        if not (len(digits) == 6 and digits.isdigit()):
            print("station: the passkey is the 6 digits the device shows", file=sys.stderr)
            return None
        return int(digits)

    async def pair() -> int:
        registration = await AgentRegistration.register([device], prompt=prompt)
        try:
            ble_device = await BleakScanner.find_device_by_address(address, timeout=args.seconds)
            if ble_device is None:
                return fail(f"{device.id} ({address}) not heard in {args.seconds:g} s: wake it "
                            "(press its button / start pairing mode) and try again")
            client = BleakClient(ble_device, pair=True, timeout=PASSKEY_CONNECT_TIMEOUT_S)
            try:
                await client.connect()
            except (BleakError, TimeoutError, OSError) as exc:
                return fail(f"{device.id} ({address}) not paired: {describe_connect_error(exc)}")
            await client.disconnect()
        finally:
            await registration.unregister()
        print(f"paired {device.id} ({address}): bonded; `station run` connects without asking")
        return 0

    try:
        return asyncio.run(pair())
    except (RuntimeError, OSError) as exc:
        return fail(f"cannot pair: {exc} (is Bluetooth on and BlueZ running?)")


def _read_line(question: str) -> str:
    print(question, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline()


def run_records(args: argparse.Namespace) -> int:
    """RACP (Record Access Control Point, 0x2A52): count, report all, or delete all."""
    from station.devices.ble_link import (
        RACP_DELETE_ALL,
        RACP_REPORT_ALL,
        RACP_REPORT_COUNT,
        BleLink,
        LinkEvent,
        RacpReply,
        ReadingArrived,
        StateChanged,
    )
    from station.devices.codecs.gatt import racp
    from station.errors import FrameError

    found = _ble_device(args)
    if isinstance(found, int):
        return found
    device, profiles = found
    profile = profiles.get(device.profile)
    if profile is None or profile.ble is None or not profile.ble.racp:
        return fail(f"{device.id}: profile {device.profile!r} has no stored records (racp = false)")
    request = RACP_REPORT_COUNT
    if args.fetch or args.clear:
        request = RACP_REPORT_ALL if args.fetch else RACP_DELETE_ALL

    async def run() -> int:
        connected = asyncio.Event()
        answered = asyncio.Event()
        result = {"code": 1}

        def sink(event: LinkEvent) -> None:
            if isinstance(event, StateChanged):
                print(f"# {event.state}{': ' + event.detail if event.detail else ''}",
                      file=sys.stderr, flush=True)
                if event.state == "connected":
                    connected.set()
            elif isinstance(event, ReadingArrived):
                print(f"stored {event.reading.model_dump_json()}", flush=True)
            elif isinstance(event, RacpReply):
                try:
                    reply = racp.decode(bytes.fromhex(event.raw_hex))
                except FrameError as exc:
                    print(f"bad racp {event.raw_hex}  # {exc.describe()}", flush=True)
                    return
                if isinstance(reply, racp.RacpCountResponse):
                    print(f"{reply.record_count} stored record(s)", flush=True)
                    result["code"] = 0
                elif isinstance(reply, racp.RacpResponse):
                    ok = reply.response in ("success", "no_records_found")
                    print(f"racp {reply.request}: {reply.response}", flush=True)
                    result["code"] = 0 if ok else 1
                answered.set()

        link = BleLink([device], sink, profiles=profiles)
        runner = asyncio.create_task(link.run())
        try:
            await asyncio.wait_for(connected.wait(), args.seconds)
            await asyncio.sleep(0.2)  # the link subscribes RACP right after connecting
            await link.racp(device.id, request)
            await asyncio.wait_for(answered.wait(), args.seconds)
        except TimeoutError:
            print(f"station: no answer from {device.id} in {args.seconds:g} s", file=sys.stderr)
        finally:
            link.stop()
            await runner
        return result["code"]

    return asyncio.run(run())
