"""Markdown blocks in messages: fenced code shown as written, horizontal rules; still safe."""

from __future__ import annotations

from app.core.chat.display import to_html


def test_a_fenced_code_block_is_preformatted_and_not_formatted():
    html = to_html('Here:\n```\nx = *not italic* "no colour"\n  indented <b>\n```\nDone.')
    assert "<pre>x = *not italic* &quot;no colour&quot;\n  indented &lt;b&gt;\n</pre>" in html
    assert "<i>" not in html.split("<pre>")[1].split("</pre>")[0]
    assert html.endswith("Done.")


def test_an_unclosed_fence_is_closed_at_the_end():
    html = to_html("```\nstill code")
    assert html.count("<pre>") == html.count("</pre>") == 1


def test_horizontal_rules():
    for rule in ("---", "***", "___", "-----"):
        assert "<hr>" in to_html(f"one\n{rule}\ntwo")
    assert "<hr>" not in to_html("a -- b") and "<hr>" not in to_html("--")


def test_a_fence_closes_an_open_list():
    html = to_html("- a\n```\ncode\n```")
    assert html.index("</ul>") < html.index("<pre>")
