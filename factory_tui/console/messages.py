"""What the console's tick thread and view workers post to the app, from their threads to the UI
thread."""

from __future__ import annotations

from textual.message import Message

from factory_tui.console.pipeline import TickResult
from factory_tui.view_models import ViewData


class TickDone(Message):
    """A tick's result, posted by the tick worker."""

    def __init__(self, sequence: int, result: TickResult, compute_s: float) -> None:
        self.sequence = sequence
        self.result = result
        self.compute_s = compute_s
        super().__init__()


class ViewDone(Message):
    """A view's data computed while paused, for the Snapshot on screen."""

    def __init__(self, view: ViewData) -> None:
        self.view = view
        super().__init__()


class TickFailed(Message):
    """The tick could not read the database; the figures on screen are going stale."""

    def __init__(self, sequence: int, error: str) -> None:
        self.sequence = sequence
        self.error = error
        super().__init__()


class TickCrashed(Message):
    """The tick raised something other than a StoreError (a bug): the app ends with it."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        super().__init__()


class OwnerChanged(Message):
    """A viewer found the database without an owner (`unowned`), or with one again."""

    def __init__(self, unowned: bool) -> None:
        self.unowned = unowned
        super().__init__()
