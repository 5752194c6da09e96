"""The library as a grid or a list, sorted by name, recent chat or date added, with
favourites first — stored as SillyTavern stores them (`data.extensions.fav`)."""

from __future__ import annotations

from PySide6.QtWidgets import QListView

from app.core.cards import to_v3_json
from app.gui.characters.library_view import SortKey, ViewMode


def _names(library) -> list[str]:
    return [library.card(i).name for i in library.ids()]


def _library_with_three(make_window):
    window = make_window()
    store = window.ctx.store
    ids = {}
    for name in ("Bram", "Anna", "Cleo"):
        ids[name] = store.characters.add({"name": name, "first_mes": "Hi."})
    window.library.reload()
    return window, ids


def test_sorting_by_name_added_and_recent_chat(qtbot, make_window):
    window, ids = _library_with_three(make_window)
    library = window.library
    assert _names(library) == ["Anna", "Bram", "Cleo", "Wren"]
    library.controls.set_sort_key(SortKey.ADDED)
    assert _names(library) == ["Cleo", "Anna", "Bram", "Wren"]
    library.select(ids["Bram"])  # opens a chat with Bram: the most recent
    library.controls.set_sort_key(SortKey.RECENT)
    library.reload()
    assert _names(library)[0] == "Bram"


def test_favourites_come_first_are_filtered_and_stored_in_the_card(qtbot, make_window):
    """SillyTavern's favourite toggle (`CharacterContextMenu.favorite`) writes
    `data.extensions.fav`; the same key here keeps favourites through export/import."""
    window, ids = _library_with_three(make_window)
    library = window.library
    library.set_favourite(ids["Cleo"], True)
    assert _names(library)[0] == "Cleo"
    assert window.ctx.store.characters.card(ids["Cleo"])["extensions"]["fav"] is True
    exported = to_v3_json(library.card(ids["Cleo"]))
    assert exported["data"]["extensions"]["fav"] is True
    library.controls.favourites.setChecked(True)
    assert _names(library) == ["Cleo"]
    library.controls.favourites.setChecked(False)
    library.set_favourite(ids["Cleo"], False)
    assert _names(library)[0] == "Anna"


def test_grid_mode_shows_portrait_tiles(qtbot, make_window):
    window, _ids = _library_with_three(make_window)
    library = window.library
    current = library.current_id()
    library.controls.set_mode(ViewMode.GRID)
    assert library.view.viewMode() == QListView.ViewMode.IconMode
    assert library.view.itemDelegate() is library.grid_delegate
    assert library.current_id() == current  # switching views keeps the choice
    library.controls.set_mode(ViewMode.LIST)
    assert library.view.viewMode() == QListView.ViewMode.ListMode
