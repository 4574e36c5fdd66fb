"""Figure functions on small hand-made traces (no torch, no model)."""

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from explorer.decoding import SamplingSettings, choose_token, drawn_distribution, rules_text, softmax
from explorer.plots import decoding, encoder, moe, seq2seq
from explorer.plots.common import VALIDATE_ENV, pca_2d, unique_labels
from explorer.trace import ForwardTrace, RouterTrace

RNG = np.random.default_rng(0)
TOKENS = ("[CLS]", "the", "<b>bank</b>", "the", "[SEP]")


def make_trace(causal=False, layers=3, heads=2, d=8):
    t = len(TOKENS)
    attn = RNG.random((layers, heads, t, t))
    if causal:
        attn = attn * np.tril(np.ones((t, t)))
    attn /= attn.sum(-1, keepdims=True)
    return ForwardTrace(
        tokens=TOKENS,
        token_ids=np.arange(t),
        hidden_states=RNG.standard_normal((layers + 1, t, d)),
        attentions=attn,
        logits=None,
        causal=causal,
    )


def make_router(m=2, t=len(TOKENS), e=4, k=2):  # noqa: B008 (TOKENS is a constant tuple)
    probs = RNG.random((m, t, e))
    probs /= probs.sum(-1, keepdims=True)
    chosen = np.argsort(-probs, -1)[..., :k]
    gates = np.take_along_axis(probs, chosen, -1)
    return RouterTrace(
        layer_indices=np.arange(m),
        probs=probs,
        chosen=chosen,
        gates=gates / gates.sum(-1, keepdims=True),
        kept=np.ones_like(chosen, dtype=bool),
        top_k=k,
    )


def test_pca_recovers_a_planar_cloud():
    plane = RNG.standard_normal((50, 2)) @ RNG.standard_normal((2, 10))
    coords, ratio = pca_2d(plane)
    assert coords.shape == (50, 2) and ratio.sum() == pytest.approx(1.0)


def test_labels_are_unique_and_escaped():
    labels = unique_labels(TOKENS)
    assert len(set(labels)) == len(TOKENS)
    assert "&lt;b&gt;bank&lt;/b&gt;" in labels[2]


def test_trajectories_one_line_per_token_on_one_projection():
    fig = encoder.token_trajectories(make_trace())
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == len(TOKENS)
    assert all(len(tr.x) == 4 for tr in fig.data)  # L+1 depths


def test_similarity_is_one_on_the_diagonal():
    fig = encoder.cosine_similarity_matrix(make_trace(), 2)
    assert np.allclose(np.diag(np.asarray(fig.data[0].z)), 1.0)
    with pytest.raises(ValueError):
        encoder.cosine_similarity_matrix(make_trace(), 9)


def test_attention_heatmap_head_and_average():
    trace = make_trace()
    avg = np.asarray(encoder.layer_attention(trace, 1, None).data[0].z)
    assert np.allclose(avg, trace.attentions[1].mean(0))
    one = np.asarray(encoder.layer_attention(trace, 1, 0).data[0].z)
    assert np.allclose(one, trace.attentions[1, 0])


def test_attention_heatmap_checks_shapes():
    with pytest.raises(ValueError):
        encoder.attention_heatmap(TOKENS, np.ones((3, 3)), "bad")


def test_next_token_bars_marks_chosen_and_removed():
    probs = np.array([0.5, 0.3, 0.2])
    fig = decoding.next_token_bars(probs, np.array([True, True, False]), 1, {0: "a", 1: "b", 2: "c"})
    colours = list(fig.data[0].marker.color)
    assert colours == ["#0072B2", "#E69F00", "#BBBBBB"]


def test_next_token_bars_adds_a_chosen_token_outside_the_top():
    probs = np.linspace(1, 0.01, 40)
    probs /= probs.sum()
    fig = decoding.next_token_bars(probs, np.ones(40, bool), 39, {}, top=5)
    assert len(fig.data[0].x) == 6


