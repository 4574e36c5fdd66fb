"""Figures of token attribution: which input tokens mattered, and whether the map is faithful.

Pure functions from arrays to Plotly figures (the arrays come from explorer.adapters.attribution):
a token strip or a methods x tokens heatmap of scores (diverging colours centred on 0), the deletion and
insertion curves against the random orders' band, and an encoder-decoder's attribution matrix beside its
cross-attention.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.plots.common import QUALITATIVE, base_layout, require, safe_label, unique_labels

DIVERGING = "RdBu_r"  # blue: lowered the target, white: nothing, red: raised it
BAND_FILL = "rgba(153, 153, 153, 0.25)"
RANDOM_LINE = "#777777"


def _limit(z: np.ndarray) -> float:
    finite = np.abs(z[np.isfinite(z)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def token_strip(
    tokens, scores: np.ndarray, title: str = "Which input tokens mattered", movable=None, label: str = "score"
) -> go.Figure:
    """One row of cells, one per token (``scores`` [T]), coloured by score around 0; the token is written in
    its cell. ``movable`` [T] (optional): False cells are marked as kept (special tokens, the query)."""
    scores = np.asarray(scores, dtype=np.float64)
    require(scores.shape == (len(tokens),), f"scores {scores.shape} for {len(tokens)} tokens")
    kept = np.zeros(len(tokens), dtype=bool) if movable is None else ~np.asarray(movable, dtype=bool)
    limit = _limit(scores)
    text = [safe_label(t) for t in tokens]
    notes = ["kept in every baseline" if k else "" for k in kept]
    fig = go.Figure(
        go.Heatmap(
            z=scores[None, :],
            x=unique_labels(tokens),
            y=[label],
            text=[text],
            texttemplate="%{text}",
            customdata=[notes],
            colorscale=DIVERGING,
            zmid=0.0,
            zmin=-limit,
            zmax=limit,
            xgap=2,
            colorbar=dict(title=label),
            hovertemplate="%{x}<br>" + label + " %{z:.4g}<br>%{customdata}<extra></extra>",
        )
    )
    base_layout(fig, title, height=220)
    fig.update_xaxes(showticklabels=False)
    return fig


def attribution_heatmap(
    tokens, rows: dict[str, np.ndarray], title: str = "Attribution by method", normalise: bool = True
) -> go.Figure:
    """Methods x tokens: one row per method (``rows``: name -> scores [T]). ``normalise``: each row divided by
    its largest absolute score (methods differ in scale; the hover keeps the raw value)."""
    require(len(rows) > 0, "no attribution to draw")
    names = list(rows)
    raw = np.stack([np.asarray(rows[n], dtype=np.float64) for n in names])  # [M, T]
    require(raw.shape[1] == len(tokens), f"scores {raw.shape} for {len(tokens)} tokens")
    z = raw / np.array([_limit(r) for r in raw])[:, None] if normalise else raw
    limit = 1.0 if normalise else _limit(raw)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=unique_labels(tokens),
            y=[safe_label(n) for n in names],
            customdata=raw,
            colorscale=DIVERGING,
            zmid=0.0,
            zmin=-limit,
            zmax=limit,
            xgap=1,
            ygap=1,
            colorbar=dict(title="score / row max" if normalise else "score"),
            hovertemplate="%{y}<br>%{x}<br>score %{customdata:.4g}<extra></extra>",
        )
    )
    base_layout(fig, title, height=160 + 40 * len(names))
    fig.update_yaxes(autorange="reversed")
    return fig


def _band_traces(fig, removed, curves, curve, name: str, col: int, color: str, legend: bool) -> None:
    mean, low, high = curves.mean(axis=0), np.percentile(curves, 5, axis=0), np.percentile(curves, 95, axis=0)
    x = np.asarray(removed, dtype=np.float64)
    fig.add_trace(
        go.Scatter(
            x=x, y=high, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip", legendgroup="band"
        ),
        row=1,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=low,
            mode="lines",
            line=dict(width=0),
            fill="tonexty",
            fillcolor=BAND_FILL,
            name=f"random orders, 5-95% ({len(curves)})",
            legendgroup="band",
            showlegend=legend,
            hoverinfo="skip",
        ),
        row=1,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=mean,
            mode="lines",
            line=dict(color=RANDOM_LINE, dash="dash", width=2),
            name="random orders, mean",
            legendgroup="mean",
            showlegend=legend,
            hovertemplate="%{x} tokens<br>random mean p = %{y:.4f}<extra></extra>",
        ),
        row=1,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=np.asarray(curve, dtype=np.float64),
            mode="lines+markers",
            line=dict(color=color, width=3),
            name=name,
            hovertemplate="%{x} tokens<br>p = %{y:.4f}<extra></extra>",
        ),
        row=1,
        col=col,
    )


def faithfulness_figure(
    removed: np.ndarray,
    deletion: np.ndarray,
    insertion: np.ndarray,
    random_deletion: np.ndarray,
    random_insertion: np.ndarray,
    method: str = "attribution",
    title: str | None = None,
) -> go.Figure:
    """Deletion (left: the top tokens replaced by the baseline, most important first) and insertion (right:
    only the top tokens kept) curves of the target's probability [K], each against the band of the random
    orders [R, K] (5th-95th percentile, and their mean). A faithful map falls faster on the left and rises
    faster on the right than the band."""
    k = len(removed)
    require(len(deletion) == k and len(insertion) == k, "one probability per point of each curve")
    shape = np.shape(random_deletion)
    require(
        len(shape) == 2 and shape[1] == k and np.shape(random_insertion) == shape,
        f"random curves {random_deletion.shape} / {random_insertion.shape} for {k} points",
    )
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=("Deletion: most important first", "Insertion: most important first"),
    )
    random_deletion, random_insertion = np.asarray(random_deletion), np.asarray(random_insertion)
    _band_traces(fig, removed, random_deletion, deletion, f"{method}: deletion", 1, QUALITATIVE[5], True)
    _band_traces(fig, removed, random_insertion, insertion, f"{method}: insertion", 2, QUALITATIVE[0], False)
    default = f"Is the {safe_label(method)} map faithful? The target's probability as tokens are removed / added"
    base_layout(fig, title or default, height=400)
    fig.update_xaxes(title_text="tokens replaced by the baseline", row=1, col=1)
    fig.update_xaxes(title_text="tokens restored from the input", row=1, col=2)
    fig.update_yaxes(title_text="target probability", rangemode="tozero", row=1, col=1)
    return fig


def seq2seq_matrix_figure(
    source_tokens,
    output_tokens,
    scores: np.ndarray,
    cross_attention: np.ndarray | None = None,
    method: str = "attribution",
) -> go.Figure:
    """Output tokens x source tokens: each output token's attribution over the source (``scores`` [T_out, S],
    diverging), beside the cross-attention of the position that predicted it ([T_out, S], optional)."""
    scores = np.asarray(scores, dtype=np.float64)
    require(
        scores.shape == (len(output_tokens), len(source_tokens)),
        f"scores {scores.shape} vs {len(output_tokens)} x {len(source_tokens)} tokens",
    )
    x, y = unique_labels(source_tokens), unique_labels(output_tokens)
    limit = _limit(scores)
    heat = go.Heatmap(
        z=scores,
        x=x,
        y=y,
        colorscale=DIVERGING,
        zmid=0.0,
        zmin=-limit,
        zmax=limit,
        colorbar=dict(title="score", x=0.46 if cross_attention is not None else 1.02),
        hovertemplate="output %{y}<br>source %{x}<br>score %{z:.4g}<extra></extra>",
    )
    if cross_attention is None:
        fig = go.Figure(heat)
        base_layout(fig, f"What each output token owes to the source ({safe_label(method)})", height=460)
    else:
        cross = np.asarray(cross_attention, dtype=np.float64)
        require(cross.shape == scores.shape, f"cross-attention {cross.shape} vs scores {scores.shape}")
        fig = make_subplots(
            rows=1,
            cols=2,
            horizontal_spacing=0.12,
            subplot_titles=(safe_label(method), "cross-attention (layer and head mean)"),
        )
        fig.add_trace(heat, row=1, col=1)
        fig.add_trace(
            go.Heatmap(
                z=cross,
                x=x,
                y=y,
                colorscale="Viridis",
                zmin=0,
                colorbar=dict(title="weight"),
                hovertemplate="output %{y}<br>source %{x}<br>weight %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=2,
        )
        base_layout(fig, "What each output token owes to the source, beside what it attended to", height=460)
    fig.update_xaxes(title_text="source token")
    fig.update_yaxes(title_text="output token", autorange="reversed")
    return fig
