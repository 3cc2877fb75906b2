"""What every presenter shares: intents that turn a refusal into banner text, never an
exception into a Kivy callback."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from station.errors import StationError
from station.locale import N_, Translate, translate_message, translator
from station.workflow import IllegalTransitionError, RefusedError


def _try(presenter: _Base, action: Callable[[], object]) -> bool:
    """Run an intent; a refusal or illegal step becomes the banner text, never an exception."""
    said = presenter.said
    try:
        action()
    except RefusedError as exc:
        presenter.say(said(exc.message + "".join(f" — {d}" for d in exc.details)), Tone.ERROR)
        return False
    except IllegalTransitionError as exc:
        presenter.say(said(str(exc)), Tone.ERROR)
        return False
    except StationError as exc:
        # An adapter that could not do its part (the outbox, the practice's list): said on
        # the screen, never a dead kiosk.
        presenter.say(said(str(exc)), Tone.ERROR)
        return False
    presenter.say("")
    return True


class Tone(StrEnum):
    """What a message means, so the screen colours it by meaning (never red for success)."""

    ERROR = "error"  # refused: nothing changed
    WARNING = "warning"  # done, but look at this
    INFO = "info"  # in progress, or what to do next
    SUCCESS = "success"  # done


class _Base:
    message: str = ""
    tone: Tone = Tone.INFO
    # The station's language (`[display] language`, station.locale LANGUAGES): what `_`
    # translates into. The lobby translates into the patient's choice instead.
    language: str = "en"
    _tr: Translate | None = None

    def use_language(self, language: str) -> None:
        """The station's language for staff screens (an unknown code raises KeyError)."""
        self._tr = translator(language)
        self.language = language

    def _(self, text: str) -> str:
        """A marked English string in the station's language."""
        if self._tr is None:
            self._tr = translator(self.language)
        return self._tr(text)

    def said(self, text: str) -> str:
        """A message from the core (refusal, flag, reason) in the station's language."""
        return translate_message(self._, text)

    def say(self, text: str, tone: Tone = Tone.INFO) -> None:
        """The message overlay's text and meaning ("" hides it)."""
        self.message = text
        self.tone = tone

    def dismiss_message(self) -> None:
        """A tap on the message overlay."""
        self.say("")

    def fault(self) -> None:
        """An unexpected error in an intent or a redraw (station.ui.faults): said on screen;
        what the workflow holds is left as it is."""
        self.say(self._(FAULT_TEXT), Tone.ERROR)


FAULT_TEXT = N_(
    "Something went wrong: that step did not complete. Check the screen and try again; "
    "if it happens again, call biomed."
)


# ------------------------------------------------------------------------------------------
# MA rooming
# ------------------------------------------------------------------------------------------