def bar_values(fig: go.Figure) -> dict[str, dict[int, float]]:
    """What sampling_bars draws, read back from the figure: {'raw' | 'drawn': {token id: bar length}}."""
    values: dict[str, dict[int, float]] = {"raw": {}, "drawn": {}}
    for trace in fig.data:
        side = "raw" if trace.offset < 0 else "drawn"
        for x, custom in zip(trace.x, trace.customdata, strict=True):
            values[side][int(custom[1])] = float(x)
    return values


def sampling_figure(logits: np.ndarray, rules: SamplingSettings, step_index: int = 0, top: int = 15) -> go.Figure:
    raw, (drawn, kept) = softmax(logits), drawn_distribution(logits, rules)
    marked = choose_token(logits, rules, step_index)
    ids = decoding.shown_tokens(raw, drawn, top=top, marked=marked)
    return decoding.sampling_bars(
        raw,
        drawn,
        kept,
        ids,
        {int(i): f"t{i}" for i in ids},
        rules_text(rules),
        rules.greedy,
        marked=marked,
        marked_is_next=True,
    )


SYNTHETIC = (np.random.default_rng(3).standard_normal(500) * 2.5).astype(np.float32)  # [V]


def test_sampling_bars_sharpen_and_flatten_with_temperature():
    tops = []
    for t in (0.1, 1.0, 2.0):
        drawn = bar_values(sampling_figure(SYNTHETIC, SamplingSettings(greedy=False, temperature=t)))["drawn"]
        tops.append(drawn[int(SYNTHETIC.argmax())])
    assert tops[0] > tops[1] > tops[2]
    raw = bar_values(sampling_figure(SYNTHETIC, SamplingSettings(greedy=False, temperature=2.0)))["raw"]
    assert raw[int(SYNTHETIC.argmax())] == pytest.approx(float(softmax(SYNTHETIC).max()))  # grey stays at T=1


def test_sampling_bars_show_removed_tokens_hatched_at_zero():
    rules = SamplingSettings(greedy=False, top_k=3)
    fig = sampling_figure(SYNTHETIC, rules)
    values = bar_values(fig)
    kept = set(np.argsort(-SYNTHETIC)[:3].tolist())
    assert len(values["raw"]) == 15 and set(values["raw"]) == set(values["drawn"])
    assert all(values["drawn"][i] == 0 for i in values["drawn"] if i not in kept)
    assert sum(values["drawn"][i] for i in kept) == pytest.approx(1.0)
    hatched = [t for t in fig.data if t.marker.pattern.shape == "/"]
    assert len(hatched) == 1 and {int(c[1]) for c in hatched[0].customdata} == set(values["raw"]) - kept
    assert "top-k=3" in fig.layout.title.text and "hatched" in fig.layout.title.text


def test_sampling_bars_mark_the_next_token_in_orange():
    rules = SamplingSettings(greedy=False, temperature=1.5, seed=4)
    marked = choose_token(SYNTHETIC, rules, 2)
    fig = sampling_figure(SYNTHETIC, rules, step_index=2)
    orange = [t for t in fig.data if t.marker.color == decoding.CHOSEN_ORANGE]
    assert len(orange) == 1 and [int(c[1]) for c in orange[0].customdata] == [marked]
    assert orange[0].name == f"next: t{marked} (what Step will choose)"
    assert any(f"next ▶ t{marked}" in tick for tick in fig.layout.yaxis.ticktext)


def test_sampling_bars_say_greedy_puts_everything_on_the_top_token():
    fig = sampling_figure(SYNTHETIC, SamplingSettings(greedy=True, temperature=0.2))
    drawn = bar_values(fig)["drawn"]
    top = int(SYNTHETIC.argmax())
    assert drawn[top] == 1.0 and sum(drawn.values()) == 1.0
    assert "Greedy" in fig.layout.title.text and f"t{top}" in fig.layout.title.text
    assert fig.layout.title.text.startswith("Next-token distribution")  # what test_browser waits for on /decoder


def test_shown_tokens_take_the_top_of_both_distributions():
    raw = np.array([0.4, 0.3, 0.2, 0.05, 0.03, 0.02])
    drawn = np.array([0.0, 0.0, 0.0, 0.6, 0.3, 0.1])  # the raw top suppressed
    assert decoding.shown_tokens(raw, drawn, top=4).tolist() == [0, 1, 3, 4]
    assert decoding.shown_tokens(raw, drawn, top=2, marked=5).tolist() == [0, 3, 5]
    assert decoding.shown_tokens(raw, raw, top=3).tolist() == [0, 1, 2]


