"""The Kivy front end: one controller per mode, one App, demo wiring on simulated devices.

`StationUI` builds the root widget for a mode without `App.run`, so tests and benchmarks can
drive it frame by frame; `StationApp` is the one App that runs it for real. Taps go to the
presenter through `intent`; anything from another thread (device links, MQTT) goes through
`deliver`, which hands it to the Kivy loop with Clock.schedule_once. Redraws are coalesced
by one Clock trigger.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import ObjectProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition
from kivy.uix.textinput import TextInput

from station.biomed import Biomed, DeviceRow
from station.checkin import Appointment, Checkin
from station.config import DisplaySection, Settings, parse_settings
from station.models import CuffPressure, Mode
from station.rooming import Rooming
from station.rooming_data import Medication, ScheduledPatient
from station.ui.ports import MemoryBiomed, MemoryOutbox, MemorySpeaker, Speaker, VitalsOutbox
from station.ui.presenters import BiomedPresenter, ExamPresenter, LobbyPresenter
from station.ui.screens.base import BaseScreen, attach
from station.ui.screens.biomed import BiomedScreen
from station.ui.screens.complaint import ComplaintScreen
from station.ui.screens.confirm import ConfirmScreen
from station.ui.screens.lobby_contact import LobbyContactScreen
from station.ui.screens.lobby_find import LobbyFindScreen
from station.ui.screens.lobby_message import LobbyMessageScreen
from station.ui.screens.lobby_reason import LobbyReasonScreen
from station.ui.screens.lobby_welcome import LobbyWelcomeScreen
from station.ui.screens.patients import PatientsScreen
from station.ui.screens.review import ReviewScreen
from station.ui.screens.signin import SignInScreen
from station.ui.screens.vitals import VitalsScreen
from station.ui.theme import theme
from station.units import Unit

KV_DIR = Path(__file__).resolve().parent / "kv"
KV_FILES = (
    "common.kv",
    "chrome.kv",
    "signin.kv",
    "patients.kv",
    "confirm.kv",
    "vitals.kv",
    "complaint.kv",
    "review.kv",
    "lobby_welcome.kv",
    "lobby_find.kv",
    "lobby_contact.kv",
    "lobby_reason.kv",
    "lobby_message.kv",
    "biomed.kv",
)
MODE_SCREENS: dict[str, tuple[type[BaseScreen], ...]] = {
    # Biomed is reachable on every station, with the biomed PIN (sign-in / staff PIN field).
    "exam": (
        SignInScreen,
        PatientsScreen,
        ConfirmScreen,
        VitalsScreen,
        ComplaintScreen,
        ReviewScreen,
        BiomedScreen,
    ),
    "lobby": (
        LobbyWelcomeScreen,
        LobbyFindScreen,
        LobbyContactScreen,
        LobbyReasonScreen,
        LobbyMessageScreen,
        BiomedScreen,
    ),
    "biomed": (BiomedScreen,),
}
_kv_loaded = False


def load_kv() -> None:
    """Load every rule once per process, when the first UI is built (never at import)."""
    global _kv_loaded  # noqa: PLW0603 - Builder is process-global; so is this guard
    if _kv_loaded:
        return
    for name in KV_FILES:
        Builder.load_file(str(KV_DIR / name))
    _kv_loaded = True


class ExamRoot(BoxLayout):  # type: ignore[misc]
    controller = ObjectProperty(None)


class LobbyRoot(FloatLayout):  # type: ignore[misc]
    controller = ObjectProperty(None)


class BiomedRoot(BoxLayout):  # type: ignore[misc]
    controller = ObjectProperty(None)


ROOTS: dict[str, type[Any]] = {"exam": ExamRoot, "lobby": LobbyRoot, "biomed": BiomedRoot}
ENTER_KEYS = (13, 271)  # Return and keypad Enter: how HID badge and QR readers end a scan


class StationUI:
    """One mode's screens over one presenter. Only the Kivy thread calls in, except `deliver`."""

    def __init__(
        self,
        mode: str,
        presenter: Any,
        *,
        tick_interval_s: float = 1.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        load_kv()
        self.mode = mode
        self.presenter = presenter
        # The composition root's hook after every intent, hand-over and tick (on this thread):
        # it keeps the guard's session in step with the rooming.
        self._on_change = on_change or (lambda: None)
        self.root = ROOTS[mode](controller=self)
        self.sm = self.root.ids.sm
        self.sm.transition = NoTransition()
        for cls in MODE_SCREENS[mode]:
            self.sm.add_widget(cls(controller=self))
        # ids are weak proxies; the idle-warning overlay is detached when not shown.
        self._warning = self.root.ids.warning.__self__ if mode == "lobby" else None
        self.redraw = Clock.create_trigger(self._render, 0)
        self.renders = 0
        self._hid = ""
        self._tick_event = Clock.schedule_interval(self._tick, tick_interval_s)
        Window.bind(on_textinput=self._on_textinput, on_key_down=self._on_key_down)
        self.redraw()

    def close(self) -> None:
        self._tick_event.cancel()
        Window.unbind(on_textinput=self._on_textinput, on_key_down=self._on_key_down)
        if self.root.parent is not None:
            self.root.parent.remove_widget(self.root)

    # -- intents and hand-over ----------------------------------------------------------------

    @property
    def target(self) -> Any:
        """Who the showing screen talks to: the biomed presenter while biomed is open on an
        exam or lobby station, else the mode's presenter."""
        if self.mode != "biomed" and self.presenter.screen == "biomed":
            return self.presenter.biomed
        return self.presenter

    def intent(self, name: str, *args: Any) -> None:
        getattr(self.target, name)(*args)
        self._on_change()
        self.redraw()

    def deliver(self, action: Callable[[], object]) -> None:
        """From any thread: run `action` on the Kivy loop, then redraw."""

        def run(_dt: float) -> None:
            action()
            self._on_change()
            self.redraw()

        Clock.schedule_once(run, 0)

    def _tick(self, _dt: float) -> None:
        self.presenter.tick()
        self._on_change()
        self.redraw()

    # -- badge and QR readers type like a keyboard -------------------------------------------

    def _typing_into_field(self) -> bool:
        return any(isinstance(w, TextInput) and w.focus for w in self.root.walk())

    def _on_textinput(self, _window: Any, text: str) -> None:
        if not self._typing_into_field():
            self._hid += text

    def _on_key_down(self, _window: Any, key: int, *_args: Any) -> bool:
        if key not in ENTER_KEYS or self._typing_into_field() or not self._hid:
            return False
        line, self._hid = self._hid, ""
        self.hid_line(line)
        return True

    def hid_line(self, line: str) -> None:
        if self.mode == "exam" and self.presenter.screen == "signin":
            self.intent("sign_in", line)
        elif self.mode == "exam" and self.presenter.screen == "patients":
            self.intent("scan_barcode", line)  # a wristband or appointment slip
        elif self.mode == "lobby" and self.presenter.screen in ("lobby_welcome", "lobby_find"):
            self.intent("scan_qr", line)

    # -- rendering ----------------------------------------------------------------------------

    @property
    def screen(self) -> BaseScreen:
        screen: BaseScreen = self.sm.current_screen
        return screen

    def _render(self, *_args: Any) -> None:
        self.renders += 1
        presenter = self.presenter
        if self.sm.current != presenter.screen:
            self.sm.current = presenter.screen
        self.screen.render(self.target)
        ids = self.root.ids
        if self.mode == "exam":
            banner = presenter.banner()
            who = f"MA {banner.ma}" if banner.ma else "Not signed in"
            ids.who.text = f"{who}   {banner.patient}".strip()
            if banner.online:
                ids.network.text = "online"
            else:
                ids.network.text = f"OFFLINE — {banner.queued} queued"
            ids.sign_out.opacity = 1 if banner.ma else 0
            ids.sign_out.disabled = not banner.ma
            ids.message.text = banner.message
        elif self.mode == "lobby":
            view = presenter.view()
            theme.set_high_contrast(view.large_text)
            ids.large.text = view.text["large"]
            ids.help.text = view.text["help_sent"] or view.text["help"]
            ids.english.background_color = theme.button if view.language == "en" else theme.quiet
            ids.spanish.background_color = theme.button if view.language == "es" else theme.quiet
            ids.message.text = view.message
            attach(self.root, self._warning, shown=bool(view.warning))
            ids.warning_text.text = view.warning
            ids.still_here.text = view.text["still_here"]
        else:
            ids.message.text = presenter.message


class StationApp(App):  # type: ignore[misc]
    """The one App; it only hosts the root widget the controller built."""

    def __init__(self, ui_factory: Callable[[], StationUI], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._factory = ui_factory
        self.ui: StationUI | None = None

    def build(self) -> Any:
        self.title = "Rooming station"
        self.ui = self._factory()
        return self.ui.root


# ------------------------------------------------------------------------------------------
# Demo wiring: obviously fake patients, simulated devices, the in-memory outbox
# ------------------------------------------------------------------------------------------

DEMO_CREDENTIALS = {"BADGE-DEMO": "ma-demo", "1234": "ma-demo"}
DEMO_STAFF_PIN = "0000"
DEMO_BIOMED_PIN = "2468"


def demo_schedule(today: date) -> tuple[ScheduledPatient, ...]:
    del today  # the demo list is the same every day
    return (
        ScheduledPatient(
            appointment_id="APT-DEMO-0001",
            mrn="TEST100001",
            family_name="ZZTEST",
            given_name="Alpha",
            birth_date=date(1970, 5, 17),
            start_time="09:00",
            medications=(Medication(name="lisinopril", dose="10 mg daily"),),
            reason_for_visit="follow-up blood pressure",
        ),
        ScheduledPatient(
            appointment_id="APT-DEMO-0002",
            mrn="TEST100002",
            family_name="ZZTEST",
            given_name="Bravo",
            birth_date=date(1985, 11, 2),
            start_time="09:30",
        ),
        ScheduledPatient(
            appointment_id="APT-DEMO-0003",
            mrn="TEST100003",
            family_name="ZZTEST",
            given_name="Charlie",
            birth_date=date(1961, 3, 14),
            start_time="10:00",
        ),
    )


def demo_appointments() -> tuple[Appointment, ...]:
    return (
        Appointment(
            appointment_id="APT-DEMO-0003",
            family_name="ZZTEST",
            given_name="Charlie",
            birth_date=date(1961, 3, 14),
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
) -> Any:
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
        return ExamPresenter(rooming, box, sink)
    if mode == "lobby":
        checkin = Checkin(clock=clock, staff_pin=DEMO_STAFF_PIN)
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
    return BiomedPresenter(biomed, port)


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
