"""Chat files: SillyTavern `.jsonl` import and export (keeping swipes and the whole tree),
Markdown and plain-text export.

    result = import_st_chat(store, "Alice - 2024.jsonl", character_id, strict=False)
    result.chat_id, result.problems, result.warnings
    export_chat(store, chat_id, "out.jsonl")   # or .md / .txt
"""

from app.core.chat_io.dates import format_send_date, parse_send_date
from app.core.chat_io.errors import ChatIOError, LineProblem
from app.core.chat_io.st_export import st_chat_rows, st_chat_text
from app.core.chat_io.st_import import ImportResult, import_st_chat
from app.core.chat_io.st_read import StFile, parse_st_bytes, read_st_file
from app.core.chat_io.text_export import FORMATS, export_chat, markdown_text, plain_text

__all__ = [
    "FORMATS",
    "ChatIOError",
    "ImportResult",
    "LineProblem",
    "StFile",
    "export_chat",
    "format_send_date",
    "import_st_chat",
    "markdown_text",
    "parse_send_date",
    "parse_st_bytes",
    "plain_text",
    "read_st_file",
    "st_chat_rows",
    "st_chat_text",
]