def test_context_attention_and_history():
    last = RNG.random((2, 3, 4))
    fig = decoding.context_attention(["a", "b", "c", "d"], last, 1)
    assert np.allclose(fig.data[0].y, last[1].mean(0))
    hist = decoding.step_history([1.0, 2.0], [0.5, 0.9], ["x", "y"])
    assert len(hist.data) == 2
    with pytest.raises(ValueError):
        decoding.step_history([1.0], [0.5, 0.9], ["x", "y"])


def test_cross_attention_pools_audio_frames_keeping_mass():
    cross = RNG.random((2, 3, 4, 1500))
    cross /= cross.sum(-1, keepdims=True)
    frames = tuple(f"{i * 0.02:.2f}s" for i in range(1500))
    fig = seq2seq.cross_attention_heatmap(["a", "b", "c", "d"], frames, cross, None, source_kind="audio")
    z = np.asarray(fig.data[0].z)
    assert z.shape[1] <= seq2seq.MAX_COLUMNS
    assert np.allclose(z.sum(1), 1.0)


def test_cross_attention_text_and_limit():
    cross = RNG.random((2, 3, 4, 6))
    fig = seq2seq.cross_attention_heatmap(list("abcd"), list("uvwxyz"), cross, 0, source_positions=3)
    assert np.asarray(fig.data[0].z).shape == (4, 3)


def test_encoder_vs_decoder_time():
    fig = seq2seq.encoder_vs_decoder_time(0.5, [0.1, 0.2])
    assert list(fig.data[0].y) == pytest.approx([500, 100, 200])


def test_route_map_has_a_cell_per_token_and_layer():
    router = make_router()
    fig = moe.route_map(TOKENS, router)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, len(TOKENS))
    assert np.array_equal(z, router.chosen[..., 0])


def test_expert_load_sums_to_one_per_layer():
    router = make_router()
    assert np.allclose(router.expert_load().sum(1), 1.0)
    fig = moe.expert_load(router)
    assert len(fig.data) == 2


def test_router_distribution_highlights_chosen():
    fig = moe.router_distribution("x", np.array([0.1, 0.6, 0.3]), np.array([1, 2]), 0)
    assert list(fig.data[0].marker.color) == ["#0072B2", "#E69F00", "#E69F00"]


def test_trace_contract_rejects_inconsistent_shapes():
    with pytest.raises(ValueError):
        ForwardTrace(
            tokens=("a", "b"),
            token_ids=np.arange(3),
            hidden_states=np.zeros((2, 2, 4)),
            attentions=None,
            logits=None,
            causal=True,
        )
    with pytest.raises(ValueError):
        ForwardTrace(
            tokens=("a", "b"),
            token_ids=np.arange(2),
            hidden_states=np.zeros((3, 2, 4)),
            attentions=np.zeros((3, 1, 2, 2)),
            logits=None,
            causal=True,
        )


def test_trajectories_3d():
    fig = encoder.token_trajectories(make_trace(), dims=3)
    assert fig.data[0].type == "scatter3d" and len(fig.data[0].z) == 4


def test_pair_similarity_is_one_for_the_same_token():
    fig = encoder.pair_similarity_by_depth(make_trace(), 1, 1)
    assert np.allclose(fig.data[0].y, 1.0)


def test_entropy_overview_bounds():
    trace = make_trace()
    z = np.asarray(encoder.attention_entropy_overview(trace).data[0].z)
    assert z.shape == (3, 2) and (z >= 0).all() and (z <= np.log2(len(TOKENS)) + 1e-6).all()


def test_mask_comparison_shows_both_masks():
    fig = encoder.mask_comparison(TOKENS)
    bidirectional, causal = (np.asarray(d.z) for d in fig.data)
    assert bidirectional.sum() == len(TOKENS) ** 2
    assert causal.sum() == len(TOKENS) * (len(TOKENS) + 1) / 2


