"""SQLite history: characters, personas, chats and the message tree."""

from app.core.store.db import StoreError, open_database
from app.core.store.message import Message, Role, Status
from app.core.store.store import Store

__all__ = ["Message", "Role", "Status", "Store", "StoreError", "open_database"]
