"""A big community card at the default 4096 context, with llama.cpp's own tokenizer.

Modelled on the chub card "Comely & Vigorous": a long description and about 2,300 tokens of
example dialogue, which alone left no room for the chat at 4096 tokens.
"""

import pytest

from app.core.appdata.settings import Settings
from app.core.chat.job import PromptJob, TokenCounter
from app.core.engine import ModelInfo
from app.core.prompt import Message, PromptInput
from tests.prompt_models import model_info

llama_cpp = pytest.importorskip("llama_cpp")

N_CTX = 4096


def _prose(seed: str, n: int) -> str:
    """Card-like prose; the tiny model's vocabulary spells most of it letter by letter."""
    words = [f"{seed}{i % 7}q" for i in range(n)]
    return " ".join(words)


CARD = {
    "name": "Comely",
    "description": "{{char}} and her brother Vigorous run the inn. " + _prose("desc", 180),
    "personality": "bold, " + _prose("pers", 20),
    "scenario": "{{user}} arrives at the inn at dusk. " + _prose("scen", 30),
    "first_mes": "*Comely looks up from the counter.* Welcome, {{user}}!",
    "mes_example": "".join(
        f"<START>\n{{{{user}}}}: Question {b}?\n{{{{char}}}}: " + _prose(f"ex{b}x", 60) + "\n"
        for b in range(5)
    ),
}


@pytest.fixture(scope="module")
def llm(tiny_llama_path):
    return llama_cpp.Llama(
        model_path=str(tiny_llama_path), n_ctx=N_CTX, n_batch=512, verbose=False, seed=1
    )


def _count_many(llm):
    def count_many(texts):
        return [len(llm.tokenize(t.encode(), add_bos=False, special=True)) for t in texts]

    return count_many


def _job(history, llm, counter):
    info = model_info(N_CTX)
    settings = Settings()
    settings.template, settings.max_tokens = "chatml", 300
    inp = PromptInput(card=CARD, user_name="Ann", history=history)
    return PromptJob(inp, info, settings, counter)(_count_many(llm))


def test_the_card_is_as_big_as_the_real_one(llm):
    examples = len(llm.tokenize(CARD["mes_example"].encode(), add_bos=False))
    assert 2000 < examples < 2600


def test_first_reply_succeeds_with_the_examples_dropped_and_a_notice(llm):
    history = [Message("assistant", CARD["first_mes"]), Message("user", "Hello there.")]
    built = _job(history, llm, TokenCounter())
    assert built.fits and built.dropped_messages == 0
    assert any("example dialogue blocks were left out" in w for w in built.warnings)
    assert len(llm.tokenize(built.text.encode(), special=True)) <= N_CTX - 300
    out = llm.create_completion(built.text, max_tokens=4, temperature=0.0)
    assert out["choices"][0]["text"] is not None


def test_a_sixty_message_chat_keeps_its_newest_messages_every_turn(llm):
    counter = TokenCounter()
    history = [Message("assistant", CARD["first_mes"])]
    dropped = []
    for turn in range(30):
        history.append(Message("user", f"Turn {turn} from Ann. " + _prose(f"u{turn}y", 25)))
        built = _job(history, llm, counter)
        assert built.fits and f"Turn {turn} from Ann." in built.text
        assert len(llm.tokenize(built.text.encode(), special=True)) <= N_CTX - 300
        start = built.dropped_messages
        if start:  # no turn is sent with fewer messages than fit: one more would not
            wider = _job(history[start - 1 :], llm, counter)
            assert wider.dropped_messages == 1
        dropped.append(start)
        history.append(Message("assistant", f"Reply {turn}. " + _prose(f"r{turn}z", 30)))
    assert len(history) == 61 and dropped[-1] > 0
    assert all(len(history) - d > 8 for d in dropped)
    out = llm.create_completion(built.text, max_tokens=4, temperature=0.0)
    assert out["choices"][0]["text"] is not None


def test_a_model_without_a_template_is_told_and_gets_its_catalogs_preset(llm):
    """The default model's GGUF has no chat template: the catalog names ChatML for it."""
    history = [Message("user", "Hello there.")]
    info = ModelInfo(
        path="/models/ggml-model-q4_k_m.gguf",
        name="m",
        n_ctx=N_CTX,
        n_ctx_train=N_CTX,
        n_gpu_layers=0,
        n_layer=2,
        chat_template=None,
        bos="<s>",
        eos="</s>",
    )
    built = PromptJob(
        PromptInput(card=CARD, user_name="Ann", history=history), info, Settings(), TokenCounter()
    )(_count_many(llm))
    assert "catalog names the ChatML format" in built.warnings[0]
    assert built.text.endswith(
        "<|im_start|>user\nAnn: Hello there.<|im_end|>\n<|im_start|>assistant\nComely:"
    )
    other = PromptJob(
        PromptInput(card=CARD, user_name="Ann", history=history),
        ModelInfo(**{**info.__dict__, "path": "/models/other.gguf"}),
        Settings(),
        TokenCounter(),
    )(_count_many(llm))
    assert "format is a guess" in other.warnings[0]


def test_the_job_cleans_the_finished_reply_with_its_own_stops(llm):
    """cleanUpMessage on the reply: the character's name, the user's turn and a split stop
    string of the format used (ChatML here) go; the raw text is kept."""
    settings = Settings()
    settings.template = "ChatML"
    info = ModelInfo(
        path="m.gguf",
        name="m",
        n_ctx=N_CTX,
        n_ctx_train=N_CTX,
        n_gpu_layers=0,
        n_layer=2,
        chat_template=None,
        bos="<s>",
        eos="</s>",
    )
    job = PromptJob(
        PromptInput(card=CARD, user_name="Ann", history=[Message("user", "Hi")]),
        info,
        settings,
        TokenCounter(),
    )
    job(_count_many(llm))
    cleaned = job.clean("Comely: Welcome in!<|im_e")
    assert cleaned.text == "Welcome in!" and cleaned.changed
    assert job.clean("Sure.\nAnn: and I").text == "Sure."
    settings.single_line = True
    assert job.clean("One line.\nTwo lines.").text == "One line."


def test_a_context_too_small_for_anything_is_a_clear_error(llm):
    """Not llama.cpp's "more than the context size": what to raise, in words."""
    from app.core.chat.job import PromptDoesNotFit

    info = ModelInfo(
        path="m.gguf",
        name="m",
        n_ctx=40,
        n_ctx_train=N_CTX,
        n_gpu_layers=0,
        n_layer=2,
        chat_template=None,
        bos="<s>",
        eos="</s>",
    )
    settings = Settings()
    settings.template, settings.max_tokens = "chatml", 10
    job = PromptJob(
        PromptInput(card=CARD, user_name="Ann", history=[Message("user", "Hi")]),
        info,
        settings,
        TokenCounter(),
    )
    with pytest.raises(
        PromptDoesNotFit,
        match=r"only \d+ fit.*raise Context size to 4096 in "
        "Settings → Model",
    ):
        job(_count_many(llm))
