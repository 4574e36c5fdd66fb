"""Figures of one autoregressive decoding step."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.plots.common import base_layout, dict_figure, require, safe_label


def next_token_bars(probs: np.ndarray, kept: np.ndarray, chosen_id: int | None, labels: dict[int, str], top: int = 15,
                    title: str = "Next-token distribution (orange = chosen, grey = removed by top-k/top-p)") -> go.Figure:
    """The ``top`` most likely next tokens under the model (probs [V], temperature 1).

    kept [V] marks tokens the decoding rules (top-k / top-p / suppression) leave in play;
    the others are drawn hatched grey as removed. The chosen token is drawn in orange.
    """
    require(probs.shape == kept.shape and probs.ndim == 1, "probs and kept must both be [V]")
    order = np.argsort(-probs, kind="stable")[:top]
    if chosen_id is not None and chosen_id not in order:
        order = np.append(order, chosen_id)
    names = [f"{safe_label(labels.get(int(i), f'#{i}'))}" for i in order]
    colours = ["#E69F00" if int(i) == chosen_id else ("#0072B2" if kept[i] else "#BBBBBB") for i in order]
    patterns = ["" if kept[i] else "/" for i in order]
    status = ["chosen" if int(i) == chosen_id else ("in play" if kept[i] else "removed by the decoding rules") for i in order]
    fig = dict_figure(
        [dict(type="bar", x=probs[order], y=[f"{n}  " for n in names], orientation="h",
              marker=dict(color=colours, pattern=dict(shape=patterns)),
              customdata=[[str(int(i)), s] for i, s in zip(order, status, strict=True)],
              hovertemplate="token %{y}<br>id %{customdata[0]}<br>p = %{x:.4f}<br>%{customdata[1]}<extra></extra>",
              text=[f"{p:.1%}" for p in probs[order]], textposition="outside", cliponaxis=False)],
        dict(xaxis=dict(title=dict(text="probability"), range=[0, min(1.0, float(probs[order].max()) * 1.25 + 0.02)]),
             yaxis=dict(autorange="reversed")),
    )
    base_layout(fig, title, height=max(300, 26 * len(order) + 100))
    return fig.update_layout(margin=dict(r=60))  # room for a near-certain bar's label beyond the axis's end at 1


def context_attention(tokens, last_attention: np.ndarray, layer: int) -> go.Figure:
    """How the newest position spreads its attention over the context at one block,
    averaged over heads; last_attention is [L, H, T]."""
    require(last_attention.ndim == 3 and last_attention.shape[2] == len(tokens), "last_attention must be [L, H, T]")
    weights = last_attention[layer].mean(axis=0)
    labels = [f"{i}:{safe_label(t)}" for i, t in enumerate(tokens)]
    fig = go.Figure(go.Bar(x=labels, y=weights, marker_color="#009E73",
                           hovertemplate="%{x}<br>weight %{y:.3f}<extra></extra>"))
    base_layout(fig, f"Where the newest token looks, block {layer + 1} (average of heads)", height=340)
    fig.update_layout(yaxis_title="attention weight", xaxis_title="context token")
    return fig


def step_history(entropies: list[float], chosen_probs: list[float], tokens: list[str]) -> go.Figure:
    """Over the generated tokens: entropy of each step's distribution and the chosen token's probability."""
    require(len(entropies) == len(chosen_probs) == len(tokens), "one value per generated token")
    x = [f"{i + 1}:{safe_label(t)}" for i, t in enumerate(tokens)]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=entropies, name="entropy (bits)", mode="lines+markers", line=dict(color="#0072B2")))
    fig.add_trace(go.Scatter(x=x, y=chosen_probs, name="p(chosen token)", mode="lines+markers", yaxis="y2", line=dict(color="#E69F00")))
    base_layout(fig, "Uncertainty at each step", height=320)
    fig.update_layout(yaxis=dict(title="entropy (bits)", rangemode="tozero"),
                      yaxis2=dict(title="p(chosen)", overlaying="y", side="right", range=[0, 1], tickformat=".0%"),
                      legend=dict(orientation="h", y=-0.3))
    return fig


def depth_lens(top_tokens: list[str], top_probs: np.ndarray, final_token: str, final_probs: np.ndarray, title: str) -> go.Figure:
    """What the output head reads from each depth of one position.

    top_tokens [L+1] the most likely token at each depth, top_probs [L+1] its probability,
    final_probs [L+1] the probability, at each depth, of the token the last layer ranks first.
    """
    require(len(top_tokens) == len(top_probs) == len(final_probs), "one value per depth")
    depths = list(range(len(top_tokens)))
    fig = dict_figure(
        [dict(type="bar", x=depths, y=top_probs, name="p(top token at this depth)", marker=dict(color="#56B4E9"),
              text=[safe_label(t) for t in top_tokens], textposition="outside", cliponaxis=False,
              hovertemplate="depth %{x}: top token %{text} (p = %{y:.3f})<extra></extra>"),
         dict(type="scatter", x=depths, y=final_probs, name=f"p('{safe_label(final_token)}', the final answer)",
              mode="lines+markers", line=dict(color="#E69F00", width=3), hovertemplate="depth %{x}: %{y:.3f}<extra></extra>")],
        dict(xaxis=dict(title=dict(text="depth (0 = embeddings, then after each block)")),
             yaxis=dict(title=dict(text="probability"), range=[0, 1.12]), legend=dict(orientation="h", y=-0.25)),
    )
    return base_layout(fig, title, height=380)
