"""Above the Model settings: where "GPU layers" would go with the llama.cpp this app carries.

A GPU layers number means nothing on a build that runs on the CPU only, or whose GPU backend
found no GPU; LM Studio and KoboldCpp name the device next to the slider. The answer comes
from `parlor devices` in a child process (about 1.5 s, cached a minute by the core), so the
dialog opens at once and the line fills in.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QWidget

from app.core.appdata.llama_runtime import Runtime, gpu_layers_note, probe_runtime
from app.gui.models.jobs import JobSlot


class RuntimeNote(QLabel):
    answered = Signal()  # the text changed: the page around it must be laid out again

    def __init__(
        self, probe: Callable[[], Runtime] = probe_runtime, parent: QWidget | None = None
    ) -> None:
        super().__init__(self.tr("Asking llama.cpp what it can run on…"), parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)  # device names come from drivers
        self.setAccessibleName(self.tr("What GPU layers run on"))
        self.slot = slot = JobSlot()
        self.destroyed.connect(lambda *_args: slot.drop())  # closed before the answer
        slot.start(
            lambda _report, _cancel: probe(),
            on_success=lambda runtime: self._say(gpu_layers_note(runtime)),
            on_failure=lambda message: self._say(
                self.tr("llama.cpp could not be asked what it runs on ({0})").format(message)
            ),
            name="runtime-note",
        )

    def _say(self, text: str) -> None:
        self.setText(text)
        self.answered.emit()
