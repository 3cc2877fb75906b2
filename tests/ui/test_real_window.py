"""Whole flows through a real window: the station in its own process on a private Xvfb (SDL's
x11 driver), tapped and typed at with xdotool, scanned at like a USB badge reader, with
screenshots of the X screen at every step (tests/_artifacts/real_window/).

Where to tap comes from the app itself (station/ui/probe.py: kv ids, texts and on-screen
rectangles), so no pixel is hard-coded. The harness is tests/fixtures/xwindow.py.
"""

from __future__ import annotations

import json
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from station.ui.keyboard import LETTERS, NUMBERS
from tests.fixtures.broker import Broker
from tests.fixtures.kivy import SCREENS_DIR
from tests.fixtures.xwindow import (
    RealWindow,
    find_all,
    keyboard_placement_problems,
    texts,
)
from tests.sync.consumer import contract_problems

pytestmark = [pytest.mark.ui, pytest.mark.slow]

SIZES = [(800, 480), (1280, 800)]  # the Pi 7" touchscreen; a 10" kiosk tablet


def focused_on(field_id: str) -> Callable[[dict[str, Any]], bool]:
    """The field (kv id, or hint for a form's field) has the focus and a keyboard is up."""

    def check(snap: dict[str, Any]) -> bool:
        focused = snap["focused"]
        return (
            focused is not None
            and field_id in (focused["id"], focused["hint"])
            and bool(snap["keyboards"])
        )

    return check


def field_text(field_id: str, text: str) -> Callable[[dict[str, Any]], bool]:
    """The field shows `text`: every key typed has been taken in (so an Enter pressed now
    comes well after the last of them, as a person's does, not in a scanner's burst)."""
    return lambda snap: any(w["id"] == field_id and w["text"] == text for w in snap["widgets"])


def assert_keyboard_placed(
    app: RealWindow, field_id: str, action: str | None, layout: str
) -> dict[str, Any]:
    """#15, measured on the window: while `field_id` is typed in, the docked keyboard is whole
    in the window, full width at the bottom, its keys >= 48 px; the field is whole on screen
    and clear of it; and so is the screen's action button `action` (None: Enter is the
    action). Digits-only fields (a date of birth, a PIN, a phone number) get the number pad."""
    app.wait(focused_on(field_id), f"{field_id!r} focused with the on-screen keyboard up")
    snap, _ = app.settled(field_id)
    problems = keyboard_placement_problems(snap, action)
    assert problems == [], (field_id, problems)
    assert [k["layout"] for k in snap["keyboards"]] == [layout], field_id
    return snap


