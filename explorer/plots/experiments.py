"""Figures of the experiments: replication cards against chance, interventions side by side,
activation patching and the MoE top-k sweep. Pure functions of numpy results."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.effects import InterventionResult, PatchingResult, TopKSweep
from explorer.experiments.statistics import Card, Taxonomy
from explorer.plots.common import base_layout, require, safe_label, unique_labels

MEASURED, CHANCE, MODIFIED, PROMPTS = "#1f77b4", "#7f7f7f", "#d62728", "#9ecae1"


NULL = "#bdbdbd"


def _row_label(card: Card) -> str:
    # a card's name may hold a tokenizer's special token ('<s>'): escaped, so it is shown and not read as HTML
    return f"{safe_label(card.name)}<br><i>{card.verdict}</i>"


def _null_marks(fig: go.Figure, card: Card, label: list[str], row: int, first: bool) -> None:
    low = float(np.nanmean(np.percentile(card.null, 5, axis=1)))
    high = float(np.nanmean(np.percentile(card.null, 95, axis=1)))
    fig.add_trace(go.Scatter(
        x=[low, high], y=label * 2, mode="lines", line=dict(color=NULL, width=14), name="null, 5th-95th percentile",
        legendgroup="null", showlegend=first,
        hovertemplate=f"null {low:.3f} to {high:.3f}: {card.null_note}<extra></extra>"), row=row, col=1)  # fmt: skip
    fig.add_trace(go.Scatter(
        x=[card.null_mean], y=label, mode="markers", marker=dict(symbol="line-ns-open", size=16, color="#636363",
        line=dict(width=3)), name="null mean", legendgroup="null-mean", showlegend=first,
        hovertemplate="null mean %{x:.3f}<extra></extra>"), row=row, col=1)  # fmt: skip


def cards_overview(cards: list[Card]) -> go.Figure:
    """One row per card, each on its own x-axis (its own unit: a share, nats, a cosine), so no card
    squashes the others: the per-prompt values (dots), their mean ± standard deviation over the
    prompts, the null's 5th-95th percentile band with its mean, and the analytic chance or ceiling."""
    require(len(cards) > 0, "at least one card")
    fig = make_subplots(rows=len(cards), cols=1, vertical_spacing=min(0.04, 0.5 / len(cards)))
    for row, card in enumerate(cards, start=1):
        label, first = [_row_label(card)], row == 1  # one legend entry per kind of mark
        if card.null is not None:
            _null_marks(fig, card, label, row, first)
        if np.isfinite(card.chance):
            fig.add_trace(go.Scatter(
                x=[card.chance], y=label, mode="markers", marker=dict(symbol="diamond-open", size=11, color="black"),
                name="analytic chance (or ceiling)", legendgroup="chance", showlegend=first,
                hovertemplate=f"%{{x:.3f}}: {card.chance_note}<extra></extra>"), row=row, col=1)  # fmt: skip
        if card.per_prompt is not None:
            fig.add_trace(go.Scatter(
                x=card.per_prompt, y=label * len(card.per_prompt), mode="markers", marker=dict(size=6, color=PROMPTS),
                name="each prompt", legendgroup="prompts", showlegend=first,
                hovertemplate="one prompt: %{x:.3f}<extra></extra>"), row=row, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(
            x=[card.measured], y=label, mode="markers", marker=dict(size=12, color=MEASURED),
            error_x=dict(type="data", array=[card.spread], visible=True, color=MEASURED),
            name="measured: mean ± standard deviation over the prompts", legendgroup="measured", showlegend=first,
            customdata=[safe_label(card.quantity)], hovertemplate="measured %{x:.3f}<br>%{customdata}<extra></extra>"),
            row=row, col=1)  # fmt: skip
    fig.update_yaxes(showgrid=False)
    fig.update_layout(legend=dict(orientation="h", y=-0.06 * 8 / max(len(cards), 8), yanchor="top"))
    return base_layout(fig, "Each card on its own axis: measured against its null", height=150 + 78 * len(cards))


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
            f"{safe_label(card.name)}: every layer and head (chance {card.chance:.3f})",
            height=max(320, 18 * len(values) + 140),
        )
    x = list(range(len(values)))
    fig = go.Figure(go.Scatter(x=x, y=values, mode="lines+markers", name="measured", line=dict(color=MEASURED)))
    if card.null_by_layer is not None:
        fig.add_trace(go.Scatter(x=x, y=card.null_by_layer, mode="lines+markers", name="null (mean)",
                                 line=dict(color=CHANCE, dash="dot")))  # fmt: skip
    fig.add_hline(y=card.chance, line=dict(dash="dash", color=CHANCE), annotation_text=f"chance {card.chance:.3f}")
    fig.update_xaxes(title=card.layer_axis, dtick=1 if len(x) <= 32 else None)
    fig.update_yaxes(title="value")
    return base_layout(fig, f"{safe_label(card.name)}, by layer", height=320)


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
    "broad": "#CC79A7",  # reddish purple: told apart from the induction heads' vermillion
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
