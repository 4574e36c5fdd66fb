"""The presenter tour (issue 21, items 2 and 4): every step names the figure it narrates, the tour
lands on it, and every claim its narration makes about the embedded default models is measured here
on those models. The claims are data in assets/presenter.json ("expect"); an unknown kind of claim
fails, so no claim goes unchecked."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.adapters import attribution, decoder, encoder, interventions, moe, seq2seq
from explorer.adapters.common import tokenize
from explorer.adapters.compare import run_family
from explorer.decoding import depth_readout, softmax
from explorer.plots import encoder as encoder_plots
from explorer.registry import FAMILIES
from explorer.ui.presenter import landing, tour

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300
KNOWN = {
    "same_word",
    "top1",
    "cut",
    "lens_first_depth",
    "top1_probability",
    "translation",
    "band_steps_back",
    "experts",
    "top_k",
    "first_token_share",
    "loss_rises",
    "flips",
    "no_end_token_first",
    "translation_starts",
    "opening_tokens",
    "attribution_top_word",
    "completeness_below",
    "none_beats_random",
}
STEPS = [s for s in tour() if s.get("expect")]


def test_every_step_but_the_home_page_names_the_figure_it_narrates():
    for step in tour():
        if step["page"] == "home":  # the home page draws no figure: the tour stays at its top
            assert "figure" not in step
            continue
        if step["page"] == "lessons":  # a lab asks before it shows: the tour lands on the step's question
            assert "figure" not in step and step["anchor"] == "lessons_question", step["title"]
            continue
        assert re.fullmatch(r"[a-z0-9_]+", step.get("figure", "")), step["title"]


def test_every_claim_is_of_a_kind_this_file_checks():
    assert STEPS
    for step in STEPS:
        assert set(step["expect"]) <= KNOWN, (step["title"], set(step["expect"]) - KNOWN)


def _mask_top(loaded, text: str) -> tuple[list[str], np.ndarray]:
    """Top words at the (one) masked position, best first, and the lens's top id at every depth."""
    trace = encoder.trace_text(loaded, text, with_logits=False)
    (position,) = np.flatnonzero(trace.token_ids == loaded.tokenizer.mask_token_id)
    lens = encoder.mlm_lens(loaded, trace.hidden_states[:, position])
    probs = softmax(lens[-1])
    words = [loaded.tokenizer.decode([int(i)]) for i in np.argsort(-probs)[:5]]
    return words, depth_readout(lens).top_ids


def _step(page: str, claim: str) -> dict:
    return next(s for s in STEPS if s["page"] == page and claim in s["expect"])


def test_bank_drifts_apart_as_the_step_says(models):
    from explorer.ui import encoder_page

    step = _step("encoder", "same_word")
    claim = step["expect"]["same_word"]
    defaults = {k: p.default for k, p in inspect.signature(encoder_page._same_word).parameters.items() if k != "loaded"}
    assert defaults["word"] == claim["word"] and defaults["sentences"][0] == step["text"]
    loaded = models("encoder")
    traces = {s: encoder.trace_text(loaded, s, with_logits=False) for s in defaults["sentences"]}
    assert all(t.tokens.index(claim["word"]) == 5 for t in traces.values())  # "it is the 5th token" in all of them
    money, stream = (np.asarray(line.y, dtype=float) for line in encoder_plots.same_word_by_depth(traces, "bank").data)
    assert [money[0], stream[0]] == pytest.approx([claim["depth0"]] * 2, abs=1e-6)
    assert money[-1] == pytest.approx(claim["last_about"], abs=0.05)
    assert stream[-1] == pytest.approx(claim["same_sense_last_about"], abs=0.03)
    assert money[-1] < money[0] and money[-1] < stream[-1] - 0.2


def test_masked_word_claims(models):
    step = _step("encoder", "top1")
    claim = step["expect"]
    loaded = models("encoder")
    words, lens_top = _mask_top(loaded, step["text"])
    assert words[0] == claim["top1"], words
    cut_words, _ = _mask_top(loaded, claim["cut"]["text"])
    assert cut_words[0] == claim["cut"]["top1"], cut_words
    assert step["text"].startswith(claim["cut"]["text"])
    answer = loaded.tokenizer.convert_tokens_to_ids(claim["top1"])
    assert claim["lens_first_depth"] == "last"  # "ranked first only after the last block"
    assert lens_top[-1] == answer and answer not in lens_top[:-1].tolist()


def test_decoder_first_step_claims(models):
    step = _step("decoder", "top1")
    loaded = models("decoder")
    ids, _ = decoder.prompt_ids(loaded, step["text"])
    probs = softmax(decoder.step(loaded, ids).logits)
    top = int(np.argmax(probs))
    assert loaded.tokenizer.decode([top]) == step["expect"]["top1"]
    low, high = step["expect"]["top1_probability"]
    assert low <= probs[top] <= high, probs[top]