# ------------------------------------------------------------------------------- the lobby


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_lobby_check_in_through_the_real_window(
    real_window: Callable[..., RealWindow], size: tuple[int, int]
) -> None:
    width, height = size
    app = real_window(
        ["ui", "--mode", "lobby", "--size", f"{width}x{height}"],
        width,
        height,
        f"lobby_{width}x{height}",
    )
    snap = app.wait_screen("lobby_welcome")
    assert (snap["window"]["width"], snap["window"]["height"]) == (width, height)
    png = app.shot("1_welcome").read_bytes()
    # A PNG of the whole X screen (PNG spec, ISO/IEC 15948: signature, then IHDR's width and
    # height) that shows something: not one colour throughout.
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (width, height)
    assert len(set(zlib.decompress(png[41:-12]))) > 16
    # The staff PIN (five quick taps on the hidden corner): the number pad, the PIN and its
    # OK clear of it (#15: "the docked QWERTY covers ... the staff PIN").
    (corner,) = [w for w in snap["widgets"] if w["cls"] == "StaffCorner"]
    x, y = (round(corner["rect"][0] + 10), round(corner["rect"][1] + corner["rect"][3] - 10))
    app.xdotool("mousemove", "--window", app.window_id, str(x), str(y))
    app.xdotool("click", "--repeat", "5", "--delay", "150", "1")
    assert_keyboard_placed(app, "pin", "staff_ok", NUMBERS)
    app.shot("1_staff_pin")
    app.tap("staff_cancel")
    app.wait(lambda s: not find_all(s, "pin") and s["keyboards"] == [], "the PIN row closed")
    app.tap("Español")
    app.wait(
        lambda s: (
            find_all(s, "language_es") and "Español" in texts(s) and "Welcome" not in texts(s)
        ),
        "the screen in Spanish",
    )
    app.tap("start")
    app.wait_screen("lobby_find")

    app.tap("name")
    assert_keyboard_placed(app, "name", "find", LETTERS)
    for letter in "zz":  # on the on-screen keys, as a patient types
        app.tap_key(letter)
    app.type("test")  # and on a USB keyboard, which works beside it
    app.wait(field_text("name", "zztest"), "the name as typed")
    app.shot("2_find_name")
    app.key("Return")  # Enter moves on to the date of birth (#15)
    assert_keyboard_placed(app, "dob", "find", NUMBERS)
    for digit in "03141961":
        app.tap_key(digit)
    app.wait(field_text("dob", "03141961"), "the date of birth as typed")
    # Digits read as a date with the month's name; Spanish writes the day first and the
    # month in lower case: "14 de marzo de 1961" (RAE, Ortografía 2010, 4.2.4.1, 8.1.3.2).
    app.wait(lambda s: "14 de marzo de 1961" in texts(s), "the date of birth in words")
    # The date read back takes a line: the field and Find still clear of the keys.
    assert_keyboard_placed(app, "dob", "find", NUMBERS)
    shot = app.shot("3_find_dob")
    if size == (800, 480):
        (SCREENS_DIR / "lobby_find_keyboard.png").write_bytes(shot.read_bytes())
    app.tap_key("\u23ce")  # the pad's Enter: Find

    app.wait_screen("lobby_contact")
    app.shot("4_contact")
    app.tap("change")  # a new phone number and e-mail: the number pad, then the letters
    app.tap("new_phone")
    assert_keyboard_placed(app, "new_phone", "send_change", NUMBERS)
    app.tap("new_email")
    assert_keyboard_placed(app, "new_email", "send_change", LETTERS)
    app.shot("4_contact_change")
    app.tap("keep")
    app.tap("ok")  # "these are still right"
    app.wait_screen("lobby_reason")
    app.tap("reason")
    assert_keyboard_placed(app, "reason", "done", LETTERS)
    app.type("tos y fiebre")
    app.wait(field_text("reason", "tos y fiebre"), "the reason as typed")
    app.shot("5_reason")
    app.key("Return")  # Enter means done in the reason box (#15), never a new line
    # The clinic's questions (PHQ-9 in Spanish, the insurance question) are taps, no typing.
    while (snap := app.wait(lambda s: s["screen"] != "lobby_reason", "the next step"))[
        "screen"
    ] in ("lobby_question", "lobby_insurance"):
        progress = [w["text"] for w in snap["widgets"] if w["id"] in ("progress", "title")]
        answers = [w["text"] for w in snap["widgets"] if w["kind"] == "button" and not w["id"]]
        quiet = [a for a in answers if a in ("Ningún día", "No")]  # the shortest way on
        app.tap("no" if snap["screen"] == "lobby_insurance" else (quiet or answers)[0])
        app.wait(
            lambda s, before=progress: (
                [w["text"] for w in s["widgets"] if w["id"] in ("progress", "title")] != before
            ),
            "the answer taken",
        )

    # Checked in: the field and the keyboard are gone with the reason screen.
    app.wait(
        lambda s: s["screen"] == "lobby_message" and s["focused"] is None and s["keyboards"] == [],
        "the checked-in screen with no keyboard",
    )
    app.shot("6_checked_in")
    app.tap("action")
    app.wait_screen("lobby_welcome")
    # The next patient's QR slip, after the last one typed into three fields (#15: "same
    # for the lobby QR after the first patient typed").
    app.scan("qr-demo-0003")
    app.wait_screen("lobby_contact")
    app.shot("7_next_patient_by_qr")


