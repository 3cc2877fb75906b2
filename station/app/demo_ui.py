"""`station ui`'s demo wiring: obviously fake patients (ZZTEST), simulated devices on a thread
of their own, the in-memory outbox — the UI package itself holds no demo data."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from station.biomed import Biomed, DeviceRow
from station.checkin import Appointment, Checkin
from station.config import DisplaySection, Settings, parse_settings
from station.demo_people import DEMO_PEOPLE, DemoPatient
from station.models import AnyReading, CuffPressure, Mode
from station.questionnaires import load_library
from station.rooming import Rooming
from station.rooming_data import Medication, ScheduledPatient
from station.ui.app import StationUI
from station.ui.ports import MemoryBiomed, MemoryOutbox, MemorySpeaker, Speaker, VitalsOutbox
from station.ui.presenters import BiomedPresenter, ExamPresenter, LobbyPresenter
from station.units import Unit

DEMO_CREDENTIALS = {"BADGE-DEMO": "ma-demo", "1234": "ma-demo"}
DEMO_STAFF_PIN = "0000"
DEMO_BIOMED_PIN = "2468"


def demo_schedule(today: date) -> tuple[ScheduledPatient, ...]:
    del today  # the demo list is the same every day
    alpha, bravo, charlie = DEMO_PEOPLE  # the people `station demo` rooms too

    def scheduled(person: DemoPatient, start_time: str, **more: Any) -> ScheduledPatient:
        return ScheduledPatient(
            appointment_id=person.appointment_id,
            mrn=person.mrn,
            family_name=person.family,
            given_name=person.given,
            birth_date=person.birth_date,
            start_time=start_time,
            **more,
        )

    return (
        scheduled(
            alpha,
            "09:00",
            medications=(Medication(name="lisinopril", dose="10 mg daily"),),
            reason_for_visit="follow-up blood pressure",
        ),
        scheduled(bravo, "09:30"),
        scheduled(charlie, "10:00"),
    )


def demo_appointments() -> tuple[Appointment, ...]:
    charlie = DEMO_PEOPLE[2]
    return (
        Appointment(
            appointment_id=charlie.appointment_id,
            family_name=charlie.family,
            given_name=charlie.given,
            birth_date=charlie.birth_date,
            phone="555-010-0199",
            email="charlie@example.com",
            qr_token="qr-demo-0003",  # noqa: S106 - a demo QR code, not a secret
        ),
    )


def demo_settings() -> Settings:
    return parse_settings(
        {
            "station": {"site": "demo-clinic", "station_id": "exam-1", "room": "Exam 1"},
            "broker": {"host": "localhost", "port": 1883, "require_tls": False},
            "devices": [
                {"id": "cuff", "profile": "and-ua-651ble", "address": "AA:BB:CC:DD:EE:01"},
                {"id": "oximeter", "profile": "nonin-3230", "address": "AA:BB:CC:DD:EE:02"},
            ],
        },
        "demo",
    )


def utc_now() -> datetime:
    # Aware, in the station's zone: device clocks send local wall time without a zone,
    # and the guard reads those in the zone of this clock.
    return datetime.now(UTC).astimezone()


DEMO_DEVICES = ("cuff", "oximeter", "thermometer", "scale")


def build_presenter(
    mode: str,
    *,
    clock: Callable[[], datetime] = utc_now,
    outbox: VitalsOutbox | None = None,
    events: Any = None,
    speaker: Speaker | None = None,
    display: DisplaySection | None = None,
    language: str = "en",
) -> Any:
    """A mode's presenter on demo data; `language`: the station's (`[display] language`)."""
    memory = MemoryOutbox()
    box: Any = outbox or memory
    sink: Any = events or (outbox if isinstance(outbox, MemoryOutbox) else memory)
    if mode == "exam":
        rooming = Rooming(
            clock=clock,
            credentials=DEMO_CREDENTIALS,
            display=display,
            mode=Mode.DEMO,
            bound_devices=DEMO_DEVICES,
        )
        rooming.set_schedule(demo_schedule(clock().date()))
        return ExamPresenter(rooming, box, sink, language=language)
    if mode == "lobby":
        # The intake questionnaires and the insurance question, as on a lobby station with the
        # default [intake] settings.
        checkin = Checkin(clock=clock, staff_pin=DEMO_STAFF_PIN, questionnaires=load_library(),
                          ask_insurance=True, default_language=language)
        checkin.set_appointments(demo_appointments())
        return LobbyPresenter(checkin, sink, speaker or MemorySpeaker())
    settings = demo_settings()
    biomed = Biomed(clock=clock, pin=DEMO_BIOMED_PIN, settings=settings)
    port = MemoryBiomed(
        settings,
        (
            DeviceRow(
                device_id="cuff",
                profile="and-ua-651ble",
                address="AA:BB:CC:DD:EE:01",
                present=True,
                battery_percent=76,
                firmware="1.4",
            ),
            DeviceRow(
                device_id="oximeter",
                profile="nonin-3230",
                address="AA:BB:CC:DD:EE:02",
                present=True,
            ),
            DeviceRow(
                device_id="scale",
                profile="and-uc-352ble",
                address="AA:BB:CC:DD:EE:04",
                present=False,
                last_error="not seen for 2 days",
            ),
        ),
        clock=clock,
    )
    # What the screen's Bluetooth scan "finds" on `station ui` (no Bluetooth here).
    port.nearby = (
        DeviceRow(
            device_id="ble-aabbccddee05",
            profile="generic-ble-pulse-oximeter",
            address="AA:BB:CC:DD:EE:05",
            present=True,
            name="PLX",
            rssi_dbm=-61,
        ),
    )
    return BiomedPresenter(biomed, port, language=language)


def demo_test_reading(profile: str, rng: random.Random) -> AnyReading:
    """A simulated device's measurement for the biomed test: a frame in the device's own
    protocol (the codecs' encoders), decoded by the real codec, so the test shows raw bytes
    too. Marked mode=demo."""
    from station.devices.codecs.gatt import blood_pressure, nonin, thermometer, weight

    readings: list[Any]
    if profile.startswith("and-ua") or "cuff" in profile or "bp" in profile:
        systolic, diastolic = rng.choice([(118, 76), (124, 79), (131, 84)])
        frame = blood_pressure.encode_measurement(
            systolic, diastolic, round((systolic + 2 * diastolic) / 3),
            pulse_rate_bpm=rng.randrange(60, 90),
        )  # fmt: skip
        readings = list(blood_pressure.decode_measurement(frame))
    elif profile.startswith("nonin"):
        readings = list(nonin.decode(nonin.encode(rng.choice([96, 97, 98]), rng.randrange(60, 90))))
    elif "thermo" in profile:
        frame = thermometer.encode_measurement(rng.choice([36.6, 36.9, 37.1]))
        readings = list(thermometer.decode_measurement(frame))
    else:
        frame = weight.encode_measurement(round(rng.uniform(55, 100), 1))
        readings = list(weight.decode_measurement(frame))
    reading: AnyReading = readings[0].model_copy(update={"mode": Mode.DEMO})
    return reading


def feed_demo_biomed(
    ui: StationUI, *, seed: int = 1, settle_s: float = 2.0, every_s: float = 8.0
) -> threading.Thread:
    """`station ui --mode biomed`'s simulated devices: while a device test is open, that
    device "measures" after `settle_s` and then every `every_s`; each reading reaches the
    screen through `deliver`, as from a link thread."""
    presenter: BiomedPresenter = ui.presenter
    port = presenter.port
    assert isinstance(port, MemoryBiomed)
    rng = random.Random(seed)  # noqa: S311 - simulated values, not secrets

    def measured(device_id: str, reading: AnyReading) -> None:
        port.readings[device_id] = (reading, utc_now())
        presenter.refresh()

    def run() -> None:
        testing: str | None = None
        due = 0.0
        while not ui.closed:
            now_testing = presenter.biomed.testing  # reading one attribute is safe here
            if now_testing != testing:
                testing, due = now_testing, time.monotonic() + settle_s
            elif testing is not None and time.monotonic() >= due:
                profile = next((r.profile for r in port.rows if r.device_id == testing), "")
                ui.deliver(partial(measured, testing, demo_test_reading(profile, rng)))
                due = time.monotonic() + every_s
            time.sleep(0.05)

    thread = threading.Thread(target=run, name="demo-biomed-devices", daemon=True)
    thread.start()
    return thread


def offline_outbox() -> MemoryOutbox:
    """`station ui` has no broker: its outbox twin says so (the header never claims
    "online"), and what is sent waits on this station, counted."""
    outbox = MemoryOutbox()
    outbox.set_online(False)
    return outbox


def demo_station_ui(
    mode: str, *, speaker: Speaker | None = None, devices: bool = True, language: str = "en"
) -> StationUI:
    """What `station ui --mode MODE` shows: the mode's presenter on the demo data with no
    broker (offline, no barcode lookup), and (`devices`) its simulated devices feeding it."""
    presenter = build_presenter(
        mode, outbox=offline_outbox(), speaker=speaker, language=language
    )
    ui = StationUI(mode, presenter)
    if devices and mode == "exam":
        feed_demo_devices(ui)
    if devices and mode == "biomed":
        feed_demo_biomed(ui)
    return ui


def cuff_frames(peak_mmhg: float = 170.0, steps: int = 30) -> list[CuffPressure]:
    """Live cuff pressure while inflating, as the simulated cuff sends it at 10 Hz."""
    return [
        CuffPressure(
            cuff_pressure_mmhg=round(peak_mmhg * (i + 1) / steps, 1),
            unit_as_sent=Unit.MMHG,
            codec="sim:cuff",
            codec_version="1",
            mode=Mode.DEMO,
        )
        for i in range(steps)
    ]


def feed_demo_devices(ui: StationUI, *, seed: int = 1, frame_s: float = 0.1) -> threading.Thread:
    """A device thread: cuff inflation at 10 Hz, then one reading per simulated device.

    Runs each time the MA confirms a patient; everything reaches the screen via `deliver`.
    """
    from station.demo import simulated_readings

    presenter: ExamPresenter = ui.presenter
    rng = random.Random(seed)  # noqa: S311 - simulated vitals, not secrets

    def wait_for(states: tuple[str, ...]) -> None:
        # Reading one attribute from this thread is safe; changing anything is not.
        while presenter.rooming.state.value not in states:
            time.sleep(0.05)

    def run() -> None:
        while True:
            wait_for(("vitals",))
            for frame in cuff_frames():
                ui.deliver(partial(presenter.device_reading, frame, "cuff"))
                time.sleep(frame_s)
            at = datetime.now() + timedelta(seconds=1)
            names = DEMO_DEVICES
            for name, reading in zip(names, simulated_readings(rng, at), strict=True):
                ui.deliver(partial(presenter.device_reading, reading, name))
                time.sleep(frame_s * 5)
            wait_for(("signed_out", "signed_in", "sent"))

    thread = threading.Thread(target=run, name="demo-devices", daemon=True)
    thread.start()
    return thread
