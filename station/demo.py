"""The demo: fake patients and simulated devices, through the real pipeline or the validation only.

Simulated readings are marked `mode=demo` so they can never be mistaken for a patient's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from station.app import HeadlessHost, StationServices
from station.capture import CaptureState, Delivery
from station.config import Settings, parse_settings
from station.demo_people import DEMO_PEOPLE, FAKE_GIVEN_NAMES, DemoPatient
from station.devices.codecs.serial import dinamap, suntech
from station.devices.profiles import FirmwareProfile, load_profiles
from station.devices.simulators.ble import Thermometer
from station.devices.simulators.fakebluez import FakeBlueZ, PrivateBus
from station.devices.simulators.serial import (
    DeviceModel,
    DinamapModel,
    SerialSimulator,
    SuntechModel,
    model_for,
)
from station.gateway.demo import DemoEhr, DemoGateway
from station.models import (
    VALUE_FIELDS,
    AnyReading,
    BloodPressure,
    BodyWeight,
    Kind,
    Mode,
    PulseOximetry,
    Temperature,
    TemperatureSite,
)
from station.rooming_data import COMMON_COMPLAINTS, MedicationStatus
from station.submission import PatientIdentifiers
from station.sync.contract import AckPayload, Channel, SchedulePayload, to_json, topic
from station.sync.contract import Appointment as ScheduleAppointment
from station.ui.presenters import ExamPresenter
from station.units import Unit
from station.validation import Verdict, validate, with_plausibility_flag


def demo_patients(count: int, rng: random.Random) -> list[DemoPatient]:
    """`count` fake patients: DEMO_PEOPLE first, then made-up ones from `rng`."""
    patients = list(DEMO_PEOPLE[:count])
    for i in range(len(patients), count):
        given = FAKE_GIVEN_NAMES[i % len(FAKE_GIVEN_NAMES)]
        birth = date(1940 + rng.randrange(70), 1 + rng.randrange(12), 1 + rng.randrange(28))
        patients.append(
            DemoPatient(
                "ZZTEST",
                f"{given}{i // len(FAKE_GIVEN_NAMES) or ''}",
                birth,
                f"TEST{100001 + i}",
                f"APT-DEMO-{i + 1:04d}",
            )
        )
    return patients


def simulated_readings(rng: random.Random, at: datetime) -> Iterator[AnyReading]:
    """One reading from each simulated device, with the occasional alarming value."""
    common = {"codec_version": "1", "mode": Mode.DEMO, "measured_at": at}
    systolic = rng.choice([118.0, 124.0, 132.0, 141.0, 186.0])
    yield BloodPressure(
        systolic_mmhg=systolic,
        diastolic_mmhg=rng.choice([72.0, 80.0, 88.0]),
        mean_arterial_mmhg=None,
        pulse_rate_bpm=float(rng.randrange(58, 96)),
        unit_as_sent=Unit.MMHG,
        codec="sim:blood_pressure",
        **common,
    )
    yield PulseOximetry(
        spo2_percent=rng.choice([99.0, 97.0, 96.0, 88.0]),
        pulse_rate_bpm=float(rng.randrange(58, 96)),
        unit_as_sent=Unit.PERCENT,
        codec="sim:pulse_oximetry",
        **common,
    )
    yield Temperature(
        temperature_c=rng.choice([36.6, 36.9, 37.2, 38.4]),
        site=TemperatureSite.MOUTH,
        unit_as_sent=Unit.CELSIUS,
        codec="sim:temperature",
        **common,
    )
    yield BodyWeight(
        weight_kg=round(rng.uniform(50, 110), 1),
        unit_as_sent=Unit.KG,
        codec="sim:body_weight",
        **common,
    )


def check(reading: AnyReading, age_years: float | None) -> tuple[AnyReading, Verdict]:
    checked = with_plausibility_flag(reading)
    return checked, validate(checked, age_years=age_years)


def room_patient(
    patient: DemoPatient, rng: random.Random, now: datetime
) -> list[tuple[AnyReading, Verdict]]:
    age = patient.age_years(now.date())
    return [check(r, age) for r in simulated_readings(rng, now + timedelta(seconds=5))]


# ------------------------------------------------------------------------------------------
# The end-to-end demo: a local broker, the practice system's side, serial simulators on ptys
# ------------------------------------------------------------------------------------------
# Everything below runs real parts (Mosquitto, paho, pyserial on pseudo-terminals); only the
# patients, the devices' far ends and the practice system are stand-ins.

DEMO_SITE = "demo-clinic"
DEMO_STATION = "exam-1"
DEMO_BADGE = "BADGE-DEMO"
# (device id, firmware profile): serial simulators through the real SerialLink.
DEMO_SERIAL_DEVICES = (
    ("cuff", "suntech-advantage"),
    ("oximeter", "nonin-oem-iii-df8"),
    ("scale", "sma-scale"),
    ("thermometer", "welch-allyn-suretemp-plus"),
)
# The cuffs the demo can use: the separate SunTech cuff, or a GE DINAMAP monitor's NIBP.
DEMO_CUFFS = {"suntech": "suntech-advantage", "dinamap": "ge-dinamap-pro"}
DEMO_KINDS = frozenset({"blood_pressure", "pulse_oximetry", "body_weight", "temperature"})
# Bluetooth LE beside them: a Health Thermometer (0x1809) on the fake BlueZ, read by the real
# BleLink (bleak) over a private D-Bus, so the BLE path runs end to end in the demo too.
DEMO_BLE_THERMOMETER = ("ble-thermometer", "generic-ble-thermometer", "AA:BB:CC:DD:EE:31")


class DemoBle:
    """A private system bus, the fake BlueZ on it and a simulated Bluetooth thermometer. The
    station in this process reaches it like real BlueZ: bleak reads DBUS_SYSTEM_BUS_ADDRESS
    (and runs `bluetoothctl --version`, which the bus's stub answers). `stop()` puts the
    environment back."""

    def __init__(self, directory: Path, seed: int = 1) -> None:
        self.device_id, self.profile, self.address = DEMO_BLE_THERMOMETER
        self._rng = random.Random(seed)  # noqa: S311 - simulated values, not secrets
        self.bus = PrivateBus(directory / "ble")
        bus_address = self.bus.start()  # RuntimeError / OSError: no dbus-daemon here
        env = self.bus.environment()
        self._saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        self.fake = FakeBlueZ(bus_address).start()
        self.thermometer = Thermometer(self.fake, self.address, "Thermo")

    def bound(self) -> dict[str, str]:
        return {"id": self.device_id, "profile": self.profile, "address": self.address}

    def arm(self, timeout_s: float = 30.0) -> threading.Thread:
        """The MA takes a temperature: once the station is connected and subscribed, the
        thermometer indicates one measurement (on a thread: connecting takes a moment)."""
        temperature_c = self._rng.choice([36.5, 36.8, 37.0, 37.3])

        def run() -> None:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if self.thermometer.subscribed("2a1c") and self.thermometer.measure(
                    temperature_c
                ):
                    return
                time.sleep(0.1)

        thread = threading.Thread(target=run, name="demo-ble-thermometer", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.fake.stop()
        self.bus.stop()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DemoBroker:
    """A Mosquitto of the demo's own on a free loopback port: plain TCP, loopback only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.host = "127.0.0.1"
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError(
                "mosquitto is not installed (Debian package `mosquitto`; `make demo` installs it)"
            )
        conf = self.directory / "mosquitto.conf"
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            "log_dest stderr",
            "log_type error",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        with (self.directory / "mosquitto.log").open("ab") as log_file:
            # Its own session: Ctrl-C stops the demo, which then stops the broker last.
            self._proc = subprocess.Popen(
                [binary, "-c", str(conf)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with status {self._proc.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)
        self._proc = None


def schedule_payload(
    patients: list[DemoPatient], *, site: str, station_id: str, now: datetime
) -> SchedulePayload:
    """Today's list as the practice system would publish it (retained)."""
    start = now.astimezone(UTC).replace(second=0, microsecond=0)
    return SchedulePayload(
        message_id=uuid.uuid4(),
        site=site,
        station_id=station_id,
        sent_at=now.astimezone(UTC),
        schedule_date=now.date(),
        appointments=tuple(
            ScheduleAppointment(
                appointment_id=p.appointment_id,
                patient=PatientIdentifiers(
                    mrn=p.mrn, family_name=p.family, given_name=p.given, birth_date=p.birth_date
                ),
                starts_at=start + timedelta(minutes=15 * i),
                reason="demo visit",
                medications_to_review=("lisinopril 10 mg daily",) if i % 2 == 0 else (),
            )
            for i, p in enumerate(patients)
        ),
    )


class PracticeSystem:
    """The practice system's side of the contract, for the demo: publishes the retained
    schedule, files (acks) every vitals, alert and check-in message once per message_id."""

    FILED = ("rooming.vitals/1", "rooming.alert/1", "rooming.checkin/1", "rooming.help_request/1")
    # What `station gateway` files into the EHR instead, when the demo runs it (--gateway).
    CLINICAL = ("rooming.vitals/1", "rooming.alert/1", "rooming.checkin/1")

    def __init__(
        self,
        host: str,
        port: int,
        *,
        site: str,
        station_id: str,
        on_message: Callable[[str, dict[str, Any]], None] | None = None,
        clinical: bool = True,
    ) -> None:
        self._site, self._station_id = site, station_id
        self._on_message = on_message
        self._filed = self.FILED if clinical else tuple(
            s for s in self.FILED if s not in self.CLINICAL
        )
        self.received: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="demo-practice-system")
        self._client.on_connect = self._connected_cb
        self._client.on_message = self._message
        self._client.connect_async(host, port, keepalive=30)

    def _topic(self, channel: Channel) -> str:
        return topic(self._site, self._station_id, channel)

    def _connected_cb(self, client: mqtt.Client, *_args: Any) -> None:
        for channel in (Channel.VITALS, Channel.ALERT, Channel.CHECKIN, Channel.AUDIT):
            client.subscribe(self._topic(channel), 1)
        self._connected.set()

    def start(self, schedule: SchedulePayload, timeout_s: float = 10.0) -> None:
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            raise RuntimeError("the demo practice system could not connect to the broker")
        self.publish_schedule(schedule, timeout_s)

    def publish_schedule(self, schedule: SchedulePayload, timeout_s: float = 10.0) -> None:
        info = self._client.publish(
            self._topic(Channel.SCHEDULE), to_json(schedule), 1, retain=True
        )
        info.wait_for_publish(timeout_s)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if isinstance(body, dict) and body.get("schema") == "rooming.audit/1":
            # The practice's audit consumer's part: filed (here: acknowledged) and kept apart
            # from the clinical messages.
            ack = AckPayload(message_id=uuid.UUID(str(body.get("message_id"))),
                             acked_at=datetime.now(UTC))
            client.publish(self._topic(Channel.ACK), to_json(ack), 1)
            return
        if not isinstance(body, dict) or body.get("schema") not in self._filed:
            return
        message_id = str(body.get("message_id"))
        with self._lock:
            duplicate = message_id in self._seen  # QoS 1: at least once; file it once
            self._seen.add(message_id)
            if not duplicate:
                self.received.append(body)
        ack = AckPayload(message_id=uuid.UUID(message_id), acked_at=datetime.now(UTC))
        client.publish(self._topic(Channel.ACK), to_json(ack), 1)
        if not duplicate and self._on_message is not None:
            self._on_message(message.topic, body)


class OnDemand(DeviceModel):
    """A simulated spot device (the cuff, the thermometer) that stays silent until the MA
    starts it (`arm`: the cuff is started, the probe comes out of its well), then gives one
    measurement (the thermometer answers the station's polls until its final)."""

    def __init__(self, inner: DeviceModel) -> None:
        super().__init__(inner.scenario, inner.rng)
        self.inner = inner
        self.interval_s = inner.interval_s
        self._armed = threading.Event()
        self._sent_at_arm = 0

    @property
    def sent(self) -> list[dict[str, float | None]]:
        return self.inner.sent

    @sent.setter
    def sent(self, value: list[dict[str, float | None]]) -> None:
        del value  # the inner model keeps what was sent

    def arm(self) -> None:
        self._sent_at_arm = len(self.inner.sent)
        self._armed.set()

    def _produced(self) -> bool:
        return len(self.inner.sent) > self._sent_at_arm

    def stream(self, now: float) -> bytes:
        if not self._armed.is_set():
            return b""
        data = self.inner.stream(now)
        if self._produced():
            self._armed.clear()
        return data

    def answer(self, data: bytes, now: float) -> bytes:
        if not self._armed.is_set():
            return b""
        reply = self.inner.answer(data, now)
        # The cuff reports "complete" first; its result goes out when the host asks for it.
        finished = self._produced() and (
            (not isinstance(self.inner, SuntechModel) or suntech.GET_BP_DATA in data)
            and (not isinstance(self.inner, DinamapModel) or dinamap.READ_HEART_RATE in data)
        )
        if finished:
            self._armed.clear()
        return reply

    def tick(self, now: float) -> bytes:
        return self.inner.tick(now) if self._armed.is_set() else b""


class OnPatient(DeviceModel):
    """A simulated streaming device (oximeter, polled scale) that streams like the real one
    all the time: "sensor off" / nobody on the platform until the MA puts it on the patient
    (`arm`), then a patient at rest until `take_off`. The station's spot capture turns each
    episode into one reading; the simulator gives it no help."""

    def __init__(self, inner: DeviceModel) -> None:
        super().__init__("sensor_off", inner.rng)
        self.inner = inner
        self.interval_s = inner.interval_s
        inner.scenario = "sensor_off"
        self._on_from: int | None = None
        self._on_until: int | None = None

    @property
    def sent(self) -> list[dict[str, float | None]]:
        return self.inner.sent

    @sent.setter
    def sent(self, value: list[dict[str, float | None]]) -> None:
        del value  # the inner model keeps what was sent

    @property
    def on_patient(self) -> bool:
        return self.inner.scenario == "steady"

    def arm(self) -> None:
        self._on_from, self._on_until = len(self.inner.sent), None
        self.inner.scenario = "steady"

    def take_off(self) -> None:
        if self.on_patient:
            self._on_until = len(self.inner.sent)
        self.inner.scenario = "sensor_off"

    def sent_on_patient(self) -> list[dict[str, float | None]]:
        """What the device sent during the last episode on the patient."""
        if self._on_from is None:
            return []
        return self.inner.sent[self._on_from : self._on_until]

    def stream(self, now: float) -> bytes:
        return self.inner.stream(now)

    def answer(self, data: bytes, now: float) -> bytes:
        return self.inner.answer(data, now)

    def tick(self, now: float) -> bytes:
        return self.inner.tick(now)


def demo_model(profile: FirmwareProfile, rng: random.Random) -> OnDemand | OnPatient:
    """A streaming profile's device streams (OnPatient); a spot one measures when started."""
    inner = model_for(profile.codecs[0], "normal", rng)
    if isinstance(inner, DinamapModel):
        # The demo's oximeter and thermometer are their own devices: the monitor is its NIBP,
        # measuring when started.
        inner.parameters = {"nibp"}
        return OnDemand(inner)
    if profile.behaviour.delivery is Delivery.STREAMING:
        return OnPatient(inner)
    return OnDemand(inner)


@dataclass
class DemoDevice:
    device_id: str
    profile: FirmwareProfile
    model: OnDemand | OnPatient
    simulator: SerialSimulator


def start_demo_devices(directory: Path, seed: int, cuff: str = "suntech") -> list[DemoDevice]:
    """One serial simulator per demo device, on a pty under a stable by-id style name."""
    profiles = load_profiles()
    devices: list[DemoDevice] = []
    chosen = [
        (device_id, DEMO_CUFFS[cuff] if device_id == "cuff" else profile_id)
        for device_id, profile_id in DEMO_SERIAL_DEVICES
    ]
    for index, (device_id, profile_id) in enumerate(chosen):
        profile = profiles[profile_id]
        assert profile.serial is not None
        rng = random.Random(seed + index)  # noqa: S311 - simulated values, not secrets
        model = demo_model(profile, rng)
        simulator = SerialSimulator(
            model,
            baud=profile.serial.line.baud,
            seed=seed + index,
            link_path=directory / f"usb-DEMO_{device_id}-if00-port0",
        )
        simulator.start()
        devices.append(DemoDevice(device_id, profile, model, simulator))
    return devices


def demo_station_settings(
    broker_host: str,
    broker_port: int,
    state_dir: Path,
    devices: list[DemoDevice],
    ble: DemoBle | None = None,
) -> Settings:
    return parse_settings(
        {
            "station": {"site": DEMO_SITE, "station_id": DEMO_STATION, "room": "Exam 1"},
            # Plain TCP only because the broker is the demo's own, on loopback.
            "broker": {"host": broker_host, "port": broker_port, "require_tls": False},
            "devices": [
                *(
                    {"id": d.device_id, "profile": d.profile.id, "port": d.simulator.port}
                    for d in devices
                ),
                *([ble.bound()] if ble is not None else []),
            ],
            "storage": {"state_dir": str(state_dir)},
        },
        "demo",
    )


def summarize(body: dict[str, Any]) -> dict[str, Any]:
    """One printed line per published message: what the practice system received."""
    out: dict[str, Any] = {"schema": body.get("schema"), "message_id": body.get("message_id")}
    if body.get("schema") == "rooming.vitals/1":
        out["appointment_id"] = body["appointment_id"]
        out["readings"] = [
            {
                "kind": r["reading"]["kind"],
                # The values as sent (canonical units), so a person watching sees the numbers.
                "values": {
                    name: r["reading"][name]
                    for name in VALUE_FIELDS[Kind(r["reading"]["kind"])]
                    if r["reading"].get(name) is not None
                },
                "device": r.get("device_id"),
                "codec": r["reading"]["codec"],  # which protocol it came through
                "mode": r["reading"]["mode"],
                "accepted": r["verdict"]["status"] == "accepted",
                "flags": [f["code"] for f in r["verdict"]["flags"]],
            }
            for r in body["readings"]
        ]
        out["chief_complaint"] = body["chief_complaint"]
        out["fhir_entries"] = len(body["fhir_bundle"].get("entry", []))
        # Simulated readings are test data to any FHIR consumer (v3 ActReason HTEST).
        out["fhir_tags"] = [t["code"] for t in body["fhir_bundle"].get("meta", {}).get("tag", [])]
    elif body.get("schema") == "rooming.alert/1":
        out["appointment_id"] = body["appointment_id"]
        out["code"] = body["code"]
    return out


def room_one(
    host: HeadlessHost,
    services: StationServices,
    appointment_id: str,
    devices: list[DemoDevice],
    *,
    timeout_s: float = 30.0,
    ble: DemoBle | None = None,
) -> None:
    """What an MA does for one patient, as taps on the real presenter: sign in, pick,
    confirm, take the vitals on the (simulated) devices, a complaint, review, send; then wait
    for "received by the practice system"."""
    presenter = services.presenter
    assert isinstance(presenter, ExamPresenter)
    rooming = presenter.rooming
    host.run_until(
        lambda: any(p.appointment_id == appointment_id for p in rooming.schedule),
        timeout_s,
        "the schedule from the practice system",
    )
    if rooming.state.value == "signed_out":
        host.intent("sign_in", DEMO_BADGE)
    host.intent("pick", appointment_id)
    host.intent("confirm")
    if rooming.state.value != "vitals":
        raise RuntimeError(f"demo: could not start rooming: {presenter.message}")
    for device in devices:
        device.model.arm()  # cuff, oximeter probe, scale and thermometer on the patient
    if ble is not None:
        ble.arm(timeout_s)
    cuff = services.manager.serial_link("cuff") if services.manager else None
    if cuff is not None:
        cuff.send_command("start")
    host.run_until(
        lambda: {e.kind.value for e in rooming.entries} >= DEMO_KINDS
        and (ble is None or any(e.device == ble.device_id for e in rooming.entries)),
        timeout_s,
        "the device readings",
    )
    take_off(devices, services, host, timeout_s)
    host.intent("go", "complaint")
    host.intent("toggle_complaint", COMMON_COMPLAINTS[0])
    # The listed medications, asked about: Send waits for their review (#18).
    for index, _ in enumerate(rooming.medications):
        host.intent("set_medication", index, MedicationStatus.TAKING)
    host.intent("go", "review")
    for row in presenter.review_rows():
        if row.needs_ack:
            host.intent("acknowledge", row.entry_id)
    host.intent("send")
    if presenter.sent_id is None:
        raise RuntimeError(f"demo: send refused: {presenter.message}")
    host.run_until(
        lambda: presenter.send_status() == "Received by the practice system",
        timeout_s,
        "the practice system's ack",
    )
    host.intent("next_patient")


def take_off(
    devices: list[DemoDevice], services: StationServices, host: HeadlessHost, timeout_s: float
) -> None:
    """The probe comes off the finger and the patient steps off the scale: wait until the
    station has seen each episode end, so the next patient's is a new one."""
    manager = services.manager
    streaming = [d for d in devices if isinstance(d.model, OnPatient)]
    for device in streaming:
        assert isinstance(device.model, OnPatient)
        device.model.take_off()
    if manager is not None:
        host.run_until(
            lambda: all(manager.capture_state(d.device_id) is CaptureState.IDLE for d in streaming),
            timeout_s,
            "the probe and scale off",
        )


class DemoRig:
    """The whole demo: broker (its own, or `broker_url`'s), the practice system, the serial
    simulators, and the station's real services over them. `start()` / `stop()`."""

    def __init__(
        self,
        directory: Path,
        *,
        post: Callable[[Callable[[], object]], None],
        patients: int,
        seed: int = 1,
        broker: tuple[str, int] | None = None,
        on_message: Callable[[str, dict[str, Any]], None] | None = None,
        cuff: str = "suntech",
        on_hl7: Callable[[str], None] | None = None,
    ) -> None:
        """`on_hl7` given: `station gateway` files the clinical messages into a stand-in EHR
        over MLLP (station.gateway.demo), which hands each HL7 message it received to it."""
        from station.app import Credentials
        from station.logs import Redactor

        self.directory = directory
        self.own_broker: DemoBroker | None = None
        if broker is None:
            self.own_broker = DemoBroker(directory)
            self.own_broker.start()
            broker = (self.own_broker.host, self.own_broker.port)
        self.broker_host, self.broker_port = broker
        rng = random.Random(seed)  # noqa: S311 - fake patients, not secrets
        self.patients = demo_patients(patients, rng)
        self.devices: list[DemoDevice] = []
        self.ble: DemoBle | None = None
        self.ble_problem = ""  # why the demo runs without Bluetooth, if it does
        self.practice: PracticeSystem | None = None
        self.services: StationServices | None = None
        self.ehr: DemoEhr | None = None
        self.gateway: DemoGateway | None = None
        self.redactor = Redactor()
        try:
            self.devices = start_demo_devices(directory, seed, cuff)
            try:
                self.ble = DemoBle(directory, seed)
            except (RuntimeError, OSError) as exc:
                self.ble_problem = str(exc)  # serial devices only; the CLI says why
            settings = demo_station_settings(
                self.broker_host, self.broker_port, directory / "state", self.devices, self.ble
            )
            self.practice = PracticeSystem(
                self.broker_host,
                self.broker_port,
                site=DEMO_SITE,
                station_id=DEMO_STATION,
                on_message=on_message,
                clinical=on_hl7 is None,
            )
            self.practice.start(
                schedule_payload(
                    self.patients,
                    site=DEMO_SITE,
                    station_id=DEMO_STATION,
                    now=datetime.now(UTC).astimezone(),
                )
            )
            if on_hl7 is not None:
                self.ehr = DemoEhr(on_hl7)
                self.ehr.start()
                self.gateway = DemoGateway(directory / "gateway", broker, self.ehr)
                self.gateway.start()
            self.services = StationServices(
                settings,
                post=post,
                redactor=self.redactor,
                reading_mode=Mode.DEMO,
                credentials=Credentials(
                    ma={DEMO_BADGE: "ma-demo", "1234": "ma-demo"},
                    staff_pin="0000",
                    biomed_pin="2468",
                ),
            )
        except BaseException:
            self.stop()
            raise
        self._armed_for: str | None = None

    def start(self) -> None:
        assert self.services is not None
        self.services.start()

    def next_batch(self) -> list[DemoPatient]:
        """A new day's list (fresh appointment ids): a sent patient leaves the station's list,
        so rooming forever needs more patients."""
        assert self.practice is not None
        offset = int(self.patients[-1].appointment_id.rsplit("-", 1)[1])
        self.patients = [
            dataclasses.replace(
                p, appointment_id=f"APT-DEMO-{offset + i + 1:04d}", mrn=f"TEST{100000 + offset + i}"
            )
            for i, p in enumerate(self.patients)
        ]
        self.practice.publish_schedule(
            schedule_payload(
                self.patients,
                site=DEMO_SITE,
                station_id=DEMO_STATION,
                now=datetime.now(UTC).astimezone(),
            )
        )
        return self.patients

    def stop(self) -> None:
        if self.services is not None and self.services.started:
            self.services.stop()
        if self.practice is not None:
            self.practice.stop()
        if self.gateway is not None:
            self.gateway.stop()
        if self.ehr is not None:
            self.ehr.stop()
        for device in self.devices:
            device.simulator.stop()
        if self.ble is not None:
            self.ble.stop()
            self.ble = None
        if self.own_broker is not None:
            self.own_broker.stop()

    def auto_devices(self) -> None:
        """On the UI thread, after each change: when the MA confirms a patient on screen, the
        simulated devices take one measurement each (the cuff is started from the station)."""
        assert self.services is not None
        presenter = self.services.presenter
        if not isinstance(presenter, ExamPresenter):
            return
        patient = presenter.rooming.patient
        confirmed = presenter.rooming.state.value == "vitals" and patient is not None
        taken = {e.device for e in presenter.rooming.entries}
        for device in self.devices:
            # The reading is in: the MA takes the probe off / the patient steps down.
            if (
                isinstance(device.model, OnPatient)
                and device.model.on_patient
                and (device.device_id in taken or not confirmed)
            ):
                device.model.take_off()
        if confirmed and patient is not None and self._armed_for != patient.appointment_id:
            self._armed_for = patient.appointment_id
            for device in self.devices:
                device.model.arm()
            if self.ble is not None:
                self.ble.arm()
            cuff = self.services.manager.serial_link("cuff") if self.services.manager else None
            if cuff is not None:
                cuff.send_command("start")
        elif not confirmed and presenter.rooming.state.value in ("signed_in", "signed_out"):
            self._armed_for = None
