"""Settings → Instruct: every field of an instruct preset and its context template.

Pick a shipped or saved preset, change any field, and save it under a name; the chat then
uses it (Chat template in Settings → Prompt). SillyTavern's instruct and context JSON files
import and export as they are. Saved presets live in the settings, each as its SillyTavern
JSON text.
"""

from __future__ import annotations

from dataclasses import fields

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.appdata.settings import Settings
from app.core.prompt.instruct import (
    InstructPreset,
    Names,
    available_context,
    available_instruct,
    preset_name,
    preset_text,
    read_preset_file,
    write_preset_file,
)
from app.core.prompt.story_string import ContextTemplate

_INSTRUCT_FIELDS = [f for f in fields(InstructPreset) if f.name != "name"]
_CONTEXT_FIELDS = [f for f in fields(ContextTemplate) if f.name != "name"]


class InstructPage(QWidget):
    saved = Signal(str)  # the name of the preset just saved (and chosen)
    imported = Signal(str)  # a preset or context template read from a file and kept

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.presets = QComboBox(accessibleName=self.tr("Instruct preset"))
        self.contexts = QComboBox(accessibleName=self.tr("Context template"))
        self.editors: dict[str, QWidget] = {}
        self.message = QLabel(wordWrap=True)
        form = QFormLayout()
        form.addRow(self.tr("Instruct preset"), self.presets)
        for f in _INSTRUCT_FIELDS:
            form.addRow(f.name.replace("_", " ").capitalize(), self._editor(f.name, f.default))
        form.addRow(self.tr("Context template"), self.contexts)
        for f in _CONTEXT_FIELDS:
            form.addRow(
                f.name.replace("_", " ").capitalize(), self._editor("ctx:" + f.name, f.default)
            )
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(self._buttons())
        lay.addWidget(self.message)
        self._fill_lists()
        self.presets.currentTextChanged.connect(self.show_preset)
        self.contexts.currentTextChanged.connect(self.show_context)
        current = settings.template if settings.template in self._instruct() else "ChatML"
        self.presets.setCurrentText(current)
        self.show_preset(current)

    # -- building ----------------------------------------------------------------------------
    def _editor(self, key: str, default) -> QWidget:
        label = key.removeprefix("ctx:").replace("_", " ")
        if key == "names_behavior":
            w = QComboBox()
            w.addItems([n.value for n in Names])
        elif isinstance(default, bool):
            w = QCheckBox()
        elif key == "ctx:story_string":
            w = QPlainTextEdit()
            w.setMaximumHeight(120)
        else:  # sequences may hold line breaks: shown as \n
            w = QLineEdit()
        w.setAccessibleName(label)
        self.editors[key] = w
        return w

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        for text, slot in (
            (self.tr("Save as…"), self._ask_save),
            (self.tr("Import SillyTavern JSON…"), self._ask_import),
            (self.tr("Export instruct…"), lambda: self._ask_export(False)),
            (self.tr("Export context…"), lambda: self._ask_export(True)),
        ):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
        return row

    def _instruct(self) -> dict[str, InstructPreset]:
        return available_instruct(self.settings.instruct_presets)

    def _context(self) -> dict[str, ContextTemplate]:
        return available_context(self.settings.context_presets)

    def _fill_lists(self) -> None:
        for box, names in ((self.presets, self._instruct()), (self.contexts, self._context())):
            keep = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(list(names))
            if keep:
                box.setCurrentText(keep)
            box.blockSignals(False)

    # -- showing -----------------------------------------------------------------------------
    def show_preset(self, name: str) -> None:
        preset = self._instruct().get(name)
        if preset is None:
            return
        for f in _INSTRUCT_FIELDS:
            _set(self.editors[f.name], getattr(preset, f.name))
        contexts = self._context()
        chosen = self.settings.context_template if name == self.settings.template else ""
        self.contexts.setCurrentText(
            chosen if chosen in contexts else name if name in contexts else "Default"
        )
        self.show_context(self.contexts.currentText())

    def show_context(self, name: str) -> None:
        ctx = self._context().get(name)
        if ctx is not None:
            for f in _CONTEXT_FIELDS:
                _set(self.editors["ctx:" + f.name], getattr(ctx, f.name))

    # -- reading -----------------------------------------------------------------------------
    def current_instruct(self, name: str) -> InstructPreset:
        values = {f.name: _get(self.editors[f.name]) for f in _INSTRUCT_FIELDS}
        return InstructPreset.from_st({**values, "name": name})

    def current_context(self, name: str) -> ContextTemplate:
        values = {f.name: _get(self.editors["ctx:" + f.name]) for f in _CONTEXT_FIELDS}
        return ContextTemplate.from_st({**values, "name": name})

    # -- actions -----------------------------------------------------------------------------
    def save_as(self, name: str) -> bool:
        """Save both under `name` and choose them; False (with the reason shown) if a field
        is wrong, e.g. a story string that does not parse. Nothing is lost: the fields stay."""
        name = name.strip()
        try:
            preset, ctx = self.current_instruct(name), self.current_context(name)
        except ValueError as exc:
            self.message.setText(self.tr("Not saved: {0}").format(exc))
            return False
        self._keep(preset, ctx)
        self.settings.template, self.settings.context_template = name, name
        self._fill_lists()
        self.presets.setCurrentText(name)
        self.message.setText(self.tr("Saved “{0}”; chats now use it.").format(name))
        self.saved.emit(name)
        return True

    def _keep(self, preset: InstructPreset | None, ctx: ContextTemplate | None) -> None:
        for rows, item in (
            (self.settings.instruct_presets, preset),
            (self.settings.context_presets, ctx),
        ):
            if item is not None:
                rows[:] = [r for r in rows if preset_name(r) != item.name]
                rows.append(preset_text(item))

    def import_file(self, path: str) -> bool:
        try:
            item = read_preset_file(path)
        except ValueError as exc:
            self.message.setText(self.tr("Not imported: {0}").format(exc))
            return False
        is_context = isinstance(item, ContextTemplate)
        self._keep(None if is_context else item, item if is_context else None)
        self._fill_lists()
        (self.contexts if is_context else self.presets).setCurrentText(item.name)
        self.message.setText(self.tr("Imported “{0}”.").format(item.name))
        self.imported.emit(item.name)
        return True

    def export_file(self, path: str, context: bool = False) -> None:
        name = (self.contexts if context else self.presets).currentText()
        item = self.current_context(name) if context else self.current_instruct(name)
        write_preset_file(item, path)
        self.message.setText(self.tr("Exported “{0}” to {1}.").format(name, path))

    def _ask_save(self) -> None:
        name, ok = QInputDialog.getText(
            self, self.tr("Save preset"), self.tr("Name:"), text=self.presets.currentText()
        )
        if ok and name.strip():
            self.save_as(name)

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Import"), "", "JSON (*.json)")
        if path:
            self.import_file(path)

    def _ask_export(self, context: bool) -> None:
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Export"), "", "JSON (*.json)")
        if path:
            try:
                self.export_file(path, context)
            except (OSError, ValueError) as exc:
                self.message.setText(self.tr("Not exported: {0}").format(exc))


