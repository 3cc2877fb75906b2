"""`station demo`: the station on simulated devices and obviously fake patients, end to end."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from station.cli.common import add_command, fail

if TYPE_CHECKING:
    from station.app import HeadlessHost
    from station.demo import DemoRig
    from station.demo_people import DemoPatient

EXAMPLES = """\
  station demo                             # the exam screens (or headless without a display)
  station demo --headless --patients 2     # room two fake patients end to end, then exit
  station demo --headless                  # keep rooming fake patients until Ctrl-C
  station demo --cuff dinamap              # blood pressure from a GE DINAMAP monitor's NIBP
  station demo --headless --broker mqtt://127.0.0.1:1883   # publish to your own broker
  station demo --headless --patients 1 --gateway   # via station gateway into an EHR (MLLP)"""

GATEWAY_NOTICE = (
    "# demo: station gateway files vitals, alerts and check-ins into a stand-in EHR (MLLP on "
    "{host}:{port}); each HL7 message the EHR received is printed, one segment per line, and "
    "its ACK is what the station shows as received"
)

NOTICE = (
    "# demo: local Mosquitto on {host}:{port}, PLAIN TCP on loopback (require_tls = false for "
    "this demo broker only; `station run` refuses plain TCP unless its settings allow it)"
)


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "demo",
        summary="run the station end to end on simulated devices and fake patients",
        description="Starts a local Mosquitto, publishes a retained schedule of obviously "
        "fake patients (ZZTEST) as the practice system would, runs simulated serial devices "
        "on pseudo-terminals through the real serial links, codecs, wrong-patient guard, "
        "validation, rooming, outbox and MQTT, and a stand-in practice system that acks every "
        "message. With a display it opens the exam screens (badge BADGE-DEMO or PIN 1234); "
        "headless it rooms the patients itself and prints each message the practice system "
        "received as a JSON line. Simulated readings are marked mode=demo.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no screen: room the patients automatically, print each published message",
    )
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="use this MQTT broker (mqtt://HOST:PORT, plain TCP) instead of starting one",
    )
    parser.add_argument(
        "--patients",
        type=int,
        metavar="N",
        help="headless: room N patients end to end and exit (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--cuff",
        choices=("suntech", "dinamap"),
        default="suntech",
        help="the blood-pressure device: the separate SunTech cuff (default) or a GE DINAMAP "
        "monitor's NIBP over its host port",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--gateway",
        action="store_true",
        help="run `station gateway` in place of the stand-in practice system: vitals go to a "
        "stand-in EHR as HL7 v2 ORU^R01 over MLLP, printed as received, and its ACK is the "
        "station's 'received' (needs python-hl7, which `make venv` installs)",
    )
    parser.set_defaults(func=run)


def parse_broker(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"--broker {url!r}: expected mqtt://HOST:PORT (plain TCP)")
    try:
        port = parts.port or 1883
    except ValueError as exc:
        raise ValueError(f"--broker {url!r}: the port is not a number 1-65535") from exc
    return parts.hostname, port


def run(args: argparse.Namespace) -> int:
    if args.patients is not None and args.patients < 1:
        return fail(f"--patients {args.patients} must be at least 1")
    broker = None
    if args.broker:
        try:
            broker = parse_broker(args.broker)
        except ValueError as exc:
            return fail(str(exc))
    headless = args.headless
    if not headless:
        from station.cli import ui

        if not ui.has_display():
            print(ui.HOW_TO_VIEW + "\nstation: running headless instead", file=sys.stderr)
            headless = True
    with tempfile.TemporaryDirectory(prefix="station-demo-") as tmp:
        if headless:
            return _headless(
                Path(tmp), args.patients, args.seed, broker, cuff=args.cuff, gateway=args.gateway
            )
        return _with_screens(Path(tmp), args.seed, broker, cuff=args.cuff, gateway=args.gateway)


def _print_hl7(lock: threading.Lock) -> Any:
    from station.gateway.demo import readable

    def printed(er7: str) -> None:
        with lock:
            print(f"# the EHR received over MLLP and answered AA:\n{readable(er7)}\n", flush=True)

    return printed


def _gateway_notice(rig: DemoRig) -> None:
    if rig.ehr is not None:
        print(GATEWAY_NOTICE.format(host=rig.ehr.host, port=rig.ehr.port), file=sys.stderr)


