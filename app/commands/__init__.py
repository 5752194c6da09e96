"""Subcommands of the `parlor` command line, one module each.

Every module here exposes `register(subparsers)`, which adds its parser(s) and sets
`handler=<function(args) -> int>` as the parser default. `app.cli` finds them by listing
this package, so adding a command never touches a shared file.
"""
