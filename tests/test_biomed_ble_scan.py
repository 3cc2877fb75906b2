"""The biomed screen on the real `station run` services (issue 15): an empty device list says
why and what to do; "Scan" finds the Bluetooth devices in range through real bleak on the fake
BlueZ (private D-Bus) and lists them with their profile; Bind writes bindings.json.

Outside truths: A&D's UA-651BLE advertises "A&D_UA-651BLE" and the Blood Pressure service
0x1810 (Bluetooth SIG Assigned Numbers 3.4.2), which and-ua-651ble.toml's match rule takes;
the Bluetooth device address format is six upper-case hex octets (Core Spec Vol 6 Part B
1.3), the form bindings.json keeps.
"""

from __future__ import annotations

import json
from pathlib import Path

from station.app import HeadlessHost
from station.devices.simulators.ble import BloodPressureCuff
from station.devices.simulators.fakebluez import FakeBlueZ
from station.ui.presenters import ExamPresenter
from station.ui.presenters.biomed import TEXT
from tests.fixtures.broker import Broker
from tests.test_biomed_live import BIOMED_PIN, _services, _settings

CUFF = "AA:BB:CC:DD:EE:21"


def test_empty_list_explains_then_a_bluetooth_scan_finds_and_binds_the_cuff(
    mosquitto_broker: Broker, fake_bluez: FakeBlueZ, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    host = HeadlessHost()
    services = _services(_settings(mosquitto_broker.port, state), host, by_id)
    presenter = services.presenter
    assert isinstance(presenter, ExamPresenter) and presenter.biomed is not None
    biomed = presenter.biomed
    BloodPressureCuff(fake_bluez, CUFF, "A&D_UA-651BLE")
    services.start()
    try:
        host.intent("sign_in", BIOMED_PIN)
        assert presenter.screen == "biomed"
        # Nothing bound, nothing plugged in, no scan yet: the list says why, and how.
        assert biomed.device_lines() == ()
        assert biomed.empty_text() == TEXT["no_devices"]
        host.intent("scan_bluetooth")
        assert biomed.empty_text() == TEXT["scanning"]
        host.run_until(lambda: biomed.scan_status().endswith("found in 5 s"), 20, "the scan")
        host.intent("refresh")
        (line,) = biomed.device_lines()
        assert (line.device_id, line.bound, line.present) == ("ble-aabbccddee21", False, True)
        assert line.detail.startswith(f'"A&D_UA-651BLE" {CUFF} · and-ua-651ble · Bluetooth LE')
        assert biomed.scan_status() == "1 found in 5 s"
        host.intent("bind", "ble-aabbccddee21")
        assert biomed.message == "ble-aabbccddee21 bound to this station"
        saved = json.loads((state / "bindings.json").read_text())
        assert saved["devices"] == [
            {"id": "ble-aabbccddee21", "profile": "and-ua-651ble", "address": CUFF}
        ]
    finally:
        services.stop()


def test_a_patient_entered_by_hand_is_taught_to_the_log_filter(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    """design.md: no patient data in logs, ever. A typed-in patient is on no schedule the
    filter learnt, so the composition root teaches it the moment it is entered."""
    from datetime import date

    from tests.test_biomed_live import MA_PIN

    by_id = tmp_path / "by-id"
    by_id.mkdir()
    host = HeadlessHost()
    services = _services(_settings(mosquitto_broker.port, tmp_path / "state"), host, by_id)
    services.start()
    try:
        host.intent("sign_in", MA_PIN)
        # Dates and labelled MRNs are scrubbed by their shape anyway; a bare name and chart
        # number are only caught once known.
        line = "opened Kilo ZZTEST TEST200077"
        assert services.redactor.redact(line) == line  # nothing known yet
        host.intent("open_patient_entry")
        for field, text in (("family", "ZZTEST"), ("given", "Kilo"), ("dob", "03141961"),
                            ("mrn", "TEST200077")):
            host.intent("patient_entry_typed", field, text)
        host.intent("submit_patient_entry")
        assert services.presenter.screen == "confirm"
        scrubbed = services.redactor.redact(line)
        for value in ("ZZTEST", "Kilo", "TEST200077"):
            assert value not in scrubbed, scrubbed
        assert date(1961, 3, 14) == services.presenter.rooming.patient.birth_date
    finally:
        services.stop()