def _set(w: QWidget, value) -> None:
    if isinstance(w, QCheckBox):
        w.setChecked(bool(value))
    elif isinstance(w, QComboBox):
        w.setCurrentText(value.value if isinstance(value, Names) else str(value))
    elif isinstance(w, QPlainTextEdit):
        w.setPlainText(str(value))
    else:
        w.setText(str(value).replace("\\", "\\\\").replace("\n", "\\n"))


def _get(w: QWidget):
    if isinstance(w, QCheckBox):
        return w.isChecked()
    if isinstance(w, QComboBox):
        return w.currentText()
    if isinstance(w, QPlainTextEdit):
        return w.toPlainText()
    return _unescape(w.text())


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "n\\":
            out.append("\n" if text[i + 1] == "n" else "\\")
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def attach_instruct_page(dialog, settings: Settings, save) -> InstructPage:
    """Add the page to a SettingsDialog, keep its Chat template list in step with the saved
    presets, and store the settings (`save()`) when a preset is saved or imported."""
    page = InstructPage(settings)
    dialog.add_page(dialog.tr("Instruct"), page)
    box = dialog.editors["template"][1]

    def offer(names) -> None:
        for name in names:
            if box.findText(name) < 0:
                box.addItem(name)

    def on_saved(name: str) -> None:
        offer([name])
        box.setCurrentText(name)  # else the dialog's Apply would put the old choice back
        save()

    offer(available_instruct(settings.instruct_presets))
    page.saved.connect(on_saved)
    page.imported.connect(
        lambda _name: (offer(available_instruct(settings.instruct_presets)), save())
    )
    return page
