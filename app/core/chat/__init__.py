"""The chat use case, wiring the other packages together: the `AppContext` handed to the
windows, the prompt job built from a chat's stored state for the generation worker, the built-in
character, and how a message's text is shown. The top layer of `app.core`.
"""
