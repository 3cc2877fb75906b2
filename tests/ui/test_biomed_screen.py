"""The biomed screen of issue 15: in `station ui --mode biomed` a device Test gets a reading
from the simulated device and shows it as a person reads it (never raw JSON); a Bluetooth scan
lists devices in range with a Bind; Export says on screen what it wrote and where.

Outside truths:
- Bluetooth SIG Blood Pressure Service 1.1 / GATT Specification Supplement, Blood Pressure
  Measurement (0x2A35): a flags byte (bit 0 kPa, bit 1 time stamp, bit 2 pulse rate, bit 3
  user id, bit 4 status), then systolic, diastolic, mean arterial pressure as IEEE 11073-20601
  SFLOATs (4-bit signed exponent, 12-bit signed mantissa), then the optional fields in that
  order. The test decodes the raw bytes shown on screen by that rule, not with our codec, and
  holds the value shown beside them to it.
- The profile match for an advertised name: A&D's UA-651BLE advertises "A&D_UA-651BLE"
  (and-ua-651ble.toml's name pattern; tests/test_cli_simulate_ble.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from station.app.demo_ui import DEMO_BIOMED_PIN
from station.ui.presenters import BiomedPresenter
from tests.fixtures.kivy import HEIGHT, WIDTH, Driver

pytestmark = pytest.mark.ui


@pytest.fixture
def biomed_ui(kivy_window: Any) -> Iterator[Driver]:
    """Exactly what `station ui --mode biomed` builds, with its simulated devices."""
    from station.app.demo_ui import demo_station_ui

    kivy_window.size = (WIDTH, HEIGHT)
    ui = demo_station_ui("biomed")
    kivy_window.add_widget(ui.root)
    driver = Driver(ui)
    driver.pump(4)
    yield driver
    ui.close()


def _sfloat(raw: bytes) -> float:
    value = int.from_bytes(raw, "little")
    exponent, mantissa = value >> 12, value & 0x0FFF
    exponent -= 16 if exponent >= 8 else 0
    mantissa -= 4096 if mantissa >= 2048 else 0
    return float(mantissa * 10**exponent)


def _unlock(driver: Driver) -> BiomedPresenter:
    driver.type_into(driver.ui.screen.ids.pin, DEMO_BIOMED_PIN)
    driver.tap("Unlock")
    presenter: BiomedPresenter = driver.ui.presenter
    assert presenter.unlocked
    return presenter


def test_station_ui_biomed_test_gets_a_reading_shown_in_words_and_raw(biomed_ui: Driver) -> None:
    driver = biomed_ui
    presenter = _unlock(driver)
    test = [w for w in driver.widgets() if getattr(w, "text", "") == "Test"]
    driver.tap(test[0])  # the cuff's (rows in device order)
    assert presenter.biomed.testing == "cuff"
    assert "waiting for a reading… take a measurement on the device" in driver.texts()
    driver.until(lambda: len(presenter.biomed.test_results) >= 1, frames=2000)
    driver.ui.redraw()
    driver.pump(3)
    texts = driver.texts()
    assert not any("{" in t for t in texts), texts  # never the model's JSON
    shown = next(t for t in texts if t.startswith("Blood pressure "))
    match = re.fullmatch(
        r"Blood pressure (\d+)/(\d+) mmHg, pulse (\d+) /min · \d\d:\d\d:\d\d · cuff", shown
    )
    assert match, shown
    raw_line = next(t for t in texts if t.startswith("raw: "))
    raw = bytes.fromhex(raw_line.split()[1])
    flags = raw[0]
    assert flags & 0x01 == 0  # mmHg
    systolic, diastolic = _sfloat(raw[1:3]), _sfloat(raw[3:5])
    pulse_at = 7 + (7 if flags & 0x02 else 0)
    assert flags & 0x04  # the pulse rate is present
    pulse = _sfloat(raw[pulse_at : pulse_at + 2])
    assert (int(match[1]), int(match[2]), int(match[3])) == (systolic, diastolic, pulse)
    assert raw_line.endswith("· accepted")
    driver.shot("biomed_device_test_demo")


def test_a_bluetooth_scan_lists_what_is_in_range_with_a_bind(biomed_ui: Driver) -> None:
    driver = biomed_ui
    presenter = _unlock(driver)
    driver.tap("Scan")
    texts = driver.texts()
    assert "Bluetooth: 1 found (demo)" in texts
    row = next(t for t in texts if t.startswith("ble-aabbccddee05"))
    assert row == (
        'ble-aabbccddee05  [not bound]\n"PLX" AA:BB:CC:DD:EE:05 · generic-ble-pulse-oximeter · '
        "Bluetooth LE · in range · -61 dBm"
    )
    driver.shot("biomed_scan")
    label = next(w for w in driver.widgets() if getattr(w, "text", "") == row)
    (bind,) = [w for w in label.parent.children if getattr(w, "text", "") == "Bind"]
    driver.tap(bind)
    assert "ble-aabbccddee05" in [d.id for d in presenter.biomed.settings.devices]
    assert presenter.message == "ble-aabbccddee05 bound to this station"


def test_export_says_on_the_screen_what_it_wrote_and_where(biomed_ui: Driver) -> None:
    driver = biomed_ui
    _unlock(driver)
    driver.tap("Export diagnostics")
    driver.tap(driver.ui.root.ids.message)  # the overlay dismissed: the line stays
    assert "Diagnostics bundle written (no patient data): in memory (demo)" in driver.texts()
    driver.shot("biomed_exported")
