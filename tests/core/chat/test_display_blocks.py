"""Markdown blocks in messages: fenced code shown as written, horizontal rules; still safe."""

from __future__ import annotations

from app.core.chat.display import MAX_DEPTH, to_html


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


def test_headings_are_headings_of_their_level_with_formatting_inside():
    html = to_html('# The Harbour\n### *rain* and "wind"\n#hashtag\n####### seven')
    assert "<h1>The Harbour</h1>" in html
    assert html.count("<h3>") == 1 and "<i>" in html.split("<h3>")[1]
    assert "#hashtag" in html and "<h7>" not in html and "####### seven" in html


def test_numbered_lists_keep_their_first_number():
    html = to_html("1. one\n2. two\n\n3) three")
    assert html.startswith("<ol><li>one</li><li>two</li></ol>")
    assert '<ol start="3"><li>three</li></ol>' in html


def test_lists_nest_by_indentation_and_switch_kind():
    html = to_html("- fruit\n  1. apple\n  2. pear\n- bread\n1. first")
    assert html == (
        "<ul><li>fruit</li><ol><li>apple</li><li>pear</li></ol><li>bread</li></ul>"
        "<ol><li>first</li></ol>"
    )


def test_plus_bullets_and_roleplay_lines_that_are_not_lists():
    assert to_html("+ a").startswith("<ul><li>a</li>")
    for line in ("*She waves.*", "* *waves* hi", "1.5 apples", "-nope"):
        assert "<li>" not in to_html(line), line


def test_consecutive_quote_lines_are_one_block_quote():
    html = to_html('> "Gull\'s Wake"\n>out on the tide\n\nafter')
    assert html.count("<blockquote>") == 1
    assert "<br>out on the tide</span></blockquote>" in html and html.endswith("after")
    assert "&quot;Gull&#x27;s Wake&quot;</span>" in html  # speech still coloured inside


def test_thoughts_are_text_between_double_underscores():
    html = to_html("__I shouldn't trust her.__ *nods*", {"thought": "#112233"})
    assert '<u><span style="color:#112233">I shouldn&#x27;t trust her.</span></u>' in html
    assert "<i>" in html  # the action beside it is still an action


def test_snake_case_and_spaced_underscores_are_not_thoughts():
    for text in ("call my_var__x__y", "__ spaced __", "a__b__", "____"):
        assert "<u>" not in to_html(text), text
    assert "<u>" in to_html("(__yes__)")


def test_markup_in_new_blocks_is_still_escaped():
    html = to_html('# <img src="http://x/y.png">\n1. <script>\n> <a href="http://x">')
    assert "<img" not in html and "<script" not in html and "<a " not in html
    assert "http" in html  # shown as text, never as an address Qt could load


def test_lists_nest_at_most_max_depth():
    html = to_html("".join(" " * i + "- x\n" for i in range(40)))
    assert html.count("<ul>") == MAX_DEPTH == html.count("</ul>") and html.count("<li>") == 40


def test_single_underscores_are_emphasis_like_asterisks_but_not_inside_words():
    html = to_html("_She waits._ my_var_name and __a thought__", {"action": "#111111"})
    assert '<i><span style="color:#111111">She waits.</span></i>' in html
    assert "my_var_name" in html and html.count("<i>") == 1 and "<u>" in html
