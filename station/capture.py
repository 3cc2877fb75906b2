"""Spot capture: one reading per measurement episode from a device that streams.

A streaming pulse oximeter (Nonin, Masimo, PLX continuous 0x2A5F) sends about a reading a
second for as long as the probe is on; a polled scale answers every poll. A rooming records
ONE spot value per measurement episode, so every reading of such a device goes through a
`SpotCapture` first:

- the episode starts when the sensor is on the patient (a value, no sensor-off flag);
- once the values have been stable for the rule's time (every reading of the window within
  the tolerance of the last one, none carrying a quality flag that rejects or suggests a
  retake), the LAST reading of that window is captured and goes on to the wrong-patient
  guard: one of the readings the device actually sent, never an average, nothing altered;
- every reading of the episode, before and after the capture, is the tile's live value only;
- the episode ends when the sensor comes off (a sensor-off flag or an empty scale at once;
  a null SpO2 once it has lasted `off_confirm_s`) or nothing arrives for
  `end_after_silence_s`; the next episode captures again (a retake: the rooming keeps both).

Spot-check devices (cuffs, thermometers, PLX spot-check 0x2A5E, BLE scales sending one final
weight) and stored readings pass straight through, unchanged. Pure: the caller passes the
time (monotonic seconds), nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from station.models import AnyReading, Flag, Kind
from station.validation import DEVICE_QUALITY


class Delivery(StrEnum):
    """How a device delivers its readings (a firmware profile's `behaviour.delivery`)."""

    SPOT = "spot"  # one reading per measurement: passed on as it is
    STREAMING = "streaming"  # a reading a second (or a poll) while measuring: captured


class CaptureState(StrEnum):
    IDLE = "idle"  # no episode: sensor off, nobody on the scale, or silence
    SETTLING = "settling"  # an episode, waiting for stable values
    CAPTURED = "captured"  # this episode's spot value has gone on; live values only


# The device says the sensor is not on a patient: the episode ends with this reading.
SENSOR_OFF_FLAGS = frozenset(
    {Flag.SENSOR_DISCONNECTED, Flag.SENSOR_UNCONNECTED_TO_USER, Flag.OUT_OF_TRACK}
)
# Every flag validation words is one that rejects or suggests a retake: a reading carrying
# one is never captured (the tile shows it live; the stable window starts again).
BLOCKING_FLAGS = frozenset(DEVICE_QUALITY)

# The kinds a streaming device can capture, and the values each must hold steady.
STABLE_FIELDS: dict[Kind, tuple[str, ...]] = {
    Kind.PULSE_OXIMETRY: ("spo2_percent", "pulse_rate_bpm"),
    Kind.BODY_WEIGHT: ("weight_kg",),
}
CAPTURE_KINDS = frozenset(STABLE_FIELDS)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CaptureRule(_Frozen):
    """When a streamed value counts as the spot value; defaults per kind in DEFAULT_RULES."""

    stable_s: float = Field(gt=0, le=120)
    # value field -> how far each reading of the window may be from the captured one
    tolerance: dict[str, float]
    min_readings: int = Field(default=3, ge=2, le=100)
    end_after_silence_s: float = Field(default=10.0, gt=0, le=600)
    off_confirm_s: float = Field(default=2.0, ge=0, le=60)
    empty_platform_kg: float = Field(default=0.5, ge=0, le=50)


# Named thresholds, with the reason beside each.
# Oximeters: SpO2 accuracy is ±2 digits (70–100 %), so ±1 % over 5 s is a settled reading,
# not noise; pulse ±3 /min is the devices' own stated pulse accuracy; 5 s covers several
# averaging periods of the 4-beat / 8-second averages these devices display.
OXIMETRY_STABLE_S = 5.0
SPO2_TOLERANCE_PERCENT = 1.0
PULSE_TOLERANCE_BPM = 3.0
# Scales: ±0.05 kg is one display step of a 0.1 kg scale, and a person standing still holds
# that for 2 s; the scale's own motion flag (in_motion) blocks capture anyway.
WEIGHT_STABLE_S = 2.0
WEIGHT_TOLERANCE_KG = 0.05
# Two readings could agree by chance; three consecutive readings do not.
MIN_STABLE_READINGS = 3
# No reading for this long: the probe was put down (or the device went quiet).
END_AFTER_SILENCE_S = 10.0
# A single null SpO2 (motion, a probe shifting) is not the probe coming off; taking it off
# lasts longer. Device sensor-off flags end the episode at once.
OFF_CONFIRM_S = 2.0
# An empty platform is unambiguous (the weight does not drop to zero under someone standing
# on it): the weighing ends with the first empty reading.
EMPTY_PLATFORM_CONFIRM_S = 0.0
# Below this an empty scale reads inside its zero band; the lightest patient weighs more.
EMPTY_PLATFORM_KG = 0.5

DEFAULT_RULES: dict[Kind, CaptureRule] = {
    Kind.PULSE_OXIMETRY: CaptureRule(
        stable_s=OXIMETRY_STABLE_S,
        tolerance={
            "spo2_percent": SPO2_TOLERANCE_PERCENT,
            "pulse_rate_bpm": PULSE_TOLERANCE_BPM,
        },
        min_readings=MIN_STABLE_READINGS,
        end_after_silence_s=END_AFTER_SILENCE_S,
        off_confirm_s=OFF_CONFIRM_S,
    ),
    Kind.BODY_WEIGHT: CaptureRule(
        stable_s=WEIGHT_STABLE_S,
        tolerance={"weight_kg": WEIGHT_TOLERANCE_KG},
        min_readings=MIN_STABLE_READINGS,
        end_after_silence_s=END_AFTER_SILENCE_S,
        off_confirm_s=EMPTY_PLATFORM_CONFIRM_S,
        empty_platform_kg=EMPTY_PLATFORM_KG,
    ),
}


class CaptureOverrides(_Frozen):
    """A profile's `[behaviour.capture]`: any threshold given replaces the kind's default."""

    stable_s: float | None = Field(default=None, gt=0, le=120)
    spo2_tolerance_percent: float | None = Field(default=None, ge=0, le=10)
    pulse_tolerance_bpm: float | None = Field(default=None, ge=0, le=30)
    weight_tolerance_kg: float | None = Field(default=None, ge=0, le=5)
    min_readings: int | None = Field(default=None, ge=2, le=100)
    end_after_silence_s: float | None = Field(default=None, gt=0, le=600)
    off_confirm_s: float | None = Field(default=None, ge=0, le=60)
    empty_platform_kg: float | None = Field(default=None, ge=0, le=50)

    def rule_for(self, kind: Kind) -> CaptureRule:
        base = DEFAULT_RULES[kind]
        tolerance = dict(base.tolerance)
        for name, value in (
            ("spo2_percent", self.spo2_tolerance_percent),
            ("pulse_rate_bpm", self.pulse_tolerance_bpm),
            ("weight_kg", self.weight_tolerance_kg),
        ):
            if value is not None and name in tolerance:
                tolerance[name] = value
        changes: dict[str, object] = {"tolerance": tolerance}
        for name in (
            "stable_s",
            "min_readings",
            "end_after_silence_s",
            "off_confirm_s",
            "empty_platform_kg",
        ):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value
        return CaptureRule.model_validate({**base.model_dump(), **changes})


class Step(_Frozen):
    """What became of one reading (or of the passing time, from `expire`)."""

    state: CaptureState  # after this step
    forward: AnyReading | None = None  # on to the guard: a spot reading, or the captured one
    live: AnyReading | None = None  # the tile's live value while measuring; never attached
    episode_ended: bool = False  # the episode ended in this step: the tile's live value goes


class SpotCapture:
    """One device's capture state machine; `feed` every reading, `expire` on a timer."""

    def __init__(
        self,
        delivery: Delivery,
        overrides: CaptureOverrides | None = None,
        *,
        spot_codecs: Collection[str] = (),
    ) -> None:
        self.delivery = delivery
        self._overrides = overrides or CaptureOverrides()
        self._spot_codecs = frozenset(spot_codecs)
        self._rules: dict[Kind, CaptureRule] = {}
        self.state = CaptureState.IDLE
        self._run: list[tuple[float, AnyReading]] = []  # the stable run ending at the last one
        self._last_at: float | None = None
        self._off_since: float | None = None
        self._kind: Kind | None = None

    def rule(self, kind: Kind) -> CaptureRule:
        if kind not in self._rules:
            self._rules[kind] = self._overrides.rule_for(kind)
        return self._rules[kind]

    def passes_through(self, reading: AnyReading) -> bool:
        """Readings that are not part of a stream go on as they are."""
        return (
            self.delivery is Delivery.SPOT
            or reading.kind not in CAPTURE_KINDS
            or reading.codec in self._spot_codecs
            # A stored reading is not live data: the guard sends it to the tray.
            or reading.has(Flag.FROM_STORAGE)
        )

    def feed(self, reading: AnyReading, now_s: float) -> Step:
        if self.passes_through(reading):
            return Step(state=self.state, forward=reading)
        ended = self.expire(now_s).episode_ended
        if self._kind is not None and reading.kind is not self._kind:
            ended = ended or self.state is not CaptureState.IDLE
            self._end()
        self._kind = reading.kind
        self._last_at = now_s
        rule = self.rule(reading.kind)
        if any(reading.has(flag) for flag in SENSOR_OFF_FLAGS):
            return self._sensor_off(ended)
        if self._no_value(reading, rule):
            if self.state is CaptureState.IDLE:
                return Step(state=self.state, episode_ended=ended)
            if self._off_since is None:
                self._off_since = now_s
            if now_s - self._off_since >= rule.off_confirm_s:
                return self._sensor_off(ended)
            self._run.clear()
            return Step(state=self.state, live=reading, episode_ended=ended)
        self._off_since = None
        if self.state is CaptureState.IDLE:
            self.state = CaptureState.SETTLING
        if self.state is CaptureState.CAPTURED:
            return Step(state=self.state, live=reading, episode_ended=ended)
        if not self._acceptable(reading, rule):
            self._run.clear()
            return Step(state=self.state, live=reading, episode_ended=ended)
        self._run = [(at, r) for at, r in self._stable_suffix(reading, rule)]
        self._run.append((now_s, reading))
        first_at = self._run[0][0]
        if len(self._run) >= rule.min_readings and now_s - first_at >= rule.stable_s:
            self.state = CaptureState.CAPTURED
            self._run.clear()
            return Step(state=self.state, forward=reading, live=reading, episode_ended=ended)
        return Step(state=self.state, live=reading, episode_ended=ended)

    def expire(self, now_s: float) -> Step:
        """Silence ends the episode; call it on a timer (and `feed` calls it first)."""
        silent = self._last_at is not None and now_s - self._last_at >= self._silence_s()
        if silent and self.state is not CaptureState.IDLE:
            self._end()
            return Step(state=self.state, episode_ended=True)
        return Step(state=self.state)

    # ---- helpers ------------------------------------------------------------------------

    def _silence_s(self) -> float:
        kind = self._kind or Kind.PULSE_OXIMETRY
        return self.rule(kind).end_after_silence_s

    def _end(self) -> None:
        self.state = CaptureState.IDLE
        self._run.clear()
        self._off_since = None

    def _sensor_off(self, ended_before: bool) -> Step:
        was_on = self.state is not CaptureState.IDLE
        self._end()
        return Step(state=self.state, episode_ended=ended_before or was_on)

    @staticmethod
    def _no_value(reading: AnyReading, rule: CaptureRule) -> bool:
        """Nothing on the sensor: SpO2 null, or nobody on the scale."""
        if reading.kind is Kind.PULSE_OXIMETRY:
            return getattr(reading, "spo2_percent", None) is None
        weight = getattr(reading, "weight_kg", None)
        return weight is None or weight < rule.empty_platform_kg

    @staticmethod
    def _acceptable(reading: AnyReading, rule: CaptureRule) -> bool:
        if any(flag in BLOCKING_FLAGS for flag in reading.flags):
            return False
        return all(getattr(reading, name, None) is not None for name in rule.tolerance)

    def _stable_suffix(
        self, reading: AnyReading, rule: CaptureRule
    ) -> list[tuple[float, AnyReading]]:
        """The readings just before this one that are all within tolerance of it."""
        kept: list[tuple[float, AnyReading]] = []
        for at, earlier in reversed(self._run):
            if not _within(earlier, reading, rule.tolerance):
                break
            kept.append((at, earlier))
        kept.reverse()
        return kept


def _within(earlier: AnyReading, latest: AnyReading, tolerance: dict[str, float]) -> bool:
    for name, allowed in tolerance.items():
        a, b = getattr(earlier, name, None), getattr(latest, name, None)
        if a is None or b is None or abs(a - b) > allowed + 1e-9:
            return False
    return True
