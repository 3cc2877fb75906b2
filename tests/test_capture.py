"""Spot capture: one reading per episode from a streaming device, exactly as it was received."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pytest
from pydantic import ValidationError

from station.capture import (
    CaptureOverrides,
    CaptureRule,
    CaptureState,
    Delivery,
    SpotCapture,
    Step,
)
from station.models import AnyReading, BloodPressure, BodyWeight, Flag, PulseOximetry
from station.units import Unit

SETTLING, CAPTURED, IDLE = CaptureState.SETTLING, CaptureState.CAPTURED, CaptureState.IDLE


def ox(spo2: float | None, pulse: float | None = 72.0, *flags: Flag, n: int = 0,
       codec: str = "serial:nonin-8") -> PulseOximetry:
    # `n` makes each frame's raw bytes distinct, so "identical to one received" is testable.
    return PulseOximetry(spo2_percent=spo2, pulse_rate_bpm=pulse, flags=flags,
                         unit_as_sent=Unit.PERCENT, codec=codec, codec_version="1",
                         raw_hex=f"{n:04x}")


def kg(weight: float | None, *flags: Flag, n: int = 0) -> BodyWeight:
    return BodyWeight(weight_kg=weight, flags=flags, unit_as_sent=Unit.KG, codec="serial:sma",
                      codec_version="1", raw_hex=f"{n:04x}")


def feed_all(capture: SpotCapture, readings: Sequence[AnyReading], start_s: float = 0.0,
             every_s: float = 1.0) -> list[Step]:
    return [capture.feed(r, start_s + i * every_s) for i, r in enumerate(readings)]


def forwarded(steps: list[Step]) -> list[AnyReading]:
    return [s.forward for s in steps if s.forward is not None]


def test_stable_oximetry_captures_the_last_reading_of_the_window_once() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    stream = [ox(97, 72, n=0), ox(98, 74, n=1), ox(97, 73, n=2), ox(98, 71, n=3),
              ox(97, 72, n=4), ox(97, 73, n=5), ox(96, 74, n=6), ox(97, 72, n=7)]
    steps = feed_all(capture, stream)
    # 5 s of readings within ±1 % / ±3 /min of the reading at t = 5 s: that one is captured.
    assert steps[:5] == [Step(state=SETTLING, live=r) for r in stream[:5]]
    assert steps[5] == Step(state=CAPTURED, forward=stream[5], live=stream[5])
    assert steps[5].forward is stream[5]  # the very reading received, not a copy or average
    # The rest of the episode is live only.
    assert steps[6:] == [Step(state=CAPTURED, live=r) for r in stream[6:]]
    assert forwarded(steps) == [stream[5]]


def test_the_window_restarts_after_a_reading_outside_the_tolerance() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    stream = [ox(97, n=0), ox(97, n=1), ox(94, n=2)] + [ox(95, n=3 + i) for i in range(6)]
    steps = feed_all(capture, stream)
    # 94 is within 1 of 95, so the run starts at t = 2 s and is 5 s long at t = 7 s.
    assert [s.state for s in steps] == [SETTLING] * 7 + [CAPTURED, CAPTURED]
    assert forwarded(steps) == [stream[7]]


def test_unstable_values_never_capture() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    stream = [ox(spo2, n=i) for i, spo2 in enumerate([99, 96, 99, 96, 99, 96, 99, 96, 99, 96])]
    steps = feed_all(capture, stream)
    assert forwarded(steps) == []
    assert {s.state for s in steps} == {SETTLING}
    assert [s.live for s in steps] == stream


def test_pulse_drifting_more_than_three_per_minute_never_captures() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    stream = [ox(97, 70 + 4 * i, n=i) for i in range(10)]
    assert forwarded(feed_all(capture, stream)) == []


@pytest.mark.parametrize(
    "flag", [Flag.ARTIFACT, Flag.LOW_PERFUSION, Flag.LOW_SIGNAL_IQ, Flag.PULSE_SEARCH,
             Flag.IMPLAUSIBLE, Flag.MEASUREMENT_ONGOING]
)
def test_a_quality_flag_that_rejects_or_suggests_a_retake_blocks_capture(flag: Flag) -> None:
    capture = SpotCapture(Delivery.STREAMING)
    flagged = [ox(97, 72, flag, n=i) for i in range(10)]
    steps = feed_all(capture, flagged)
    assert forwarded(steps) == []
    assert [s.live for s in steps] == flagged
    # Once the flag clears, a fresh 5 s window is needed.
    clean = [ox(97, 72, n=10 + i) for i in range(6)]
    later = feed_all(capture, clean, start_s=10)
    assert forwarded(later) == [clean[5]]


def test_a_flag_mid_window_restarts_it() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    stream = [ox(97, n=0), ox(97, n=1), ox(97, n=2), ox(97, 72, Flag.ARTIFACT, n=3)] + [
        ox(97, n=4 + i) for i in range(6)]
    steps = feed_all(capture, stream)
    assert forwarded(steps) == [stream[9]]  # window from t = 4 s to t = 9 s


def test_sensor_off_then_on_is_a_second_episode_and_a_second_capture() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    first = [ox(97, 72, n=i) for i in range(7)]
    off = ox(None, None, Flag.SENSOR_DISCONNECTED, n=100)
    second = [ox(95, 80, n=200 + i) for i in range(6)]
    steps = feed_all(capture, [*first, off, *second])
    assert steps[7] == Step(state=IDLE, episode_ended=True)
    assert steps[8] == Step(state=SETTLING, live=second[0])
    assert forwarded(steps) == [first[5], second[5]]


def test_sensor_off_flags_end_the_episode_at_once_null_spo2_only_when_it_lasts() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    on = [ox(97, n=i) for i in range(6)]
    steps = feed_all(capture, on)
    assert forwarded(steps) == [on[5]]
    # One null frame (motion) does not end it: no second capture after it.
    blip = ox(None, None, n=50)
    assert capture.feed(blip, 6) == Step(state=CAPTURED, live=blip)
    more = [ox(97, n=60 + i) for i in range(8)]
    assert forwarded(feed_all(capture, more, start_s=7)) == []
    # Nulls lasting 2 s do: the probe came off.
    nulls = [ox(None, None, n=70 + i) for i in range(3)]
    assert feed_all(capture, nulls, start_s=15) == [
        Step(state=CAPTURED, live=nulls[0]), Step(state=CAPTURED, live=nulls[1]),
        Step(state=IDLE, episode_ended=True)]
    again = [ox(96, n=80 + i) for i in range(6)]
    assert forwarded(feed_all(capture, again, start_s=18)) == [again[5]]


@pytest.mark.parametrize("flag", [Flag.SENSOR_UNCONNECTED_TO_USER, Flag.OUT_OF_TRACK])
def test_every_sensor_off_flag_ends_the_episode(flag: Flag) -> None:
    capture = SpotCapture(Delivery.STREAMING)
    feed_all(capture, [ox(97, n=i) for i in range(3)])
    assert capture.feed(ox(97, 72, flag, n=9), 3) == Step(state=IDLE, episode_ended=True)


def test_null_readings_with_no_episode_change_nothing() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    steps = feed_all(capture, [ox(None, None, n=i) for i in range(4)])
    assert steps == [Step(state=IDLE)] * 4


def test_silence_ends_the_episode_and_the_next_reading_starts_a_new_one() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    first = [ox(97, n=i) for i in range(6)]
    assert forwarded(feed_all(capture, first)) == [first[5]]
    assert capture.expire(14.9) == Step(state=CAPTURED)
    assert capture.expire(15.0) == Step(state=IDLE, episode_ended=True)
    assert capture.expire(16.0) == Step(state=IDLE)
    second = [ox(98, n=10 + i) for i in range(6)]
    assert forwarded(feed_all(capture, second, start_s=30)) == [second[5]]


def test_a_reading_after_silence_reports_the_ended_episode_with_its_own_step() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    feed_all(capture, [ox(97, n=i) for i in range(6)])
    late = ox(97, n=99)
    assert capture.feed(late, 40) == Step(state=SETTLING, live=late, episode_ended=True)


def test_a_still_scale_captures_after_two_seconds_and_motion_blocks_it() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    stepping_on = [kg(0.0, n=0), kg(40.2, Flag.IN_MOTION, n=1), kg(71.9, Flag.IN_MOTION, n=2),
                   kg(72.4, n=3), kg(72.4, n=4), kg(72.45, n=5), kg(72.4, n=6), kg(72.4, n=7)]
    steps = feed_all(capture, stepping_on)
    assert steps[0] == Step(state=IDLE)  # nobody on the platform
    assert forwarded(steps) == [stepping_on[5]]  # 72.4 at t=3,4 and 72.45 at t=5: 2 s, 3 readings
    stepping_off = [kg(30.0, Flag.IN_MOTION, n=8), kg(0.0, n=9), kg(0.0, n=10), kg(0.0, n=11)]
    steps = feed_all(capture, stepping_off, start_s=8)
    assert steps[1:] == [Step(state=IDLE, episode_ended=True), Step(state=IDLE),
                         Step(state=IDLE)]  # the first empty reading ends the weighing
    next_patient = [kg(55.1, n=20 + i) for i in range(3)]
    assert forwarded(feed_all(capture, next_patient, start_s=12)) == [next_patient[2]]


def test_a_weight_changing_by_more_than_50_grams_never_captures() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    shifting = [kg(72.0 + 0.1 * i, n=i) for i in range(8)]
    assert forwarded(feed_all(capture, shifting)) == []


def test_spot_devices_pass_straight_through_unchanged() -> None:
    capture = SpotCapture(Delivery.SPOT)
    bp = BloodPressure(systolic_mmhg=124, diastolic_mmhg=80, unit_as_sent=Unit.MMHG,
                       codec="ble:2a35", codec_version="1", raw_hex="00")
    readings: list[AnyReading] = [bp, ox(97, n=1), ox(97, n=2), kg(70, Flag.IN_MOTION, n=3)]
    steps = feed_all(capture, readings)
    assert steps == [Step(state=IDLE, forward=r) for r in readings]
    assert all(s.forward is r for s, r in zip(steps, readings, strict=True))


def test_spot_check_codec_and_stored_readings_of_a_streaming_device_pass_through() -> None:
    capture = SpotCapture(Delivery.STREAMING, spot_codecs=["ble:2a5e"])
    spot = ox(96, 70, n=1, codec="ble:2a5e")
    stored = ox(94, 66, Flag.FROM_STORAGE, n=2, codec="ble:2a5f")
    assert capture.feed(spot, 0) == Step(state=IDLE, forward=spot)
    assert capture.feed(stored, 1) == Step(state=IDLE, forward=stored)
    live = ox(97, 72, n=3, codec="ble:2a5f")
    assert capture.feed(live, 2) == Step(state=SETTLING, live=live)


def test_a_streaming_blood_pressure_reading_is_not_captured_but_passed_on() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    bp = BloodPressure(systolic_mmhg=124, diastolic_mmhg=80, unit_as_sent=Unit.MMHG,
                       codec="serial:x", codec_version="1", measured_at=datetime(2026, 3, 1))
    assert capture.feed(bp, 0) == Step(state=IDLE, forward=bp)


def test_profile_overrides_replace_only_what_they_name() -> None:
    rule = CaptureOverrides(stable_s=3, pulse_tolerance_bpm=5).rule_for(
        PulseOximetry.model_fields["kind"].default)
    assert rule == CaptureRule(stable_s=3, tolerance={"spo2_percent": 1.0, "pulse_rate_bpm": 5.0},
                               min_readings=3, end_after_silence_s=10, off_confirm_s=2,
                               empty_platform_kg=0.5)
    capture = SpotCapture(Delivery.STREAMING, CaptureOverrides(stable_s=3))
    stream = [ox(97, n=i) for i in range(5)]
    assert forwarded(feed_all(capture, stream)) == [stream[3]]
    with pytest.raises(ValidationError, match="stable_s"):
        CaptureOverrides(stable_s=0)


def test_fed_in_uneven_bursts_the_captured_reading_is_always_one_received() -> None:
    capture = SpotCapture(Delivery.STREAMING)
    stream = [ox(97 + (i % 2), 72 + (i % 3), n=i) for i in range(20)]
    times = [0.0, 0.1, 0.2, 2.5, 2.6, 4.0, 4.1, 4.2, 5.3, 6.0, 6.1, 9.0, 9.1, 9.2, 9.3, 9.4,
             11.0, 12.0, 13.0, 14.0]
    steps = [capture.feed(r, t) for r, t in zip(stream, times, strict=True)]
    [captured] = forwarded(steps)
    assert any(captured is r for r in stream)
    assert captured is stream[8]  # t = 5.3: run from t = 0.0 within tolerance, 9 readings


def test_spo2_swinging_97_99_never_settles() -> None:
    # An SpO2 that swings 2 % every second is not a settled reading: the capture rule allows
    # ±1 % over 5 s (oximeter SpO2 accuracy is ±2 digits at 70-100 %: a 2 % swing is the whole
    # accuracy band, so no single value of it stands for the patient). Nothing is captured, the
    # tile shows it live.
    capture = SpotCapture(Delivery.STREAMING)
    stream = [ox(97 if i % 2 == 0 else 99, 72, n=i) for i in range(30)]
    steps = feed_all(capture, stream)
    assert forwarded(steps) == []
    assert all(s.state is SETTLING and s.live is r for s, r in zip(steps, stream, strict=True))
