"""Figures of the experiments, from hand-built results (no torch, no Streamlit)."""

import numpy as np
import pytest

from explorer.effects import PatchingResult, TopKSweep, compare
from explorer.experiments.statistics import Card, Taxonomy
from explorer.plots import experiments as plots


def card(by_layer=None, **changes) -> Card:
    fields = dict(
        name="sink",
        quantity="mass",
        method="m",
        prompt_set="everyday-sentences",
        measured=0.6,
        spread=0.1,
        chance=0.2,
        chance_note="uniform",
        source="paper",
        by_layer=by_layer,
        layer_axis="depth (0 = embeddings)",
    )
    return Card(**{**fields, **changes})


def test_overview_gives_each_card_its_own_axis_with_its_null_and_chance():
    rng = np.random.default_rng(0)
    sink = card(per_prompt=np.array([0.5, 0.6, 0.7]), null=rng.normal(0.2, 0.01, (3, 100)))
    loss = card(
        name="induction loss",
        measured=10.0,
        spread=0.7,
        chance=0.0,
        per_prompt=np.array([9.0, 10.0, 11.0]),
        null=rng.normal(0.0, 1.0, (3, 100)),
    )
    fig = plots.cards_overview([sink, loss])
    axes = {trace.xaxis for trace in fig.data}
    assert axes == {"x", "x2"}  # one x-axis per card: the 10-nat row does not squash the shares
    measured = [t for t in fig.data if t.legendgroup == "measured"]
    assert [t.x[0] for t in measured] == [0.6, 10.0] and list(measured[1].error_x.array) == [0.7]
    chance = [t.x[0] for t in fig.data if t.legendgroup == "chance"]
    assert chance == [0.2, 0.0]
    band = next(t for t in fig.data if t.legendgroup == "null" and t.xaxis == "x")
    assert 0.17 < band.x[0] < band.x[1] < 0.23
    assert "reproduces here" in measured[0].y[0] and "induction loss" in measured[1].y[0]
    assert sum(t.showlegend is not False for t in fig.data) == 5  # each kind of mark once in the legend


def test_card_detail_is_a_heatmap_for_heads_and_a_line_by_layer_otherwise():
    heads = plots.card_detail(card(np.arange(6.0).reshape(2, 3)))
    assert heads.data[0].type == "heatmap" and heads.layout.yaxis.title.text == "depth (0 = embeddings)"
    line = plots.card_detail(card(np.array([0.1, 0.5, 0.9])))
    assert list(line.data[0].y) == [0.1, 0.5, 0.9] and line.layout.xaxis.title.text == "depth (0 = embeddings)"
    with pytest.raises(ValueError):
        plots.card_detail(card(None))


def test_intervention_figure_marks_the_flipped_predictions():
    base = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]))
    modified = np.log(np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]]))
    result = compare("head off", np.array([0, 1, 2]), base, modified, causal=True)
    fig = plots.intervention_figure(result, ["a", "b", "c"])
    kl, unmodified, changed, flips = fig.data
    assert kl.y[0] == pytest.approx(0) and kl.y[1] > 0
    assert list(flips.x) == ["1:b"]
    assert unmodified.y[1] == pytest.approx(np.log(0.1))  # position 1 scores the token at 2


def test_patching_heatmap_shows_the_restored_share():
    result = PatchingResult(
        clean_ids=np.array([1, 2]),
        corrupted_ids=np.array([1, 3]),
        clean_answer=5,
        corrupted_answer=6,
        position=1,
        metric="logit_diff",
        clean_metric=2.0,
        corrupted_metric=-2.0,
        patched=np.array([[-2.0, 2.0], [0.0, 2.0]]),
    )
    fig = plots.patching_heatmap(result, ["x", "y"], ("Paris", "Rome"))
    assert fig.data[0].z.tolist() == [[0.0, 1.0], [0.5, 1.0]]
    assert "logit(Paris) − logit(Rome)" in fig.layout.title.text


def test_top_k_figure_marks_the_trained_k():
    sweep = TopKSweep(
        ks=np.array([1, 2, 4]),
        loss=np.array([5.0, 4.0, 3.9]),
        active_params=np.array([2e6, 2.5e6, 3.5e6]),
        total_params=4_000_000,
        trained_k=2,
    )
    fig = plots.top_k_figure(sweep)
    assert list(fig.data[0].text) == ["k=1", "k=2 (trained)", "k=4"]
    assert list(fig.data[0].x) == [2.0, 2.5, 3.5]


def test_taxonomy_map_colours_each_head_by_its_kind_and_counts_them():
    labels = np.array([["induction", "broad"], ["other", "broad"]], dtype=object)
    zeros = np.zeros((2, 2))
    tax = Taxonomy(labels=labels, sink=zeros, previous=zeros, induction=zeros, positional=zeros, breadth=zeros)
    fig = plots.taxonomy_map(tax)
    kinds = list(plots.KIND_COLOURS)
    assert fig.data[0].z.tolist() == [
        [kinds.index("induction"), kinds.index("broad")],
        [kinds.index("other"), kinds.index("broad")],
    ]
    assert "induction 1" in fig.layout.title.text and "broad 2" in fig.layout.title.text


def _lab(colour: str) -> np.ndarray:
    """CIE L*a*b* (D65) of a #rrggbb colour."""
    rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    xyz /= [0.95047, 1.0, 1.08883]
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_the_head_kinds_have_distinct_colours():
    colours = list(plots.KIND_COLOURS.values())
    distances = [np.linalg.norm(_lab(a) - _lab(b)) for i, a in enumerate(colours) for b in colours[i + 1 :]]
    # 'induction' and 'broad' were two oranges (#D55E00, #E69F00) only 33 apart, close in hue
    assert min(distances) > 40
