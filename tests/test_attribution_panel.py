"""The attribution panel on every family page (issue 25), through AppTest on the embedded defaults: it waits
for a click, then shows the map and its faithfulness curves with their numbers, and its settings are declared
for links."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from explorer.ui import decoder_page, encoder_page, moe_page, seq2seq_page

TIMEOUT = 600
PAGES = {  # module name, state-key prefix, text to set (None: the page's default), target index
    "decoder": ("decoder_page", "decoder", None, 0),
    "encoder": ("encoder_page", "encoder", ("encoder_text", "Paris is the [MASK] of France."), 0),
    "seq2seq": ("seq2seq_page", "s2s", None, 2),
    "moe-next": ("moe_page", "moe", None, 0),
    "moe-router": ("moe_page", "moe", None, 1),
}


def _page(module: str, text) -> AppTest:
    at = AppTest.from_string(f"from explorer.ui import {module}\n{module}.render()\n", default_timeout=TIMEOUT)
    if text:
        at.session_state[text[0]] = text[1]
    return at.run()


def _charts(at: AppTest) -> list[str]:
    return [c.proto.id for c in at.get("plotly_chart")]


@pytest.mark.parametrize("case", list(PAGES))
def test_the_panel_explains_on_a_click_and_tests_its_map(case):
    module, prefix, text, target = PAGES[case]
    at = _page(module, text)
    assert not at.exception, at.exception
    assert not any(f"{prefix}_attr_strip" in c for c in _charts(at))  # nothing runs before the click
    if target:
        at.selectbox(key=f"{prefix}_attr_target").set_value(target).run()
    at.button(key=f"{prefix}_attr_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    charts = _charts(at)
    assert any(f"{prefix}_attr_strip" in c for c in charts) and any(f"{prefix}_attr_curves" in c for c in charts)
    labels = [m.label for m in at.metric]
    assert {"Target probability", "Comprehensiveness (AOPC)", "Sufficiency"} <= set(labels)
    assert any("random orders" in c.value for c in at.caption)
    assert at.session_state[f"{prefix}_attr_on"] is True


@pytest.mark.parametrize("module", [decoder_page, encoder_page, moe_page, seq2seq_page])
def test_every_panel_setting_is_declared_for_links(module):
    prefix = {"decoder_page": "decoder", "encoder_page": "encoder", "moe_page": "moe", "seq2seq_page": "s2s"}[
        module.__name__.rsplit(".", 1)[1]
    ]
    for name in ("method", "baseline", "steps", "words", "on", "target"):
        assert module.VIEW.declares(f"{prefix}_attr_{name}")


def _experiments(family: str, text: str | None = None) -> AppTest:
    at = AppTest.from_string("from explorer.ui import experiments\nexperiments.render()\n", default_timeout=TIMEOUT)
    at.session_state["exp_family"] = family
    at.session_state["exp_tool"] = "attribution"
    if text:
        at.session_state["exp_text"] = text
    return at.run()


def test_the_experiments_tool_compares_the_four_methods_each_tested():
    at = _experiments("decoder", "The capital of France is")
    at.button(key="exp_attr_run").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    table = at.dataframe[0].value
    assert len(table) == 4 and set(table["beats random"]) <= {"yes", "partly", "no"}
    completeness = table[table.method == "Integrated gradients"]["completeness error"].iloc[0]
    assert float(completeness.rstrip("%")) <= 5.0  # the decoder default's prompt at the default 32 steps
    assert any("exp_attr_heatmap" in c for c in _charts(at))


def test_the_experiments_tool_sets_a_translation_matrix_beside_cross_attention():
    at = _experiments("seq2seq")
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert any("exp_attr_matrix" in c for c in _charts(at))


def test_an_encoder_without_a_mask_is_told_what_to_type():
    at = _experiments("encoder", "The cat sat on the mat.")
    at.button(key="exp_attr_run").click().run()
    assert not at.exception
    assert any("mask" in w.value.lower() for w in at.warning), [w.value for w in at.warning]
