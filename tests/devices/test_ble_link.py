"""Real bleak against the fake BlueZ: scan, bind filter, connect, indications, live pressure,
clock write, RACP, disconnect/reconnect, duplicates, pairing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from station.config import BoundDevice
from station.devices.bindings import BindingStore
from station.devices.ble_link import (
    RACP_DELETE_ALL,
    RACP_REPORT_COUNT,
    SEEN_CAP,
    BleLink,
    ClockWritten,
    DeviceInfo,
    FeatureRead,
    FrameRejected,
    LinkEvent,
    LinkState,
    RacpReply,
    ReadingArrived,
    StateChanged,
)
from station.devices.codecs.gatt import blood_pressure
from station.devices.pairing import AgentRegistration
from station.devices.profiles import load_profiles, match_profiles
from station.devices.simulators.ble import (
    BloodPressureCuff,
    Nonin3230,
    StoredBp,
    Thermometer,
)
from station.devices.simulators.fakebluez import FakeBlueZ
from station.errors import ConfigError
from station.models import BloodPressure, CuffPressure, Mode
from station.units import Unit
from tests.fixtures.ble import BleLoop

pytestmark = pytest.mark.ble

NOW = datetime(2026, 3, 2, 9, 30, 0)
CUFF = "AA:BB:CC:DD:EE:01"
NEXT_DOOR = "AA:BB:CC:DD:EE:99"


def cuff_binding(profile: str = "generic-ble-blood-pressure", address: str = CUFF) -> BoundDevice:
    return BoundDevice(id="cuff", profile=profile, address=address)


class Recorder:
    def __init__(self) -> None:
        self.events: list[LinkEvent] = []

    def __call__(self, event: LinkEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[LinkEvent]) -> list[LinkEvent]:
        return [e for e in self.events if isinstance(e, kind)]

    def readings(self) -> list[object]:
        return [e.reading for e in self.events if isinstance(e, ReadingArrived)]

    def states(self) -> list[LinkState]:
        return [e.state for e in self.events if isinstance(e, StateChanged)]

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)


def run_link(
    ble_loop: BleLoop,
    bindings: list[BoundDevice],
    scenario: Callable[[BleLink, Recorder], Awaitable[None]],
    **kw: object,
) -> Recorder:
    recorder = Recorder()

    async def main() -> None:
        link = BleLink(bindings, recorder, clock=lambda: NOW, mode=Mode.DEMO, **kw)  # type: ignore[arg-type]
        runner = asyncio.create_task(link.run())
        try:
            await scenario(link, recorder)
        finally:
            link.stop()
            await asyncio.wait_for(runner, 10)

    ble_loop.run(main())
    return recorder


def bp(
    sys_: float, dia: float, map_: float, pulse: float, frame: bytes, at: datetime | None
) -> BloodPressure:
    return BloodPressure(
        systolic_mmhg=sys_,
        diastolic_mmhg=dia,
        mean_arterial_mmhg=map_,
        pulse_rate_bpm=pulse,
        measured_at=at,
        unit_as_sent=Unit.MMHG,
        codec="ble:2a35",
        codec_version=blood_pressure.VERSION,
        raw_hex=frame.hex(),
        mode=Mode.DEMO,
    )


def test_unbound_cuff_next_door_is_seen_but_never_connected(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    mine = BloodPressureCuff(fake_bluez, CUFF, "A&D_UA-651BLE")
    next_door = BloodPressureCuff(fake_bluez, NEXT_DOOR, "A&D_UA-651BLE")

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: link.state("cuff") is LinkState.CONNECTED)
        await rec.until(lambda: NEXT_DOOR in link.seen)
        seen = link.seen[NEXT_DOOR]
        assert (seen.bound_id, seen.name, seen.profiles) == (
            None,
            "A&D_UA-651BLE",
            ("and-ua-651ble", "generic-ble-blood-pressure"),
        )
        await asyncio.sleep(0.2)  # several more adverts from next door

    run_link(ble_loop, [cuff_binding("and-ua-651ble")], scenario)
    assert mine.peripheral.connect_count == 1
    assert next_door.peripheral.connect_count == 0
    assert not any(path == next_door.peripheral.path for path, _ in fake_bluez.calls)


def test_connect_reads_features_writes_clock_and_delivers_live_pressure_and_result(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    cuff = BloodPressureCuff(
        fake_bluez, CUFF, "A&D_UA-651BLE", battery_percent=87, firmware="1.4.2"
    )
    at = datetime(2026, 3, 2, 9, 31, 5)
    frame = BloodPressureCuff.frame(StoredBp(128, 82, 97, 71, at))

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: cuff.subscribed("2a35") and cuff.subscribed("2a36"))
        assert await asyncio.to_thread(
            cuff.measure, 128, 82, 97, 71, measured_at=at, cuff_pressures_mmhg=(40, 80.5, 160)
        )
        await rec.until(lambda: len(rec.readings()) == 4)

    rec = run_link(ble_loop, [cuff_binding("and-ua-651ble")], scenario)
    live = [
        CuffPressure(
            cuff_pressure_mmhg=p,
            unit_as_sent=Unit.MMHG,
            codec="ble:2a36",
            codec_version=blood_pressure.VERSION,
            raw_hex=blood_pressure.encode_intermediate(p).hex(),
            mode=Mode.DEMO,
        )
        for p in (40, 80.5, 160)
    ]
    assert rec.readings() == [*live, bp(128, 82, 97, 71, frame, at)]
    # 2026-03-02 09:30:00 as a Date Time: year 0x07EA little-endian, then M D h m s
    assert cuff.clock_written == [bytes.fromhex("ea070302091e00")]
    assert rec.of(ClockWritten) == [
        ClockWritten(
            device_id="cuff",
            characteristic="00002a08-0000-1000-8000-00805f9b34fb",
            written_hex="ea070302091e00",
        )
    ]
    assert rec.of(DeviceInfo) == [
        DeviceInfo(device_id="cuff", battery_percent=87, firmware_revision="1.4.2")
    ]
    [feature] = rec.of(FeatureRead)
    assert isinstance(feature, FeatureRead)
    assert (feature.codec, feature.raw_hex) == ("ble:2a49", "0700")
    assert rec.states()[:2] == [LinkState.CONNECTING, LinkState.CONNECTED]
    # indications are switched on with StartNotify, never AcquireNotify
    members = [m for _, m in fake_bluez.calls]
    assert members.count("StartNotify") == 2  # 2A35, 2A36 (this profile has no RACP)
    assert "AcquireNotify" not in members


def test_refused_clock_write_does_not_stop_the_link(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    cuff = BloodPressureCuff(fake_bluez, CUFF, "A&D_UA-651BLE", refuse_clock_write=True)

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: cuff.subscribed("2a35"))
        await asyncio.to_thread(cuff.measure, 118, 76, 90, 64)
        await rec.until(lambda: len(rec.readings()) == 1)

    rec = run_link(ble_loop, [cuff_binding("and-ua-651ble")], scenario)
    assert rec.of(ClockWritten) == []
    assert LinkState.ERROR not in rec.states()


def test_cuff_dumps_five_stored_readings_on_connect(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    stored = [StoredBp(120 + i, 80, 93, 70, datetime(2026, 3, 1, 8, i)) for i in range(5)]
    BloodPressureCuff(fake_bluez, CUFF, stored=stored)

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: len(rec.readings()) == 5)

    rec = run_link(ble_loop, [cuff_binding()], scenario)
    assert rec.readings() == [
        bp(s.systolic_mmhg, 80, 93, 70, BloodPressureCuff.frame(s), s.measured_at) for s in stored
    ]


def test_racp_count_fetch_and_clear(fake_bluez: FakeBlueZ, ble_loop: BleLoop) -> None:
    stored = [StoredBp(131, 85, 100, 77, datetime(2026, 2, 27, 17, i)) for i in range(2)]
    cuff = BloodPressureCuff(fake_bluez, CUFF, stored=stored, dump_stored_on_connect=False)

    async def scenario(link: BleLink, rec: Recorder) -> None:
        # fetch_stored: the link asks "report all records" right after subscribing
        await rec.until(lambda: len(rec.of(RacpReply)) == 1)
        await link.racp("cuff", RACP_REPORT_COUNT)
        await link.racp("cuff", RACP_DELETE_ALL)
        await link.racp("cuff", RACP_REPORT_COUNT)
        await rec.until(lambda: len(rec.of(RacpReply)) == 4)

    rec = run_link(ble_loop, [cuff_binding()], scenario, fetch_stored=True)
    assert [r.raw_hex for r in rec.of(RacpReply)] == [  # type: ignore[union-attr]
        "06000101",  # report records: success
        "05000200",  # count: 2
        "06000201",  # delete: success
        "05000000",  # count: 0
    ]
    assert len(rec.readings()) == 2
    assert cuff.stored == []


def test_sleeping_cuff_reconnects_when_it_wakes(fake_bluez: FakeBlueZ, ble_loop: BleLoop) -> None:
    cuff = BloodPressureCuff(fake_bluez, CUFF)

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: cuff.subscribed("2a35"))
        await asyncio.to_thread(cuff.sleep)
        await rec.until(lambda: link.state("cuff") is LinkState.SLEEPING)
        await asyncio.to_thread(cuff.wake)
        await rec.until(lambda: cuff.subscribed("2a35"))
        await asyncio.to_thread(cuff.measure, 122, 78, 92, 66)
        await rec.until(lambda: len(rec.readings()) == 1)
        await asyncio.sleep(0.1)

    rec = run_link(ble_loop, [cuff_binding()], scenario)
    assert cuff.peripheral.connect_count == 2
    assert rec.states() == [
        LinkState.CONNECTING,
        LinkState.CONNECTED,
        LinkState.SLEEPING,
        LinkState.CONNECTING,
        LinkState.CONNECTED,
    ]
    assert len(rec.readings()) == 1


def test_cuff_dropping_mid_measurement_then_measuring_again(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    cuff = BloodPressureCuff(fake_bluez, CUFF)

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: cuff.subscribed("2a36"))
        sent = await asyncio.to_thread(
            cuff.measure, 0, 0, 0, 0, cuff_pressures_mmhg=(60, 90), drop_after_pressures=True
        )
        assert not sent
        await rec.until(lambda: LinkState.SLEEPING in rec.states())
        # still advertising, so the link is back at once
        await rec.until(lambda: rec.states().count(LinkState.CONNECTED) == 2)
        await rec.until(lambda: cuff.subscribed("2a35"))
        await asyncio.to_thread(cuff.measure, 119, 77, 91, 63)
        await rec.until(lambda: any(isinstance(r, BloodPressure) for r in rec.readings()))

    rec = run_link(ble_loop, [cuff_binding()], scenario)
    kinds = [(type(r).__name__, getattr(r, "cuff_pressure_mmhg", None)) for r in rec.readings()]
    assert kinds == [("CuffPressure", 60.0), ("CuffPressure", 90.0), ("BloodPressure", None)]


def test_same_notification_twice_is_delivered_once(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    thermo = Thermometer(fake_bluez, CUFF)

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: thermo.subscribed("2a1c"))
        await asyncio.to_thread(thermo.measure, 36.9)
        await asyncio.to_thread(thermo.measure, 36.9)  # a doubled delivery
        await asyncio.sleep(0.3)
        await asyncio.to_thread(thermo.measure, 36.9)  # a real new reading later
        await rec.until(lambda: len(rec.readings()) == 2)
        await asyncio.sleep(0.1)

    rec = run_link(
        ble_loop,
        [BoundDevice(id="thermo", profile="generic-ble-thermometer", address=CUFF)],
        scenario,
    )
    assert len(rec.readings()) == 2


def test_connect_failure_backs_off_then_recovers(fake_bluez: FakeBlueZ, ble_loop: BleLoop) -> None:
    cuff = BloodPressureCuff(fake_bluez, CUFF)
    cuff.peripheral.connectable = False  # advertising, but the connect request goes unanswered

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: LinkState.ERROR in rec.states())
        cuff.peripheral.connectable = True
        await rec.until(lambda: cuff.subscribed("2a35"), timeout=5)

    rec = run_link(ble_loop, [cuff_binding()], scenario)
    [error] = [e for e in rec.of(StateChanged) if e.state is LinkState.ERROR]  # type: ignore[union-attr]
    assert isinstance(error, StateChanged)
    assert "Software caused connection abort" in error.detail
    assert "retrying in 0.5 s" in error.detail


def test_passkey_pairing_through_the_station_agent(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    BloodPressureCuff(fake_bluez, CUFF, "SBM69", passkey=123456)
    asked: list[str] = []

    async def prompt(address: str) -> int | None:
        asked.append(address)
        return 123456

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: link.state("cuff") is LinkState.CONNECTED)

    async def main() -> Recorder:
        registration = await AgentRegistration.register(
            [cuff_binding("beurer-sbm69")], prompt=prompt
        )
        try:
            rec = Recorder()
            link = BleLink([cuff_binding("beurer-sbm69")], rec, clock=lambda: NOW)
            runner = asyncio.create_task(link.run())
            await rec.until(lambda: link.state("cuff") is LinkState.CONNECTED)
            link.stop()
            await runner
            return rec
        finally:
            await registration.unregister()

    ble_loop.run(main())
    assert asked == [CUFF]
    assert fake_bluez.peripherals[CUFF].paired
    assert fake_bluez.agent is None  # unregistered again


def test_wrong_passkey_fails_pairing_and_never_connects(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    cuff = BloodPressureCuff(fake_bluez, CUFF, "SBM69", passkey=123456)

    async def prompt(address: str) -> int | None:
        return 111111

    async def main() -> Recorder:
        registration = await AgentRegistration.register(
            [cuff_binding("beurer-sbm69")], prompt=prompt
        )
        assert fake_bluez.agent is not None
        assert fake_bluez.agent.capability == "KeyboardOnly"
        try:
            rec = Recorder()
            link = BleLink([cuff_binding("beurer-sbm69")], rec, clock=lambda: NOW)
            runner = asyncio.create_task(link.run())
            await rec.until(lambda: LinkState.ERROR in rec.states())
            link.stop()
            await runner
            return rec
        finally:
            await registration.unregister()

    rec = ble_loop.run(main())
    assert not cuff.peripheral.paired
    assert LinkState.CONNECTED not in rec.states()
    [error] = [e for e in rec.of(StateChanged) if e.state is LinkState.ERROR]  # type: ignore[union-attr]
    assert "AuthenticationFailed" in error.detail  # type: ignore[union-attr]


def test_nonin_3230_just_works_pairing_and_frames(fake_bluez: FakeBlueZ, ble_loop: BleLoop) -> None:
    nonin = Nonin3230(fake_bluez, CUFF)

    async def main() -> Recorder:
        registration = await AgentRegistration.register(
            [BoundDevice(id="ox", profile="nonin-3230", address=CUFF)]
        )
        assert fake_bluez.agent is not None
        assert fake_bluez.agent.capability == "NoInputNoOutput"
        try:
            rec = Recorder()
            link = BleLink(
                [BoundDevice(id="ox", profile="nonin-3230", address=CUFF)],
                rec,
                clock=lambda: NOW,
                mode=Mode.DEMO,
            )
            runner = asyncio.create_task(link.run())
            await rec.until(lambda: nonin.subscribed("0aad7ea0-0d60-11e2-8e3c-0002a5d5c51b"))
            for spo2, pulse in ((97, 72), (96, 73)):
                await asyncio.to_thread(nonin.measure, spo2, pulse)
            await rec.until(lambda: len(rec.readings()) == 2)
            link.stop()
            await runner
            return rec
        finally:
            await registration.unregister()

    rec = ble_loop.run(main())
    assert nonin.peripheral.paired
    values = [(r.spo2_percent, r.pulse_rate_bpm, r.mode) for r in rec.readings()]  # type: ignore[attr-defined]
    assert values == [(97.0, 72.0, Mode.DEMO), (96.0, 73.0, Mode.DEMO)]


def test_the_agent_rejects_an_unbound_device_asking_to_pair(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop, tmp_path: Path
) -> None:
    """Only bound addresses may bond: a passkey cuff next door asking to pair is refused
    before anyone is asked to type a number, and binding it later lets it pair."""
    from bleak import BleakClient, BleakScanner
    from bleak.exc import BleakError

    BloodPressureCuff(fake_bluez, CUFF, "SBM69", passkey=123456)
    BloodPressureCuff(fake_bluez, NEXT_DOOR, "SBM69", passkey=654321)
    store = BindingStore(tmp_path)
    store.bind(cuff_binding("beurer-sbm69"))
    asked: list[str] = []

    async def prompt(address: str) -> int | None:
        asked.append(address)
        return {CUFF: 123456, NEXT_DOOR: 654321}[address]

    async def pair(address: str) -> str:
        device = await BleakScanner.find_device_by_address(address, timeout=5)
        assert device is not None
        client = BleakClient(device, pair=True)
        try:
            await client.connect()
        except BleakError as exc:
            return f"refused: {exc}"
        await client.disconnect()
        return "paired"

    async def main() -> tuple[str, str, str, list[tuple[str, str]]]:
        registration = await AgentRegistration.register(store.list, prompt=prompt)
        try:
            next_door = await pair(NEXT_DOOR)
            mine = await pair(CUFF)
            store.bind(BoundDevice(id="cuff2", profile="beurer-sbm69", address=NEXT_DOOR))
            next_door_bound = await pair(NEXT_DOOR)
            return next_door, mine, next_door_bound, list(registration.agent.requests)
        finally:
            await registration.unregister()

    next_door, mine, next_door_bound, requests = ble_loop.run(main())
    assert next_door.startswith("refused: ") and "Authentication" in next_door
    assert (mine, next_door_bound) == ("paired", "paired")
    assert asked == [CUFF, NEXT_DOOR]  # the unbound request never reached the screen
    assert requests == [
        ("RequestPasskey", NEXT_DOOR),
        ("RequestPasskey", CUFF),
        ("RequestPasskey", NEXT_DOOR),
    ]
    assert fake_bluez.peripherals[CUFF].paired


def test_profile_match_rules_come_from_the_firmware_profiles() -> None:
    profiles = load_profiles().values()
    bps = "00001810-0000-1000-8000-00805f9b34fb"
    assert match_profiles(profiles, [bps], "A&D_UA-651BLE") == [
        "and-ua-651ble",
        "generic-ble-blood-pressure",
    ]
    assert match_profiles(profiles, ["1810"], "BLESmart_0000015E") == [
        "omron-hem-7155t",
        "generic-ble-blood-pressure",
    ]
    assert match_profiles(profiles, ["1810"], "Some cuff") == ["generic-ble-blood-pressure"]
    assert match_profiles(profiles, ["180d"], "Heart strap") == []


def test_omron_clock_is_written_after_its_first_current_time_notification(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    cuff = BloodPressureCuff(fake_bluez, CUFF, "BLESmart_0000015E", clock_characteristic="2a2b")

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: len(rec.of(ClockWritten)) == 1)

    rec = run_link(ble_loop, [cuff_binding("omron-hem-7155t")], scenario)
    assert cuff.time_notified
    # 2026-03-02 09:30:00, Monday (1), 0/256 s, adjust reason 1 (manual update)
    assert cuff.clock_written == [bytes.fromhex("ea070302091e00010001")]
    assert rec.of(ClockWritten) == [
        ClockWritten(
            device_id="cuff",
            characteristic="00002a2b-0000-1000-8000-00805f9b34fb",
            written_hex="ea070302091e00010001",
        )
    ]
    assert fake_bluez.peripherals[CUFF].paired  # Omron bonds (one host at a time)


def test_beurer_bm85_frames_arrive_decoded_under_its_profile_quirks(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    """A BM85 frame (derdilla/blood-pressure-monitor-fl@17aba3d0 ble_measurement_data_test.dart,
    "decodes beurer sample data": 106/71, pulse 63, user 0, 2026-08-11 18:31) over real bleak.

    The strict codec refuses it (reserved flag bit 6); the beurer-bm85 profile's [quirks] make
    it a reading that names every quirk used, with the device's bytes unchanged.
    """
    raw = bytes([86, 106, 0, 71, 0, 0, 0, 234, 7, 8, 11, 18, 31, 0, 0, 63, 0, 0, 0])
    cuff = BloodPressureCuff(fake_bluez, CUFF, "Beurer BM85")

    async def scenario(link: BleLink, rec: Recorder) -> None:
        await rec.until(lambda: cuff.subscribed("2a35"))
        await asyncio.to_thread(cuff.send, "2a35", raw)
        await rec.until(lambda: len(rec.readings()) == 1)

    rec = run_link(ble_loop, [cuff_binding("beurer-bm85")], scenario)
    assert rec.of(FrameRejected) == []
    (reading,) = rec.readings()
    assert isinstance(reading, BloodPressure)
    assert (reading.systolic_mmhg, reading.diastolic_mmhg, reading.pulse_rate_bpm) == (
        106.0,
        71.0,
        63.0,
    )
    assert (reading.user_id, reading.measured_at) == (0, datetime(2026, 8, 11, 18, 31))
    assert reading.mean_arterial_mmhg is None
    assert "present_without_flag:user_id" in reading.quirks
    assert reading.raw_hex == raw.hex()


def test_a_binding_to_an_unknown_or_serial_profile_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        BleLink(
            [
                cuff_binding("nonin-xpod-3012lp"),
                BoundDevice(id="x", profile="acme-9000", address=NEXT_DOOR),
            ],
            lambda _e: None,
        )
    assert raised.value.problems[0] == (
        "cuff: profile 'nonin-xpod-3012lp' is not a Bluetooth profile"
    )
    assert raised.value.problems[1].startswith(
        "x: unknown profile 'acme-9000'; known: and-ua-651ble, and-uc-352ble, beurer-bm57, "
    )


def test_a_flood_of_adverts_from_random_addresses_keeps_memory_bounded() -> None:
    # #20, replayed: a rogue device cycling random addresses grew the seen-advert map without
    # bound (200,000 adverts: RSS 37 -> 290 MB). The link is fed bleak's own advert objects.
    link = BleLink([cuff_binding()], Recorder(), clock=lambda: NOW)
    for i in range(5 * SEEN_CAP):
        rogue = BLEDevice(f"02:00:00:{i >> 16 & 0xFF:02X}:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}",
                          "rogue", None)
        link._on_advert(rogue, AdvertisementData("rogue", {}, {}, [], None, -40, ()))
    assert len(link.seen) == SEEN_CAP
    last = 5 * SEEN_CAP - 1
    assert next(reversed(link.seen)) == f"02:00:00:00:{last >> 8 & 0xFF:02X}:{last & 0xFF:02X}"
    assert "02:00:00:00:00:00" not in link.seen  # the least recently heard went first


def test_the_agent_answers_only_the_pairing_its_profile_declares(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    """#20, replayed: the agent confirmed numeric comparison with any number and authorised
    any service — HID included — for a bound address. A bound A&D UA-651BLE (just-works
    bonding, firmware_profiles/and-ua-651ble.toml) asking for numeric comparison is refused;
    the same cuff pairing plainly is authorised for its Blood Pressure service (0x1810) and
    refused HID (0x1812, Bluetooth SIG assigned numbers)."""
    from bleak import BleakClient, BleakScanner
    from bleak.exc import BleakError

    spoof = BloodPressureCuff(fake_bluez, CUFF, "A&D_UA-651")
    spoof.peripheral.confirm_passkey = 424242
    honest = BloodPressureCuff(fake_bluez, NEXT_DOOR, "A&D_UA-651")
    honest.peripheral.authorize_services = ["1810", "1812"]

    async def pair(address: str) -> str:
        device = await BleakScanner.find_device_by_address(address, timeout=5)
        assert device is not None
        client = BleakClient(device, pair=True)
        try:
            await client.connect()
        except BleakError as exc:
            return f"refused: {exc}"
        await client.disconnect()
        return "paired"

    async def main() -> tuple[str, str]:
        bound = [cuff_binding("and-ua-651ble"), cuff_binding("and-ua-651ble", NEXT_DOOR)]
        bound[1] = bound[1].model_copy(update={"id": "cuff2"})
        registration = await AgentRegistration.register(bound)
        try:
            return await pair(CUFF), await pair(NEXT_DOOR)
        finally:
            await registration.unregister()

    spoofed, plain = ble_loop.run(main())
    assert spoofed.startswith("refused:") and not spoof.peripheral.paired
    assert plain == "paired"
    assert honest.peripheral.authorized == {"1810": True, "1812": False}