def _headless(
    directory: Path,
    count: int | None,
    seed: int,
    broker: tuple[str, int] | None,
    *,
    cuff: str = "suntech",
    gateway: bool = False,
) -> int:
    from station.app import HeadlessHost
    from station.demo import DemoRig, summarize

    lock = threading.Lock()

    def printed(_topic: str, body: dict[str, Any]) -> None:
        with lock:
            print(json.dumps(summarize(body)), flush=True)

    host = HeadlessHost()
    try:
        rig = DemoRig(
            directory,
            post=host.post,
            patients=count or 8,
            seed=seed,
            broker=broker,
            on_message=printed,
            cuff=cuff,
            on_hl7=_print_hl7(lock) if gateway else None,
        )
    except RuntimeError as exc:
        return fail(str(exc), 1)
    if rig.own_broker is not None:
        print(NOTICE.format(host=rig.broker_host, port=rig.broker_port), file=sys.stderr)
    _ble_notice(rig)
    _gateway_notice(rig)
    assert rig.services is not None
    host.services = rig.services
    rig.start()
    try:
        batches = itertools.count() if count is None else range(1)
        for batch in batches:
            for patient in rig.patients if batch == 0 else rig.next_batch():
                _room(host, rig, patient)
    except KeyboardInterrupt:
        pass
    except TimeoutError as exc:
        print(f"station: demo stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        rig.stop()
    return 0


def _ble_notice(rig: DemoRig) -> None:
    if rig.ble is not None:
        print(f"# demo: Bluetooth LE thermometer {rig.ble.address} on a fake BlueZ "
              "(private D-Bus), read through bleak beside the serial devices", file=sys.stderr)
    else:
        print(f"# demo: no Bluetooth ({rig.ble_problem}); serial devices only",
              file=sys.stderr)


def _room(host: HeadlessHost, rig: DemoRig, patient: DemoPatient) -> None:
    from station.demo import room_one

    assert rig.services is not None
    print(f"# rooming {patient.family}, {patient.given} ({patient.appointment_id})",
          file=sys.stderr, flush=True)
    room_one(host, rig.services, patient.appointment_id, rig.devices, ble=rig.ble)
    print(f"# {patient.appointment_id}: received by the practice system",
          file=sys.stderr, flush=True)


def _with_screens(
    directory: Path,
    seed: int,
    broker: tuple[str, int] | None,
    *,
    cuff: str = "suntech",
    gateway: bool = False,
) -> int:
    import os

    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    from kivy.config import Config

    Config.set("graphics", "width", "800")
    Config.set("graphics", "height", "480")
    # The docked on-screen keyboard, as `station run` has it: the demo shows the real kiosk.
    from station.ui.keyboard import use_docked_keyboard

    use_docked_keyboard()
    from station.demo import DemoRig
    from station.ui.app import StationApp, StationUI
    from station.ui.probe import probe_path

    ui_box: list[StationUI] = []
    pending: list[Any] = []

    def post(action: Any) -> None:
        if ui_box:
            ui_box[0].deliver(action)
        else:
            pending.append(action)

    try:
        rig = DemoRig(
            directory,
            post=post,
            patients=3,
            seed=seed,
            broker=broker,
            cuff=cuff,
            on_hl7=_print_hl7(threading.Lock()) if gateway else None,
        )
    except RuntimeError as exc:
        return fail(str(exc), 1)
    if rig.own_broker is not None:
        print(NOTICE.format(host=rig.broker_host, port=rig.broker_port), file=sys.stderr)
    _ble_notice(rig)
    _gateway_notice(rig)
    print("# demo: sign in with badge BADGE-DEMO or PIN 1234; devices measure when you "
          "confirm a patient", file=sys.stderr)
    services = rig.services
    assert services is not None

    def changed() -> None:
        services.after_ui_change()
        rig.auto_devices()

    def factory() -> StationUI:
        ui = StationUI("exam", services.presenter, on_change=changed)
        ui_box.append(ui)
        for action in pending:
            ui.deliver(action)
        pending.clear()
        return ui

    rig.start()
    try:
        StationApp(factory, probe=probe_path()).run()
    finally:
        rig.stop()
    return 0
