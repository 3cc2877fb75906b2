"""The small pieces the composition root wires with: the station clock, the bound devices,
the schedule filtered to this room, and what becomes patient data for the log filter."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

from station.config import BoundDevice, Settings
from station.devices.bindings import BindingStore
from station.devices.manager import DeviceState
from station.logs import Redacted, Redactor
from station.rooming_data import ScheduledPatient
from station.sync.contract import Appointment as ContractAppointment
from station.sync.contract import (
    SchedulePayload,
)

log = logging.getLogger(__name__)


# Runs a callable on the UI thread: the one thread that touches presenters and workflows.
Post = Callable[[Callable[[], object]], None]
# Device states in which a bound device counts as present (its retained status "online").
ONLINE_STATES = frozenset({DeviceState.CONNECTED, DeviceState.MEASURING, DeviceState.SLEEPING})


def local_now() -> datetime:
    # Aware, in the station's zone: device clocks send local wall time without a zone, and
    # the guard reads those in the zone of this clock.
    return datetime.now(UTC).astimezone()


def bound_devices(settings: Settings) -> tuple[BoundDevice, ...]:
    """The settings' [[devices]] plus what biomed bound (bindings.json); an id in both is the
    settings' (the file an installer wrote wins over a tap on the biomed screen)."""
    devices = {d.id: d for d in BindingStore(settings.storage.state_dir).list()}
    for device in settings.devices:
        if device.id in devices and devices[device.id] != device:
            log.warning(
                "device %s is bound in both station.toml and bindings.json; using station.toml",
                device.id,
            )
        devices[device.id] = device
    return tuple(devices[k] for k in sorted(devices))


def filter_schedule(
    patients: tuple[ScheduledPatient, ...], room: str, provider: str
) -> tuple[ScheduledPatient, ...]:
    """This room's (and provider's) list when the settings name them; unassigned ones stay."""
    return tuple(
        p
        for p in patients
        if (not room or not p.room or p.room == room)
        and (not provider or not p.provider or p.provider == provider)
    )


SCHEDULE_GROUP = "schedule"  # the redactor's group for today's list


def remember_schedule(redactor: Redactor, payload: SchedulePayload) -> None:
    """Today's identifiers are patient data: no log line may carry them from now on. The new
    list replaces the one before last (the previous list stays one more turn)."""
    redactor.replace(
        SCHEDULE_GROUP,
        (entry for a in payload.appointments for entry in appointment_values(a)),
        keep_previous=True,
    )


def remember_appointment(redactor: Redactor, appointment: ContractAppointment) -> None:
    """One appointment (a barcode lookup's answer), kept among the recent values."""
    for kind, values in appointment_values(appointment):
        redactor.remember(kind, *values)


def appointment_values(
    appointment: ContractAppointment,
) -> list[tuple[Redacted, tuple[str | date | None, ...]]]:
    patient = appointment.patient
    return [
        (
            Redacted.NAME,
            (
                patient.family_name,
                patient.given_name,
                f"{patient.family_name}, {patient.given_name}",
            ),
        ),
        (Redacted.DOB, (patient.birth_date,)),
        (Redacted.MRN, (patient.mrn,)),
        (Redacted.TEXT, (appointment.reason or None,)),
    ]
