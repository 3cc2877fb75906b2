"""The Kivy front end: one controller per mode and one App (the demo wiring of `station ui` is
in station/app/demo_ui.py).

`StationUI` builds the root widget for a mode without `App.run`, so tests and benchmarks can
drive it frame by frame; `StationApp` is the one App that runs it for real. Taps go to the
presenter through `intent`; anything from another thread (device links, MQTT) goes through
`deliver`, which hands it to the Kivy loop with Clock.schedule_once. Redraws are coalesced
by one Clock trigger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.base import ExceptionManager
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import ObjectProperty
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition
from kivy.uix.textinput import TextInput

from station.locale import LANGUAGES
from station.locale import language as language_named
from station.ui import i18n
from station.ui.faults import BURST_LIMIT, FaultBurst, KioskExceptionHandler, log, log_fault
from station.ui.keyboard import KeyboardPlacement
from station.ui.presenters.base import Tone
from station.ui.presenters.wedge import WedgeReader
from station.ui.screens.base import BaseScreen, attach
from station.ui.screens.biomed import BiomedScreen
from station.ui.screens.complaint import ComplaintScreen
from station.ui.screens.confirm import ConfirmScreen
from station.ui.screens.lists import AllergiesScreen, MedicationsScreen, PocScreen
from station.ui.screens.lobby_contact import LobbyContactScreen
from station.ui.screens.lobby_find import LobbyFindScreen
from station.ui.screens.lobby_insurance import LobbyInsuranceScreen
from station.ui.screens.lobby_message import LobbyMessageScreen
from station.ui.screens.lobby_question import LobbyQuestionScreen
from station.ui.screens.lobby_reason import LobbyReasonScreen
from station.ui.screens.lobby_welcome import LobbyWelcomeScreen
from station.ui.screens.patient_entry import PatientEntryScreen
from station.ui.screens.patients import PatientsScreen
from station.ui.screens.review import ReviewScreen
from station.ui.screens.signin import SignInScreen
from station.ui.screens.vitals import VitalsScreen
from station.ui.theme import TONE_COLOURS, theme

KV_DIR = Path(__file__).resolve().parent / "kv"
KV_FILES = (
    "common.kv",
    "chrome.kv",
    "signin.kv",
    "patients.kv",
    "patient_entry.kv",
    "confirm.kv",
    "vitals.kv",
    "complaint.kv",
    "review.kv",
    "lists.kv",
    "lobby_welcome.kv",
    "lobby_find.kv",
    "lobby_contact.kv",
    "lobby_reason.kv",
    "lobby_question.kv",
    "lobby_insurance.kv",
    "lobby_message.kv",
    "biomed.kv",
)
MODE_SCREENS: dict[str, tuple[type[BaseScreen], ...]] = {
    # Biomed is reachable on every station, with the biomed PIN (sign-in / staff PIN field).
    "exam": (
        SignInScreen,
        PatientsScreen,
        PatientEntryScreen,
        ConfirmScreen,
        VitalsScreen,
        ComplaintScreen,
        ReviewScreen,
        MedicationsScreen,
        AllergiesScreen,
        PocScreen,
        BiomedScreen,
    ),
    "lobby": (
        LobbyWelcomeScreen,
        LobbyFindScreen,
        LobbyContactScreen,
        LobbyReasonScreen,
        LobbyQuestionScreen,
        LobbyInsuranceScreen,
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


class ExamRoot(FloatLayout):  # type: ignore[misc]
    controller = ObjectProperty(None)


class LobbyRoot(FloatLayout):  # type: ignore[misc]
    controller = ObjectProperty(None)


class BiomedRoot(FloatLayout):  # type: ignore[misc]
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
        # The station's language (`[display] language`): the .kv labels are evaluated in it as
        # the screens are built, and `tr` translates the screens' own words. The lobby's
        # screens show the patient's choice, from the presenter's view.
        self.language: str = getattr(presenter, "language", "en")
        self.tr = i18n.use(self.language)
        self.root = ROOTS[mode](controller=self)
        self.sm = self.root.ids.sm
        self.sm.transition = NoTransition()
        for cls in MODE_SCREENS[mode]:
            self.sm.add_widget(cls(controller=self))
        # ids are weak proxies; the overlays are detached when not shown (a hidden widget
        # would still swallow touches).
        self._warning = self.root.ids.warning.__self__ if mode == "lobby" else None
        self._message = self.root.ids.message.__self__
        self._language_buttons: dict[str, Any] = {}
        if mode == "lobby":
            self._add_language_buttons()
        self.redraw = Clock.create_trigger(self._render, 0)
        self.renders = 0
        self._closed = False
        self._hid = ""
        self._wedge = WedgeReader()
        self._now = time.monotonic
        self._faults = FaultBurst()
        self._tick_event = Clock.schedule_interval(self._tick, tick_interval_s)
        Window.bind(on_textinput=self._on_textinput, on_key_down=self._on_key_down)
        # A field letting go of the docked keyboard takes it off the window.
        self._text_on = Clock.create_trigger(self._text_events_on, 0)
        Window.bind(children=self._text_on)
        # The docked keyboard (station/ui/keyboard.py): the screen moves so the field being
        # typed, and the buttons under it where they fit, stay above the keys.
        content = self.sm if self.sm.parent is self.root else self.sm.parent
        self.keyboard = KeyboardPlacement(self.root, content)
        self.redraw()

    def _add_language_buttons(self) -> None:
        from functools import partial

        from kivy.factory import Factory

        box = self.root.ids.languages
        for lang in LANGUAGES:
            button = Factory.QuietButton(text=lang.native_name, size_hint_y=1)
            button.bind(on_release=partial(lambda code, *_: self.intent("set_language", code),
                                           lang.code))
            box.add_widget(button)
            self._language_buttons[lang.code] = button
            # Named like a kv id ("language_es") for what reads the screen by id (the probe).
            self.root.ids[f"language_{lang.code}"] = button

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True  # a hand-over still queued on the Clock finds nothing to draw
        self._tick_event.cancel()
        self.redraw.cancel()
        Window.unbind(on_textinput=self._on_textinput, on_key_down=self._on_key_down)
        Window.unbind(children=self._text_on)
        self._text_on.cancel()
        self.keyboard.close()
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
        try:
            getattr(self.target, name)(*args)
            self._on_change()
        except Exception as exc:  # never a dead kiosk (station.ui.faults)
            self.fault(exc, f"the {name!r} intent")
        self.redraw()

    def deliver(self, action: Callable[[], object]) -> None:
        """From any thread: run `action` on the Kivy loop, then redraw."""

        def run(_dt: float) -> None:
            if self._closed:
                return
            try:
                action()
                self._on_change()
            except Exception as exc:  # never a dead kiosk
                self.fault(exc, "a hand-over from a device or the network")
            self.redraw()

        Clock.schedule_once(run, 0)

    def _tick(self, _dt: float) -> None:
        try:
            self.presenter.tick()
            self._on_change()
        except Exception as exc:  # never a dead kiosk
            self.fault(exc, "the timer")
        self.redraw()

    def fault(self, exc: BaseException, during: str) -> None:
        """An unexpected error on the Kivy thread: logged without its message (it may hold
        patient data), the screen's presenter told (the lobby wipes and sends the patient to
        the front desk; the exam station says so and keeps the rooming), the loop goes on."""
        screen = getattr(self.sm, "current", "?")
        burst = self._faults.add()
        if burst <= BURST_LIMIT:
            log_fault(exc, during, screen)
        if burst == BURST_LIMIT:
            log.error("unexpected errors keep coming: not logged again while they do")
        try:
            self.target.fault()
        except Exception as second:  # recovering must not raise either
            if burst < BURST_LIMIT:
                log_fault(second, "recovering from that error", screen)
        if burst < BURST_LIMIT and not self._closed:
            self.redraw()

    # -- badge and QR readers type like a keyboard -------------------------------------------

    def _typing_into_field(self) -> bool:
        return any(isinstance(w, TextInput) and w.focus for w in self.root.walk())

    def _on_textinput(self, _window: Any, text: str) -> None:
        # Every character, whatever has the focus (a focused field gets it too): the wedge
        # reader tells a scanner's burst from typing by timing.
        self._wedge.char(text, self._now())
        if not self._typing_into_field():
            self._hid += text
        # A focused field binds the keyboard after us, so it would see Enter first (and
        # validate a half-typed form with the scanned code in it): move our key handler in
        # front again before the Enter of this burst arrives.
        Window.unbind(on_key_down=self._on_key_down)
        Window.bind(on_key_down=self._on_key_down)

    def _on_key_down(self, _window: Any, key: int, *_args: Any) -> bool:
        if key not in ENTER_KEYS:
            return False
        try:
            return self._enter()
        except Exception as exc:  # never a dead kiosk
            self.fault(exc, "a scan")
            return True

    def _enter(self) -> bool:
        code = self._wedge.enter(self._now())
        if code is not None:
            self._hid = ""
            self._take_back(code)
            self.hid_line(code)
            return True  # the scan's Enter validates no field
        if self._typing_into_field() or not self._hid:
            self._hid = ""
            return False
        line, self._hid = self._hid, ""
        self.hid_line(line)
        return True

    def _text_events_on(self, *_args: Any) -> None:
        """Keep SDL's text events on for the scanners while no field is typed in. Kivy stops
        them whenever a field lets go of the keyboard (release_keyboard -> SDL_StopTextInput),
        and from then on a badge or QR reader's characters never arrived: #15, "badge scans
        stop working once any text field has had focus" (only a real window shows it: the
        offscreen tests dispatch on_textinput themselves). Kivy's SDL2 window storage is not
        public API, hence the guards; tests/ui/test_real_window.py holds it."""
        if self._closed or self._typing_into_field():
            return
        show = getattr(getattr(Window, "_win", None), "show_keyboard", None)
        if show is not None:
            show(None, "", "text", False)  # SDL_StartTextInput; a no-op when already on

    def _take_back(self, code: str) -> None:
        """The scan went into the focused field as well: take it out and leave the field."""
        for widget in self.root.walk():
            if isinstance(widget, TextInput) and widget.focus:
                if widget.text.endswith(code):
                    widget.text = widget.text[: -len(code)]
                widget.focus = False

    def hid_line(self, line: str) -> None:
        """A scanned code (or a badge typed + Enter with no field focused): used where it
        means something, else the MA or patient is told it was read and where it works."""
        screen = self.presenter.screen
        if self.mode == "exam" and screen == "signin":
            self.intent("sign_in", line)
        elif self.mode == "exam" and screen == "patients":
            self.intent("scan_barcode", line)  # a wristband or appointment slip
        elif self.mode == "lobby" and screen in ("lobby_welcome", "lobby_find"):
            self.intent("scan_qr", line)
        elif self.mode == "lobby" and screen == "lobby_message" and self.presenter.finished:
            # The next patient scans while the last one's "checked in" is still showing.
            self.presenter.restart()
            self.intent("scan_qr", line)
        elif self.mode != "biomed" and screen != "biomed":
            self.target.say(self.presenter.scan_elsewhere(), Tone.WARNING)
            self.redraw()

    # -- rendering ----------------------------------------------------------------------------

    @property
    def screen(self) -> BaseScreen:
        screen: BaseScreen = self.sm.current_screen
        return screen

    def _render(self, *_args: Any) -> None:
        if self._closed:
            return
        try:
            self._draw()
        except Exception as exc:  # never a dead kiosk
            self.fault(exc, "drawing")
            try:  # the screen failed before the overlay was drawn: draw the message now
                self._show_message(self.target.message, self.target.tone)
            except Exception as second:
                log_fault(second, "showing the error", self.sm.current)

    def _draw(self) -> None:
        self.renders += 1
        presenter = self.presenter
        if self.sm.current != presenter.screen:
            self._release_fields()
            self.sm.current = presenter.screen
        self._text_on()
        self.screen.render(self.target)
        ids = self.root.ids
        target = self.target
        self._show_message(target.message, target.tone)
        if self.mode == "exam":
            banner = presenter.banner()
            _ = self.tr
            who = _("MA {ma}").format(ma=banner.ma) if banner.ma else _("Not signed in")
            ids.who.text = f"{who}   {banner.patient}".strip()
            if banner.online:
                ids.network.text = _("online")
            else:
                ids.network.text = _("OFFLINE — {count} queued").format(count=banner.queued)
            ids.sign_out.opacity = 1 if banner.ma else 0
            ids.sign_out.disabled = not banner.ma
        elif self.mode == "lobby":
            view = presenter.view()
            theme.set_high_contrast(view.large_text)
            i18n.use_font(language_named(view.language).font)
            ids.large.text = view.text["large"]
            ids.help.text = view.text["help_sent"] or view.text["help"]
            # After the theme switch: its bindings re-set every button's fill.
            for code, button in self._language_buttons.items():
                button.fill = theme.button if view.language == code else theme.quiet
            attach(self.root, self._warning, shown=bool(view.warning))
            ids.warning_text.text = view.warning
            ids.still_here.text = view.text["still_here"]

    def _release_fields(self) -> None:
        """A field on the screen being left lets go of the keyboard: it stayed focused off
        screen (Enter in the lobby's reason box moves on without unfocusing), and the docked
        keyboard stayed up over the next screen's buttons with nothing to type into."""
        for widget in self.screen.walk():
            if isinstance(widget, TextInput) and widget.focus:
                widget.focus = False

    def _show_message(self, text: str, tone: str) -> None:
        overlay = self._message
        overlay.text = text
        overlay.fill = TONE_COLOURS.get(tone, TONE_COLOURS["info"])
        # Above the screens, below the lobby's idle warning when that is up (index 1 with the
        # warning down put it under the screens: the lobby's messages were never seen).
        warning_up = self._warning is not None and self._warning.parent is not None
        attach(self.root, overlay, shown=bool(text), index=1 if warning_up else 0)
        if text and self._warning is not None and self._warning.parent is not None:
            self.root.remove_widget(self._warning)
            self.root.add_widget(self._warning)


class StationApp(App):  # type: ignore[misc]
    """The one App; it only hosts the root widget the controller built. No Kivy settings
    panel (F1 opened it on the kiosk, and its changes persisted in config.ini)."""

    use_kivy_settings = False

    def open_settings(self, *args: Any) -> bool:
        return False

    def __init__(
        self, ui_factory: Callable[[], StationUI], *, probe: Path | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._factory = ui_factory
        self._probe_path = probe  # test-only window introspection (station/ui/probe.py)
        self.probe: Any = None
        self.ui: StationUI | None = None

    def build(self) -> Any:
        self.title = "Rooming station"
        self.ui = self._factory()
        # What escapes the controller's own guards (a binding, someone else's Clock callback)
        # reaches Kivy's ExceptionManager: there too it becomes a fault, not a dead process.
        self._handler = KioskExceptionHandler(self._fault)
        ExceptionManager.add_handler(self._handler)
        if self._probe_path is not None:
            from station.ui.probe import Probe

            self.probe = Probe(self.ui, self._probe_path)
        return self.ui.root

    def _fault(self, exc: BaseException, during: str) -> None:
        if self.ui is None:
            log_fault(exc, during, "?")
        else:
            self.ui.fault(exc, during)

    def on_stop(self) -> None:
        ExceptionManager.remove_handler(self._handler)
