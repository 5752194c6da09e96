"""The chat-state macros: `{{lastMessage}}`, `{{lastMessageId}}`, `{{lastUserMessage}}`,
`{{lastCharMessage}}`, `{{firstIncludedMessageId}}`, `{{currentSwipeId}}`,
`{{lastSwipeId}}`, as SillyTavern's `public/scripts/macros.js` reads them (an id that is not
known is empty), and `chat_state`, which makes a `ChatState` from a chat's messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from app.core.prompt.macros.context import ChatState


def chat_macro(key: str, state: ChatState) -> str | None:
    """The value of chat-state macro `key` (lower case), or None for another name."""
    ids = {
        "lastmessageid": state.last_message_id,
        "firstincludedmessageid": state.first_included_message_id,
        "currentswipeid": state.current_swipe_id,
        "lastswipeid": state.last_swipe_id,
    }
    if key in ids:
        value = ids[key]
        return "" if value is None else str(value)
    texts = {
        "lastmessage": state.last_message,
        "lastusermessage": state.last_user_message,
        "lastcharmessage": state.last_char_message,
    }
    return texts.get(key)


def chat_state(
    messages: Sequence[tuple[str, str, datetime | None]],
    *,
    swipe: tuple[int, int] | None = None,
    first_included: int | None = None,
) -> ChatState:
    """`messages`: (role, text, sent) of the chat's active path, oldest first, narrator and
    hidden lines as role "system". `swipe`: (index, count) of the last message's swipes.

    As SillyTavern: the last message is any message (`getLastMessageId`), the last user and
    character messages skip system lines, and `{{idle_duration}}` counts from the user's
    newest message before the last one (`getTimeSinceLastMessage`)."""
    last_user = next((t for r, t, _ in reversed(messages) if r == "user"), "")
    last_char = next((t for r, t, _ in reversed(messages) if r == "assistant"), "")
    return ChatState(
        last_message=messages[-1][1] if messages else "",
        last_message_id=len(messages) - 1 if messages else None,
        last_user_message=last_user,
        last_char_message=last_char,
        first_included_message_id=first_included,
        current_swipe_id=swipe[0] + 1 if swipe else (1 if messages else None),
        last_swipe_id=swipe[1] if swipe else (1 if messages else None),
        idle_since=_idle_since(messages),
    )


def _idle_since(messages: Sequence[tuple[str, str, datetime | None]]) -> datetime | None:
    """The newest user message before the newest spoken one (system lines skipped)."""
    seen_last = False
    for role, _, sent in reversed(messages):
        if role == "system":
            continue
        if role == "user" and seen_last:
            return sent
        seen_last = True
    return None
