"""Figures of the experiments: replication cards against chance, interventions side by side,
activation patching and the MoE top-k sweep. Pure functions of numpy results."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.experiments.cards import Card, Taxonomy
from explorer.experiments.results import InterventionResult, PatchingResult, TopKSweep
from explorer.plots.common import base_layout, require, unique_labels

MEASURED, CHANCE, MODIFIED = "#1f77b4", "#7f7f7f", "#d62728"


def cards_overview(cards: list[Card]) -> go.Figure:
    """Every card's measurement (± its spread over the prompt set) beside its chance baseline,
    each on its own row: the units differ between cards, so each row is read on its own."""
    require(len(cards) > 0, "at least one card")
    names = [c.name for c in cards][::-1]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[c.chance for c in cards][::-1],
            y=names,
            mode="markers",
            marker=dict(symbol="line-ns-open", size=18, color=CHANCE, line=dict(width=3)),
            name="chance baseline",
            customdata=[c.chance_note for c in cards][::-1],
            hovertemplate="%{y}<br>chance %{x:.3f}: %{customdata}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[c.measured for c in cards][::-1],
            y=names,
            mode="markers",
            marker=dict(size=11, color=MEASURED),
            error_x=dict(type="data", array=[c.spread for c in cards][::-1], visible=True),
            name="measured (± spread over the prompts)",
            customdata=[c.quantity for c in cards][::-1],
            hovertemplate="%{y}<br>measured %{x:.3f}<br>%{customdata}<extra></extra>",
        )
    )
    fig.update_xaxes(title="value (the card's own unit: a share, nats or a cosine; see the table)")
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return base_layout(fig, "Measured on this model against chance, one card per row", height=140 + 42 * len(cards))


def card_detail(card: Card) -> go.Figure:
    """The values behind one card: a layer x head heatmap ([L, H]) or a line by layer ([L]),
    with the chance baseline."""
    require(card.by_layer is not None, "the card has per-layer values")
    values = np.asarray(card.by_layer, dtype=np.float64)
    if values.ndim == 2:
        fig = go.Figure(
            go.Heatmap(
                z=values,
                x=[f"H{h}" for h in range(values.shape[1])],
                y=[f"L{layer}" for layer in range(values.shape[0])],
                colorscale="Blues",
                colorbar=dict(title="value"),
                hovertemplate="layer %{y}, head %{x}: %{z:.3f}<extra></extra>",
            )
        )
        fig.update_yaxes(autorange="reversed", title=card.layer_axis)
        return base_layout(
            fig,
            f"{card.name}: every layer and head (chance {card.chance:.3f})",
            height=max(320, 18 * len(values) + 140),
        )
    x = list(range(len(values)))
    fig = go.Figure(go.Scatter(x=x, y=values, mode="lines+markers", name="measured", line=dict(color=MEASURED)))
    fig.add_hline(y=card.chance, line=dict(dash="dash", color=CHANCE), annotation_text=f"chance {card.chance:.3f}")
    fig.update_xaxes(title=card.layer_axis, dtick=1 if len(x) <= 32 else None)
    fig.update_yaxes(title="value")
    return base_layout(fig, f"{card.name}, by layer", height=320)


def intervention_figure(result: InterventionResult, tokens: list[str]) -> go.Figure:
    """Per scored position: log-probability of its target unmodified and modified (lines), and
    the KL between the two output distributions (bars, right axis); flipped top-1s marked."""
    require(len(tokens) == len(result.token_ids), "one label per token")
    labels = unique_labels(tokens)
    scored = [labels[p] for p in result.positions]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(x=labels, y=result.kl, name="KL(unmodified ‖ modified), nats", marker_color="#c7c7c7", yaxis="y2")
    )
    fig.add_trace(
        go.Scatter(x=scored, y=result.base_logprob, name="unmodified", mode="lines+markers", line=dict(color=MEASURED))
    )
    fig.add_trace(
        go.Scatter(
            x=scored, y=result.modified_logprob, name="modified", mode="lines+markers", line=dict(color=MODIFIED)
        )
    )
    flipped = np.flatnonzero(result.flipped)
    if flipped.size:
        fig.add_trace(
            go.Scatter(
                x=[labels[i] for i in flipped],
                y=[0.0] * flipped.size,
                mode="markers",
                marker=dict(symbol="x", size=10, color="black"),
                name="top-1 prediction flipped",
                yaxis="y2",
            )
        )
    target = "the next token" if len(result.positions) < len(result.token_ids) else "the token itself"
    fig.update_layout(
        yaxis=dict(title=f"log p({target}), nats"),
        yaxis2=dict(title="KL, nats", overlaying="y", side="right", showgrid=False, rangemode="tozero"),
        legend=dict(orientation="h", y=-0.3),
    )
    return base_layout(fig, result.description, height=420)


def patching_heatmap(result: PatchingResult, tokens: list[str], answers: tuple[str, str]) -> go.Figure:
    """Share of the clean answer's margin restored by patching one (depth, position) of the
    clean residual stream into the corrupted run: 1 = fully restored, 0 = no effect."""
    require(len(tokens) == result.patched.shape[1], "one label per position")
    restored = result.restored
    labels = unique_labels(tokens)
    fig = go.Figure(
        go.Heatmap(
            z=restored,
            x=labels,
            y=["embeddings" if d == 0 else f"after block {d}" for d in range(restored.shape[0])],
            zmid=0,
            colorscale="RdBu",
            colorbar=dict(title="restored"),
            customdata=result.patched,
            hovertemplate="%{y}, %{x}<br>restored %{z:.2f} (metric %{customdata:.3f})<extra></extra>",
        )
    )
    metric = (
        f"logit({answers[0]}) − logit({answers[1]})"
        if result.metric == "logit_diff"
        else f"p({answers[0]}) at the [MASK]"
    )
    fig.update_yaxes(autorange="reversed")
    return base_layout(
        fig,
        f"Activation patching: share of {metric} restored (clean {result.clean_metric:.2f}, "
        f"corrupted {result.corrupted_metric:.2f})",
        height=max(360, 16 * restored.shape[0] + 160),
    )


def top_k_figure(sweep: TopKSweep) -> go.Figure:
    """Loss against the parameters one token passes through, for each top-k."""
    colours = [MODIFIED if k == sweep.trained_k else MEASURED for k in sweep.ks]
    fig = go.Figure(
        go.Scatter(
            x=sweep.active_params / 1e6,
            y=sweep.loss,
            mode="lines+markers+text",
            marker=dict(size=12, color=colours),
            text=[f"k={k}" + (" (trained)" if k == sweep.trained_k else "") for k in sweep.ks],
            textposition="top center",
            hovertemplate="%{text}<br>%{x:.2f} M parameters per token<br>loss %{y:.3f} nats<extra></extra>",
        )
    )
    fig.update_xaxes(title=f"parameters per token, millions (of {sweep.total_params / 1e6:.2f} M in memory)")
    fig.update_yaxes(title="next-token loss on the text, nats")
    return base_layout(fig, "Top-k experts per token: loss against active parameters", height=380)


KIND_COLOURS = {
    "induction": "#D55E00",
    "previous-token": "#0072B2",
    "positional": "#009E73",
    "broad": "#E69F00",
    "other": "#BBBBBB",
}


def taxonomy_map(tax: Taxonomy) -> go.Figure:
    """Every head's kind (layer x head), from its attention with the first-token sink removed;
    hover gives the scores behind the label."""
    kinds = list(KIND_COLOURS)
    index = np.vectorize(kinds.index)(tax.labels)  # [L, H]
    n = len(kinds)
    scale = []
    for i, kind in enumerate(kinds):
        scale += [[i / n, KIND_COLOURS[kind]], [(i + 1) / n, KIND_COLOURS[kind]]]
    hover = np.stack([tax.sink, tax.previous, np.nan_to_num(tax.induction), tax.positional, tax.breadth], axis=-1)
    layers, heads = tax.labels.shape
    fig = go.Figure(
        go.Heatmap(
            z=index, x=[f"H{h}" for h in range(heads)], y=[f"L{layer}" for layer in range(layers)],
            zmin=-0.5, zmax=n - 0.5, colorscale=scale, text=tax.labels, customdata=hover,
            hovertemplate="layer %{y}, head %{x}: <b>%{text}</b><br>sink mass before removal %{customdata[0]:.2f}"
            "<br>previous-token %{customdata[1]:.2f}, induction %{customdata[2]:.2f}<br>fixed offset "
            "%{customdata[3]:.2f}, breadth %{customdata[4]:.2f}<extra></extra>",
            colorbar=dict(tickvals=list(range(n)), ticktext=kinds, title="kind"),
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", title="layer (0 = first block)")
    counts = ", ".join(f"{k} {int((tax.labels == k).sum())}" for k in kinds)
    return base_layout(fig, f"Head kinds with the sink removed: {counts}", height=max(320, 16 * layers + 140))
