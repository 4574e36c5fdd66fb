"""What the MoE and encoder-decoder pages state, checked against what they compute and draw
(issue 21 item 8): the routes caption follows the loaded weights, neighbour sharing is the
replication card's statistic, the Mixtral totals are reconciled from the meta-device count, and
the timing caption states the numbers its figure draws."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from transformers import AutoConfig

from explorer.models.accounting import CONFIGS, account, dense_counterpart, explain_moe, explain_totals, gallery

TIMEOUT = 300
ROOT = Path(__file__).resolve().parent.parent
MIXTRAL = next(a for a in gallery() if a.name == "mixtral-8x7b")


def _page(module: str) -> AppTest:
    return AppTest.from_string(f"from explorer.ui import {module}\n{module}.render()\n", default_timeout=TIMEOUT)


def _no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _routes_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Every token's route"))


# --- the MoE page ---------------------------------------------------------------------------------


def test_routes_caption_says_random_weights_only_for_the_random_model():
    at = _page("moe_page").run()
    _no_errors(at)
    caption = _routes_caption(at)
    assert "random" not in caption.lower() and "Trained by this project" in caption
    at.sidebar.selectbox(key="moe_model_choice").set_value("embedded:tiny-random-moe").run()
    _no_errors(at)
    assert "random weights" in _routes_caption(at)
    # the neighbour-sharing metric is compared with the card's null (shuffled order), and says so on screen
    assert any(c.value.startswith("Neighbour sharing:") and "shuffled order" in c.value for c in at.caption)
    assert any("vs shuffled order" in str(m.proto.delta) for m in at.metric)


def test_neighbour_sharing_is_the_replication_cards_statistic():
    """The page's number, averaged over the card's prompt set, is the card's measured value."""
    from explorer.experiments import findings, readings
    from explorer.models.loading import load_model
    from explorer.ui import moe_page

    loaded = load_model("embedded:moe-tiny-austen", device="cpu")
    traces = readings.sentence_traces(loaded)
    card = next(c for c in findings.routing_cards(loaded, traces) if c.key == "same-first")
    page = [moe_page.neighbour_sharing(t.router) for t in traces]
    assert np.mean([shared for _per_layer, shared, _chance, _null in page]) == pytest.approx(card.measured)
    assert all(chance == card.chance == 1 / 8 for _per_layer, _shared, chance, _null in page)
    assert np.allclose(np.mean([per_layer for per_layer, _s, _c, _n in page], axis=0), card.by_layer)


# --- Mixtral's totals -----------------------------------------------------------------------------


def _mistral_7b():
    """Mistral 7B: Mixtral 8x7B's blocks with one dense FFN each (same dimensions, untied head). Counted as
    a Llama configuration, which has the same parameters (Mistral adds sliding-window attention, no weights)
    and which the explorer registers (a 'mistral' config would be counted without its output head)."""
    raw = json.loads((CONFIGS / "mixtral-8x7b.json").read_text())
    for key in ("_published", "model_type", "num_local_experts", "num_experts_per_tok"):
        raw.pop(key)
    return account(AutoConfig.for_model("llama", **raw), name="mistral-7b", untied_head=True)


def test_mixtral_totals_are_counted_not_typed():
    mistral = _mistral_7b()
    assert mistral.total == dense_counterpart(MIXTRAL) == 7_241_732_096  # Mistral 7B's parameter count
    assert f"{8 * mistral.total / 1e9:.1f}" == "57.9"
    assert f"{MIXTRAL.total / 1e9:.1f}" == "46.7" and f"{MIXTRAL.active / 1e9:.1f}" == "12.9"
    sentence = explain_totals(MIXTRAL)
    assert sentence.endswith(".") and ". " not in sentence  # one sentence
    for figure in ("8 × 7 B = 56 B", "7.24 B", "57.9 B", "46.7 B"):
        assert figure in sentence
    text = explain_moe(MIXTRAL)
    assert "arXiv:2401.04088" in text and "46.7 B total and 12.9 B active" in text
    assert "not the 57.9 B" not in text  # the old unreconciled wording


def test_presenter_mixtral_step_states_the_counted_totals():
    steps = json.loads((ROOT / "assets" / "presenter.json").read_text())["steps"]
    step = next(s for s in steps if "56 B" in s["title"] + s["say"])
    said = step["title"] + " " + step["say"]
    dense = dense_counterpart(MIXTRAL)
    for figure in (
        "8 × 7 B = 56 B",
        f"{dense / 1e9:.2f} B",
        f"{8 * dense / 1e9:.1f} B",
        f"{MIXTRAL.total / 1e9:.1f} B",
        f"{MIXTRAL.active / 1e9:.1f} B",
        "arXiv:2401.04088",
    ):
        assert figure in said, figure


# --- the encoder-decoder page's timing ------------------------------------------------------------


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, (pattern, text)
    return float(match.group(1))


def test_timing_caption_agrees_with_the_figure_on_the_translator():
    at = _page("seq2seq_page").run()
    _no_errors(at)
    assert at.session_state["seq2seq_model_choice"] == "embedded:marian-en-pt-tiny"
    specs = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    spec = next(s for s in specs if s["layout"]["title"]["text"].startswith("Measured time"))
    bars = spec["data"][0]
    drawn = np.asarray(bars["y"], dtype=float)
    encoder_ms, steps_ms = drawn[0], drawn[1:]
    caption = next(c.value for c in at.caption if c.value.startswith("Measured on this machine"))
    assert _number(r"one pass took ([\d.]+) ms \(median of \d+ passes\)", caption) == round(encoder_ms, 1)
    runs = _number(r"median of (\d+) passes", caption)
    assert runs >= 3 and f"median of {runs:.0f})" in spec["layout"]["title"]["text"]
    assert _number(r"its (\d+) steps", caption) == len(steps_ms) == len(at.session_state["s2s_generated"])
    assert _number(r"took (\d+) ms in all", caption) == round(steps_ms.sum())
    assert _number(r"([\d.]+) ms per step \(median\)", caption) == round(float(np.median(steps_ms)), 1)
    assert _number(r"\(([\d.]+)× the encoder pass\)", caption) == round(steps_ms.sum() / encoder_ms, 1)
    assert "the cost that grows with the output's length is the decoder's" in caption
    # the dashed line is the median step; the encoder bar is the median of its 5 runs, whiskers span them
    median_line = next(s for s in spec["layout"]["shapes"] if s.get("line", {}).get("dash") == "dash")
    assert median_line["y0"] == pytest.approx(np.median(steps_ms))
    low, high = bars["error_y"]["arrayminus"][0], bars["error_y"]["array"][0]
    assert low >= 0 and high >= 0