def test_depth_lens():
    fig = decoding.depth_lens(["a", "b", "c"], np.array([0.2, 0.5, 0.9]), "c", np.array([0.0, 0.3, 0.9]), "lens")
    assert list(fig.data[1].y) == [0.0, 0.3, 0.9]
    with pytest.raises(ValueError):
        decoding.depth_lens(["a"], np.array([0.2, 0.5]), "c", np.array([0.0]), "lens")


def test_sankey_flows_conserve_tokens():
    router = make_router(m=3)
    fig = moe.expert_flow_sankey(router)
    assert sum(fig.data[0].link.value) == 2 * len(TOKENS)  # every token flows once per layer gap


def test_coactivation_diagonal_counts_picks():
    router = make_router()
    z = np.asarray(moe.coactivation_matrix(router).data[0].z)
    assert np.trace(z) == router.chosen.size
    assert np.allclose(z, z.T)


def test_loss_curves_draw_train_and_held_out_per_run():
    from explorer.plots import training

    log = {
        "steps": [
            {"step": 0, "tokens": 0, "seconds": 0.0, "held_out_loss": 8.0},
            {"step": 10, "tokens": 100, "seconds": 1.0, "train_loss": 6.0},
            {"step": 20, "tokens": 200, "seconds": 2.0, "train_loss": 5.0, "held_out_loss": 5.5},
        ]
    }
    fig = training.loss_curves({"moe": log, "dense": log}, x="seconds")
    assert len(fig.data) == 4
    assert list(fig.data[1].x) == [0.0, 2.0] and list(fig.data[1].y) == [8.0, 5.5]
    with pytest.raises(ValueError):
        training.loss_curves({"moe": log}, x="epochs")


def test_parameter_breakdown_stacks_to_the_total():
    fig = moe.parameter_breakdown(
        [("mixtral", 1_600_000_000, 11_300_000_000, 33_800_000_000), ("dense", 1_000_000_000, 0, 0)]
    )
    totals = [sum(trace.x[i] for trace in fig.data) for i in range(2)]
    assert totals == pytest.approx([46.7, 1.0])


def test_classroom_style_enlarges_without_touching_data():
    from explorer.plots.common import classroom_style

    fig = decoding.step_history([1.0, 2.0], [0.5, 0.9], ["x", "y"])
    big = classroom_style(fig)
    assert big.layout.font.size == 20 and list(big.data[0].y) == [1.0, 2.0]
    assert fig.layout.font.size != 20  # the original figure is not modified


def test_handout_embeds_plotly_once_and_shows_input_as_text():
    from explorer.handout import Handout, HandoutFigure, handout_html

    figures = (
        HandoutFigure("first <b>", decoding.step_history([1.0], [0.5], ["x"]), "Read **this** <i>way</i>."),
        HandoutFigure("second", moe.expert_load(make_router())),
    )
    page = handout_html(
        Handout(
            "View <script>",
            "An **intro** <img src=x>.",
            "embedded:m",
            "trained by us",
            "typed [a](http://x.y) <b>text</b>",
            (("temperature", "0.7"),),
            figures,
            "?a=1",
        )
    )
    assert page.count("Plotly.newPlot") == 2
    assert len(page) > 1_000_000  # plotly.js itself is inside
    assert "first &lt;b&gt;" in page and "View &lt;script&gt;" in page
    assert "<strong>intro</strong>" in page and "&lt;img src=x&gt;" in page  # the lead's Markdown, never its HTML
    assert "typed [a](http://x.y) &lt;b&gt;text&lt;/b&gt;" in page  # the input verbatim
    assert "How to read this" in page and "<strong>this</strong>" in page and "temperature" in page
    assert '<script src="http' not in page  # nothing to fetch: works offline


def test_family_latency_stacks_encoder_and_steps():
    from explorer.plots import compare

    fig = compare.family_latency(["enc", "dec"], [0.01, 0.0], [[], [0.02, 0.03]])
    assert list(fig.data[0].x) == pytest.approx([10.0, 0.0]) and list(fig.data[1].x) == pytest.approx([0.0, 50.0])
    with pytest.raises(ValueError):
        compare.family_latency(["enc"], [0.01, 0.0], [[]])


