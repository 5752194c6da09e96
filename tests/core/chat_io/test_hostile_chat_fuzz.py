"""Issue 21, point 9: no SillyTavern chat line crashes the import; each is imported,
skipped with its line number, or refused as a whole with a ChatIOError."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.chat_io import ChatIOError, import_st_chat
from app.core.store import Store

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = st.sampled_from(
    [
        "mes",
        "swipes",
        "swipe_id",
        "send_date",
        "extra",
        "is_user",
        "is_system",
        "name",
        "swipe_info",
        "gen_started",
    ]
)
_LINE = st.dictionaries(_KEYS, _VALUES, max_size=6)
_NODE = st.dictionaries(
    st.sampled_from(
        [
            "id",
            "role",
            "text",
            "at",
            "parent",
            "check",
            "status",
            "created_at",
            "gen_info",
            "extra",
            "shown",
        ]
    ),
    st.one_of(_VALUES, st.sampled_from(["user", "assistant", "system"])),
    max_size=8,
)
_TREE = st.fixed_dictionaries(
    {"parlor": st.fixed_dictionaries({"version": st.just(1), "nodes": st.lists(_NODE, max_size=4)})}
)
_META = st.dictionaries(
    st.sampled_from(["user_name", "character_name", "create_date", "chat_metadata"]),
    st.one_of(_VALUES, _TREE),
    max_size=4,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(meta=_META, lines=st.lists(_LINE, max_size=5))
def test_any_chat_imports_or_is_refused_with_a_message(tmp_path_factory, meta, lines):
    folder = tmp_path_factory.mktemp("fuzz")
    store = Store(folder / "parlor.db")
    try:
        path = folder / "chat.jsonl"
        path.write_text("\n".join(json.dumps(x) for x in [meta, *lines]), encoding="utf-8")
        try:
            import_st_chat(store, path, store.characters.add({"name": "Ada"}), strict=False)
        except ChatIOError:
            pass
        store.characters.add({"name": "After"})  # the store still takes writes
    finally:
        store.close()
