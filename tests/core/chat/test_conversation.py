"""The chat's persona reaches the prompt: its name stands for {{user}} and its description
is the persona part; without one, the settings' name and text are used as before."""

from __future__ import annotations

from app.core.appdata.settings import Settings
from app.core.chat.job import chat_persona_of, prompt_input
from app.core.prompt import build_prompt, preset

CARD = {
    "name": "Ayla",
    "description": "{{char}} guards the gate for {{user}}.",
    "first_mes": "Halt!",
}


def words(text: str) -> int:
    return len(text.split())


def render(inp) -> str:
    return build_prompt(inp, preset("chatml"), words, n_ctx=4096, max_new_tokens=64).text


def test_chat_persona_replaces_settings_name_and_description(store):
    character = store.characters.add(CARD)
    chat = store.chats.new(character, ["Halt!"])
    store.personas.add("Rowan", "Rowan is a travelling cartographer.")
    mira = store.personas.add("Mira", "Mira is a retired knight with a limp.")
    store.personas.set_for_chat(chat, mira)
    settings = Settings(user_name="Settings-Name", persona="Settings persona text.")
    persona = chat_persona_of(store, chat)
    assert persona == ("Mira", "Mira is a retired knight with a limp.")
    text = render(prompt_input(CARD, settings, store.messages.active_path(chat), persona=persona))
    assert "Ayla guards the gate for Mira." in text
    assert "Mira is a retired knight with a limp." in text
    assert "Settings-Name" not in text and "Settings persona text." not in text
    assert "Rowan" not in text


def test_chat_without_choice_uses_the_default_persona(store):
    character = store.characters.add(CARD)
    chat = store.chats.new(character, ["Halt!"])
    store.personas.add("Rowan", "Rowan maps rivers.")
    store.personas.set_default(store.personas.add("Sel", "Sel sings."))
    inp = prompt_input(
        CARD, Settings(), store.messages.active_path(chat), persona=chat_persona_of(store, chat)
    )
    assert (inp.user_name, inp.persona) == ("Sel", "Sel sings.")


def test_without_personas_the_settings_are_used(store):
    character = store.characters.add(CARD)
    chat = store.chats.new(character, ["Halt!"])
    assert chat_persona_of(store, chat) is None
    settings = Settings(user_name="Kit", persona="Kit is new in town.")
    inp = prompt_input(
        CARD, settings, store.messages.active_path(chat), persona=chat_persona_of(store, chat)
    )
    assert (inp.user_name, inp.persona) == ("Kit", "Kit is new in town.")
    assert "Ayla guards the gate for Kit." in render(inp)
    assert prompt_input(CARD, settings, []) == prompt_input(CARD, settings, [], persona=None)


def test_hidden_system_lines_from_sillytavern_never_reach_the_prompt():
    from app.core.appdata.settings import Settings
    from app.core.chat.job import prompt_input
    from app.core.store import Message

    def msg(i, role, text):
        return Message(i, 1, i - 1 or None, role, text, "complete", 0.0)

    history = [
        msg(1, "assistant", "Hello."),
        msg(2, "system", "a hidden note"),
        msg(3, "user", "Hi!"),
    ]
    inp = prompt_input({"name": "Wren"}, Settings(), history)
    assert [m.text for m in inp.history] == ["Hello.", "Hi!"]


def test_the_users_prompt_choices_reach_the_builder():
    from app.core.appdata.settings import Settings
    from app.core.chat.job import prompt_settings
    from app.core.prompt import Message, PromptInput, build_prompt, preset

    settings = Settings(
        prompt_order=["system", "description", "history"],
        stop_strings=["THE END"],
        system_prompt="Narrate {{char}} well.",
        lore_scan_depth=2,
    )
    built = build_prompt(
        PromptInput(
            {
                "name": "Wren",
                "description": "Keeps the lamps.",
                "scenario": "A storm.",
                "mes_example": "<START>\n{{char}}: Hm.",
            },
            "Ash",
            history=[Message("user", "Hi")],
        ),
        preset("chatml"),
        lambda t: len(t) // 4 + 1,
        n_ctx=2048,
        max_new_tokens=64,
        settings=prompt_settings(settings),
    )
    assert "Narrate Wren well." in built.text and "Keeps the lamps." in built.text
    assert "A storm." not in built.text and "Hm." not in built.text  # left out of the order
    assert "THE END" in built.stop
    assert prompt_settings(settings).lore_scan_depth == 2
