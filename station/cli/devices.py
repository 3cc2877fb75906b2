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
  station devices test cuff --seconds 60        # wait for one reading: decoded + raw
  station devices log cuff                      # raw frames as they arrive (Ctrl-C to stop)
  station devices unbind cuff
Bindings live in <state dir>/bindings.json (--state-dir, $STATION_STATE_DIR, default
/var/lib/station). Only bound devices are ever read."""

ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")
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


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir:
        return Path(args.state_dir)
    return Path(os.environ.get("STATION_STATE_DIR") or DEFAULT_STATE_DIR)


def _store(args: argparse.Namespace) -> Any:
    from station.devices.bindings import BindingStore

    return BindingStore(_state_dir(args))


def _profiles() -> Any:
    from station.devices.profiles import load_profiles

    return load_profiles()


def run_bind(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from station.config import describe_validation_error
    from station.devices.profiles import Transport

    is_ble = bool(ADDRESS.match(args.target))
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
    device_id = args.device_id or args.profile
    try:
        device = BoundDevice(
            id=device_id,
            profile=args.profile,
            address=args.target.upper() if is_ble else None,
            port=None if is_ble else args.target,
        )
    except ValidationError as exc:
        return fail("; ".join(describe_validation_error(exc)))
    try:
        _store(args).bind(device)
    except (ValueError, ConfigError) as exc:
        return fail(str(exc))
    print(f"bound {device.id}: {args.target} ({device.profile})")
    return 0


def run_unbind(args: argparse.Namespace) -> int:
    try:
        device = _store(args).unbind(args.target)
    except (LookupError, ConfigError) as exc:
        return fail(str(exc.args[0]) if isinstance(exc, LookupError) else str(exc))
    print(f"unbound {device.id}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    try:
        devices = _store(args).list()
    except ConfigError as exc:
        return fail(str(exc))
    if not devices:
        print("no devices bound; see `station devices bind --help`")
    for d in devices:
        print(f"{d.id:<12} {d.profile:<22} {d.address or d.port}")
    return 0


def run_scan(args: argparse.Namespace) -> int:
    try:
        profiles = _profiles()
        bindings = _store(args).list()
    except ConfigError as exc:
        return fail(str(exc))
    code = 0
    if args.transport in ("all", "ble"):
        code = _scan_ble(args, profiles, {d.address: d.id for d in bindings if d.address})
    if args.transport in ("all", "serial"):
        _scan_serial(args, profiles, {d.port: d.id for d in bindings if d.port})
    return code


def _scan_ble(args: argparse.Namespace, profiles: Any, bound: dict[str, str]) -> int:
    from bleak import BleakScanner
    from bleak.exc import BleakError

    from station.devices.profiles import match_profiles

    uuids = sorted(
        {str(u) for p in profiles.values() if p.ble is not None for u in p.ble.match.service_uuids}
    )

    async def scan() -> dict[str, Any]:
        found = await BleakScanner.discover(args.seconds, service_uuids=uuids, return_adv=True)
        return dict(found)

    try:
        found = asyncio.run(scan())
    except (BleakError, OSError) as exc:
        return fail(f"cannot scan Bluetooth: {exc} (is Bluetooth on and BlueZ running?)")
    rows = sorted(found.values(), key=lambda pair: pair[0].address)
    for device, adv in rows:
        name = adv.local_name or device.name or "?"
        matched = match_profiles(profiles.values(), adv.service_uuids, name, adv.manufacturer_data)
        status = f"bound as {bound[device.address]}" if device.address in bound else "not bound"
        names = ",".join(matched) or "-"
        print(f"{device.address}  {adv.rssi:>4} dBm  {name:<18} {names:<34} {status}")
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
    devices: tuple[BoundDevice, ...] = _store(args).list()
    return next((d for d in devices if d.id == args.device_id), None)


def _watch(args: argparse.Namespace, *, raw_only: bool) -> int:
    device = _one(args)
    if device is None:
        return fail(f"no device bound as {args.device_id!r}; see `station devices list`")
    try:
        profiles = _profiles()
    except ConfigError as exc:
        return fail(str(exc))
    if device.port is not None:
        return _watch_serial(args, device, profiles, raw_only=raw_only)
    return _watch_ble(args, device, profiles, raw_only=raw_only)


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

    link = SerialLink(profile, on_event, port=device.port)
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
    from station.devices.ble_link import BleLink, LinkEvent, RawFrame, ReadingArrived, StateChanged

    async def watch() -> int:
        done = asyncio.Event()
        result = {"code": 1}

        def sink(event: LinkEvent) -> None:
            if isinstance(event, StateChanged):
                detail = f": {event.detail}" if event.detail else ""
                print(f"# {event.state}{detail}", file=sys.stderr)
            elif isinstance(event, RawFrame):
                print(f"{_short(event.characteristic)} {event.raw_hex}", flush=True)
            elif isinstance(event, ReadingArrived) and not raw_only:
                print(event.reading.model_dump_json(), flush=True)
                if event.reading.kind != "cuff_pressure":
                    result["code"] = 0
                    done.set()

        link = BleLink([device], sink, profiles=profiles)
        runner = asyncio.create_task(link.run())
        try:
            await asyncio.wait_for(done.wait(), args.seconds)
        except TimeoutError:
            if not raw_only:
                print(
                    f"station: no reading from {device.id} in {args.seconds:g} s", file=sys.stderr
                )
            else:
                result["code"] = 0
        finally:
            link.stop()
            await runner
        return result["code"]

    return asyncio.run(watch())


def _short(uuid: str) -> str:
    """00002a35-0000-1000-8000-00805f9b34fb -> 2a35; vendor UUIDs stay whole."""
    return uuid[4:8] if uuid.endswith("-0000-1000-8000-00805f9b34fb") else uuid


def run_test(args: argparse.Namespace) -> int:
    return _watch(args, raw_only=False)


def run_log(args: argparse.Namespace) -> int:
    return _watch(args, raw_only=True)
