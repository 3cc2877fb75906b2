"""Firmware profiles: shipped files pass the check; a broken one is refused by file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.capture import CaptureOverrides, CaptureRule, Delivery
from station.cli import main
from station.devices.profiles import (
    BUNDLED_DIR,
    DIRS_ENV,
    ClockWrite,
    Transport,
    find_profile,
    load_profile,
    load_profiles,
    profile_files,
)
from station.errors import ConfigError
from station.models import BloodPressure, Kind
from station.units import Unit
from station.validation import validate

GOOD = """\
id = "acme-scale"
vendor = "Acme"
model = "Scale 9000"
kinds = ["body_weight"]
transport = "serial"
codecs = ["serial:sma"]

[serial]
by_id_pattern = "usb-Acme_*"

[serial.line]
baud = 9600

[ranges.weight_kg]
low = 0
high = 300
"""


@pytest.fixture(autouse=True)
def only_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DIRS_ENV, str(BUNDLED_DIR))


def write(tmp_path: Path, text: str, name: str = "acme-scale") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_every_shipped_profile_passes_station_profiles_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = profile_files()
    assert len(files) == len(list(BUNDLED_DIR.glob("*.toml"))) >= 19
    assert main(["profiles", "check"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (f"{len(files)} of {len(files)} profile file(s) OK\n", "")


def test_profiles_cover_every_serial_codec_and_the_ble_devices() -> None:
    from station.devices.codecs.registry import all_codecs

    profiles = load_profiles()
    used = {codec for p in profiles.values() for codec in p.codecs}
    serial_codecs = {name for name in all_codecs() if name.startswith("serial:")}
    assert serial_codecs <= used
    ble = {p.id for p in profiles.values() if p.transport == Transport.BLE}
    assert ble == {
        "generic-ble-blood-pressure",
        "generic-ble-thermometer",
        "generic-ble-weight-scale",
        "generic-ble-pulse-oximeter",
        "and-ua-651ble",
        "and-uc-352ble",
        "omron-hem-7155t",
        "nonin-3230",
        "masimo-mightysat",
        "beurer-bm57",
        "beurer-bm85",
        "beurer-sbm69",
    }
    assert profiles["beurer-sbm69"].behaviour.passkey is True
    assert profiles["and-ua-651ble"].ble is not None
    assert profiles["and-ua-651ble"].ble.clock is ClockWrite.DATE_TIME


def test_the_ble_facts_of_the_shipped_profiles() -> None:
    """What the reference says real devices do, as the link reads it from the files."""
    profiles = load_profiles()
    ble = {p.id: p for p in profiles.values() if p.ble is not None}
    facts = {
        pid: (p.ble.clock, p.ble.racp, p.behaviour.needs_bonding, p.behaviour.passkey)
        for pid, p in ble.items()
        if p.ble is not None
    }
    assert facts == {
        "and-ua-651ble": (ClockWrite.DATE_TIME, False, True, False),
        "and-uc-352ble": (ClockWrite.DATE_TIME, False, True, False),
        "beurer-bm57": (ClockWrite.NONE, False, True, False),
        "beurer-bm85": (ClockWrite.NONE, False, False, False),
        "beurer-sbm69": (ClockWrite.NONE, False, True, True),
        "generic-ble-blood-pressure": (ClockWrite.NONE, True, False, False),
        "generic-ble-pulse-oximeter": (ClockWrite.NONE, True, False, False),
        "generic-ble-thermometer": (ClockWrite.NONE, False, False, False),
        "generic-ble-weight-scale": (ClockWrite.NONE, False, False, False),
        "masimo-mightysat": (ClockWrite.NONE, False, False, False),
        "nonin-3230": (ClockWrite.NONE, False, True, False),
        "omron-hem-7155t": (ClockWrite.CURRENT_TIME_AFTER_NOTIFY, True, True, False),
    }
    nonin = ble["nonin-3230"].ble
    assert nonin is not None
    assert nonin.measurements == {"0aad7ea0-0d60-11e2-8e3c-0002a5d5c51b": "ble:nonin-3230"}
    cuff = ble["generic-ble-blood-pressure"].ble
    assert cuff is not None
    assert (cuff.measurements, cuff.features) == (
        {
            "00002a35-0000-1000-8000-00805f9b34fb": "ble:2a35",
            "00002a36-0000-1000-8000-00805f9b34fb": "ble:2a36",
        },
        {"00002a49-0000-1000-8000-00805f9b34fb": "ble:2a49"},
    )
    assert all(p.behaviour.use_start_notify for p in ble.values())


def test_only_the_bm85_declares_decoding_quirks_and_they_are_its_documented_ones() -> None:
    """Strict everywhere else. The BM85's deviations are those its captures show
    (derdilla/blood-pressure-monitor-fl PRs #735/#737; tests/devices/codecs/test_gatt_quirks.py).
    """
    profiles = load_profiles()
    assert {pid for pid, p in profiles.items() if p.quirks} == {"beurer-bm85"}
    quirks = profiles["beurer-bm85"].quirks["ble:2a35"]
    assert quirks.reserved_flag_bits == 0x40
    assert quirks.big_endian == ["pulse_rate", "measurement_status"]
    assert quirks.present_without_flag == ["user_id"]
    assert quirks.zero_is_unavailable == ["mean_arterial"]
    omron = profiles["omron-hem-7155t"]
    assert [i.firmware for i in omron.known_issues] == ["all", "all"]


def test_profiles_list_prints_one_line_per_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [p.stem for p in profile_files()]
    assert lines[0].split()[:3] == ["and-ua-651ble", "ble", "blood_pressure"]


def test_device_ranges_feed_validation() -> None:
    profile = find_profile("suntech-advantage")
    assert profile.device_ranges()["systolic_mmhg"] == (40.0, 260.0)
    reading = BloodPressure(
        systolic_mmhg=270.0,
        diastolic_mmhg=100.0,
        unit_as_sent=Unit.MMHG,
        codec="serial:suntech-advantage",
        codec_version="1",
    )
    verdict = validate(reading, device_ranges=profile.device_ranges())
    assert verdict.status == "rejected"
    assert verdict.reasons == (
        "systolic 270 mmHg is outside this device's range: expected 40–260 mmHg",
    )


def test_a_good_site_profile_loads(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD))
    assert (profile.id, profile.kinds, profile.device_ranges()) == (
        "acme-scale",
        [Kind.BODY_WEIGHT],
        {"weight_kg": (0.0, 300.0)},
    )


BROKEN = [
    (
        "baud = 9600",
        "baud = 9601",
        [
            "serial.line.baud: Input should be 1200, 2400, 4800, 9600, 19200, 38400, 57600 or "
            "115200; got 9601"
        ],
    ),
    (
        "baud = 9600",
        'baud = 9600\nparty = "none"',
        ["serial.line.party: unknown key (a typo?); see docs/devices.md for the keys"],
    ),
    (
        'codecs = ["serial:sma"]',
        'codecs = ["serial:smaa"]',
        [
            "codecs[0]: unknown codec 'serial:smaa'; expected one of serial:dinamap-host, "
            "serial:healthometer-esc, "
            "serial:masimo-ascii, serial:mt-sics, serial:nonin-2, serial:nonin-7, serial:nonin-8, "
            "serial:sma, serial:suntech-advantage, serial:suretemp-plus"
        ],
    ),
    (
        'codecs = ["serial:sma"]',
        'codecs = ["ble:2a35"]',
        ["codecs[0]: 'ble:2a35' is not a serial codec"],
    ),
    (
        "[ranges.weight_kg]",
        "[ranges.weight_lb]",
        [
            "ranges.weight_lb: not a value of this profile's kinds; expected one of bmi_kg_m2, "
            "height_cm, weight_kg"
        ],
    ),
    ("high = 300", "high = -1", ["ranges.weight_kg: low 0 must be below high -1"]),
    (
        'by_id_pattern = "usb-Acme_*"',
        'by_id_pattern_x = "usb-Acme_*"',
        ["serial.by_id_pattern_x: unknown key (a typo?); see docs/devices.md for the keys"],
    ),
    (
        'transport = "serial"',
        'transport = "usb"',
        ["transport: Input should be 'ble' or 'serial'; got 'usb'"],
    ),
    ('vendor = "Acme"\n', "", ["vendor: missing: this key is required"]),
    (
        'id = "acme-scale"',
        'id = "Acme Scale"',
        [
            "id: got 'Acme Scale', expected lower-case letters, digits and '-' (2–64 "
            "characters), the same as the file name"
        ],
    ),
]


@pytest.mark.parametrize(("old", "new", "problems"), BROKEN, ids=[b[1][:24] for b in BROKEN])
def test_a_broken_profile_is_refused_with_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, problems: list[str]
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as raised:
        load_profile(path)
    assert raised.value.problems == problems
    assert main(["profiles", "check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err == "".join(f"{path}: {p}\n" for p in problems)
    assert out == "0 of 1 profile file(s) OK\n"


def test_file_name_must_match_the_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_profile(write(tmp_path, GOOD, name="acme"))
    assert raised.value.problems == ["id: 'acme-scale' must match the file name 'acme'.toml"]


def test_invalid_toml_and_a_missing_transport_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_profile(write(tmp_path, GOOD + "oops = \n"))
    assert raised.value.problems[0].startswith("not valid TOML: ")
    no_serial = GOOD.partition("[serial]")[0] + "[ranges.weight_kg]\nlow = 0\nhigh = 300\n"
    with pytest.raises(ConfigError) as raised:
        load_profile(write(tmp_path, no_serial))
    assert raised.value.problems == ["serial: missing: a serial profile needs a [serial] table"]


def test_find_profile_names_the_known_ids_when_unknown() -> None:
    with pytest.raises(ConfigError) as raised:
        find_profile("nonin-9999")
    assert raised.value.problems[0].startswith(
        "no profile with this id; known profiles: and-ua-651ble, and-uc-352ble, "
    )


GOOD_BLE = """\
id = "acme-cuff"
vendor = "Acme"
model = "Cuff 2"
kinds = ["blood_pressure"]
transport = "ble"
codecs = ["ble:2a35", "ble:2a49"]

[ble]
clock = "date_time"

[ble.match]
service_uuids = ["00001810-0000-1000-8000-00805f9b34fb"]
name_pattern = "^ACME"

[ble.measurements]
2A35 = "ble:2a35"

[ble.features]
0x2a49 = "ble:2a49"

[behaviour]
needs_bonding = true
passkey = true
"""


def test_a_good_site_ble_profile_loads_with_uuids_spelled_as_bluez_does(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD_BLE, name="acme-cuff"))
    assert profile.ble is not None
    assert (profile.ble.measurements, profile.ble.features, profile.ble.clock, profile.pairs) == (
        {"00002a35-0000-1000-8000-00805f9b34fb": "ble:2a35"},
        {"00002a49-0000-1000-8000-00805f9b34fb": "ble:2a49"},
        ClockWrite.DATE_TIME,
        True,
    )
    assert profile.ble.match.accepts(["1810"], "ACME cuff 2")
    assert not profile.ble.match.accepts(["1810"], "Other cuff")
    assert not profile.ble.match.accepts(["1809"], "ACME thermometer")


BROKEN_BLE = [
    (
        '2A35 = "ble:2a35"',
        '2A35 = "ble:2a36"',
        ["ble.measurements.2a35: codec 'ble:2a36' is not in codecs; add it there"],
    ),
    (
        '2A35 = "ble:2a35"',
        '2A3 = "ble:2a35"',
        [
            "ble.measurements.2A3.[key]: not a GATT UUID; expected 4 hex digits "
            "(\"2a35\") or a 128-bit UUID; got '2A3'"
        ],
    ),
    (
        'clock = "date_time"',
        'clock = "on_connect"',
        [
            "ble.clock: Input should be 'none', 'date_time', 'current_time' or "
            "'current_time_after_notify'; got 'on_connect'"
        ],
    ),
    (
        "needs_bonding = true\n",
        "",
        ["behaviour.passkey: the passkey is asked while bonding; set needs_bonding = true"],
    ),
    (
        '[ble.measurements]\n2A35 = "ble:2a35"\n',
        "",
        ["ble.measurements: missing: this key is required"],
    ),
    (
        'clock = "date_time"',
        'clock = "date_time"\nclok = "none"',
        ["ble.clok: unknown key (a typo?); see docs/devices.md for the keys"],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "problems"), BROKEN_BLE, ids=[b[1][:24] or b[0][:24] for b in BROKEN_BLE]
)
def test_a_broken_ble_profile_is_refused_with_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, problems: list[str]
) -> None:
    assert old in GOOD_BLE
    path = write(tmp_path, GOOD_BLE.replace(old, new), name="acme-cuff")
    with pytest.raises(ConfigError) as raised:
        load_profile(path)
    assert raised.value.problems == problems
    assert main(["profiles", "check", str(path)]) == 2
    assert capsys.readouterr().err == "".join(f"{path}: {p}\n" for p in problems)


def test_bonding_keys_are_refused_in_a_serial_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_profile(write(tmp_path, GOOD + "\n[behaviour]\nneeds_bonding = true\n"))
    assert raised.value.problems == [
        "behaviour.needs_bonding: Bluetooth only; remove it from a serial profile"
    ]


STREAMING = {
    "generic-ble-pulse-oximeter", "masimo-mightysat", "masimo-rad-8", "masimo-radical-7",
    "mettler-toledo-mt-sics", "nonin-3230", "nonin-oem-iii-df7", "nonin-oem-iii-df8",
    "nonin-xpod-3012lp", "sma-scale", "detecto-758c",
    "ge-dinamap-pro",  # its SpO2 streams; NIBP and temperature pass through as spot results
}


def test_every_shipped_profile_says_how_its_readings_arrive() -> None:
    for path in profile_files():
        assert "\ndelivery = " in path.read_text(), f"{path.name}: behaviour.delivery not set"
    profiles = load_profiles()
    streaming = {p.id for p in profiles.values() if p.behaviour.delivery is Delivery.STREAMING}
    assert streaming == STREAMING
    spot_codecs = {p.id: p.behaviour.spot_codecs for p in profiles.values()
                   if p.behaviour.spot_codecs}
    assert spot_codecs == {"generic-ble-pulse-oximeter": ["ble:2a5e"],
                           "masimo-mightysat": ["ble:2a5e"]}
    assert profiles["suntech-advantage"].behaviour.delivery is Delivery.SPOT


def test_a_streaming_site_profile_with_its_own_capture_thresholds_loads(tmp_path: Path) -> None:
    text = GOOD + '\n[behaviour]\ndelivery = "streaming"\n\n[behaviour.capture]\nstable_s = 3\n' \
        "weight_tolerance_kg = 0.1\n"
    profile = load_profile(write(tmp_path, text))
    assert profile.behaviour.capture == CaptureOverrides(stable_s=3, weight_tolerance_kg=0.1)
    assert profile.behaviour.capture.rule_for(Kind.BODY_WEIGHT) == CaptureRule(
        stable_s=3, tolerance={"weight_kg": 0.1}, min_readings=3, end_after_silence_s=10,
        off_confirm_s=0, empty_platform_kg=0.5)


BROKEN_DELIVERY = [
    (
        'delivery = "streamed"',
        ["behaviour.delivery: Input should be 'spot' or 'streaming'; got 'streamed'"],
    ),
    (
        'delivery = "streaming"\nspot_codecs = ["serial:nonin-8"]',
        ["behaviour.spot_codecs[0]: codec 'serial:nonin-8' is not in codecs; add it there"],
    ),
    (
        'delivery = "spot"\nspot_codecs = ["serial:sma"]',
        ["behaviour.spot_codecs: only for delivery = 'streaming'; this profile is 'spot'"],
    ),
    (
        'delivery = "streaming"\n[behaviour.capture]\nstable_s = 0',
        ["behaviour.capture.stable_s: Input should be greater than 0; got 0"],
    ),
    (
        'delivery = "streaming"\n[behaviour.capture]\nstable_seconds = 3',
        ["behaviour.capture.stable_seconds: unknown key (a typo?); see docs/devices.md for the "
         "keys"],
    ),
]


@pytest.mark.parametrize(("behaviour", "problems"), BROKEN_DELIVERY,
                         ids=[b[0][:30] for b in BROKEN_DELIVERY])
def test_station_profiles_check_refuses_a_bad_delivery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], behaviour: str, problems: list[str]
) -> None:
    path = write(tmp_path, GOOD + f"\n[behaviour]\n{behaviour}\n")
    assert main(["profiles", "check", str(path)]) == 2
    assert capsys.readouterr().err == "".join(f"{path}: {p}\n" for p in problems)


def test_streaming_is_refused_for_a_blood_pressure_cuff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cuff = find_profile("suntech-advantage")
    text = (BUNDLED_DIR / "suntech-advantage.toml").read_text().replace(
        'delivery = "spot"', 'delivery = "streaming"')
    path = write(tmp_path, text, name=cuff.id)
    assert main(["profiles", "check", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"{path}: behaviour.delivery: 'streaming' is captured for body_weight and "
        "pulse_oximetry only; this profile measures blood_pressure, cuff_pressure (use 'spot')\n"
    )
