"""Biomed workflow: PIN and lockout, every transition, bind/unbind, device test, diagnostics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from station.biomed import (
    TRANSITIONS,
    Biomed,
    BiomedEvent,
    BiomedRefusal,
    BiomedState,
    DeviceRow,
    SettingsView,
    TestResult,
    settings_view,
)
from station.config import BoundDevice, parse_settings
from station.validation import Verdict
from station.workflow import IllegalTransitionError, RefusedError
from tests.workflows.helpers import T0, FakeClock, bp

B, BE = BiomedState, BiomedEvent

SETTINGS = parse_settings(
    {
        "station": {"site": "clinic-test", "station_id": "exam-9", "room": "Exam 9"},
        "broker": {"host": "broker.test", "port": 8883, "ca_file": "/etc/station/ca.crt"},
        "devices": [{"id": "cuff", "profile": "and-ua-651ble", "address": "AA:BB:CC:DD:EE:01"}],
    },
    "test",
)
ROWS = (
    DeviceRow(device_id="scale", profile="and-uc-352ble", address="AA:BB:CC:DD:EE:04"),
    DeviceRow(
        device_id="cuff",
        profile="and-ua-651ble",
        address="AA:BB:CC:DD:EE:01",
        present=True,
        battery_percent=80,
        firmware="1.2",
    ),
    DeviceRow(
        device_id="oximeter",
        profile="nonin-xpod-format2",
        port="/dev/serial/by-id/usb-Nonin-if00",
        present=True,
        last_error="checksum mismatch",
    ),
)


def make() -> tuple[Biomed, FakeClock]:
    clock = FakeClock()
    biomed = Biomed(clock=clock, pin="24680", settings=SETTINGS)
    biomed.set_devices(ROWS)
    return biomed, clock


def drive_to(state: BiomedState) -> tuple[Biomed, FakeClock]:
    biomed, clock = make()
    if state != B.LOCKED:
        biomed.unlock("24680")
    if state == B.DEVICE_TEST:
        biomed.open_test("cuff")
    if state == B.SETTINGS:
        biomed.open_settings()
    assert biomed.state == state
    return biomed, clock


def fire(biomed: Biomed, event: BiomedEvent) -> None:
    actions: dict[BiomedEvent, Callable[[], object]] = {
        BE.UNLOCK: lambda: biomed.unlock("24680"),
        BE.LOCK: biomed.lock,
        BE.OPEN_TEST: lambda: biomed.open_test("cuff"),
        BE.OPEN_SETTINGS: biomed.open_settings,
        BE.BACK: biomed.back,
    }
    actions[event]()


@pytest.mark.parametrize(
    ("state", "event", "target"), [(s, e, t) for (s, e), t in TRANSITIONS.items()]
)
def test_every_transition(state: BiomedState, event: BiomedEvent, target: BiomedState) -> None:
    biomed, _ = drive_to(state)
    fire(biomed, event)
    assert biomed.state == target


@pytest.mark.parametrize(
    ("state", "event"), [(s, e) for s in B for e in BE if (s, e) not in TRANSITIONS]
)
def test_every_illegal_transition_raises(state: BiomedState, event: BiomedEvent) -> None:
    biomed, _ = drive_to(state)
    with pytest.raises(IllegalTransitionError):
        fire(biomed, event)
    assert biomed.state == state


def test_wrong_pins_lock_out_for_five_minutes() -> None:
    # The policy stated in docs/deploy-pi.md (issue #20: "lockout after 5 tries"): the fifth
    # wrong PIN locks biomed for 300 s and says so at once.
    biomed, clock = make()
    for _ in range(4):
        with pytest.raises(RefusedError) as info:
            biomed.unlock("1111")
        assert info.value.reason == BiomedRefusal.WRONG_PIN
    with pytest.raises(RefusedError) as info:
        biomed.unlock("1111")
    assert (info.value.reason, info.value.message) == (
        BiomedRefusal.LOCKED_OUT,
        "too many wrong PINs: wait 300 s",
    )
    clock.advance(1)
    with pytest.raises(RefusedError) as info:
        biomed.unlock("24680")  # even the right PIN, while locked out
    assert (info.value.reason, info.value.message) == (
        BiomedRefusal.LOCKED_OUT,
        "too many wrong PINs: wait 299 s",
    )
    clock.advance(299)
    biomed.unlock("24680")
    assert biomed.state == B.DEVICES


def test_idle_lock() -> None:
    biomed, clock = drive_to(B.SETTINGS)
    clock.advance(119)
    assert biomed.tick() is False
    clock.advance(1)
    assert biomed.tick() is True
    assert biomed.state == B.LOCKED
    assert biomed.tick() is False


def test_device_list_bound_first_then_present() -> None:
    biomed, _ = make()
    assert [(r.device_id, r.bound, r.transport) for r in biomed.devices] == [
        ("cuff", True, "Bluetooth LE"),
        ("oximeter", False, "serial"),
        ("scale", False, "Bluetooth LE"),
    ]


def test_bind_and_unbind_return_the_new_settings_list() -> None:
    biomed, _ = drive_to(B.DEVICES)
    bound = biomed.bind("oximeter")
    assert bound == (
        BoundDevice(id="cuff", profile="and-ua-651ble", address="AA:BB:CC:DD:EE:01"),
        BoundDevice(
            id="oximeter", profile="nonin-xpod-format2", port="/dev/serial/by-id/usb-Nonin-if00"
        ),
    )
    assert [r.device_id for r in biomed.devices if r.bound] == ["cuff", "oximeter"]
    assert biomed.unbind("cuff") == (bound[1],)
    for action, device, reason in (
        (biomed.bind, "oximeter", BiomedRefusal.ALREADY_BOUND),
        (biomed.unbind, "cuff", BiomedRefusal.NOT_BOUND),
        (biomed.bind, "toaster", BiomedRefusal.UNKNOWN_DEVICE),
    ):
        with pytest.raises(RefusedError) as info:
            action(device)
        assert info.value.reason == reason


def test_bind_while_locked_is_refused() -> None:
    biomed, _ = make()
    with pytest.raises(RefusedError) as info:
        biomed.bind("scale")
    assert (info.value.reason, info.value.message) == (
        BiomedRefusal.WRONG_SCREEN,
        "cannot bind on the locked screen",
    )
    assert biomed.settings == SETTINGS


def test_device_test_shows_decoded_and_raw() -> None:
    biomed, clock = drive_to(B.DEVICE_TEST)
    clock.advance(4)
    result = biomed.record_test_reading("cuff", bp())
    assert result == TestResult(
        device_id="cuff",
        reading=bp(),
        raw_hex="1e7c00500000",
        verdict=Verdict(status="accepted"),
        received_at=T0 + timedelta(seconds=4),
    )
    with pytest.raises(RefusedError) as info:
        biomed.record_test_reading("scale", bp())
    assert info.value.reason == BiomedRefusal.WRONG_DEVICE
    biomed.back()
    assert (biomed.testing, biomed.test_results) == (None, ())


def test_testing_an_unbound_device_is_refused() -> None:
    biomed, _ = drive_to(B.DEVICES)
    with pytest.raises(RefusedError) as info:
        biomed.open_test("scale")
    assert info.value.reason == BiomedRefusal.NOT_BOUND


def test_settings_view_and_tls_status() -> None:
    assert settings_view(SETTINGS) == SettingsView(
        site="clinic-test",
        station_id="exam-9",
        mode="exam",
        room="Exam 9",
        broker="broker.test:8883",
        tls="TLS",
    )
    plain = SETTINGS.model_copy(
        update={"broker": SETTINGS.broker.model_copy(update={"require_tls": False})}
    )
    assert settings_view(plain).tls == "off — not for production"


def test_export_is_refused_while_locked_and_set_bound_marks_rows() -> None:
    biomed, _ = drive_to(B.DEVICES)
    biomed.require_unlocked("export diagnostics")  # no refusal once unlocked
    scale = BoundDevice(id="scale", profile="and-uc-352ble", address="AA:BB:CC:DD:EE:04")
    biomed.set_bound((scale,))
    assert {r.device_id: r.bound for r in biomed.devices} == {
        "scale": True,
        "cuff": False,
        "oximeter": False,
    }
    biomed.lock()
    with pytest.raises(RefusedError) as refused:
        biomed.require_unlocked("export diagnostics")
    assert (refused.value.reason, refused.value.message) == (
        BiomedRefusal.WRONG_SCREEN,
        "cannot export diagnostics on the locked screen",
    )
