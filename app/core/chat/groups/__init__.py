"""Group chats: several characters in one scene, on top of the store, prompt and engine.

`speakers` (who speaks next: SillyTavern's natural and list strategies, and manual, with a
roll seeded per chat), `cards` (the speaker's card in swap or join mode, group greetings),
`prompt` (the speaker's prompt: names in turns, every member's lore, member stop strings),
`conversation` (a turn and auto mode, run with any engine). The groups themselves are kept by
`app.core.store.groups`.
"""
