"""Settings survive an invalid intermediate input (issue 26): on every page, set each setting drawn
below the text to a value other than its default, empty the text (the page stops before drawing
them), type the text again, and every setting is as it was."""

import pytest
from streamlit.testing.v1 import AppTest

TIMEOUT = 300
KINDS = ("slider", "number_input", "toggle", "selectbox")
PAGES = {  # page module -> its text key
    "encoder_page": "encoder_text",
    "decoder_page": "decoder_prompt",
    "seq2seq_page": "s2s_text",
    "moe_page": "moe_text",
}


def _page(module: str) -> AppTest:
    return AppTest.from_string(f"from explorer.ui import {module}\n{module}.render()\n", default_timeout=TIMEOUT)


def _change(widget) -> bool:
    """Move ``widget`` to a valid value other than its current one; False when it has only one."""
    kind = type(widget).__name__
    if kind == "Toggle":
        widget.set_value(not widget.value)
    elif kind in ("Slider", "NumberInput"):
        if isinstance(widget.value, (tuple, list)) or widget.min is None or widget.max is None:
            return False
        if widget.min == widget.max:
            return False
        widget.set_value(widget.max if widget.value != widget.max else widget.min)
    elif kind == "Selectbox":
        try:  # AppTest formats the value twice for a select box with a format_func: those it cannot set
            current = widget.index
        except ValueError:
            return False
        if len(widget.options) < 2:
            return False
        widget.set_value(widget.options[1 if current != 1 else 0])
        try:
            _ = widget.index  # raises when AppTest cannot format the value
        except ValueError:
            widget.set_value(None)  # back to untouched
            return False
    else:
        return False
    return True


@pytest.mark.parametrize("module", list(PAGES))
def test_settings_survive_an_empty_text(module):
    text_key = PAGES[module]
    at = _page(module).run()
    assert not at.exception, [e.value for e in at.exception]
    keys = [w.key for kind in KINDS for w in getattr(at, kind) if w.key and w.key != text_key]
    for key in keys:
        if key.endswith(("_model_choice", "_force_choice")):  # the model itself; a choice that depends on the step
            continue
        widget = next((w for kind in KINDS for w in getattr(at, kind) if w.key == key), None)
        if widget is None or widget.disabled or not _change(widget):
            continue
        at.run()
        assert not at.exception, (key, [e.value for e in at.exception])
    text = at.session_state[text_key]
    before = {k: at.session_state[k] for kind in KINDS for w in getattr(at, kind) if (k := w.key) and k != text_key}
    at.text_area(key=text_key).set_value("").run()
    assert any("empty" in w.value for w in at.warning)
    at.text_area(key=text_key).set_value(text).run()
    assert not at.exception, [e.value for e in at.exception]
    after = {k: at.session_state[k] for k in before if k in at.session_state}
    assert after == before
