"""Exact token counts for the card editor, from the loaded model's own tokenizer.

The engine's llama.cpp belongs to the generation worker (and may be busy streaming), so
the editor gets its own vocabulary-only copy of the model: llama.cpp reads just the
tokenizer from the file (no weights), on first use, as `parlor prompt` does."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class VocabCounter:
    def __init__(self, model_path: str) -> None:
        self.model_path = model_path
        self._llm = None
        self._failed = False

    def __call__(self, text: str) -> int:
        """Raises when the tokenizer cannot be had; the editor then shows its estimate."""
        if self._llm is None:
            if self._failed:
                raise RuntimeError("no tokenizer")
            self._llm = self._open()
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _open(self):
        try:
            from llama_cpp import Llama

            from app.core.engine.template_guard import disable_gguf_template_compilation

            disable_gguf_template_compilation()  # in the GUI process: never compile them
            return Llama(model_path=self.model_path, vocab_only=True, verbose=False)
        except Exception:
            self._failed = True
            log.warning(
                "tokenizer of %s could not be read for token counts",
                Path(self.model_path).name,
                exc_info=True,
            )
            raise


def counter_for(model_path: str) -> VocabCounter | None:
    """A counter for a local GGUF file; None for a server's model (no file here)."""
    return (
        VocabCounter(model_path)
        if model_path.lower().endswith(".gguf") and Path(model_path).is_file()
        else None
    )
