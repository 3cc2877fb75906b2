"""Welch Allyn SureTemp Plus (`serial:suretemp-plus`): the document's examples, one reading per
final, damage, seeded fuzz, the simulator, and real pyserial on a pty through SerialLink."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from station.devices.codecs.base import BadFrame, StreamCodec, StreamEvent
from station.devices.codecs.registry import get_codec
from station.devices.codecs.serial import suretemp
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.devices.codecs.serial.suretemp import (
    SureTempDecoder,
    SureTempState,
    TemperatureProgress,
    ThermometerStatus,
)
from station.devices.profiles import BUNDLED_DIR, load_profiles
from station.devices.serial_link import LinkState, SerialLink
from station.devices.simulators import frames
from station.devices.simulators.serial import SureTempModel
from station.models import Flag, Kind, Mode, Temperature, TemperatureSite
from station.units import Unit
from tests.fixtures.serial import Collector, SimulatorFactory

from .test_serial_captures import CAPTURES, dump, load_capture

CODEC = "serial:suretemp-plus"
K = 273.15
# Verbatim from the manufacturer's document (SureTemp Plus Module OEM Implementation, 71332-0000B).
DOC_941C_COMMAND = bytes.fromhex("03 02 10 94 1C 01 00 00 3A")  # p. 63
DOC_941C_RESPONSE = bytes.fromhex(  # p. 63: state 2 (ready), probe 307.370789 K, 78 samples
    "03 02 10 94 1C 02 13 00 00 00 00 00 76 AF 99 43 4E 00 00 00 00 00 02 00 00 01 00 D4"
)
DOC_9434_COMMAND = bytes.fromhex("03 02 10 94 34 01 01 00 01 20")  # p. 65
DOC_9434_RESPONSE = bytes.fromhex("03 02 10 94 34 02 00 00 21")  # p. 65
PROFILE = load_profiles([BUNDLED_DIR])["welch-allyn-suretemp-plus"]
PREDICTING = frames.suretemp_record(4, probe_k=35.0 + K)


def temperature(celsius: float, raw: bytes, **kwargs: object) -> Temperature:
    fields: dict[str, object] = {
        "temperature_c": celsius,
        "site": TemperatureSite.MOUTH,
        "unit_as_sent": Unit.KELVIN,
        "codec": CODEC,
        "codec_version": "1",
        "raw_hex": raw.hex(),
        **kwargs,
    }
    return Temperature.model_validate(fields)


def feed_bytewise(data: bytes) -> list[StreamEvent]:
    decoder = SureTempDecoder()
    out: list[StreamEvent] = []
    for i in range(len(data)):
        out.extend(decoder.feed(data[i : i + 1]))
    return out


# The manufacturer's examples ---------------------------------------------------------------
def test_commands_are_byte_for_byte_the_documents() -> None:
    assert suretemp.GET_TEMPERATURE_RECORD == DOC_941C_COMMAND
    assert suretemp.packet(0x9434, suretemp.TYPE_COMMAND, b"\x01") == DOC_9434_COMMAND
    assert suretemp.packet(0x9434, suretemp.TYPE_RESPONSE) == DOC_9434_RESPONSE
    assert PROFILE.serial is not None and PROFILE.serial.poll is not None
    assert PROFILE.serial.poll.command == DOC_941C_COMMAND
    assert PROFILE.serial.command("enable_async_messages") == DOC_9434_COMMAND


def test_the_documents_941c_response_decodes_to_ready_and_its_ack() -> None:
    assert SureTempDecoder().feed(DOC_941C_RESPONSE + DOC_9434_RESPONSE) == [
        ThermometerStatus(
            codec=CODEC, detail="ready", state=SureTempState.READY, raw_hex=DOC_941C_RESPONSE.hex()
        ),
        DeviceEvent(
            codec=CODEC, code=DeviceEventCode.ACK, detail="9434", raw_hex=DOC_9434_RESPONSE.hex()
        ),
    ]
    # The builder reproduces the document's bytes from the field values it lists.
    assert frames.suretemp_record(2, probe_k=307.370789, samples=0x4E) == DOC_941C_RESPONSE


DOC_OTHER_RESPONSES = {  # pp. 57-60: every one a valid packet with no data, or with data
    "2A12": ("03 02 10 2A 12 02 00 00 AD", DeviceEventCode.ACK),
    "3503": ("03 02 10 35 03 02 00 00 B1", DeviceEventCode.ACK),
    "2900": (
        "03 02 10 29 00 02 0B 00 30 33 30 36 31 30 30 35 00 00 00 26",
        DeviceEventCode.REPLY,
    ),
    "2936": ("03 02 10 29 36 02 04 00 37 2E 35 00 EC", DeviceEventCode.REPLY),
}


def test_the_documents_other_examples_are_valid_packets() -> None:
    stream = b"".join(bytes.fromhex(raw) for raw, _ in DOC_OTHER_RESPONSES.values())
    events = SureTempDecoder().feed(stream)
    assert [(e.code, e.detail) for e in events if isinstance(e, DeviceEvent)] == [
        (DeviceEventCode.ACK, "2A12"),
        (DeviceEventCode.ACK, "3503"),
        (DeviceEventCode.REPLY, "reply to 2900: 11 data bytes"),
        (DeviceEventCode.REPLY, "reply to 2936: 4 data bytes"),
    ]
    assert [code for _, code in DOC_OTHER_RESPONSES.values()] == [
        e.code for e in events if isinstance(e, DeviceEvent)
    ]


# Captures ----------------------------------------------------------------------------------
CASES = sorted((CAPTURES / "suretemp-plus").glob("*.hex"))


def test_suretemp_has_the_captures_every_protocol_has() -> None:
    names = {p.stem for p in CASES}
    assert {"noise_between_frames", "truncated_frame", "document_example", "normal"} <= names


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_capture_decodes_to_expected_whole_and_byte_by_byte(path: Path) -> None:
    data = load_capture(path)
    expected = json.loads(path.with_suffix(".json").read_text())
    spec = get_codec(CODEC)
    assert isinstance(spec, StreamCodec)
    assert dump(spec.new_decoder().feed(data)) == expected
    assert dump(feed_bytewise(data)) == expected


# One reading per final ---------------------------------------------------------------------
def test_a_measurement_gives_progress_then_exactly_one_final_reading() -> None:
    ready = frames.suretemp_record(2)
    predict = frames.suretemp_record(4, probe_k=36.0 + K)
    final = frames.suretemp_record(6, final_k=37.2 + K, probe_k=36.9 + K)
    final_later = frames.suretemp_record(6, final_k=37.2 + K, probe_k=37.0 + K, samples=9)
    decoder = SureTempDecoder()
    assert decoder.feed(ready + predict) == [
        ThermometerStatus(
            codec=CODEC, detail="ready", state=SureTempState.READY, raw_hex=ready.hex()
        ),
        TemperatureProgress(
            codec=CODEC,
            detail="predict_display",
            state=SureTempState.PREDICT_DISPLAY,
            probe_temperature_c=36.0,
            raw_hex=predict.hex(),
        ),
    ]
    assert decoder.feed(final) == [temperature(37.2, final)]
    assert decoder.feed(final_later + final) == []  # polled again: the same final
    # The next measurement gives the next reading, even at the same value.
    assert decoder.feed(ready + predict + final)[-1] == temperature(37.2, final)
    # A final whose prediction this decoder never saw (connected, or reconnected, while the
    # probe showed it) may be an earlier patient's: from_storage, so the guard trays it.
    assert decoder.feed(ready + final)[-1] == temperature(37.2, final, flags=(Flag.FROM_STORAGE,))
    assert SureTempDecoder().feed(final) == [temperature(37.2, final, flags=(Flag.FROM_STORAGE,))]


@pytest.mark.parametrize(
    ("state", "algorithm", "probe", "site", "flags"),
    [
        (6, 0, 0, TemperatureSite.MOUTH, ()),
        (6, 1, 2, TemperatureSite.RECTUM, ()),
        (6, 2, 0, TemperatureSite.ARMPIT, ()),
        (6, 4, 0, TemperatureSite.ARMPIT, ()),
        (6, 7, 0, None, ()),  # unknown algorithm, oral/axillary probe: site unknown
        (6, 7, 2, TemperatureSite.RECTUM, ()),
        (6, 3, 1, None, (Flag.TESTING_DATA,)),
        (7, 0, 0, TemperatureSite.MOUTH, (Flag.QUESTIONABLE,)),
        (8, 0, 0, TemperatureSite.MOUTH, (Flag.OUTSIDE_DEVICE_RANGE,)),
        (9, 0, 0, TemperatureSite.MOUTH, (Flag.OUTSIDE_DEVICE_RANGE, Flag.QUESTIONABLE)),
        (10, 0, 0, TemperatureSite.MOUTH, (Flag.OUTSIDE_DEVICE_RANGE,)),
        (11, 0, 0, TemperatureSite.MOUTH, (Flag.OUTSIDE_DEVICE_RANGE, Flag.QUESTIONABLE)),
    ],
)
def test_final_states_sites_and_flags(
    state: int, algorithm: int, probe: int, site: TemperatureSite | None, flags: tuple[Flag, ...]
) -> None:
    raw = frames.suretemp_record(state, final_k=36.9 + K, algorithm=algorithm, probe_type=probe)
    decoder = SureTempDecoder()
    decoder.feed(PREDICTING)
    assert decoder.feed(raw) == [temperature(36.9, raw, site=site, flags=flags)]


def test_an_implausible_final_is_flagged_not_dropped() -> None:
    raw = frames.suretemp_record(6, final_k=52.0 + K)
    assert SureTempDecoder().feed(PREDICTING + raw)[-1] == temperature(
        52.0, raw, flags=(Flag.IMPLAUSIBLE,)
    )


def test_a_final_that_is_not_a_number_is_a_bad_frame() -> None:
    raw = frames.suretemp_record(6, final_k=float("nan"))
    (bad,) = SureTempDecoder().feed(raw)
    assert bad == BadFrame(
        codec=CODEC,
        problem="final temperature nan K is not a temperature",
        expected="a positive, finite float32 in kelvin",
        raw_hex=raw.hex(),
    )


def test_nak_and_error_state_are_device_events_and_the_error_is_reported_once() -> None:
    nak = frames.suretemp_nak(0x941C, 3)
    error = frames.suretemp_record(20, error=7)
    error2 = frames.suretemp_record(20, error=8)
    assert SureTempDecoder().feed(nak + error + error + error2) == [
        DeviceEvent(
            codec=CODEC,
            code=DeviceEventCode.NAK,
            detail="command 941C refused (error code 3)",
            raw_hex=nak.hex(),
        ),
        DeviceEvent(
            codec=CODEC,
            code=DeviceEventCode.DEVICE_ERROR,
            detail="SureTemp error code 7",
            raw_hex=error.hex(),
        ),
        DeviceEvent(
            codec=CODEC,
            code=DeviceEventCode.DEVICE_ERROR,
            detail="SureTemp error code 8",
            raw_hex=error2.hex(),
        ),
    ]


# Damage ------------------------------------------------------------------------------------
def test_every_single_byte_corruption_is_reported_and_never_a_wrong_reading() -> None:
    final = frames.suretemp_record(6, final_k=37.4 + K)
    ready = frames.suretemp_record(2)
    for at in range(len(final)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(final)
            damaged[at] ^= flip
            events = SureTempDecoder().feed(
                PREDICTING + bytes(damaged) + ready + PREDICTING + final
            )
            readings = [e for e in events if isinstance(e, Temperature)]
            assert readings == [temperature(37.4, final)], (at, flip)
            assert any(isinstance(e, BadFrame) for e in events), (at, flip)


def test_partial_frames_are_held_until_complete() -> None:
    final = frames.suretemp_record(6, final_k=36.6 + K)
    for cut in (1, 3, 8, 20):
        assert SureTempDecoder().feed(final[:cut]) == []
    decoder = SureTempDecoder()
    decoder.feed(PREDICTING)
    assert decoder.feed(final[:20]) == []
    assert decoder.feed(final[20:]) == [temperature(36.6, final)]


def test_seeded_fuzz_any_chunking_same_events_and_no_invented_temperature() -> None:
    rng = random.Random(20261123)
    for _ in range(150):
        stream = bytearray()
        finals: set[float] = set()
        for _ in range(rng.randint(1, 8)):
            pick = rng.random()
            if pick < 0.3:
                stream += bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
            elif pick < 0.6:
                celsius = round(rng.uniform(34.0, 41.0), 1)
                finals.add(celsius)
                stream += frames.suretemp_record(2) + frames.suretemp_record(
                    rng.choice([6, 7, 8, 10]), final_k=celsius + K, algorithm=rng.randrange(6)
                )
            else:
                frame = bytearray(frames.suretemp_record(rng.randrange(22), probe_k=300.0))
                frame[rng.randrange(len(frame))] ^= rng.randrange(1, 256)
                stream += frame
        data = bytes(stream)
        whole = SureTempDecoder().feed(data)
        decoder = SureTempDecoder()
        chunked: list[StreamEvent] = []
        at = 0
        while at < len(data):
            step = rng.randint(1, 9)
            chunked.extend(decoder.feed(data[at : at + step]))
            at += step
        assert chunked == whole
        for event in whole:
            if isinstance(event, Temperature):
                assert event.temperature_c in finals  # only values that were sent as finals


# The simulator, without a pty ----------------------------------------------------------------
def test_simulator_answers_polls_idle_ready_predicting_final_end() -> None:
    model = SureTempModel("normal", random.Random(5))
    decoder = SureTempDecoder()
    events: list[StreamEvent] = []
    for step in range(30):  # 0.2 s polls for 6 s: two measurement cycles
        events.extend(decoder.feed(model.answer(DOC_941C_COMMAND, 100.0 + step * 0.2)))
    states = [e.state for e in events if isinstance(e, ThermometerStatus | TemperatureProgress)]
    assert states[:2] == [SureTempState.IDLE, SureTempState.READY]
    assert SureTempState.PREDICT in states and SureTempState.END in states
    readings = [e for e in events if isinstance(e, Temperature)]
    assert [{"temperature_c": r.temperature_c} for r in readings] == model.sent
    assert len(readings) == 2
    assert all(36.3 <= (r.temperature_c or 0) <= 37.5 for r in readings)
    # A command it does not know the checksum of is refused, as the module does.
    assert model.answer(DOC_941C_COMMAND[:-1] + b"\x00", 200.0) == frames.suretemp_nak(0x941C)


# Real pyserial on a pty, through SerialLink --------------------------------------------------
@pytest.fixture
def link_to(by_id_dir: Path) -> Iterator[Callable[[Collector], SerialLink]]:
    links: list[SerialLink] = []

    def start(events: Collector) -> SerialLink:
        link = SerialLink(
            PROFILE,
            events,
            by_id_dir=by_id_dir,
            list_ports_fn=list,
            reading_mode=Mode.DEMO,
            backoff_initial_s=0.05,
            backoff_max_s=0.2,
        )
        link.start()
        links.append(link)
        return link

    yield start
    for link in links:
        link.stop()


@pytest.mark.serial
@pytest.mark.parametrize("scenario", ["normal", "noise", "unplug"])
def test_pty_link_polls_941c_and_gets_one_reading_per_final(
    scenario: str, serial_simulator: SimulatorFactory, link_to: Callable[[Collector], SerialLink]
) -> None:
    simulator = serial_simulator(PROFILE, scenario=scenario, seed=4)
    events = Collector()
    link_to(events)
    events.wait(lambda: len(events.readings(Kind.TEMPERATURE)) >= 2, timeout=15.0)
    readings = [r for r in events.readings(Kind.TEMPERATURE) if isinstance(r, Temperature)]
    # Exactly what the module said, once per final, in order; K in, °C out, marked demo.
    sent = [s["temperature_c"] for s in simulator.sent]
    got = [r.temperature_c for r in readings]
    if scenario == "unplug":
        # A final can be lost with the port, and a replug during a final reads it again (a
        # new link session, a new decoder): in order, none invented, repeats only in a row.
        at = 0
        for value in got:
            assert value in sent[at:], (got, sent)
            at = sent.index(value, at)
    else:
        assert got == sent[: len(got)] or got == sent[1 : len(got) + 1], (got, sent)
    assert {(r.unit_as_sent, r.site, r.mode) for r in readings} == {
        (Unit.KELVIN, TemperatureSite.MOUTH, Mode.DEMO)
    }
    # Flagged only when a replug hid the prediction (then the guard trays it).
    allowed = {(), (Flag.FROM_STORAGE,)} if scenario == "unplug" else {()}
    assert {r.flags for r in readings} <= allowed
    assert DOC_941C_COMMAND in bytes(simulator.received)
    assert any(isinstance(e, TemperatureProgress) for e in events.events)
    if scenario == "noise":
        assert any(isinstance(e, BadFrame) for e in events.events)
    else:
        assert not [e for e in events.events if isinstance(e, BadFrame)]
    if scenario == "unplug":
        events.wait(lambda: events.states().count(LinkState.CONNECTED) >= 2, timeout=15.0)
