"""What the prompt tests share: a model's description without a model, and two real GGUF
chat templates (ChatML's, and Mistral's strict alternation with no system role)."""

from __future__ import annotations

from app.core.engine import ModelInfo

CHATML_JINJA = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
MISTRAL_JINJA = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') "
    "!= (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must "
    "alternate') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
    "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and "
    "assistant roles are supported!') }}{% endif %}{% endfor %}"
)


def model_info(n_ctx: int = 4096) -> ModelInfo:
    """A loaded model as the prompt job sees it: a context size, no template of its own."""
    return ModelInfo(
        path="tiny.gguf",
        name="tiny",
        n_ctx=n_ctx,
        n_ctx_train=n_ctx,
        n_gpu_layers=0,
        n_layer=2,
        chat_template=None,
        bos="<s>",
        eos="</s>",
    )
