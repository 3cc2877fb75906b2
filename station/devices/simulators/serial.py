"""Serial device simulators: a pseudo-terminal that streams or answers polls like the device.

`simulator_for(profile, scenario=...)` picks the device model from the profile's codec. The
simulator owns the master side of a pty; the station opens `simulator.port` (the slave, or a
symlink standing in for /dev/serial/by-id/...) with real pyserial. Every value it sends is
recorded in `simulator.sent` (value field -> value), so a test can hold the link to exactly
what the device said.

Scenarios: normal (values jump about between frames); steady (a patient sitting still: an
oximeter's SpO2 and pulse and a scale's weight hold steady as a real patient's do, so the
station's spot capture settles); noise (garbage between frames); unplug (the port vanishes
for a moment and comes back under the same symlink, like a USB replug); motion; sensor_off;
baud_mismatch (the bytes a receiver at the wrong baud would read, see
station.devices.simulators.uart). A model's `scenario` may be changed while it runs (a test
takes the probe off with "sensor_off" and puts it back with "steady").
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import threading
import time
import tty
from datetime import datetime, timedelta
from pathlib import Path

from station.devices.codecs.serial import dinamap, healthometer, suntech, suretemp
from station.devices.profiles import FirmwareProfile, Transport
from station.devices.simulators import frames
from station.devices.simulators.uart import uart_receive

SCENARIOS = ("normal", "steady", "noise", "unplug", "motion", "sensor_off", "baud_mismatch")
Values = dict[str, float | None]


class DeviceModel:
    """What a device says, as bytes: streamed every `interval_s`, or in answer to the host."""

    interval_s: float | None = None  # None: the device only answers

    def __init__(self, scenario: str, rng: random.Random) -> None:
        self.scenario = scenario
        self.rng = rng
        self.sent: list[Values] = []
        self._request = bytearray()
        # "steady": the simulated patient's pulse, SpO2 and weight fraction, drawn on first use
        # (not here, so the other scenarios' seeded values stay what they were).
        self._steady: tuple[int, int, float] | None = None

    def stream(self, now: float) -> bytes:
        return b""

    def answer(self, data: bytes, now: float) -> bytes:
        return b""

    def tick(self, now: float) -> bytes:
        """Unsolicited output that is not periodic (e.g. "measurement complete")."""
        return b""

    def _take_lines(self, data: bytes, terminator: bytes) -> list[bytes]:
        self._request += data
        lines: list[bytes] = []
        while (end := self._request.find(terminator)) >= 0:
            lines.append(bytes(self._request[:end]))
            del self._request[: end + len(terminator)]
        return lines

    def pulse(self) -> tuple[int, int]:
        if self.scenario == "steady":
            # Within the capture tolerances (±1 %, ±3 /min) of one another, as a patient at rest.
            hr, spo2, _ = self._baseline()
            return hr + self.rng.randint(-1, 1), spo2 + self.rng.randint(0, 1)
        return self.rng.randint(62, 84), self.rng.randint(95, 99)

    def weight_kg(self, low: float, high: float, digits: int) -> float:
        if self.scenario == "steady":
            return round(low + (high - low) * self._baseline()[2], digits)
        return round(self.rng.uniform(low, high), digits)

    def _baseline(self) -> tuple[int, int, float]:
        if self._steady is None:
            self._steady = (self.rng.randint(64, 82), self.rng.randint(95, 98), self.rng.random())
        return self._steady


class NoninModel(DeviceModel):
    def __init__(self, scenario: str, rng: random.Random, data_format: int) -> None:
        super().__init__(scenario, rng)
        self.data_format = data_format
        self.interval_s = 1.0 if data_format == 8 else 1 / 3  # 25 frames at 75/s, or 1/s

    def stream(self, now: float) -> bytes:
        hr: int | None
        spo2: int | None
        hr, spo2 = self.pulse()
        status = frames.NONIN_GREEN
        if self.scenario == "motion":
            status |= frames.NONIN_ARTIFACT
        if self.scenario == "sensor_off":
            hr, spo2, status = None, None, frames.NONIN_SENSOR_DISCONNECT
        self.sent.append(
            {
                "pulse_rate_bpm": None if hr is None else float(hr),
                "spo2_percent": None if spo2 is None else float(spo2),
            }
        )
        if self.data_format == 2:
            return frames.nonin2_packet(hr, spo2, status)
        if self.data_format == 7:
            return frames.nonin7_packet(hr, spo2, status)
        fmt8_status = {"motion": 0x04, "sensor_off": 0x40}.get(self.scenario, 0)
        return frames.nonin8_frame(hr, spo2, fmt8_status)

    def answer(self, data: bytes, now: float) -> bytes:
        # Format selection `02 70 02 02 <fmt> 03` is acknowledged (06).
        self._request += data
        reply = b""
        while (start := self._request.find(b"\x02\x70\x02\x02")) >= 0 and len(
            self._request
        ) >= start + 6:
            del self._request[: start + 6]
            reply += b"\x06"
        return reply


class MasimoModel(DeviceModel):
    interval_s = 1.0

    def __init__(self, scenario: str, rng: random.Random) -> None:
        super().__init__(scenario, rng)
        self.clock = datetime(2026, 1, 5, 9, 0, 0)

    def stream(self, now: float) -> bytes:
        self.clock += timedelta(seconds=1)
        hr: int | None
        spo2: int | None
        hr, spo2 = self.pulse()
        pi: float | None = round(self.rng.uniform(0.8, 6.0), 2)
        exception = 0x000800
        if self.scenario == "motion":
            exception |= 0x000010 | 0x000400  # interference, low signal IQ
        if self.scenario == "sensor_off":
            hr, spo2, pi, exception = None, None, None, 0x000020
        self.sent.append(
            {
                "pulse_rate_bpm": None if hr is None else float(hr),
                "spo2_percent": None if spo2 is None else float(spo2),
                "perfusion_index_percent": pi,
            }
        )
        return frames.masimo_line(self.clock, spo2, hr, pi, exception=exception)


class SmaModel(DeviceModel):
    prefix = ""  # the Detecto 758C's "W01," (its subclass)

    def answer(self, data: bytes, now: float) -> bytes:
        reply = b""
        for line in self._take_lines(data, b"\r"):
            command = line.lstrip(b"\n")
            if command not in (b"W", b"H"):
                reply += b"\n?\r"
                continue
            weight = self.weight_kg(60.0, 95.0, 1)
            motion = " "
            status = " "
            if self.scenario == "motion":
                motion = "M"
            if self.scenario == "sensor_off":  # nobody on the platform
                weight, status = 0.0, "Z"
            self.sent.append({"weight_kg": weight})
            reply += frames.sma_reply(weight, status=status, motion=motion, prefix=self.prefix)
        return reply


class Detecto758cModel(SmaModel):
    """The 758C indicator: SMA replies to `<LF>W<CR>` with `W01,` after the LF (p. 32)."""

    prefix = "W01,"


class HealthOMeterModel(DeviceModel):
    """A Pro Plus scale: a patient steps on every `interval_s`; the scale sends one reading
    (ESC protocol) per weighing, unasked; it answers the power-status request `<ESC>J<ESC>E`."""

    interval_s = 4.0

    def stream(self, now: float) -> bytes:
        if self.scenario == "sensor_off":  # nobody steps on: the scale sends nothing
            return b""
        weight = self.weight_kg(55.0, 110.0, 2)
        height = round(self.rng.uniform(150.0, 190.0), 1)
        bmi = round(weight / (height / 100) ** 2, 1)
        self.sent.append({"weight_kg": weight, "height_cm": height, "bmi_kg_m2": bmi})
        return healthometer.reading_packet(
            f"{weight:.2f}", "m", height=f"{height:.2f}", bmi=f"{bmi:.1f}"
        )

    def answer(self, data: bytes, now: float) -> bytes:
        reply = b""
        for command in self._take_lines(data, healthometer.END):
            reply += b"\x1bO\x1bE" if command.endswith(b"\x1bJ") else b""
        return reply


class MtSicsModel(DeviceModel):
    def answer(self, data: bytes, now: float) -> bytes:
        reply = b""
        for line in self._take_lines(data, b"\r\n"):
            if line == b"Z":
                reply += b"Z A\r\n"
                continue
            if line not in (b"S", b"SI"):
                reply += b"ES\r\n"
                continue
            weight = self.weight_kg(60.0, 95.0, 2)
            if self.scenario == "sensor_off":
                weight = 0.0
            self.sent.append({"weight_kg": weight})
            reply += frames.mt_sics_reply(weight, stable=self.scenario != "motion")
        return reply


class SuntechModel(DeviceModel):
    """Measures when told to start; deflates over `MEASURE_S`; then says K (complete)."""

    MEASURE_S = 1.5

    def __init__(self, scenario: str, rng: random.Random) -> None:
        super().__init__(scenario, rng)
        self.started_at: float | None = None
        self.result: bytes | None = None

    def _pressure(self, now: float) -> int:
        if self.started_at is None:
            return 0
        fraction = min(1.0, (now - self.started_at) / self.MEASURE_S)
        return int(160 - 130 * fraction)

    def answer(self, data: bytes, now: float) -> bytes:
        self._request += data
        reply = b""
        for command in (
            suntech.START_ADULT_BP,
            suntech.ABORT,
            suntech.GET_BP_DATA,
            suntech.GET_CUFF_PRESSURE,
        ):
            while (at := self._request.find(command)) >= 0:
                del self._request[: at + len(command)]
                reply += self._command(command, now)
        if len(self._request) > 64:  # garbage from the host: forget it, as the module would
            self._request.clear()
        return reply

    def _command(self, command: bytes, now: float) -> bytes:
        if command == suntech.START_ADULT_BP:
            if self.started_at is not None:
                return frames.suntech_status("B")
            self.started_at = now
            return frames.suntech_status("O")
        if command == suntech.ABORT:
            self.started_at = None
            return frames.suntech_status("A")
        if command == suntech.GET_CUFF_PRESSURE:
            return frames.suntech_cuff(self._pressure(now))
        if self.result is None:
            return frames.suntech_status("E")
        return self.result

    def tick(self, now: float) -> bytes:
        if self.started_at is None or now - self.started_at < self.MEASURE_S:
            return b""
        self.started_at = None
        systolic, diastolic = self.rng.randint(105, 135), self.rng.randint(65, 85)
        heart_rate = self.rng.randint(60, 85)
        mean = (systolic + 2 * diastolic) // 3
        error = {"motion": 2, "sensor_off": 87}.get(self.scenario, 0)
        if error:
            self.sent.append({"systolic_mmhg": None, "diastolic_mmhg": None})
            self.result = frames.suntech_bp(0, 0, 0, 0, error=error)
        else:
            self.sent.append(
                {
                    "systolic_mmhg": float(systolic),
                    "diastolic_mmhg": float(diastolic),
                    "mean_arterial_mmhg": float(mean),
                    "pulse_rate_bpm": float(heart_rate),
                }
            )
            self.result = frames.suntech_bp(systolic, diastolic, heart_rate, mean)
        return frames.suntech_status("K")


class DinamapModel(DeviceModel):
    """A DINAMAP monitor answering host commands (replies as the manual's definitions quoted in
    station.devices.codecs.serial.dinamap). NIBP: NC starts a determination that takes
    `MEASURE_S`, busy (0) meanwhile; NA's seconds-since-last restart at 0 when it ends. SpO2:
    OA reports the probe's SpO2 (no data with the probe off), RA the oximeter's rate. Temperature:
    the predictive probe measures once, `TEMP_S` long, from the second TC poll (taken out of its
    well), its counter character moving on at the start. `parameters` limits what it measures
    (the demo's monitor is its NIBP only: the oximeter and thermometer are separate devices)."""

    MEASURE_S = 1.5
    TEMP_S = 1.0

    def __init__(self, scenario: str, rng: random.Random) -> None:
        super().__init__(scenario, rng)
        self.parameters = {"nibp", "spo2", "temperature"}
        self.started_at: float | None = None
        self.ended_at: float | None = None  # None: the last NIBP was long ago
        self.result = (1, 118, 76, 90, 72)  # status, systolic, diastolic, mean, pulse
        self.sent_spo2: list[Values] = []
        self.sent_temperature: list[Values] = []
        self._oximeter: tuple[int, int] | None = None  # (pulse, SpO2) at the last RA
        self._temp_polls = 0
        self._temp_started_at: float | None = None
        self._temp_counter = ord(" ")
        self._temp_tenths_f = 0

    def answer(self, data: bytes, now: float) -> bytes:
        reply = b""
        for line in self._take_lines(data, b"\r"):
            reply += self._command(line + b"\r", now)
        if len(self._request) > 64:  # garbage from the host: forget it, as a monitor would
            self._request.clear()
        return reply

    def _finish(self, now: float) -> None:
        if self.started_at is None or now - self.started_at < self.MEASURE_S:
            return
        self.started_at, self.ended_at = None, now
        if self.scenario in ("motion", "sensor_off"):
            self.result = (3, 0, 0, 0, 0)
            self.sent.append({"systolic_mmhg": None, "diastolic_mmhg": None})
            return
        systolic, diastolic = self.rng.randint(105, 135), self.rng.randint(65, 85)
        mean, pulse = (systolic + 2 * diastolic) // 3, self.rng.randint(60, 85)
        self.result = (1, systolic, diastolic, mean, pulse)
        self.sent.append(
            {
                "systolic_mmhg": float(systolic),
                "diastolic_mmhg": float(diastolic),
                "mean_arterial_mmhg": float(mean),
                "pulse_rate_bpm": float(pulse),
            }
        )

    def _command(self, command: bytes, now: float) -> bytes:
        self._finish(now)
        if command == dinamap.START_DETERMINATION:
            if self.started_at is None and "nibp" in self.parameters:
                self.started_at = now
            return b""
        if command == dinamap.CANCEL_DETERMINATION:
            self.started_at = None
            return b""
        if command == dinamap.READ_NIBP_STATUS:
            status, systolic, diastolic, mean, _ = self.result
            if self.started_at is not None:
                status = 0  # busy
            seconds = 5400 if self.ended_at is None else min(5400, int(now - self.ended_at))
            return frames.dinamap_status(status, seconds, systolic, diastolic, mean)
        if command == dinamap.READ_HEART_RATE:
            return frames.dinamap_rate(self.result[4], source=3, letter="C")
        if command == dinamap.READ_PULSE_RATE:
            if "spo2" in self.parameters and self.scenario != "sensor_off":
                self._oximeter = self.pulse()
                return frames.dinamap_rate(self._oximeter[0], source=2)
            self._oximeter = None
            return frames.dinamap_rate(self.result[4], source=3)
        if command == dinamap.READ_SPO2:
            return self._spo2()
        if command == dinamap.READ_TEMPERATURE:
            return self._temperature(now)
        return b""

    def _spo2(self) -> bytes:
        if "spo2" not in self.parameters:
            return frames.dinamap_spo2(0, 0)  # standby
        if self.scenario == "sensor_off" or self._oximeter is None:
            return frames.dinamap_spo2(3, 0)  # no data: the probe is off
        pulse, spo2 = self._oximeter
        self.sent_spo2.append({"spo2_percent": float(spo2), "pulse_rate_bpm": float(pulse)})
        return frames.dinamap_spo2(1, spo2)

    def _temperature(self, now: float) -> bytes:
        self._temp_polls += 1
        if "temperature" in self.parameters and self._temp_polls == 2:
            self._temp_started_at = now
            self._temp_counter = self._temp_counter + 1 if self._temp_counter < ord("~") else 32
            self._temp_tenths_f = self.rng.randint(973, 995)  # 97.3-99.5 °F
        started = self._temp_started_at
        if started is None:
            return frames.dinamap_temperature(0, self._temp_counter, None, 0)
        if now - started < self.TEMP_S:
            return frames.dinamap_temperature(1, self._temp_counter, None, 0)
        if not self.sent_temperature:
            self.sent_temperature.append({"tenths_f": float(self._temp_tenths_f)})
        return frames.dinamap_temperature(
            0, self._temp_counter, int(now - started), self._temp_tenths_f
        )


class SureTempModel(DeviceModel):
    """A SureTemp Plus module answering the host's 941C polls. The probe comes out of its well
    at the first poll (after a pause in polling: the next patient): idle, ready, predicting
    while the probe warms, then FINAL with the patient's temperature until it goes back."""

    IDLE_S, READY_S, PREDICT_S, FINAL_S, END_S = 0.4, 0.2, 1.2, 1.2, 0.2
    NEW_CYCLE_AFTER_S = 3.0  # no poll for this long: the probe went back; start afresh
    AMBIENT_K = 295.15  # 22 °C: the probe's temperature in its well

    def __init__(self, scenario: str, rng: random.Random) -> None:
        super().__init__(scenario, rng)
        self._cycle_start: float | None = None
        self._last_poll = 0.0
        self._final_c = 0.0
        self._reported = False

    def answer(self, data: bytes, now: float) -> bytes:
        self._request += data
        reply = b""
        while True:
            start = self._request.find(suretemp.PREAMBLE)
            if start < 0:
                del self._request[: max(0, len(self._request) - 2)]  # keep a split preamble
                return reply
            del self._request[:start]
            if len(self._request) < suretemp.HEADER_LEN:
                return reply
            size = int.from_bytes(self._request[6:8], "little")
            if size > suretemp.MAX_DATA:
                del self._request[:1]
                continue
            length = suretemp.HEADER_LEN + size + 1
            if len(self._request) < length:
                return reply
            packet = bytes(self._request[:length])
            del self._request[:length]
            command = int.from_bytes(packet[3:5], "big")
            if sum(packet) & 0xFF or packet[5] != suretemp.TYPE_COMMAND:
                reply += frames.suretemp_nak(command)
            elif command == suretemp.CMD_TEMPERATURE_RECORD:
                reply += self._record(now)
            else:
                reply += suretemp.packet(command, suretemp.TYPE_RESPONSE)

    def _record(self, now: float) -> bytes:
        if self._cycle_start is None or now - self._last_poll > self.NEW_CYCLE_AFTER_S:
            self._cycle_start, self._reported = now, False
            self._final_c = round(self.rng.uniform(36.3, 37.5), 1)
        self._last_poll = now
        if self.scenario == "sensor_off":  # no probe plugged in: never ready
            return frames.suretemp_record(1, probe_k=self.AMBIENT_K, active=0, probe_type=3)
        elapsed = now - self._cycle_start
        samples = int(elapsed / 0.173)
        final_k = self._final_c + 273.15
        marks = [self.IDLE_S, self.READY_S, self.PREDICT_S, self.FINAL_S, self.END_S]
        idle_end, ready_end, predict_end, final_end, cycle = (
            sum(marks[: i + 1]) for i in range(len(marks))
        )
        elapsed %= cycle
        if elapsed >= final_end or elapsed < idle_end:
            if elapsed < idle_end and self._reported:
                self._reported = False  # a new measurement in the same session
                self._final_c = round(self.rng.uniform(36.3, 37.5), 1)
            state = 13 if elapsed >= final_end else 0
            return frames.suretemp_record(state, probe_k=self.AMBIENT_K, samples=samples, active=0)
        if elapsed < ready_end:
            return frames.suretemp_record(2, probe_k=self.AMBIENT_K, samples=samples)
        if elapsed < predict_end:
            fraction = (elapsed - ready_end) / self.PREDICT_S
            probe_k = self.AMBIENT_K + (final_k - 1.5 - self.AMBIENT_K) * fraction
            state = 3 if fraction < 0.3 else 4
            return frames.suretemp_record(state, probe_k=probe_k, samples=samples)
        if not self._reported:
            self._reported = True
            self.sent.append({"temperature_c": self._final_c})
        state = 7 if self.scenario == "motion" else 6  # "final position": placement doubted
        return frames.suretemp_record(
            state, final_k=final_k, probe_k=final_k - 0.8, samples=samples
        )


# Device models that differ from what their codec alone implies, by profile id.
PROFILE_MODELS: dict[str, type[DeviceModel]] = {"detecto-758c": Detecto758cModel}


def model_for(
    codec: str, scenario: str, rng: random.Random, profile_id: str | None = None
) -> DeviceModel:
    if profile_id in PROFILE_MODELS:
        return PROFILE_MODELS[profile_id](scenario, rng)
    if codec.startswith("serial:nonin-"):
        return NoninModel(scenario, rng, int(codec.rsplit("-", 1)[1]))
    models: dict[str, type[DeviceModel]] = {
        "serial:masimo-ascii": MasimoModel,
        "serial:sma": SmaModel,
        "serial:mt-sics": MtSicsModel,
        "serial:suntech-advantage": SuntechModel,
        "serial:suretemp-plus": SureTempModel,
        "serial:healthometer-esc": HealthOMeterModel,
        "serial:dinamap-host": DinamapModel,
    }
    if codec not in models:
        raise ValueError(f"no serial simulator for codec {codec!r}")
    return models[codec](scenario, rng)


class SerialSimulator:
    """A device on a pty, run by a background thread; `start()`, read `port`, `stop()`."""

    UNPLUG_EVERY_S = 2.0
    UNPLUGGED_S = 0.6

    def __init__(
        self,
        model: DeviceModel,
        *,
        baud: int,
        scenario: str = "normal",
        seed: int = 1,
        link_path: str | os.PathLike[str] | None = None,
        speed: float = 1.0,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
        self.model = model
        self.scenario = scenario
        self.baud = baud
        self.speed = speed
        self.link_path = None if link_path is None else Path(link_path)
        self.rng = random.Random(seed ^ 0x5EED)  # noqa: S311 -- simulated noise, not crypto
        self.received = bytearray()  # every byte the host sent, for tests
        self.plugged = threading.Event()
        self.plug_count = 0
        self._master = -1
        self._slave = -1
        self._slave_path = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def sent(self) -> list[Values]:
        return self.model.sent

    @property
    def port(self) -> str:
        return str(self.link_path) if self.link_path else self._slave_path

    # The pty ---------------------------------------------------------------------------------
    def _plug(self) -> None:
        self._master, self._slave = os.openpty()
        # Raw at once: before pyserial opens it the line discipline would echo and buffer lines.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._slave_path = os.ttyname(self._slave)
        if self.link_path:
            temp = self.link_path.with_name(self.link_path.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            temp.symlink_to(self._slave_path)
            temp.replace(self.link_path)
        self.plug_count += 1
        self.plugged.set()

    def _unplug(self) -> None:
        self.plugged.clear()
        if self.link_path:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    def _write(self, data: bytes) -> None:
        if not data or self._master < 0:
            return
        if self.scenario == "noise":
            data = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 6))) + data
        if self.scenario == "baud_mismatch":
            data = uart_receive(data, self.baud * 2, self.baud)  # the device is set to 2× baud
        # Nobody reading and the pty buffer full: the bytes fall on the floor, as on a cable.
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._master, data)

    # The loop --------------------------------------------------------------------------------
    def start(self) -> None:
        self._plug()
        self._thread = threading.Thread(target=self._run, name="serial-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._unplug()

    def __enter__(self) -> SerialSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        interval = None if self.model.interval_s is None else self.model.interval_s / self.speed
        next_emit = time.monotonic()
        plugged_at = time.monotonic()
        unplugged_until: float | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            device_now = now * self.speed
            if unplugged_until is not None:
                if now >= unplugged_until:
                    unplugged_until = None
                    self._plug()
                    plugged_at = now
                else:
                    self._stop.wait(0.01)
                    continue
            if self.scenario == "unplug" and now - plugged_at >= self.UNPLUG_EVERY_S:
                self._unplug()
                unplugged_until = now + self.UNPLUGGED_S
                continue
            if interval is not None and now >= next_emit:
                self._write(self.model.stream(device_now))
                next_emit = max(next_emit + interval, now - interval)
            self._write(self.model.tick(device_now))
            wait = 0.01 if interval is None else max(0.0, min(0.01, next_emit - now))
            try:
                readable, _, _ = select.select([self._master], [], [], wait)
            except (OSError, ValueError):
                continue
            if readable:
                try:
                    data = os.read(self._master, 4096)
                except (BlockingIOError, OSError):
                    continue
                self.received += data
                self._write(self.model.answer(data, device_now))


def simulator_for(
    profile: FirmwareProfile,
    *,
    scenario: str = "normal",
    seed: int = 1,
    link_path: str | os.PathLike[str] | None = None,
    speed: float = 1.0,
) -> SerialSimulator:
    """A simulator for a serial profile (its first codec decides the device model)."""
    if profile.transport != Transport.SERIAL or profile.serial is None:
        raise ValueError(
            f"{profile.id} is a Bluetooth LE profile; `station simulate` runs serial devices"
        )
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
    rng = random.Random(seed)  # noqa: S311 -- simulated values, not crypto
    model = model_for(profile.codecs[0], scenario, rng, profile.id)
    return SerialSimulator(
        model,
        baud=profile.serial.line.baud,
        scenario=scenario,
        seed=seed,
        link_path=link_path,
        speed=speed,
    )
