"""The experiments page through Streamlit's AppTest, on the embedded defaults: every tool of every
family runs and shows its figure, the cards show a measured value beside chance, a family page
opens the page on its own model, and a shared link brings the experiment back."""

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer.text import plain
from explorer.ui.experiments import heads

TIMEOUT = 600
APP = str(Path(__file__).resolve().parent.parent / "app.py")


def experiments(family: str) -> AppTest:
    at = AppTest.from_string("from explorer.ui import experiments\nexperiments.render()\n", default_timeout=TIMEOUT)
    at.session_state["exp_family"] = family
    return at.run()


def healthy(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def figures(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def test_moe_tools_each_show_a_result():
    at = experiments("moe")
    healthy(at)
    assert at.radio(key="exp_tool").value == "routing"
    for action in ("Top-k sweep", "Drop experts", "Force an expert", "Route by token id only"):
        at.radio(key="exp_moe_action").set_value(action).run()
        if action == "Drop experts":
            at.multiselect(key="exp_drop").set_value([0]).run()
        healthy(at)
        assert figures(at) == 1, action
    for tool in ("sink", "patching"):
        at.radio(key="exp_tool").set_value(tool).run()
        healthy(at)
        assert figures(at) == 1, tool


def test_induction_heads_suggested_and_switched_off():
    at = experiments("moe")
    at.radio(key="exp_tool").set_value("heads").run()
    assert figures(at) == 0 and at.info  # nothing chosen yet: the page says what to do
    at.button(key="exp_suggest").click().run()
    healthy(at)
    assert len(at.session_state["exp_heads"]) == 3
    assert figures(at) == 1
    assert [m.label for m in at.metric] == ["Loss, unmodified", "Loss, modified", "Mean KL", "Top-1 flipped"]


def test_induction_demo_raises_the_loss_by_a_nat_on_the_decoder_default():
    at = experiments("decoder")
    at.radio(key="exp_tool").set_value("heads").run()
    at.button(key="exp_induction_demo").click().run()
    healthy(at)
    assert at.session_state["exp_text"] == heads.INDUCTION_DEMO
    assert len(at.session_state["exp_heads"]) == 3
    base, modified = (float(m.value.split()[0]) for m in at.metric[:2])
    assert modified - base >= 1.0, (base, modified)
    assert not any("no induction head" in c.value for c in at.caption)


def test_a_model_without_induction_heads_says_so():
    at = experiments("moe")
    at.radio(key="exp_tool").set_value("heads").run()
    healthy(at)
    assert any("no induction head" in c.value for c in at.caption)


def test_cards_wait_for_a_click_then_show_measured_beside_their_null_with_a_verdict():
    at = experiments("moe")
    at.radio(key="exp_tool").set_value("cards").run()
    assert figures(at) == 0
    button = at.button(key="exp_run_cards")
    assert re.search(r"\(about \d+ s\)$", button.label)  # the estimate, before the click
    assert any("estimated from the model's arithmetic per token" in c.value for c in at.caption)
    assert any("Verdict, one rule for every card" in m.value for m in at.markdown)
    button.click().run()
    healthy(at)
    table = at.table[0].value  # every cell escaped for Markdown (a card's name may hold a model's token)
    assert list(table.columns) == ["card", "measured ± sd over prompts", "null: mean / cut", "beyond the cut",
                                   "verdict", "chance"]  # fmt: skip
    same_first = table[table.card == plain("Mixtral: same first expert")].iloc[0]
    assert same_first.chance == plain("0.125")  # the analytic chance, beside the shuffled-positions null
    assert same_first.verdict == "not here"  # the finding: at its shuffled null, not above it
    assert all(n >= 10 for n in table["measured ± sd over prompts"].str.extract(r"\\\((\d+)\\\)$")[0].astype(int))
    papers = at.table[1].value
    assert "Table 5" in papers[papers.card == plain("Mixtral: same first expert")].iloc[0].source
    assert any(m.value.startswith("On this model, by that rule: **") for m in at.markdown)
    assert not any("cards." in c.value for c in at.caption)  # no code names in captions
    assert figures(at) == 3  # the overview, one card layer by layer, the head taxonomy


def test_encoder_patching_reads_the_masked_word():
    at = experiments("encoder")
    at.radio(key="exp_tool").set_value("patching").run()
    healthy(at)
    assert at.radio(key="exp_pair").value == "capital-mlm"
    assert figures(at) == 1


def test_translator_cross_attention_removal_changes_the_output():
    at = experiments("seq2seq")
    healthy(at)
    if "exp_use_translator" in [b.key for b in at.button]:  # the family's default reads speech
        at.button(key="exp_use_translator").click().run()
    at.session_state["exp_text"] = "The cat sat on the mat."
    at.run()
    at.select_slider(key="exp_span").set_range(1, 2).run()
    healthy(at)
    outputs = [m.value for m in at.markdown if m.value.startswith("Unmodified output")]
    assert outputs and "Without cross-attention to" in outputs[0]
    assert figures(at) == 1


def test_a_family_page_opens_experiments_on_its_model():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.sidebar.toggle(key="presenter").set_value(True).run()  # the tour's second step is the encoder page
    at.sidebar.button(key="presenter_next").click().run()
    assert at.title[0].value.startswith("Encoder-only")
    at.button(key="open_experiments").click().run()
    healthy(at)
    assert at.title[0].value.startswith("Experiments")
    assert at.session_state["exp_family"] == "encoder"
    assert figures(at) == 1  # the encoder's first experiment (sink removal) on the encoder's model


def test_shared_link_restores_family_tool_and_text():
    at = experiments("encoder")
    at.radio(key="exp_tool").set_value("heads").run()
    at.session_state["exp_text"] = "Rain had fallen all night."
    at.run()
    fresh = AppTest.from_string("from explorer.ui import experiments\nexperiments.render()\n", default_timeout=TIMEOUT)
    for name, value in at.query_params.items():
        fresh.query_params[name] = value if isinstance(value, str) else value[0]
    fresh.run()
    healthy(fresh)
    assert fresh.session_state["exp_family"] == "encoder"
    assert fresh.session_state["exp_tool"] == "heads"
    assert fresh.session_state["exp_text"] == "Rain had fallen all night."


def test_a_link_names_the_tool_by_its_slug_and_an_older_link_by_its_label_still_opens_it():
    at = experiments("encoder")
    at.radio(key="exp_tool").set_value("heads").run()
    assert at.query_params["tool"] in ("heads", ["heads"])
    old = AppTest.from_string("from explorer.ui import experiments\nexperiments.render()\n", default_timeout=TIMEOUT)
    old.query_params["family"], old.query_params["tool"] = "encoder", "Switch heads off"
    old.run()
    healthy(old)
    assert old.session_state["exp_tool"] == "heads"


def test_settings_survive_an_empty_or_too_short_text():
    at = experiments("moe")
    at.radio(key="exp_tool").set_value("heads").run()
    at.button(key="exp_suggest").click().run()
    at.radio(key="exp_head_mode").set_value("mean").run()
    healthy(at)
    heads = list(at.multiselect(key="exp_heads").value)
    assert len(heads) == 3 and figures(at) == 1
    text = at.text_area(key="exp_text").value
    for invalid in ("", "Hi"):  # empty, then 2 tokens (an intervention needs 3)
        at.text_area(key="exp_text").set_value(invalid).run()
        healthy(at)
        assert at.warning and figures(at) == 0  # the page says why instead of a result
        at.text_area(key="exp_text").set_value(text).run()
        healthy(at)
        assert at.multiselect(key="exp_heads").value == heads, invalid
        assert at.radio(key="exp_head_mode").value == "mean"
        assert figures(at) == 1
    # the routing settings too, and the text across a tool without one
    at.radio(key="exp_tool").set_value("routing").run()
    at.radio(key="exp_moe_action").set_value("Drop experts").run()
    at.multiselect(key="exp_drop").set_value([1, 5]).run()
    at.text_area(key="exp_text").set_value("").run()
    at.text_area(key="exp_text").set_value(text).run()
    healthy(at)
    assert at.radio(key="exp_moe_action").value == "Drop experts"
    assert at.multiselect(key="exp_drop").value == [1, 5]
    at.radio(key="exp_tool").set_value("patching").run()
    pairs = at.radio(key="exp_pair").options
    at.radio(key="exp_pair").set_value(pairs[-1]).run()
    at.radio(key="exp_tool").set_value("heads").run()
    healthy(at)
    assert at.text_area(key="exp_text").value == text
    assert at.multiselect(key="exp_heads").value == heads
    at.radio(key="exp_tool").set_value("patching").run()
    healthy(at)
    assert at.radio(key="exp_pair").value == pairs[-1] and figures(at) == 1


def test_the_hidden_source_span_survives_an_empty_text():
    at = experiments("seq2seq")
    if "exp_use_translator" in [b.key for b in at.button]:  # the family's default reads speech
        at.button(key="exp_use_translator").click().run()
    at.session_state["exp_text"] = "The cat sat on the mat."
    at.run()
    at.select_slider(key="exp_span").set_range(1, 2).run()
    at.text_area(key="exp_text").set_value("").run()
    assert at.warning and not at.get("select_slider")
    at.text_area(key="exp_text").set_value("The cat sat on the mat.").run()
    healthy(at)
    assert tuple(at.select_slider(key="exp_span").value) == (1, 2)


def test_a_refused_routing_is_a_sentence_saying_what_is_possible():
    at = experiments("moe")
    at.radio(key="exp_moe_action").set_value("Drop experts").run()
    at.multiselect(key="exp_drop").set_value(list(range(7))).run()  # 7 of 8 experts with top-2 routing
    healthy(at)
    refusal = "Top-2 routing needs at least 2 experts left: at most 6 of the 8 can be dropped."
    assert refusal in [w.value for w in at.warning]
    assert figures(at) == 0
    at.multiselect(key="exp_drop").set_value(list(range(6))).run()
    healthy(at)
    assert refusal not in [w.value for w in at.warning] and figures(at) == 1