# ------------------------------------------------------------------------------- the exam room

SITE, STATION = "demo-clinic", "exam-1"  # `station demo`'s station
BADGE = "BADGE-DEMO"  # the demo's MA badge (`station demo --help`)
COMPLAINT = "scratchy throat since Monday"


class Watcher:
    """The practice side of the broker, listening only: every message on the demo station's
    topics, each held to its published JSON Schema (docs/schemas/)."""

    def __init__(self, broker: Broker) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="real-window-watcher")
        self.client.on_connect = lambda c, *_: c.subscribe(f"rooming/v1/{SITE}/{STATION}/+", 1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(
        self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage
    ) -> None:
        problems = contract_problems(message.payload)
        with self._lock:
            self.messages.append((message.topic.rsplit("/", 1)[-1], json.loads(message.payload)))
            self.problems += problems

    def got(self, channel: str) -> list[dict[str, Any]]:
        with self._lock:
            unique = {m["message_id"]: m for c, m in self.messages if c == channel}
            return list(unique.values())  # QoS 1 may deliver twice: one per message_id

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def watcher(mosquitto_broker: Broker) -> Iterator[Watcher]:
    side = Watcher(mosquitto_broker)
    yield side
    side.close()


# What each simulated device's bytes say, read here from the protocol documents (not with the
# station's codecs): every value the station sent must be what its raw frame says.
LB_KG = 0.45359237  # NIST SP 811 (2008), B.8: 1 lb = 0.453 592 37 kg, exactly
KELVIN_0C = 273.15  # SI Brochure, 9th ed., 2.3.1: t/°C = T/K - 273.15


def from_the_frame(codec: str, raw: bytes) -> dict[str, float]:
    if codec == "serial:suntech-advantage":
        # BP data reply `3E 18 ...`: systolic and diastolic little-endian 16-bit at bytes 2
        # and 4, pulse rate at byte 16, mean arterial pressure 16-bit at 18 (another
        # project's reader: ak-git/DesktopFX, src/main/java/com/ak/comm/bytes/suntech/
        # NIBPResponse.java, extractData()).
        assert raw[:2] == b"\x3e\x18" and sum(raw) & 0xFF == 0, raw.hex()
        systolic, diastolic = struct.unpack_from("<HH", raw, 2)
        (mean,) = struct.unpack_from("<H", raw, 18)
        return {
            "systolic_mmhg": systolic,
            "diastolic_mmhg": diastolic,
            "mean_arterial_mmhg": mean,
            "pulse_rate_bpm": raw[16],
        }
    if codec == "serial:nonin-8":
        # Data format #8 (Nonin 9560 Bluetooth Specification pp. 16-17, in mattjlewis/
        # NoninPulseOx): STATUS (bit 7 set; bits 1-0 = HR8, HR7), HR bits 6-0, SpO2, STATUS2.
        assert len(raw) == 4 and raw[0] & 0x80, raw.hex()
        return {
            "pulse_rate_bpm": ((raw[0] & 0x03) << 7) | (raw[1] & 0x7F),
            "spo2_percent": raw[2] & 0x7F,
        }
    if codec == "serial:sma":
        # <LF> s r n m f, the weight in 10 characters, the unit in 3, <CR> (SMA SCP-0499).
        text = raw.decode("ascii")
        assert (text[0], text[-1]) == ("\n", "\r"), text
        weight, unit = float(text[6:16]), text[16:19].strip()
        return {"weight_kg": weight * LB_KG if unit == "lb" else weight}
    if codec == "ble:2a1c":
        # Temperature Measurement (Bluetooth SIG, GATT Specification Supplement, 3.219): a
        # flags byte (bit 0: 1 = Fahrenheit), then an IEEE 11073-20601 FLOAT: a signed 24-bit
        # mantissa (LE) and a signed 8-bit base-10 exponent.
        mantissa = int.from_bytes(raw[1:4], "little", signed=True)
        exponent = int.from_bytes(raw[4:5], "little", signed=True)
        value = mantissa * 10.0**exponent
        return {"temperature_c": (value - 32) / 1.8 if raw[0] & 1 else value}
    if codec == "serial:suretemp-plus":
        # 941C temperature record (SureTemp Plus Module OEM Implementation, 71332-0000B,
        # p. 63): after the 8-byte header the final temperature, float32 LE, in kelvin.
        assert raw[3:5] == b"\x94\x1c", raw.hex()
        (kelvin,) = struct.unpack_from("<f", raw, 8)
        return {"temperature_c": kelvin - KELVIN_0C}
    raise AssertionError(f"no document-based reader for {codec}")


def shown_on_review(kind: str, values: dict[str, Any]) -> str:
    """The review row's value as the MA reads it, in the screen's US units."""
    if kind == "blood_pressure":
        return f"{values['systolic_mmhg']:.0f}/{values['diastolic_mmhg']:.0f} mmHg"
    if kind == "pulse_oximetry":
        return f"{values['spo2_percent']:.0f} %"
    if kind == "temperature":  # NIST SP 811, B.9: t/°F = 1.8 t/°C + 32
        return f"{values['temperature_c'] * 1.8 + 32:.1f} °F"
    if kind == "body_weight":
        return f"{values['weight_kg'] / LB_KG:.1f} lb"
    raise AssertionError(kind)


def test_ma_rooming_through_the_real_window_reaches_the_broker(
    real_window: Callable[..., RealWindow], mosquitto_broker: Broker, watcher: Watcher
) -> None:
    # `station demo` as a person runs it: the real pipeline (serial simulators on ptys,
    # pyserial, codecs, guard, outbox, paho) publishing to this broker, and the demo's
    # stand-in practice system there acking what arrives.
    app = real_window(
        ["demo", "--broker", f"mqtt://{mosquitto_broker.host}:{mosquitto_broker.port}"],
        800,
        480,
        "exam",
    )
    app.wait_screen("signin")
    app.shot("1_signin")
    app.scan(BADGE)
    app.wait_screen("patients")
    snap = app.wait(lambda s: any("ZZTEST, Alpha" in t for t in texts(s)), "today's list")
    row = next(t for t in texts(snap) if "ZZTEST, Alpha" in t)
    app.shot("2_patients")
    app.tap(row)
    snap = app.wait_screen("confirm")
    app.shot("3_confirm")
    app.tap("yes")
    app.wait_screen("vitals")

    # The devices measure when the patient is confirmed; each tile then names its device
    # and the time (no longer "measuring…").
    def measured(snap: dict[str, Any]) -> bool:
        sources = {
            t.split(" · ")[0]
            for t in texts(snap)
            if " · " in t and "measuring" not in t and t[-5:-3].isdigit()
        }
        # The demo's thermometer on serial, or its Bluetooth LE one on the fake BlueZ.
        thermometer = bool(sources & {"thermometer", "ble-thermometer"})
        return {"cuff", "oximeter", "scale"} <= sources and thermometer

    app.wait(measured, "a reading from each of the four simulated devices", 45)
    app.shot("4_vitals")

    app.tap("to_complaint")
    app.wait_screen("complaint")
    app.tap("free_text")
    assert_keyboard_placed(app, "free_text", "to_review", LETTERS)
    app.type(COMPLAINT)
    app.wait(
        lambda s: s["focused"] is not None and s["focused"]["text"] == COMPLAINT,
        "the complaint as typed",
    )
    app.shot("5_complaint_typed")
    # A badge scanned while the field has the focus: recognised as a scan (said on screen),
    # not typed into the complaint; the field lets go of the keyboard.
    app.scan(BADGE)
    snap = app.wait(
        lambda s: s["message"] != "" and s["focused"] is None and s["keyboards"] == [],
        "the scan's feedback",
    )
    assert "scan" in snap["message"].lower()  # "scan read — ... on the patient list"
    assert [w["text"] for w in snap["widgets"] if w["id"] == "free_text"] == [COMPLAINT]
    app.shot("6_badge_after_typing")
    # The schedule's medication is reviewed on its own step before Send (#18).
    app.tap("to_medications")
    snap = app.wait_screen("medications")
    if find_all(snap, "taking"):
        app.tap("taking")
    app.tap("Allergies  >")
    app.wait_screen("allergies")
    app.tap("Review  >")
    snap = app.wait_screen("review")
    # Critical values (if the simulators gave one) are acknowledged first.
    while find_all(snap, "Acknowledge — clinician told"):
        app.tap("Acknowledge — clinician told")
        snap = app.wait(lambda s: s["screen"] == "review", "the review after acknowledging")
    snap, _ = app.settled("Send")
    review = texts(snap)
    app.shot("7_review")
    app.tap("Send")
    app.wait(
        lambda s: "Received by the practice system" in texts(s),
        "the practice system's ack on screen",
    )
    app.shot("8_sent")

    # A badge scan after all that typing still signs the MA in (#15: "badge scans stop
    # working once any text field has had focus").
    app.tap("sign_out")
    app.wait_screen("signin")
    app.scan(BADGE)
    snap = app.wait_screen("patients")
    assert any(w["id"] == "who" and w["text"].startswith("MA ma-demo") for w in snap["widgets"])
    app.shot("9_signed_in_again")

    (vitals,) = watcher.got("vitals")
    (schedule,) = watcher.got("schedule")
    assert watcher.problems == []
    scheduled = next(a for a in schedule["appointments"] if a["patient"]["given_name"] == "Alpha")
    assert (vitals["appointment_id"], vitals["patient"]) == (
        scheduled["appointment_id"],
        scheduled["patient"],
    )
    assert (vitals["ma_id"], vitals["site"], vitals["station_id"]) == ("ma-demo", SITE, STATION)
    assert vitals["chief_complaint"] == COMPLAINT  # typed in the window; no badge code in it
    readings = {r["device_id"]: r["reading"] for r in vitals["readings"]}
    assert {"cuff", "oximeter", "scale"} <= set(readings), sorted(readings)
    assert set(readings) - {"cuff", "oximeter", "scale"} in (
        {"thermometer"},
        {"ble-thermometer"},
        {"thermometer", "ble-thermometer"},
    ), sorted(readings)
    for device, reading in readings.items():
        assert reading["mode"] == "demo", device
        expected = from_the_frame(reading["codec"], bytes.fromhex(reading["raw_hex"]))
        sent = {name: reading[name] for name in expected}
        assert sent == pytest.approx(expected, abs=0.005), (device, reading["raw_hex"])
        # What the MA reviewed before Send is what was sent.
        row = shown_on_review(reading["kind"], reading)
        assert any(row in line for line in review), (row, review)


# ------------------------------------------------------------------------------- every field


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_exam_fields_stay_clear_of_the_keyboard(
    real_window: Callable[..., RealWindow], size: tuple[int, int]
) -> None:
    """Every field an MA types into, with the keyboard up, at both sizes (#15): sign-in, the
    manual patient entry, the complaint's free text, the medication and allergy forms."""
    width, height = size
    app = real_window(
        ["ui", "--mode", "exam", "--size", f"{width}x{height}"], width, height, f"fields_{width}"
    )
    app.wait_screen("signin")
    # The sign-in field is typed by the screen's own keys: a tap on it brings no keyboard
    # over them.
    app.tap("credential")
    snap = app.drawn()
    assert snap["keyboards"] == [] and snap["focused"] is None
    for key in "1234":  # the demo MA's PIN (`station ui --help`)
        app.tap(key)
    app.tap("OK")
    app.wait_screen("patients")

    app.tap("Patient not on the list? Enter by hand")
    app.wait_screen("patient_entry")
    app.tap("family")
    for field, layout in (
        ("family", LETTERS),
        ("given", LETTERS),
        ("dob", NUMBERS),
        ("mrn", LETTERS),
    ):
        assert_keyboard_placed(app, field, "next", layout)
        app.key("Return")  # Enter moves on; in the last field it is Next
    app.shot("1_patient_entry")
    app.tap("cancel")

    snap = app.wait(lambda s: any("ZZTEST, Alpha" in t for t in texts(s)), "today's list")
    app.tap(next(t for t in texts(snap) if "ZZTEST, Alpha" in t))
    app.wait_screen("confirm")
    app.tap("yes")
    app.wait_screen("vitals")
    app.tap("to_complaint")
    app.wait_screen("complaint")
    app.tap("free_text")
    assert_keyboard_placed(app, "free_text", "to_review", LETTERS)
    shot = app.shot("2_complaint")
    if size == (800, 480):
        (SCREENS_DIR / "exam_complaint_keyboard.png").write_bytes(shot.read_bytes())

    app.tap("to_medications")
    app.wait_screen("medications")
    app.tap("+ Add a medication")
    app.tap("name, as the patient says it")
    for hint in ("name, as the patient says it", "e.g. 10 mg daily", "optional"):
        assert_keyboard_placed(app, hint, "Save", LETTERS)
        app.key("Tab")  # on to the next field (Enter there would save the empty form)
    app.shot("3_medication_form")
    app.tap("Cancel")
    app.tap("Allergies  >")
    app.wait_screen("allergies")
    app.tap("+ Add an allergy")
    app.tap("e.g. penicillin, peanuts, latex")
    assert_keyboard_placed(app, "e.g. penicillin, peanuts, latex", "Save", LETTERS)
    app.tap("what happens, e.g. hives")
    assert_keyboard_placed(app, "what happens, e.g. hives", "Save", LETTERS)
    app.shot("4_allergy_form")
    app.tap("Cancel")


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_biomed_pin_stays_clear_of_the_keyboard(
    real_window: Callable[..., RealWindow], size: tuple[int, int]
) -> None:
    width, height = size
    app = real_window(
        ["ui", "--mode", "biomed", "--size", f"{width}x{height}"], width, height, f"bio_{width}"
    )
    app.wait_screen("biomed")
    app.tap("pin")
    assert_keyboard_placed(app, "pin", "unlock", NUMBERS)
    for digit in "2468":  # the demo's biomed PIN (station/app/demo_ui.py, DEMO_BIOMED_PIN)
        app.tap_key(digit)
    app.shot("1_pin")
    app.tap_key("\u23ce")  # the pad's Enter unlocks
    app.wait(lambda s: not find_all(s, "pin") and s["keyboards"] == [], "biomed unlocked")


# ------------------------------------------------------------------------------- offscreen twins


def test_leaving_a_screen_lets_go_of_the_keyboard(make_ui: Callable[..., Any]) -> None:
    """Found in the real window: Enter in the lobby's reason box moved on with the field still
    focused off screen, and the docked keyboard stayed up over "Done" on the next screen."""
    from station.app.demo_ui import build_presenter

    driver = make_ui("lobby", build_presenter("lobby"))
    driver.scan("qr-demo-0003")
    driver.tap(driver.ui.screen.ids.ok)  # these are still right
    field = driver.ui.screen.ids.reason
    field.focus = True
    driver.pump(2)
    field.insert_text("cough")
    field.insert_text("\n")  # Enter: done
    driver.pump(3)
    # On to the next step (the clinic's questions, or checked in), the field let go.
    assert driver.ui.presenter.screen in ("lobby_question", "lobby_insurance", "lobby_message")
    assert field.focus is False


def test_only_the_demo_wirings_turn_the_probe_on() -> None:
    """The probe writes what is on screen (patients' names) to a file: `station ui` and
    `station demo` (fake patients) may turn it on, `station run` never does."""
    station = Path(__file__).resolve().parents[2] / "station"
    readers = sorted(
        str(path.relative_to(station))
        for path in station.rglob("*.py")
        if "probe_path(" in path.read_text(encoding="utf-8")
    )
    assert readers == ["cli/demo.py", "cli/ui.py", "ui/probe.py"]
