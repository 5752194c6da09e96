"""Parlor: character roleplay chat with local language models."""

from importlib import metadata

try:
    __version__ = metadata.version("parlor")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
