"""Figures of what an encoder computes: token trajectories, similarity and attention."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.plots.common import QUALITATIVE, base_layout, pca_2d, require, safe_label, unique_labels
from explorer.trace import ForwardTrace


def token_trajectories(trace: ForwardTrace) -> go.Figure:
    """Every token's hidden state at every depth, on ONE 2-D PCA fitted across all layers,
    so a token can be followed from its embedding (layer 0) to the last layer."""
    states = trace.hidden_states  # [L+1, T, D]
    layers, tokens, width = states.shape
    coords, ratio = pca_2d(states.reshape(layers * tokens, width))
    coords = coords.reshape(layers, tokens, 2)
    norms = np.linalg.norm(states, axis=-1)  # [L+1, T]
    fig = go.Figure()
    for t, token in enumerate(trace.tokens):
        colour = QUALITATIVE[t % len(QUALITATIVE)]
        fig.add_trace(go.Scatter(
            x=coords[:, t, 0], y=coords[:, t, 1], mode="lines+markers", name=f"{t}: {safe_label(token)}",
            line=dict(color=colour, width=1.5), marker=dict(color=colour, size=np.linspace(5, 13, layers)),
            customdata=np.stack([np.arange(layers), norms[:, t]], axis=-1),
            hovertemplate=f"<b>{safe_label(token)}</b> (position {t})<br>layer %{{customdata[0]}}<br>norm %{{customdata[1]:.2f}}<extra></extra>",
        ))
        fig.add_annotation(x=coords[-1, t, 0], y=coords[-1, t, 1], text=safe_label(token), showarrow=False,
                           yshift=10, font=dict(color=colour, size=12))
    base_layout(fig, "How each token's representation moves through the layers", height=520)
    fig.update_layout(xaxis_title=f"principal component 1 ({ratio[0]:.0%} of variance)",
                      yaxis_title=f"principal component 2 ({ratio[1]:.0%} of variance)",
                      legend=dict(title="token (small dot = embedding, large = last layer)"))
    return fig


def cosine_similarity_matrix(trace: ForwardTrace, layer: int) -> go.Figure:
    """Cosine similarity between every pair of tokens at one depth."""
    require(0 <= layer <= trace.num_layers, f"layer {layer} outside 0..{trace.num_layers}")
    h = trace.hidden_states[layer]  # [T, D]
    unit = h / np.maximum(np.linalg.norm(h, axis=-1, keepdims=True), 1e-12)
    sim = unit @ unit.T  # [T, T]
    labels = unique_labels(trace.tokens)
    fig = go.Figure(go.Heatmap(z=sim, x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu", reversescale=True,
                               colorbar=dict(title="cosine"),
                               hovertemplate="%{y} vs %{x}<br>cosine %{z:.3f}<extra></extra>"))
    base_layout(fig, f"Token similarity at layer {layer} ({'embeddings' if layer == 0 else 'after block ' + str(layer)})", height=480)
    fig.update_yaxes(autorange="reversed")
    return fig


def attention_heatmap(tokens, attention: np.ndarray, title: str, key_tokens=None) -> go.Figure:
    """One attention map [queries, keys] (a head or the head average); rows sum to 1."""
    require(attention.ndim == 2, f"attention must be [q, k], got {attention.shape}")
    key_tokens = tokens if key_tokens is None else key_tokens
    require(attention.shape == (len(tokens), len(key_tokens)), f"attention {attention.shape} vs {len(tokens)}x{len(key_tokens)} tokens")
    fig = go.Figure(go.Heatmap(z=attention, x=unique_labels(key_tokens), y=unique_labels(tokens), zmin=0,
                               colorscale="Blues", colorbar=dict(title="weight"),
                               hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>"))
    base_layout(fig, title, height=480)
    fig.update_layout(xaxis_title="attended-to token (key)", yaxis_title="attending token (query)")
    fig.update_yaxes(autorange="reversed")
    return fig


def layer_attention(trace: ForwardTrace, layer: int, head: int | None) -> go.Figure:
    """The attention map of one block: one head, or the average over heads (head=None)."""
    require(trace.attentions is not None, "this trace kept no attention maps")
    require(0 <= layer < trace.num_layers, f"layer {layer} outside 0..{trace.num_layers - 1}")
    maps = trace.attentions[layer]  # [H, T, T]
    attn = maps.mean(axis=0) if head is None else maps[head]
    which = "average of all heads" if head is None else f"head {head}"
    return attention_heatmap(trace.tokens, attn, f"Attention in block {layer + 1}, {which}")
