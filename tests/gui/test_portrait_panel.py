"""The character beside the chat: a large portrait, who made it, tags, and notes rendered
as Markdown that can neither run HTML nor load anything."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

NOTES = (
    "**Bold** claims and a [link](http://example.com).\n\n"
    '<img src="http://example.com/track.png"> <script>alert(1)</script>\n\n- one\n- two'
)


def _panel(window):
    return window.portrait_panel


def test_the_panel_shows_the_character_on_a_wide_window(qtbot, make_window):
    window = make_window()
    window.resize(1400, 800)
    qtbot.waitUntil(lambda: window.centralWidget().sizes()[2] > 200)
    panel = _panel(window)
    assert panel.name.text() == "Wren" and "#inn" in panel.tags.text()
    assert "by Parlor" in panel.byline.text()
    assert panel.portrait.pixmap().width() >= 200  # the image, not a 44 px crop
    viewer = panel.show_full_image()
    assert viewer.isVisible()


def test_the_panel_folds_away_on_a_small_window(qtbot, make_window):
    window = make_window()
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.centralWidget().sizes()[2] == 0)
    window.resize(1400, 800)
    qtbot.waitUntil(lambda: window.centralWidget().sizes()[2] > 0)


def test_creator_notes_are_safe_markdown(qtbot, make_window):
    window = make_window()
    character = window.ctx.store.characters.add(
        {
            "name": "Noted",
            "first_mes": "Hi.",
            "creator_notes": NOTES,
            "creator": "Ann",
            "character_version": "2",
            "tags": ["a"],
        }
    )
    window.library.reload()
    window.library.select(character)
    QApplication.processEvents()
    notes = _panel(window).notes
    text = notes.toPlainText()
    assert "Bold claims" in text and "one" in text
    html = notes.toHtml()
    assert "<img" not in html and "<script" not in html  # raw HTML stays text
    assert "<img" in text  # ...shown, not obeyed
    assert not notes.openLinks() and not notes.openExternalLinks()
    assert _panel(window).byline.text() == "by Ann · version 2"
