"""Biomed on real widgets; every screen renders with touch targets a gloved finger can hit."""

from __future__ import annotations

import ast
import io
import json
import tarfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kivy.uix.button import Button

from station.app.demo_ui import DEMO_BIOMED_PIN, build_presenter
from station.ui.app import KV_FILES, MODE_SCREENS
from station.ui.ports import LookupAnswer, LookupOutcome, MemoryBiomed
from station.ui.presenters import BiomedPresenter, ExamPresenter
from tests.fixtures.kivy import Driver
from tests.workflows.helpers import FakeClock, bp

pytestmark = pytest.mark.ui

NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
STATION = Path(__file__).resolve().parents[2] / "station"


def test_biomed_unlock_bind_test_settings_export_lock(make_ui: Callable[..., Driver]) -> None:
    clock = FakeClock(NOW)
    presenter: BiomedPresenter = build_presenter("biomed", clock=clock)
    driver = make_ui("biomed", presenter)
    driver.shot("biomed_locked")
    driver.type_into(driver.ui.screen.ids.pin, "9999")
    driver.tap("Unlock")
    assert "PIN not accepted" in driver.texts()
    driver.type_into(driver.ui.screen.ids.pin, DEMO_BIOMED_PIN)
    driver.tap("Unlock")
    texts = driver.texts()
    assert (
        "cuff  [bound]\nand-ua-651ble · Bluetooth LE · in range · battery 76 % · firmware 1.4"
        in (texts)
    )
    assert (
        "scale  [not bound]\nand-uc-352ble · Bluetooth LE · not seen · "
        "last error: not seen for 2 days"
    ) in texts
    driver.shot("biomed_devices")
    driver.tap("Bind")
    assert [d.id for d in presenter.biomed.settings.devices] == ["cuff", "oximeter", "scale"]
    test_buttons = [w for w in driver.widgets() if isinstance(w, Button) and w.text == "Test"]
    driver.tap(test_buttons[0])
    assert presenter.biomed.testing == "cuff"
    driver.ui.deliver(lambda: presenter.test_reading("cuff", bp()))
    driver.until(lambda: len(presenter.biomed.test_results) == 1)
    driver.pump(2)
    assert "raw: 1e7c00500000 · accepted" in driver.texts()
    driver.shot("biomed_device_test")
    driver.tap("< Devices")
    driver.tap("Settings")
    assert {
        "Site: demo-clinic",
        "Broker: localhost:1883",
        "TLS: off — not for production",
        "Outbox: 0 waiting to send",
    } <= set(driver.texts())
    driver.shot("biomed_settings")
    driver.tap("Export diagnostics")
    assert presenter.message == "Diagnostics bundle written (no patient data): in memory (demo)"
    assert presenter.message in driver.texts()  # on the screen, not only in the overlay
    assert isinstance(presenter.port, MemoryBiomed)
    with tarfile.open(fileobj=io.BytesIO(presenter.port.bundle)) as tar:
        files = {
            m.name.split("/")[-1]: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }
    assert json.loads(files["outbox.json"]) == {
        "pending": 0, "oldest_pending_age_s": None, "awaiting_ack": 0, "awaiting_ack_overdue": 0,
        "rejected": 0, "quarantined": 0, "disk_full": False, "broker_problem": ""}
    assert [d["id"] for d in json.loads(files["devices.json"])] == ["cuff", "oximeter", "scale"]
    everything = b"".join(files.values())
    assert b"ZZTEST" not in everything and b"1e7c00500000" not in everything
    driver.tap("Lock")
    assert presenter.biomed.state.value == "locked"


def test_biomed_unbind_asks_first_and_the_lockout_counts_down(
    make_ui: Callable[..., Driver],
) -> None:
    """Lockout: 5 wrong PINs lock for 300 s (station.biomed's PIN_LOCKOUT_S, the design's
    biomed rule); shown as m:ss and counting down with the clock."""
    clock = FakeClock(NOW)
    presenter: BiomedPresenter = build_presenter("biomed", clock=clock)
    driver = make_ui("biomed", presenter)
    for _ in range(5):
        driver.type_into(driver.ui.screen.ids.pin, "9999")
        driver.tap("Unlock")
    driver.pump(3)
    assert "Too many wrong PINs: try again in 5:00" in driver.texts()
    clock.advance(61)
    driver.pump(3)  # the screen's tick
    assert "Too many wrong PINs: try again in 3:59" in driver.texts()
    driver.shot("biomed_lockout")
    clock.advance(240)
    driver.pump(3)
    assert "Biomed — enter the PIN" in driver.texts()
    driver.type_into(driver.ui.screen.ids.pin, DEMO_BIOMED_PIN)
    driver.tap("Unlock")
    rows_before = [t for t in driver.texts() if "[" in t]
    unbind = [w for w in driver.widgets() if isinstance(w, Button) and w.text == "Unbind"]
    driver.tap(unbind[0])
    assert "Unbind cuff?" in driver.texts()
    driver.shot("biomed_unbind_confirm")
    assert [d.id for d in presenter.biomed.settings.devices] == ["cuff", "oximeter"]
    driver.tap("Keep cuff")
    assert [t for t in driver.texts() if "[" in t] == rows_before
    unbind = [w for w in driver.widgets() if isinstance(w, Button) and w.text == "Unbind"]
    driver.tap(unbind[0])
    driver.tap("Unbind cuff")
    assert [d.id for d in presenter.biomed.settings.devices] == ["oximeter"]
    assert (presenter.message, presenter.tone) == ("cuff unbound", "success")
    # The rows stay where they were: only the cuff's own row changed.
    assert [t.split("  ")[0] for t in driver.texts() if "[" in t] == ["cuff", "oximeter", "scale"]


