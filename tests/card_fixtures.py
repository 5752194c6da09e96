"""The hand-written card fixtures and their builders (tests/fixtures/cards/make_fixtures.py),
loaded once for every card test module."""

from __future__ import annotations

import importlib.util
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cards"
_spec = importlib.util.spec_from_file_location("card_fixtures", FIXTURES / "make_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)
