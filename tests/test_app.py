"""Page logic through Streamlit's AppTest, on the embedded default models."""

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

TIMEOUT = 300


def _page(module: str) -> AppTest:
    at = AppTest.from_string(f"from explorer.ui import {module}\n{module}.render()\n", default_timeout=TIMEOUT)
    return at


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_app_navigation_runs():
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=TIMEOUT).run()
    no_errors(at)
    assert "LLM architecture explorer" in at.title[0].value


def test_encoder_page_traces_text():
    at = _page("encoder_page").run()
    no_errors(at)
    assert at.session_state["encoder_text"]
    at.text_area(key="encoder_text").set_value("The river bank was muddy.").run()
    no_errors(at)
    assert any("`bank`" in m.value for m in at.markdown)


def test_encoder_page_rejects_empty_text():
    at = _page("encoder_page").run()
    at.text_area(key="encoder_text").set_value("   ").run()
    assert not at.exception
    assert any("empty" in w.value for w in at.warning)


def test_decoder_page_step_and_back():
    at = _page("decoder_page").run()
    no_errors(at)
    generated = list(at.session_state["decoder_generated"])
    assert len(generated) == 8  # the page opens with 8 generated tokens
    at.button(key="decoder_step").click().run()
    no_errors(at)
    assert len(at.session_state["decoder_generated"]) == 9
    at.button(key="decoder_back").click().run()
    at.button(key="decoder_back").click().run()
    assert list(at.session_state["decoder_generated"]) == generated[:7]


def test_decoder_page_play_appends_ten_tokens_one_run_each():
    at = _page("decoder_page").run()
    at.button(key="decoder_play").click().run()  # AppTest follows the page's reruns: one per token
    no_errors(at)
    assert len(at.session_state["decoder_generated"]) == 18
    assert at.session_state["decoder_playing"] == 0
    assert at.button(key="decoder_play").label.startswith("Play")
    at.button(key="decoder_step").click().run()
    assert len(at.session_state["decoder_generated"]) == 19


def test_decoder_page_greedy_says_paris():
    at = _page("decoder_page").run()
    text = "".join(h.proto.body for h in at.get("html"))
    assert "Paris" in text


def test_seq2seq_page_opens_on_the_translator():
    at = _page("seq2seq_page").run()
    no_errors(at)
    assert at.radio(key="s2s_input_kind").value == "Text → Portuguese (translator)"
    assert at.text_area(key="s2s_text").value == "My sister lives in a small town near the sea."
    assert at.code[0].value.strip() not in ("", "(nothing yet)")


def test_seq2seq_page_transcribes_the_example_clip():
    at = _page("seq2seq_page").run()
    at.radio(key="s2s_input_kind").set_value("Speech → English text (Whisper)").run()
    no_errors(at)
    assert "Hello, my name is Whisper and I turn speech into text." in at.code[0].value


def test_seq2seq_input_kinds_switch_between_translator_and_whisper():
    at = _page("seq2seq_page").run()
    at.radio(key="s2s_input_kind").set_value("Speech → English text (Whisper)").run()
    at.radio(key="s2s_input_kind").set_value("Text → Portuguese (translator)").run()
    no_errors(at)
    assert at.session_state["seq2seq_model_choice"] == "embedded:marian-en-pt-tiny"
    assert at.text_area(key="s2s_text").value == "My sister lives in a small town near the sea."
    assert at.code[0].value.strip() not in ("", "(nothing yet)")  # the page opens with the translation written
    assert any("alignment matrix" in c.value for c in at.caption)
    at.radio(key="s2s_input_kind").set_value("Speech → English text (Whisper)").run()
    no_errors(at)
    assert at.session_state["seq2seq_model_choice"] == "embedded:whisper-tiny.en"


def test_moe_page_routes_every_token():
    at = _page("moe_page").run()
    no_errors(at)
    assert any("Trained by this project" in w.value for w in at.sidebar.warning)
    assert any("8 experts" in m.value for m in at.markdown)
    # the project's MoE comes with its training curves against the dense twin
    assert any("dense twin" in str(t.value) for t in at.table)