def _buttons(driver: Driver) -> list[Button]:
    return [
        w
        for w in driver.widgets()
        if isinstance(w, Button) and w.opacity > 0 and not w.disabled and w.get_root_window()
    ]


@pytest.mark.parametrize("size", [(800, 480), (1280, 800)])
def test_every_exam_screen_renders_with_large_touch_targets(
    make_ui: Callable[..., Driver], kivy_window: object, size: tuple[int, int]
) -> None:
    clock = FakeClock(NOW)
    driver = make_ui("exam", build_presenter("exam", clock=clock))
    kivy_window.size = size  # type: ignore[attr-defined]
    driver.pump(4)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("signin", lambda: None),
        ("patients", lambda: driver.scan("BADGE-DEMO")),
        ("confirm", lambda: driver.tap("09:00   ZZTEST, Alpha   ·   born 05/17/1970")),
        ("vitals", lambda: driver.tap("Yes — both match")),
        ("complaint", lambda: driver.tap("Complaint  >")),
        ("review", lambda: driver.tap("Review  >")),
    ]
    for screen, step in steps:
        step()
        driver.pump(3)
        assert driver.ui.sm.current == screen
        buttons = _buttons(driver)
        assert buttons, f"{screen} rendered no buttons"
        small = [(b.text, b.size) for b in buttons if min(b.size) < 48]
        assert small == [], f"{screen} at {size}: touch targets under 48 px: {small}"
    if size == (1280, 800):
        driver.shot("exam_review_1280x800")


def test_every_screen_has_its_own_kv_file() -> None:
    screens = {cls.__name__ for classes in MODE_SCREENS.values() for cls in classes}
    rules = set()
    for name in KV_FILES:
        text = (STATION / "ui" / "kv" / name).read_text(encoding="utf-8")
        rules |= {line.strip()[1:-2] for line in text.splitlines() if line.startswith("<")}
    assert screens <= rules


def test_presenters_and_workflows_import_no_kivy() -> None:
    for path in (
        *sorted((STATION / "ui" / "presenters").glob("*.py")),
        STATION / "ui" / "ports.py",
        STATION / "rooming.py",
        STATION / "checkin.py",
        STATION / "biomed.py",
    ):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {
            m for m in imported if m.split(".")[0] in {"kivy", "paho", "serial", "bleak"}
        }, path


class RecordingLookup:
    """PatientLookup's lowest seam: records what the reader typed (no practice system here;
    tests/test_biomed_live.py runs the real MQTT lookup)."""

    def __init__(self) -> None:
        self.barcodes: list[str] = []

    def request(self, barcode: str) -> uuid.UUID:
        self.barcodes.append(barcode)
        return uuid.UUID(int=len(self.barcodes))


def test_exam_station_opens_biomed_with_its_pin_and_routes_a_wristband_scan(
    make_ui: Callable[..., Driver],
) -> None:
    clock = FakeClock(NOW)
    biomed: BiomedPresenter = build_presenter("biomed", clock=clock)
    exam: ExamPresenter = build_presenter("exam", clock=clock)
    exam.biomed, exam.lookup = biomed, RecordingLookup()
    driver = make_ui("exam", exam)
    for key in (*DEMO_BIOMED_PIN, "OK"):
        driver.tap(key)
    assert driver.ui.sm.current == "biomed"
    assert any(t.startswith("cuff  [bound]") for t in driver.texts())
    driver.tap("Lock")  # the biomed presenter's intent, routed by the exam station
    assert (biomed.biomed.state.value, driver.ui.sm.current) == ("locked", "signin")
    driver.scan("BADGE-DEMO")
    assert driver.ui.sm.current == "patients"
    driver.scan("TEST100002")  # a wristband on the patient list
    assert exam.lookup.barcodes == ["TEST100002"]  # type: ignore[union-attr]
    assert "looking up the scanned barcode…" in driver.texts()
    exam.lookup_answered(
        LookupAnswer(uuid.UUID(int=1), LookupOutcome.FOUND, exam.rooming.schedule[1])
    )
    driver.ui.redraw()
    driver.pump(3)
    assert driver.ui.sm.current == "confirm" and exam.rooming.patient is not None
    assert exam.rooming.patient.given_name == "Bravo"


def test_a_passkey_request_is_typed_on_the_biomed_screen(make_ui: Callable[..., Driver]) -> None:
    # Issue 19: a bound passkey device pairing for the first time asks here for the 6 digits
    # it shows (Bluetooth Core v5.3, Vol 3, Part H, 2.3.5.3: a 6-digit passkey).
    presenter: BiomedPresenter = build_presenter("biomed", clock=FakeClock(NOW))
    assert isinstance(presenter.port, MemoryBiomed)
    presenter.port.passkeys_asked.append(("cuff", "AA:BB:CC:DD:EE:02"))
    driver = make_ui("biomed", presenter)
    driver.type_into(driver.ui.screen.ids.pin, DEMO_BIOMED_PIN)
    driver.tap("Unlock")
    assert "cuff (AA:BB:CC:DD:EE:02) asks for the passkey it shows" in driver.texts()
    driver.shot("biomed_passkey")
    [field] = [w for w in driver.widgets() if getattr(w, "hint_text", "") == "6-digit passkey"]
    driver.type_into(field, "012345")
    driver.tap("Pair")
    assert presenter.port.passkeys_answered == [("AA:BB:CC:DD:EE:02", 12345)]
    assert presenter.message == "passkey sent to AA:BB:CC:DD:EE:02; pairing…"
