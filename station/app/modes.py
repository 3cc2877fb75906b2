"""The presenter of each station mode over its workflow, built from the settings and the
credentials (an exam station needs MA badges or PINs, a lobby kiosk its staff PIN)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from station.app.credentials import Credentials
from station.app.sync_port import SyncLobby, SyncLookup, SyncOutbox
from station.checkin import Checkin
from station.config import Settings
from station.devices.manager import DeviceManager
from station.errors import ConfigError
from station.lockout import PinLockout
from station.models import Mode
from station.questionnaires import QUESTIONNAIRE_DIR, Library, QuestionnaireError, load_library
from station.rooming import Rooming
from station.ui.ports import MemorySpeaker, Speaker
from station.ui.presenters import BiomedPresenter, ExamPresenter, LobbyPresenter


def exam_presenter(
    settings: Settings,
    credentials: Credentials,
    *,
    clock: Callable[[], datetime],
    reading_mode: Mode,
    manager: DeviceManager,
    sync: SyncOutbox,
    lookup: SyncLookup,
    biomed: BiomedPresenter | None,
    lockout: PinLockout | None = None,
) -> ExamPresenter:
    """The MA's rooming over the bound devices: the links only hand over (the manager's
    consumer posts each reading to the UI thread), and the rooming's guard judges them there —
    the one path, as in every mode and test."""
    ma = credentials.ma_matcher()
    if ma is None:
        raise ConfigError(
            "credentials",
            ["[[ma_hash]]: none: an exam station needs at least one MA badge or PIN to sign in "
             "with (`station credentials add-ma ID`)"],
        )
    rooming = Rooming(
        clock=clock,
        credentials=ma,
        lockout=lockout,
        display=settings.display,
        idle_signout_s=settings.session.ma_idle_signout_s,
        mode=reading_mode,
        bound_devices=manager.bound_ids,
        guard_policy=settings.guard,
        device_ranges=manager.measuring_ranges(),
        device_zone=ZoneInfo(settings.records.timezone),
    )
    return ExamPresenter(
        rooming, sync, sync, biomed=biomed, lookup=lookup, language=settings.display.language
    )


def lobby_presenter(
    settings: Settings,
    credentials: Credentials,
    *,
    clock: Callable[[], datetime],
    lobby: SyncLobby,
    speaker: Speaker | None,
    biomed: BiomedPresenter | None,
    lockout: PinLockout | None = None,
) -> LobbyPresenter:
    """The patient's self check-in; staff leave kiosk mode with the staff PIN."""
    staff = credentials.staff_matcher()
    if staff is None:
        raise ConfigError(
            "credentials",
            ["staff_pin_hash: missing: a lobby kiosk needs a staff PIN to leave kiosk mode "
             "(`station credentials set-pin staff`)"],
        )
    checkin = Checkin(
        clock=clock,
        staff_pin=staff,
        lockout=lockout,
        idle_warning_s=settings.session.lobby_idle_warning_s,
        idle_wipe_s=settings.session.lobby_idle_wipe_s,
        default_language=settings.display.language,
        questionnaires=intake_library(settings),
        ask_insurance=settings.intake.ask_insurance,
    )
    return LobbyPresenter(checkin, lobby, speaker or MemorySpeaker(), biomed=biomed)


def intake_library(settings: Settings) -> Library | None:
    """The questionnaires `[intake]` turns on (the bundled folder unless the practice names its
    own); a folder the station cannot use stops the start with what is wrong in it."""
    intake = settings.intake
    if not intake.questionnaires:
        return None
    folder = intake.questionnaire_dir or QUESTIONNAIRE_DIR
    try:
        return load_library(folder)
    except QuestionnaireError as exc:
        raise ConfigError("intake.questionnaire_dir", [f"{folder}: {exc}"]) from exc