def test_pca_equals_the_svd_projection_up_to_each_components_sign():
    points = RNG.standard_normal((40, 12))  # fewer points than dimensions: the Gram matrix path
    wide = RNG.standard_normal((30, 5))  # more points than dimensions: the covariance path
    for cloud in (points, wide):
        centred = cloud - cloud.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        coords, ratio = pca_2d(cloud, components=3)
        assert np.allclose(np.abs(coords), np.abs(centred @ vt[:3].T))
        assert np.allclose(ratio, s[:3] ** 2 / (s**2).sum())
        assert (coords[np.abs(coords).argmax(axis=0), range(3)] > 0).all()  # the fixed sign convention


def _dict_figures():
    """Every figure built with plots.common.dict_figure (unvalidated in the app)."""
    trace = make_trace(layers=3, heads=2, d=8)
    probs = np.full(12, 1 / 12)
    yield "trajectories 2-D", lambda: encoder.token_trajectories(trace, dims=2)
    yield "trajectories 3-D", lambda: encoder.token_trajectories(trace, dims=3)
    yield "pair", lambda: encoder.pair_similarity_by_depth(trace, 0, 1)
    yield "entropy", lambda: encoder.attention_entropy_overview(trace)
    yield "masks", lambda: encoder.mask_comparison(trace.tokens)
    yield "similarity", lambda: encoder.cosine_similarity_matrix(trace, 1)
    yield "attention", lambda: encoder.layer_attention(trace, 1, None)
    yield "bars", lambda: decoding.next_token_bars(probs, probs > 0.05, 3, {i: f"t{i}" for i in range(12)}, top=5)
    yield "sampling bars", lambda: sampling_figure(SYNTHETIC, SamplingSettings(greedy=False, top_k=4, seed=1))
    yield "greedy bars", lambda: sampling_figure(SYNTHETIC, SamplingSettings())
    yield (
        "lens",
        lambda: decoding.depth_lens(
            ["a", "b", "c", "d"], np.array([0.1, 0.2, 0.3, 0.9]), "d", np.array([0.0, 0.1, 0.2, 0.9]), "lens"
        ),
    )


@pytest.mark.parametrize("name,build", list(_dict_figures()), ids=[n for n, _ in _dict_figures()])
def test_unvalidated_figures_serialise_exactly_as_validated_ones(monkeypatch, name, build):
    """The app skips Plotly's validation for speed (dict_figure): with it on, the same figure
    builds without error and reaches the browser as the same JSON."""
    monkeypatch.setenv(VALIDATE_ENV, "1")
    checked = json.loads(pio.to_json(build(), validate=False))
    monkeypatch.setenv(VALIDATE_ENV, "0")
    assert json.loads(pio.to_json(build(), validate=False)) == checked, name


def test_timing_figure_draws_the_medians_its_sentence_states():
    """A single decoder step slower than the encoder pass (340 ms beside 270 ms) contradicts nothing:
    the figure draws the medians the sentence states, and the claim is about growth with output length."""
    encoder_runs, steps = [0.27, 0.9, 0.25, 0.26, 0.31], [0.34, 0.05, 0.06, 0.04]
    summary = seq2seq.timing_summary(encoder_runs, steps)
    fig = seq2seq.encoder_vs_decoder_time(encoder_runs, steps)
    assert list(fig.data[0].y) == pytest.approx([270, 340, 50, 60, 40])  # the encoder bar is the median of 5
    assert fig.data[0].error_y.arrayminus[0] == pytest.approx(20) and fig.data[0].error_y.array[0] == pytest.approx(630)
    assert fig.layout.shapes[0].y0 == pytest.approx(55)  # the dashed median step
    sentence = seq2seq.timing_sentence(summary)
    for stated in (
        "270.0 ms (median of 5 passes)",
        "4 steps",
        "490 ms in all",
        "(1.8× the encoder pass)",
        "55.0 ms per step (median)",
        "the cost that grows with the output's length is the decoder's",
    ):
        assert stated in sentence, stated
    with pytest.raises(ValueError):
        seq2seq.timing_summary([], steps)
