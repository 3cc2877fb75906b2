"""One intake question per screen: the instrument's instruction and question in the patient's
language, its answers as big buttons, progress ("Question 3 of 9") and Back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from station.ui.screens.base import BaseScreen, button


class LobbyQuestionScreen(BaseScreen):
    def render(self, presenter: Any) -> None:
        view = presenter.view()
        if presenter.screen != self.name or not self.changed((view.text, view.choices)):
            return
        ids = self.ids
        ids.progress.text = view.text["progress"]
        ids.stem.text = view.text["stem"]
        ids.question.text = view.text["title"]
        ids.back.text = view.text["back"]
        ids.scroll.scroll_y = 1  # a new question is read from its start
        ids.choices.clear_widgets()
        for code, label in view.choices:
            # Every answer the same height, filling the column: big targets for older hands.
            ids.choices.add_widget(button(label, self._answer(code), size_hint_y=1))

    def _answer(self, code: str) -> Callable[[], None]:
        return lambda: self.intent("answer", code)

    def on_leave(self, *args: Any) -> None:
        # Nothing of the last patient's question stays in a widget once the screen is left.
        self.ids.choices.clear_widgets()
        for key in ("progress", "stem", "question"):
            self.ids[key].text = ""
        self._last = None
