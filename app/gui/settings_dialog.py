"""Settings, in sections; every setting has a default and a one-line explanation.

The rows are data (SECTIONS), so adding a setting is one line here and one field in
`app.core.appdata.settings.Settings`, where its default lives.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.appdata.settings import Settings
from app.core.chat.display import DEFAULT_COLORS
from app.core.prompt import PRESET_NAMES
from app.core.prompt.instruct import shipped_instruct
from app.gui.color_field import ColorField
from app.gui.wheel_guard import guard_wheel
from app.gui.window_state import remember_size

# (key, label, explanation, kind, options)
SECTIONS: dict[str, list[tuple]] = {
    "Model": [
        (
            "n_ctx",
            "Context size",
            "How many tokens the model sees at once; more uses more memory. "
            "0: from the model (its trained context, as far as memory allows).",
            "int",
            (0, 1_048_576, 256),
        ),
        (
            "n_gpu_layers",
            "GPU layers",
            "Layers run on the GPU: 0 for CPU only, -1 for all.",
            "int",
            (-1, 1000, 1),
        ),
        (
            "n_cpu_moe",
            "Experts in RAM (MoE)",
            "Mixture-of-experts models: the expert weights of the first N layers stay in "
            "system RAM, so attention and the KV cache fit on the GPU; 0: none.",
            "int",
            (0, 1000, 1),
        ),
        (
            "n_threads",
            "CPU threads",
            "Threads llama.cpp uses; 0 lets it choose.",
            "int",
            (0, 256, 1),
        ),
        (
            "n_batch",
            "Batch size",
            "Prompt tokens read per step; larger is faster, uses more memory.",
            "int",
            (32, 8192, 32),
        ),
        (
            "flash_attn",
            "Flash attention",
            "Uses less memory; needed for a quantized KV cache.",
            "bool",
            None,
        ),
        (
            "kv_type",
            "KV cache type",
            "Lower precision fits longer chats in the same memory.",
            "choice",
            ("f16", "q8_0", "q4_0"),
        ),
        (
            "use_mmap",
            "Map the model file",
            "Start faster and share memory with the OS cache.",
            "bool",
            None,
        ),
        (
            "use_mlock",
            "Lock the model in RAM",
            "Never swapped out; needs enough free RAM.",
            "bool",
            None,
        ),
        (
            "session_cap_mb",
            "Saved sessions (MB)",
            "Disk kept for reopening long chats instantly; 0 keeps none.",
            "int",
            (0, 1_000_000, 256),
        ),
    ],
    "Generation": [
        (
            "max_tokens",
            "Longest reply",
            "The most tokens one reply may have.",
            "int",
            (1, 32768, 16),
        ),
        (
            "temperature",
            "Temperature",
            "Higher is more varied, lower is more predictable.",
            "float",
            (0.0, 5.0, 0.05),
        ),
        (
            "top_p",
            "Top-p",
            "Keep the likeliest tokens that together reach this probability.",
            "float",
            (0.0, 1.0, 0.01),
        ),
        (
            "min_p",
            "Min-p",
            "Drop tokens far less likely than the best one.",
            "float",
            (0.0, 1.0, 0.01),
        ),
        (
            "top_k",
            "Top-k",
            "Consider only this many likeliest tokens (0: all).",
            "int",
            (0, 1000, 1),
        ),
        (
            "repeat_penalty",
            "Repetition penalty",
            "Above 1 discourages repeating recent text.",
            "float",
            (0.5, 2.0, 0.01),
        ),
        (
            "repeat_last_n",
            "Repetition range",
            "How many recent tokens the penalty looks at.",
            "int",
            (0, 32768, 16),
        ),
        (
            "typical_p",
            "Typical-p",
            "Keep tokens close to the expected surprise; 1 is off.",
            "float",
            (0.0, 1.0, 0.01),
        ),
        (
            "presence_penalty",
            "Presence penalty",
            "Discourages any token already used.",
            "float",
            (-2.0, 2.0, 0.05),
        ),
        (
            "frequency_penalty",
            "Frequency penalty",
            "Discourages tokens by how often they were used.",
            "float",
            (-2.0, 2.0, 0.05),
        ),
        (
            "mirostat_mode",
            "Mirostat",
            "0 off; 1 or 2 steers surprise instead of the samplers above.",
            "int",
            (0, 2, 1),
        ),
        (
            "mirostat_tau",
            "Mirostat target",
            "The surprise Mirostat aims for.",
            "float",
            (0.0, 20.0, 0.1),
        ),
        ("mirostat_eta", "Mirostat rate", "How fast Mirostat adjusts.", "float", (0.0, 1.0, 0.01)),
        (
            "seed",
            "Seed",
            "The same seed and prompt give the same reply; -1 picks a new one.",
            "int",
            (-1, 2_147_483_647, 1),
        ),
        (
            "dry_multiplier",
            "DRY multiplier",
            "Above 0 turns DRY on: it discourages continuing what is already in the chat.",
            "float",
            (0.0, 5.0, 0.05),
        ),
        (
            "dry_base",
            "DRY base",
            "How fast DRY's penalty grows with length.",
            "float",
            (1.0, 4.0, 0.05),
        ),
        (
            "dry_allowed_length",
            "DRY allowed length",
            "Repeats up to this many tokens are never penalised.",
            "int",
            (1, 20, 1),
        ),
        (
            "dry_penalty_last_n",
            "DRY range",
            "How many recent tokens DRY looks at; 0 is the whole context.",
            "int",
            (-1, 1_000_000, 64),
        ),
        (
            "dry_sequence_breakers",
            "DRY sequence breakers",
            'A repeat is not followed across these, written as ["\\n", ":", "\\"", "*"].',
            "text",
            None,
        ),
        (
            "xtc_threshold",
            "XTC threshold",
            "XTC may drop the likeliest tokens while another is at least this likely.",
            "float",
            (0.0, 0.5, 0.01),
        ),
        (
            "xtc_probability",
            "XTC probability",
            "How often XTC drops them; 0 is off.",
            "float",
            (0.0, 1.0, 0.01),
        ),
    ],
    "Prompt": [
        ("user_name", "Your name", "Replaces {{user}} in cards and messages.", "text", None),
        (
            "persona",
            "Your persona",
            "Who you are in the story; sent with every prompt.",
            "longtext",
            None,
        ),
        (
            "template",
            "Chat template",
            "'auto' uses the model's own template; or pick a preset "
            "(the capitalised ones are SillyTavern's instruct presets).",
            "choice",
            ("auto", *PRESET_NAMES, *shipped_instruct()),
        ),
        (
            "system_prompt",
            "Default system prompt",
            "Used when a card has none; empty uses Parlor's. {{char}} and {{user}} work here.",
            "longtext",
            None,
        ),
        (
            "prompt_order",
            "Order of the parts",
            "Comma-separated: system, lore_before, "
            "description, personality, scenario, lore_after, persona, examples, history, "
            "post_history. World info goes before/after the character unless placed here.",
            "list",
            None,
        ),
        (
            "stop_strings",
            "Extra stop strings",
            "One per line; the reply ends where one appears.",
            "lines",
            None,
        ),
        (
            "pin_examples",
            "Pin examples",
            "Always send the card's example dialogue; "
            "otherwise it is sent only when the chat leaves room.",
            "bool",
            None,
        ),
        (
            "trim_reply_names",
            "Remove names from replies",
            "Drop a 'Name:' the model writes at the start of its lines (the raw reply is kept).",
            "bool",
            None,
        ),
        (
            "trim_incomplete_sentences",
            "Trim incomplete sentences",
            "Cut a reply after its last full sentence.",
            "bool",
            None,
        ),
        (
            "single_line",
            "Single-line replies",
            "A reply ends at its first line break.",
            "bool",
            None,
        ),
        (
            "lore_scan_depth",
            "Lore scan depth",
            "How many recent messages lore keys are looked for in.",
            "int",
            (1, 1000, 1),
        ),
        (
            "lore_budget_tokens",
            "Lore budget cap",
            "The most tokens activated lore may take; 0: only the share below.",
            "int",
            (0, 100_000, 64),
        ),
        (
            "lore_budget_percent",
            "Lore budget (%)",
            "Share of the context left after the reply that lore may take (SillyTavern: 25).",
            "int",
            (1, 100, 5),
        ),
        (
            "lore_recursive",
            "Recursive lore",
            "Text of fired entries can fire other entries.",
            "bool",
            None,
        ),
        (
            "lore_whole_words",
            "Whole-word keys",
            "A one-word key must stand as a word (an entry can say otherwise).",
            "bool",
            None,
        ),
        (
            "lore_case_sensitive",
            "Case-sensitive keys",
            "Unless an entry says otherwise.",
            "bool",
            None,
        ),
        (
            "lore_include_names",
            "Scan speaker names",
            "Keys are looked for in 'Name: message' lines.",
            "bool",
            None,
        ),
        (
            "lore_min_activations",
            "Minimum lore entries",
            "Scan further back until this many entries fire; 0: off.",
            "int",
            (0, 100, 1),
        ),
        (
            "lore_min_activations_depth_max",
            "Minimum entries: deepest scan",
            "How far back the scan may go for them; 0: the whole chat.",
            "int",
            (0, 10_000, 10),
        ),
        (
            "lore_max_recursion_steps",
            "Lore recursion steps",
            "The most passes over the lore; 0: until nothing new fires.",
            "int",
            (0, 100, 1),
        ),
        (
            "lore_group_scoring",
            "Group scoring",
            "In an inclusion group, keep the entries that match the most keys.",
            "bool",
            None,
        ),
        (
            "lore_strategy",
            "Lore order",
            "How global books and the character's books are merged.",
            "choice",
            ("character_first", "evenly", "global_first"),
        ),
    ],
    "Appearance": [
        (
            "theme",
            "Theme",
            "Follow the system, or always light or dark.",
            "choice",
            ("system", "light", "dark"),
        ),
        (
            "font_size",
            "Text size",
            "Points for the chat text; 0 uses the system's size.",
            "int",
            (0, 48, 1),
        ),
        (
            "chat_layout",
            "Layout",
            "Bubbles, or a book-like page with the text full width.",
            "choice",
            ("bubbles", "book"),
        ),
        (
            "speech_color",
            "Dialogue colour",
            'For "quoted speech" in messages; Default uses the theme\'s.',
            "color",
            DEFAULT_COLORS["speech"],
        ),
        (
            "action_color",
            "Action colour",
            "For *actions* in messages; Default uses the theme's.",
            "color",
            DEFAULT_COLORS["action"],
        ),
        (
            "thought_color",
            "Thought colour",
            "For __thoughts__ (text between double underscores, SillyTavern's underline) "
            "in messages; Default uses the theme's.",
            "color",
            DEFAULT_COLORS["thought"],
        ),
        (
            "enter_sends",
            "Enter sends",
            "Enter sends and Shift+Enter starts a new line; untick to swap them.",
            "bool",
            None,
        ),
    ],
    "Diagnostics": [
        (
            "log_text",
            "Log message text",
            "For a bug report only: the log (and Copy "
            "diagnostics) then quotes prompts and replies. Off, it records only their length.",
            "bool",
            None,
        ),
    ],
}


class SettingsDialog(QDialog):
    applied = Signal(set)  # the keys that changed

    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle(self.tr("Settings"))
        self.setMinimumWidth(560)
        self.editors: dict[str, tuple[str, QWidget]] = {}
        tabs = QTabWidget()
        self.sections: dict[str, QWidget] = {}
        for section, rows in SECTIONS.items():
            self.sections[section] = self._section(rows)
            scroll = QScrollArea()  # long sections scroll instead of squashing their rows
            scroll.setWidgetResizable(True)
            scroll.setWidget(self.sections[section])
            tabs.addTab(scroll, self.tr(section))
        self.tabs = tabs
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.apply)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            self.restore_defaults
        )
        lay = QVBoxLayout(self)
        lay.addWidget(tabs)
        lay.addWidget(buttons)
        guard_wheel(self)
        remember_size(self, "settings")

    def _section(self, rows) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        for key, label, explanation, kind, options in rows:
            editor = _editor(kind, options)
            editor.setAccessibleName(self.tr(label))
            editor.setToolTip(self.tr(explanation))
            _set(kind, editor, getattr(self.settings, key))
            self.editors[key] = (kind, editor)
            note = QLabel(self.tr(explanation))
            note.setWordWrap(True)
            note.setEnabled(False)  # drawn in the palette's softer text colour
            box = QVBoxLayout()
            box.addWidget(editor)
            box.addWidget(note)
            form.addRow(self.tr(label), box)
        return page

    def add_page(self, title: str, page: QWidget) -> None:
        """A tall page scrolls, like the sections: the dialog must fit an 800×600 screen."""
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(page)
        self.tabs.addTab(scroll, title)
        guard_wheel(self)

    def add_to_section(self, section: str, widget: QWidget) -> None:
        """Put `widget` above the settings of `section` (e.g. sampler presets)."""
        self.sections[section].layout().insertRow(0, widget)
        guard_wheel(self)

    def relayout(self, section: str) -> None:
        """Lay a section out again after a label in it grew while shown. Qt keeps the rows'
        heights for the page's width, so the other notes would be cut off; a layout at
        another width first drops what it kept."""
        page = self.sections[section]
        width, height = page.width(), page.height()
        page.resize(width - 1, height)
        page.resize(width, height)

    def set_values(self, values: dict) -> None:
        for key, value in values.items():
            if key in self.editors:
                kind, editor = self.editors[key]
                _set(kind, editor, value)

    def values(self) -> dict:
        return {key: _get(kind, editor) for key, (kind, editor) in self.editors.items()}

    def apply(self) -> None:
        changed = {k for k, v in self.values().items() if getattr(self.settings, k) != v}
        for key in changed:
            setattr(self.settings, key, self.values()[key])
        self.applied.emit(changed)

    def restore_defaults(self) -> None:
        defaults = Settings()
        for key, (kind, editor) in self.editors.items():
            _set(kind, editor, getattr(defaults, key))

    def _ok(self) -> None:
        self.apply()
        self.accept()


def _editor(kind: str, options) -> QWidget:
    if kind == "int":
        w = QSpinBox()
        w.setRange(options[0], options[1])
        w.setSingleStep(options[2])
    elif kind == "float":
        w = QDoubleSpinBox()
        w.setRange(options[0], options[1])
        w.setSingleStep(options[2])
        w.setDecimals(2)
    elif kind == "choice":
        w = QComboBox()
        w.addItems(list(options))
    elif kind == "bool":
        w = QCheckBox()
    elif kind == "color":
        w = ColorField(options)
    elif kind in ("longtext", "lines"):
        w = QPlainTextEdit()
        w.setMaximumHeight(90)
    else:
        w = QLineEdit()
    return w


def _set(kind: str, w: QWidget, value) -> None:
    {
        "int": lambda: w.setValue(int(value)),
        "float": lambda: w.setValue(float(value)),
        "choice": lambda: w.setCurrentText(str(value)),
        "bool": lambda: w.setChecked(bool(value)),
        "longtext": lambda: w.setPlainText(str(value)),
        "lines": lambda: w.setPlainText("\n".join(value)),
        "list": lambda: w.setText(", ".join(value)),
        "text": lambda: w.setText(str(value)),
        "color": lambda: w.setText(str(value)),
    }[kind]()


def _get(kind: str, w: QWidget):
    getters = {
        "int": lambda: w.value(),
        "float": lambda: round(w.value(), 4),
        "choice": lambda: w.currentText(),
        "bool": lambda: w.isChecked(),
        "longtext": lambda: w.toPlainText(),
        "text": lambda: w.text(),
        "color": lambda: w.text(),
        "lines": lambda: [ln for ln in w.toPlainText().split("\n") if ln],
        "list": lambda: [p.strip() for p in w.text().split(",") if p.strip()],
    }
    return getters[kind]()