def test_moe_page_labels_the_random_model():
    at = _page("moe_page").run()
    at.sidebar.selectbox(key="moe_model_choice").set_value("embedded:tiny-random-moe").run()
    no_errors(at)
    assert any("RANDOM weights" in w.value for w in at.sidebar.warning)


def test_unknown_model_id_gives_one_sentence_and_keeps_previous_model():
    at = _page("decoder_page").run()
    at.sidebar.selectbox(key="decoder_model_choice").set_value("Other Hugging Face id…").run()
    at.sidebar.text_input(key="decoder_model_custom").set_value("no-such-user/no-such-model-xyz").run()
    assert not at.exception
    assert at.error and "no-such-user/no-such-model-xyz" in re.sub(r"\\(.)", r"\1", at.error[0].value)  # shown escaped
    assert "Traceback" not in at.error[0].value
    assert any("previous model" in i.value for i in at.info)


def test_shared_link_restores_text_and_decoding_step():
    at = _page("decoder_page")
    at.query_params["text"] = "Once upon a time"
    at.query_params["tokens"] = "11, 2158"  # the generated token ids the link carries
    at.run()
    no_errors(at)
    assert at.text_area(key="decoder_prompt").value == "Once upon a time"
    assert list(at.session_state["decoder_generated"]) == [11, 2158]
    at.button(key="decoder_step").click().run()
    assert len(at.session_state["decoder_generated"]) == 3
    tokens = at.query_params["tokens"]
    assert (tokens if isinstance(tokens, str) else tokens[0]).count(",") == 2


def test_classroom_mode_enlarges_figures():
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=TIMEOUT).run()
    at.sidebar.toggle(key="classroom").set_value(True).run()
    no_errors(at)
    assert at.session_state["classroom_on"] is True


def test_compare_page_runs_all_four_families():
    at = _page("compare_page").run()
    no_errors(at)
    table = at.table[0].value
    assert len(table) == 4 and (table["decoder steps"].astype(str) != "0").any()


def test_gallery_page_counts_mixtral():
    at = _page("gallery_page").run()
    no_errors(at)
    assert any("46.70 B" in m.value for m in at.markdown)


def _mask_charts(at) -> dict[str, list[str]]:
    """Title -> candidate labels of every masked-position figure on the page."""
    import json

    charts = {}
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        title = spec.get("layout", {}).get("title", {}).get("text", "")
        if title.startswith("Position"):
            charts[title] = [label.strip() for label in spec["data"][0]["y"]]
    return charts


def test_masking_a_word_changes_the_predictions():
    at = _page("encoder_page").run()
    at.text_area(key="encoder_text").set_value("The dog barked at the cat all night.").run()
    no_errors(at)
    assert _mask_charts(at) == {}
    at.multiselect(key="encoder_mask_positions").set_value([2]).run()  # 'dog'
    no_errors(at)
    ((title_dog, dog),) = _mask_charts(at).items()
    assert "was 'dog'" in title_dog and len(dog) == 10
    at.multiselect(key="encoder_mask_positions").set_value([6]).run()  # 'cat'
    no_errors(at)
    ((title_cat, cat),) = _mask_charts(at).items()
    assert "was 'cat'" in title_cat and cat != dog


def test_typed_mask_token_gets_predictions_without_selection():
    at = _page("encoder_page").run()
    at.text_area(key="encoder_text").set_value("Paris is the [MASK] of France.").run()
    no_errors(at)
    ((title, candidates),) = _mask_charts(at).items()
    assert title.startswith("Position 4") and "capital" in candidates[:5]


def test_presenter_tour_steps_through_views():
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=TIMEOUT).run()
    at.sidebar.toggle(key="presenter").set_value(True).run()
    no_errors(at)
    assert any("Step 1 of" in m.value for m in at.sidebar.markdown)
    at.sidebar.button(key="presenter_next").click().run()
    no_errors(at)
    assert at.session_state["presenter_index"] == 1
    assert at.session_state["encoder_text"] == "She sat on the bank of the river."
    assert any("Step 2 of" in m.value for m in at.sidebar.markdown)
