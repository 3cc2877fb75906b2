"""`station demo --headless`: fake patients roomed end to end through the real pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.broker import Broker
from tests.sync.consumer import contract_problems

DEMO_KINDS = ["blood_pressure", "body_weight", "pulse_oximetry", "temperature"]


def _station(*args: str, timeout_s: float = 90.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.run(
        [sys.executable, "-m", "station", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )


def test_headless_demo_rooms_two_patients_through_its_own_broker_and_exits() -> None:
    done = _station("demo", "--headless", "--patients", "2", "--seed", "3")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    # One vitals message per patient, as the stand-in practice system received it.
    assert [line["schema"] for line in lines] == ["rooming.vitals/1"] * 2
    assert [line["appointment_id"] for line in lines] == ["APT-DEMO-0001", "APT-DEMO-0002"]
    for line in lines:
        # The four serial devices, and beside them the Bluetooth thermometer on the fake BlueZ
        # (a second temperature: issue 15 asks the demo to show the BLE path end to end).
        assert sorted(r["kind"] for r in line["readings"]) == sorted(
            [*DEMO_KINDS, "temperature"]
        )
        assert sorted(r["device"] for r in line["readings"]) == [
            "ble-thermometer",
            "cuff",
            "oximeter",
            "scale",
            "thermometer",
        ]
        # Through the Bluetooth SIG Temperature Measurement characteristic 0x2A1C (Assigned
        # Numbers 3.8; Health Thermometer Service 1.0 §3.1), decoded by the GATT codec that
        # bleak's notifications fed: the BLE path end to end.
        (ble,) = [r for r in line["readings"] if r["device"] == "ble-thermometer"]
        assert (ble["kind"], ble["codec"], ble["accepted"]) == ("temperature", "ble:2a1c", True)
        assert {r["mode"] for r in line["readings"]} == {"demo"}
        assert line["chief_complaint"] == "cough"
        # The Bundle as station.sync.fhir builds it for these five devices' readings: 5
        # Devices, 8 measurements, the chief complaint (the patient is a logical reference),
        # and one MedicationRequest per reviewed medication (#18: below).
        # Simulated readings are marked as test data for any FHIR consumer: HL7 v3 ActReason
        # HTEST "test health data" (terminology.hl7.org CodeSystem v3-ActReason).
        assert line["fhir_tags"] == ["HTEST"]
    # The first demo patient's schedule lists one medication (reviewed: +1 MedicationRequest),
    # the second's none; the Bluetooth thermometer adds its Device and its Observation.
    assert [line["fhir_entries"] for line in lines] == [15, 14]
    assert "Bluetooth LE thermometer AA:BB:CC:DD:EE:31 on a fake BlueZ" in done.stderr
    assert len({line["message_id"] for line in lines}) == 2
    assert "PLAIN TCP on loopback" in done.stderr
    assert done.stderr.count("received by the practice system") == 2


def test_headless_demo_publishes_to_an_external_broker(mosquitto_broker: Broker) -> None:
    seen: list[dict[str, Any]] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-watcher")

    def on_connect(c: mqtt.Client, *_a: Any) -> None:
        c.subscribe("rooming/v1/demo-clinic/exam-1/vitals", 1)

    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = lambda _c, _u, m: seen.append(json.loads(m.payload))
    client.connect(mosquitto_broker.host, mosquitto_broker.port)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        url = f"mqtt://{mosquitto_broker.host}:{mosquitto_broker.port}"
        done = _station("demo", "--headless", "--patients", "1", "--broker", url)
    finally:
        client.disconnect()
        client.loop_stop()
    assert done.returncode == 0, done.stderr
    assert "PLAIN TCP" not in done.stderr  # not its own broker
    (vitals,) = {m["message_id"]: m for m in seen}.values()
    assert vitals["schema"] == "rooming.vitals/1"
    assert contract_problems(json.dumps(vitals).encode()) == []  # docs/schemas, formats on
    assert vitals["appointment_id"] == "APT-DEMO-0001"
    assert vitals["patient"]["family_name"] == "ZZTEST"
    assert vitals["patient"]["mrn"] == "TEST100001"
    assert sorted(r["reading"]["kind"] for r in vitals["readings"]) == sorted(
        [*DEMO_KINDS, "temperature"]  # the serial thermometer and the Bluetooth one
    )


def test_demo_refuses_a_broker_url_it_cannot_use() -> None:
    done = _station("demo", "--headless", "--broker", "https://example.org")
    assert done.returncode == 2
    assert done.stderr == (
        "station: --broker 'https://example.org': expected mqtt://HOST:PORT (plain TCP)\n"
    )


def test_demo_can_take_blood_pressure_from_a_dinamap_instead_of_the_cuff() -> None:
    # The DINAMAP monitor simulator answers the host commands tnez/TK-BP sends (" NA!2" status
    # polls, " NC0!E" start, " RC!8" pulse rate); the station's DINAMAP codec turns the new
    # result into one blood-pressure reading with its pulse rate, from the "cuff" device.
    done = _station("demo", "--headless", "--patients", "1", "--cuff", "dinamap")
    assert done.returncode == 0, done.stderr
    [line] = [json.loads(line) for line in done.stdout.splitlines()]
    [bp] = [r for r in line["readings"] if r["kind"] == "blood_pressure"]
    assert bp["device"] == "cuff" and bp["accepted"] is True
    values = bp["values"]
    # The simulated monitor's ranges (systolic 105-135, diastolic 65-85, pulse 60-85) and a
    # mean arterial pressure of (systolic + 2 x diastolic) / 3, truncated, as it computes it.
    assert 105 <= values["systolic_mmhg"] <= 135 and 65 <= values["diastolic_mmhg"] <= 85
    systolic, diastolic = values["systolic_mmhg"], values["diastolic_mmhg"]
    assert values["mean_arterial_mmhg"] == (systolic + 2 * diastolic) // 3
    assert 60 <= values["pulse_rate_bpm"] <= 85
    # The other demo devices as ever: the serial thermometer and the Bluetooth one both.
    assert sorted(r["kind"] for r in line["readings"]) == sorted([*DEMO_KINDS, "temperature"])
