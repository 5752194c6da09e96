"""A chat template is untrusted input: injection payloads, endless loops and memory bombs."""

import time

import pytest

from app.core.prompt import Limits, Message, preset, template_from_gguf
from app.core.prompt.templates import SafeEnvironment, TemplateLimitError

CONVERSATION = [
    Message("system", "S"),
    Message("user", "Hi"),
    Message("assistant", "Hello"),
    Message("user", "Bye"),
]
# Each wrapped in ChatML so the stand-in preset is known.
CHATML_TAIL = "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"


def payloads(marker):
    cmd = f"touch {marker}"
    return [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__()[137].__init__.__globals__['popen']"
        f"('{cmd}') }}}}",
        f"{{{{ cycler.__init__.__globals__.os.popen('{cmd}').read() }}}}",
        f"{{{{ joiner.__init__.__globals__.os.popen('{cmd}').read() }}}}",
        f"{{{{ namespace.__init__.__globals__.os.popen('{cmd}').read() }}}}",
        "{{ self.__init__.__globals__.__builtins__ }}",
        "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
        f"{{{{ lipsum.__globals__['os'].popen('{cmd}').read() }}}}",
        "{{ raise_exception.__globals__ }}",
        "{{ ''|attr('__class__') }}",
        "{{ ''['__class__'] }}",
        "{{ messages.__class__.__base__.__subclasses__() }}",
        "{% set x = messages.append({'role': 'user', 'content': 'injected'}) %}",
        "{{ ''.format.__globals__ }}",
        "{{ range.__globals__ }}",
        "{% include '/etc/passwd' %}",
        "{% import 'os' as os %}",
    ]


@pytest.mark.parametrize("index", range(len(payloads("x"))))
def test_injection_payloads_are_refused_and_nothing_runs(tmp_path, index):
    marker = tmp_path / "pwned"
    source = payloads(marker)[index] + CHATML_TAIL
    out = template_from_gguf(source, "", "<|im_end|>").render(CONVERSATION)
    assert not marker.exists()
    assert out.text == preset("chatml").render(CONVERSATION).text
    assert len(out.warnings) == 1 and "could not be used" in out.warnings[0]
    assert "<class" not in out.text and "built-in" not in out.text


def test_a_refused_template_stays_refused():
    template = template_from_gguf("{{ ''.__class__ }}" + CHATML_TAIL, "", "<|im_end|>")
    template.render(CONVERSATION)
    assert template.refused and "unsafe" in template.refused
    assert template.render(CONVERSATION).warnings  # still visible on every use


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(10**9) %}{% endfor %}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% for a in messages %}{% for b in range(100000) %}{% for c in range(100000) %}"
        "{% endfor %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    ],
)
def test_endless_loops_are_stopped_in_time(source):
    start = time.monotonic()
    out = template_from_gguf(
        source + CHATML_TAIL, "", "<|im_end|>", limits=Limits(seconds=0.3)
    ).render(CONVERSATION)
    assert time.monotonic() - start < 3
    assert out.text == preset("chatml").render(CONVERSATION).text
    assert "stopped" in out.warnings[0]


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 10**9 }}",
        "{{ 10**9 * 'a' }}",
        "{{ ['a' * 1000] * 10**7 }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}{{ ns.s }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = [ns.s, ns.s]|join %}"
        "{% endfor %}{{ ns.s }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
        "{% set ns.s = '{}{}'.format(ns.s, ns.s) %}{% endfor %}{{ ns.s }}",
        "{% set ns = namespace(x=3) %}{% for i in range(64) %}{% set ns.x = ns.x * ns.x %}"
        "{% endfor %}{{ ns.x }}",
        "{{ 'x'|center(10**9) }}",
        "{{ 'x'.ljust(10**9) }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ '%999999999s' % 1 }}",
        "{{ '%999999999s'|format(1) }}",
        "{{ 'x'|indent(10**9, true) }}",
        "{{ range(100000)|join('x' * 1000) }}",
        "{{ ('ab' * 1000)|replace('a', 'a' * 100000) }}",
        "{{ ('ab' * 1000).replace('a', 'a' * 100000) }}",
        "{{ ('\t' * 1000).expandtabs(10**6) }}",
        "{{ range(10)|batch(10**9, 'x')|list }}",
        "{{ 2 ** 100000000 }}",
        "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
    ],
)
def test_huge_values_are_refused_before_they_are_built(source):
    start = time.monotonic()
    out = template_from_gguf(source + CHATML_TAIL, "", "<|im_end|>").render(CONVERSATION)
    assert time.monotonic() - start < 3
    assert out.text == preset("chatml").render(CONVERSATION).text
    assert "too large" in out.warnings[0] or "longer than" in out.warnings[0]


def test_the_output_limit_grows_with_a_long_chat():
    long_chat = [Message("user", "x" * 3000) for _ in range(2000)]  # 6 MB of chat
    out = template_from_gguf(CHATML_TAIL, "", "<|im_end|>").render(long_chat)
    assert out.warnings == []
    assert len(out.text) > 6_000_000


def test_ordinary_jinja_still_works():
    env = SafeEnvironment()
    source = (
        "{% set ns = namespace(n=0) %}{% for m in messages if m.role != 'system' %}"
        "{% set ns.n = ns.n + 1 %}{{ loop.index }}/{{ loop.length }}:{{ m.content|upper }}"
        "{% if loop.last %}.{% else %},{% endif %}{% endfor %} {{ ns.n }}"
        "{% for x in [1, 2, 3] %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}"
        " {{ {'a': 'é'}|tojson }} {{ 'a' ~ 1 }} {{ ['x', 'y']|join('-') }}"
        "{% for x in [] %}no{% else %} empty{% endfor %}"
    )
    template = env.compile_template(source)
    context = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
        ]
    }
    assert env.render_limited(template, context, 0) == '1/2:A,2/2:B. 21 {"a": "é"} a1 x-y empty'


def test_limits_apply_to_a_direct_render():
    env = SafeEnvironment(Limits(seconds=0.2))
    template = env.compile_template(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    )
    with pytest.raises(TemplateLimitError, match="longer than"):
        env.render_limited(template, {}, 0)


def test_oversized_template_source_is_refused():
    out = template_from_gguf("x" * 300_000, "", "<|im_end|>").render(CONVERSATION)
    assert "longer than" in out.warnings[0]


def test_recursion_works_until_it_nests_too_deep():
    env = SafeEnvironment()
    template = env.compile_template(
        "{% for n in tree recursive %}{{ n.name }}{% if n.kids %}"
        "({{ loop(n.kids) }}){% endif %}{% endfor %}"
    )

    def tree(depth):
        node = {"name": "leaf", "kids": []}
        for i in range(depth):
            node = {"name": f"n{i}", "kids": [node]}
        return [node]

    assert env.render_limited(template, {"tree": tree(2)}, 0) == "n1(n0(leaf))"
    with pytest.raises(TemplateLimitError, match="nested"):
        env.render_limited(template, {"tree": tree(500)}, 0)
