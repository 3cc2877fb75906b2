"""What every presenter shares: intents that turn a refusal into banner text, never an
exception into a Kivy callback."""

from __future__ import annotations

from collections.abc import Callable

from station.errors import StationError
from station.workflow import IllegalTransitionError, RefusedError


def _try(presenter: _Base, action: Callable[[], object]) -> bool:
    """Run an intent; a refusal or illegal step becomes the banner text, never an exception."""
    try:
        action()
    except RefusedError as exc:
        presenter.message = exc.message + "".join(f" — {d}" for d in exc.details)
        return False
    except IllegalTransitionError as exc:
        presenter.message = str(exc)
        return False
    except StationError as exc:
        # An adapter that could not do its part (the outbox, the practice's list): said on
        # the screen, never a dead kiosk.
        presenter.message = str(exc)
        return False
    presenter.message = ""
    return True


class _Base:
    message: str = ""


# ------------------------------------------------------------------------------------------
# MA rooming
# ------------------------------------------------------------------------------------------
