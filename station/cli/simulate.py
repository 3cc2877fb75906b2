"""`station simulate PROFILE`: a serial device on a pseudo-terminal, until Ctrl-C;
`station simulate --ble`: a private D-Bus, the fake BlueZ and simulated Bluetooth devices."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from station.cli.common import add_command, fail
from station.errors import ConfigError

EXAMPLES = """\
  station simulate nonin-xpod-3012lp                 # prints the pty path, e.g. /dev/pts/7
  station simulate sma-scale --scenario motion
  station simulate masimo-rad-8 --port /tmp/rad8     # a symlink to the pty at a fixed path
  station simulate suntech-advantage --scenario noise --seed 7
  station simulate --ble                             # Bluetooth: fake BlueZ + 6 devices
Scenarios: normal, noise (garbage between frames), unplug (the port vanishes and comes back),
motion, sensor_off, baud_mismatch (the bytes a receiver at the wrong baud would see).
--ble brings up a private system bus with a fake BlueZ and simulated devices (a cuff with 5
stored readings, a passkey cuff, a scale, a thermometer, an oximeter and the next room's
cuff) and prints how to point `station devices` and `station run` at it; then type bp, bp2,
weight, temp, spo2 or quit."""


def register(sub: Any) -> None:
    from station.devices.simulators.serial import SCENARIOS

    parser = add_command(
        sub,
        "simulate",
        summary="pretend to be a serial device on a pseudo-terminal",
        description="Opens a pseudo-terminal and behaves like the device of a serial firmware "
        "profile (streaming, or answering polls), printing the port path, so the demo, the "
        "tests and a biomed bench can use a device that is not there.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "profile", metavar="PROFILE", nargs="?", help="profile id or path to its .toml"
    )
    parser.add_argument(
        "--ble",
        nargs="?",
        const="ward",
        choices=("ward",),
        metavar="SCENARIO",
        help="simulate Bluetooth instead: the fake BlueZ with simulated devices (ward)",
    )
    parser.add_argument(
        "--port",
        default="auto",
        help="auto (print the new pty path) or a path where a symlink to the pty is made",
    )
    parser.add_argument("--scenario", choices=SCENARIOS, default="normal")
    parser.add_argument("--seed", type=int, default=1, help="seed for noise and values")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.ble:
        return run_ble(args)
    if not args.profile:
        return fail("name a serial PROFILE (station profiles list), or --ble for Bluetooth")
    from station.devices.profiles import find_profile
    from station.devices.simulators.serial import simulator_for

    try:
        profile = find_profile(args.profile)
    except ConfigError as exc:
        return fail(exc.describe())
    try:
        simulator = simulator_for(
            profile,
            scenario=args.scenario,
            seed=args.seed,
            link_path=None if args.port == "auto" else args.port,
        )
    except ValueError as exc:
        return fail(str(exc))
    simulator.start()
    print(simulator.port, flush=True)
    stop = threading.Event()
    try:
        stop.wait()
    finally:
        simulator.stop()
    return 0


# The simulated ward: address, what it is, the profile to bind it with.
BLE_WARD = (
    ("AA:BB:CC:DD:EE:01", "A&D UA-651BLE cuff with 5 stored readings", "and-ua-651ble"),
    ("AA:BB:CC:DD:EE:02", "Beurer SBM69 cuff, passkey 123456", "beurer-sbm69"),
    ("AA:BB:CC:DD:EE:03", "weight scale", "generic-ble-weight-scale"),
    ("AA:BB:CC:DD:EE:04", "thermometer", "generic-ble-thermometer"),
    ("AA:BB:CC:DD:EE:05", "pulse oximeter", "generic-ble-pulse-oximeter"),
    ("AA:BB:CC:DD:EE:99", "the next room's cuff (never bind it)", "and-ua-651ble"),
)


def run_ble(args: argparse.Namespace) -> int:
    """The fake BlueZ on a private bus with the ward's devices, until `quit` or Ctrl-C."""
    import sys
    import tempfile
    from datetime import datetime, timedelta
    from pathlib import Path

    from station.devices.simulators.ble import (
        BloodPressureCuff,
        PulseOximeter,
        StoredBp,
        Thermometer,
        WeightScale,
    )
    from station.devices.simulators.fakebluez import FakeBlueZ, PrivateBus

    workdir = Path(tempfile.mkdtemp(prefix="station-ble-"))
    bus = PrivateBus(workdir)
    try:
        address = bus.start()
    except (OSError, RuntimeError) as exc:
        return fail(f"cannot start a private D-Bus (is dbus-daemon installed?): {exc}")
    fake = FakeBlueZ(address).start()
    try:
        yesterday = datetime.now().replace(microsecond=0) - timedelta(days=1)
        stored = [
            StoredBp(128 + i, 82, 97, 70, yesterday + timedelta(minutes=10 * i)) for i in range(5)
        ]
        a = [d[0] for d in BLE_WARD]
        cuff = BloodPressureCuff(fake, a[0], "A&D_UA-651BLE", stored=stored)
        cuff2 = BloodPressureCuff(fake, a[1], "SBM69", passkey=123456, clock_characteristic=None)
        scale = WeightScale(fake, a[2])
        thermometer = Thermometer(fake, a[3])
        oximeter = PulseOximeter(fake, a[4])
        BloodPressureCuff(fake, a[5], "A&D_UA-651BLE")
        env = bus.environment()
        print(f"Bluetooth simulated on a private bus ({args.ble}). In another shell:")
        print(f"  export DBUS_SYSTEM_BUS_ADDRESS='{env['DBUS_SYSTEM_BUS_ADDRESS']}'")
        print(f"  export PATH='{bus.bin_dir}':\"$PATH\"   # a bluetoothctl stub for bleak")
        print("  station devices scan --transport ble")
        for where, what, profile in BLE_WARD:
            print(f"  # {what}:\n  station devices bind {where} --profile {profile}")
        print("  station devices pair beurer-sbm69     # type 123456")
        print("  station run                           # with the same two exports")
        print("Here: bp, bp2, weight, temp, spo2 to measure; quit to stop.", flush=True)
        actions = {
            "bp": lambda: cuff.measure(124, 79, 94, 68),
            "bp2": lambda: cuff2.measure(131, 84, 100, 72),
            "weight": lambda: scale.measure(72.4),
            "temp": lambda: thermometer.measure(36.9),
            "spo2": lambda: oximeter.spot_check(97, 71),
        }
        for line in sys.stdin:
            word = line.strip()
            if word in ("quit", "q", "exit"):
                break
            action = actions.get(word)
            if action is None:
                print(f"? {word!r}: one of {', '.join(actions)}, quit", flush=True)
            elif action():
                print(f"{word}: sent", flush=True)
            else:
                print(f"{word}: not sent (not connected or not subscribed yet)", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        bus.stop()
    return 0
