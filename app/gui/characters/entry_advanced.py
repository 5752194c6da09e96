"""The world-info fields of a lorebook entry that SillyTavern keeps under `extensions`:
secondary-key logic, scan depth, whole words, probability, timed effects, inclusion group,
recursion, and the character filter. Each is written back only when its widget changed, like
the rest of the form."""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from app.core.prompt.worldinfo.entry import ST_FILTER, WI_EXTRA, filter_of

LOGIC = (("And any", 0), ("Not all", 1), ("Not any", 2), ("And all", 3))
TRI = (("Global setting", None), ("Yes", True), ("No", False))


def _tri(parent: QWidget, name: str) -> QComboBox:
    box = QComboBox(parent)
    box.setAccessibleName(name)
    for label, value in TRI:
        box.addItem(parent.tr(label), value)
    return box


def _spin(name: str, low: int, high: int, tip: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setAccessibleName(name)
    spin.setToolTip(tip)
    spin.setMaximumWidth(110)
    return spin


class AdvancedFields(QWidget):
    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        tr = self.tr
        self.logic = QComboBox()
        self.logic.setAccessibleName(tr("Secondary key logic"))
        for label, value in LOGIC:
            self.logic.addItem(tr(label), value)
        self.scan_depth = _spin(tr("Scan depth"), -1, 1000, tr("-1: the global setting"))
        self.scan_depth.setSpecialValueText(tr("Global"))
        self.whole_words = _tri(self, tr("Whole words"))
        self.probability = _spin(tr("Probability"), 0, 100, tr("Chance to fire, in percent"))
        self.use_probability = QCheckBox(tr("Use probability"))
        self.sticky = _spin(tr("Sticky"), 0, 10_000, tr("Stays in for this many messages"))
        self.cooldown = _spin(tr("Cooldown"), 0, 10_000, tr("Then stays out this many"))
        self.delay = _spin(
            tr("Delay"), 0, 10_000, tr("Fires only once the chat has this many messages")
        )
        self.group = QLineEdit()
        self.group.setAccessibleName(tr("Inclusion group"))
        self.group.setPlaceholderText(tr("Groups, separated by commas: one entry per group"))
        self.group_weight = _spin(tr("Group weight"), 0, 100_000)
        self.group_override = QCheckBox(tr("Wins its group"))
        self.group_scoring = _tri(self, tr("Group scoring"))
        self.exclude_recursion = QCheckBox(tr("Not fired by other entries"))
        self.prevent_recursion = QCheckBox(tr("Does not fire other entries"))
        self.delay_recursion = _spin(
            tr("Delay until recursion"),
            0,
            10,
            tr("0: off; fires only in recursion, from this level"),
        )
        self.filter_names = QLineEdit()
        self.filter_names.setAccessibleName(tr("Characters"))
        self.filter_names.setPlaceholderText(tr("Character names, separated by commas"))
        self.filter_tags = QLineEdit()
        self.filter_tags.setAccessibleName(tr("Character tags"))
        self.filter_tags.setPlaceholderText(tr("Tags of the characters, separated by commas"))
        self.filter_exclude = QCheckBox(tr("For every character but these (names and tags)"))
        self.filter_exclude.setToolTip(
            tr("Off: only for these characters or tags. On: for every other character.")
        )
        self._filter_key = WI_EXTRA  # where the entry keeps its filter (see `_store_filter`)
        self._shown: dict[str, Any] = {}
        self._build()

    def _build(self) -> None:
        tr = self.tr
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow(tr("Secondary key logic"), self.logic)
        form.addRow(tr("Scan depth"), self.scan_depth)
        form.addRow(tr("Whole words"), self.whole_words)
        form.addRow(tr("Probability"), _row(self.probability, self.use_probability))
        form.addRow(
            tr("Sticky"),
            _row(
                self.sticky, QLabel(tr("Cooldown")), self.cooldown, QLabel(tr("Delay")), self.delay
            ),
        )
        form.addRow(tr("Inclusion group"), self.group)
        form.addRow(
            tr("Group weight"),
            _row(self.group_weight, self.group_override, QLabel(tr("Scoring")), self.group_scoring),
        )
        form.addRow(tr("Recursion"), _row(self.exclude_recursion, self.prevent_recursion))
        form.addRow(tr("Delay until recursion"), self.delay_recursion)
        form.addRow(tr("Only for characters"), self.filter_names)
        form.addRow(tr("Only for tags"), self.filter_tags)
        form.addRow("", self.filter_exclude)
        for spin in (
            self.scan_depth,
            self.probability,
            self.sticky,
            self.cooldown,
            self.delay,
            self.group_weight,
            self.delay_recursion,
        ):
            spin.valueChanged.connect(self.edited)
        for box in (self.logic, self.whole_words, self.group_scoring):
            box.currentIndexChanged.connect(self.edited)
        for check in (
            self.use_probability,
            self.group_override,
            self.exclude_recursion,
            self.prevent_recursion,
            self.filter_exclude,
        ):
            check.toggled.connect(self.edited)
        for line in (self.group, self.filter_names, self.filter_tags):
            line.textEdited.connect(self.edited)

    def load(self, ext: dict) -> None:
        self.blockSignals(True)
        _choose(self.logic, ext.get("selectiveLogic", 0))
        depth = ext.get("scan_depth")
        self.scan_depth.setValue(int(depth) if _is_int(depth) else -1)
        _choose(self.whole_words, ext.get("match_whole_words"))
        self.probability.setValue(_int(ext.get("probability"), 100))
        self.use_probability.setChecked(ext.get("useProbability", True) is not False)
        for spin, key in (
            (self.sticky, "sticky"),
            (self.cooldown, "cooldown"),
            (self.delay, "delay"),
        ):
            spin.setValue(_int(ext.get(key), 0))
        self.group.setText(str(ext.get("group") or ""))
        self.group_weight.setValue(_int(ext.get("group_weight"), 100))
        self.group_override.setChecked(ext.get("group_override") is True)
        _choose(self.group_scoring, ext.get("use_group_scoring"))
        self.exclude_recursion.setChecked(ext.get("exclude_recursion") is True)
        self.prevent_recursion.setChecked(ext.get("prevent_recursion") is True)
        level = ext.get("delay_until_recursion")
        self.delay_recursion.setValue(1 if level is True else _int(level, 0))
        self._filter_key = ST_FILTER if isinstance(ext.get(ST_FILTER), dict) else WI_EXTRA
        raw = filter_of(ext) or {}
        self.filter_names.setText(", ".join(_strings(raw.get("names"))))
        self.filter_tags.setText(", ".join(_strings(raw.get("tags"))))
        self.filter_exclude.setChecked(raw.get("isExclude") is True)
        self.blockSignals(False)
        self._shown = self.values()

    def values(self) -> dict[str, Any]:
        """The fields as SillyTavern's `extensions` keys and values."""
        depth = self.scan_depth.value()
        level = self.delay_recursion.value()
        return {
            "selectiveLogic": self.logic.currentData(),
            "scan_depth": depth if depth >= 0 else None,
            "match_whole_words": self.whole_words.currentData(),
            "probability": self.probability.value(),
            "useProbability": self.use_probability.isChecked(),
            "sticky": self.sticky.value(),
            "cooldown": self.cooldown.value(),
            "delay": self.delay.value(),
            "group": self.group.text().strip(),
            "group_weight": self.group_weight.value(),
            "group_override": self.group_override.isChecked(),
            "use_group_scoring": self.group_scoring.currentData(),
            "exclude_recursion": self.exclude_recursion.isChecked(),
            "prevent_recursion": self.prevent_recursion.isChecked(),
            "delay_until_recursion": level if level > 1 else bool(level),
            "characterFilter": {
                "isExclude": self.filter_exclude.isChecked(),
                "names": _split(self.filter_names.text()),
                "tags": _split(self.filter_tags.text()),
            },
        }

    def store(self, ext: dict) -> bool:
        """Write the changed fields into `ext`; True if anything changed."""
        changed = False
        for key, value in self.values().items():
            if value != self._shown.get(key):
                if key == "characterFilter":
                    self._store_filter(ext, value)
                else:
                    ext[key] = value
                changed = True
        self._shown = self.values()
        return changed

    def _store_filter(self, ext: dict, value: dict[str, Any]) -> None:
        """Where the entry had its filter (a card's book written by SillyTavern keeps it as
        `extensions.character_filter`), else as SillyTavern world info's `characterFilter`;
        an empty filter is removed, as SillyTavern's editor does."""
        empty = not value["names"] and not value["tags"] and not value["isExclude"]
        if self._filter_key == ST_FILTER:
            if empty:
                ext.pop(ST_FILTER, None)
            else:
                ext[ST_FILTER] = value
            return
        extra = ext.get(WI_EXTRA)
        if not isinstance(extra, dict):
            extra = ext[WI_EXTRA] = {}
        if empty:
            extra.pop("characterFilter", None)
            if not extra:
                del ext[WI_EXTRA]
        else:
            extra["characterFilter"] = value


def toggle_regex(keys: list[str], on: bool) -> list[str]:
    """Keys written as SillyTavern regexes (`/key/`, a `/` inside escaped) or back: the
    text of a plain key is matched literally, so it is escaped on the way in."""
    if on:
        return [
            k if _REGEX_KEY.fullmatch(k) else "/" + re.escape(k).replace("/", "\\/") + "/"
            for k in keys
        ]
    out = []
    for key in keys:
        match = _REGEX_KEY.fullmatch(key)
        out.append(_unescape(match.group(1)) if match else key)
    return out


_REGEX_KEY = re.compile(r"/([\s\S]+?)/([gimsuy]*)")  # SillyTavern's parseRegexFromString


def _unescape(pattern: str) -> str:
    return re.sub(r"\\(.)", r"\1", pattern)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value if isinstance(v, (str, int))] if isinstance(value, list) else []


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget)
    row.addStretch(1)
    return row


def _choose(box: QComboBox, value: Any) -> None:
    for i in range(box.count()):
        data = box.itemData(i)
        if data is value or (type(data) is type(value) and data == value):
            box.setCurrentIndex(i)
            return
    box.setCurrentIndex(0)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(value: Any, default: int) -> int:
    return int(value) if _is_int(value) else default
