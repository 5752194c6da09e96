"""This computer's memory and devices, read off the GUI thread for the dialogs that show it.

`read_machine` asks every GPU source and starts a llama.cpp device probe in a child
process (about 1.5 s, cached for a minute by the core), so the download dialog and the
first-run guide open at once with the RAM alone (`provisional_machine`, one psutil call)
and fill in the rest when `MachineProbe.ready` arrives.
"""

from __future__ import annotations

from collections.abc import Callable

import psutil
from PySide6.QtCore import QObject, Signal

from app.core.appdata.machine import Machine, read_machine
from app.gui.models.jobs import JobSlot


def provisional_machine() -> Machine:
    """RAM only, read at once; no GPU until the probe says so."""
    try:
        memory = psutil.virtual_memory()
        return Machine(int(memory.total), int(memory.available))
    except Exception:  # noqa: BLE001 - the probe will say what went wrong
        return Machine(0, None)


class MachineProbe(QObject):
    """One background `read_machine`; `ready(machine)` comes on the GUI thread, once."""

    ready = Signal(object)

    def __init__(
        self, probe: Callable[[], Machine] = read_machine, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._probe = probe
        self.slot = slot = JobSlot()
        # A dialog closed with its window mid-probe: the late answer has nowhere to go.
        self.destroyed.connect(lambda *_args: slot.drop())

    def start(self) -> MachineProbe:
        self.slot.start(
            lambda _report, _cancel: self._probe(),
            on_success=self.ready.emit,
            on_failure=lambda message: self.ready.emit(
                Machine(0, None, problems=(f"probe: {message}",))
            ),
            name="machine-probe",
        )
        return self

    @property
    def busy(self) -> bool:
        return self.slot.busy

    def shutdown(self) -> None:
        self.slot.shutdown(timeout=10.0)  # the llama.cpp probe has its own time limit
