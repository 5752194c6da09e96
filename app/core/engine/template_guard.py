"""Keep llama-cpp-python from compiling a GGUF's chat templates when a model loads.

`Llama()` builds a Jinja formatter for `tokenizer.chat_template` and every
`tokenizer.chat_template.<name>` in the file, whether or not anyone asks for one, and
Jinja's compiler folds constants: `{{ 'a' * 10**9 }}` took 9.6 s and 3.9 GB during the load,
and `|wordwrap(1)` on a long constant never finished loading. Parlor renders the model's
template itself, in its own limited sandbox (`app.core.prompt.templates`), and sends plain
completions, so llama-cpp-python's formatters are never used: this swaps in one that keeps
the template text and compiles nothing. Asking it to format anyway is an error that says so.
"""

from __future__ import annotations

from typing import Any

_installed = False


def _lazy_formatter_class(base: type) -> type:
    class StoredTemplate(base):  # type: ignore[misc]
        """The template as text only; Parlor's sandbox is the one that renders it."""

        def __init__(
            self,
            template: str,
            eos_token: str,
            bos_token: str,
            add_generation_prompt: bool = True,
            stop_token_ids: list[int] | None = None,
        ) -> None:
            self.template = template
            self.eos_token, self.bos_token = eos_token, bos_token
            self.add_generation_prompt = add_generation_prompt
            self.stop_token_ids = set(stop_token_ids) if stop_token_ids is not None else None

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(
                "Parlor renders chat templates itself; llama-cpp-python's "
                "chat formatting is disabled in this process"
            )

    return StoredTemplate


def disable_gguf_template_compilation() -> None:
    """Install the non-compiling formatter (once per process); call before `Llama()`."""
    global _installed
    if _installed:
        return
    from llama_cpp import llama_chat_format

    llama_chat_format.Jinja2ChatFormatter = _lazy_formatter_class(  # type: ignore[misc, assignment]
        llama_chat_format.Jinja2ChatFormatter
    )
    _installed = True
