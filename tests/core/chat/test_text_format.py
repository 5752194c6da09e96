"""Chat text becomes safe, formatted HTML."""

from app.core.chat.display import to_html


def test_markup_from_a_card_or_model_is_escaped():
    out = to_html('<img src="http://evil.example/x.png"><script>alert(1)</script>')
    assert "<img" not in out and "<script" not in out
    assert "&lt;img" in out and "&lt;script&gt;" in out


def test_actions_are_italic_and_speech_is_highlighted():
    out = to_html('*She smiles.* "Welcome back."')
    assert "<i><span" in out and "She smiles.</span></i>" in out
    assert "&quot;Welcome back.&quot;</span>" in out


def test_bold_code_lists_and_quotes():
    out = to_html("**loud** and `*not an action*`\n- one\n- two\n> quoted")
    assert "<b>loud</b>" in out
    assert "<code>*not an action*</code>" in out
    assert out.count("<li>") == 2 and "<ul>" in out and "</ul>" in out
    assert "<blockquote>" in out and "quoted</span></blockquote>" in out


def test_lone_asterisks_are_left_alone():
    assert to_html("5 * 3 = 15") == "5 * 3 = 15"
