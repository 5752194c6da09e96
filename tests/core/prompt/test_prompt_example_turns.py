"""Example dialogue as real turns with a model's own chat template, on a real tiny GGUF
that carries one, counted by llama.cpp's tokenizer.

SillyTavern's chat completion (`public/scripts/openai.js`: `setOpenAIMessageExamples`,
`parseExampleIntoIndividual`, `populateDialogueExamples`) sends each `<START>` block as an
"[Example Chat]" heading and the block's lines as user/assistant turns without their
`Name:`; "[Start a new Chat]" then opens the chat (`new_chat_prompt`)."""

from __future__ import annotations

import pytest

from app.core.appdata.settings import Settings
from app.core.chat.job import PromptJob, TokenCounter
from app.core.engine import ModelInfo
from app.core.gguf.header import read_header
from app.core.prompt import Message, PromptInput
from tests.prompt_models import CHATML_JINJA, MISTRAL_JINJA
from tests.tiny_models import write_tiny_llama

llama_cpp = pytest.importorskip("llama_cpp")

CARD = {
    "name": "Alice",
    "description": "{{char}} is a fox.",
    "mes_example": (
        "<START>\n{{user}}: Who are you?\n{{char}}: A fox, {{user}}.\n"
        "<START>\n{{char}}: *grins*\n{{user}}: Why?\n{{char}}: Because."
    ),
}
HISTORY = [Message("assistant", "Hello, Ann!"), Message("user", "Hi there.")]


@pytest.fixture(scope="module", params=["chatml", "mistral"])
def model(request, tmp_path_factory):
    source = CHATML_JINJA if request.param == "chatml" else MISTRAL_JINJA
    path = write_tiny_llama(tmp_path_factory.mktemp("m") / "tiny.gguf", chat_template=source)
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, verbose=False, seed=1)
    return request.param, path, llm


def _info(path, n_ctx: int) -> ModelInfo:
    meta = read_header(str(path)).metadata
    tokens = meta["tokenizer.ggml.tokens"]
    return ModelInfo(
        path=str(path),
        name="tiny",
        n_ctx=n_ctx,
        n_ctx_train=4096,
        n_gpu_layers=0,
        n_layer=2,
        chat_template=meta["tokenizer.chat_template"],
        bos=tokens[meta["tokenizer.ggml.bos_token_id"]],
        eos=tokens[meta["tokenizer.ggml.eos_token_id"]],
    )


def _build(model, n_ctx=1024, *, history=HISTORY, pin=False, reply=100):
    _, path, llm = model
    settings = Settings()
    settings.template, settings.max_tokens, settings.pin_examples = "auto", reply, pin
    job = PromptJob(
        PromptInput(CARD, "Ann", history=history), _info(path, n_ctx), settings, TokenCounter()
    )

    def count_many(texts):
        return [len(llm.tokenize(t.encode(), add_bos=False, special=True)) for t in texts]

    return job(count_many)


def test_examples_are_turns_of_the_models_own_template(model):
    kind, _, llm = model
    built = _build(model)
    assert "<START>" not in built.text and "Ann:" not in built.text
    assert not any("could not be used" in w for w in built.warnings)
    if kind == "chatml":
        assert (
            "<|im_start|>system\n[Example Chat]<|im_end|>\n"
            "<|im_start|>user\nWho are you?<|im_end|>\n"
            "<|im_start|>assistant\nA fox, Ann.<|im_end|>\n"
            "<|im_start|>system\n[Example Chat]<|im_end|>\n"
            "<|im_start|>assistant\n*grins*<|im_end|>\n"
            "<|im_start|>user\nWhy?<|im_end|>\n"
            "<|im_start|>assistant\nBecause.<|im_end|>\n"
            "<|im_start|>system\n[Start a new Chat]<|im_end|>\n"
            "<|im_start|>assistant\nHello, Ann!<|im_end|>\n"
        ) in built.text
    else:  # system turns folded into the next user turn, as the template allows no other
        assert "[Example Chat]\n\nWho are you? [/INST]A fox, Ann.</s>" in built.text
        assert "[INST] Why? [/INST]Because.</s>[INST] [Start a new Chat]" in built.text
    examples = next(p for p in built.parts if p.name == "examples")
    assert "Because." in examples.text and examples.tokens > 10
    joined = len(llm.tokenize(built.text.encode(), add_bos=False, special=True))
    assert joined <= built.tokens <= 1024 - 1 - 100  # pieces counted apart: never fewer
    out = llm.create_completion(built.text, max_tokens=2)  # llama.cpp takes it as it is
    assert out["usage"]["prompt_tokens"] <= 1024 - 100


def _chat(n: int) -> list[Message]:
    turns = [Message("assistant", "Hello, Ann!")]
    for i in range(n):
        turns.append(Message("user" if i % 2 == 0 else "assistant", f"line {i} " + "so " * 12))
    return turns + [Message("user", "Last one?")]


def test_examples_give_way_to_the_chat_when_space_is_short(model):
    """SillyTavern's `Generate`: examples only go in when the history leaves room."""
    built = _build(model, n_ctx=900, history=_chat(40), reply=100)
    assert built.fits and "Because." not in built.text and "[Example Chat]" not in built.text
    assert any("example dialogue blocks were left out" in w for w in built.warnings)
    assert built.text.rstrip().endswith(
        ("Last one?<|im_end|>\n<|im_start|>assistant", "Last one? [/INST]")
    )


def test_pinned_examples_stay_and_the_history_gives_way(model):
    loose = _build(model, n_ctx=900, history=_chat(40), reply=100)
    pinned = _build(model, n_ctx=900, history=_chat(40), reply=100, pin=True)
    assert pinned.fits and "Because." in pinned.text and "[Start a new Chat]" in pinned.text
    assert pinned.dropped_messages > loose.dropped_messages
    assert pinned.tokens <= 900 - 1 - 100