def test_translation_is_the_teachers_and_its_band_steps_back(models):
    from explorer.train.teacher import RawTeacher

    step = _step("encoder-decoder", "translation")
    loaded = models("seq2seq")
    encoded = seq2seq.encode_text(loaded, step["text"])
    output_ids = seq2seq.greedy_decode(loaded, encoded)
    translation = loaded.tokenizer.decode(output_ids, skip_special_tokens=True)
    assert translation == step["expect"]["translation"] == RawTeacher()(step["text"])
    assert step["expect"]["translation"] in step["say"]
    # the cross-attention matrix the page draws (mean over blocks and heads): the source token each row reads most
    ids = np.concatenate([seq2seq.start_ids(loaded), output_ids])
    trace = seq2seq.trace(loaded, encoded, ids)
    reads = [trace.encoder.tokens[i] for i in trace.cross_attentions.mean(axis=(0, 1)).argmax(-1)]
    first, then = step["expect"]["band_steps_back"]
    assert any(a == first and b == then for a, b in zip(reads, reads[1:])), reads
    assert trace.encoder.tokens.index(then) < trace.encoder.tokens.index(first)  # back: 'black' comes before 'cat'


def test_moe_routes_two_of_eight(models):
    step = _step("moe", "experts")
    loaded = models("moe")
    router = moe.trace_text(loaded, step["text"]).router
    assert router.num_experts == step["expect"]["experts"] and router.top_k == step["expect"]["top_k"]
    assert f"{router.top_k} of {router.num_experts}" in step["say"]


def test_attention_sink_claims(models):
    step = _step("experiments", "first_token_share")
    loaded = models("decoder")
    assert step["state"]["exp_family"] == "decoder"
    ids, _ = tokenize(loaded, step["state"]["exp_text"])
    attentions = decoder.trace_ids(loaded, ids).attentions  # [L, H, T, T]
    share = float(attentions[:, :, 1:, 0].mean())  # the later tokens' attention on the first token
    low, high = step["expect"]["first_token_share"]
    assert low <= share <= high, share
    result = interventions.sink_removal(loaded, np.asarray(ids))
    assert result.modified_loss > result.base_loss
    assert int(result.flipped.sum()) >= 1


def test_attribution_claims(models):
    step = _step("experiments", "attribution_top_word")
    loaded, text = models("decoder"), step["state"]["exp_text"]
    ids, _ = tokenize(loaded, text)
    verdicts = []
    for method in attribution.METHODS:
        mapped = attribution.explain(loaded, ids, None, method, baseline="zero")
        verdicts.append(attribution.faithfulness(loaded, mapped, orders=20).beats_random)
        if method == "integrated_gradients":
            words, scores = attribution.word_scores(mapped, loaded.tokenizer, text)
            assert words[int(np.argmax(scores))].strip("␣ ") == step["expect"]["attribution_top_word"]
            assert mapped.completeness_error < step["expect"]["completeness_below"]
            assert loaded.tokenizer.decode([mapped.target.token_id]) == " Paris"
    assert step["expect"]["none_beats_random"] and not any(verdicts)


def test_compare_step_outputs_start_with_words(models):
    step = _step("compare", "no_end_token_first")
    outputs = {}
    for family in FAMILIES:
        loaded = models(family)
        run = run_family(loaded, step["text"])
        if run.step_seconds:  # the families that write
            specials = [t for t in loaded.tokenizer.all_special_tokens if t]
            assert not any(run.output.startswith(t) for t in specials), (family, run.output)
            assert run.output.strip(), family
            outputs[family] = run.output
    assert set(outputs) == {"decoder", "seq2seq", "moe"}
    assert outputs["seq2seq"].startswith(step["expect"]["translation_starts"])


def test_the_tour_lands_on_every_figure_it_names(models):
    """Through the app, step by step: each move draws the step's figure and sends the script that scrolls to it."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.sidebar.toggle(key="presenter").set_value(True).run()
    for n, step in enumerate(tour()[1:], start=2):
        at.sidebar.button(key="presenter_next").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.session_state["presenter_index"] == n - 1
        if step.get("anchor"):  # a lab's step: its question, asked of the learner, with the lab and step the tour set
            assert at.session_state["lessons_lab"] == step["state"]["lessons_lab"]
            assert at.session_state["lessons_step"] == step["state"]["lessons_step"]
            assert any(m.value.startswith("### ") for m in at.markdown), step["title"]
            assert [r.label for r in at.radio] == ["Your prediction"], step["title"]  # asked, not yet answered
        else:
            charts = [c.proto.id for c in at.get("plotly_chart")]
            assert any(c.endswith("-" + step["figure"]) for c in charts), (step["title"], charts)
        if "opening_tokens" in step.get("expect", {}):  # "the page has already written 8 tokens; the first, ' Paris'"
            generated = list(at.session_state["decoder_generated"])
            assert len(generated) == step["expect"]["opening_tokens"]
            assert models("decoder").tokenizer.decode(generated[:1]) == step["expect"]["top1"]
        scripts = [h.proto.body for h in at.sidebar.get("html")]
        assert any(f'const key = "{landing(step)}", move = {n - 1};' in s for s in scripts), step["title"]
